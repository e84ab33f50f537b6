// The official TypeScript MCP SDK as a Streamable HTTP client of mcpist.
//
//   node ts_client.cjs URL KEY
//
// Connects with `Authorization: Bearer KEY`, lists the tools, calls
// text.count and a masked-or-missing tool, and prints one JSON line with
// what it saw, for tests/e2e/test_http.py to check. The SDK is installed by
// `cargo xtask test` into target/e2e-npm (NODE_PATH points there).

const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");

async function main() {
  const [url, key] = process.argv.slice(2);
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  const client = new Client({ name: "mcpist-ts-test", version: "1.0.0" });
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  const count = await client.callTool({
    name: "call_module_tool",
    arguments: { module: "text", tool: "count", arguments: { text: "from typescript" } },
  });
  const missing = await client.callTool({
    name: "call_module_tool",
    arguments: { module: "text", tool: "no_such_tool" },
  });
  console.log(
    JSON.stringify({
      protocolVersion: transport.protocolVersion ?? null,
      tools,
      count: count.structuredContent,
      missing: { isError: missing.isError, text: missing.content.map((c) => c.text).join("") },
    }),
  );
  await client.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
