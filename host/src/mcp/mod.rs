//! The MCP face of the host: the meta-tools an LLM sees instead of every
//! module's tools.
//!
//! - `get_module_schema`: the catalog, or one or more modules' tools with
//!   their schemas and annotations;
//! - `call_module_tool`: run one tool of one module.
//!
//! In flat mode (`[serve] tools = "flat"`), every tool a client may see is
//! listed directly instead, as `module.tool`, and clients are told
//! (`notifications/tools/list_changed`) when hot reload changes the list.
//!
//! Errors a model can act on (unknown module, bad arguments, a module's own
//! error) come back as tool results with `isError: true`, so the model reads
//! them; only protocol misuse (an unknown meta-tool) is a JSON-RPC error.
//!
//! This is a translation layer and nothing more: every call, refusal and
//! view goes through [`CallService`], which holds the masks and the audit.
//! The request's cancellation token (a `notifications/cancelled`, or a
//! client that closed the stream) goes with the call, so a cancelled call
//! stops instead of running to its end. A client that asked for log
//! messages (`logging/setLevel`, or a level in the request's `_meta`) gets
//! the module's log lines of its calls as they happen, and one that sent a
//! `progressToken` their progress ([`call_updates`]). A
//! call the consent policy holds for the person's agreement asks them by
//! elicitation ([`consent`]).

mod call_updates;
mod consent;
pub mod http;
pub(crate) mod meta_tools;
pub(crate) mod stdio_input;
mod stdio_output;
mod tasks;

pub use tasks::CallTasks;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::calls::{
    CallService, ClientSide, ConsentAsker, InvokeError, ModuleSchema, ToolCall, ToolView,
};
use crate::plan::{PlanRequest, PlanSide};
use crate::runtime::{ContentItem, ResourceContents, ToolOutput};
use meta_tools::{
    CALL_MODULE_TOOL, CallModuleToolArgs, GET_MODULE_SCHEMA, GetModuleSchemaArgs, RUN_PLAN,
    RUN_SCRIPT, RunScriptArgs,
};

const FLAT_INSTRUCTIONS: &str = "MCPist gives access to the owner's service modules: each tool is \
named module.tool. Tools of modules that act for the owner's accounts take an optional `account`; \
omit it for the default account. To run several tools in one request, send them to run_plan as \
steps (independent steps run in parallel; a step may use an earlier step's result), or, where \
run_script is offered, as a short JavaScript program that calls the tools.";

const INSTRUCTIONS: &str = "MCPist gives access to the owner's service modules through three tools. \
Call get_module_schema with no arguments to see the modules, then with {\"module\": NAME} to see a \
module's tools and their input schemas; then call call_module_tool with {module, tool, arguments}, \
or run_plan to run several calls in one request (independent steps run in parallel; a step may use \
an earlier step's result); where run_script is offered, a short JavaScript program can call the \
tools instead.";

/// How one MCP session is served.
#[derive(Debug, Clone)]
pub struct Session {
    /// The client's name for masks and the audit log when the transport
    /// does not authenticate one (`stdio`, the local owner).
    pub client: String,
    /// List every tool directly rather than the meta-tools.
    pub flat: bool,
    /// Consent questions asked in an `input_required` round and not yet
    /// answered, shared by every session of the server (a 2026-07-28
    /// client's retry need not come on the same one).
    pub(crate) pending_consents: Arc<consent::PendingConsents>,
    /// Calls that became tasks, shared by every session of the server (a
    /// 2026-07-28 client polls without one).
    pub(crate) tasks: Arc<tasks::CallTasks>,
}

/// One MCP session's view of the host.
#[derive(Clone)]
pub struct McpServer {
    calls: Arc<CallService>,
    tools: Arc<Vec<Tool>>,
    session: Session,
    /// What `logging/setLevel` asked for, in this session.
    log_level: call_updates::SessionLevel,
}

impl McpServer {
    /// A session answering through `calls`.
    pub fn new(calls: Arc<CallService>, session: Session) -> McpServer {
        McpServer {
            calls,
            tools: Arc::new(meta_tools::definitions()),
            session,
            log_level: call_updates::SessionLevel::default(),
        }
    }

