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

pub mod http;
mod meta_tools;

use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

use crate::audit::{self, AuditLog, Outbound, Outcome, Record};
use crate::catalog::live::LiveCatalog;
use crate::catalog::{CallTrace, Catalog, InvokeError, ServedModule};
use crate::policy::{Mask, Masks};
use crate::runtime::{CallContext, ContentItem, ToolOutput};
use meta_tools::{CALL_MODULE_TOOL, CallModuleToolArgs, GET_MODULE_SCHEMA, GetModuleSchemaArgs};

const FLAT_INSTRUCTIONS: &str = "MCPist gives access to the owner's service modules: each tool is \
named module.tool. Tools of modules that act for the owner's accounts take an optional `account`; \
omit it for the default account.";

const INSTRUCTIONS: &str = "MCPist gives access to the owner's service modules through two tools. \
Call get_module_schema with no arguments to see the modules, then with {\"module\": NAME} to see a \
module's tools and their input schemas; then call call_module_tool with {module, tool, arguments}.";

/// Who is calling, and where their calls are recorded.
#[derive(Clone)]
pub struct Session {
    /// The client's name in the audit log (`stdio` for the local owner).
    pub client: String,
    pub audit: Arc<AuditLog>,
    /// Record arguments themselves, not only their digest.
    pub record_arguments: bool,
    /// What each client may see.
    pub masks: Arc<Masks>,
    /// List every tool directly rather than the meta-tools.
    pub flat: bool,
}

/// One MCP session's view of the host.
#[derive(Clone)]
pub struct McpServer {
    catalog: Arc<LiveCatalog>,
    tools: Arc<Vec<Tool>>,
    session: Session,
}

impl McpServer {
    pub fn new(catalog: Arc<LiveCatalog>, session: Session) -> McpServer {
        McpServer {
            catalog,
            tools: Arc::new(meta_tools::definitions()),
            session,
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

    fn get_module_schema(&self, args: GetModuleSchemaArgs, mask: &Mask) -> CallToolResult {
        let names = args.module.map(|m| m.into_vec()).unwrap_or_default();
        let catalog = self.catalog.get();
        if names.is_empty() {
            let modules: Vec<Value> = catalog
                .visible(mask)
                .map(|m| {
                    let name = &m.manifest.name;
                    json!({
                        "name": name,
                        "version": m.manifest.version,
                        "description": m.manifest.description,
                        "tools": m
                            .tools()
                            .filter(|t| mask.shows_tool(name, &t.spec))
                            .map(|t| t.spec.name.as_str())
                            .collect::<Vec<_>>(),
                    })
                })
                .collect();
            return CallToolResult::structured(json!({ "modules": modules }));
        }
        let mut modules = Vec::with_capacity(names.len());
        for name in &names {
            match catalog.module(name, mask) {
                Ok(module) => modules.push(module_schema(module, &catalog, mask)),
                Err(error) => return tool_error(&error.to_string()),
            }
        }
        CallToolResult::structured(json!({ "modules": modules }))
    }

    async fn call_module_tool(&self, args: CallModuleToolArgs, client: String) -> CallToolResult {
        let started = Instant::now();
        let arguments = args
            .arguments
            .unwrap_or_else(crate::catalog::schema::empty_arguments);
        let context = CallContext {
            account: args.account.clone(),
        };
        let mut trace = CallTrace {
            account: args.account.clone(),
            ..CallTrace::default()
        };
        // Fail closed: a tool runs only while its call can be recorded. The
        // refusal is itself an append, and the first that succeeds (space
        // freed, permissions fixed) lets calls run again.
        if let Some(problem) = self.session.audit.failure() {
            let message = format!(
                "this call was refused because the audit log cannot be written ({problem}); calls run again once it can (the owner frees disk space or fixes the file's permissions)"
            );
            let names = Names {
                module: args.module,
                tool: args.tool,
                account: args.account,
            };
            return self.refuse_before_running(names, &arguments, &message, client);
        }
        let mask = self.session.masks.of(&client);
        let result = self
            .catalog
            .get()
            .invoke_traced(
                &args.module,
                &args.tool,
                &arguments,
                &context,
                &mask,
                &mut trace,
            )
            .await;
        let elapsed_us = started.elapsed().as_micros() as u64;
        let (outcome, reason) = match &result {
            Ok(_) => {
                tracing::info!(module = %args.module, tool = %args.tool, elapsed_us, "call ok");
                (Outcome::Ok, None)
            }
            Err(error) => {
                let outcome = match error {
                    InvokeError::Module { .. } => Outcome::ToolError,
                    InvokeError::UnknownModule { .. }
                    | InvokeError::UnknownTool { .. }
                    | InvokeError::InvalidArguments { .. }
                    | InvokeError::Account { .. } => Outcome::Refused,
                    InvokeError::Call(_) | InvokeError::InvalidOutput { .. } => Outcome::Failed,
                };
                tracing::warn!(module = %args.module, tool = %args.tool, elapsed_us, outcome = outcome.label(), "{error}");
                (outcome, Some(error.to_string()))
            }
        };
        self.audit(Record {
            time: audit::now(),
            client,
            module: args.module.clone(),
            module_sha256: trace.module_sha256,
            tool: args.tool.clone(),
            account: trace.account,
            outcome,
            reason: reason.as_deref().map(audit::reason),
            duration_us: elapsed_us,
            outbound: trace
                .outbound
                .into_iter()
                .map(|r| Outbound {
                    method: r.method,
                    origin: r.origin,
                    status: r.status,
                })
                .collect(),
            arguments_sha256: audit::digest(&arguments),
            arguments: self.session.record_arguments.then(|| arguments.clone()),
        });
        match result {
            Ok(output) => tool_success(output),
            Err(error) => tool_error(&error.to_string()),
        }
    }

    /// A `call_module_tool` request too malformed to name a tool is refused,
    /// and recorded with whatever names it gave.
    fn refuse_malformed_call(
        &self,
        arguments: &Value,
        message: &str,
        client: String,
    ) -> CallToolResult {
        let name = |key: &str| arguments[key].as_str().unwrap_or("").to_owned();
        let names = Names {
            module: name("module"),
            tool: name("tool"),
            account: arguments["account"].as_str().map(str::to_owned),
        };
        self.refuse_before_running(names, arguments, message, client)
    }

    /// Refuse a call before anything ran, and record the refusal.
    fn refuse_before_running(
        &self,
        names: Names,
        arguments: &Value,
        message: &str,
        client: String,
    ) -> CallToolResult {
        self.audit(Record {
            time: audit::now(),
            client,
            module: names.module,
            module_sha256: None,
            tool: names.tool,
            account: names.account,
            outcome: Outcome::Refused,
            reason: Some(audit::reason(message)),
            duration_us: 0,
            outbound: Vec::new(),
            arguments_sha256: audit::digest(arguments),
            arguments: self.session.record_arguments.then(|| arguments.clone()),
        });
        tool_error(message)
    }

    /// Append to the audit log. A write that fails is logged as an error:
    /// the answer has been computed by then, and the client still gets it.
    fn audit(&self, record: Record) {
        if let Err(error) = self.session.audit.append(record) {
            tracing::error!("{error}");
        }
    }
}

/// What a refused call named, as far as it did.
struct Names {
    module: String,
    tool: String,
    account: Option<String>,
}

/// The accounts a module can act for, per service it uses: names only.
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
    let input: Box<dyn tokio::io::AsyncRead + Send + Unpin> = match std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Receiver::from_owned_fd)
    {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdin()),
    };
    let output: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = match std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd)
    {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdout()),
    };
    (input, output)
}

