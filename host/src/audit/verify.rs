//! Checking an audit log's chain: `mcpist audit verify`.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{GENESIS, Line};

/// What `verify` found wrong, by line number (from 1).
#[allow(missing_docs)] // the fields are named by the variants' descriptions
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not an audit record at all.
    Malformed { line: usize, reason: String },
    /// The content does not match the line's own hash: it was edited.
    Edited { line: usize },
    /// The line does not follow the one before it.
    OutOfChain { line: usize, detail: String },
    /// The file ends in the middle of a line: mcpist stopped while writing.
    Torn { line: usize, bytes: usize },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Malformed { line, reason } => {
                write!(f, "line {line}: not an audit record ({reason})")
            }
            Problem::Edited { line } => write!(
                f,
                "line {line}: edited (its content does not match its hash)"
            ),
            Problem::OutOfChain { line, detail } => write!(f, "line {line}: {detail}"),
            Problem::Torn { line, bytes } => write!(
                f,
                "line {line}: torn ({bytes} bytes without an end of line: mcpist stopped while writing it; \
                 the next start cuts it off)"
            ),
        }
    }
}

/// What `verify` read and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Complete lines read.
    pub lines: usize,
    /// The hash of the last complete line, to keep elsewhere: a log later
    /// cut short or rewritten will no longer contain it.
    pub last_hash: Option<String>,
    /// What is wrong, in file order.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Intact, apart from a torn last line (which is not tampering).
    pub fn is_intact(&self) -> bool {
        self.problems
            .iter()
            .all(|p| matches!(p, Problem::Torn { .. }))
    }
}

/// A line split into its record and its stored hash; `intact` says whether
/// the stored hash is the hash of the content.
pub(crate) struct Parsed {
    pub line: Line,
    pub hash: String,
    pub intact: bool,
}

const HASH_MEMBER: &str = ",\"hash\":\"";

pub(crate) fn parse_line(text: &str) -> Result<Parsed, String> {
    let at = text
        .rfind(HASH_MEMBER)
        .ok_or_else(|| "no `hash` member".to_owned())?;
    let hash = text[at + HASH_MEMBER.len()..]
        .strip_suffix("\"}")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| "the `hash` member is not 64 hex digits at the end".to_owned())?;
    let content = format!("{}}}", &text[..at]);
    let line: Line = serde_json::from_str(&content).map_err(|e| format!("not a record: {e}"))?;
    let intact = hex::encode(Sha256::digest(content.as_bytes())) == hash;
    Ok(Parsed {
        line,
        hash: hash.to_owned(),
        intact,
    })
}

/// Read the whole log and check every line and every link.
pub fn verify(path: &Path) -> std::io::Result<Report> {
    let bytes = std::fs::read(path)?;
    let mut problems = Vec::new();
    let mut expected: Option<(u64, String)> = Some((0, GENESIS.to_owned()));
    let mut lines = 0;
    let mut last_hash = None;
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            problems.push(Problem::Torn {
                line: lines + 1,
                bytes: rest.len(),
            });
            break;
        };
        let raw = &rest[..end];
        rest = &rest[end + 1..];
        lines += 1;
        let parsed = std::str::from_utf8(raw)
            .map_err(|_| "not UTF-8".to_owned())
            .and_then(parse_line);
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(reason) => {
                problems.push(Problem::Malformed {
                    line: lines,
                    reason,
                });
                expected = None;
                last_hash = None;
                continue;
            }
        };
        if !parsed.intact {
            problems.push(Problem::Edited { line: lines });
        }
        if let Some((seq, prev)) = &expected
            && (parsed.line.prev != *prev || parsed.line.seq != seq + 1)
        {
            let before = if lines == 1 {
                "the start of the log".to_owned()
            } else {
                format!("line {}", lines - 1)
            };
            let detail = if parsed.line.seq != seq + 1 {
                format!(
                    "does not follow {before} (record {} after record {seq}): lines were removed, inserted or reordered",
                    parsed.line.seq
                )
            } else {
                format!(
                    "does not follow {before} (its `prev` is not that line's hash): {before} was altered and rehashed, or replaced"
                )
            };
            problems.push(Problem::OutOfChain {
                line: lines,
                detail,
            });
        }
        expected = Some((parsed.line.seq, parsed.hash.clone()));
        last_hash = Some(parsed.hash);
    }
    Ok(Report {
        lines,
        last_hash,
        problems,
    })
}
