//! The floor for `cargo xtask bench`: a stdio JSON-RPC server that does no
//! work. It answers every request line with a fixed small tool result, so
//! the client, the pipes and the process wake-ups are all that a call costs.
//! A server's own cost per call is its latency minus this one's, measured
//! in the same run with the same client.

use std::io::{BufRead, Write};

/// The request's `"id":` value, as it was written (a number or a string).
fn request_id(line: &str) -> Option<&str> {
    let start = line.find("\"id\":")? + 5;
    let rest = line[start..].trim_start();
    let end = if let Some(quoted) = rest.strip_prefix('"') {
        quoted.find('"')? + 2
    } else {
        rest.find([',', '}'])?
    };
    Some(rest[..end].trim_end())
}

fn main() -> std::io::Result<()> {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    let mut line = String::new();
    while stdin.lock().read_line(&mut line)? > 0 {
        if let Some(id) = request_id(&line) {
            writeln!(
                stdout,
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"{{}}"}}],"isError":false}}}}"#
            )?;
            stdout.flush()?;
        }
        line.clear();
    }
    Ok(())
}