    /// Serve MCP over this process's stdin and stdout until the client
    /// disconnects.
    pub async fn serve_stdio(self) -> anyhow::Result<()> {
        let running = self.serve(stdio_pipes()).await?;
        let reason = running.waiting().await?;
        tracing::info!(?reason, "MCP session over stdio ended");
        Ok(())
    }

    fn get_module_schema(&self, args: GetModuleSchemaArgs, client: &str) -> CallToolResult {
        let names = args.module.map(|m| m.into_vec()).unwrap_or_default();
        if names.is_empty() {
            let modules: Vec<Value> = self
                .calls
                .catalog(client)
                .into_iter()
                .map(|m| {
                    json!({
                        "name": m.name,
                        "version": m.version,
                        "description": m.description,
                        "tools": m.tools,
                    })
                })
                .collect();
            return CallToolResult::structured(json!({ "modules": modules }));
        }
        match self.calls.module_schemas(client, &names) {
            Ok(modules) => {
                let modules: Vec<Value> = modules.iter().map(module_schema).collect();
                CallToolResult::structured(json!({ "modules": modules }))
            }
            Err(error) => tool_error(&error.to_string()),
        }
    }

    /// Answer `call` for `client`: at once, or, for a client that declared
    /// the tasks extension, as a task if it runs long. `unknown` says how a
    /// tool that is not there (or masked) is answered.
    async fn answer_call(
        &self,
        call: ToolCall,
        client: String,
        context: RequestContext<RoleServer>,
        answers: Answers,
        unknown: Unknown,
    ) -> Result<CallToolResponse, ErrorData> {
        let (server, owner) = (self.clone(), client.clone());
        self.answer(&client, &context, move |request, stop| {
            Box::pin(async move {
                server
                    .run_call(&call, &owner, &request, answers, &stop)
                    .await
                    .response(unknown)
            })
        })
        .await
    }

    /// A meta-tool's arguments for `client`, or the refusal (audited) that
    /// says the `what` was not run and why.
    fn parse_or_refuse<T: serde::de::DeserializeOwned>(
        &self,
        client: &str,
        arguments: Value,
        what: &str,
    ) -> Result<T, CallToolResult> {
        meta_tools::parse::<T>(arguments.clone()).map_err(|problem| {
            let refused = self.calls.refuse_malformed(client, &arguments, problem);
            tool_error(&format!("the {what} was not run: {refused}"))
        })
    }

    /// Answer a `run_plan` request for `client`: refused with every problem
    /// listed if the plan does not pass its checks, else run like a call
    /// (and, for a client that takes tasks, as a task if it runs long).
    async fn answer_plan(
        &self,
        arguments: Value,
        client: String,
        context: RequestContext<RoleServer>,
        answers: Answers,
    ) -> Result<CallToolResponse, ErrorData> {
        let request = match self.parse_or_refuse::<PlanRequest>(&client, arguments, "plan") {
            Ok(request) => request,
            Err(refused) => return Ok(refused.into()),
        };
        let plan = match crate::plan::check(&self.calls, &client, request) {
            Ok(plan) => plan,
            Err(problems) => {
                tracing::info!(client, problems = problems.len(), "refused a plan");
                return Ok(tool_error(&format!(
                    "the plan was not run; nothing ran. Fix these and send it again: {}",
                    problems.join("; ")
                ))
                .into());
            }
        };
        let (server, owner) = (self.clone(), client.clone());
        self.answer(&client, &context, move |request, stop| {
            Box::pin(async move {
                server
                    .run_plan(plan, &owner, &request, answers, &stop)
                    .await
                    .response(Unknown::AsToolError)
            })
        })
        .await
    }

    /// `run_script` for `client`, when the owner approved a script engine:
    /// described with the tools the client may call.
    fn run_script_tool(&self, client: &str) -> Option<Tool> {
        // A pin without its file (not built, or not copied here) offers
        // nothing that could run.
        self.calls
            .served()
            .script_engine()
            .filter(|engine| engine.path.is_file())?;
        let catalogue = crate::script::typed_catalogue(&self.calls.tools(client));
        Some(meta_tools::run_script(&catalogue))
    }

