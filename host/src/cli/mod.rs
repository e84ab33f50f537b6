//! The `mcpist` command line.

mod account;
mod audit;
mod client;
mod console;
mod plugins;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{Config, Env};
use crate::registry::{self, HostRule, Lock};
use crate::runtime::Runtime;
use crate::server::{Server, ServerBuilder};

#[derive(Debug, Parser)]
#[command(
    name = "mcpist",
    version,
    about = "A personal MCP server whose integrations are sandboxed WebAssembly components"
)]
struct Cli {
    /// Configuration file [default: $MCPIST_HOME/mcpist.toml if it exists]
    #[arg(long, global = true, env = "MCPIST_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Plugins folder (overrides `plugins_dir` in the config)
    #[arg(long, global = true, value_name = "DIR")]
    plugins_dir: Option<PathBuf>,
    /// Lock file (overrides `lock_file` in the config)
    #[arg(long, global = true, value_name = "FILE")]
    lock: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP over stdin/stdout (the local owner's transport), or over
    /// Streamable HTTP with --http
    Serve {
        /// Serve Streamable HTTP at http://ADDR/mcp instead of stdio; clients
        /// need a key from `mcpist client add`
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8770")]
        http: Option<std::net::SocketAddr>,
    },
    /// Inspect, approve and verify service modules
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Manage the accounts (and their tokens) that modules act for
    #[command(subcommand)]
    Account(AccountCommand),
    /// Check and read the audit log of calls
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage the clients allowed over HTTP and their API keys
    #[command(subcommand)]
    Client(ClientCommand),
    /// The OAuth apps accounts connect with
    #[command(subcommand)]
    Oauth(OauthCommand),
    /// Serve the owner's web console on loopback and print a one-time
    /// login link (`mcpist serve --http` serves it too, under /console)
    Console {
        #[command(subcommand)]
        command: Option<ConsoleCommand>,
        /// Listen here [default: `[console] bind`, 127.0.0.1:8771]
        #[arg(long, value_name = "ADDR")]
        bind: Option<std::net::SocketAddr>,
        /// Print the login link but do not open a browser
        #[arg(long)]
        no_browser: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConsoleCommand {
    /// Print a fresh one-time login link for the console running on this
    /// data folder
    Link,
}

#[derive(Debug, Subcommand)]
enum OauthCommand {
    /// Store the client secret of a service's OAuth app in the service's
    /// vault; it is read from stdin or a hidden prompt
    Secret { service: String },
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Register a client and print its API key (shown only this once)
    Add { name: String },
    /// List the registered clients (never their keys)
    List,
    /// Revoke a client's key
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check that no line was edited, removed, inserted or reordered; exit 1 if one was
    Verify,
    /// Show the latest calls, oldest first
    Tail {
        /// How many lines
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Keep showing calls as they are recorded
        #[arg(short, long)]
        follow: bool,
        /// Only calls of this module
        #[arg(long)]
        module: Option<String>,
        /// Only calls from this client
        #[arg(long)]
        client: Option<String>,
        /// Print the raw JSON lines
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Add an account, or replace its token; the token is read from stdin or a hidden prompt
    Add {
        /// Service, as modules bind it (e.g. github, notion)
        service: String,
        /// A name of your choice (e.g. personal, work)
        name: String,
        /// Make it the service's default account
        #[arg(long)]
        default: bool,
    },
    /// List accounts and whether their secrets are present (never the secrets)
    List {
        /// Only this service's accounts
        service: Option<String>,
    },
    /// Connect an account by signing in at the service's provider (OAuth
    /// with PKCE); MCPist keeps and renews its tokens
    Connect {
        /// Service with an `[oauth.SERVICE]` app in mcpist.toml (e.g. google)
        service: String,
        /// A name of your choice (e.g. personal, work)
        name: String,
        /// Make it the service's default account
        #[arg(long)]
        default: bool,
        /// Print the sign-in URL but do not open a browser
        #[arg(long)]
        no_browser: bool,
        /// Sign in on another device with a code (RFC 8628), for a machine
        /// without a browser
        #[arg(long, conflicts_with = "no_browser")]
        device: bool,
        /// How long to wait for the sign-in, in seconds
        #[arg(long, default_value_t = 300, value_name = "SECS")]
        timeout: u64,
    },
    /// Remove an account and its stored token; an OAuth account's tokens
    /// are revoked at the provider first
    Remove {
        service: String,
        name: String,
        /// Remove it here even if the provider cannot revoke its tokens
        #[arg(long)]
        force: bool,
        /// Do not revoke the tokens at the provider
        #[arg(long, conflicts_with = "force")]
        keep_remote: bool,
    },
    /// Make an account the one calls use when they name none
    Default { service: String, name: String },
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// Show every module in the plugins folder with its state
    List,
    /// Show what approving a module would change, as `diff` does, ask, then
    /// pin it in the lock
    Approve {
        /// Module name (or file name without .wasm)
        name: String,
        /// Approve without asking (after reading `plugins diff NAME`)
        #[arg(long, short)]
        yes: bool,
        /// Accept what the guards flag (injection markers, hidden
        /// characters, shadowing) after reading it; refusals stay refusals
        #[arg(long)]
        accept_flagged: bool,
    },
    /// What approving a module would change: hash, version, hosts,
    /// credentials, tools added, removed, renamed or changed (with a line
    /// diff of descriptions and schemas), and what the guards find
    Diff {
        /// Module name (or file name without .wasm)
        name: String,
    },
    /// Set a waiting (pending, changed or flagged) module's file aside, out
    /// of the plugins folder; the lock is not touched
    Reject {
        /// Module name (or file name without .wasm)
        name: String,
    },
    /// Serve another pinned version of a module (a rollback, or back
    /// again): `NAME@VERSION`, or a pinned file's name without `.wasm`
    Use {
        /// e.g. github@0.1.0
        version: String,
    },
    /// Unpin a module and set its file aside
    Remove {
        /// Module name (or file name without .wasm)
        name: String,
    },
    /// Exit non-zero unless every module is pinned and every pin has its file
    Verify,
    /// Approve the script engine that runs `run_script` programs: check that
    /// it is one, show what it may do, ask, then pin its sha256
    ApproveEngine {
        /// The engine's file, inside the plugins folder
        #[arg(long, default_value = crate::script::DEFAULT_ENGINE_FILE)]
        file: String,
        /// Approve without asking
        #[arg(long, short)]
        yes: bool,
    },
    /// Restrict (or widen) how an approved module may use one of its hosts;
    /// with no options, resets to any method and path on public addresses
    Host {
        /// Module name
        name: String,
        /// One of the module's declared hosts, as `plugins list` shows it
        host: String,
        /// Allowed methods, e.g. GET,POST (default: all)
        #[arg(long, value_delimiter = ',', value_parser = parse_method)]
        methods: Vec<String>,
        /// Allowed path prefixes, e.g. /repos/,/user (default: all)
        #[arg(long, value_delimiter = ',', value_parser = parse_path_prefix)]
        paths: Vec<String>,
        /// Let the host resolve to loopback, private, link-local or CGNAT
        /// addresses (a service on your own network, or a test server);
        /// cloud metadata addresses stay refused
        #[arg(long)]
        allow_private: bool,
    },
}

fn parse_method(text: &str) -> Result<String, String> {
    let method = text.trim().to_ascii_uppercase();
    match method.as_str() {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => Ok(method),
        _ => Err(format!(
            "`{text}` is not a method a module may use (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)"
        )),
    }
}

fn parse_path_prefix(text: &str) -> Result<String, String> {
    let path = text.trim();
    if !path.starts_with('/') || path.contains(['?', '#']) || path.split('/').any(|s| s == "..") {
        return Err(format!(
            "`{text}` is not a path prefix: start it with `/`, without `..`, `?` or `#`"
        ));
    }
    Ok(path.to_owned())
}

/// Run the command line; the exit code says whether it succeeded.
pub fn run() -> anyhow::Result<ExitCode> {
    run_with(|builder| builder)
}

/// [`run`], with `customize` applied to the server that `serve` builds (the
/// benchmarks' native twin answers a tool in the host this way). Only built
/// with the `bench` feature.
#[cfg(feature = "bench")]
pub fn run_customized(
    customize: fn(ServerBuilder<'_>) -> ServerBuilder<'_>,
) -> anyhow::Result<ExitCode> {
    run_with(customize)
}

fn run_with(customize: fn(ServerBuilder<'_>) -> ServerBuilder<'_>) -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref(), &Env::from_process())?;
    if let Some(dir) = cli.plugins_dir {
        config.plugins_dir = dir;
    }
    if let Some(lock) = cli.lock {
        config.lock_file = lock;
    }
    crate::logging::init(&config.log_level, config.log_file.as_deref())?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(async move {
        match cli.command {
            Command::Serve { http } => serve(&config, http, customize)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Client(ClientCommand::Add { name }) => client::add(&config, &name),
            Command::Client(ClientCommand::List) => client::list(&config),
            Command::Client(ClientCommand::Remove { name }) => client::remove(&config, &name),
            Command::Plugins(PluginsCommand::List) => plugins::list(&config).await,
            Command::Plugins(PluginsCommand::Approve {
                name,
                yes,
                accept_flagged,
            }) => plugins::approve(&config, &name, yes, accept_flagged).await,
            Command::Plugins(PluginsCommand::Diff { name }) => plugins::diff(&config, &name).await,
            Command::Plugins(PluginsCommand::Reject { name }) => {
                plugins::reject(&config, &name).await
            }
            Command::Plugins(PluginsCommand::Remove { name }) => plugins::remove(&config, &name),
            Command::Plugins(PluginsCommand::Use { version }) => {
                plugins::use_version(&config, &version)
            }
            Command::Plugins(PluginsCommand::Verify) => plugins::verify(&config).await,
            Command::Plugins(PluginsCommand::ApproveEngine { file, yes }) => {
                plugins::approve_engine(&config, &file, yes).await
            }
            Command::Plugins(PluginsCommand::Host {
                name,
                host,
                methods,
                paths,
                allow_private,
            }) => {
                let rule = HostRule {
                    methods,
                    paths,
                    allow_private,
                };
                plugins::host(&config, &name, &host, rule).await
            }
            Command::Account(AccountCommand::Add {
                service,
                name,
                default,
            }) => account::add(&config, &service, &name, default).await,
            Command::Account(AccountCommand::List { service }) => {
                account::list(&config, service.as_deref()).await
            }
            Command::Account(AccountCommand::Connect {
                service,
                name,
                default,
                no_browser,
                device,
                timeout,
            }) => {
                let how = account::ConnectOptions {
                    make_default: default,
                    open_browser: !no_browser,
                    device,
                    timeout: std::time::Duration::from_secs(timeout),
                };
                account::connect(&config, &service, &name, how).await
            }
            Command::Account(AccountCommand::Remove {
                service,
                name,
                force,
                keep_remote,
            }) => {
                let revoke = if keep_remote {
                    account::Revoke::Skip
                } else if force {
                    account::Revoke::TryThenRemove
                } else {
                    account::Revoke::Required
                };
                account::remove(&config, &service, &name, revoke).await
            }
            Command::Console {
                command: Some(ConsoleCommand::Link),
                ..
            } => console::link(&config),
            Command::Console {
                command: None,
                bind,
                no_browser,
            } => console::serve(&config, bind, !no_browser).await,
            Command::Oauth(OauthCommand::Secret { service }) => {
                account::store_client_secret(&config, &service).await
            }
            Command::Account(AccountCommand::Default { service, name }) => {
                account::set_default(&config, &service, &name)
            }
            Command::Audit(AuditCommand::Verify) => audit::verify(&config),
            Command::Audit(AuditCommand::Tail {
                lines,
                follow,
                module,
                client,
                json,
            }) => {
                let filter = crate::audit::read::Filter {
                    module,
                    client,
                    outcome: None,
                };
                audit::tail(&config, lines, follow, &filter, json).await
            }
        }
    })
}

/// The engine, keeping compiled modules on disk unless configured not to.
fn runtime(config: &Config) -> anyhow::Result<Runtime> {
    let runtime = Runtime::new(config.limits)?;
    Ok(match &config.compiled_cache {
        Some(dir) => runtime.with_compiled_cache(dir, &config.compiled_cache_key()),
        None => runtime,
    })
}

/// Load the lock and scan the plugins folder.
async fn scan(config: &Config) -> anyhow::Result<(Arc<Runtime>, Lock, registry::Scan)> {
    let runtime = Arc::new(runtime(config)?);
    let lock = Lock::load(&config.lock_file)?;
    let scan = registry::scan(&runtime, &config.plugins_dir, &lock, &config.guards).await?;
    Ok((runtime, lock, scan))
}

async fn serve(
    config: &Config,
    http: Option<std::net::SocketAddr>,
    customize: fn(ServerBuilder<'_>) -> ServerBuilder<'_>,
) -> anyhow::Result<()> {
    for (host, base) in &config.upstreams {
        tracing::info!(host, base, "upstream override");
    }
    let builder = Server::builder(config).vault_key(account::vault_key_from_env());
    let server = customize(builder).build().await?;
    report(server.scan());
    // Watch the plugins folder and the lock for as long as this serves.
    let _watch = server.watch()?;
    tracing::info!(file = %config.audit.file.display(), "recording calls in the audit log");
    for client in config.masks.configured_clients() {
        tracing::info!(client, "tool mask configured");
    }
    for (service, account) in config.masks.masked_accounts() {
        tracing::info!(service, account, "account mask configured");
    }
    match http {
        None => {
            tracing::info!(
                modules = server.calls().served().modules().count(),
                plugins_dir = %config.plugins_dir.display(),
                "MCP server ready on stdio"
            );
            server.serve_stdio().await
        }
        Some(bind) => server.serve_http(bind).await,
    }
}

/// Log what the first scan found: each module served, and why the others
/// are not.
fn report(scan: &registry::Scan) {
    for module in &scan.modules {
        match &module.state {
            registry::ModuleState::Pinned => {
                tracing::info!(module = module.name(), file = %module.file, "serving")
            }
            state => tracing::warn!(
                module = module.name(),
                file = %module.file,
                state = state.label(),
                "not served: {}",
                state.detail()
            ),
        }
    }
    for pin in &scan.missing {
        tracing::warn!(module = %pin.name, file = %pin.file, "pinned in the lock but missing from the plugins folder");
    }
}

pub(crate) fn print_table<const N: usize>(
    out: &mut impl Write,
    header: &[&str; N],
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header = header.map(str::to_owned);
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
