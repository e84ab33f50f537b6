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

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    dropped: usize,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct GuestOutput {
    captured: Arc<Mutex<Captured>>,
}

impl GuestOutput {
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
        captured.dropped += buf.len() - kept;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
