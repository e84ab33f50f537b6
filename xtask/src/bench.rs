//! `cargo xtask bench`: what a `call_module_tool` costs end to end, in one
//! run and one table, against two baselines measured in the same run with
//! the same client:
//!
//! - the **floor**: a do-nothing stdio server (`host/examples/floor_server.rs`)
//!   that answers every request with a fixed result; the client, the pipes
//!   and the wake-ups are all it costs;
//! - the **native twin**: `mcpist` itself with the bundled `text.count`
//!   answered by native Rust in the host (`host/examples/native_twin.rs`)
//!   instead of by the `text` module in a fresh sandbox.
//!
//! Then cold starts (compiled modules cached on disk, and not), peak RSS,
//! throughput with several calls in flight (and how many cores that used),
//! the example module of every language (first compile, call cost, memory
//! held; `--languages-only` for just that table), and the criterion
//! micro-benchmarks of `host/benches/sandbox.rs`.
//!
//! The clients are minimal hand-written JSON-RPC clients (newline-delimited
//! on the server's pipes; HTTP/1.1 keep-alive on one TCP connection), so the
//! figures are the server's cost plus the transport, not an SDK's. The
//! servers run in a scratch data folder (`target/bench-home`) with the
//! bundled modules of `plugins/` and `registry.lock`, and the audit log
//! written but not flushed to disk per call (`fsync = "never"`); two more
//! rows show what the default `fsync = "interval"` (a flush every 10 ms,
//! off the calls' path) and `fsync = "always"` (a flush before each answer)
//! add on this machine's disk, and `always` is measured with 8 calls in
//! flight too, where they share flushes.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const WARMUP: usize = 200;
/// Requests kept in flight by the throughput measurement.
const IN_FLIGHT: usize = 8;
const CALL: &str = r#"{"name":"call_module_tool","arguments":{"module":"text","tool":"count","arguments":{"text":"the quick brown fox"}}}"#;
const INITIALIZE: &str = r#"{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"xtask-bench","version":"0"}}"#;

