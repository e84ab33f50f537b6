//! `cargo xtask build-examples`: the example module of `plugins/examples/`,
//! one per language, each built with that language's own component tooling
//! from pinned packages into `target/examples/example-<language>.wasm`.
//!
//! The toolchains are installed once per machine and version, outside the
//! clone's sources (a virtual environment under `target/`), and reused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;

use crate::{status, venv};

/// The languages with an example, in the order they are built.
pub const LANGUAGES: [&str; 3] = ["rust", "python", "js"];

/// Build every example; returns the built files.
pub fn build_examples(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = root.join("target/examples");
    std::fs::create_dir_all(&out)?;
    let mut built = Vec::new();
    for language in LANGUAGES {
        let started = Instant::now();
        let wasm = out.join(format!("example-{language}.wasm"));
        match language {
            "rust" => build_rust(root, &wasm)?,
            "python" => build_python(root, &wasm)?,
            "js" => build_js(root, &wasm)?,
            other => unreachable!("no build for {other}"),
        }
        let size = std::fs::metadata(&wasm)?.len();
        eprintln!(
            "xtask: built {} ({:.1} MiB) in {:.1?}",
            wasm.display(),
            size as f64 / f64::from(1 << 20),
            started.elapsed()
        );
        built.push(wasm);
    }
    Ok(built)
}

/// Rust: cargo for wasm32-wasip2, with the SDK in `plugins/sdk` and `wstd`
/// for HTTP; reproducible like the bundled modules.
fn build_rust(root: &Path, wasm: &Path) -> anyhow::Result<()> {
    let out = crate::build_components(
        root,
        &root.join("plugins/examples/rust/Cargo.toml"),
        &root.join("target/examples/rust"),
    )?;
    std::fs::copy(out.join("example_rust.wasm"), wasm)?;
    Ok(())
}

/// Python: componentize-py (its own CPython inside the component), with the
/// SDK in `plugins/sdk-python` on the module's path.
fn build_python(root: &Path, wasm: &Path) -> anyhow::Result<()> {
    let example = root.join("plugins/examples/python");
    let venv = venv(
        root,
        &example.join("requirements.txt"),
        "target/examples/python-venv",
    )?;
    status(
        Command::new(venv.join("bin/componentize-py"))
            .current_dir(root)
            .args(["-d", "wit", "-w", "mcpist:plugin/plugin", "componentize"])
            .arg("-p")
            .arg(root.join("plugins/sdk-python"))
            .arg("-p")
            .arg(&example)
            .args(["app", "-o"])
            .arg(wasm),
    )
    .context("building the Python example with componentize-py")
}

/// JavaScript: esbuild bundles the module with the SDK in `plugins/sdk-js`,
/// componentize-js (SpiderMonkey inside the component) makes the component;
/// the packages are those of the example's package-lock.json, installed with
/// `npm ci` next to it, again only when the lock changes.
fn build_js(root: &Path, wasm: &Path) -> anyhow::Result<()> {
    let example = root.join("plugins/examples/javascript");
    let lock = std::fs::read_to_string(example.join("package-lock.json"))
        .context("cannot read plugins/examples/javascript/package-lock.json")?;
    let stamp = example.join("node_modules/.package-lock.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(lock.as_str()) {
        status(Command::new("npm").current_dir(&example).args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]))
        .context(
            "installing the JavaScript example's packages needs Node.js 20 or newer with npm",
        )?;
        std::fs::write(&stamp, lock)?;
    }
    status(
        Command::new("node")
            .current_dir(&example)
            .arg("build.mjs")
            .arg(wasm),
    )
    .context("building the JavaScript example with componentize-js")
}
