//! What the client that made a call hears while it runs:
//!
//! - the module's log lines, as MCP `notifications/message`, at the level
//!   the client asked for: with `logging/setLevel` for the session (MCP up
//!   to 2025-11-25), or per request in `_meta` (2026-07-28). A session that
//!   asked for nothing gets nothing; the host's own log keeps every line
//!   either way;
//! - progress, as `notifications/progress`, when the request carries a
//!   `progressToken`: what the module reports through its `progress` import
//!   (0.2.0), or else one notification per request the module's call has
//!   had answered (method, origin and status: never a path), counting up.
//!   Once a module reports its own figures, the request count stops: two
//!   scales in one progress bar would mislead. The protocol requires each
//!   figure to be larger than the last; one that is not is dropped.
//!
//! They are sent from the request's own task, beside the running call, so
//! that over Streamable HTTP they travel on that request's stream and
//! arrive before its result.

// MCP 2026-07-28 deprecates logging (SEP-2577) and rmcp marks its types so;
// the 2025 revisions, which clients speak today, have it.
#![allow(deprecated)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{
    LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken,
};
use rmcp::service::Peer;
use serde_json::json;
use tokio::sync::mpsc;

use crate::calls::{CallWatcher, RequestResult};
use crate::runtime::{LogLevel, ProgressReport};

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

/// What the client asked to hear about one call.
#[derive(Debug, Clone, Default)]
pub(super) struct Wanted {
    /// Log lines at this level and above.
    pub level: Option<LoggingLevel>,
    /// Progress, under this token.
    pub progress: Option<ProgressToken>,
}

/// One update for the client.
enum Update {
    Log(LoggingMessageNotificationParam),
    Progress(ProgressNotificationParam),
}

/// One call's watcher: queues what the client asked to hear.
struct CallUpdates {
    wanted: Wanted,
    lines: AtomicUsize,
    requests: AtomicUsize,
    progress: Mutex<ProgressSent>,
    updates: mpsc::UnboundedSender<Update>,
}

/// The progress told so far.
#[derive(Debug, Default)]
struct ProgressSent {
    /// The last figure sent: the next must be larger.
    last: Option<f64>,
    /// The module reports its own progress: requests no longer count.
    by_module: bool,
}

impl CallUpdates {
    fn new(wanted: Wanted, updates: mpsc::UnboundedSender<Update>) -> CallUpdates {
        CallUpdates {
            wanted,
            lines: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            progress: Mutex::default(),
            updates,
        }
    }

    /// Queue a progress figure if it grows, from the module's reports only
    /// once there has been one.
    fn send_progress(
        &self,
        from_module: bool,
        make: impl FnOnce(&ProgressToken) -> ProgressNotificationParam,
    ) {
        let Some(token) = &self.wanted.progress else {
            return;
        };
        let mut sent = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        if sent.by_module && !from_module {
            return;
        }
        let progress = make(token);
        if sent.last.is_some_and(|last| progress.progress <= last) {
            return;
        }
        sent.by_module |= from_module;
        sent.last = Some(progress.progress);
        let _ = self.updates.send(Update::Progress(progress));
    }
}