pub fn run(root: &Path, args: &[OsString]) -> anyhow::Result<()> {
    let calls = match args.iter().position(|a| a == "--calls") {
        Some(i) => args
            .get(i + 1)
            .and_then(|n| n.to_str()?.parse().ok())
            .context("--calls takes a number")?,
        None => 2000,
    };
    let skip_micro = args.iter().any(|a| a == "--no-micro");
    let binary = super::build_release(root)?;
    if args.iter().any(|a| a == "--vaults-only") {
        return crate::vault_bench::run(root, &binary, calls);
    }
    if args.iter().any(|a| a == "--plans-only") {
        return crate::plan_bench::run(root, &binary);
    }
    if args.iter().any(|a| a == "--languages-only") {
        return measure_languages(root, &binary, calls);
    }
    super::status(super::cargo().current_dir(root).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "mcpist",
        // The benchmark seams (the native twin) exist only with this
        // feature; the `mcpist` measured is the plain release build.
        "--features",
        "bench",
        "--example",
        "native_twin",
        "--example",
        "floor_server",
    ]))?;
    let examples = root.join("target/release/examples");
    let home = root.join("target/bench-home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home)?;
    let config = |fsync: &str| -> anyhow::Result<PathBuf> {
        let path = home.join(format!("mcpist-fsync-{fsync}.toml"));
        std::fs::write(
            &path,
            format!(
                "plugins_dir = {:?}\nlock_file = {:?}\n[audit]\nfsync = {fsync:?}\n",
                root.join("plugins"),
                root.join("registry.lock")
            ),
        )?;
        Ok(path)
    };
    let (never, interval, always) = (config("never")?, config("interval")?, config("always")?);
    let server = |program: &Path, config: &Path, args: &[&str]| {
        let mut command = Command::new(program);
        command
            .arg("--config")
            .arg(config)
            .args(args)
            .env("MCPIST_HOME", &home)
            .env("MCPIST_LOG", "warn");
        command
    };

    println!(
        "text.count, {calls} sequential calls after {WARMUP} warm-up; {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // The first start compiles the modules and keeps them: the uncached
    // cold start (and the peak RSS while Cranelift compiles). The rest find
    // them cached.
    let (child, stdio, uncached_start) = start_stdio(&mut server(&binary, &never, &["serve"]))?;
    let compiling_rss_kib = peak_rss_kib(child.id());
    drop(stdio);
    stop(child);
    let mcpist = measure_stdio(&mut server(&binary, &never, &["serve"]), calls)?;
    let mut cached = Vec::new();
    for _ in 0..5 {
        cached.push(time_start(&mut server(&binary, &never, &["serve"]))?);
    }
    cached.sort();
    let cached_start = cached[cached.len() / 2];
    let floor = measure_stdio(&mut Command::new(examples.join("floor_server")), calls)?;
    let twin = measure_stdio(
        &mut server(&examples.join("native_twin"), &never, &["serve"]),
        calls,
    )?;
    let fsync_interval = measure_stdio(&mut server(&binary, &interval, &["serve"]), calls)?;
    let fsync = measure_stdio(&mut server(&binary, &always, &["serve"]), calls)?;
    let fsync_concurrent = measure_concurrent(&mut server(&binary, &always, &["serve"]), calls)?;
    let http = measure_http(&binary, &never, &server, calls)?;
    let concurrent = measure_concurrent(&mut server(&binary, &never, &["serve"]), calls)?;
    let twenty = measure_twenty(root, &binary)?;

    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
    let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
    let ratio = |a: Duration, b: Duration| format!("{:.2}", a.as_secs_f64() / b.as_secs_f64());
    println!();
    println!(
        "  {:<34}{:>10}{:>10}{:>9}{:>10}{:>9}{:>13}{:>12}",
        "sequential calls",
        "median",
        "p99",
        "calls/s",
        "× native",
        "× floor",
        "server cost",
        "peak RSS"
    );
    for (label, f) in [
        ("do-nothing server (floor), stdio", &floor),
        ("native twin in mcpist, stdio", &twin),
        ("mcpist, stdio", &mcpist),
        ("mcpist, stdio, audit fsync=interval", &fsync_interval),
        ("mcpist, stdio, audit fsync=always", &fsync),
        ("mcpist, HTTP (loopback)", &http),
    ] {
        println!(
            "  {label:<34}{:>10}{:>10}{:>9.0}{:>10}{:>9}{:>13}{:>12}",
            ms(f.median),
            ms(f.p99),
            f.per_second,
            ratio(f.median, twin.median),
            ratio(f.median, floor.median),
            us(f.median.saturating_sub(floor.median)),
            mib(f.peak_rss_kib),
        );
    }
    println!();
    println!(
        "  {IN_FLIGHT} calls in flight, stdio: {:.0} calls/s ({:.2}× sequential), {:.2} cores busy, peak RSS {}",
        concurrent.per_second,
        concurrent.per_second / mcpist.per_second,
        concurrent.cores,
        mib(concurrent.peak_rss_kib)
    );
    println!(
        "  {IN_FLIGHT} calls in flight, stdio, audit fsync=always: {:.0} calls/s ({:.2}× as many as with fsync=never)",
        fsync_concurrent.per_second,
        fsync_concurrent.per_second / concurrent.per_second,
    );
    println!(
        "  cold start (process start to first tools/list answer, {} bundled modules): {} uncached (peak RSS {} while compiling), {} with compiled modules cached",
        count_modules(&root.join("plugins")),
        ms(uncached_start),
        mib(compiling_rss_kib),
        ms(cached_start)
    );
    println!(
        "  cold start with {} modules: {} uncached, {} cached; peak RSS {} after {WARMUP} calls",
        twenty.modules,
        ms(twenty.uncached),
        ms(twenty.cached),
        mib(twenty.peak_rss_kib)
    );
    crate::vault_bench::run(root, &binary, calls)?;
    crate::plan_bench::run(root, &binary)?;
    measure_languages(root, &binary, calls)?;
    if !skip_micro {
        micro(root)?;
    }
    Ok(())
}

/// The example module of every language (`cargo xtask build-examples`),
/// each served alone from a data folder of its own: the first compile (time
/// and the server's peak RSS while compiling), the first and the steady cost
/// of a `word_stats` call, and the memory the server holds with the module
/// loaded, against a server with no module measured the same way.
fn measure_languages(root: &Path, binary: &Path, calls: usize) -> anyhow::Result<()> {
    let built = crate::examples::build_examples(root, &[])?;
    // `mcpist ARGS` on the data folder `home`, with its own config.
    let mcpist = |home: &Path, args: &[&str]| {
        let mut command = Command::new(binary);
        command
            .arg("--config")
            .arg(home.join("mcpist.toml"))
            .args(args)
            .env("MCPIST_HOME", home)
            .env("MCPIST_LOG", "warn");
        command
    };
    let serve_from = |home: &Path| mcpist(home, &["serve"]);
    let prepare = |name: &str, wasm: Option<&Path>| -> anyhow::Result<PathBuf> {
        let home = root.join("target/bench-languages").join(name);
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(home.join("plugins"))?;
        std::fs::write(home.join("mcpist.toml"), "[audit]\nfsync = \"never\"\n")?;
        if let Some(wasm) = wasm {
            std::fs::copy(wasm, home.join("plugins").join(format!("{name}.wasm")))?;
            let approved = mcpist(&home, &["plugins", "approve", name, "--yes"])
                .stdout(Stdio::null())
                .status()?;
            if !approved.success() {
                bail!("cannot approve {name} in {}", home.display());
            }
        }
        Ok(home)
    };
    let baseline_home = prepare("none", None)?;
    let (child, stdio, _) = start_stdio(&mut serve_from(&baseline_home))?;
    let baseline_kib = rss_kib(child.id());
    drop(stdio);
    stop(child);

    println!();
    println!(
        "  example module per language (word_stats, {calls} sequential calls after {WARMUP} warm-up); server with no module: {} RSS",
        mib(baseline_kib)
    );
    println!(
        "  {:<10}{:>10}{:>14}{:>16}{:>12}{:>14}{:>14}",
        "language",
        ".wasm",
        "first compile",
        "peak RSS then",
        "first call",
        "steady call",
        "memory held"
    );
    for (language, wasm) in crate::examples::LANGUAGES.iter().zip(&built) {
        let name = format!("example-{language}");
        let home = prepare(&name, Some(wasm))?;
        let (child, stdio, compile) = start_stdio(&mut serve_from(&home))?;
        let compile_peak_kib = peak_rss_kib(child.id());
        drop(stdio);
        stop(child);
        let call = format!(
            r#"{{"name":"call_module_tool","arguments":{{"module":"{name}","tool":"word_stats","arguments":{{"text":"the quick brown fox jumps over the lazy dog"}}}}}}"#
        );
        let (child, mut stdio, _) = start_stdio(&mut serve_from(&home))?;
        let first = Instant::now();
        let answer = stdio.request(2, "tools/call", &call)?;
        let first = first.elapsed();
        if !answer.contains(r#""isError":false"#) {
            bail!("{name}: the first call failed: {answer}");
        }
        let steady = time_calls(&mut stdio, calls, &call);
        let held_kib = rss_kib(child.id()).saturating_sub(baseline_kib);
        drop(stdio);
        stop(child);
        let (steady, _, _) = steady?;
        println!(
            "  {language:<10}{:>10}{:>14}{:>16}{:>12}{:>14}{:>14}",
            format!(
                "{:.1} MiB",
                std::fs::metadata(wasm)?.len() as f64 / f64::from(1 << 20)
            ),
            format!("{:.1} s", compile.as_secs_f64()),
            mib(compile_peak_kib),
            format!("{:.1} ms", first.as_secs_f64() * 1e3),
            format!("{:.0} µs", steady.as_secs_f64() * 1e6),
            mib(held_kib),
        );
    }
    Ok(())
}

struct Twenty {
    modules: usize,
    uncached: Duration,
    cached: Duration,
    peak_rss_kib: u64,
}

/// Cold start and RSS with 20 modules: the bundled ones and enough builds of
/// the `numbered` fixture, each under its own name, in a data folder of
/// their own (`target/bench-home-20`).
fn measure_twenty(root: &Path, binary: &Path) -> anyhow::Result<Twenty> {
    const MODULES: usize = 20;
    let home = root.join("target/bench-home-20");
    let plugins = home.join("plugins");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&plugins)?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root.join("plugins"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "wasm") {
            std::fs::copy(&path, plugins.join(path.file_name().context("a file")?))?;
            names.push(
                path.file_stem()
                    .context("a file")?
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    for i in 1..=MODULES.saturating_sub(names.len()) {
        let name = format!("numbered{i:02}");
        super::status(
            super::cargo()
                .current_dir(root)
                .args([
                    "build",
                    "--release",
                    "--locked",
                    "--target",
                    super::WASM_TARGET,
                    "-p",
                    "numbered",
                ])
                .arg("--manifest-path")
                .arg(root.join("tests/fixtures/Cargo.toml"))
                .arg("--target-dir")
                .arg(root.join("target/bench-numbered"))
                .env("MCPIST_FIXTURE_NAME", &name),
        )?;
        std::fs::copy(
            root.join("target/bench-numbered")
                .join(super::WASM_TARGET)
                .join("release/numbered.wasm"),
            plugins.join(format!("{name}.wasm")),
        )?;
        names.push(name);
    }
    let config = home.join("mcpist.toml");
    std::fs::write(&config, "[audit]\nfsync = \"never\"\n")?;
    let mcpist = mcpist_in(binary, &config, &home);
    for name in &names {
        let approved = mcpist(&["plugins", "approve", name, "--yes"])
            .stdout(Stdio::null())
            .status()?;
        if !approved.success() {
            bail!("cannot approve {name} in {}", home.display());
        }
    }
    let _ = std::fs::remove_dir_all(home.join("cache"));
    let uncached = time_start(&mut mcpist(&["serve"]))?;
    let mut cached = Vec::new();
    for _ in 0..5 {
        cached.push(time_start(&mut mcpist(&["serve"]))?);
    }
    cached.sort();
    let (child, mut stdio, _) = start_stdio(&mut mcpist(&["serve"]))?;
    let warm = time_calls(&mut stdio, 1, CALL);
    let peak_rss_kib = peak_rss_kib(child.id());
    drop(stdio);
    stop(child);
    warm?;
    Ok(Twenty {
        modules: names.len(),
        uncached,
        cached: cached[cached.len() / 2],
        peak_rss_kib,
    })
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn count_modules(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
            .count()
    })
}

/// Run the criterion micro-benchmarks and print their medians.
fn micro(root: &Path) -> anyhow::Result<()> {
    super::status(super::cargo().current_dir(root).args([
        "bench",
        "--locked",
        "-p",
        "mcpist",
        "--features",
        "bench",
        "--bench",
        "sandbox",
        "--",
        "--noplot",
        "--warm-up-time",
        "1",
        "--measurement-time",
        "3",
    ]))?;
    println!();
    println!("  criterion medians (host/benches/sandbox.rs, target/criterion/):");
    let medians = criterion_medians(&root.join("target/criterion"))?;
    for bench in [
        "instantiate/fresh_sandbox",
        "call/text.count/sandboxed",
        "call/text.count/native",
        "validate/text.count",
        "validate/github.create_issue",
    ] {
        let ns = medians
            .iter()
            .find(|(id, _)| id == bench)
            .map(|(_, ns)| *ns)
            .with_context(|| format!("criterion wrote no result for {bench}"))?;
        println!("    {bench:<32}{:>10.2} µs", ns / 1e3);
    }
    Ok(())
}

/// Every benchmark's id and median (ns) under criterion's output folder:
/// each `new/benchmark.json` names the benchmark, `new/estimates.json`
/// beside it holds the estimates.
fn criterion_medians(dir: &Path) -> anyhow::Result<Vec<(String, f64)>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.ends_with("new/benchmark.json") {
                let read = |p: &Path| -> anyhow::Result<serde_json::Value> {
                    Ok(serde_json::from_str(&std::fs::read_to_string(p)?)?)
                };
                let id = read(&path)?["full_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let estimates = read(&path.with_file_name("estimates.json"))?;
                if let Some(ns) = estimates["median"]["point_estimate"].as_f64() {
                    found.push((id, ns));
                }
            }
        }
    }
    Ok(found)
}

