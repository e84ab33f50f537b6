//! `mcpist.toml`: the one configuration file.
//!
//! Where things are found:
//! - the config file: `--config`, else `$MCPIST_CONFIG`, else
//!   `$MCPIST_HOME/mcpist.toml` if it exists, else built-in defaults;
//! - the data folder `MCPIST_HOME`: `$MCPIST_HOME`, else
//!   `$XDG_DATA_HOME/mcpist`, else `~/.local/share/mcpist`;
//! - relative paths inside the file are relative to the file's folder;
//!   `plugins_dir` defaults to `$MCPIST_HOME/plugins` and `lock_file` to
//!   `$MCPIST_HOME/registry.lock`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::audit::Fsync;
use crate::broker::{AwsVaultFile, BrokerSettings, DEFAULT_VAULT, VaultBackend};
use crate::broker::{DEFAULT_VAULT_TIMEOUT, KvAuth, KvSettings, SecretSource};
use crate::egress::HttpSettings;
use crate::exchanger::{
    ClientAuth, DEFAULT_REFRESH_SKEW, EndpointSource, Endpoints, OAuthApp, presets,
};
use crate::oauth::JwtSettings;
use crate::policy::{AccountMaskFiles, ConsentFile, ConsentPolicy, MaskFile, Masks};
use crate::registry::Guards;
use crate::runtime::Limits;
use crate::secure_url::https_or_loopback;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A value is wrong; the message says which and why.
    #[error("{path}:{line}: {key}{message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// `key `a.b`: ` or empty when the error is not about one key.
        key: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// Neither `MCPIST_HOME` nor `HOME` is set.
    #[error(
        "cannot find a data folder: set MCPIST_HOME (or HOME) to the folder where mcpist keeps its files"
    )]
    NoHome,
}

/// A module's linear memory is 32-bit: 4 GiB is all it can address, and
/// what each instance pool slot reserves.
const MAX_MEMORY_MIB: u64 = 4096;