    /// Answer a `run_script` request for `client`: run like a call (and,
    /// for a client that takes tasks, as a task if it runs long).
    async fn answer_script(
        &self,
        arguments: Value,
        client: String,
        context: RequestContext<RoleServer>,
        answers: Answers,
    ) -> Result<CallToolResponse, ErrorData> {
        let source = match self.parse_or_refuse::<RunScriptArgs>(&client, arguments, "script") {
            Ok(request) => request.script,
            Err(refused) => return Ok(refused.into()),
        };
        let (server, owner) = (self.clone(), client.clone());
        self.answer(&client, &context, move |request, stop| {
            Box::pin(async move {
                server
                    .run_script(&source, &owner, &request, answers, &stop)
                    .await
                    .response(Unknown::AsToolError)
            })
        })
        .await
    }

    /// Run a script on behalf of the request `context`, as
    /// [`McpServer::run_call`] runs a call: `cancel` stops it and its
    /// calls, the client hears what it asked for (progress per call), the
    /// person is asked about the calls the consent policy asks about.
    async fn run_script(
        &self,
        source: &str,
        client: &str,
        context: &RequestContext<RoleServer>,
        answers: Answers,
        cancel: &CancellationToken,
    ) -> Ran {
        let (wanted, asker) = self.updates_and_asker(context, answers);
        let ran = call_updates::forwarding(&context.peer, wanted, |watcher| {
            let side = crate::script::ScriptSide {
                watcher,
                asker: Some(asker as Arc<dyn ConsentAsker>),
            };
            crate::script::run(self.calls.clone(), client, source, cancel, side)
        })
        .await;
        let result = ran.to_json();
        Ran::Answered(if ran.outcome.is_ok() {
            CallToolResult::structured(result)
        } else {
            CallToolResult::structured_error(result)
        })
    }

    /// Run what `work` starts for `client`: awaited here, or, for a client
    /// that declared the tasks extension, made a task once it has run
    /// `[tasks] after_ms`. `work` gets the request and the token that stops
    /// it: the request's own, or, for a call that may outlive the request,
    /// one of its own.
    async fn answer(
        &self,
        client: &str,
        context: &RequestContext<RoleServer>,
        work: impl FnOnce(RequestContext<RoleServer>, CancellationToken) -> tasks::CallFuture,
    ) -> Result<CallToolResponse, ErrorData> {
        let tasks = self.session.tasks.clone();
        let wants_tasks = context
            .client_capabilities()
            .is_some_and(|capabilities| capabilities.supports_tasks());
        if !(tasks.enabled() && wants_tasks) {
            return work(context.clone(), context.ct.clone()).await;
        }
        let stop = CancellationToken::new();
        let run = work(context.clone(), stop.clone());
        tasks.run(client, &context.ct, stop, run).await
    }

    /// What the client of the request `context` asked to hear (its log
    /// level, or the session's, and its progress token), and how its
    /// person is asked for consent (with `answers` to an earlier round).
    fn updates_and_asker(
        &self,
        context: &RequestContext<RoleServer>,
        answers: Answers,
    ) -> (call_updates::Wanted, Arc<consent::Elicitation>) {
        let wanted = call_updates::Wanted {
            level: context.meta.log_level().or_else(|| self.log_level.get()),
            progress: context.meta.get_progress_token(),
        };
        let asker = Arc::new(consent::Elicitation::new(
            context,
            answers.responses,
            answers.state,
            self.session.pending_consents.clone(),
        ));
        (wanted, asker)
    }