struct Figures {
    median: Duration,
    p99: Duration,
    per_second: f64,
    peak_rss_kib: u64,
}

impl Figures {
    fn new((median, p99, per_second): (Duration, Duration, f64), peak_rss_kib: u64) -> Figures {
        Figures {
            median,
            p99,
            per_second,
            peak_rss_kib,
        }
    }
}

/// Start one stdio server per command and time `calls` sequential calls of
/// each, one server after the other in turn (the first of each turn
/// rotating), so that any drift of the machine or of a shared upstream
/// touches all alike; the median per server.
pub(crate) fn interleaved_medians(
    commands: &mut [Command],
    calls: usize,
    call: &str,
) -> anyhow::Result<Vec<Duration>> {
    let mut servers = Vec::new();
    for command in commands.iter_mut() {
        let (child, stdio, _) = start_stdio(command)?;
        servers.push((child, stdio));
    }
    let mut samples = vec![Vec::with_capacity(calls); servers.len()];
    let result = (|| -> anyhow::Result<()> {
        for i in 0..WARMUP + calls {
            for k in 0..servers.len() {
                let s = (i + k) % servers.len();
                let t = Instant::now();
                let answer = servers[s].1.request(i + 2, "tools/call", call)?;
                let elapsed = t.elapsed();
                if !answer.contains(r#""isError":false"#) {
                    bail!("call {i} failed: {answer}");
                }
                if i >= WARMUP {
                    samples[s].push(elapsed);
                }
            }
        }
        Ok(())
    })();
    for (child, stdio) in servers {
        drop(stdio);
        stop(child);
    }
    result?;
    Ok(samples
        .into_iter()
        .map(|mut s| {
            s.sort();
            s[s.len() / 2]
        })
        .collect())
}

