//! What a guest may ask of the host during one call, as a trait the runtime
//! owns and the embedder implements.
//!
//! The runtime links the `http`, `log` and `progress` imports of `wit/`, and
//! `wasi:http/outgoing-handler`, to an
//! implementation of [`GuestServices`] given for each call, and never names
//! the implementation's type: the egress layer implements it with the
//! module's approvals and the call's credentials (`egress::CallEgress`), a
//! module describing itself gets [`NoServices`]. This is the seam wasmtime's
//! `wasi-http` draws with its `send_request` hook: the sandbox decides how a
//! request reaches the host, the policy decides whether it leaves.

use async_trait::async_trait;

/// A guest's HTTP request, as it asked.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// The method as the guest wrote it (`GET`, `post`, ...).
    pub method: String,
    /// The absolute URL, as the guest wrote it.
    pub url: String,
    /// Header names and values, in the guest's order.
    pub headers: Vec<(String, String)>,
    /// The request body, if any.
    pub body: Option<Vec<u8>>,
}

/// The answer handed back to the guest: the final response after redirects,
/// with the call's secrets redacted.
#[derive(Debug, Clone)]
pub struct InboundResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// Why a guest's request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Refused by policy; the message says how the owner could allow it.
    #[error("{0}")]
    Denied(String),
    /// Allowed, but it failed (DNS, connection, timeout, size limit, vault).
    #[error("{0}")]
    Failed(String),
}

/// The level of a guest's log line, as `wit/plugin.wit` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

/// How far a call has come, as the module reported it through `progress`:
/// already checked to grow, redacted and bounded.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressReport {
    /// Work done so far.
    pub done: f64,
    /// All the work, when the module knows it.
    pub total: Option<f64>,
    /// A short message.
    pub message: Option<String>,
}

/// What a guest may ask of the host during one call.
///
/// The runtime has already applied the sandbox's own bounds before calling
/// these (the per-call log budget and line length); what is left is policy.
/// Shared: a guest's `wasi:http` requests run as tasks of their own, beside
/// its log lines.
#[async_trait]
pub trait GuestServices: Send + Sync {
    /// Send the guest's HTTP request, or refuse it.
    async fn send_http(&self, request: OutboundRequest) -> Result<InboundResponse, HttpError>;

    /// Hide this call's secrets in `text` before it reaches a log.
    fn redact(&self, text: &str) -> String;

    /// The largest request body the guest may send: a `wasi:http` body is
    /// streamed, and reading stops beyond this.
    fn max_request_bytes(&self) -> usize;

    /// Record one line the guest logged (or printed), already redacted and
    /// bounded. Defaults to the host's log, attributed to the module.
    fn log(&self, module: &str, level: LogLevel, message: &str) {
        match level {
            LogLevel::Trace => tracing::trace!(target: "mcpist::guest", module, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "mcpist::guest", module, "{message}"),
            LogLevel::Info => tracing::info!(target: "mcpist::guest", module, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "mcpist::guest", module, "{message}"),
            LogLevel::Error => tracing::error!(target: "mcpist::guest", module, "{message}"),
        }
    }

    /// Pass on how far the call has come. Ignored by default: only a
    /// client that asked hears it.
    fn progress(&self, report: ProgressReport) {
        let _ = report;
    }
}

/// The services of a guest that may not reach anything: a module describing
/// itself, before anything about it is approved.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoServices;

#[async_trait]
impl GuestServices for NoServices {
    async fn send_http(&self, _: OutboundRequest) -> Result<InboundResponse, HttpError> {
        Err(HttpError::Denied(
            "outbound HTTP is not available while a module describes itself".to_owned(),
        ))
    }

    fn redact(&self, text: &str) -> String {
        text.to_owned()
    }

    fn max_request_bytes(&self) -> usize {
        0
    }
}

/// A tool call a script started, once it has ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallEnded {
    /// The number [`ScriptHost::call_tool`] gave it.
    pub call: u32,
    /// Its result as JSON text, or why it failed (written for the model).
    pub outcome: Result<String, String>,
}

/// What the script engine may ask of the host while one script runs
/// (`wit/script.wit`'s `script-host`), implemented by the embedder with
/// the host's call path. Only the script engine's instance is given one.
#[async_trait]
pub trait ScriptHost: Send + Sync {
    /// Start a tool call and return its number at once; a call that is
    /// refused ends like any other, through [`ScriptHost::next_ended`].
    fn call_tool(
        &self,
        module: String,
        tool: String,
        account: Option<String>,
        arguments: String,
    ) -> u32;

    /// The next started call to end; `None` at once when none is running.
    async fn next_ended(&self) -> Option<ToolCallEnded>;

    /// One console line of the script, already escaped and bounded.
    fn console(&self, line: String);
}
