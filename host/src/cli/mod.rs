//! The `mcpist` command line.

mod plugins;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::catalog::Catalog;
use crate::config::{Config, Env};
use crate::registry::{self, Lock};
use crate::runtime::Runtime;

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
    /// Serve MCP over stdin/stdout (the local owner's transport)
    Serve,
    /// Inspect, approve and verify service modules
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// Show every module in the plugins folder with its state
    List,
    /// Show what a pending or changed module declares, then pin it in the lock
    Approve {
        /// Module name (or file name without .wasm)
        name: String,
    },
    /// Exit non-zero unless every module is pinned and every pin has its file
    Verify,
}

/// Run the command line; the exit code says whether it succeeded.
pub fn run() -> anyhow::Result<ExitCode> {
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
            Command::Serve => serve(&config).await.map(|()| ExitCode::SUCCESS),
            Command::Plugins(PluginsCommand::List) => plugins::list(&config).await,
            Command::Plugins(PluginsCommand::Approve { name }) => {
                plugins::approve(&config, &name).await
            }
            Command::Plugins(PluginsCommand::Verify) => plugins::verify(&config).await,
        }
    })
}

/// Load the lock and scan the plugins folder.
async fn scan(config: &Config) -> anyhow::Result<(Arc<Runtime>, Lock, registry::Scan)> {
    let runtime = Arc::new(Runtime::new(config.limits)?);
    let lock = Lock::load(&config.lock_file)?;
    let scan = registry::scan(&runtime, &config.plugins_dir, &lock).await?;
    Ok((runtime, lock, scan))
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let (runtime, _lock, scan) = scan(config).await?;
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
                plugins::state_detail(state)
            ),
        }
    }
    for pin in &scan.missing {
        tracing::warn!(module = %pin.name, file = %pin.file, "pinned in the lock but missing from the plugins folder");
    }
    let catalog = Arc::new(Catalog::new(runtime, &scan));
    tracing::info!(
        modules = catalog.modules().count(),
        plugins_dir = %config.plugins_dir.display(),
        "MCP server ready on stdio"
    );
    crate::mcp::McpServer::new(catalog).serve_stdio().await
}