/// Start a stdio server, time sequential calls, note its peak RSS, stop it.
fn measure_stdio(command: &mut Command, calls: usize) -> anyhow::Result<Figures> {
    let (child, mut stdio, _) = start_stdio(command)?;
    let timed = time_calls(&mut stdio, calls, CALL);
    let peak_rss_kib = peak_rss_kib(child.id());
    drop(stdio);
    stop(child);
    Ok(Figures::new(timed?, peak_rss_kib))
}

fn measure_http(
    binary: &Path,
    config: &Path,
    server: &dyn Fn(&Path, &Path, &[&str]) -> Command,
    calls: usize,
) -> anyhow::Result<Figures> {
    let key = server(binary, config, &["client", "add", "bench"])
        .stderr(Stdio::null())
        .output()
        .context("cannot register the bench client")?;
    let key = String::from_utf8(key.stdout)?.trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let address = format!("127.0.0.1:{port}");
    let child = server(binary, config, &["serve", "--http", &address])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let timed =
        Http::connect(&address, &key).and_then(|mut http| time_calls(&mut http, calls, CALL));
    let peak_rss_kib = peak_rss_kib(child.id());
    stop(child);
    Ok(Figures::new(timed?, peak_rss_kib))
}

struct Concurrent {
    per_second: f64,
    cores: f64,
    peak_rss_kib: u64,
}

