//! `mcpist audit ...`: checking and reading the audit log.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::audit::read::{Filter, complete_len, complete_lines};
use crate::audit::{self, Line};
use crate::config::Config;
use crate::untrusted_text;

/// How often `tail --follow` looks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

pub(super) fn verify(config: &Config) -> anyhow::Result<ExitCode> {
    let path = &config.audit.file;
    let out = &mut std::io::stdout().lock();
    if !path.exists() {
        writeln!(
            out,
            "No audit log at {} yet: no call has been made.",
            path.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = audit::verify(path)?;
    for problem in &report.problems {
        writeln!(out, "{problem}")?;
    }
    if report.is_intact() {
        writeln!(
            out,
            "ok: {} records in {}, chain intact.",
            report.lines,
            path.display()
        )?;
        if let Some(hash) = &report.last_hash {
            writeln!(
                out,
                "Last hash: {hash}\n(keep it elsewhere: a log later cut short or rewritten from some line on will no longer contain it)"
            )?;
        }
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(
            out,
            "{} problem(s) in {}: the log was altered. Keep this copy as it is for investigation.",
            report.problems.len(),
            path.display()
        )?;
        Ok(ExitCode::FAILURE)
    }
}

pub(super) async fn tail(
    config: &Config,
    count: usize,
    follow: bool,
    filter: &Filter,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let path = &config.audit.file;
    if !path.exists() && !follow {
        writeln!(
            std::io::stdout().lock(),
            "No audit log at {} yet: no call has been made.",
            path.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let (text, mut offset) = read_from(path, 0)?;
    let shown: Vec<&str> = complete_lines(&text)
        .filter(|raw| parse(raw).is_some_and(|line| filter.keeps(&line)))
        .collect();
    {
        let out = &mut std::io::stdout().lock();
        for raw in &shown[shown.len().saturating_sub(count)..] {
            print_line(out, raw, json)?;
        }
    }
    offset -= (text.len() - complete_len(&text)) as u64;
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Until interrupted.
    loop {
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len < offset {
            // The log was replaced: start again from its beginning.
            offset = 0;
        }
        if len == offset {
            continue;
        }
        let (text, end) = read_from(path, offset)?;
        let out = &mut std::io::stdout().lock();
        for raw in complete_lines(&text) {
            if parse(raw).is_some_and(|line| filter.keeps(&line)) {
                print_line(out, raw, json)?;
            }
        }
        out.flush()?;
        offset = end - (text.len() - complete_len(&text)) as u64;
    }
}

/// The file's text from `offset` on, and the offset of its end.
fn read_from(path: &Path, offset: u64) -> std::io::Result<(String, u64)> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((String::new(), 0)),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let end = offset + bytes.len() as u64;
    Ok((String::from_utf8_lossy(&bytes).into_owned(), end))
}

fn parse(raw: &str) -> Option<Line> {
    audit::parse_record(raw)
}

fn print_line(out: &mut impl Write, raw: &str, json: bool) -> std::io::Result<()> {
    // Names in a record are whatever a client sent: escape sequences,
    // forged newlines and bidi controls are shown, never obeyed.
    if json {
        return writeln!(out, "{}", untrusted_text::escape_json(raw));
    }
    let Some(line) = parse(raw) else {
        return Ok(());
    };
    let r = &line.record;
    let mut text = format!("{}  {}  {}.{}", r.time, r.client, r.module, r.tool);
    if let Some(account) = &r.account {
        text.push_str(&format!("  account={account}"));
    }
    text.push_str(&format!(
        "  {}  {:.1} ms",
        r.outcome.label(),
        r.duration_us as f64 / 1000.0
    ));
    for o in &r.outbound {
        let status = o.status.map_or("-".to_owned(), |s| s.to_string());
        text.push_str(&format!("  {} {} {status}", o.method, o.origin));
    }
    if let Some(reason) = &r.reason {
        // One call, one line: a multi-line reason is folded.
        let folded: Vec<&str> = reason.split_whitespace().collect();
        text.push_str(&format!("  ({})", folded.join(" ")));
    }
    writeln!(out, "{}", untrusted_text::escape(&text))
}
