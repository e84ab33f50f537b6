//! The one place the host is put together: [`Server::builder`] wires the
//! runtime, the registry scan and its hot reload, egress, the broker, the
//! masks and the audit log into one [`CallService`], which every front end
//! (MCP over stdio or HTTP) and every test uses. The crate's documentation
//! shows it used.

use std::net::SocketAddr;
use std::sync::Arc;

use secrecy::SecretString;

use crate::audit::{AuditError, AuditLog};
use crate::broker::Broker;
use crate::calls::{CallService, FairShare};
use crate::catalog::live::Reloader;
pub use crate::catalog::live::WatchHandle;
use crate::clients::Clients;
use crate::config::{Config, ToolMode};
use crate::egress::{Egress, EgressSetupError};
use crate::mcp::http::HttpServeSettings;
use crate::mcp::{McpServer, Session};
use crate::registry::{RegistryError, Scan};
use crate::runtime::{Runtime, RuntimeError};

/// Why the server could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The WebAssembly engine.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The outbound HTTP clients or `[upstreams]`.
    #[error(transparent)]
    Egress(#[from] EgressSetupError),
    /// The plugins folder or the lock.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The audit log.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Watching the plugins folder for changes.
    #[error("cannot watch {dir} for module changes: {source}")]
    Watch {
        /// The plugins folder.
        dir: std::path::PathBuf,
        /// What the watcher said.
        #[source]
        source: notify::Error,
    },
}

/// Builds a [`Server`] from a [`Config`].
pub struct ServerBuilder<'a> {
    config: &'a Config,
    vault_key: Option<SecretString>,
    #[cfg(feature = "bench")]
    customize: Option<Box<dyn FnOnce(Runtime) -> Runtime + 'a>>,
}

impl<'a> ServerBuilder<'a> {
    /// The key of the local encrypted vaults, when it is given rather than
    /// kept in their key files (`MCPIST_VAULT_KEY`).
    pub fn vault_key(mut self, key: Option<SecretString>) -> Self {
        self.vault_key = key;
        self
    }

    /// Answer `module`'s `tool` natively instead of in a sandbox, for the
    /// benchmarks' native twin; see `Runtime::with_native_twin`. Only built
    /// with the `bench` feature.
    #[cfg(feature = "bench")]
    pub fn native_twin(
        mut self,
        module: &str,
        tool: &str,
        run: crate::runtime::NativeTool,
    ) -> Self {
        let (module, tool) = (module.to_owned(), tool.to_owned());
        self.customize = Some(Box::new(move |runtime: Runtime| {
            runtime.with_native_twin(&module, &tool, run)
        }));
        self
    }

    /// Scan the plugins folder against the lock, serve what is pinned, and
    /// open the audit log.
    pub async fn build(self) -> Result<Server, ServerError> {
        let config = self.config;
        let mut runtime = Runtime::new(config.limits)?;
        if let Some(dir) = &config.compiled_cache {
            runtime = runtime.with_compiled_cache(dir, &config.compiled_cache_key());
        }
        #[cfg(feature = "bench")]
        if let Some(customize) = self.customize {
            runtime = customize(runtime);
        }
        let runtime = Arc::new(runtime);
        let egress = Arc::new(Egress::new(config.http, &config.upstreams)?);
        let broker = Arc::new(Broker::new(&config.broker, self.vault_key));
        let (reloader, scan) = Reloader::start(
            runtime.clone(),
            &config.plugins_dir,
            &config.lock_file,
            config.guards.clone(),
        )
        .await?;
        let audit = Arc::new(AuditLog::open(&config.audit.file, config.audit.fsync)?);
        let calls = Arc::new(CallService {
            catalog: reloader.live().clone(),
            runtime,
            egress,
            broker,
            masks: config.masks.clone(),
            audit,
            record_arguments: config.audit.arguments,
            fair_share: FairShare::new(config.limits.concurrent_calls as usize),
            module_locks: Default::default(),
            scripts: crate::script::Scripts::new(config.limits.concurrent_calls),
            consent: config.consent.clone(),
        });
        Ok(Server {
            calls,
            reloader,
            scan,
            config: config.clone(),
        })
    }
}

/// The host, put together: the call service over the modules served, kept
/// up to date with the plugins folder once watched.
pub struct Server {
    calls: Arc<CallService>,
    reloader: Arc<Reloader>,
    scan: Scan,
    config: Config,
}

impl Server {
    /// Start building a server from `config`.
    pub fn builder(config: &Config) -> ServerBuilder<'_> {
        ServerBuilder {
            config,
            vault_key: None,
            #[cfg(feature = "bench")]
            customize: None,
        }
    }

    /// The one call path, for every front end.
    pub fn calls(&self) -> &Arc<CallService> {
        &self.calls
    }

    /// The scan the server started with, for reporting what it serves.
    pub fn scan(&self) -> &Scan {
        &self.scan
    }

    /// Scan the plugins folder and the lock again, now, and serve what is
    /// pinned (what watching does on a change).
    pub async fn reload(&self) -> Result<(), RegistryError> {
        self.reloader.reload().await
    }

    /// Reload whenever the plugins folder or the lock changes, until the
    /// handle is dropped.
    pub fn watch(&self) -> Result<WatchHandle, ServerError> {
        self.reloader.watch().map_err(|source| ServerError::Watch {
            dir: self.config.plugins_dir.clone(),
            source,
        })
    }

    fn session(&self) -> Session {
        Session {
            client: "stdio".to_owned(),
            flat: self.config.serve.tools == ToolMode::Flat,
            pending_consents: Arc::default(),
            tasks: Arc::new(crate::mcp::CallTasks::new(self.config.tasks)),
        }
    }

    /// Serve MCP over this process's stdin and stdout until the client
    /// disconnects. The local owner's transport: calls are the `stdio`
    /// client's.
    pub async fn serve_stdio(&self) -> anyhow::Result<()> {
        McpServer::new(self.calls.clone(), self.session())
            .serve_stdio()
            .await
    }

    /// Serve MCP over Streamable HTTP at `http://BIND/mcp` until Ctrl-C or
    /// SIGTERM, for clients holding a key or an access token.
    pub async fn serve_http(&self, bind: SocketAddr) -> anyhow::Result<()> {
        let serve = &self.config.serve;
        let settings = HttpServeSettings {
            bind,
            allowed_origins: serve.allowed_origins.clone(),
            allowed_hosts: serve.allowed_hosts.clone(),
            max_body_bytes: serve.max_body_bytes,
            max_connections: serve.max_connections,
            header_timeout: serve.header_timeout,
            resource: serve.resource.clone(),
            jwt: serve.jwt.clone(),
        };
        let clients = Arc::new(Clients::new(&serve.clients_file));
        if let Some(jwt) = &serve.jwt {
            tracing::info!(issuer = %jwt.issuer, resource = %settings.resource(), "accepting access tokens from the identity provider");
        } else if clients.list()?.is_empty() {
            tracing::warn!(
                "no client is registered, so every request will be refused: add one with `mcpist client add NAME`"
            );
        }
        let console = self.config.console.enabled.then(|| {
            Arc::new(crate::web::Console::new(
                &self.config,
                self.calls.runtime.clone(),
                self.calls.broker.clone(),
            ))
        });
        crate::mcp::http::serve(
            self.calls.clone(),
            self.session(),
            clients,
            &settings,
            console,
        )
        .await
    }
}
