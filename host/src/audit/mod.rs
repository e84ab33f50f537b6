//! The audit log: one JSON line per `call_module_tool`, whatever its outcome
//! (done, failed, or refused before anything ran).
//!
//! Each line ends with `"prev"` (the previous line's hash) and `"hash"` (the
//! sha256 of the line up to and without its `hash` member), so that
//! `mcpist audit verify` detects a line that was edited, removed, inserted or
//! reordered, and says which. A line is written with a single `write` on a
//! file opened for appending, before the call's answer is sent, so a crash
//! of mcpist loses no line; when it reaches the disk is `fsync`'s choice
//! (`flush.rs`): within 10 ms (`interval`, the default), before the answer
//! (`always`, one flush shared by the calls that end together), or when the
//! OS decides (`never`). A crash can leave at most a torn last line:
//! `verify` reports it as such, and the next `open` cuts it off (with a
//! warning) before appending.
//!
//! What the chain cannot show: someone who rewrites the file from some line
//! to its end, recomputing every hash after it, or who deletes lines at the
//! very end. Keeping a copy of `audit verify`'s last hash elsewhere (it
//! prints it) makes both visible.

mod flush;
pub mod read;
mod verify;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use verify::{Problem, Report, verify};

/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The first window `open` reads from the end of the file to find the last
/// line; it grows until the line fits. Lines are far shorter: names,
/// reasons and arguments are bounded, and a call makes at most a few dozen
/// requests.
const TAIL_WINDOW: u64 = 64 * 1024;

/// Refusal and error texts are kept to this many characters.
pub const MAX_REASON_CHARS: usize = 2000;

/// Client-supplied names (client, module, tool, account) longer than this
/// are recorded as a prefix and their sha256: valid names are at most 64
/// characters, and one call must not be able to write a line so long that
/// every later reader struggles with it.
pub const MAX_NAME_BYTES: usize = 128;

/// Recorded arguments (`[audit] arguments = true`) whose canonical JSON is
/// longer than this are recorded as a prefix; `arguments_sha256` always
/// covers them whole.
pub const MAX_ARGUMENTS_BYTES: usize = 16 * 1024;

/// When a line is flushed to the disk. Every line is written before the
/// call's answer is sent, so none is lost when mcpist crashes; this is what
/// a power loss (or a crash of the machine) can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// Flush what was written every 10 ms, or at once when 64 lines wait,
    /// without making calls wait (a power loss loses at most the last
    /// 10 ms of lines).
    #[default]
    Interval,
    /// Flush every line to the disk before answering (survives power loss);
    /// calls that end together share one flush.
    Always,
    /// Leave flushing to the operating system (survives a crash of mcpist,
    /// not of the machine).
    Never,
}

/// Why the log could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the variants and fields are named by their messages
pub enum AuditError {
    #[error("cannot open the audit log {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the audit log {path} ends with a line that is not an audit record ({reason}); run `mcpist audit verify`, then move the file aside to start a new log"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error("cannot write the audit log {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The tool ran and answered.
    Ok,
    /// The tool ran and reported an error of its own (bad input, upstream).
    ToolError,
    /// The host refused before running anything (unknown name, bad
    /// arguments, no such account).
    Refused,
    /// The sandbox stopped the call (a limit, a crash, a bad result).
    Failed,
    /// The client cancelled the call (or went away) and it was stopped;
    /// what it sent before that is in `outbound`.
    Cancelled,
    /// The person at the client was asked for consent and did not give
    /// it (declined, dismissed, or no answer in time); nothing ran.
    Declined,
    /// Consent was asked for in a round of its own (MCP 2026-07-28);
    /// nothing ran, and the client's answer comes as a new call.
    ConsentAsked,
}

impl Outcome {
    /// The name the log and `audit tail` use.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Declined => "declined",
            Outcome::ConsentAsked => "consent_asked",
        }
    }
}

/// One HTTP request a call made: never its headers or body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    /// The method sent.
    pub method: String,
    /// The origin, as the module addressed it.
    pub origin: String,
    /// `None` when no answer came (refused by policy, or a transport error).
    pub status: Option<u16>,
}

/// What is recorded of one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339, UTC, microseconds.
    pub time: String,
    /// The client that called (`stdio` for the local owner).
    pub client: String,
    /// The module named by the call.
    pub module: String,
    /// The sha256 of the module file that ran, when the module is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_sha256: Option<String>,
    /// The tool named by the call.
    pub tool: String,
    /// The account it acted for (or named, if it never got that far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it did not end `ok`, cut to [`MAX_REASON_CHARS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long it ran, in microseconds.
    pub duration_us: u64,
    /// The requests it sent.
    #[serde(default)]
    pub outbound: Vec<Outbound>,
    /// For a destructive call (or one a consent rule names) that ran:
    /// `accepted` when the person at the client was asked and agreed,
    /// `allowed` when the owner's consent policy let it run unasked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<String>,
    /// The plan (`run_plan`) the call was a step of, by its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// sha256 of the arguments as canonical JSON.
    pub arguments_sha256: String,
    /// The arguments themselves, only when `[audit] arguments = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<serde_json::Value>,
}

