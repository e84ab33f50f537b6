// The official TypeScript MCP SDK as a client that hears what its calls do
// and is asked before destructive ones:
//
//   node ts_updates.cjs URL KEY ANSWER...
//
// Declares the elicitation capability and answers each consent question
// with the next ANSWER (accept, decline or cancel); sets the log level to
// info and calls hostile.chatter; lists the GitHub repositories page by
// page with a progress handler; then calls github.update_issue once per
// ANSWER. Prints one JSON line with what it saw, for
// tests/e2e/test_consent.py to check. NODE_PATH points at target/e2e-npm.

const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
const {
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
} = require("@modelcontextprotocol/sdk/types.js");

async function main() {
  const [url, key, ...answers] = process.argv.slice(2);
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  const client = new Client(
    { name: "mcpist-ts-updates", version: "1.0.0" },
    { capabilities: { elicitation: { form: {} } } },
  );
  const questions = [];
  const pending = [...answers];
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    questions.push(request.params.message);
    const action = pending.shift() ?? "cancel";
    return action === "accept" ? { action, content: {} } : { action };
  });
  const logs = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, async (notification) => {
    const { level, logger, data } = notification.params;
    logs.push([level, logger, data]);
  });
  await client.connect(transport);

  await client.setLoggingLevel("info");
  await client.callTool({ name: "call_module_tool", arguments: { module: "hostile", tool: "chatter", arguments: { lines: 1 } } });

  const progress = [];
  await client.callTool(
    {
      name: "call_module_tool",
      arguments: { module: "github", tool: "list_my_repositories", arguments: { per_page: 2, limit: 300 } },
    },
    undefined,
    { onprogress: (p) => progress.push([p.progress, p.message]) },
  );

  const updates = [];
  for (let i = 0; i < answers.length; i++) {
    const result = await client.callTool({
      name: "call_module_tool",
      arguments: {
        module: "github",
        tool: "update_issue",
        arguments: { owner: "alice", repo: "alice-repo-1", number: 4, state: "closed" },
      },
    });
    updates.push({ isError: result.isError ?? false, text: result.content.map((c) => c.text).join("") });
  }
  console.log(JSON.stringify({ protocolVersion: transport.protocolVersion ?? null, logs, progress, questions, updates }));
  await client.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
