//! `mcpist plugins ...`: what is in the plugins folder, and approving it.
//!
//! Output goes through `writeln!` so that a closed pipe (`... | head`) ends
//! the command quietly instead of panicking; see `main`.

use std::io::Write;
use std::process::ExitCode;

use crate::config::Config;
use crate::registry::{self, HostRule, Lock, ModuleFile, ModuleManifest, ModuleState};

/// How many hex digits of a sha256 to show in tables.
const HASH_PREFIX: usize = 12;

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
                short(&m.sha256),
                m.manifest.as_ref().map_or(String::new(), tool_names),
            ]
        })
        .chain(scan.missing.iter().map(|pin| {
            [
                pin.name.clone(),
                pin.version.clone(),
                "missing".to_owned(),
                short(&pin.sha256),
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
                state_detail(&module.state)
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
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn approve(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let (_runtime, mut lock, scan) = super::scan(config).await?;
    let out = &mut std::io::stdout().lock();
    let entry = registry::approve(&scan, &mut lock, name, &config.plugins_dir)?;
    let module = scan
        .modules
        .iter()
        .find(|m| m.file == entry.file)
        .expect("approve returns an entry for a scanned module");
    // Show the declaration first: if it cannot be shown, nothing is pinned.
    print_declaration(out, module)?;
    for (host, rule) in &entry.host_rules {
        writeln!(
            out,
            "  kept from the earlier approval: {host}: {}",
            rule.summary()
        )?;
    }
    out.flush()?;
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
    writeln!(out, "A running server applies this when it is restarted.")?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn verify(config: &Config) -> anyhow::Result<ExitCode> {
    let (_runtime, _lock, scan) = super::scan(config).await?;
    let out = &mut std::io::stdout().lock();
    let mut problems = 0;
    for module in &scan.modules {
        match &module.state {
            ModuleState::Pinned => writeln!(out, "ok       {} ({})", module.name(), module.file)?,
            state => {
                problems += 1;
                writeln!(
                    out,
                    "{:<8} {} ({}): {}",
                    state.label(),
                    module.name(),
                    module.file,
                    state_detail(state)
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

/// One sentence on what a state means and what to do.
pub(super) fn state_detail(state: &ModuleState) -> String {
    match state {
        ModuleState::Pinned => "pinned and served".to_owned(),
        ModuleState::Pending => {
            "new module, not served until approved: review it, then `mcpist plugins approve NAME`"
                .to_owned()
        }
        ModuleState::Changed { pinned_sha256 } => format!(
            "the file's sha256 differs from the pinned {}; it is not served. If you expected this change, \
             review it and approve it again; otherwise restore the pinned file",
            short(pinned_sha256)
        ),
        ModuleState::Invalid { reason } => format!("cannot be used: {reason}"),
    }
}

fn print_declaration(out: &mut impl Write, module: &ModuleFile) -> std::io::Result<()> {
    let Some(m) = &module.manifest else {
        return Ok(());
    };
    writeln!(
        out,
        "Module {} {} ({}, sha256 {})",
        m.name, m.version, module.file, module.sha256
    )?;
    writeln!(out, "  {}", m.description)?;
    if let ModuleState::Changed { pinned_sha256 } = &module.state {
        writeln!(
            out,
            "  replaces the pinned file with sha256 {pinned_sha256}"
        )?;
    }
    let none = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_owned()
        } else {
            v.join(", ")
        }
    };
    writeln!(out, "  outbound hosts: {}", none(&m.hosts))?;

    if m.credentials.is_empty() {
        writeln!(out, "  credentials: (none)")?;
    }
    for c in &m.credentials {
        writeln!(
            out,
            "  credential: service {} injected as {} for {}",
            c.service,
            c.inject,
            none(&c.hosts)
        )?;
    }
    writeln!(out, "  tools:")?;
    for t in &m.tools {
        writeln!(
            out,
            "    {} [{}]: {}",
            t.name,
            t.flags.names().join(", "),
            t.description
        )?;
    }
    Ok(())
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

fn short(sha256: &str) -> String {
    sha256.chars().take(HASH_PREFIX).collect()
}
