//! The stdio output, with one rewrite: an error answering a stand-in
//! request that carries [`UNREADABLE_ID`] (a line whose id could not be
//! read; see [`super::stdio_input`]) goes out without an id, as JSON-RPC
//! and MCP prescribe for an error whose request id is unknown. rmcp cannot
//! send an error without an id from a handler, so the id it was given is
//! taken out here, at the start of the line, where rmcp's serializer puts
//! it (`{"jsonrpc":"2.0","id":...`). Every other byte passes unchanged.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;

use super::stdio_input::UNREADABLE_ID;

/// How an answer to a stand-in begins...
fn marked_start() -> Vec<u8> {
    format!("{{\"jsonrpc\":\"2.0\",\"id\":\"{UNREADABLE_ID}\",").into_bytes()
}
/// ...and what it begins with instead.
const UNMARKED_START: &[u8] = b"{\"jsonrpc\":\"2.0\",";

pub(crate) struct UnmarkedOutput<W> {
    inner: W,
    marked: Vec<u8>,
    /// The start of the current line, held while it may still be the mark.
    held: Vec<u8>,
    /// Whether the bytes being written begin a line.
    line_start: bool,
    /// Bytes accepted and not yet written to `inner`.
    pending: Vec<u8>,
    written: usize,
}

impl<W> UnmarkedOutput<W> {
    pub fn new(inner: W) -> UnmarkedOutput<W> {
        UnmarkedOutput {
            inner,
            marked: marked_start(),
            held: Vec::new(),
            line_start: true,
            pending: Vec::new(),
            written: 0,
        }
    }

    /// Pass `bytes` on, rewriting the start of marked lines.
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.line_start {
                let want = self.marked.len() - self.held.len();
                let take = want.min(bytes.len());
                self.held.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if !self.marked.starts_with(&self.held) {
                    // Not the mark: what was held is an ordinary line start
                    // (perhaps a whole short line, and the start of the next).
                    self.line_start = false;
                    let held = std::mem::take(&mut self.held);
                    self.feed(&held);
                } else if self.held.len() == self.marked.len() {
                    self.pending.extend_from_slice(UNMARKED_START);
                    self.held.clear();
                    self.line_start = false;
                }
                continue;
            }
            match memchr::memchr(b'\n', bytes) {
                Some(i) => {
                    self.pending.extend_from_slice(&bytes[..=i]);
                    bytes = &bytes[i + 1..];
                    self.line_start = true;
                }
                None => {
                    self.pending.extend_from_slice(bytes);
                    bytes = &[];
                }
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> UnmarkedOutput<W> {
    /// Write everything pending to `inner`.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for UnmarkedOutput<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        // At most one write's worth is held back: the next waits for it.
        ready!(this.drain(cx))?;
        this.feed(buf);
        // Start writing now; what does not go at once goes on the next
        // write or flush.
        if let Poll::Ready(Err(error)) = this.drain(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if !this.held.is_empty() {
            // A last line shorter than the mark, without its newline.
            let held = std::mem::take(&mut this.held);
            this.pending.extend_from_slice(&held);
        }
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn through(pieces: &[&[u8]]) -> String {
        let mut out = UnmarkedOutput::new(Vec::new());
        for piece in pieces {
            out.write_all(piece).await.unwrap();
        }
        out.shutdown().await.unwrap();
        String::from_utf8(out.inner).unwrap()
    }

    #[tokio::test]
    async fn only_the_mark_at_a_line_start_is_taken_out() {
        let marked = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":\"{UNREADABLE_ID}\",\"error\":{{\"code\":-32700,\"message\":\"Parse error\"}}}}\n"
        );
        let short = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n";
        let quoted = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{{\"text\":\"{UNREADABLE_ID}\"}}}}\n"
        );
        let expected_marked =
            "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32700,\"message\":\"Parse error\"}}\n";
        let all = format!("{short}{marked}{quoted}{short}{marked}");
        let expected = format!("{short}{expected_marked}{quoted}{short}{expected_marked}");
        // Whole, and cut into every size of piece: the result is the same.
        assert_eq!(through(&[all.as_bytes()]).await, expected);
        for size in [1, 2, 7, 30, 64] {
            let pieces: Vec<&[u8]> = all.as_bytes().chunks(size).collect();
            assert_eq!(through(&pieces).await, expected, "pieces of {size}");
        }
        // Short lines back to back, and a last line without its newline.
        assert_eq!(
            through(&[b"{}\n{}\n", b"{\"jsonrpc\""]).await,
            "{}\n{}\n{\"jsonrpc\""
        );
    }
}
