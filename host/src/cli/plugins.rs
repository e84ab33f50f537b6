//! `mcpist plugins ...`: what is in the plugins folder, and approving it.

use std::process::ExitCode;

use crate::config::Config;
use crate::registry::{self, ModuleFile, ModuleManifest, ModuleState};

/// How many hex digits of a sha256 to show in tables.
const HASH_PREFIX: usize = 12;

pub(super) async fn list(config: &Config) -> anyhow::Result<ExitCode> {
    let (_runtime, _lock, scan) = super::scan(config).await?;
    if scan.modules.is_empty() && scan.missing.is_empty() {
        println!("No modules in {}.", config.plugins_dir.display());
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
    print_table(&["NAME", "VERSION", "STATE", "SHA256", "TOOLS"], &rows);
    for module in &scan.modules {
        if module.state != ModuleState::Pinned {
            println!(
                "\n{} ({}): {}",
                module.name(),
                module.file,
                state_detail(&module.state)
            );
        }
    }
    for pin in &scan.missing {
        println!(
            "\n{} ({}): pinned, but the file is missing from {}",
            pin.name,
            pin.file,
            config.plugins_dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn approve(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let (_runtime, mut lock, scan) = super::scan(config).await?;
    let entry = registry::approve(&scan, &mut lock, name, &config.plugins_dir)?;
    let module = scan
        .modules
        .iter()
        .find(|m| m.file == entry.file)
        .expect("approve returns an entry for a scanned module");
    print_declaration(module);
    lock.save(&config.lock_file)?;
    println!(
        "\nPinned {} {} (sha256 {}) in {}.",
        entry.name,
        entry.version,
        entry.sha256,
        config.lock_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn verify(config: &Config) -> anyhow::Result<ExitCode> {
    let (_runtime, _lock, scan) = super::scan(config).await?;
    let mut problems = 0;
    for module in &scan.modules {
        match &module.state {
            ModuleState::Pinned => println!("ok       {} ({})", module.name(), module.file),
            state => {
                problems += 1;
                println!(
                    "{:<8} {} ({}): {}",
                    state.label(),
                    module.name(),
                    module.file,
                    state_detail(state)
                );
            }
        }
    }
    for pin in &scan.missing {
        problems += 1;
        println!(
            "missing  {} ({}): pinned but not in {}",
            pin.name,
            pin.file,
            config.plugins_dir.display()
        );
    }
    if problems == 0 {
        println!("All {} modules are pinned.", scan.modules.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{problems} problem(s); approve pending modules with `mcpist plugins approve NAME`."
        );
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

fn print_declaration(module: &ModuleFile) {
    let Some(m) = &module.manifest else { return };
    println!(
        "Module {} {} ({}, sha256 {})",
        m.name, m.version, module.file, module.sha256
    );
    println!("  {}", m.description);
    if let ModuleState::Changed { pinned_sha256 } = &module.state {
        println!("  replaces the pinned file with sha256 {pinned_sha256}");
    }
    let none = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_owned()
        } else {
            v.join(", ")
        }
    };
    println!("  outbound hosts: {}", none(&m.hosts));
    if m.credentials.is_empty() {
        println!("  credentials: (none)");
    }
    for c in &m.credentials {
        println!(
            "  credential: service {} injected as {:?} for {}",
            c.service,
            c.inject,
            none(&c.hosts)
        );
    }
    println!("  tools:");
    for t in &m.tools {
        let flags = t.flags.names();
        println!("    {} [{}]: {}", t.name, flags.join(", "), t.description);
    }
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

fn print_table(header: &[&str; 5], rows: &[[String; 5]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == 4 {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(*header);
    for row in rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
}
