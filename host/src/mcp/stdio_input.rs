//! The stdio input, screened line by line before the MCP library parses it.
//!
//! The library drops a line it cannot parse, silently: a line that is not
//! JSON, a message nested deeper than the JSON parser allows, or one longer
//! than its 16 MiB line limit, gets no answer, and the client waits for one
//! forever. Here such a line is replaced by a request the server answers
//! with an error naming the problem (`-32700` for a line that does not
//! parse), under the original request's `id` when one can be found at the
//! top level of the line. Without one, the stand-in carries
//! [`UNREADABLE_ID`], which [`crate::mcp::stdio_output`] takes out of the
//! answer: an error for a request whose id cannot be read has none.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

/// Longest line passed on; the same as the library's own limit.
pub const MAX_LINE_BYTES: usize = 16 << 20;
/// Deepest nesting passed on, below the JSON parser's limit of 128.
pub const MAX_DEPTH: usize = 100;
/// The method of the replacement request; the server answers it with an
/// error carrying `params.reason` (and `params.code`).
pub const REFUSED_METHOD: &str = "mcpist/refused";
/// The id of a stand-in for a line without a readable id.
pub const UNREADABLE_ID: &str = "mcpist:unreadable-id";

/// How much of an oversized line is kept to find its `id`.
const KEPT_PREFIX: usize = 64 << 10;
const READ_CHUNK: usize = 64 << 10;

pub(crate) struct ScreenedInput<R> {
    inner: R,
    scratch: Box<[u8]>,
    /// The line being read (or, once it passed the limit, its prefix).
    line: Vec<u8>,
    oversized: bool,
    /// Screened bytes not yet read.
    ready: Vec<u8>,
    ready_at: usize,
    eof: bool,
}

impl<R> ScreenedInput<R> {
    pub fn new(inner: R) -> ScreenedInput<R> {
        ScreenedInput {
            inner,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            line: Vec::new(),
            oversized: false,
            ready: Vec::new(),
            ready_at: 0,
            eof: false,
        }
    }

    /// Split `bytes` into lines, screening each complete one into `ready`.
    fn take(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let newline = memchr::memchr(b'\n', bytes);
            let end = newline.map_or(bytes.len(), |i| i + 1);
            let (segment, rest) = bytes.split_at(end);
            bytes = rest;
            if !self.oversized && self.line.len() + segment.len() > MAX_LINE_BYTES {
                self.oversized = true;
                self.line.truncate(KEPT_PREFIX);
            }
            if self.oversized {
                let room = KEPT_PREFIX.saturating_sub(self.line.len());
                self.line
                    .extend_from_slice(&segment[..room.min(segment.len())]);
            } else {
                self.line.extend_from_slice(segment);
            }
            if newline.is_some() {
                self.finish_line();
            }
        }
    }

    fn finish_line(&mut self) {
        let scan = scan(&self.line);
        if self.oversized {
            self.ready.extend_from_slice(&refusal(
                scan.id.as_deref(),
                -32600,
                &format!(
                    "the message is larger than {MAX_LINE_BYTES} bytes, the most this server reads"
                ),
            ));
        } else if scan.depth > MAX_DEPTH {
            self.ready.extend_from_slice(&refusal(
                scan.id.as_deref(),
                -32700,
                &format!("the message is nested deeper than {MAX_DEPTH} levels, the most this server parses"),
            ));
        } else if let Err(error) = parse_check(&self.line) {
            self.ready.extend_from_slice(&refusal(
                scan.id.as_deref(),
                -32700,
                &format!("Parse error: the message is not JSON ({error})"),
            ));
        } else {
            self.ready.extend_from_slice(&self.line);
        }
        self.line.clear();
        self.oversized = false;
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ScreenedInput<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready_at < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.ready_at);
                buf.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                return Poll::Ready(Ok(()));
            }
            this.ready.clear();
            this.ready_at = 0;
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk))?;
            let filled = chunk.filled().len();
            if filled == 0 {
                // A last line without a newline is screened like the others.
                this.eof = true;
                if !this.line.is_empty() {
                    this.finish_line();
                }
                continue;
            }
            let scratch = std::mem::take(&mut this.scratch);
            this.take(&scratch[..filled]);
            this.scratch = scratch;
        }
    }
}

/// Everything `input` becomes once screened, at once (for the fuzz
/// targets; the server reads through [`ScreenedInput`]).
#[cfg(any(test, feature = "fuzzing"))]
pub fn screen_all(input: &[u8]) -> Vec<u8> {
    let mut screened = ScreenedInput::new(());
    screened.take(input);
    if !screened.line.is_empty() {
        screened.finish_line();
    }
    screened.ready
}

/// The deepest nesting in `line` (outside strings).
#[cfg(any(test, feature = "fuzzing"))]
pub fn depth(line: &[u8]) -> usize {
    scan(line).depth
}

/// What a quick pass over a line finds: how deep it nests, and its
/// top-level `id` (the raw JSON of a number or string), if any.
#[derive(Debug, Default, PartialEq)]
struct Scan {
    depth: usize,
    id: Option<String>,
}

