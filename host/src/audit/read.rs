//! Reading the log back: which calls a reader asked for, newest first.
//!
//! Readers never open the log for writing (that is [`super::AuditLog`]'s,
//! which also repairs a torn last line); a line still being written is left
//! for the next read.

use std::path::Path;

use super::{Line, Outcome};

/// Which calls to show; every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only calls of this module.
    pub module: Option<String>,
    /// Only calls from this client.
    pub client: Option<String>,
    /// Only calls that ended this way.
    pub outcome: Option<Outcome>,
}

impl Filter {
    /// Whether `line` is one of the calls asked for.
    pub fn keeps(&self, line: &Line) -> bool {
        let record = &line.record;
        self.module.as_ref().is_none_or(|m| *m == record.module)
            && self.client.as_ref().is_none_or(|c| *c == record.client)
            && self.outcome.is_none_or(|o| o == record.outcome)
    }
}

/// One page of the calls a filter keeps.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Newest first.
    pub lines: Vec<Line>,
    /// How many calls the filter keeps in the whole log.
    pub matching: usize,
}

/// The text of `text` up to its last newline: a line still being written
/// is left for the next read.
pub(crate) fn complete_len(text: &str) -> usize {
    text.rfind('\n').map_or(0, |i| i + 1)
}

/// The complete lines of `text`.
pub(crate) fn complete_lines(text: &str) -> impl Iterator<Item = &str> {
    text[..complete_len(text)].lines()
}

/// Page `index` (from 0) of `per_page` calls that `filter` keeps, newest
/// first. A log that does not exist yet has no calls.
pub fn page(path: &Path, filter: &Filter, index: usize, per_page: usize) -> std::io::Result<Page> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Page::default()),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&bytes);
    let kept: Vec<Line> = complete_lines(&text)
        .filter_map(super::parse_record)
        .filter(|line| filter.keeps(line))
        .collect();
    let matching = kept.len();
    let lines = kept
        .into_iter()
        .rev()
        .skip(index.saturating_mul(per_page))
        .take(per_page)
        .collect();
    Ok(Page { lines, matching })
}
