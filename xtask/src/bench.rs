//! `cargo xtask bench`: sequential `call_module_tool` latency, over stdio
//! and over Streamable HTTP, in one run, so that HTTP is reported as a ratio
//! to stdio measured on the same machine at the same time.
//!
//! The clients are minimal hand-written JSON-RPC clients (newline-delimited
//! on the server's pipes; HTTP/1.1 keep-alive on one TCP connection), so the
//! figures are the server's cost plus the transport, not an SDK's. The server
//! runs with the repository's `mcpist.toml` in a scratch data folder
//! (`target/bench-home`), so its audit log is written as configured there.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const WARMUP: usize = 100;
const CALL: &str = r#"{"name":"call_module_tool","arguments":{"module":"text","tool":"count","arguments":{"text":"the quick brown fox"}}}"#;
const INITIALIZE: &str = r#"{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"xtask-bench","version":"0"}}"#;

pub fn run(root: &Path, args: &[OsString]) -> anyhow::Result<()> {
    let calls = match args.iter().position(|a| a == "--calls") {
        Some(i) => args
            .get(i + 1)
            .and_then(|n| n.to_str()?.parse().ok())
            .context("--calls takes a number")?,
        None => 1000,
    };
    let binary = super::build_release(root)?;
    let home = root.join("target/bench-home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home)?;
    let server = |args: &[&str]| {
        let mut command = Command::new(&binary);
        command
            .arg("--config")
            .arg(root.join("mcpist.toml"))
            .args(args)
            .env("MCPIST_HOME", &home)
            .env("MCPIST_LOG", "warn");
        command
    };

    println!(
        "mcpist {}, text.count, {calls} sequential calls after {WARMUP} warm-up",
        binary.display()
    );
    let (child, mut stdio, cold_start) = start_stdio(&mut server(&["serve"]))?;
    let stdio_figures = measure(&mut stdio, calls)?;
    drop(stdio);
    stop(child);
    // The first start compiled the modules and kept them; time a start that
    // finds them (median of a few).
    let mut cached = Vec::new();
    for _ in 0..5 {
        cached.push(time_start(&mut server(&["serve"]))?);
    }
    cached.sort();
    let cached_start = cached[cached.len() / 2];

    let key = server(&["client", "add", "bench"])
        .stderr(Stdio::null())
        .output()
        .context("cannot register the bench client")?;
    let key = String::from_utf8(key.stdout)?.trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let address = format!("127.0.0.1:{port}");
    let child = server(&["serve", "--http", &address])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let http = Http::connect(&address, &key);
    let http_figures = match http {
        Ok(mut http) => measure(&mut http, calls),
        Err(e) => Err(e),
    };
    stop(child);
    let http_figures = http_figures?;

    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
    println!("                stdio        HTTP (loopback)   HTTP / stdio");
    for (label, a, b) in [
        ("median", stdio_figures.median, http_figures.median),
        ("p99", stdio_figures.p99, http_figures.p99),
    ] {
        println!(
            "  {label:<12}  {:<11}  {:<16}  {:.2}",
            ms(a),
            ms(b),
            b.as_secs_f64() / a.as_secs_f64()
        );
    }
    println!(
        "  calls/s       {:<11.0}  {:<16.0}  {:.2}",
        stdio_figures.per_second,
        http_figures.per_second,
        http_figures.per_second / stdio_figures.per_second
    );
    println!(
        "  cold start    {} uncached, {} with compiled modules cached (stdio: process start to first tools/list answer)",
        ms(cold_start),
        ms(cached_start)
    );
    Ok(())
}

/// Start a stdio server and wait for its first `tools/list` answer; the
/// time from process start to that answer is the cold start.
fn start_stdio(command: &mut Command) -> anyhow::Result<(Child, Pipes, Duration)> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let mut stdio = Pipes {
        to_server: child.stdin.take().expect("piped"),
        from_server: BufReader::new(child.stdout.take().expect("piped")),
    };
    stdio.request(0, "initialize", INITIALIZE)?;
    stdio.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)?;
    stdio.request(1, "tools/list", "{}")?;
    Ok((child, stdio, started.elapsed()))
}

