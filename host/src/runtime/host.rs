//! The per-call store data and the host side of the module's imports.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::guest_output::GuestOutput;
use super::limits::{Limits, MemoryLimiter};
use super::{bindings, wit_http, wit_log};

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
}

impl CallState {
    pub fn new(module: &str, limits: &Limits, stdout: GuestOutput, stderr: GuestOutput) -> Self {
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
        let mut message = message;
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
        // Outbound HTTP (capability-scoped egress with credential injection)
        // is not part of this version of the host: refuse, and say so.
        let origin = origin_of(&request.url);
        tracing::warn!(module = %self.module, %origin, "refused outbound HTTP request");
        Err(wit_http::Error::Denied(format!(
            "module `{}` asked for {} {origin}: outbound HTTP is not available in this version of mcpist, so every request is refused",
            self.module, request.method
        )))
    }
}

/// `scheme://host[:port]` of a URL, for messages; never the path or query,
/// which may carry data the owner would not want in a log.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("?", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Drop any userinfo (`user:password@`).
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn origin_drops_userinfo_path_and_query() {
        assert_eq!(
            super::origin_of("https://user:pw@api.example.com:8443/a/b?token=x"),
            "https://api.example.com:8443"
        );
        assert_eq!(super::origin_of("not a url"), "?://not a url");
    }
}