fn module_accounts(module: &ServedModule, catalog: &Catalog, mask: &Mask) -> Value {
    let services = module.policy.services();
    if services.is_empty() {
        return Value::Null;
    }
    let accounts = match catalog.broker().accounts() {
        Ok(accounts) => mask.accounts(&accounts),
        Err(error) => return json!({ "error": error.to_string() }),
    };
    services
        .into_iter()
        .map(|service| {
            let names: Vec<&str> = accounts.of(service).map(|a| a.name.as_str()).collect();
            let mut entry = json!({
                "service": service,
                "accounts": names,
                "default": accounts.default_for(service),
            });
            if names.is_empty() {
                entry["hint"] = json!(format!(
                    "no account yet: the owner adds one with `mcpist account add {service} NAME`"
                ));
            }
            entry
        })
        .collect()
}

/// A module's tools with their schemas, as the model needs them to call.
fn module_schema(module: &ServedModule, catalog: &Catalog, mask: &Mask) -> Value {
    let tools: Vec<Value> = module
        .tools()
        .filter(|t| mask.shows_tool(&module.manifest.name, &t.spec))
        .map(|t| {
            let f = t.spec.flags;
            let mut tool = json!({
                "name": t.spec.name,
                "description": t.spec.description,
                "inputSchema": t.input_schema,
                "annotations": {
                    "readOnlyHint": f.read_only,
                    "destructiveHint": f.destructive,
                    "idempotentHint": f.idempotent,
                    "openWorldHint": f.open_world,
                },
                "flags": f.names(),
            });
            if let Some(output) = &t.spec.output_schema {
                tool["outputSchema"] = output.clone();
            }
            tool
        })
        .collect();
    let mut schema = json!({
        "name": module.manifest.name,
        "version": module.manifest.version,
        "description": module.manifest.description,
        "sha256": module.sha256,
        "tools": tools,
    });
    let accounts = module_accounts(module, catalog, mask);
    if !accounts.is_null() {
        schema["accounts"] = accounts;
    }
    schema
}