impl CallWatcher for CallUpdates {
    fn log(&self, module: &str, level: LogLevel, message: &str) {
        let Some(wanted) = self.wanted.level else {
            return;
        };
        let level = mcp_level(level);
        if rank(level) < rank(wanted) {
            return;
        }
        let line = match self.lines.fetch_add(1, Ordering::Relaxed) {
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
        let _ = self.updates.send(Update::Log(line));
    }

    fn request_done(&self, method: &str, origin: &str, result: RequestResult) {
        if self.wanted.progress.is_none() {
            return;
        }
        // As many as the call may send ([http] max_requests_per_call).
        let done = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let outcome = match result {
            RequestResult::Answered(status) => format!("HTTP {status}"),
            RequestResult::Refused => "refused by the host's rules".to_owned(),
            RequestResult::Failed => "failed".to_owned(),
        };
        self.send_progress(false, |token| {
            ProgressNotificationParam::new(token.clone(), done as f64)
                .with_message(format!("request {done}: {method} {origin}: {outcome}"))
        });
    }

    fn progress(&self, report: &ProgressReport) {
        self.send_progress(true, |token| {
            let mut progress = ProgressNotificationParam::new(token.clone(), report.done);
            progress.total = report.total;
            progress.message = report.message.clone();
            progress
        });
    }
}

/// Run the call `run` starts, sending `peer` what it `wanted` to hear while
/// it runs; wanting nothing, just run it.
pub(super) async fn forwarding<T, F>(
    peer: &Peer<RoleServer>,
    wanted: Wanted,
    run: impl FnOnce(Option<Arc<dyn CallWatcher>>) -> F,
) -> T
where
    F: Future<Output = T>,
{
    if wanted.level.is_none() && wanted.progress.is_none() {
        return run(None).await;
    }
    let (updates, mut queued) = mpsc::unbounded_channel();
    let watcher = Arc::new(CallUpdates::new(wanted, updates));
    let mut call = std::pin::pin!(run(Some(watcher)));
    let result = loop {
        tokio::select! {
            biased;
            result = &mut call => break result,
            Some(update) = queued.recv() => send(peer, update).await,
        }
    };
    // What came just before the end still goes, ahead of the result.
    queued.close();
    while let Ok(update) = queued.try_recv() {
        send(peer, update).await;
    }
    result
}

async fn send(peer: &Peer<RoleServer>, update: Update) {
    let sent = match update {
        Update::Log(line) => peer.notify_logging_message(line).await,
        Update::Progress(progress) => peer.notify_progress(progress).await,
    };
    if let Err(error) = sent {
        tracing::debug!("an update could not be sent to the client: {error}");
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

    fn watcher(wanted: Wanted) -> (CallUpdates, mpsc::UnboundedReceiver<Update>) {
        let (updates, queued) = mpsc::unbounded_channel();
        (CallUpdates::new(wanted, updates), queued)
    }

    fn logged(update: Update) -> LoggingMessageNotificationParam {
        match update {
            Update::Log(line) => line,
            Update::Progress(p) => panic!("expected a log line, got progress {p:?}"),
        }
    }

    fn at(level: LoggingLevel) -> Wanted {
        Wanted {
            level: Some(level),
            progress: None,
        }
    }

    #[test]
    fn lines_below_the_level_stay_home_and_a_flood_is_cut() {
        let (log, mut queued) = watcher(at(LoggingLevel::Warning));
        log.log("m", LogLevel::Info, "chatter");
        log.log("m", LogLevel::Debug, "more");
        log.log("m", LogLevel::Warn, "careful");
        log.log("m", LogLevel::Error, "broken");
        let first = logged(queued.try_recv().unwrap());
        assert_eq!(
            (first.level, first.data, first.logger.as_deref()),
            (LoggingLevel::Warning, json!("careful"), Some("m"))
        );
        assert_eq!(
            logged(queued.try_recv().unwrap()).level,
            LoggingLevel::Error
        );
        assert!(queued.try_recv().is_err());

        let (log, mut queued) = watcher(at(LoggingLevel::Debug));
        for i in 0..MAX_LINES_PER_CALL + 50 {
            log.log("m", LogLevel::Info, &format!("line {i}"));
        }
        let sent: Vec<_> = std::iter::from_fn(|| queued.try_recv().ok().map(logged)).collect();
        assert_eq!(sent.len(), MAX_LINES_PER_CALL + 1);
        assert!(
            sent[MAX_LINES_PER_CALL]
                .data
                .as_str()
                .unwrap()
                .contains("not sent here")
        );
    }

    #[test]
    fn progress_counts_the_answered_requests_and_names_no_path() {
        let token = ProgressToken(rmcp::model::NumberOrString::String("t".into()));
        let (watcher, mut queued) = watcher(Wanted {
            level: None,
            progress: Some(token.clone()),
        });
        // Not asked for: no log lines.
        watcher.log("m", LogLevel::Error, "broken");
        watcher.request_done(
            "GET",
            "https://api.github.com",
            RequestResult::Answered(200),
        );
        watcher.request_done("POST", "https://api.github.com", RequestResult::Refused);
        watcher.request_done("GET", "https://example.com", RequestResult::Failed);
        let sent: Vec<ProgressNotificationParam> = std::iter::from_fn(|| queued.try_recv().ok())
            .map(|update| match update {
                Update::Progress(p) => p,
                Update::Log(line) => panic!("expected progress, got {line:?}"),
            })
            .collect();
        let seen: Vec<(f64, &str)> = sent
            .iter()
            .map(|p| (p.progress, p.message.as_deref().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [
                (1.0, "request 1: GET https://api.github.com: HTTP 200"),
                (
                    2.0,
                    "request 2: POST https://api.github.com: refused by the host's rules"
                ),
                (3.0, "request 3: GET https://example.com: failed"),
            ]
        );
        assert!(sent.iter().all(|p| p.progress_token == token));
    }

    #[test]
    fn a_modules_own_progress_takes_over_and_only_grows() {
        let token = ProgressToken(rmcp::model::NumberOrString::Number(7));
        let (watcher, mut queued) = watcher(Wanted {
            level: None,
            progress: Some(token),
        });
        let report = |done: f64, message: &str| ProgressReport {
            done,
            total: Some(10.0),
            message: Some(message.to_owned()),
        };
        watcher.request_done("GET", "https://a.example", RequestResult::Answered(200));
        // Not above the request count already sent: dropped.
        watcher.progress(&report(1.0, "page 1"));
        watcher.progress(&report(4.0, "page 4"));
        // The module's figures rule now: requests no longer count.
        watcher.request_done("GET", "https://a.example", RequestResult::Answered(200));
        watcher.progress(&report(4.0, "page 4 again"));
        watcher.progress(&report(10.0, "done"));
        let seen: Vec<(f64, Option<f64>, String)> = std::iter::from_fn(|| queued.try_recv().ok())
            .map(|update| match update {
                Update::Progress(p) => (p.progress, p.total, p.message.unwrap()),
                Update::Log(line) => panic!("expected progress, got {line:?}"),
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    1.0,
                    None,
                    "request 1: GET https://a.example: HTTP 200".to_owned()
                ),
                (4.0, Some(10.0), "page 4".to_owned()),
                (10.0, Some(10.0), "done".to_owned()),
            ]
        );
    }
}
