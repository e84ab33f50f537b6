//! The per-call store data and the host side of the module's imports.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::guest_output::GuestOutput;
use super::limits::{Limits, MemoryLimiter};
use super::{bindings, wit_http, wit_log};
use crate::egress::{CallEgress, EgressError, OutboundRequest};

/// Bytes of log messages a module may write per call; beyond that its log
/// calls are dropped (and the drop is logged once).
const LOG_BUDGET: usize = 64 << 10;
/// Longest single log message kept.
const LOG_MESSAGE_MAX: usize = 4 << 10;

pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    module: String,
    log_budget: usize,
    /// Epoch ticks during which the guest was running; see `Runtime::run`.
    pub cpu_ticks: u64,
    /// The call's outbound HTTP; `None` while a module describes itself.
    pub egress: Option<CallEgress>,
}

impl CallState {
    pub fn new(
        module: &str,
        limits: &Limits,
        stdout: GuestOutput,
        stderr: GuestOutput,
        egress: Option<CallEgress>,
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
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                max_bytes: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                refused: false,
            },
            module: module.to_owned(),
            log_budget: LOG_BUDGET,
            cpu_ticks: 0,
            egress,
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

impl bindings::mcpist::plugin::types::Host for CallState {}

impl wit_log::Host for CallState {
    fn log(&mut self, level: wit_log::Level, message: String) {
        if self.log_budget == 0 {
            return;
        }
        // A module never holds a secret, but a response it read might have
        // echoed one before redaction existed for it: hide it here too.
        let mut message = match &self.egress {
            Some(egress) => egress.redact(&message),
            None => message,
        };
        if message.len() > LOG_MESSAGE_MAX {
            let mut cut = LOG_MESSAGE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [truncated]");
        }
        self.log_budget = self.log_budget.saturating_sub(message.len());
        let module = self.module.as_str();
        match level {
            wit_log::Level::Trace => tracing::trace!(target: "mcpist::guest", module, "{message}"),
            wit_log::Level::Debug => tracing::debug!(target: "mcpist::guest", module, "{message}"),
            wit_log::Level::Info => tracing::info!(target: "mcpist::guest", module, "{message}"),
            wit_log::Level::Warn => tracing::warn!(target: "mcpist::guest", module, "{message}"),
            wit_log::Level::Error => tracing::error!(target: "mcpist::guest", module, "{message}"),
        }
        if self.log_budget == 0 {
            tracing::warn!(target: "mcpist::guest", module,
                "module logged more than {LOG_BUDGET} bytes in one call; further messages dropped");
        }
    }
}

impl wit_http::Host for CallState {
    async fn send(
        &mut self,
        request: wit_http::Request,
    ) -> Result<wit_http::Response, wit_http::Error> {
        let Some(egress) = self.egress.as_mut() else {
            return Err(wit_http::Error::Denied(
                "outbound HTTP is not available while a module describes itself".to_owned(),
            ));
        };
        let request = OutboundRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        match egress.send(request).await {
            Ok(response) => Ok(wit_http::Response {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            Err(EgressError::Denied(message)) => {
                tracing::warn!(module = %self.module, "refused outbound HTTP request: {message}");
                Err(wit_http::Error::Denied(message))
            }
            Err(EgressError::Failed(message)) => {
                tracing::info!(module = %self.module, "outbound HTTP request failed: {message}");
                Err(wit_http::Error::Failed(message))
            }
        }
    }
}
