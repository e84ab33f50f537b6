//! `cargo xtask`: building the bundled modules, running the server, testing.
//!
//! - `cargo xtask build-plugins`: build every bundled module (plugins/*/) into
//!   `plugins/<name>.wasm`, reproducibly;
//! - `cargo xtask build-fixtures`: build the hostile test modules;
//! - `cargo xtask build-examples`: build the example module of
//!   `plugins/examples/` in every language (see `examples.rs`);
//! - `cargo xtask verify-reproducible`: rebuild the bundled modules from
//!   source in a fresh target directory and check that each has the sha256
//!   `registry.lock` pins;
//! - `cargo xtask run [-- ARGS]`: ensure the wasm target, build modules and
//!   host (release), and serve MCP over stdio with the repository's config;
//! - `cargo xtask test`: the whole test suite (the host's Rust tests, the
//!   modules' unit tests, then end to end with the official Python MCP SDK
//!   against local upstream servers, and the web console in Debian's headless
//!   Chromium), installing what it needs;
//! - `cargo xtask bench [--calls N] [--no-micro] [--languages-only | --vaults-only | --plans-only]`: one table of what a tool
//!   call costs (against a do-nothing server and a native twin), cold starts
//!   and RSS, then the criterion micro-benchmarks (release build).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

mod bench;
mod examples;
mod plan_bench;
mod vault_bench;

