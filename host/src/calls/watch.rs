//! Watching a call while it runs: a front end that can tell its client
//! what a call does as it happens (MCP's `notifications/message`) passes a
//! [`CallWatcher`], and the module's log lines reach it as well as the
//! host's log.

use std::sync::Arc;

use async_trait::async_trait;

use crate::egress::CallEgress;
use crate::runtime::{GuestServices, HttpError, InboundResponse, LogLevel, OutboundRequest};

/// Who hears about a call while it runs. Called from the sandbox's thread:
/// it must not block.
pub trait CallWatcher: Send + Sync {
    /// A line the module logged (or printed), already redacted, escaped and
    /// bounded by the runtime.
    fn log(&self, module: &str, level: LogLevel, message: &str);
}

/// A call's egress, with its log lines also told to a watcher.
pub(super) struct Watched {
    pub egress: CallEgress,
    pub watcher: Arc<dyn CallWatcher>,
}

#[async_trait]
impl GuestServices for Watched {
    async fn send_http(&self, request: OutboundRequest) -> Result<InboundResponse, HttpError> {
        self.egress.send_http(request).await
    }

    fn redact(&self, text: &str) -> String {
        self.egress.redact(text)
    }

    fn max_request_bytes(&self) -> usize {
        self.egress.max_request_bytes()
    }

    fn log(&self, module: &str, level: LogLevel, message: &str) {
        self.egress.log(module, level, message);
        self.watcher.log(module, level, message);
    }
}
