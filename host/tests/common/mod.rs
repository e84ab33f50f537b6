//! Shared setup for the host's integration tests: the bundled modules, the
//! hostile test modules (built here on first use), a private data folder,
//! and servers built on it by `Server::builder`, as `mcpist serve` builds
//! them, called through the one call path.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use mcpist::broker::{Broker, BrokerSettings, DEFAULT_VAULT, VaultBackend};
use mcpist::calls::{InvokeError, ToolCall};
use mcpist::config::{Config, Env};
use mcpist::egress::HttpSettings;
use mcpist::registry::{self, Guards, HostRule, Lock, Scan};
use mcpist::runtime::{CallContext, Limits, Runtime, ToolOutput};
use mcpist::server::Server;
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A bundled module built by `cargo xtask build-plugins`.
pub fn bundled(name: &str) -> PathBuf {
    let path = repo().join("plugins").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask build-plugins` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// A hostile test module from tests/fixtures, built once per test process.
/// It has its own target folder, so this never waits on the outer cargo.
pub fn fixture(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let out = BUILT.get_or_init(|| {
        let repo = repo();
        let target = repo.join("target/fixtures");
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(repo.join("tests/fixtures/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("RUSTFLAGS")
            .status()
            .expect("cannot run cargo to build the test modules");
        assert!(status.success(), "building tests/fixtures failed");
        target.join("wasm32-wasip2/release")
    });
    out.join(format!("{name}.wasm"))
}

/// Limits small enough that the hostile tests finish quickly.
pub fn test_limits() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        cpu_time: std::time::Duration::from_millis(300),
        wall_time: std::time::Duration::from_secs(3),
        output_bytes: 1 << 20,
        concurrent_calls: 8,
    }
}

/// A private data folder: plugins folder, lock, accounts, vault, audit log.
pub struct Home {
    pub dir: tempfile::TempDir,
    /// For scanning and approving, as the `mcpist plugins` commands do.
    pub runtime: Arc<Runtime>,
    limits: Limits,
}

impl Home {
    pub fn new(limits: Limits) -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        Home {
            dir,
            runtime: Arc::new(Runtime::new(limits).unwrap()),
            limits,
        }
    }

    /// The configuration of this home: every default in its folder, these
    /// limits and HTTP settings, and `upstreams` (logical origin → local
    /// server); no compiled-module cache on disk.
    pub fn config(&self, http: HttpSettings, upstreams: BTreeMap<String, String>) -> Config {
        let env = Env {
            mcpist_home: Some(self.dir.path().to_owned()),
            ..Env::default()
        };
        let mut config = Config::load(None, &env).unwrap();
        config.limits = self.limits;
        config.http = http;
        config.upstreams = upstreams;
        config.compiled_cache = None;
        config
    }

    pub fn plugins(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.path().join("registry.lock")
    }

    pub fn add(&self, module: &Path) -> PathBuf {
        let dest = self.plugins().join(module.file_name().unwrap());
        std::fs::copy(module, &dest).unwrap();
        dest
    }

    pub fn lock(&self) -> Lock {
        Lock::load(&self.lock_path()).unwrap()
    }

    pub async fn scan(&self) -> Scan {
        registry::scan(
            &self.runtime,
            &self.plugins(),
            &self.lock(),
            &Guards::default(),
        )
        .await
        .unwrap()
    }

    pub async fn approve(&self, name: &str) {
        let scan = self.scan().await;
        let mut lock = self.lock();
        registry::approve(
            &scan,
            &mut lock,
            registry::Approval::of(name),
            &self.plugins(),
        )
        .unwrap();
        lock.save(&self.lock_path()).unwrap();
    }

    /// Set the owner's rule for one of an approved module's hosts.
    pub fn set_host_rule(&self, module: &str, host: &str, rule: HostRule) {
        let mut lock = self.lock();
        registry::set_host_rule(&mut lock, module, host, rule).unwrap();
        lock.save(&self.lock_path()).unwrap();
    }

    /// The broker settings of this home: accounts and the local encrypted
    /// vault in its folder.
    pub fn broker_settings(&self) -> BrokerSettings {
        let dir = self.dir.path();
        BrokerSettings {
            accounts_file: dir.join("accounts.toml"),
            vaults: [(
                DEFAULT_VAULT.to_owned(),
                VaultBackend::File {
                    path: dir.join("vault.enc"),
                    key_file: dir.join("vault.key"),
                },
            )]
            .into_iter()
            .collect(),
            routes: Default::default(),
            oauth: Default::default(),
        }
    }

    pub fn broker(&self) -> Arc<Broker> {
        Arc::new(Broker::new(&self.broker_settings(), None))
    }

    /// Add and approve modules, and return a server serving them.
    pub async fn serve(&self, modules: &[PathBuf]) -> Served {
        for module in modules {
            self.add(module);
        }
        let scan = self.scan().await;
        let mut lock = self.lock();
        for module in &scan.modules {
            registry::approve(
                &scan,
                &mut lock,
                registry::Approval::of(module.name()),
                &self.plugins(),
            )
            .unwrap();
        }
        lock.save(&self.lock_path()).unwrap();
        self.server(HttpSettings::default(), BTreeMap::new()).await
    }

    /// A server of what is pinned now, with these HTTP settings and upstream
    /// overrides.
    pub async fn server(&self, http: HttpSettings, upstreams: BTreeMap<String, String>) -> Served {
        self.server_with_key(http, upstreams, None).await
    }

    /// [`Home::server`], opening the local vault with `vault_key` instead of
    /// its key file.
    pub async fn server_with_key(
        &self,
        http: HttpSettings,
        upstreams: BTreeMap<String, String>,
        vault_key: Option<SecretString>,
    ) -> Served {
        let config = self.config(http, upstreams);
        let server = Server::builder(&config)
            .vault_key(vault_key)
            .build()
            .await
            .unwrap();
        Served { server }
    }

    /// The audit log's records, in order.
    pub fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// A server built on a [`Home`], called the way every front end calls it.
pub struct Served {
    pub server: Server,
}

impl Served {
    /// Call `module.tool` as the local owner, for the account `context` names.
    pub async fn invoke(
        &self,
        module: &str,
        tool: &str,
        arguments: &Value,
        context: &CallContext,
    ) -> Result<ToolOutput, InvokeError> {
        let call = ToolCall {
            module: module.to_owned(),
            tool: tool.to_owned(),
            arguments: arguments.clone(),
            account: context.account.clone(),
        };
        self.server
            .calls()
            .call("stdio", &call, &CancellationToken::new())
            .await
    }

    /// The names of the modules served.
    pub fn modules(&self) -> std::vec::IntoIter<String> {
        let served = self.server.calls().served();
        let names: Vec<String> = served.modules().map(|m| m.manifest.name.clone()).collect();
        names.into_iter()
    }
}

/// One request as a local upstream server received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: axum::http::HeaderMap,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A local HTTP server standing in for a remote API; it records every
/// request it receives and stops when dropped.
pub struct Upstream {
    pub addr: std::net::SocketAddr,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start(router: axum::Router) -> Upstream {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let router = router.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                log.lock().unwrap().push(Seen {
                    method: request.method().to_string(),
                    uri: request.uri().to_string(),
                    headers: request.headers().clone(),
                });
                next.run(request)
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Upstream { addr, seen, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