    /// Run a checked plan on behalf of the request `context`, as
    /// [`McpServer::run_call`] runs a call: `cancel` stops it, the client
    /// hears what it asked for (progress per step), the person is asked
    /// once about the steps the consent policy asks about.
    async fn run_plan(
        &self,
        plan: crate::plan::Plan,
        client: &str,
        context: &RequestContext<RoleServer>,
        answers: Answers,
        cancel: &CancellationToken,
    ) -> Ran {
        let (wanted, asker) = self.updates_and_asker(context, answers);
        let ran = call_updates::forwarding(&context.peer, wanted, |watcher| {
            let side = PlanSide {
                watcher,
                asker: Some(asker.clone() as Arc<dyn ConsentAsker>),
            };
            crate::plan::run(self.calls.clone(), client, plan, cancel, side)
        })
        .await;
        match (ran, asker.take_round()) {
            (crate::plan::PlanRun::ConsentAsked, Some(round)) => Ran::AskFirst(round),
            (crate::plan::PlanRun::ConsentAsked, None) => {
                Ran::Answered(tool_error("the plan's consent question could not be asked"))
            }
            (crate::plan::PlanRun::Done { id, steps }, _) => {
                let ok = steps
                    .iter()
                    .all(|s| s.status == crate::plan::StepOutcome::Ok);
                Ran::Answered(CallToolResult::structured(
                    json!({"plan": id, "ok": ok, "steps": steps}),
                ))
            }
        }
    }

    /// Run `call` for `client` on behalf of the request `context`: `cancel`
    /// stops the call; its log level, or the session's, says
    /// which of the module's log lines the client is sent, and its progress
    /// token whether progress is; the person using
    /// the client is asked for consent where the policy says so, with
    /// `answers` the client's answers to an earlier round.
    async fn run_call(
        &self,
        call: &ToolCall,
        client: &str,
        context: &RequestContext<RoleServer>,
        answers: Answers,
        cancel: &CancellationToken,
    ) -> Ran {
        let (wanted, asker) = self.updates_and_asker(context, answers);
        let result = call_updates::forwarding(&context.peer, wanted, |watcher| {
            let asker: Arc<dyn ConsentAsker> = asker.clone();
            let side = ClientSide {
                watcher,
                asker: Some(asker),
                plan: None,
            };
            self.calls.call_from(client, call, cancel, side)
        })
        .await;
        match (&result, asker.take_round()) {
            (Err(InvokeError::ConsentAsked { .. }), Some(round)) => Ran::AskFirst(round),
            _ => Ran::Done(result),
        }
    }
}

/// A retried request's answers to the input it was asked for (MCP
/// 2026-07-28).
struct Answers {
    responses: Option<rmcp::model::InputResponses>,
    state: Option<String>,
}

/// How a call request ended: with the call's result, or asking the client
/// for input first.
enum Ran {
    Done(Result<ToolOutput, InvokeError>),
    AskFirst(rmcp::model::InputRequiredResult),
    /// A plan's answer, made whole.
    Answered(CallToolResult),
}

/// How a call of a tool that is not there (or is masked) is answered.
enum Unknown {
    /// `call_module_tool`: a tool error naming what is missing.
    AsToolError,
    /// Flat mode: the protocol's unknown tool, for this name.
    AsUnknownTool(String),
}

impl Ran {
    /// The answer to the request.
    fn response(self, unknown: Unknown) -> Result<CallToolResponse, ErrorData> {
        match (self, unknown) {
            (Ran::AskFirst(round), _) => Ok(CallToolResponse::InputRequired(round)),
            (Ran::Done(Err(InvokeError::Lookup(_))), Unknown::AsUnknownTool(name)) => {
                Err(unknown_flat_tool(&name))
            }
            (Ran::Done(result), _) => Ok(tool_result(result).into()),
            (Ran::Answered(result), _) => Ok(result.into()),
        }
    }
}

/// This process's stdin and stdout for the MCP session. MCP clients start a
/// server with pipes; a pipe is read and written without blocking, driven by
/// the runtime's reactor. (tokio's `stdin()`/`stdout()`, kept for anything
/// that is not a pipe, hand every read and write to a blocking thread: two
/// thread hand-offs per message, a large part of a call's cost.)
fn stdio_pipes() -> (
    Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
) {
    use std::os::fd::AsFd;
    use tokio::net::unix::pipe;
    // Lines the library would drop unanswered are answered with an error.
    let input: Box<dyn tokio::io::AsyncRead + Send + Unpin> = match std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Receiver::from_owned_fd)
    {
        Ok(pipe) => Box::new(stdio_input::ScreenedInput::new(pipe)),
        Err(_) => Box::new(stdio_input::ScreenedInput::new(tokio::io::stdin())),
    };
    // ...and the answers to those without a readable id carry none.
    let output: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = match std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd)
    {
        Ok(pipe) => Box::new(stdio_output::UnmarkedOutput::new(pipe)),
        Err(_) => Box::new(stdio_output::UnmarkedOutput::new(tokio::io::stdout())),
    };
    (input, output)
}