/// The file as written; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    plugins_dir: Option<PathBuf>,
    lock_file: Option<PathBuf>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    log: LogFile,
    accounts_file: Option<PathBuf>,
    #[serde(default)]
    http: HttpFile,
    /// Origin or host → base URL its requests are sent to instead.
    #[serde(default)]
    upstreams: BTreeMap<String, String>,
    #[serde(default)]
    vaults: BTreeMap<String, VaultFile>,
    #[serde(default)]
    services: BTreeMap<String, ServiceFile>,
    /// Service → the OAuth app its accounts connect with.
    #[serde(default)]
    oauth: BTreeMap<String, OAuthFile>,
    #[serde(default)]
    audit: AuditFile,
    #[serde(default)]
    serve: ServeFile,
    /// Client name → what it may see.
    #[serde(default)]
    masks: BTreeMap<String, MaskFile>,
    /// Service → account → what may act for it.
    #[serde(default)]
    account_masks: AccountMaskFiles,
    /// Which calls wait for the person at the client to agree.
    #[serde(default)]
    consent: ConsentFile,
    /// Long calls as MCP tasks.
    #[serde(default)]
    tasks: TasksFile,
    #[serde(default)]
    guards: GuardsFile,
    #[serde(default)]
    cache: CacheFile,
    #[serde(default)]
    console: ConsoleFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsoleFile {
    enabled: Option<bool>,
    bind: Option<std::net::SocketAddr>,
    idle_timeout_mins: Option<u64>,
    allow_remote: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TasksFile {
    enabled: Option<bool>,
    after_ms: Option<u64>,
    keep_secs: Option<u64>,
    poll_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    /// Where compiled modules are kept; `false` in `enabled` turns it off.
    dir: Option<PathBuf>,
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardsFile {
    smuggling_parameters: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    clients_file: Option<PathBuf>,
    allowed_origins: Option<Vec<String>>,
    allowed_hosts: Option<Vec<String>>,
    max_body_kib: Option<usize>,
    max_connections: Option<usize>,
    header_timeout_secs: Option<u64>,
    /// The URL clients reach `/mcp` at, when it is not `http://BIND/mcp`
    /// (behind a reverse proxy).
    resource: Option<String>,
    jwt: Option<JwtFile>,
    tools: Option<ToolMode>,
}

/// How tools are offered to clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolMode {
    /// `get_module_schema` and `call_module_tool`.
    #[default]
    Meta,
    /// Every tool a client may see, listed as `module.tool`.
    Flat,
}

/// Access tokens from the owner's identity provider (see [`crate::oauth`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtFile {
    issuer: String,
    jwks_uri: Option<String>,
    audience: Option<String>,
    client_claim: Option<String>,
    required_scopes: Option<Vec<String>>,
    leeway_secs: Option<u64>,
    token_types: Option<Vec<String>>,
    max_lifetime_secs: Option<u64>,
    jwks_max_age_secs: Option<u64>,
    jwks_min_refresh_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFile {
    file: Option<PathBuf>,
    fsync: Option<Fsync>,
    arguments: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    connect_timeout_ms: Option<u64>,
    timeout_ms: Option<u64>,
    max_request_kib: Option<usize>,
    max_response_kib: Option<usize>,
    max_requests_per_call: Option<usize>,
    max_redirects: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum VaultFile {
    File {
        path: Option<PathBuf>,
        key_file: Option<PathBuf>,
    },
    Env {
        prefix: Option<String>,
    },
    /// HashiCorp Vault or OpenBao, KV v2.
    Vault(Box<KvVaultFile>),
    /// AWS Secrets Manager (its keys are checked in `broker/aws_vault.rs`).
    Aws(Box<AwsVaultFile>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KvVaultFile {
    address: String,
    mount: Option<String>,
    prefix: Option<String>,
    namespace: Option<String>,
    ca_file: Option<PathBuf>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    approle: Option<AppRoleFile>,
    timeout_ms: Option<u64>,
    cache_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppRoleFile {
    role_id: String,
    secret_id_env: Option<String>,
    secret_id_file: Option<PathBuf>,
    mount: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    vault: String,
}

/// `[oauth.SERVICE]`: an OAuth app the owner registered at the service's
/// provider. The client secret is never here (`mcpist oauth secret`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthFile {
    client_id: String,
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
    scopes: Option<Vec<String>>,
    authorization_params: Option<BTreeMap<String, String>>,
    token_endpoint_auth_method: Option<ClientAuth>,
    resource: Option<String>,
    redirect_port: Option<u16>,
    refresh_skew_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    memory_mib: Option<u64>,
    cpu_ms: Option<u64>,
    wall_ms: Option<u64>,
    output_kib: Option<u64>,
    concurrent_calls: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogFile {
    level: Option<String>,
    file: Option<PathBuf>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// The data folder (`MCPIST_HOME`).
    pub home: PathBuf,
    /// The drop-in folder of modules.
    pub plugins_dir: PathBuf,
    /// `registry.lock`: what the owner approved.
    pub lock_file: PathBuf,
    /// What one call may use.
    pub limits: Limits,
    /// A `tracing` filter directive; `MCPIST_LOG` overrides it.
    pub log_level: String,
    /// Log to this file instead of stderr.
    pub log_file: Option<PathBuf>,
    /// Limits on modules' outbound HTTP.
    pub http: HttpSettings,
    /// Origin or host → base URL (see [`crate::egress`]).
    pub upstreams: BTreeMap<String, String>,
    /// Accounts and vaults.
    pub broker: BrokerSettings,
    /// The audit log.
    pub audit: AuditSettings,
    /// The MCP endpoint.
    pub serve: ServeSettings,
    /// What each client (and each account) may see and call, compiled.
    pub masks: Arc<Masks>,
    /// Which calls wait for the person at the client to agree, compiled.
    pub consent: Arc<ConsentPolicy>,
    /// When a call becomes an MCP task, and how long its result is kept.
    pub tasks: TaskSettings,
    /// The guards run on every module's declaration.
    pub guards: Guards,
    /// Where compiled modules are kept across starts; none when disabled.
    pub compiled_cache: Option<PathBuf>,
    /// The owner's web console.
    pub console: ConsoleSettings,
}

/// The owner's web console (`mcpist console`, and `/console` under
/// `mcpist serve --http`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleSettings {
    /// Served under `/console` by `mcpist serve --http`.
    pub enabled: bool,
    /// Where `mcpist console` listens.
    pub bind: std::net::SocketAddr,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// Served to other machines (`allow_remote`), which the owner must do
    /// behind TLS: the session cookie is then `Secure` and forms must come
    /// from an `https` origin.
    pub behind_tls: bool,
}

impl Config {
    /// Where rejected and removed module files are set aside.
    pub fn rejected_dir(&self) -> PathBuf {
        self.home.join("rejected")
    }

    /// The key that proves compiled-cache entries were written by this
    /// user's mcpist: in the data folder, outside the cache folder and
    /// outside `plugins/`.
    pub fn compiled_cache_key(&self) -> PathBuf {
        self.home.join("compiled-cache.key")
    }
}

/// The Streamable HTTP endpoint (`mcpist serve --http`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServeSettings {
    /// The registered clients and their key digests.
    pub clients_file: PathBuf,
    /// Browser origins allowed to call.
    pub allowed_origins: Vec<String>,
    /// `Host` names accepted besides the loopback ones.
    pub allowed_hosts: Vec<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Connections served at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Time a connection has to send a request's headers, and the longest a
    /// connection may sit idle between requests.
    pub header_timeout: Duration,
    /// The URL clients reach `/mcp` at, when not `http://BIND/mcp`.
    pub resource: Option<String>,
    /// Access tokens from the owner's identity provider.
    pub jwt: Option<JwtSettings>,
    /// Meta-tools or every tool listed.
    pub tools: ToolMode,
}

/// Long calls as MCP tasks (the `io.modelcontextprotocol/tasks`
/// extension), for clients that declare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSettings {
    /// Offer tasks at all.
    pub enabled: bool,
    /// A call still running this long after it was asked for becomes a
    /// task: the client gets a handle to poll instead of waiting.
    pub after: Duration,
    /// How long a task and its result are kept, from its creation (a call
    /// still running then is stopped).
    pub keep: Duration,
    /// How often a client is asked to poll.
    pub poll_interval: Duration,
}

impl Default for TaskSettings {
    fn default() -> Self {
        TaskSettings {
            enabled: true,
            after: Duration::from_secs(2),
            keep: Duration::from_secs(300),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Where and how calls are recorded (see [`crate::audit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSettings {
    /// The log file.
    pub file: PathBuf,
    /// When lines are flushed to the disk.
    pub fsync: Fsync,
    /// Record each call's arguments, not only their digest.
    pub arguments: bool,
}

/// Values from the environment, passed in so that tests need not mutate the
/// process environment.
#[derive(Debug, Default, Clone)]
pub struct Env {
    /// `MCPIST_CONFIG`
    pub mcpist_config: Option<PathBuf>,
    /// `MCPIST_HOME`
    pub mcpist_home: Option<PathBuf>,
    /// `XDG_DATA_HOME`
    pub xdg_data_home: Option<PathBuf>,
    /// `HOME`
    pub home: Option<PathBuf>,
}

impl Env {
    /// Read from this process's environment (empty values count as unset).
    pub fn from_process() -> Self {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Env {
            mcpist_config: var("MCPIST_CONFIG"),
            mcpist_home: var("MCPIST_HOME"),
            xdg_data_home: var("XDG_DATA_HOME"),
            home: var("HOME"),
        }
    }

    fn data_home(&self) -> Result<PathBuf, ConfigError> {
        if let Some(home) = &self.mcpist_home {
            return Ok(home.clone());
        }
        if let Some(xdg) = &self.xdg_data_home {
            return Ok(xdg.join("mcpist"));
        }
        self.home
            .as_ref()
            .map(|h| h.join(".local/share/mcpist"))
            .ok_or(ConfigError::NoHome)
    }
}

impl Config {
    /// Load the configuration: `explicit` is the `--config` argument. Each
    /// section is resolved by its own function below; every error names the
    /// file, the line and the key.
    pub fn load(explicit: Option<&Path>, env: &Env) -> Result<Config, ConfigError> {
        let home = env.data_home()?;
        let source = Source::find(explicit, env, &home)?;
        Config::resolve(source, home)
    }

    /// The configuration `text` describes, as if read from a file in `home`.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn parse_text(text: &str, home: &Path) -> Result<Config, ConfigError> {
        let source = Source {
            path: Some(home.join("mcpist.toml")),
            text: text.to_owned(),
        };
        Config::resolve(source, home.to_owned())
    }

    fn resolve(source: Source, home: PathBuf) -> Result<Config, ConfigError> {
        let file = source.parse()?;
        let paths = Paths {
            base: source.folder().unwrap_or_else(|| home.clone()),
            home,
        };
        let limits = limits(&file.limits, &source)?;
        Ok(Config {
            tasks: tasks(&file.tasks, &limits),
            limits,
            http: http(&file.http),
            broker: BrokerSettings {
                oauth: oauth_apps(file.oauth, &source)?,
                ..broker(
                    file.accounts_file,
                    file.vaults,
                    file.services,
                    &paths,
                    &source,
                )?
            },
            audit: audit(file.audit, &paths),
            serve: serve(file.serve, &paths, &source)?,
            masks: Arc::new(masks(&file.masks, &file.account_masks, &source)?),
            consent: Arc::new(
                ConsentPolicy::compile(&file.consent)
                    .map_err(|error| source.invalid("consent", None, "", error.to_string()))?,
            ),
            compiled_cache: file
                .cache
                .enabled
                .unwrap_or(true)
                .then(|| paths.or_default(file.cache.dir, Path::new("cache").join("compiled"))),
            guards: match file.guards.smuggling_parameters {
                Some(names) => Guards {
                    smuggling_parameters: names,
                },
                None => Guards::default(),
            },
            console: console(file.console, &source)?,
            upstreams: file.upstreams,
            plugins_dir: paths.or_default(file.plugins_dir, "plugins"),
            lock_file: paths.or_default(file.lock_file, "registry.lock"),
            log_file: file.log.file.map(|p| paths.relative(p)),
            log_level: file.log.level.unwrap_or_else(|| "info".to_owned()),
            home: paths.home,
            source: source.path,
        })
    }
}

/// The file the configuration came from, for finding it and for pointing
/// at the line an error is on.
struct Source {
    path: Option<PathBuf>,
    text: String,
}

impl Source {
    /// `--config`, else `$MCPIST_CONFIG`, else `$MCPIST_HOME/mcpist.toml`
    /// if it exists, else none (built-in defaults).
    fn find(explicit: Option<&Path>, env: &Env, home: &Path) -> Result<Source, ConfigError> {
        let path = explicit
            .map(Path::to_path_buf)
            .or_else(|| env.mcpist_config.clone())
            .or_else(|| Some(home.join("mcpist.toml")).filter(|p| p.is_file()));
        let text = match &path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?,
            None => String::new(),
        };
        Ok(Source { path, text })
    }

    /// The folder relative paths in the file are relative to.
    fn folder(&self) -> Option<PathBuf> {
        self.path
            .as_ref()
            .map(|p| p.parent().map(Path::to_path_buf).unwrap_or_default())
    }

    fn parse(&self) -> Result<ConfigFile, ConfigError> {
        toml::from_str(&self.text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let (line, key) = locate(&self.text, offset);
            ConfigError::Invalid {
                path: self.path.clone().unwrap_or_default(),
                line,
                key: key.map(|k| format!("key `{k}`: ")).unwrap_or_default(),
                message: e.message().trim().to_owned(),
            }
        })
    }

    /// An error about `key` (dotted, as `limits.memory_mib`), on the line of
    /// `[table]`, or of `line_key` within it when given and found.
    fn invalid(
        &self,
        table: &str,
        line_key: Option<&str>,
        key: &str,
        message: String,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone().unwrap_or_default(),
            line: self.line_of(table, line_key),
            key: if key.is_empty() {
                String::new()
            } else {
                format!("key `{key}`: ")
            },
            message,
        }
    }

    /// The 1-based line of the `[table]` header, or of `key = ...` inside
    /// that table when given; 1 when neither is found.
    fn line_of(&self, table: &str, key: Option<&str>) -> usize {
        let lines: Vec<&str> = self.text.lines().map(str::trim).collect();
        let header = lines.iter().position(|l| *l == format!("[{table}]"));
        let in_table = |key: &str| {
            let start = header.map_or(0, |h| h + 1);
            lines[start..]
                .iter()
                .take_while(|l| !l.starts_with('['))
                .position(|l| l.split('=').next().is_some_and(|k| k.trim() == key))
                .map(|i| start + i)
        };
        key.and_then(in_table).or(header).map_or(1, |i| i + 1)
    }
}

/// Where relative and default paths are resolved.
struct Paths {
    /// The data folder.
    home: PathBuf,
    /// The config file's folder (the data folder without a file).
    base: PathBuf,
}

impl Paths {
    fn relative(&self, path: PathBuf) -> PathBuf {
        if path.is_relative() {
            self.base.join(path)
        } else {
            path
        }
    }

    /// `path` as written (relative to the file), else `default` in the
    /// data folder.
    fn or_default(&self, path: Option<PathBuf>, default: impl AsRef<Path>) -> PathBuf {
        path.map_or_else(|| self.home.join(default), |p| self.relative(p))
    }
}

fn limits(file: &LimitsFile, source: &Source) -> Result<Limits, ConfigError> {
    if let Some(mib) = file.memory_mib
        && mib > MAX_MEMORY_MIB
    {
        return Err(source.invalid(
            "limits",
            Some("memory_mib"),
            "limits.memory_mib",
            format!("{mib} is more than a module can address; at most {MAX_MEMORY_MIB} (4 GiB)"),
        ));
    }
    let defaults = Limits::default();
    Ok(Limits {
        memory_bytes: file.memory_mib.map_or(defaults.memory_bytes, |m| m << 20),
        cpu_time: file.cpu_ms.map_or(defaults.cpu_time, Duration::from_millis),
        wall_time: file
            .wall_ms
            .map_or(defaults.wall_time, Duration::from_millis),
        output_bytes: file
            .output_kib
            .map_or(defaults.output_bytes, |k| (k as usize) << 10),
        concurrent_calls: file
            .concurrent_calls
            .map_or(defaults.concurrent_calls, |n| n.max(1)),
    })
}

fn http(file: &HttpFile) -> HttpSettings {
    let defaults = HttpSettings::default();
    let ms = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_millis);
    HttpSettings {
        connect_timeout: ms(file.connect_timeout_ms, defaults.connect_timeout),
        timeout: ms(file.timeout_ms, defaults.timeout),
        max_request_bytes: file
            .max_request_kib
            .map_or(defaults.max_request_bytes, |k| k << 10),
        max_response_bytes: file
            .max_response_kib
            .map_or(defaults.max_response_bytes, |k| k << 10),
        max_requests_per_call: file
            .max_requests_per_call
            .unwrap_or(defaults.max_requests_per_call),
        max_redirects: file.max_redirects.unwrap_or(defaults.max_redirects),
    }
}

/// The vaults (the embedded `local` one unless the file redefines it), the
/// services routed to them, and the accounts file.
fn broker(
    accounts_file: Option<PathBuf>,
    files: BTreeMap<String, VaultFile>,
    services: BTreeMap<String, ServiceFile>,
    paths: &Paths,
    source: &Source,
) -> Result<BrokerSettings, ConfigError> {
    let mut vaults = BTreeMap::from([(
        DEFAULT_VAULT.to_owned(),
        VaultBackend::File {
            path: paths.home.join("vault.enc"),
            key_file: paths.home.join("vault.key"),
        },
    )]);
    for (name, vault) in files {
        let backend = match vault {
            VaultFile::File { path, key_file } => VaultBackend::File {
                path: paths.or_default(path, format!("{name}.vault.enc")),
                key_file: paths.or_default(key_file, format!("{name}.vault.key")),
            },
            VaultFile::Env { prefix } => VaultBackend::Env {
                prefix: prefix.unwrap_or_else(|| "MCPIST_SECRET_".to_owned()),
            },
            VaultFile::Vault(file) => kv_vault(&name, *file, paths, source)?,
            VaultFile::Aws(file) => {
                let table = format!("vaults.{name}");
                let (settings, cache_for) = file.resolve().map_err(|e| {
                    source.invalid(
                        &table,
                        Some(e.key),
                        &format!("{table}.{}", e.key),
                        e.message,
                    )
                })?;
                VaultBackend::Aws {
                    settings: Box::new(settings),
                    cache_for,
                }
            }
        };
        vaults.insert(name, backend);
    }
    let mut routes = BTreeMap::new();
    for (service, route) in services {
        if !vaults.contains_key(&route.vault) {
            return Err(source.invalid(
                &format!("services.{service}"),
                None,
                &format!("services.{service}.vault"),
                format!(
                    "no vault named `{}`; define it under [vaults.{}] or use one of: {}",
                    route.vault,
                    route.vault,
                    vaults.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        routes.insert(service, route.vault);
    }
    Ok(BrokerSettings {
        accounts_file: paths.or_default(accounts_file, "accounts.toml"),
        vaults,
        routes,
        oauth: BTreeMap::new(),
    })
}

/// `[oauth.SERVICE]` tables: endpoints from the issuer's discovery
/// document, or given, or MCPist's preset for the service; every endpoint
/// https (or loopback).
fn oauth_apps(
    files: BTreeMap<String, OAuthFile>,
    source: &Source,
) -> Result<BTreeMap<String, OAuthApp>, ConfigError> {
    let mut apps = BTreeMap::new();
    for (service, file) in files {
        let table = format!("oauth.{service}");
        let invalid = |key: &str, message: String| {
            source.invalid(&table, Some(key), &format!("{table}.{key}"), message)
        };
        if service == crate::broker::OAUTH_APP_SERVICE {
            return Err(invalid(
                "client_id",
                format!("`{service}` is reserved; name the service its modules bind"),
            ));
        }
        let url = |key: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| https_or_loopback(v).map_err(|m| invalid(key, m)))
                .transpose()
        };
        let authorization = url("authorization_endpoint", &file.authorization_endpoint)?;
        let token = url("token_endpoint", &file.token_endpoint)?;
        let revocation = url("revocation_endpoint", &file.revocation_endpoint)?;
        let device = url(
            "device_authorization_endpoint",
            &file.device_authorization_endpoint,
        )?;
        let given = authorization.is_some() || revocation.is_some() || device.is_some();
        let preset = presets::preset(&service);
        let endpoints = match (url("issuer", &file.issuer)?, token) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "issuer",
                    "give either `issuer` (endpoints from its discovery document) or the endpoints, not both".to_owned(),
                ));
            }
            (Some(issuer), None) if !given => EndpointSource::Issuer(issuer),
            (Some(_), None) => {
                return Err(invalid(
                    "issuer",
                    "the endpoints come from the issuer's discovery document; remove the ones given here".to_owned(),
                ));
            }
            (None, Some(token)) => EndpointSource::Given(Arc::new(Endpoints {
                issuer: None,
                authorization,
                token,
                revocation,
                device_authorization: device,
            })),
            (None, None) if given => {
                return Err(invalid(
                    "token_endpoint",
                    "missing: the other endpoints are given, so this one must be too".to_owned(),
                ));
            }
            (None, None) => match &preset {
                Some(preset) => EndpointSource::Given(Arc::new(preset.endpoints.clone())),
                None => {
                    return Err(invalid(
                        "issuer",
                        format!(
                            "MCPist knows no endpoints for `{service}`: give `issuer` (for discovery) or `authorization_endpoint` and `token_endpoint`"
                        ),
                    ));
                }
            },
        };
        let app = OAuthApp {
            service: service.clone(),
            client_id: file.client_id,
            endpoints,
            scopes: file.scopes.unwrap_or_else(|| {
                preset
                    .as_ref()
                    .map(|p| p.scopes.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default()
            }),
            extra_params: match file.authorization_params {
                Some(params) => params.into_iter().collect(),
                None => preset
                    .as_ref()
                    .map(|p| {
                        p.extra_params
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            client_auth: file
                .token_endpoint_auth_method
                .or(preset.as_ref().map(|p| p.client_auth))
                .unwrap_or(ClientAuth::ClientSecretBasic),
            resource: file.resource,
            redirect_port: file.redirect_port.unwrap_or(0),
            refresh_skew: file
                .refresh_skew_secs
                .map_or(DEFAULT_REFRESH_SKEW, Duration::from_secs),
        };
        apps.insert(service, app);
    }
    Ok(apps)
}

/// `[vaults.NAME]` with `kind = "vault"`: exactly one way to log in, and
/// credentials only by reference (an environment variable or a file).
fn kv_vault(
    name: &str,
    file: KvVaultFile,
    paths: &Paths,
    source: &Source,
) -> Result<VaultBackend, ConfigError> {
    let table = format!("vaults.{name}");
    let invalid = |key: &str, message: String| {
        source.invalid(&table, Some(key), &format!("{table}.{key}"), message)
    };
    let address = https_or_loopback(&file.address).map_err(|m| invalid("address", m))?;
    let one_of = |env: Option<String>, file: Option<PathBuf>, what: &str| match (env, file) {
        (Some(var), None) => Ok(SecretSource::Env(var)),
        (None, Some(path)) => Ok(SecretSource::File(paths.relative(path))),
        _ => Err(what.to_owned()),
    };
    let auth = match (file.approle, file.token_env, file.token_file) {
        (Some(approle), None, None) => KvAuth::AppRole {
            mount: approle.mount.unwrap_or_else(|| "approle".to_owned()),
            role_id: approle.role_id,
            secret_id: one_of(
                approle.secret_id_env,
                approle.secret_id_file,
                "give the AppRole secret id by exactly one of `secret_id_env` or `secret_id_file`",
            )
            .map_err(|m| invalid("approle", m))?,
        },
        (None, env, token_file) => KvAuth::Token(
            one_of(
                env,
                token_file,
                "give exactly one of `token_env`, `token_file` or `approle` (the vault token is never written in mcpist.toml)",
            )
            .map_err(|m| invalid("token_env", m))?,
        ),
        (Some(_), _, _) => {
            return Err(invalid(
                "approle",
                "`approle` and a token (`token_env`, `token_file`) exclude each other".to_owned(),
            ));
        }
    };
    let timeout = file
        .timeout_ms
        .map_or(DEFAULT_VAULT_TIMEOUT, Duration::from_millis);
    if timeout.is_zero() {
        return Err(invalid("timeout_ms", "must be at least 1".to_owned()));
    }
    Ok(VaultBackend::Kv {
        settings: Box::new(KvSettings {
            address,
            mount: file.mount.unwrap_or_else(|| "secret".to_owned()),
            prefix: file.prefix.unwrap_or_else(|| "mcpist".to_owned()),
            namespace: file.namespace,
            ca_file: file.ca_file.map(|p| paths.relative(p)),
            auth,
            timeout,
        }),
        cache_for: Duration::from_secs(file.cache_secs.unwrap_or(0)),
    })
}

fn audit(file: AuditFile, paths: &Paths) -> AuditSettings {
    AuditSettings {
        file: paths.or_default(file.file, "audit.log"),
        fsync: file.fsync.unwrap_or_default(),
        arguments: file.arguments.unwrap_or(false),
    }
}

fn console(file: ConsoleFile, source: &Source) -> Result<ConsoleSettings, ConfigError> {
    let bind = file.bind.unwrap_or(([127, 0, 0, 1], 8771).into());
    // The console changes what the server trusts: off loopback only when
    // the owner says so in as many words.
    if !bind.ip().is_loopback() && file.allow_remote != Some(true) {
        return Err(source.invalid(
            "console",
            None,
            "console.bind",
            format!(
                "{bind} is not a loopback address; the console is for this machine's owner (set `allow_remote = true` to serve it elsewhere, behind TLS)"
            ),
        ));
    }
    Ok(ConsoleSettings {
        enabled: file.enabled.unwrap_or(true),
        bind,
        idle_timeout: Duration::from_secs(60 * file.idle_timeout_mins.unwrap_or(30).max(1)),
        behind_tls: file.allow_remote == Some(true),
    })
}

/// `[tasks]`; a task is kept at least as long as a call may run, so that
/// its result is there to fetch.
fn tasks(file: &TasksFile, limits: &Limits) -> TaskSettings {
    let defaults = TaskSettings::default();
    TaskSettings {
        enabled: file.enabled.unwrap_or(defaults.enabled),
        after: file.after_ms.map_or(defaults.after, Duration::from_millis),
        keep: file
            .keep_secs
            .map_or(defaults.keep, Duration::from_secs)
            .max(limits.wall_time),
        poll_interval: file
            .poll_interval_ms
            .map_or(defaults.poll_interval, Duration::from_millis)
            .max(Duration::from_millis(10)),
    }
}

fn serve(file: ServeFile, paths: &Paths, source: &Source) -> Result<ServeSettings, ConfigError> {
    if let Some(resource) = &file.resource
        && !url::Url::parse(resource).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        return Err(source.invalid(
            "serve",
            None,
            "serve.resource",
            format!("{resource:?} is not an http(s) URL"),
        ));
    }
    Ok(ServeSettings {
        clients_file: paths.or_default(file.clients_file, "clients.toml"),
        allowed_origins: file.allowed_origins.unwrap_or_default(),
        allowed_hosts: file.allowed_hosts.unwrap_or_default(),
        max_body_bytes: file.max_body_kib.map_or(1 << 20, |k| k << 10),
        max_connections: file.max_connections.unwrap_or(512).max(1),
        header_timeout: Duration::from_secs(file.header_timeout_secs.unwrap_or(10).max(1)),
        resource: file.resource,
        jwt: file.jwt.map(|jwt| jwt_settings(jwt, source)).transpose()?,
        tools: file.tools.unwrap_or_default(),
    })
}

fn jwt_settings(jwt: JwtFile, source: &Source) -> Result<JwtSettings, ConfigError> {
    for (key, url) in [
        ("issuer", Some(&jwt.issuer)),
        ("jwks_uri", jwt.jwks_uri.as_ref()),
    ] {
        if let Some(Err(message)) = url.map(|u| https_or_loopback(u)) {
            return Err(source.invalid("serve.jwt", None, &format!("serve.jwt.{key}"), message));
        }
    }
    Ok(JwtSettings {
        issuer: jwt.issuer,
        jwks_uri: jwt.jwks_uri,
        audience: jwt.audience,
        client_claim: jwt.client_claim.unwrap_or_else(|| "client_id".to_owned()),
        required_scopes: jwt.required_scopes.unwrap_or_default(),
        leeway: Duration::from_secs(jwt.leeway_secs.unwrap_or(30)),
        token_types: jwt.token_types.unwrap_or_else(|| vec!["at+jwt".to_owned()]),
        max_lifetime: Duration::from_secs(jwt.max_lifetime_secs.unwrap_or(24 * 3600)),
        jwks_max_age: Duration::from_secs(jwt.jwks_max_age_secs.unwrap_or(600)),
        jwks_min_refresh: Duration::from_secs(jwt.jwks_min_refresh_secs.unwrap_or(10)),
    })
}

/// The masks, compiled once, here: a bad glob is a config error naming its
/// table.
fn masks(
    files: &BTreeMap<String, MaskFile>,
    account_files: &AccountMaskFiles,
    source: &Source,
) -> Result<Masks, ConfigError> {
    Masks::compile(files, account_files)
        .map_err(|error| source.invalid(&error.table, None, "", error.to_string()))
}

/// The 1-based line of `offset` and the dotted key defined on that line, if
/// any (`[limits]` + `memory_mib = ...` gives `limits.memory_mib`).
fn locate(text: &str, offset: usize) -> (usize, Option<String>) {
    let before = &text[..offset.min(text.len())];
    let line_no = before.matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let key = match (table, key) {
        (Some(t), Some(k)) if !line.trim_start().starts_with('[') => Some(format!("{t}.{k}")),
        (_, k) => k,
    };
    (line_no, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(home: &Path) -> Env {
        Env {
            mcpist_home: Some(home.to_path_buf()),
            ..Env::default()
        }
    }

    #[test]
    fn defaults_live_in_the_data_folder() {
        let home = tempfile::tempdir().unwrap();
        let config = Config::load(None, &env(home.path())).unwrap();
        assert_eq!(config.plugins_dir, home.path().join("plugins"));
        assert_eq!(config.lock_file, home.path().join("registry.lock"));
        assert_eq!(config.limits.memory_bytes, 64 << 20);
        assert!(config.source.is_none());
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcpist.toml");
        std::fs::write(&path, "plugins_dir = \"mods\"\n[limits]\nmemory_mib = 16\n").unwrap();
        let config = Config::load(Some(&path), &env(dir.path())).unwrap();
        assert_eq!(config.plugins_dir, dir.path().join("mods"));
        assert_eq!(config.limits.memory_bytes, 16 << 20);
    }

    #[test]
    fn a_task_is_kept_at_least_as_long_as_a_call_may_run() {
        let home = tempfile::tempdir().unwrap();
        let config = Config::parse_text(
            "[limits]\nwall_ms = 90000\n[tasks]\nafter_ms = 250\nkeep_secs = 10\n",
            home.path(),
        )
        .unwrap();
        assert_eq!(config.tasks.after, Duration::from_millis(250));
        assert_eq!(config.tasks.keep, Duration::from_secs(90));
        let config = Config::parse_text("", home.path()).unwrap();
        assert_eq!(config.tasks, TaskSettings::default());
    }

    #[test]
    fn a_bad_value_names_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcpist.toml");
        std::fs::write(
            &path,
            "# limits\n[limits]\ncpu_ms = 100\nmemory_mib = \"lots\"\n",
        )
        .unwrap();
        let message = Config::load(Some(&path), &env(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(&format!("{}:4: key `limits.memory_mib`: ", path.display())),
            "{message}"
        );
        assert!(message.contains("expected u64"), "{message}");
    }

    #[test]
    fn a_memory_limit_beyond_what_a_module_can_address_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcpist.toml");
        std::fs::write(&path, "[limits]\ncpu_ms = 100\nmemory_mib = 8192\n").unwrap();
        let message = Config::load(Some(&path), &env(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(&format!("{}:3: key `limits.memory_mib`: ", path.display())),
            "{message}"
        );
        assert!(message.contains("at most 4096"), "{message}");
    }

    #[test]
    fn an_unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcpist.toml");
        std::fs::write(&path, "plugin_dir = \"x\"\n").unwrap();
        let message = Config::load(Some(&path), &env(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(":1: key `plugin_dir`: unknown field `plugin_dir`"),
            "{message}"
        );
    }

    #[test]
    fn vaults_services_upstreams_and_http_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcpist.toml");
        std::fs::write(
            &path,
            "[http]\ntimeout_ms = 1500\n[upstreams]\n\"api.github.com\" = \"http://127.0.0.1:9\"\n\
             [vaults.dev]\nkind = \"env\"\n[services.github]\nvault = \"dev\"\n",
        )
        .unwrap();
        let config = Config::load(Some(&path), &env(dir.path())).unwrap();
        assert_eq!(config.http.timeout, Duration::from_millis(1500));
        assert_eq!(config.upstreams["api.github.com"], "http://127.0.0.1:9");
        assert_eq!(config.broker.routes["github"], "dev");
        assert!(matches!(
            config.broker.vaults["local"],
            VaultBackend::File { .. }
        ));
        std::fs::write(&path, "\n[services.github]\nvault = \"nope\"\n").unwrap();
        let message = Config::load(Some(&path), &env(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(":2: key `services.github.vault`: no vault named `nope`"),
            "{message}"
        );
        std::fs::write(&path, "[vaults.x]\nkind = \"carrier-pigeon\"\n").unwrap();
        assert!(Config::load(Some(&path), &env(dir.path())).is_err());
    }

    #[test]
    fn a_remote_vault_takes_its_credentials_only_by_reference() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcpist.toml");
        let load = |vault: &str| {
            std::fs::write(&path, format!("[vaults.bao]\nkind = \"vault\"\n{vault}\n")).unwrap();
            Config::load(Some(&path), &env(dir.path()))
        };
        let config = load(
            "address = \"http://127.0.0.1:8200\"\napprole = { role_id = \"r\", secret_id_file = \"sid\" }\ncache_secs = 30",
        )
        .unwrap();
        let VaultBackend::Kv {
            settings,
            cache_for,
        } = &config.broker.vaults["bao"]
        else {
            panic!("{:?}", config.broker.vaults["bao"]);
        };
        assert_eq!(*cache_for, Duration::from_secs(30));
        assert_eq!(settings.timeout, DEFAULT_VAULT_TIMEOUT);
        assert_eq!(
            (settings.mount.as_str(), settings.prefix.as_str()),
            ("secret", "mcpist")
        );
        assert_eq!(
            settings.auth,
            KvAuth::AppRole {
                mount: "approle".into(),
                role_id: "r".into(),
                secret_id: SecretSource::File(dir.path().join("sid")),
            }
        );
        let error = |vault: &str| load(vault).unwrap_err().to_string();
        assert!(
            error("address = \"http://127.0.0.1:8200\"")
                .contains("the vault token is never written in mcpist.toml"),
        );
        assert!(
            error("address = \"http://127.0.0.1:8200\"\ntoken = \"hvs.x\"")
                .contains("unknown field `token`"),
        );
        assert!(
            error("address = \"http://bao.example.com\"\ntoken_env = \"T\"")
                .contains("must use https")
        );
        assert!(
            error("address = \"https://b.example\"\ntoken_env = \"T\"\napprole = { role_id = \"r\", secret_id_env = \"S\" }")
                .contains("exclude each other")
        );
    }

    #[test]
    fn oauth_apps_take_presets_discovery_or_given_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        let parse = |text: &str| Config::parse_text(text, dir.path());
        let config = parse("[oauth.google]\nclient_id = \"id\"\n").unwrap();
        let google = &config.broker.oauth["google"];
        let EndpointSource::Given(endpoints) = &google.endpoints else {
            panic!("{:?}", google.endpoints);
        };
        assert_eq!(endpoints.token.host_str(), Some("oauth2.googleapis.com"));
        assert!(
            google
                .extra_params
                .contains(&("access_type".into(), "offline".into()))
        );
        assert_eq!(google.client_auth, ClientAuth::ClientSecretPost);
        assert_eq!(google.refresh_skew, DEFAULT_REFRESH_SKEW);

        let config = parse(
            "[oauth.google]\nclient_id = \"id\"\nissuer = \"http://127.0.0.1:9000\"\nscopes = [\"calendar\"]\nauthorization_params = {}\ntoken_endpoint_auth_method = \"none\"\nrefresh_skew_secs = 5\n",
        )
        .unwrap();
        let google = &config.broker.oauth["google"];
        assert!(matches!(&google.endpoints, EndpointSource::Issuer(u) if u.port() == Some(9000)));
        assert!(google.extra_params.is_empty() && !google.needs_secret());
        assert_eq!(google.refresh_skew, Duration::from_secs(5));

        let refused = |text: &str, expected: &str| {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        };
        refused(
            "[oauth.acme]\nclient_id = \"x\"\n",
            "knows no endpoints for `acme`",
        );
        refused(
            "[oauth.acme]\nclient_id = \"x\"\ntoken_endpoint = \"http://idp.example.com/token\"\n",
            "must use https",
        );
        refused(
            "[oauth.acme]\nclient_id = \"x\"\nissuer = \"https://idp.example.com\"\ntoken_endpoint = \"https://idp.example.com/t\"\n",
            "either `issuer`",
        );
        refused(
            "[oauth.acme]\nclient_id = \"x\"\nauthorization_endpoint = \"https://idp.example.com/a\"\n",
            "oauth.acme.token_endpoint",
        );
        refused(
            "[oauth.acme]\nclient_id = \"x\"\nclient_secret = \"s\"\n",
            "client_secret",
        );
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = Config::load(Some(&missing), &env(dir.path())).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
    }
}
