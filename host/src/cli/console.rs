//! `mcpist console`: the owner's web console, alone on loopback, and
//! `mcpist console link` for a console already running.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::web::{self, Console, session};

pub(super) async fn serve(
    config: &Config,
    bind: Option<SocketAddr>,
    open_browser: bool,
) -> anyhow::Result<ExitCode> {
    let bind = bind.unwrap_or(config.console.bind);
    if !bind.ip().is_loopback() && config.console.bind != bind {
        anyhow::bail!(
            "{bind} is not a loopback address: the console is for this machine's owner. To serve it elsewhere, set `[console] bind` and `allow_remote = true` in mcpist.toml (and put TLS in front)"
        );
    }
    let runtime = Arc::new(super::runtime(config)?);
    let broker = Arc::new(super::account::broker(config));
    let console = Arc::new(Console::new(config, runtime, broker));
    let linked = console.clone();
    web::serve(console, bind, move |bound| {
        match linked.login_link(&format!("http://{bound}")) {
            Ok(link) => {
                // The link alone on stdout, for scripts; the rest on stderr.
                let _ = writeln!(std::io::stdout().lock(), "{link}");
                eprintln!(
                    "The MCPist console is at http://{bound}{}/. Open the link above to sign in: it works once, within {} minutes. `mcpist console link` prints another.",
                    web::PREFIX,
                    session::LINK_LIFETIME.as_secs() / 60
                );
                if open_browser {
                    super::account::open_browser(&link);
                }
            }
            Err(e) => eprintln!("cannot issue a login link: {e}"),
        }
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn link(config: &Config) -> anyhow::Result<ExitCode> {
    let url_file = session::url_file(&config.home);
    let base = std::fs::read_to_string(&url_file).map_err(|_| {
        anyhow::anyhow!(
            "no console is running on {}: start one with `mcpist console` (or `mcpist serve --http`)",
            config.home.display()
        )
    })?;
    let base = base.trim();
    let address: SocketAddr = base
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("{} holds no console address", url_file.display()))?;
    if std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(2)).is_err() {
        anyhow::bail!(
            "the console recorded at {base} does not answer (it stopped without removing {}): start one with `mcpist console`",
            url_file.display()
        );
    }
    let link = web::login_link(&session::LoginLinks::new(&config.home), base)?;
    writeln!(std::io::stdout().lock(), "{link}")?;
    eprintln!(
        "The link works once, within {} minutes.",
        session::LINK_LIFETIME.as_secs() / 60
    );
    Ok(ExitCode::SUCCESS)
}
