//! A module's log lines, sent to the client that made the call as MCP
//! `notifications/message`, at the level the client asked for: with
//! `logging/setLevel` for the session (MCP up to 2025-11-25), or per
//! request in `_meta` (2026-07-28). A session that asked for nothing gets
//! nothing; the host's own log keeps every line either way.
//!
//! The lines are sent from the request's own task, beside the running
//! call, so that over Streamable HTTP they travel on that request's stream
//! and arrive before its result.

// MCP 2026-07-28 deprecates logging (SEP-2577) and rmcp marks its types so;
// the 2025 revisions, which clients speak today, have it.
#![allow(deprecated)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::service::Peer;
use serde_json::json;
use tokio::sync::mpsc;

use crate::calls::CallWatcher;
use crate::runtime::LogLevel;

/// Most log notifications one call sends, so that a module logging in a
/// loop cannot flood the client.
pub const MAX_LINES_PER_CALL: usize = 100;

/// The level a session asked for with `logging/setLevel`.
#[derive(Debug, Clone, Default)]
pub(super) struct SessionLevel(Arc<Mutex<Option<LoggingLevel>>>);

impl SessionLevel {
    pub fn set(&self, level: LoggingLevel) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(level);
    }

    pub fn get(&self) -> Option<LoggingLevel> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One call's watcher: queues the lines at or above the level asked for.
struct CallLog {
    level: LoggingLevel,
    queued: AtomicUsize,
    lines: mpsc::UnboundedSender<LoggingMessageNotificationParam>,
}

impl CallWatcher for CallLog {
    fn log(&self, module: &str, level: LogLevel, message: &str) {
        let level = mcp_level(level);
        if rank(level) < rank(self.level) {
            return;
        }
        let line = match self.queued.fetch_add(1, Ordering::Relaxed) {
            n if n < MAX_LINES_PER_CALL => {
                LoggingMessageNotificationParam::new(level, json!(message)).with_logger(module)
            }
            MAX_LINES_PER_CALL => LoggingMessageNotificationParam::new(
                LoggingLevel::Warning,
                json!(format!(
                    "this call's further log lines are not sent here (at most {MAX_LINES_PER_CALL} per call); the server's log has them"
                )),
            )
            .with_logger(module),
            _ => return,
        };
        // The receiver lives as long as the call; a send after it ended has
        // no one to tell.
        let _ = self.lines.send(line);
    }
}

/// Run the call `run` starts, sending its log lines at `level` and above to
/// `peer` while it runs; with no level, just run it.
pub(super) async fn forwarding<T, F>(
    peer: &Peer<RoleServer>,
    level: Option<LoggingLevel>,
    run: impl FnOnce(Option<Arc<dyn CallWatcher>>) -> F,
) -> T
where
    F: Future<Output = T>,
{
    let Some(level) = level else {
        return run(None).await;
    };
    let (lines, mut queued) = mpsc::unbounded_channel();
    let watcher = Arc::new(CallLog {
        level,
        queued: AtomicUsize::new(0),
        lines,
    });
    let mut call = std::pin::pin!(run(Some(watcher)));
    let result = loop {
        tokio::select! {
            biased;
            result = &mut call => break result,
            Some(line) = queued.recv() => notify(peer, line).await,
        }
    };
    // Lines logged just before the end still go, ahead of the result.
    queued.close();
    while let Ok(line) = queued.try_recv() {
        notify(peer, line).await;
    }
    result
}

async fn notify(peer: &Peer<RoleServer>, line: LoggingMessageNotificationParam) {
    if let Err(error) = peer.notify_logging_message(line).await {
        tracing::debug!("a log line could not be sent to the client: {error}");
    }
}

fn mcp_level(level: LogLevel) -> LoggingLevel {
    match level {
        LogLevel::Trace | LogLevel::Debug => LoggingLevel::Debug,
        LogLevel::Info => LoggingLevel::Info,
        LogLevel::Warn => LoggingLevel::Warning,
        LogLevel::Error => LoggingLevel::Error,
    }
}

/// Severity, lowest first (RFC 5424's order, as MCP lists the levels).
fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher(
        level: LoggingLevel,
    ) -> (
        CallLog,
        mpsc::UnboundedReceiver<LoggingMessageNotificationParam>,
    ) {
        let (lines, queued) = mpsc::unbounded_channel();
        let log = CallLog {
            level,
            queued: AtomicUsize::new(0),
            lines,
        };
        (log, queued)
    }

    #[test]
    fn lines_below_the_level_stay_home_and_a_flood_is_cut() {
        let (log, mut queued) = watcher(LoggingLevel::Warning);
        log.log("m", LogLevel::Info, "chatter");
        log.log("m", LogLevel::Debug, "more");
        log.log("m", LogLevel::Warn, "careful");
        log.log("m", LogLevel::Error, "broken");
        let first = queued.try_recv().unwrap();
        assert_eq!(
            (first.level, first.data, first.logger.as_deref()),
            (LoggingLevel::Warning, json!("careful"), Some("m"))
        );
        assert_eq!(queued.try_recv().unwrap().level, LoggingLevel::Error);
        assert!(queued.try_recv().is_err());

        let (log, mut queued) = watcher(LoggingLevel::Debug);
        for i in 0..MAX_LINES_PER_CALL + 50 {
            log.log("m", LogLevel::Info, &format!("line {i}"));
        }
        let sent: Vec<_> = std::iter::from_fn(|| queued.try_recv().ok()).collect();
        assert_eq!(sent.len(), MAX_LINES_PER_CALL + 1);
        assert!(
            sent[MAX_LINES_PER_CALL]
                .data
                .as_str()
                .unwrap()
                .contains("not sent here")
        );
    }
}