/// A module's tools with their schemas, as the model needs them to call.
fn module_schema(module: &ModuleSchema) -> Value {
    let tools: Vec<Value> = module
        .tools
        .iter()
        .map(|t| {
            let f = t.flags;
            let mut tool = json!({
                "name": t.name,
                "description": t.description,
                "inputSchema": t.input_schema,
                "annotations": {
                    "readOnlyHint": f.read_only,
                    "destructiveHint": f.destructive,
                    "idempotentHint": f.idempotent,
                    "openWorldHint": f.open_world,
                },
                "flags": f.names(),
            });
            if let Some(output) = &t.output_schema {
                tool["outputSchema"] = output.clone();
            }
            tool
        })
        .collect();
    let mut schema = json!({
        "name": module.name,
        "version": module.version,
        "description": module.description,
        "sha256": module.sha256,
        "tools": tools,
    });
    match &module.accounts {
        None => {}
        Some(Err(error)) => schema["accounts"] = json!({ "error": error }),
        Some(Ok(services)) => {
            schema["accounts"] = services
                .iter()
                .map(|s| {
                    let mut entry = json!({
                        "service": s.service,
                        "accounts": s.accounts,
                        "default": s.default,
                    });
                    if s.accounts.is_empty() {
                        entry["hint"] = json!(format!(
                            "no account yet: the owner adds one with `mcpist account add {} NAME`",
                            s.service
                        ));
                    }
                    entry
                })
                .collect();
        }
    }
    schema
}

/// JSON-RPC `-32602`, as MCP prescribes for a tool that does not exist.
fn unknown_flat_tool(name: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("unknown tool `{name}`; tools are named module.tool: see tools/list"),
        None,
    )
}

fn tool_result(result: Result<ToolOutput, InvokeError>) -> CallToolResult {
    match result {
        Ok(output) => tool_success(output),
        Err(error) => tool_error(&error.to_string()),
    }
}

fn tool_success(output: ToolOutput) -> CallToolResult {
    let mut content: Vec<ContentBlock> = output.content.into_iter().map(content_block).collect();
    // Clients that ignore structured content still get the result as text.
    if content.is_empty()
        && let Some(structured) = &output.structured
    {
        content.push(ContentBlock::text(structured.to_string()));
    }
    let mut result = CallToolResult::success(content);
    result.structured_content = output.structured;
    result
}

/// One piece of a module's result as the protocol carries it: bytes as
/// base64, links and resources as the spec's shapes.
fn content_block(item: ContentItem) -> ContentBlock {
    use base64::Engine as _;
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match item {
        ContentItem::Text(text) | ContentItem::Json(text) => ContentBlock::text(text),
        ContentItem::Image(media) => ContentBlock::image(base64(&media.data), media.mime_type),
        ContentItem::Audio(media) => ContentBlock::audio(base64(&media.data), media.mime_type),
        ContentItem::ResourceLink(link) => {
            let mut resource = rmcp::model::Resource::new(link.uri, link.name);
            resource.title = link.title;
            resource.description = link.description;
            resource.mime_type = link.mime_type;
            resource.size = link.size;
            ContentBlock::resource_link(resource)
        }
        ContentItem::Resource(embedded) => {
            let (uri, mime_type) = (embedded.uri, embedded.mime_type);
            ContentBlock::resource(match embedded.contents {
                ResourceContents::Text(text) => {
                    rmcp::model::ResourceContents::TextResourceContents {
                        uri,
                        mime_type,
                        text,
                        meta: None,
                    }
                }
                ResourceContents::Blob(bytes) => {
                    rmcp::model::ResourceContents::BlobResourceContents {
                        uri,
                        mime_type,
                        blob: base64(&bytes),
                        meta: None,
                    }
                }
            })
        }
    }
}

fn tool_error(message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_owned())])
}