fn scan(line: &[u8]) -> Scan {
    let mut found = Scan::default();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut string_start = 0;
    // The last string closed at depth 1, and where it ended: a key if a
    // `:` follows.
    let mut last_key: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                if depth == 1 {
                    last_key = Some((string_start, i));
                }
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                string_start = i + 1;
            }
            b'{' | b'[' => {
                depth += 1;
                found.depth = found.depth.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b':' if depth == 1 => {
                if let Some((start, end)) = last_key.take()
                    && &line[start..end] == b"id"
                    && found.id.is_none()
                {
                    found.id = id_value(&line[i + 1..]);
                }
            }
            b',' => last_key = None,
            _ => {}
        }
        i += 1;
    }
    found
}

/// A JSON-RPC id at the start of `rest`: a number or a short string,
/// returned as its JSON text.
fn id_value(rest: &[u8]) -> Option<String> {
    let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &rest[start..];
    let end = match rest.first()? {
        b'"' => {
            let close = rest[1..].iter().position(|b| *b == b'"' || *b == b'\\')?;
            (rest[1 + close] == b'"').then_some(close + 2)?
        }
        b'-' | b'0'..=b'9' => rest
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'-'))
            .unwrap_or(rest.len()),
        _ => return None,
    };
    (end <= 256).then(|| String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Whether a line parses as JSON; a blank line passes (the library skips
/// it).
fn parse_check(line: &[u8]) -> Result<(), serde_json::Error> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(line).map(|_| ())
}

/// The request that stands in for a refused line.
fn refusal(id: Option<&str>, code: i32, reason: &str) -> Vec<u8> {
    let params = serde_json::json!({ "reason": reason, "code": code });
    let unreadable = format!("\"{UNREADABLE_ID}\"");
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"{REFUSED_METHOD}\",\"params\":{params}}}\n",
        id.unwrap_or(&unreadable)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn the_top_level_id_and_depth_are_found() {
        let scan_of = |s: &str| scan(s.as_bytes());
        assert_eq!(
            scan_of(r#"{"jsonrpc":"2.0","id":7,"method":"x","params":{"id":"inner"}}"#),
            Scan {
                depth: 2,
                id: Some("7".into())
            }
        );
        assert_eq!(
            scan_of(r#"{"params":{"a":[[["id"]]]}, "id" : "abc-1"}"#).id,
            Some("\"abc-1\"".into())
        );
        assert_eq!(scan_of(r#"{"method":"id","params":{}}"#).id, None);
        assert_eq!(scan_of(r#"{"x":"a\"id\":9"}"#).id, None);
        let deep = format!("{{\"id\":3,\"p\":{}{}}}", "[".repeat(500), "]".repeat(500));
        assert_eq!(
            scan_of(&deep),
            Scan {
                depth: 501,
                id: Some("3".into())
            }
        );
    }

    #[tokio::test]
    async fn refused_lines_are_replaced_and_the_rest_passes_unchanged() {
        let deep = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{}{}}}\n",
            "[".repeat(300),
            "]".repeat(300)
        );
        let big = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":\"b\",\"method\":\"x\",\"params\":\"{}\"}}\n",
            "x".repeat(MAX_LINE_BYTES)
        );
        let plain = "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\"}\n";
        let input =
            format!("{plain}{deep}{big}{plain}\n{{\"id\":7,\"method\n\"no newline at the end");
        let mut screened = ScreenedInput::new(input.as_bytes());
        let mut out = String::new();
        screened.read_to_string(&mut out).await.unwrap();
        let lines: Vec<&str> = out.split_inclusive('\n').collect();
        assert_eq!(lines.len(), 7, "{out:.300}");
        assert_eq!(lines[0], plain);
        let refused: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(refused["id"], 5);
        assert_eq!(refused["method"], REFUSED_METHOD);
        assert!(
            refused["params"]["reason"]
                .as_str()
                .unwrap()
                .contains("nested deeper")
        );
        let refused: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(refused["id"], "b");
        assert!(
            refused["params"]["reason"]
                .as_str()
                .unwrap()
                .contains("larger than")
        );
        assert_eq!(lines[3], plain);
        assert_eq!(lines[4], "\n", "a blank line is the library's to skip");
        let refused: serde_json::Value = serde_json::from_str(lines[5]).unwrap();
        assert_eq!(refused["id"], 7);
        assert_eq!(refused["params"]["code"], -32700);
        let refused: serde_json::Value = serde_json::from_str(lines[6]).unwrap();
        assert_eq!(refused["id"], UNREADABLE_ID, "no id to answer under");
        assert!(
            refused["params"]["reason"]
                .as_str()
                .unwrap()
                .starts_with("Parse error: the message is not JSON")
        );
    }

    /// Found by the `mcp_message` fuzz target: the last line, without its
    /// newline, went through unscreened.
    #[tokio::test]
    async fn a_last_line_without_a_newline_is_screened_too() {
        let deep = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{}",
            "[".repeat(300)
        );
        let mut out = String::new();
        ScreenedInput::new(deep.as_bytes())
            .read_to_string(&mut out)
            .await
            .unwrap();
        let refused: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(refused["id"], 9);
        assert_eq!(refused["method"], REFUSED_METHOD);
        assert_eq!(String::from_utf8(screen_all(deep.as_bytes())).unwrap(), out);
    }
}