/// Keep `IN_FLIGHT` calls in flight on one stdio session and measure the
/// throughput, and the server's CPU time over wall time (cores in use).
fn measure_concurrent(command: &mut Command, calls: usize) -> anyhow::Result<Concurrent> {
    let (child, mut stdio, _) = start_stdio(command)?;
    let pid = child.id();
    let result = (|| {
        time_calls(&mut stdio, WARMUP, CALL)?;
        let cpu_before = cpu_seconds(pid)?;
        let started = Instant::now();
        let mut waiting = BTreeSet::new();
        let mut next = 1_000_000;
        let mut done = 0;
        while done < calls {
            while waiting.len() < IN_FLIGHT && done + waiting.len() < calls {
                stdio.send(&request_text(next, "tools/call", CALL))?;
                waiting.insert(next);
                next += 1;
            }
            let line = stdio.read_message()?;
            let id = waiting
                .iter()
                .copied()
                .find(|&id| answers(&line, id))
                .with_context(|| format!("an answer to no request in flight: {line}"))?;
            if !line.contains(r#""isError":false"#) {
                bail!("call {id} failed: {line}");
            }
            waiting.remove(&id);
            done += 1;
        }
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(pid)? - cpu_before;
        Ok(Concurrent {
            per_second: calls as f64 / wall,
            cores: cpu / wall,
            peak_rss_kib: peak_rss_kib(pid),
        })
    })();
    drop(stdio);
    stop(child);
    result
}

