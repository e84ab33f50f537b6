//! Part of `cargo xtask bench`: what `run_plan` and `run_script` save a
//! client, and what they cost per step.
//!
//! - **Against a slow upstream**: ten independent read-only steps
//!   (`github.get_issue`, one upstream request each) against the local
//!   stand-in of api.github.com answering every request 20 ms late, sent as
//!   one plan (all ten at once, and at the default `max_parallel`), against
//!   the same ten calls made one by one by the client.
//! - **Per step**: ten `text.count` steps in a plan run one at a time
//!   (`max_parallel = 1`, so nothing overlaps), against ten plain
//!   `call_module_tool` calls, each a round trip from the client. The
//!   difference per step is what the scheduler, the reference and
//!   selection machinery and the combined answer cost, less the round trips
//!   a plan saves. The same for a script awaiting ten `text.count` calls
//!   one after the other, less the script's fixed cost (an empty script:
//!   a fresh engine instance, the JavaScript context, the answer).
//! - **Scripts against the slow upstream**: the ten `get_issue` calls
//!   started together by one script (`Promise.all`).
//!
//! All rows are measured on one server, in turn within each round, so that
//! a drift of the machine or of the upstream touches every row alike.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{Pipes, Rpc, mcpist_in, start_stdio, stop, upstream};

const TOKEN: &str = "ghp_bench_plans_1";
/// Each answer of the GitHub stand-in waits this long.
const LATENCY_MS: u32 = 20;
const STEPS: usize = 10;
/// Rounds of the slow-upstream rows (each ten calls of at least 20 ms).
const SLOW_ROUNDS: usize = 30;
/// Rounds of the per-step rows, after as many warm-up rounds.
const FAST_ROUNDS: usize = 300;

pub fn run(root: &Path, binary: &Path) -> anyhow::Result<()> {
    let python = crate::python_env(root)?;
    let home = root.join("target/bench-plans");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home)?;
    let (_upstream, upstream) = upstream(
        &python,
        root,
        "github",
        &format!(r#"{{"{TOKEN}": "alice"}}"#),
        LATENCY_MS,
    )?;
    // A copy of the lock: `plugins host` below writes the host rule to it,
    // and the repository's pins must stay as they are.
    std::fs::copy(root.join("registry.lock"), home.join("registry.lock"))?;
    let config = home.join("mcpist.toml");
    std::fs::write(
        &config,
        format!(
            "plugins_dir = {:?}\nlock_file = \"registry.lock\"\n[audit]\nfsync = \"never\"\n[upstreams]\n\"api.github.com\" = \"{upstream}\"\n",
            root.join("plugins"),
        ),
    )?;
    let mcpist = mcpist_in(binary, &config, &home);
    set_up(&mut mcpist(&[
        "plugins",
        "host",
        "github",
        "https://api.github.com",
        "--allow-private",
    ]))?;
    let mut add = mcpist(&["account", "add", "github", "bench"]);
    add.stdin(Stdio::piped());
    let mut adding = add.stdout(Stdio::null()).spawn()?;
    writeln!(adding.stdin.take().context("piped")?, "{TOKEN}")?;
    if !adding.wait()?.success() {
        bail!("mcpist account add github bench failed");
    }

    let (child, mut stdio, _) = start_stdio(&mut mcpist(&["serve"]))?;
    let result = measure(&mut stdio);
    drop(stdio);
    stop(child);
    let figures = result?;

    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
    println!();
    println!(
        "  run_plan: {STEPS} independent github.get_issue steps, upstream answering {LATENCY_MS} ms late (medians of {SLOW_ROUNDS} rounds)"
    );
    println!(
        "    {STEPS} calls one by one from the client        {:>10}",
        ms(figures.one_by_one)
    );
    for (label, time) in [
        (
            format!("one plan, max_parallel = {STEPS}"),
            figures.plan_wide,
        ),
        (
            "one plan, max_parallel default (4)".to_owned(),
            figures.plan_default,
        ),
    ] {
        println!(
            "    {label:<42}{:>10}  {:.2}× faster",
            ms(time),
            figures.one_by_one.as_secs_f64() / time.as_secs_f64()
        );
    }
    println!(
        "    {:<42}{:>10}  {:.2}× faster",
        "one script, Promise.all of the ten calls",
        ms(figures.script_slow),
        figures.one_by_one.as_secs_f64() / figures.script_slow.as_secs_f64()
    );
    println!(
        "  per step ({STEPS} text.count steps, max_parallel = 1, medians of {FAST_ROUNDS} rounds): {} in a plan, {} as a plain call from the client ({} a step)",
        us(figures.plan_step),
        us(figures.plain_call),
        signed_us(figures.plan_step, figures.plain_call),
    );
    println!(
        "  per step ({STEPS} text.count calls awaited one by one in a script, medians of {FAST_ROUNDS} rounds): {} in a script, {} as a plain call ({} a step); an empty script costs {}",
        us(figures.script_step),
        us(figures.plain_call),
        signed_us(figures.script_step, figures.plain_call),
        us(figures.script_fixed),
    );
    Ok(())
}