/// A record as it sits in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Its position in the chain, from 1.
    pub seq: u64,
    /// What it records.
    #[serde(flatten)]
    pub record: Record,
    /// The previous line's hash ([`GENESIS`] for the first).
    pub prev: String,
}

/// The append-only writer. One per process; appends are serialised.
pub struct AuditLog {
    path: PathBuf,
    fsync: Fsync,
    state: Mutex<Chain>,
    /// Flushes lines to the disk (`always` and `interval`).
    flusher: Option<std::sync::Arc<flush::Flusher>>,
    /// Its thread (`interval`), stopped after a last flush when the log is
    /// dropped.
    flush_thread: Option<std::thread::JoinHandle<()>>,
}

struct Chain {
    file: File,
    /// seq and hash of the last line written.
    seq: u64,
    prev: String,
    /// The file's length after the last complete line.
    len: u64,
    /// Why the last append failed, until one succeeds again.
    failure: Option<String>,
}

impl AuditLog {
    /// Open (or create) the log and find where its chain ends. A torn last
    /// line, left by a crash mid-write, is cut off; a last line that is
    /// complete but not a record is refused, since appending after it would
    /// hide it.
    pub fn open(path: &Path, fsync: Fsync) -> Result<AuditLog, AuditError> {
        let open_error = |source| AuditError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::atomic_file::create_private_dir(parent).map_err(open_error)?;
        }
        // The trail is the owner's: other local users may not read it.
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .mode(0o600)
                .open(path)
                .map_err(open_error)?
        };
        let len = file.metadata().map_err(open_error)?.len();
        let (complete, last) = last_line(&mut file, len).map_err(open_error)?;
        // Everything after the last newline is a torn line.
        if complete < len {
            tracing::warn!(
                path = %path.display(),
                bytes = len - complete,
                "the audit log ends with a torn line (mcpist stopped while writing it); cutting it off"
            );
            file.set_len(complete).map_err(open_error)?;
        }
        let (seq, prev) = match last {
            None => (0, GENESIS.to_owned()),
            Some(line) => {
                let text = std::str::from_utf8(&line).map_err(|_| AuditError::Damaged {
                    path: path.to_owned(),
                    reason: "not UTF-8".to_owned(),
                })?;
                let parsed = verify::parse_line(text).map_err(|reason| AuditError::Damaged {
                    path: path.to_owned(),
                    reason,
                })?;
                (parsed.line.seq, parsed.hash)
            }
        };
        let flusher = match fsync {
            Fsync::Never => None,
            Fsync::Always | Fsync::Interval => Some(flush::Flusher::new(
                file.try_clone().map_err(open_error)?,
                seq,
            )),
        };
        let flush_thread = flusher
            .as_ref()
            .filter(|_| fsync == Fsync::Interval)
            .map(flush::Flusher::start_interval);
        Ok(AuditLog {
            path: path.to_owned(),
            fsync,
            flusher,
            flush_thread,
            state: Mutex::new(Chain {
                len: file.metadata().map_err(open_error)?.len(),
                file,
                seq,
                prev,
                failure: None,
            }),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record and return its sequence number.
    pub fn append(&self, record: Record) -> Result<u64, AuditError> {
        let write_error = |source| AuditError::Write {
            path: self.path.clone(),
            source,
        };
        let record = bounded(record);
        let mut chain = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let line = Line {
            seq: chain.seq + 1,
            record,
            prev: chain.prev.clone(),
        };
        let (text, hash) = seal(&line);
        let written = chain.file.write_all(text.as_bytes());
        if let Err(source) = written {
            // Cut what part of the line got out, so that the next append
            // continues the chain instead of following a torn line.
            let len = chain.len;
            if let Err(cut) = chain.file.set_len(len) {
                tracing::error!(path = %self.path.display(), "cannot cut a partly written audit line: {cut}");
            }
            chain.failure = Some(source.to_string());
            return Err(write_error(source));
        }
        chain.len += text.len() as u64;
        chain.seq = line.seq;
        chain.prev = hash;
        chain.failure = None;
        let Some(flusher) = &self.flusher else {
            return Ok(line.seq);
        };
        flusher.written(line.seq);
        drop(chain);
        if self.fsync == Fsync::Always {
            // The line is written: a failed flush leaves it in the file, and
            // calls are refused until a flush succeeds again.
            flusher.flush_through(line.seq).map_err(write_error)?;
        }
        Ok(line.seq)
    }

    /// Why the last append failed, if it did and none has succeeded since:
    /// calls are refused meanwhile, since they could not be recorded.
    pub fn failure(&self) -> Option<String> {
        let written = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failure
            .clone();
        written.or_else(|| {
            self.flusher
                .as_ref()
                .and_then(|flusher| flusher.failure())
                .map(|failure| format!("flushing it to the disk failed: {failure}"))
        })
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let (Some(flusher), Some(thread)) = (&self.flusher, self.flush_thread.take()) {
            flusher.close();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
impl AuditLog {
    /// Make every write fail, as on a full disk, until
    /// [`AuditLog::repair_writes`]: the file is swapped for a read-only
    /// handle, so that `write` itself fails.
    pub(crate) fn break_writes(&self) {
        let mut chain = self.state.lock().unwrap_or_else(|e| e.into_inner());
        chain.file = File::open(&self.path).expect("the audit log can be reopened");
    }

    /// Undo [`AuditLog::break_writes`].
    pub(crate) fn repair_writes(&self) {
        let mut chain = self.state.lock().unwrap_or_else(|e| e.into_inner());
        chain.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .expect("the audit log can be reopened");
    }
}

/// Where the complete lines of the file end, and the last complete line
/// (none in an empty file). The tail is read backwards in growing windows
/// until it holds the whole last line, however long that is.
fn last_line(file: &mut File, len: u64) -> std::io::Result<(u64, Option<Vec<u8>>)> {
    let mut window = TAIL_WINDOW;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::with_capacity((len - start) as usize);
        file.read_to_end(&mut tail)?;
        let complete = tail.iter().rposition(|&b| b == b'\n').map(|i| i + 1);
        let Some(complete) = complete else {
            if start == 0 {
                return Ok((0, None));
            }
            window = window.saturating_mul(2);
            continue;
        };
        let body = &tail[..complete - 1];
        match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => return Ok((start + complete as u64, Some(body[i + 1..].to_vec()))),
            None if start == 0 => return Ok((complete as u64, Some(body.to_vec()))),
            None => window = window.saturating_mul(2),
        }
    }
}

/// `record` with its client-supplied names and arguments within bounds.
fn bounded(mut record: Record) -> Record {
    record.client = bounded_name(record.client);
    record.module = bounded_name(record.module);
    record.tool = bounded_name(record.tool);
    record.account = record.account.map(bounded_name);
    if let Some(arguments) = &record.arguments {
        let text = crate::manifest::canonical_json(arguments);
        if text.len() > MAX_ARGUMENTS_BYTES {
            record.arguments = Some(serde_json::Value::String(format!(
                "{}… ({} bytes in all; arguments_sha256 covers them)",
                prefix(&text, MAX_ARGUMENTS_BYTES),
                text.len()
            )));
        }
    }
    record
}

/// A name longer than [`MAX_NAME_BYTES`] as a prefix and its sha256.
fn bounded_name(name: String) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    format!(
        "{}…[{} bytes, sha256 {}]",
        prefix(&name, 64),
        name.len(),
        hex::encode(Sha256::digest(name.as_bytes()))
    )
}

/// At most `bytes` of `text`, cut at a character boundary.
fn prefix(text: &str, bytes: usize) -> &str {
    let mut cut = bytes.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// The line's text (with its `hash` member and a newline) and its hash.
fn seal(line: &Line) -> (String, String) {
    let body = serde_json::to_string(line).expect("audit lines always serialise");
    let unsealed = body.strip_suffix('}').expect("a JSON object ends with `}`");
    let hash = hex::encode(Sha256::digest(format!("{unsealed}}}").as_bytes()));
    (format!("{unsealed},\"hash\":\"{hash}\"}}\n"), hash)
}

/// A line's record, if it is one (its hash is not checked: see [`verify`]).
pub(crate) fn parse_record(text: &str) -> Option<Line> {
    verify::parse_line(text).ok().map(|parsed| parsed.line)
}

/// The time now as the log writes it.
pub(crate) fn now() -> String {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// sha256 of a JSON value in canonical form (keys sorted, no spaces), so
/// the same arguments always give the same digest.
pub(crate) fn digest(arguments: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(
        crate::manifest::canonical_json(arguments).as_bytes(),
    ))
}

/// A reason cut to [`MAX_REASON_CHARS`].
pub(crate) fn reason(text: &str) -> String {
    match text.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
