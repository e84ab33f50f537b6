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

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::audit::Fsync;
use crate::broker::{BrokerSettings, DEFAULT_VAULT, VaultBackend};
use crate::egress::HttpSettings;
use crate::oauth::{JwtSettings, check_key_source_url};
use crate::policy::{AccountMaskFiles, MaskFile, Masks};
use crate::registry::Guards;
use crate::runtime::Limits;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {key}{message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        /// `key `a.b`: ` or empty when the error is not about one key.
        key: String,
        message: String,
    },
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
    #[serde(default)]
    guards: GuardsFile,
    #[serde(default)]
    cache: CacheFile,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    vault: String,
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
    pub home: PathBuf,
    pub plugins_dir: PathBuf,
    pub lock_file: PathBuf,
    pub limits: Limits,
    /// A `tracing` filter directive; `MCPIST_LOG` overrides it.
    pub log_level: String,
    /// Log to this file instead of stderr.
    pub log_file: Option<PathBuf>,
    pub http: HttpSettings,
    /// Origin or host → base URL (see [`crate::egress`]).
    pub upstreams: BTreeMap<String, String>,
    pub broker: BrokerSettings,
    pub audit: AuditSettings,
    pub serve: ServeSettings,
    pub masks: BTreeMap<String, MaskFile>,
    pub account_masks: AccountMaskFiles,
    pub guards: Guards,
    /// Where compiled modules are kept across starts; none when disabled.
    pub compiled_cache: Option<PathBuf>,
}

/// The Streamable HTTP endpoint (`mcpist serve --http`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServeSettings {
    /// The registered clients and their key digests.
    pub clients_file: PathBuf,
    pub allowed_origins: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub max_body_bytes: usize,
    pub resource: Option<String>,
    pub jwt: Option<JwtSettings>,
    pub tools: ToolMode,
}

/// Where and how calls are recorded (see [`crate::audit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSettings {
    pub file: PathBuf,
    pub fsync: Fsync,
    /// Record each call's arguments, not only their digest.
    pub arguments: bool,
}