/// `VmHWM` of a running process, in KiB (0 if it cannot be read).
fn peak_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM:")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `VmRSS` of a running process, in KiB: what it holds now (0 if it
/// cannot be read).
fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS:")
}

/// User + system CPU time of a running process (all its threads).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("unexpected /proc/PID/stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // USER_HZ: 100 on Linux, read from getconf to be sure.
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Start a stdio server and wait for its first `tools/list` answer; the
/// time from process start to that answer is the cold start.
pub(crate) fn start_stdio(command: &mut Command) -> anyhow::Result<(Child, Pipes, Duration)> {
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

/// `binary ARGS` with `config` on the data folder `home`, logging only
/// warnings.
pub(crate) fn mcpist_in<'a>(
    binary: &'a Path,
    config: &'a Path,
    home: &'a Path,
) -> impl Fn(&[&str]) -> Command + 'a {
    move |args| {
        let mut command = Command::new(binary);
        command
            .arg("--config")
            .arg(config)
            .args(args)
            .env("MCPIST_HOME", home)
            .env("MCPIST_LOG", "warn");
        command
    }
}

/// A child process stopped when dropped.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One of the local upstream stand-ins of tests/e2e/upstreams (`name`.py),
/// on a free port, with its bearer tokens (a JSON object) and every answer
/// `latency_ms` late (GitHub's and Notion's take `--latency-ms`); stopped
/// when the `Running` is dropped.
pub(crate) fn upstream(
    python: &Path,
    root: &Path,
    name: &str,
    tokens: &str,
    latency_ms: u32,
) -> anyhow::Result<(Running, String)> {
    let mut command = Command::new(python);
    command
        .arg(root.join(format!("tests/e2e/upstreams/{name}.py")))
        .args(["--port", "0", "--tokens", tokens]);
    if latency_ms > 0 {
        command.args(["--latency-ms", &latency_ms.to_string()]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start the {name} stand-in"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("piped")?).read_line(&mut line)?;
    let running = Running(child);
    let port = line
        .strip_prefix("listening on ")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .with_context(|| format!("the {name} stand-in did not start: {line:?}"))?;
    Ok((running, format!("http://127.0.0.1:{port}")))
}

pub(crate) fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Time `calls` sequential tool calls after a warm-up: median, p99, calls/s.
fn time_calls(
    client: &mut dyn Rpc,
    calls: usize,
    call: &str,
) -> anyhow::Result<(Duration, Duration, f64)> {
    let mut samples = Vec::with_capacity(calls);
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
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    Ok((
        pct(0.5),
        pct(0.99),
        calls as f64 / samples.iter().sum::<Duration>().as_secs_f64(),
    ))
}

pub(crate) trait Rpc {
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
pub(crate) struct Pipes {
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

impl Pipes {
    /// The server's next message.
    fn read_message(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.from_server.read_line(&mut line)? == 0 {
            bail!("the server closed its output");
        }
        Ok(line)
    }
}

impl Rpc for Pipes {
    fn request(&mut self, id: usize, method: &str, params: &str) -> anyhow::Result<String> {
        self.send(&request_text(id, method, params))?;
        loop {
            let line = self.read_message()?;
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