const WASM_TARGET: &str = "wasm32-wasip2";
/// Where the source tree and cargo's registry appear in the built modules, so
/// that the bytes do not depend on where the repository was cloned.
const REMAPPED_SOURCE: &str = "/mcpist";
const REMAPPED_CARGO_HOME: &str = "/cargo";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let command = args.next().and_then(|a| a.into_string().ok());
    let rest: Vec<OsString> = args.collect();
    let root = workspace_root();
    match command.as_deref() {
        Some("build-plugins") => build_plugins(&root).map(drop),
        Some("build-fixtures") => build_fixtures(&root).map(drop),
        Some("build-examples") => examples::build_examples(&root, &rest).map(drop),
        Some("verify-reproducible") => verify_reproducible(&root),
        Some("run") => run(&root, &rest),
        Some("test") => test(&root),
        Some("bench") => bench::run(&root, &rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 build-plugins   build the bundled modules into plugins/ (reproducible)\n  \
                 build-fixtures  build the hostile test modules\n  \
                 build-examples [LANGUAGE...]  build the example module in every language (or those named) into target/examples/\n  \
                 verify-reproducible  rebuild the bundled modules from scratch and compare with registry.lock\n  \
                 run [-- ARGS]   build everything and serve MCP over stdio (ARGS go to `mcpist serve`)\n  \
                 test            run the whole test suite\n  \
                 bench [--calls N] [--no-micro] [--languages-only|--vaults-only|--plans-only]  the benchmark table (release build), then the criterion micro-benchmarks"
            );
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

pub(crate) fn status(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// Install the wasm target if the toolchain lacks it (rust-toolchain.toml
/// asks rustup for it, but an already-installed toolchain may predate that).
fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("cannot run rustup: install Rust with rustup (https://rustup.rs)")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    eprintln!("xtask: installing the {WASM_TARGET} target");
    status(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// `cargo build --release` of the components of `manifest` for the wasm
/// target, reproducibly; returns the folder holding the `.wasm` files.
pub(crate) fn build_components(
    root: &Path,
    manifest: &Path,
    target_dir: &Path,
) -> anyhow::Result<PathBuf> {
    ensure_wasm_target()?;
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("cannot find CARGO_HOME")?;
    // Paths embedded by panics and debug info are remapped; nothing else in
    // the build depends on the machine. CARGO_ENCODED_RUSTFLAGS replaces any
    // RUSTFLAGS from the environment, which would change the output.
    let flags = [
        format!("--remap-path-prefix={}={REMAPPED_SOURCE}", root.display()),
        format!(
            "--remap-path-prefix={}={REMAPPED_CARGO_HOME}",
            cargo_home.display()
        ),
    ]
    .join("\x1f");
    status(
        cargo()
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                WASM_TARGET,
                "--manifest-path",
            ])
            .arg(manifest)
            .arg("--target-dir")
            .arg(target_dir)
            .env("CARGO_ENCODED_RUSTFLAGS", flags)
            .env_remove("RUSTFLAGS")
            .env("SOURCE_DATE_EPOCH", "0"),
    )?;
    Ok(target_dir.join(WASM_TARGET).join("release"))
}

/// One component a workspace builds.
struct Built {
    /// The built file, `<crate>.wasm` in the target folder.
    file: PathBuf,
    /// Where it goes in the plugins folder: `<crate>.wasm` for a module,
    /// `engines/<crate>.wasm` for a script engine.
    installed_as: String,
}

/// The workspaces of bundled components: the modules, and the script
/// engines (a workspace of their own, so that their dependencies' features
/// are not unified with the modules'), each with its target folder and
/// where its components go in `plugins/`.
const BUNDLED: [(&str, &str, &str); 2] = [
    ("plugins", "plugins", ""),
    ("plugins/engines", "engines", "engines/"),
];

/// Build a workspace of modules for wasm32-wasip2 with reproducible flags and
/// return the built components, to be installed under `prefix`.
fn build_modules(
    root: &Path,
    workspace: &str,
    target_dir: &str,
    prefix: &str,
) -> anyhow::Result<Vec<Built>> {
    let target_dir = root.join("target").join(target_dir);
    let out = build_components(root, &root.join(workspace).join("Cargo.toml"), &target_dir)?;
    let mut built = Vec::new();
    for member in workspace_members(&root.join(workspace))? {
        let file = out.join(format!("{member}.wasm"));
        if !file.is_file() {
            bail!("expected {} after the build", file.display());
        }
        let installed_as = format!("{prefix}{member}.wasm");
        built.push(Built { file, installed_as });
    }
    Ok(built)
}

/// The module crates of a workspace: its subfolders whose Cargo.toml builds
/// a component (`cdylib`); libraries such as the SDK are skipped.
fn workspace_members(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let manifest = std::fs::read_to_string(path.join("Cargo.toml")).unwrap_or_default();
        if manifest.contains("\"cdylib\"") {
            members.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    members.sort();
    Ok(members)
}

/// Build every bundled component (modules and script engines).
fn build_bundled(root: &Path) -> anyhow::Result<Vec<Built>> {
    let mut built = Vec::new();
    for (workspace, target_dir, prefix) in BUNDLED {
        built.extend(build_modules(root, workspace, target_dir, prefix)?);
    }
    Ok(built)
}

fn build_plugins(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut installed = Vec::new();
    for Built { file, installed_as } in build_bundled(root)? {
        let dest = root.join("plugins").join(&installed_as);
        std::fs::copy(&file, &dest)
            .with_context(|| format!("cannot copy to {}", dest.display()))?;
        eprintln!(
            "xtask: built {}",
            dest.strip_prefix(root).unwrap_or(&dest).display()
        );
        installed.push(dest);
    }
    Ok(installed)
}

fn build_fixtures(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    Ok(build_modules(root, "tests/fixtures", "fixtures", "")?
        .into_iter()
        .map(|built| built.file)
        .collect())
}

/// Rebuild the bundled modules from source, from scratch, and compare each
/// with its pin: anyone can check that the committed lock pins what the
/// committed sources build to.
fn verify_reproducible(root: &Path) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    struct LockFile {
        #[serde(default)]
        module: Vec<Pin>,
        script_engine: Option<Pin>,
    }
    #[derive(serde::Deserialize)]
    struct Pin {
        file: String,
        sha256: String,
    }
    use sha2::Digest;

    // From scratch, in the folders `build-plugins` and `test` build in, so
    // that a `test` after this (as in CI) builds nothing again.
    for (_, target_dir, _) in BUNDLED {
        let scratch = root.join("target").join(target_dir);
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch)
                .with_context(|| format!("cannot clear {}", scratch.display()))?;
        }
    }
    let built = build_bundled(root)?;
    let lock: LockFile = toml::from_str(
        &std::fs::read_to_string(root.join("registry.lock"))
            .context("cannot read registry.lock")?,
    )
    .context("registry.lock is not valid")?;
    let pins: Vec<&Pin> = lock.module.iter().chain(&lock.script_engine).collect();
    let mut problems = Vec::new();
    for built in &built {
        let file = &built.installed_as;
        let sha256 = hex::encode(sha2::Sha256::digest(std::fs::read(&built.file)?));
        match pins.iter().find(|p| p.file == *file) {
            Some(pin) if pin.sha256 == sha256 => eprintln!("xtask: {file}: reproduced {sha256}"),
            Some(pin) => problems.push(format!(
                "{file}: built {sha256}, registry.lock pins {}",
                pin.sha256
            )),
            None => problems.push(format!("{file}: built, but not pinned in registry.lock")),
        }
    }
    for pin in &pins {
        if !built.iter().any(|b| b.installed_as == pin.file) {
            problems.push(format!(
                "{}: pinned in registry.lock, but no source builds it",
                pin.file
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "the bundled modules do not reproduce registry.lock:\n  {}\nIf the sources changed on purpose, rebuild (`cargo xtask build-plugins`) and approve the new builds (`mcpist plugins approve NAME`, `mcpist plugins approve-engine` for the script engine).",
            problems.join("\n  ")
        );
    }
    eprintln!(
        "xtask: all {} bundled components reproduce registry.lock",
        built.len()
    );
    Ok(())
}

/// Build the bundled modules and the release host; return the binary.
fn build_release(root: &Path) -> anyhow::Result<PathBuf> {
    build_plugins(root)?;
    status(
        cargo()
            .current_dir(root)
            .args(["build", "--release", "--locked", "-p", "mcpist"]),
    )?;
    Ok(root.join("target/release/mcpist"))
}

fn run(root: &Path, args: &[OsString]) -> anyhow::Result<()> {
    let binary = build_release(root)?;
    let args = match args.first() {
        Some(first) if first == "--" => &args[1..],
        _ => args,
    };
    eprintln!("xtask: serving MCP over stdio (bundled modules from plugins/, config mcpist.toml)");
    status(
        Command::new(binary)
            .current_dir(root)
            .arg("--config")
            .arg(root.join("mcpist.toml"))
            .arg("serve")
            .args(args),
    )
}

fn test(root: &Path) -> anyhow::Result<()> {
    build_plugins(root)?;
    build_fixtures(root)?;
    examples::build_examples(root, &[])?;
    status(
        cargo()
            .current_dir(root)
            .args(["test", "--locked", "--workspace"]),
    )?;
    // The modules' own unit tests run natively: they exercise the API logic
    // against local servers, which a wasm test binary could not start.
    status(
        cargo()
            .current_dir(root.join("plugins"))
            .args(["test", "--locked", "--target", &host_triple()?])
            .arg("--target-dir")
            .arg(root.join("target/plugins-test")),
    )?;
    let python = python_env(root)?;
    let npm = npm_env(root)?;
    ensure_chromium()?;
    let binary = root.join("target/debug/mcpist");
    status(
        Command::new(python)
            .current_dir(root)
            .args(["-m", "pytest", "-q", "tests/e2e"])
            .env("MCPIST_BIN", binary)
            .env("MCPIST_REPO", root)
            .env("MCPIST_NPM", &npm)
            .env(
                "OCTOKIT_FIXTURES_SERVER",
                npm.join("node_modules/.bin/octokit-fixtures-server"),
            ),
    )
}

/// Debian's Chromium and its WebDriver, for the web console's browser tests.
fn ensure_chromium() -> anyhow::Result<()> {
    ensure_debian_packages(
        "the browser tests",
        &["chromium", "chromium-driver"],
        &[CHROMIUM, CHROMEDRIVER],
    )
}

/// Install Debian `packages` with apt-get unless every file of `present` is
/// there already; only as root (which CI is), otherwise say what to install.
pub(crate) fn ensure_debian_packages(
    purpose: &str,
    packages: &[&str],
    present: &[&str],
) -> anyhow::Result<()> {
    if present.iter().all(|file| Path::new(file).is_file()) {
        return Ok(());
    }
    let uid = Command::new("id").arg("-u").output()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        anyhow::bail!(
            "{purpose} need {}: install them with `sudo apt-get install {}`",
            present.join(" and "),
            packages.join(" ")
        );
    }
    eprintln!("xtask: installing {} for {purpose}", packages.join(" "));
    status(Command::new("apt-get").args(["update", "-qq"]))?;
    status(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages),
    )
    .with_context(|| format!("installing {} for {purpose}", packages.join(" ")))
}

