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
use super::services::{GuestServices, HttpError, LogLevel, OutboundRequest};
use super::wasi_http::EgressHooks;
use super::{bindings, wit_http, wit_log};

/// Bytes of log messages a module may write per call; beyond that its log
/// calls are dropped (and the drop is logged once).
const LOG_BUDGET: usize = 64 << 10;
/// Longest single log message kept.
const LOG_MESSAGE_MAX: usize = 4 << 10;

pub(crate) struct CallState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub http_hooks: EgressHooks,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    module: String,
    log_budget: usize,
    /// Epoch ticks during which the guest was running; see `Runtime::run`.
    pub cpu_ticks: u64,
    /// What the guest may ask of the host in this call.
    pub services: Arc<dyn GuestServices>,
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
            cpu_ticks: 0,
            services,
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

impl bindings::mcpist::plugin::types::Host for CallState {}

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
        let mut message =
            crate::untrusted_text::escape(&self.services.redact(&message)).into_owned();
        if message.len() > LOG_MESSAGE_MAX {
            let mut cut = LOG_MESSAGE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [truncated]");
        }
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
