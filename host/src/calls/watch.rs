//! Watching a call while it runs: a front end that can tell its client
//! what a call does as it happens (MCP's `notifications/message` and
//! `notifications/progress`) passes a [`CallWatcher`], and the module's log
//! lines, its progress reports and the answers to its requests reach it as
//! well as the host's log and the audit.

use std::sync::Arc;

use async_trait::async_trait;

use crate::egress::CallEgress;
use crate::runtime::{
    GuestServices, HttpError, InboundResponse, LogLevel, OutboundRequest, ProgressReport,
};

/// Who hears about a call while it runs. Called from the sandbox's thread:
/// it must not block.
pub trait CallWatcher: Send + Sync {
    /// A line the module logged (or printed), already redacted, escaped and
    /// bounded by the runtime.
    fn log(&self, module: &str, level: LogLevel, message: &str);

    /// A request the module sent, to `origin` (never its path), has been
    /// answered or has failed.
    fn request_done(&self, method: &str, origin: &str, result: RequestResult);

    /// The module reported how far the call has come (`done` already
    /// checked to grow, the message redacted and bounded).
    fn progress(&self, report: &ProgressReport);
}

/// How a request the module sent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    /// The upstream answered with this status.
    Answered(u16),
    /// The host's rules refused it.
    Refused,
    /// It failed on the way (DNS, connection, timeout, a limit).
    Failed,
}

/// A call's egress, with its log lines also told to a watcher.
pub(super) struct Watched {
    pub egress: CallEgress,
    pub watcher: Arc<dyn CallWatcher>,
}

#[async_trait]
impl GuestServices for Watched {
    async fn send_http(&self, request: OutboundRequest) -> Result<InboundResponse, HttpError> {
        let method = request.method.to_ascii_uppercase();
        // The origin only: a path or query may carry what the audit leaves
        // out too, and the origin never carries userinfo.
        let origin = url::Url::parse(&request.url)
            .map(|url| url.origin().ascii_serialization())
            .unwrap_or_else(|_| "an address that is not a URL".to_owned());
        let answer = self.egress.send_http(request).await;
        let result = match &answer {
            Ok(response) => RequestResult::Answered(response.status),
            Err(HttpError::Denied(_)) => RequestResult::Refused,
            Err(HttpError::Failed(_)) => RequestResult::Failed,
        };
        self.watcher.request_done(&method, &origin, result);
        answer
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

    fn progress(&self, report: ProgressReport) {
        self.watcher.progress(&report);
    }
}
