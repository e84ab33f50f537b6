//! `mcpist plugins ...`: what is in the plugins folder, and approving it.
//!
//! Output goes through `writeln!` so that a closed pipe (`... | head`) ends
//! the command quietly instead of panicking; see `main`.

use std::io::Write;
use std::process::ExitCode;

use crate::config::Config;
use crate::manifest::ModuleManifest;
use anyhow::Context;

use crate::registry::lock::EnginePin;
use crate::registry::{self, Approval, HostRule, Lock, ModuleState, short_hash};
use crate::script::ApprovedEngine;

pub(super) async fn list(config: &Config) -> anyhow::Result<ExitCode> {
    let (_runtime, _lock, scan) = super::scan(config).await?;
    let out = &mut std::io::stdout().lock();
    if scan.modules.is_empty() && scan.missing.is_empty() {
        writeln!(out, "No modules in {}.", config.plugins_dir.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 5]> = scan
        .modules
        .iter()
        .map(|m| {
            [
                m.name().to_owned(),
                m.manifest
                    .as_ref()
                    .map_or("?".to_owned(), |x| x.version.clone()),
                m.state.label().to_owned(),
                short_hash(&m.sha256),
                m.manifest.as_ref().map_or(String::new(), tool_names),
            ]
        })
        .chain(scan.missing.iter().map(|pin| {
            [
                pin.name.clone(),
                pin.version.clone(),
                "missing".to_owned(),
                short_hash(&pin.sha256),
                pin.tools.keys().cloned().collect::<Vec<_>>().join(", "),
            ]
        }))
        .collect();
    super::print_table(out, &["NAME", "VERSION", "STATE", "SHA256", "TOOLS"], &rows)?;
    print_hosts(out, &scan)?;
    for module in &scan.modules {
        if module.state != ModuleState::Pinned {
            writeln!(
                out,
                "\n{} ({}): {}",
                module.name(),
                module.file,
                module.state.detail()
            )?;
        }
    }
    for pin in &scan.missing {
        writeln!(
            out,
            "\n{} ({}): pinned, but the file is missing from {}",
            pin.name,
            pin.file,
            config.plugins_dir.display()
        )?;
    }
    if let Some((_, line)) = engine_state(config, &scan) {
        writeln!(out, "\n{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn approve(
    config: &Config,
    name: &str,
    yes: bool,
    accept_flagged: bool,
) -> anyhow::Result<ExitCode> {
    let (_runtime, mut lock, scan) = super::scan(config).await?;
    let out = &mut std::io::stdout().lock();
    // Show what would change first: if it cannot be shown, nothing is pinned.
    let module = registry::find(&scan, name, &config.plugins_dir)?;
    if let Some(diff) = module.diff(&lock) {
        write!(out, "{}", diff.render())?;
    }
    out.flush()?;
    let approval = Approval {
        name,
        shown_sha256: Some(&module.sha256),
        accept_flagged,
    };
    let entry = registry::approve(&scan, &mut lock, approval, &config.plugins_dir)?;
    for (host, rule) in &entry.host_rules {
        writeln!(
            out,
            "  kept from the earlier approval: {host}: {}",
            rule.summary()
        )?;
    }
    if !yes && !confirm(out, &format!("Approve {} {}?", entry.name, entry.version))? {
        writeln!(out, "Not approved; nothing changed.")?;
        return Ok(ExitCode::FAILURE);
    }
    lock.save(&config.lock_file)?;
    writeln!(
        out,
        "\nPinned {} {} (sha256 {}) in {}.",
        entry.name,
        entry.version,
        entry.sha256,
        config.lock_file.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn approve_engine(
    config: &Config,
    file: &str,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let (runtime, mut lock, _scan) = super::scan(config).await?;
    let out = &mut std::io::stdout().lock();
    let unchecked = EnginePin {
        file: file.to_owned(),
        sha256: String::new(),
    };
    let Some(located) = ApprovedEngine::locate(&config.plugins_dir, &unchecked) else {
        anyhow::bail!("{file}: the engine's file must be a path inside the plugins folder");
    };
    let bytes = std::fs::read(&located.path)
        .with_context(|| format!("cannot read {}", located.path.display()))?;
    let sha256 = registry::sha256_hex(&bytes);
    // Approve only what can serve as an engine: it links as one.
    runtime
        .prepare_script_engine(file, &bytes, &sha256)
        .with_context(|| format!("{} cannot be the script engine", located.path.display()))?;
    writeln!(out, "Script engine {file}")?;
    writeln!(out, "  sha256 {sha256}")?;
    match lock.script_engine() {
        Some(pin) if pin.sha256 == sha256 && pin.file == file => {
            writeln!(out, "Already approved; nothing changed.")?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(pin) => writeln!(out, "  replaces {} (sha256 {})", pin.file, pin.sha256)?,
        None => writeln!(out, "  no script engine was approved before")?,
    }
    writeln!(
        out,
        "It runs the programs clients send to run_script. A program can call every tool the \
         client that sent it may call (each call masked, consented and audited like any other) \
         and reach nothing else."
    )?;
    if !yes && !confirm(out, "Approve this script engine?")? {
        writeln!(out, "Not approved; nothing changed.")?;
        return Ok(ExitCode::FAILURE);
    }
    lock.pin_script_engine(EnginePin {
        file: file.to_owned(),
        sha256: sha256.clone(),
    });
    lock.save(&config.lock_file)?;
    writeln!(
        out,
        "\nPinned the script engine {file} (sha256 {sha256}) in {}.",
        config.lock_file.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The script engine's line in `plugins list` and `plugins verify`: `ok`
/// when its file is the one approved.
fn engine_state(config: &Config, scan: &registry::Scan) -> Option<(bool, String)> {
    let engine = scan.script_engine.as_ref()?;
    let file = &engine.pin.file;
    Some(match std::fs::read(&engine.path) {
        Err(e) => (
            false,
            format!("script engine ({file}): approved, but cannot be read: {e}"),
        ),
        Ok(bytes) if registry::sha256_hex(&bytes) == engine.pin.sha256 => (
            true,
            format!(
                "script engine ({file}): approved, sha256 {}; run_script is offered",
                short_hash(&engine.pin.sha256)
            ),
        ),
        Ok(bytes) => (
            false,
            format!(
                "script engine ({file}): changed, sha256 {} (approved {}); approve it with `mcpist plugins approve-engine` from {}",
                short_hash(&registry::sha256_hex(&bytes)),
                short_hash(&engine.pin.sha256),
                config.plugins_dir.display()
            ),
        ),
    })
}

pub(super) fn use_version(config: &Config, spec: &str) -> anyhow::Result<ExitCode> {
    let mut lock = Lock::load(&config.lock_file)?;
    let entry = registry::use_version(&mut lock, spec)?;
    lock.save(&config.lock_file)?;
    writeln!(
        std::io::stdout().lock(),
        "Serving {}@{} ({}) from now on; a running server switches within a second.",
        entry.name,
        entry.version,
        entry.file
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn diff(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let (_runtime, lock, scan) = super::scan(config).await?;
    let module = registry::find(&scan, name, &config.plugins_dir)?;
    let out = &mut std::io::stdout().lock();
    match module.diff(&lock) {
        Some(diff) => write!(out, "{}", diff.render())?,
        None => writeln!(
            out,
            "{} ({}): {}",
            module.name(),
            module.file,
            module.state.detail()
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Ask on the terminal; without one, refuse rather than guess.
fn confirm(out: &mut impl Write, question: &str) -> anyhow::Result<bool> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "approving needs a confirmation and there is no terminal to ask on: read `mcpist plugins diff NAME`, then approve with --yes"
        );
    }
    write!(out, "\n{question} [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub(super) async fn reject(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let (_runtime, _lock, scan) = super::scan(config).await?;
    let rejected = registry::reject(&scan, name, &config.plugins_dir, &config.rejected_dir())?;
    writeln!(std::io::stdout().lock(), "Rejected {rejected}.")?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn remove(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let mut lock = Lock::load(&config.lock_file)?;
    let removed = registry::remove(
        &mut lock,
        &config.lock_file,
        name,
        &config.plugins_dir,
        &config.rejected_dir(),
    )?;
    let out = &mut std::io::stdout().lock();
    for module in removed {
        match module.moved_to {
            Some(aside) => writeln!(
                out,
                "Removed {name} ({}): unpinned, file moved to {}.",
                module.file,
                aside.display()
            )?,
            None => writeln!(
                out,
                "Removed {name} ({}): unpinned (the file was already gone).",
                module.file
            )?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn host(
    config: &Config,
    name: &str,
    host: &str,
    rule: HostRule,
) -> anyhow::Result<ExitCode> {
    let mut lock = Lock::load(&config.lock_file)?;
    let files = registry::set_host_rule(&mut lock, name, host, rule.clone())?;
    lock.save(&config.lock_file)?;
    let out = &mut std::io::stdout().lock();
    let summary = rule.summary();
    writeln!(
        out,
        "{name} may use {host} with {} ({} in {}).",
        if summary.is_empty() {
            "any method and path, public addresses only".to_owned()
        } else {
            summary
        },
        files.join(", "),
        config.lock_file.display()
    )?;
    // A running server watches the lock and rescans it (catalog/live.rs);
    // calls already running finish under the rules they started with.
    writeln!(
        out,
        "A running server applies this within a second, to the calls that start after it."
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn verify(config: &Config) -> anyhow::Result<ExitCode> {
    let (_runtime, _lock, scan) = super::scan(config).await?;
    let out = &mut std::io::stdout().lock();
    let mut problems = 0;
    for module in &scan.modules {
        match &module.state {
            ModuleState::Pinned | ModuleState::Standby { .. } => {
                writeln!(out, "ok       {} ({})", module.name(), module.file)?
            }
            state => {
                problems += 1;
                writeln!(
                    out,
                    "{:<8} {} ({}): {}",
                    state.label(),
                    module.name(),
                    module.file,
                    state.detail()
                )?;
            }
        }
    }
    for pin in &scan.missing {
        problems += 1;
        writeln!(
            out,
            "missing  {} ({}): pinned but not in {}",
            pin.name,
            pin.file,
            config.plugins_dir.display()
        )?;
    }
    if let Some((ok, line)) = engine_state(config, &scan) {
        problems += usize::from(!ok);
        writeln!(out, "{:<8} {line}", if ok { "ok" } else { "engine" })?;
    }
    if problems == 0 {
        writeln!(out, "All {} modules are pinned.", scan.modules.len())?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(
            out,
            "{problems} problem(s): approve modules you trust with `mcpist plugins approve NAME`."
        )?;
        Ok(ExitCode::FAILURE)
    }
}

/// Each pinned module's approved hosts with the owner's rules: the network
/// reach of everything that is served.
fn print_hosts(out: &mut impl Write, scan: &registry::Scan) -> std::io::Result<()> {
    let mut header = false;
    for module in scan.pinned() {
        let Some(manifest) = &module.manifest else {
            continue;
        };
        for host in &manifest.hosts {
            if !header {
                writeln!(out, "\nApproved outbound hosts:")?;
                header = true;
            }
            let rule = module
                .host_rules
                .get(host)
                .map(|r| r.summary())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "any method and path; public addresses only".to_owned());
            writeln!(out, "  {:<10} {host}  ({rule})", module.name())?;
        }
    }
    Ok(())
}

fn tool_names(m: &ModuleManifest) -> String {
    m.tools
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