fn tool_success(output: ToolOutput) -> CallToolResult {
    let mut content: Vec<ContentBlock> = output
        .content
        .into_iter()
        .map(|item| match item {
            ContentItem::Text(text) | ContentItem::Json(text) => ContentBlock::text(text),
        })
        .collect();
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

    /// Flat mode: every tool `client` may see, named `module.tool`.
    fn flat_tools(&self, client: &str) -> Vec<Tool> {
        let catalog = self.catalog.get();
        let mask = self.session.masks.of(client);
        let mut tools = Vec::new();
        for module in catalog.visible(&mask) {
            let name = &module.manifest.name;
            let accounts = !module.policy.services().is_empty();
            for tool in module.tools().filter(|t| mask.shows_tool(name, &t.spec)) {
                tools.push(flat_tool(name, tool, accounts));
            }
        }
        tools
    }
}

/// One module tool as a flat-mode tool. A module that acts for accounts
/// takes an extra optional `account` (when the name is free).
fn flat_tool(module: &str, tool: &crate::catalog::ServedTool, accounts: bool) -> Tool {
    let mut schema = match &tool.input_schema {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    if let (true, Some(Value::Object(properties))) = (accounts, schema.get_mut("properties"))
        && !properties.contains_key(FLAT_ACCOUNT)
    {
        properties.insert(
            FLAT_ACCOUNT.to_owned(),
            json!({"type": "string", "description": "Which of the owner's accounts to act for; omit for the default."}),
        );
    }
    let f = tool.spec.flags;
    let mut flat = Tool::new(
        format!("{module}.{}", tool.spec.name),
        tool.spec.description.clone(),
        Arc::new(schema),
    )
    .with_annotations(
        rmcp::model::ToolAnnotations::new()
            .read_only(f.read_only)
            .destructive(f.destructive)
            .idempotent(f.idempotent)
            .open_world(f.open_world),
    );
    if let Some(Value::Object(output)) = &tool.spec.output_schema {
        flat.output_schema = Some(Arc::new(output.clone()));
    }
    flat
}

/// The property a flat-mode tool takes its account in.
const FLAT_ACCOUNT: &str = "account";

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = if self.session.flat {
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build()
        } else {
            ServerCapabilities::builder().enable_tools().build()
        };
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("mcpist", env!("CARGO_PKG_VERSION")))
            .with_instructions(if self.session.flat {
                FLAT_INSTRUCTIONS
            } else {
                INSTRUCTIONS
            })
    }

    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        if !self.session.flat {
            return;
        }
        // Tell this client whenever hot reload changes what it may see, for
        // as long as it is connected.
        let mut changes = self.catalog.changes();
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
        let mut changes = self.catalog.changes();
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

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        if self.session.flat {
            let client = self.client_of(&context.extensions);
            return Ok(ListToolsResult::with_all_items(self.flat_tools(&client)));
        }
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
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
        let mut arguments = Value::Object(request.arguments.unwrap_or_default());
        if self.session.flat {
            let Some((module, tool)) = request.name.split_once('.') else {
                return Err(ErrorData::invalid_params(
                    format!(
                        "unknown tool `{}`; tools are named module.tool: see tools/list",
                        request.name
                    ),
                    None,
                ));
            };
            let account = arguments
                .as_object_mut()
                .and_then(|a| a.remove(FLAT_ACCOUNT))
                .and_then(|a| a.as_str().map(str::to_owned));
            let args = CallModuleToolArgs {
                module: module.to_owned(),
                tool: tool.to_owned(),
                arguments: Some(arguments),
                account,
            };
            return Ok(self.call_module_tool(args, client).await.into());
        }
        let result = match request.name.as_ref() {
            GET_MODULE_SCHEMA => match meta_tools::parse(arguments) {
                Ok(args) => self.get_module_schema(args, &self.session.masks.of(&client)),
                Err(message) => tool_error(&message),
            },
            CALL_MODULE_TOOL => match meta_tools::parse(arguments.clone()) {
                Ok(args) => self.call_module_tool(args, client).await,
                Err(message) => self.refuse_malformed_call(&arguments, &message, client),
            },
            other => {
                return Err(ErrorData::invalid_params(
                    format!(
                        "unknown tool `{other}`; this server offers {GET_MODULE_SCHEMA} and {CALL_MODULE_TOOL}"
                    ),
                    None,
                ));
            }
        };
        Ok(result.into())
    }
}