/// Where Debian puts Chromium and ChromeDriver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The platform cargo builds for by default, e.g. `x86_64-unknown-linux-gnu`.
fn host_triple() -> anyhow::Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("cannot run rustc")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` names no host")
}

/// The npm packages of the end-to-end tests (recorded GitHub scenarios, the
/// TypeScript MCP SDK, an OpenID provider with the Node 22 it needs:
/// tests/e2e/package.json, locked
/// by its package-lock.json), installed with `npm ci` into target/e2e-npm
/// and reinstalled when the lock changes.
fn npm_env(root: &Path) -> anyhow::Result<PathBuf> {
    let source = root.join("tests/e2e");
    let lock = std::fs::read_to_string(source.join("package-lock.json"))
        .context("cannot read tests/e2e/package-lock.json")?;
    let dir = root.join("target/e2e-npm");
    let stamp = dir.join("package-lock.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str()) {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(source.join(file), dir.join(file))?;
    }
    status(Command::new("npm").current_dir(&dir).args([
        "ci",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]))
    .context("installing the end-to-end tests' npm packages needs Node.js 18 or newer with npm")?;
    std::fs::write(&stamp, lock)?;
    Ok(dir)
}

/// A virtual environment with the end-to-end tests' requirements, made once
/// and remade when the requirements change.
pub(crate) fn python_env(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = venv(
        root,
        &root.join("tests/e2e/requirements.txt"),
        "target/e2e-venv",
    )?;
    Ok(venv.join("bin/python"))
}

/// A virtual environment under `target/` (`dir`) with `requirements`, made
/// once and remade when they change.
pub(crate) fn venv(root: &Path, requirements: &Path, dir: &str) -> anyhow::Result<PathBuf> {
    let wanted = std::fs::read_to_string(requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    let venv = root.join(dir);
    let stamp = venv.join("requirements.installed");
    if venv.join("bin/python").is_file()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
    {
        return Ok(venv);
    }
    let system_python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    status(
        Command::new(system_python)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )?;
    status(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements),
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(venv)
}