impl McpServer {
    /// Over HTTP, the client the request was authenticated as; over stdio,
    /// the session's own.
    fn client_of(&self, extensions: &rmcp::model::Extensions) -> String {
        extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<http::ClientName>())
            .map_or_else(|| self.session.client.clone(), |c| c.0.clone())
    }
}

/// One module tool as a flat-mode tool. A module that acts for accounts
/// takes an extra optional `account` (when the name is free).
fn flat_tool(tool: ToolView) -> Tool {
    let mut schema = match tool.input_schema {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    if let (true, Some(Value::Object(properties))) =
        (tool.takes_account, schema.get_mut("properties"))
    {
        let selector = if properties.contains_key(FLAT_ACCOUNT) {
            FLAT_ACCOUNT_BESIDE_OWN
        } else {
            FLAT_ACCOUNT
        };
        if !properties.contains_key(selector) {
            properties.insert(
                selector.to_owned(),
                json!({"type": "string", "description": "Which of the owner's accounts to act for; omit for the default."}),
            );
        }
    }
    let f = tool.flags;
    let mut flat = Tool::new(
        format!("{}.{}", tool.module, tool.name),
        tool.description,
        Arc::new(schema),
    )
    .with_annotations(
        rmcp::model::ToolAnnotations::new()
            .read_only(f.read_only)
            .destructive(f.destructive)
            .idempotent(f.idempotent)
            .open_world(f.open_world),
    );
    if let Some(Value::Object(output)) = tool.output_schema {
        flat.output_schema = Some(Arc::new(output));
    }
    flat
}

/// The property a flat-mode tool takes its account in...
const FLAT_ACCOUNT: &str = "account";
/// ...or this one, when the tool has an `account` parameter of its own,
/// which stays the tool's.
const FLAT_ACCOUNT_BESIDE_OWN: &str = "mcpist_account";

impl ServerHandler for McpServer {
    // Logging is deprecated in MCP 2026-07-28 (SEP-2577), and rmcp marks it
    // so; the 2025 revisions have it, and their clients use it.
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = if self.session.flat {
            ServerCapabilities::builder()
                .enable_logging()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_tasks()
                .build()
        } else {
            ServerCapabilities::builder()
                .enable_logging()
                .enable_tools()
                .enable_tasks()
                .build()
        };
        if !self.session.tasks.enabled() {
            capabilities.extensions = None;
        }
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("mcpist", env!("CARGO_PKG_VERSION")))
            .with_instructions(if self.session.flat {
                FLAT_INSTRUCTIONS
            } else {
                INSTRUCTIONS
            })
    }

    /// The level below which this session's module log lines are not sent.
    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.log_level.set(request.level);
        Ok(())
    }

    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        if !self.session.flat {
            return;
        }
        // Tell this client whenever hot reload changes what it may see, for
        // as long as it is connected.
        let mut changes = self.calls.changes();
        let peer = context.peer;
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                if peer.notify_tool_list_changed().await.is_err() {
                    break;
                }
            }
        });
    }

    /// MCP 2026-07-28 carries list changes on `subscriptions/listen`
    /// streams; flat mode accepts the tools category.
    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        let mut accepted = rmcp::model::SubscriptionFilter::default();
        if self.session.flat && requested.tools_list_changed == Some(true) {
            accepted.tools_list_changed = Some(true);
        }
        Some(accepted)
    }

    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), ErrorData> {
        if context.accepted().tools_list_changed != Some(true) {
            context.cancelled().await;
            return Ok(());
        }
        let mut changes = self.calls.changes();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() || context.sink().notify_tool_list_changed().await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The stand-in for a line the stdio input refused (see
    /// `stdio_input`): answered with the error it names, under the refused
    /// request's id.
    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CustomResult, ErrorData> {
        if request.method != stdio_input::REFUSED_METHOD {
            return Err(ErrorData::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                request.method,
                None,
            ));
        }
        let params = request.params.unwrap_or_default();
        let reason = params["reason"].as_str().unwrap_or("refused").to_owned();
        let code = params["code"].as_i64().unwrap_or(-32600) as i32;
        tracing::warn!("refused a message on stdio: {reason}");
        Err(ErrorData::new(rmcp::model::ErrorCode(code), reason, None))
    }

    async fn get_task(
        &self,
        request: rmcp::model::GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetTaskResult, ErrorData> {
        let client = self.client_of(&context.extensions);
        self.session.tasks.get(&client, &request.task_id)
    }

    async fn cancel_task(
        &self,
        request: rmcp::model::CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let client = self.client_of(&context.extensions);
        self.session.tasks.cancel(&client, &request.task_id)
    }

    async fn update_task(
        &self,
        request: rmcp::model::UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let client = self.client_of(&context.extensions);
        self.session.tasks.update(&client, &request.task_id)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let client = self.client_of(&context.extensions);
        let script = self.run_script_tool(&client);
        if self.session.flat {
            let tools = self.calls.tools(&client).into_iter().map(flat_tool);
            let plan = std::iter::once(meta_tools::run_plan());
            return Ok(ListToolsResult::with_all_items(
                tools.chain(plan).chain(script).collect(),
            ));
        }
        let tools = self.tools.iter().cloned().chain(script);
        Ok(ListToolsResult::with_all_items(tools.collect()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        if self.session.flat {
            return None;
        }
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let client = self.client_of(&context.extensions);
        let answers = Answers {
            responses: request.input_responses,
            state: request.request_state,
        };
        let mut arguments = Value::Object(request.arguments.unwrap_or_default());
        if request.name == RUN_PLAN {
            return self.answer_plan(arguments, client, context, answers).await;
        }
        if request.name == RUN_SCRIPT {
            return self
                .answer_script(arguments, client, context, answers)
                .await;
        }
        if self.session.flat {
            let Some((module, tool)) = request.name.split_once('.') else {
                return Err(unknown_flat_tool(&request.name));
            };
            let selector = if self
                .calls
                .declares_argument(&client, module, tool, FLAT_ACCOUNT)
            {
                FLAT_ACCOUNT_BESIDE_OWN
            } else {
                FLAT_ACCOUNT
            };
            let account = match arguments.as_object_mut().and_then(|a| a.remove(selector)) {
                None => None,
                Some(Value::String(name)) => Some(name),
                Some(other) => {
                    // Never fall back to the default account for a selector
                    // that was given but cannot be read.
                    let problem = format!(
                        "`{selector}` must be a string naming one of the owner's accounts, not {other}; omit it for the default account"
                    );
                    let request = json!({"module": module, "tool": tool, "arguments": arguments});
                    let refused = self.calls.refuse_malformed(&client, &request, problem);
                    return Ok(tool_error(&refused.to_string()).into());
                }
            };
            let call = ToolCall {
                module: module.to_owned(),
                tool: tool.to_owned(),
                arguments,
                account,
            };
            // In flat mode a module tool is an MCP tool: one that is not
            // there, or is masked for this client, is an unknown tool,
            // answered as the protocol says (and alike for both, so a mask
            // cannot be told from an absence).
            return self
                .answer_call(
                    call,
                    client,
                    context,
                    answers,
                    Unknown::AsUnknownTool(request.name.into()),
                )
                .await;
        }
        let result = match request.name.as_ref() {
            GET_MODULE_SCHEMA => match meta_tools::parse(arguments) {
                Ok(args) => self.get_module_schema(args, &client),
                Err(message) => tool_error(&message),
            },
            CALL_MODULE_TOOL => match meta_tools::parse::<CallModuleToolArgs>(arguments.clone()) {
                Ok(args) => {
                    let call = ToolCall {
                        module: args.module,
                        tool: args.tool,
                        arguments: args
                            .arguments
                            .unwrap_or_else(crate::catalog::schema::empty_arguments),
                        account: args.account,
                    };
                    return self
                        .answer_call(call, client, context, answers, Unknown::AsToolError)
                        .await;
                }
                Err(message) => tool_error(
                    &self
                        .calls
                        .refuse_malformed(&client, &arguments, message)
                        .to_string(),
                ),
            },
            other => {
                return Err(ErrorData::invalid_params(
                    format!(
                        "unknown tool `{other}`; this server offers {GET_MODULE_SCHEMA}, {CALL_MODULE_TOOL} and {RUN_PLAN}"
                    ),
                    None,
                ));
            }
        };
        Ok(result.into())
    }
}
