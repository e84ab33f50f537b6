//! `cargo xtask bench`: sequential `call_module_tool` latency over stdio.
//!
//! The client is a minimal JSON-RPC writer/reader on the server's pipes, so
//! the figures are the server's cost plus the pipe, not an SDK's.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const WARMUP: usize = 100;

pub fn run(root: &Path, args: &[OsString]) -> anyhow::Result<()> {
    let calls = match args.iter().position(|a| a == "--calls") {
        Some(i) => args
            .get(i + 1)
            .and_then(|n| n.to_str()?.parse().ok())
            .context("--calls takes a number")?,
        None => 1000,
    };
    let binary = super::build_release(root)?;

    let started = Instant::now();
    let mut server = Command::new(&binary)
        .arg("--config")
        .arg(root.join("mcpist.toml"))
        .arg("serve")
        .env("MCPIST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let mut client = Client {
        to_server: server.stdin.take().expect("piped"),
        from_server: BufReader::new(server.stdout.take().expect("piped")),
    };
    client.request(
        0,
        "initialize",
        r#"{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"xtask-bench","version":"0"}}"#,
    )?;
    client.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)?;
    client.request(1, "tools/list", "{}")?;
    let cold_start = started.elapsed();

    let call = r#"{"name":"call_module_tool","arguments":{"module":"text","tool":"count","arguments":{"text":"the quick brown fox"}}}"#;
    let mut samples = Vec::with_capacity(calls);
    let measured = Instant::now();
    for i in 0..WARMUP + calls {
        let t = Instant::now();
        let answer = client.request(i + 2, "tools/call", call)?;
        if i >= WARMUP {
            samples.push(t.elapsed());
        }
        if !answer.contains(r#""isError":false"#) {
            bail!("call {i} failed: {answer}");
        }
    }
    let total = measured.elapsed();
    drop(client);
    let _ = server.kill();
    let _ = server.wait();

    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
    let per_second = calls as f64 / samples.iter().sum::<Duration>().as_secs_f64();
    println!(
        "mcpist {} over stdio, text.count, {calls} sequential calls after {WARMUP} warm-up",
        binary.display()
    );
    println!("  median        {}", ms(pct(0.5)));
    println!("  p99           {}", ms(pct(0.99)));
    println!("  calls/s       {per_second:.0}");
    println!(
        "  wall time     {:.2} s (including warm-up)",
        total.as_secs_f64()
    );
    println!(
        "  cold start    {} (process start to first tools/list answer, no compile cache)",
        ms(cold_start)
    );
    Ok(())
}

/// Newline-delimited JSON-RPC on the server's stdin and stdout.
struct Client {
    to_server: ChildStdin,
    from_server: BufReader<ChildStdout>,
}

impl Client {
    fn send(&mut self, message: &str) -> anyhow::Result<()> {
        writeln!(self.to_server, "{message}")?;
        self.to_server.flush()?;
        Ok(())
    }

    /// Send a request and return the line that answers it.
    fn request(&mut self, id: usize, method: &str, params: &str) -> anyhow::Result<String> {
        self.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
        ))?;
        // `"id":1,` and not `"id":12,`: match the whole number.
        let wanted = [format!(r#""id":{id},"#), format!(r#""id":{id}}}"#)];
        let mut line = String::new();
        loop {
            line.clear();
            if self.from_server.read_line(&mut line)? == 0 {
                bail!("the server closed its output");
            }
            if wanted.iter().any(|w| line.contains(w.as_str())) {
                return Ok(line);
            }
        }
    }
}
