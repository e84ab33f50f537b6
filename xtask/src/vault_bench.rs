//! Part of `cargo xtask bench`: what the vault a token lives in costs a
//! call that uses it. The same credentialed call (`notion.search`, against
//! the local stand-in of api.notion.com from tests/e2e/upstreams) is timed
//! with the token
//!
//! - in the local encrypted vault (the baseline),
//! - in a real OpenBao dev server (the `bao` binary the end-to-end tests
//!   install), with its secrets cached in memory (`cache_secs`), and
//!   without a cache (a vault round trip per call),
//! - as an OAuth account whose access token is not due for renewal (the
//!   token set in an environment vault; its provider is never contacted),
//!
//! with the four servers running side by side and called in turn, so that
//! a drift of the machine or of the upstream touches every row alike.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{Running, interleaved_medians};

const CALL: &str = r#"{"name":"call_module_tool","arguments":{"module":"notion","tool":"search","arguments":{"query":"Roadmap"}}}"#;
const TOKEN: &str = "secret_bench_notion_1";

pub fn run(root: &Path, binary: &Path, calls: usize) -> anyhow::Result<()> {
    let python = crate::python_env(root)?;
    let bao_binary = python
        .parent()
        .context("the venv has a bin folder")?
        .join("bao");
    let dir = root.join("target/bench-vaults");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    let (_upstream, upstream) = crate::bench::upstream(
        &python,
        root,
        "notion",
        &format!(r#"{{"{TOKEN}": "workspace-a"}}"#),
        0,
    )?;
    let (_bao, bao_url, bao_token) = openbao(&bao_binary, &dir)?;
    let common = format!(
        "plugins_dir = {:?}\nlock_file = \"registry.lock\"\n[audit]\nfsync = \"never\"\n[upstreams]\n\"api.notion.com\" = \"{upstream}\"\n",
        root.join("plugins")
    );
    let bao_vault = |cache: u64| {
        format!(
            "[vaults.bao]\nkind = \"vault\"\naddress = \"{bao_url}\"\ntoken_env = \"MCPIST_BENCH_BAO_TOKEN\"\ncache_secs = {cache}\n[services.notion]\nvault = \"bao\"\n"
        )
    };
    // An OAuth account's token set, a day from expiry, in an environment
    // vault; the token endpoint is a closed port, so a renewal would fail
    // the call rather than go unnoticed.
    let expires_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 86_400;
    let token_set = format!(
        r#"{{"mcpist_oauth":1,"access_token":"{TOKEN}","token_type":"Bearer","refresh_token":"unused","expires_at":{expires_at}}}"#
    );
    let oauth = "[vaults.bench]\nkind = \"env\"\nprefix = \"MCPIST_BENCH_SECRET_\"\n[services.notion]\nvault = \"bench\"\n[oauth.notion]\nclient_id = \"bench\"\ntoken_endpoint = \"http://127.0.0.1:9/token\"\n";

    let rows: Vec<(&str, PathBuf)> = vec![
        (
            "token in the local encrypted vault",
            home(root, &dir, "local", &common)?,
        ),
        (
            "token in OpenBao, cache_secs = 3600",
            home(
                root,
                &dir,
                "bao-cached",
                &format!("{common}{}", bao_vault(3600)),
            )?,
        ),
        (
            "token in OpenBao, no cache",
            home(
                root,
                &dir,
                "bao-uncached",
                &format!("{common}{}", bao_vault(0)),
            )?,
        ),
        (
            "OAuth account, token not due",
            home(root, &dir, "oauth", &format!("{common}{oauth}"))?,
        ),
    ];
    let command = |home: &Path, args: &[&str]| {
        let mut command = Command::new(binary);
        command
            .args(args)
            .env("MCPIST_HOME", home)
            .env("MCPIST_LOG", "warn")
            .env("MCPIST_BENCH_BAO_TOKEN", &bao_token)
            .env("MCPIST_BENCH_SECRET_NOTION_BENCH", &token_set);
        command
    };
    for (label, home) in &rows {
        let host = command(
            home,
            &[
                "plugins",
                "host",
                "notion",
                "https://api.notion.com",
                "--allow-private",
            ],
        )
        .stdout(Stdio::null())
        .status()?;
        if !host.success() {
            bail!("cannot allow the local Notion stand-in for {label}");
        }
        if label.starts_with("OAuth") {
            std::fs::write(
                home.join("accounts.toml"),
                "version = 1\n[[account]]\nservice = \"notion\"\nname = \"bench\"\nvault = \"bench\"\nreference = \"MCPIST_BENCH_SECRET_NOTION_BENCH\"\nkind = \"oauth\"\n[default]\nnotion = \"bench\"\n",
            )?;
        } else {
            add_account(command(home, &["account", "add", "notion", "bench"]))?;
        }
    }

    let mut commands: Vec<Command> = rows
        .iter()
        .map(|(_, home)| command(home, &["serve"]))
        .collect();
    let medians = interleaved_medians(&mut commands, calls, CALL)?;
    println!();
    println!(
        "  credentialed calls (notion.search, local stand-in of api.notion.com), {calls} calls per row, the rows' servers called in turn:"
    );
    println!("  {:<40}{:>10}{:>12}", "", "median", "× local");
    for ((label, _), m) in rows.iter().zip(&medians) {
        println!(
            "  {label:<40}{:>10}{:>12.2}",
            format!("{:.3} ms", m.as_secs_f64() * 1e3),
            m.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
    Ok(())
}

/// A data folder with its own copy of the lock (`plugins host` writes it).
fn home(root: &Path, dir: &Path, name: &str, config: &str) -> anyhow::Result<PathBuf> {
    let home = dir.join(name);
    std::fs::create_dir_all(&home)?;
    std::fs::copy(root.join("registry.lock"), home.join("registry.lock"))?;
    std::fs::write(home.join("mcpist.toml"), config)?;
    Ok(home)
}

fn add_account(mut command: Command) -> anyhow::Result<()> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    child
        .stdin
        .take()
        .context("piped")?
        .write_all(format!("{TOKEN}\n").as_bytes())?;
    if !child.wait()?.success() {
        bail!("`mcpist account add` failed");
    }
    Ok(())
}

/// An OpenBao dev server (in memory, KV v2 at `secret/`) on a free port,
/// with a home of its own (it would write `~/.vault-token`).
fn openbao(binary: &Path, dir: &Path) -> anyhow::Result<(Running, String, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let token = format!("bench-root-{}", std::process::id());
    let bao_home = dir.join("bao-home");
    std::fs::create_dir_all(&bao_home)?;
    let child = Command::new(binary)
        .args(["server", "-dev", "-dev-no-store-token"])
        .arg(format!("-dev-root-token-id={token}"))
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        .env_clear()
        .env("HOME", &bao_home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(port) {
        if Instant::now() > deadline {
            bail!("OpenBao did not become ready on port {port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((running, format!("http://127.0.0.1:{port}"), token))
}

fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = "GET /v1/sys/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.0 200")
}