fn signed_us(a: Duration, b: Duration) -> String {
    let d = a.as_secs_f64() - b.as_secs_f64();
    format!("{:+.0} µs", d * 1e6)
}

struct PlanFigures {
    one_by_one: Duration,
    plan_wide: Duration,
    plan_default: Duration,
    plan_step: Duration,
    plain_call: Duration,
    script_slow: Duration,
    script_step: Duration,
    script_fixed: Duration,
}

/// A `run_script` request for `source`.
fn script(source: &str) -> String {
    serde_json::json!({"name": "run_script", "arguments": {"script": source}}).to_string()
}

fn measure(stdio: &mut Pipes) -> anyhow::Result<PlanFigures> {
    let get_issue = r#"{"module":"github","tool":"get_issue","arguments":{"owner":"alice","repo":"notes","number":1,"comment_limit":0}}"#;
    let count = r#"{"module":"text","tool":"count","arguments":{"text":"the quick brown fox"}}"#;
    let call = |step: &str| format!(r#"{{"name":"call_module_tool","arguments":{step}}}"#);
    let plan = |step: &str, max_parallel: Option<usize>| {
        let steps: Vec<String> = (0..STEPS)
            .map(|i| format!(r#"{{"id":"s{i}",{}"#, &step[1..]))
            .collect();
        let parallel = max_parallel.map_or(String::new(), |n| format!(r#","max_parallel":{n}"#));
        format!(
            r#"{{"name":"run_plan","arguments":{{"steps":[{}]{parallel}}}}}"#,
            steps.join(",")
        )
    };
    let mut next_id = 100;
    let mut time = |stdio: &mut Pipes, request: &str, times: usize| -> anyhow::Result<Duration> {
        let started = Instant::now();
        for _ in 0..times {
            next_id += 1;
            let answer = stdio.request(next_id, "tools/call", request)?;
            if !answer.contains(r#""isError":false"#) || answer.contains(r#""ok":false"#) {
                bail!("a benchmark call failed: {answer}");
            }
        }
        Ok(started.elapsed())
    };

    let (slow_call, slow_wide, slow_default) = (
        call(get_issue),
        plan(get_issue, Some(STEPS)),
        plan(get_issue, None),
    );
    let slow_script = script(&format!(
        "return (await Promise.all(Array.from({{length: {STEPS}}}, () => tools.github.get_issue({{owner: 'alice', repo: 'notes', number: 1, comment_limit: 0}})))).length;"
    ));
    let mut rows = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    // One warm-up round (it also loads the script engine).
    for round in 0..=SLOW_ROUNDS {
        let times = [
            time(stdio, &slow_call, STEPS)?,
            time(stdio, &slow_wide, 1)?,
            time(stdio, &slow_default, 1)?,
            time(stdio, &slow_script, 1)?,
        ];
        if round > 0 {
            for (row, t) in rows.iter_mut().zip(times) {
                row.push(t);
            }
        }
    }
    let [one_by_one, plan_wide, plan_default, script_slow] = rows.map(median);

    let (fast_call, fast_plan) = (call(count), plan(count, Some(1)));
    let fast_script = script(&format!(
        "let words = 0; for (let i = 0; i < {STEPS}; i++) words += (await tools.text.count({{text: 'the quick brown fox'}})).words; return words;"
    ));
    let empty_script = script("return 0;");
    let mut rows = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for round in 0..2 * FAST_ROUNDS {
        let times = [
            time(stdio, &fast_call, STEPS)? / STEPS as u32,
            time(stdio, &fast_plan, 1)? / STEPS as u32,
            time(stdio, &fast_script, 1)?,
            time(stdio, &empty_script, 1)?,
        ];
        if round >= FAST_ROUNDS {
            for (row, t) in rows.iter_mut().zip(times) {
                row.push(t);
            }
        }
    }
    let [plain_call, plan_step, script_whole, script_fixed] = rows.map(median);
    Ok(PlanFigures {
        one_by_one,
        plan_wide,
        plan_default,
        plan_step,
        plain_call,
        script_slow,
        script_step: script_whole.saturating_sub(script_fixed) / STEPS as u32,
        script_fixed,
    })
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn set_up(command: &mut Command) -> anyhow::Result<()> {
    let output = command.stdin(Stdio::null()).output()?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