/// Values from the environment, passed in so that tests need not mutate the
/// process environment.
#[derive(Debug, Default, Clone)]
pub struct Env {
    pub mcpist_config: Option<PathBuf>,
    pub mcpist_home: Option<PathBuf>,
    pub xdg_data_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl Env {
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
    /// Load the configuration: `explicit` is the `--config` argument.
    pub fn load(explicit: Option<&Path>, env: &Env) -> Result<Config, ConfigError> {
        let home = env.data_home()?;
        let path = match explicit
            .map(Path::to_path_buf)
            .or_else(|| env.mcpist_config.clone())
        {
            Some(path) => Some(path),
            None => Some(home.join("mcpist.toml")).filter(|p| p.is_file()),
        };
        let (file, base, text) = match &path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let file = parse(path, &text)?;
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (file, base, text)
            }
            None => (ConfigFile::default(), home.clone(), String::new()),
        };
        let defaults = Limits::default();
        let limits = Limits {
            memory_bytes: file
                .limits
                .memory_mib
                .map_or(defaults.memory_bytes, |m| m << 20),
            cpu_time: file
                .limits
                .cpu_ms
                .map_or(defaults.cpu_time, Duration::from_millis),
            wall_time: file
                .limits
                .wall_ms
                .map_or(defaults.wall_time, Duration::from_millis),
            output_bytes: file
                .limits
                .output_kib
                .map_or(defaults.output_bytes, |k| (k as usize) << 10),
            concurrent_calls: file
                .limits
                .concurrent_calls
                .map_or(defaults.concurrent_calls, |n| n.max(1)),
        };
        let resolve = |p: Option<PathBuf>, default: &str| match p {
            Some(p) if p.is_relative() => base.join(p),
            Some(p) => p,
            None => home.join(default),
        };
        let http_defaults = HttpSettings::default();
        let ms = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_millis);
        let http = HttpSettings {
            connect_timeout: ms(file.http.connect_timeout_ms, http_defaults.connect_timeout),
            timeout: ms(file.http.timeout_ms, http_defaults.timeout),
            max_request_bytes: file
                .http
                .max_request_kib
                .map_or(http_defaults.max_request_bytes, |k| k << 10),
            max_response_bytes: file
                .http
                .max_response_kib
                .map_or(http_defaults.max_response_bytes, |k| k << 10),
            max_requests_per_call: file
                .http
                .max_requests_per_call
                .unwrap_or(http_defaults.max_requests_per_call),
            max_redirects: file
                .http
                .max_redirects
                .unwrap_or(http_defaults.max_redirects),
        };
        let relative = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        // The embedded default vault, unless the file redefines `local`.
        let mut vaults = BTreeMap::from([(
            DEFAULT_VAULT.to_owned(),
            VaultBackend::File {
                path: home.join("vault.enc"),
                key_file: home.join("vault.key"),
            },
        )]);
        for (name, vault) in file.vaults {
            let backend = match vault {
                VaultFile::File { path, key_file } => VaultBackend::File {
                    path: path.map_or_else(|| home.join(format!("{name}.vault.enc")), relative),
                    key_file: key_file
                        .map_or_else(|| home.join(format!("{name}.vault.key")), relative),
                },
                VaultFile::Env { prefix } => VaultBackend::Env {
                    prefix: prefix.unwrap_or_else(|| "MCPIST_SECRET_".to_owned()),
                },
            };
            vaults.insert(name, backend);
        }
        let mut routes = BTreeMap::new();
        for (service, route) in file.services {
            if !vaults.contains_key(&route.vault) {
                return Err(ConfigError::Invalid {
                    path: path.clone().unwrap_or_default(),
                    line: locate_key(&text, &format!("[services.{service}]")),
                    key: format!("key `services.{service}.vault`: "),
                    message: format!(
                        "no vault named `{}`; define it under [vaults.{}] or use one of: {}",
                        route.vault,
                        route.vault,
                        vaults.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
            routes.insert(service, route.vault);
        }
        let broker = BrokerSettings {
            accounts_file: file
                .accounts_file
                .map_or_else(|| home.join("accounts.toml"), relative),
            vaults,
            routes,
        };
        let audit = AuditSettings {
            file: file
                .audit
                .file
                .map_or_else(|| home.join("audit.log"), relative),
            fsync: file.audit.fsync.unwrap_or_default(),
            arguments: file.audit.arguments.unwrap_or(false),
        };
        let serve = ServeSettings {
            clients_file: file
                .serve
                .clients_file
                .map_or_else(|| home.join("clients.toml"), relative),
            allowed_origins: file.serve.allowed_origins.unwrap_or_default(),
            allowed_hosts: file.serve.allowed_hosts.unwrap_or_default(),
            max_body_bytes: file.serve.max_body_kib.map_or(1 << 20, |k| k << 10),
            resource: file.serve.resource,
            jwt: None,
            tools: file.serve.tools.unwrap_or_default(),
        };
        let invalid = |section: &str, key: &str, message: String| ConfigError::Invalid {
            path: path.clone().unwrap_or_default(),
            line: locate_key(&text, section),
            key: format!("key `{key}`: "),
            message,
        };
        if let Some(resource) = &serve.resource {
            match url::Url::parse(resource) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                _ => {
                    return Err(invalid(
                        "[serve]",
                        "serve.resource",
                        format!("{resource:?} is not an http(s) URL"),
                    ));
                }
            }
        }
        if let Some(mib) = file.limits.memory_mib
            && mib > MAX_MEMORY_MIB
        {
            return Err(ConfigError::Invalid {
                path: path.clone().unwrap_or_default(),
                line: text
                    .lines()
                    .position(|l| l.trim_start().starts_with("memory_mib"))
                    .map_or(1, |i| i + 1),
                key: "key `limits.memory_mib`: ".to_owned(),
                message: format!(
                    "{mib} is more than a module can address; at most {MAX_MEMORY_MIB} (4 GiB)"
                ),
            });
        }
        let mut serve = serve;
        if let Some(jwt) = file.serve.jwt {
            for (key, url) in [
                ("issuer", Some(&jwt.issuer)),
                ("jwks_uri", jwt.jwks_uri.as_ref()),
            ] {
                if let Some(Err(message)) = url.map(|u| check_key_source_url(u)) {
                    return Err(invalid("[serve.jwt]", &format!("serve.jwt.{key}"), message));
                }
            }
            serve.jwt = Some(JwtSettings {
                issuer: jwt.issuer,
                jwks_uri: jwt.jwks_uri,
                audience: jwt.audience,
                client_claim: jwt.client_claim.unwrap_or_else(|| "client_id".to_owned()),
                required_scopes: jwt.required_scopes.unwrap_or_default(),
                leeway: Duration::from_secs(jwt.leeway_secs.unwrap_or(30)),
                jwks_max_age: Duration::from_secs(jwt.jwks_max_age_secs.unwrap_or(600)),
                jwks_min_refresh: Duration::from_secs(jwt.jwks_min_refresh_secs.unwrap_or(10)),
            });
        }
        if let Err(message) = Masks::compile(&file.masks, &file.account_masks) {
            // The message starts with the table at fault: `[masks.NAME] ...`.
            let table = message.split_once(' ').map_or("", |(t, _)| t);
            return Err(ConfigError::Invalid {
                path: path.clone().unwrap_or_default(),
                line: locate_key(&text, table),
                key: String::new(),
                message,
            });
        }
        Ok(Config {
            masks: file.masks,
            account_masks: file.account_masks,
            compiled_cache: file.cache.enabled.unwrap_or(true).then(|| {
                file.cache
                    .dir
                    .map_or_else(|| home.join("cache").join("compiled"), relative)
            }),
            guards: match file.guards.smuggling_parameters {
                Some(names) => Guards {
                    smuggling_parameters: names,
                },
                None => Guards::default(),
            },
            serve,
            audit,
            http,
            upstreams: file.upstreams,
            broker,
            plugins_dir: resolve(file.plugins_dir, "plugins"),
            lock_file: resolve(file.lock_file, "registry.lock"),
            log_file: file
                .log
                .file
                .map(|p| if p.is_relative() { base.join(p) } else { p }),
            log_level: file.log.level.unwrap_or_else(|| "info".to_owned()),
            limits,
            home,
            source: path,
        })
    }
}

fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let (line, key) = locate(text, offset);
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            key: key.map(|k| format!("key `{k}`: ")).unwrap_or_default(),
            message: e.message().trim().to_owned(),
        }
    })
}

/// The 1-based line on which `needle` first appears (1 when absent).
fn locate_key(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.trim() == needle)
        .map_or(1, |i| i + 1)
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
    fn a_missing_explicit_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = Config::load(Some(&missing), &env(dir.path())).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
    }
}
