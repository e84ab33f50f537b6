//! The per-call store data and the host side of the module's imports: the
//! WASI context that grants nothing, and the `log`, `http` and `wasi:http`
//! imports, which go to the call's [`GuestServices`] after the sandbox's own
//! bounds.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::guest_output::GuestOutput;
use super::limits::{Limits, MemoryLimiter};
use super::services::ProgressReport;
use super::services::{GuestServices, HttpError, LogLevel, OutboundRequest, ScriptHost};
use super::wasi_http::EgressHooks;
use super::world::{engine, v01, v02};
use super::{wit_http, wit_log, wit_progress};

/// Bytes of log messages a module may write per call; beyond that its log
/// calls are dropped (and the drop is logged once).
const LOG_BUDGET: usize = 64 << 10;
/// Longest single log message kept.
const LOG_MESSAGE_MAX: usize = 4 << 10;
/// Progress reports a module may make per call; the protocol's client
/// hears each, so a module looping over thousands of items cannot flood it.
const PROGRESS_BUDGET: u32 = 100;
/// Longest progress message kept.
const PROGRESS_MESSAGE_MAX: usize = 256;
/// Bytes of console output a script may write; the result carries them.
const CONSOLE_BUDGET: usize = 64 << 10;
/// Longest console line kept.
const CONSOLE_LINE_MAX: usize = 4 << 10;

pub(crate) struct CallState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub http_hooks: EgressHooks,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    module: String,
    log_budget: usize,
    progress_budget: u32,
    /// The last `done` passed on: the protocol requires it to grow.
    progress_done: f64,
    /// Epoch ticks during which the guest was running; see `Runtime::run`.
    pub cpu_ticks: u64,
    /// What the guest may ask of the host in this call.
    pub services: Arc<dyn GuestServices>,
    /// Tool calls and console output: the script engine's only, none for
    /// a service module (whose linker has no `script-host` anyway).
    pub script: Option<Arc<dyn ScriptHost>>,
    /// Console bytes the script may still write.
    console_budget: usize,
}

impl CallState {
    pub fn new(
        module: &str,
        limits: &Limits,
        stdout: GuestOutput,
        stderr: GuestOutput,
        services: Arc<dyn GuestServices>,
    ) -> Self {
        // Nothing is granted: no preopened directories, no environment, no
        // arguments, no stdin, no sockets, no name lookups. Clocks and
        // randomness remain, as modules legitimately need them.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout)
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        CallState {
            wasi,
            http: WasiHttpCtx::new(),
            http_hooks: EgressHooks::new(module, services.clone()),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                max_bytes: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                refused: false,
            },
            module: module.to_owned(),
            log_budget: LOG_BUDGET,
            progress_budget: PROGRESS_BUDGET,
            progress_done: f64::NEG_INFINITY,
            cpu_ticks: 0,
            services,
            script: None,
            console_budget: CONSOLE_BUDGET,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl v01::mcpist::plugin::types::Host for CallState {}
impl v02::mcpist::plugin0_2_0::types::Host for CallState {}

impl wit_progress::Host for CallState {
    fn report(&mut self, done: f64, total: Option<f64>, message: Option<String>) {
        // Only growing, finite figures make sense to a client; the rest are
        // dropped without ending the call.
        let total = total.filter(|t| t.is_finite() && *t >= 0.0);
        if self.progress_budget == 0 || !done.is_finite() || done <= self.progress_done {
            return;
        }
        self.progress_budget -= 1;
        self.progress_done = done;
        let message = message.map(|m| bounded(&self.services.redact(&m), PROGRESS_MESSAGE_MAX));
        self.services.progress(ProgressReport {
            done,
            total,
            message,
        });
    }
}

impl wit_log::Host for CallState {
    fn log(&mut self, level: wit_log::Level, message: String) {
        if self.log_budget == 0 {
            return;
        }
        // A module never holds a secret, but a response it read might have
        // echoed one in a form redaction did not know: hide it here too.
        // Redact before cutting, so that a cut never leaves part of a secret.
        // Escape controls too: a newline in a message would forge a host
        // log line.
        let message = bounded(&self.services.redact(&message), LOG_MESSAGE_MAX);
        self.log_budget = self.log_budget.saturating_sub(message.len());
        let level = match level {
            wit_log::Level::Trace => LogLevel::Trace,
            wit_log::Level::Debug => LogLevel::Debug,
            wit_log::Level::Info => LogLevel::Info,
            wit_log::Level::Warn => LogLevel::Warn,
            wit_log::Level::Error => LogLevel::Error,
        };
        self.services.log(&self.module, level, &message);
        if self.log_budget == 0 {
            tracing::warn!(target: "mcpist::guest", module = %self.module,
                "module logged more than {LOG_BUDGET} bytes in one call; further messages dropped");
        }
    }
}

impl wit_http::Host for CallState {
    async fn send(
        &mut self,
        request: wit_http::Request,
    ) -> Result<wit_http::Response, wit_http::Error> {
        let request = OutboundRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        match self.services.send_http(request).await {
            Ok(response) => Ok(wit_http::Response {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            Err(HttpError::Denied(message)) => {
                tracing::warn!(module = %self.module, "refused outbound HTTP request: {message}");
                Err(wit_http::Error::Denied(message))
            }
            Err(HttpError::Failed(message)) => {
                tracing::info!(module = %self.module, "outbound HTTP request failed: {message}");
                Err(wit_http::Error::Failed(message))
            }
        }
    }
}

use engine::mcpist::plugin0_2_0::script_host;

impl script_host::Host for CallState {
    async fn call_tool(
        &mut self,
        module: String,
        tool: String,
        account: Option<String>,
        arguments: String,
    ) -> u32 {
        match &self.script {
            Some(host) => host.call_tool(module, tool, account, arguments),
            // Unreachable through the linkers; a number that never ends.
            None => u32::MAX,
        }
    }

    async fn next_ended(&mut self) -> Option<script_host::Ended> {
        let host = self.script.clone()?;
        let ended = host.next_ended().await?;
        Some(script_host::Ended {
            call: ended.call,
            outcome: ended.outcome,
        })
    }

    async fn console(&mut self, line: String) {
        let Some(host) = &self.script else {
            return;
        };
        if self.console_budget == 0 {
            return;
        }
        let line = bounded(&line, CONSOLE_LINE_MAX.min(self.console_budget));
        self.console_budget = self.console_budget.saturating_sub(line.len());
        host.console(line);
    }
}

/// `text` with its controls escaped (a newline would forge a log line) and
/// cut to `max` bytes.
fn bounded(text: &str, max: usize) -> String {
    let mut text = crate::untrusted_text::escape(text).into_owned();
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" [truncated]");
    }
    text
}
