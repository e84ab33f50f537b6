//! The guest's stdout and stderr: kept in a bounded buffer during the call
//! and then written to the host's log, never to the host's own stdout (which
//! carries MCP messages in stdio mode), redacted on the way.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use super::services::{GuestServices, LogLevel};

/// Bytes kept per stream per call; the rest is counted and dropped. The guest
/// is never told, so a chatty module does not fail because of its logging.
const KEPT_BYTES: usize = 16 << 10;
/// The end of the stream is kept too, past the cap: a crashing module's last
/// words (a Python traceback, a Rust panic message) are what explain it.
const TAIL_BYTES: usize = 4 << 10;
/// Lines and bytes of the end of stderr put in a crashed call's error.
const ERROR_TAIL_LINES: usize = 12;
const ERROR_TAIL_BYTES: usize = 2 << 10;

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    dropped: usize,
    /// The last bytes written after `bytes` filled up, at most twice
    /// `TAIL_BYTES` before it is trimmed.
    tail: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct GuestOutput {
    captured: Arc<Mutex<Captured>>,
}

impl GuestOutput {
    /// The last lines the guest wrote, redacted and with controls escaped,
    /// for the error of a call that crashed: what the module's author (and
    /// the person at the client) needs to see the cause.
    pub fn last_lines(&self, services: &dyn GuestServices) -> Option<String> {
        let captured = self.captured.lock().expect("poisoned");
        let end = if captured.tail.is_empty() {
            &captured.bytes
        } else {
            &captured.tail
        };
        let text = String::from_utf8_lossy(end);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut kept: Vec<String> = Vec::new();
        let mut size = 0;
        for line in lines.iter().rev().take(ERROR_TAIL_LINES) {
            let line = crate::untrusted_text::escape(&services.redact(line)).into_owned();
            size += line.len() + 1;
            if size > ERROR_TAIL_BYTES && !kept.is_empty() {
                break;
            }
            kept.push(line);
        }
        if kept.is_empty() {
            return None;
        }
        kept.reverse();
        // One line: the error also reaches the host's log, where a newline
        // from the guest could forge a line.
        let mut joined = kept.join(" | ");
        if joined.len() > ERROR_TAIL_BYTES {
            let mut cut = joined.len() - ERROR_TAIL_BYTES;
            while !joined.is_char_boundary(cut) {
                cut += 1;
            }
            joined.replace_range(..cut, "…");
        }
        Some(joined)
    }

    /// Hand what the guest printed to `services`' log, one line at a time,
    /// redacted like its log calls.
    pub fn flush_to_log(&self, services: &dyn GuestServices, module: &str, stream: &'static str) {
        let captured = std::mem::take(&mut *self.captured.lock().expect("poisoned"));
        let text = String::from_utf8_lossy(&captured.bytes);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let line = services.redact(line);
            let line = crate::untrusted_text::escape(&line);
            services.log(module, LogLevel::Info, &format!("{stream}: {line}"));
        }
        if captured.dropped > 0 {
            tracing::warn!(target: "mcpist::guest", module, stream, dropped = captured.dropped,
                "module wrote more than {KEPT_BYTES} bytes; the rest was dropped");
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut captured = self.captured.lock().expect("poisoned");
        let room = KEPT_BYTES.saturating_sub(captured.bytes.len());
        let kept = buf.len().min(room);
        captured.bytes.extend_from_slice(&buf[..kept]);
        let rest = &buf[kept..];
        captured.dropped += rest.len();
        if !rest.is_empty() {
            let rest = &rest[rest.len().saturating_sub(TAIL_BYTES)..];
            captured.tail.extend_from_slice(rest);
            if captured.tail.len() > 2 * TAIL_BYTES {
                let excess = captured.tail.len() - TAIL_BYTES;
                captured.tail.drain(..excess);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