/// Cold start of one more server, stopped at once.
fn time_start(command: &mut Command) -> anyhow::Result<Duration> {
    let (child, stdio, elapsed) = start_stdio(command)?;
    drop(stdio);
    stop(child);
    Ok(elapsed)
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

struct Figures {
    median: Duration,
    p99: Duration,
    per_second: f64,
}

/// Time `calls` sequential tool calls after a warm-up.
fn measure(client: &mut dyn Rpc, calls: usize) -> anyhow::Result<Figures> {
    let mut samples = Vec::with_capacity(calls);
    for i in 0..WARMUP + calls {
        let t = Instant::now();
        let answer = client.request(i + 2, "tools/call", CALL)?;
        if i >= WARMUP {
            samples.push(t.elapsed());
        }
        if !answer.contains(r#""isError":false"#) {
            bail!("call {i} failed: {answer}");
        }
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    Ok(Figures {
        median: pct(0.5),
        p99: pct(0.99),
        per_second: calls as f64 / samples.iter().sum::<Duration>().as_secs_f64(),
    })
}

trait Rpc {
    /// Send a request and return the JSON-RPC message that answers it.
    fn request(&mut self, id: usize, method: &str, params: &str) -> anyhow::Result<String>;
}

fn request_text(id: usize, method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
}

/// Whether `message` answers request `id` (`"id":1,` and not `"id":12,`).
fn answers(message: &str, id: usize) -> bool {
    message.contains(&format!(r#""id":{id},"#)) || message.contains(&format!(r#""id":{id}}}"#))
}

/// Newline-delimited JSON-RPC on the server's stdin and stdout.
struct Pipes {
    to_server: ChildStdin,
    from_server: BufReader<ChildStdout>,
}

impl Pipes {
    fn send(&mut self, message: &str) -> anyhow::Result<()> {
        writeln!(self.to_server, "{message}")?;
        self.to_server.flush()?;
        Ok(())
    }
}

impl Rpc for Pipes {
    fn request(&mut self, id: usize, method: &str, params: &str) -> anyhow::Result<String> {
        self.send(&request_text(id, method, params))?;
        let mut line = String::new();
        loop {
            line.clear();
            if self.from_server.read_line(&mut line)? == 0 {
                bail!("the server closed its output");
            }
            if answers(&line, id) {
                return Ok(line);
            }
        }
    }
}

/// Streamable HTTP over one keep-alive connection, with TCP_NODELAY on the
/// client side too (as any latency-aware client sets it).
struct Http {
    address: String,
    key: String,
    session: Option<String>,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Http {
    fn connect(address: &str, key: &str) -> anyhow::Result<Http> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let stream = loop {
            match TcpStream::connect(address) {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => bail!("mcpist serve --http did not start on {address}: {e}"),
            }
        };
        stream.set_nodelay(true)?;
        let mut http = Http {
            address: address.to_owned(),
            key: key.to_owned(),
            session: None,
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        http.request(0, "initialize", INITIALIZE)?;
        http.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)?;
        http.request(1, "tools/list", "{}")?;
        Ok(http)
    }

    /// POST one message; return the response body.
    fn post(&mut self, body: &str) -> anyhow::Result<String> {
        let mut head = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
             MCP-Protocol-Version: 2025-11-25\r\nContent-Length: {}\r\n",
            self.address,
            self.key,
            body.len()
        );
        if let Some(session) = &self.session {
            head.push_str(&format!("Mcp-Session-Id: {session}\r\n"));
        }
        head.push_str("\r\n");
        self.writer.write_all(head.as_bytes())?;
        self.writer.write_all(body.as_bytes())?;
        self.read_response()
    }

    fn read_response(&mut self) -> anyhow::Result<String> {
        let mut status = String::new();
        self.reader.read_line(&mut status)?;
        if !status.starts_with("HTTP/1.1 2") {
            bail!("HTTP answer: {}", status.trim());
        }
        let (mut length, mut chunked) = (0usize, false);
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse()?,
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "mcp-session-id" => self.session = Some(value.to_owned()),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim(), 16).context("a chunk size")?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length, 0);
            self.reader.read_exact(&mut body)?;
        }
        Ok(String::from_utf8(body)?)
    }
}

impl Rpc for Http {
    fn request(&mut self, id: usize, method: &str, params: &str) -> anyhow::Result<String> {
        let body = self.post(&request_text(id, method, params))?;
        // A JSON body, or an event stream whose `data:` lines carry messages.
        body.lines()
            .map(|l| l.strip_prefix("data:").map_or(l, str::trim_start))
            .find(|m| answers(m, id))
            .map(str::to_owned)
            .with_context(|| format!("no answer to request {id} in: {body}"))
    }
}
