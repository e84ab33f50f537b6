//! Secrets in HashiCorp Vault or OpenBao (the same HTTP API), in a KV
//! version 2 secrets engine: one entry per account, at
//! `MOUNT/data/PREFIX/SERVICE/ACCOUNT`, holding `{"secret": "..."}`.
//!
//! MCPist logs in with a token (from an environment variable or a file) or
//! by AppRole, renews its token before the TTL runs out, and logs in again
//! when renewal fails or the vault stops accepting the token. Requests go
//! straight to the configured address: no redirects, no proxy from the
//! environment, `https` unless the address is loopback.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;
use url::Url;
use zeroize::Zeroizing;

use super::vault::{Vault, VaultError};

/// How a HashiCorp Vault or OpenBao vault is reached, from `[vaults.NAME]`
/// with `kind = "vault"`.
#[derive(Debug, Clone, PartialEq)]
pub struct KvSettings {
    /// The server, e.g. `https://bao.internal:8200`.
    pub address: Url,
    /// The KV v2 mount (`secret`).
    pub mount: String,
    /// The folder under the mount that MCPist's entries live in (`mcpist`).
    pub prefix: String,
    /// An enterprise or OpenBao namespace, sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// A PEM file of the CA that signed the server's certificate, added to
    /// the public roots.
    pub ca_file: Option<PathBuf>,
    /// How MCPist logs in.
    pub auth: KvAuth,
    /// How long one request may take.
    pub timeout: Duration,
}

/// How MCPist gets its vault token.
#[derive(Debug, Clone, PartialEq)]
pub enum KvAuth {
    /// A token the owner provides.
    Token(SecretSource),
    /// AppRole: a role id (not secret) and a secret id.
    AppRole {
        /// The auth mount, `approle` unless configured.
        mount: String,
        /// The role's id (an identifier, not a secret).
        role_id: String,
        /// Where the secret id is read, at each login.
        secret_id: SecretSource,
    },
}

/// Where a credential for the vault itself is read: never from the TOML.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretSource {
    /// An environment variable of the server's.
    Env(String),
    /// A file, read at each login (so a rotated file is picked up).
    File(PathBuf),
}

impl SecretSource {
    fn read(&self, vault: &str) -> Result<SecretString, VaultError> {
        let value = match self {
            SecretSource::Env(var) => std::env::var(var).map_err(|_| {
                unavailable(vault, format!("the environment variable {var} is not set"))
            })?,
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| unavailable(vault, format!("cannot read {}: {e}", path.display())))?,
        };
        let value = Zeroizing::new(value);
        let trimmed = value.trim();
        if trimmed.is_empty() {
            let place = match self {
                SecretSource::Env(var) => format!("the environment variable {var}"),
                SecretSource::File(path) => path.display().to_string(),
            };
            return Err(unavailable(vault, format!("{place} is empty")));
        }
        Ok(SecretString::from(trimmed.to_owned()))
    }
}

/// The token in use, and when to renew it.
struct Session {
    token: SecretString,
    /// `None` for a token that does not expire (a root token).
    renew_at: Option<Instant>,
    renewable: bool,
}

pub struct KvVault {
    name: String,
    settings: KvSettings,
    http: Result<reqwest::Client, VaultError>,
    session: Mutex<Option<Session>>,
}

fn http_client(name: &str, settings: &KvSettings) -> Result<reqwest::Client, VaultError> {
    let mut http = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| unavailable(name, format!("cannot read {}: {e}", path.display())))?;
        let certificate = reqwest::Certificate::from_pem(&pem).map_err(|e| {
            unavailable(
                name,
                format!("{} is not a PEM certificate: {e}", path.display()),
            )
        })?;
        http = http.add_root_certificate(certificate);
    }
    http.build()
        .map_err(|e| unavailable(name, format!("cannot set up HTTPS: {e}")))
}

impl KvVault {
    /// The server is not contacted until a secret is needed. A CA file that
    /// cannot be used makes every operation fail with the reason (and only
    /// this vault's).
    pub fn new(name: &str, settings: KvSettings) -> KvVault {
        KvVault {
            name: name.to_owned(),
            http: http_client(name, &settings),
            settings,
            session: Mutex::new(None),
        }
    }

    /// `/v1/MOUNT/<area>/PREFIX/REFERENCE`, each segment percent-encoded.
    fn entry_url(&self, area: &str, reference: &str) -> Url {
        let nonempty = |s: &&str| !s.is_empty();
        self.api_url(
            self.settings
                .mount
                .split('/')
                .filter(nonempty)
                .chain([area])
                .chain(self.settings.prefix.split('/').filter(nonempty))
                .chain(reference.split('/')),
        )
    }

    /// `/v1/` and then `segments`, each percent-encoded.
    fn api_url<'a>(&self, segments: impl IntoIterator<Item = &'a str>) -> Url {
        let mut url = self.settings.address.clone();
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .pop_if_empty()
            .push("v1")
            .extend(segments);
        url
    }

    /// One request to the vault, with or without a token. Our copies of
    /// the bodies, which may carry a secret, are zeroizing; the HTTP
    /// stack's own buffers are not (see the known limits in
    /// docs/security.md).
    async fn send(
        &self,
        method: Method,
        url: Url,
        token: Option<&SecretString>,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>), VaultError> {
        let http = self.http.as_ref().map_err(Clone::clone)?;
        let mut request = http.request(method, url);
        if let Some(namespace) = &self.settings.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(token) = token {
            let mut value = reqwest::header::HeaderValue::from_str(token.expose_secret())
                .map_err(|_| unavailable(&self.name, "the vault token is not a valid header"))?;
            value.set_sensitive(true);
            request = request.header("X-Vault-Token", value);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_vec());
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        Ok((status, Zeroizing::new(bytes.to_vec())))
    }

    fn transport_error(&self, error: reqwest::Error) -> VaultError {
        let reason = if error.is_timeout() {
            format!(
                "no answer from {} within {} ms",
                self.settings.address,
                self.settings.timeout.as_millis()
            )
        } else if error.is_connect() {
            format!(
                "cannot connect to {} ({})",
                self.settings.address,
                innermost(&error)
            )
        } else {
            format!("{}: {}", self.settings.address, innermost(&error))
        };
        unavailable(&self.name, reason)
    }

    /// The vault's own words for a refusal: its `errors` list, bounded.
    fn refusal(&self, what: &str, status: StatusCode, body: &[u8]) -> VaultError {
        #[derive(Deserialize)]
        struct Errors {
            #[serde(default)]
            errors: Vec<String>,
        }
        let said = serde_json::from_slice::<Errors>(body)
            .map(|e| e.errors.join("; "))
            .unwrap_or_default();
        let said: String = said.split_whitespace().collect::<Vec<_>>().join(" ");
        let said: String = said.chars().take(300).collect();
        let hint = match status {
            StatusCode::FORBIDDEN => {
                " (check that the vault token's policy allows this path)".to_owned()
            }
            _ => String::new(),
        };
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        unavailable(&self.name, format!("{what} answered {status}{said}{hint}"))
    }

    /// A token that is valid now: the session's, renewed when due, else a
    /// new login.
    async fn token(&self) -> Result<SecretString, VaultError> {
        let mut session = self.session.lock().await;
        if let Some(current) = session.as_mut() {
            let due = current.renew_at.is_some_and(|at| Instant::now() >= at);
            if !due {
                return Ok(current.token.clone());
            }
            if current.renewable {
                match self.renew(&current.token).await {
                    Ok(renewed) => {
                        *current = renewed;
                        return Ok(current.token.clone());
                    }
                    Err(error) => {
                        tracing::info!(vault = %self.name, %error, "vault token renewal failed; logging in again");
                    }
                }
            }
        }
        let fresh = self.login().await?;
        let token = fresh.token.clone();
        *session = Some(fresh);
        Ok(token)
    }

    /// Forget the session (the vault refused its token).
    async fn forget_token(&self) {
        *self.session.lock().await = None;
    }

    async fn login(&self) -> Result<Session, VaultError> {
        match &self.settings.auth {
            KvAuth::Token(source) => {
                let token = source.read(&self.name)?;
                let (status, body) = self
                    .send(
                        Method::GET,
                        self.api_url("auth/token/lookup-self".split('/')),
                        Some(&token),
                        None,
                    )
                    .await?;
                if !status.is_success() {
                    return Err(self.refusal("looking up the vault token", status, &body));
                }
                #[derive(Deserialize)]
                struct Lookup {
                    data: LookupData,
                }
                #[derive(Deserialize)]
                struct LookupData {
                    #[serde(default)]
                    ttl: u64,
                    #[serde(default)]
                    renewable: bool,
                }
                let lookup: Lookup = serde_json::from_slice(&body).map_err(|e| {
                    unavailable(&self.name, format!("unexpected token lookup answer: {e}"))
                })?;
                Ok(session(token, lookup.data.ttl, lookup.data.renewable))
            }
            KvAuth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let secret_id = secret_id.read(&self.name)?;
                let body = Zeroizing::new(
                    serde_json::to_vec(
                        &json!({"role_id": role_id, "secret_id": secret_id.expose_secret()}),
                    )
                    .expect("JSON of strings"),
                );
                let (status, answer) = self
                    .send(
                        Method::POST,
                        self.api_url(format!("auth/{mount}/login").split('/')),
                        None,
                        Some(body),
                    )
                    .await?;
                if !status.is_success() {
                    return Err(self.refusal("the AppRole login", status, &answer));
                }
                self.auth_answer(&answer)
            }
        }
    }

    async fn renew(&self, token: &SecretString) -> Result<Session, VaultError> {
        let (status, answer) = self
            .send(
                Method::POST,
                self.api_url("auth/token/renew-self".split('/')),
                Some(token),
                Some(Zeroizing::new(b"{}".to_vec())),
            )
            .await?;
        if !status.is_success() {
            return Err(self.refusal("renewing the vault token", status, &answer));
        }
        let mut renewed = self.auth_answer(&answer)?;
        // renew-self answers with the same token.
        renewed.token = token.clone();
        Ok(renewed)
    }

    /// The `auth` block of a login or renewal.
    fn auth_answer(&self, answer: &[u8]) -> Result<Session, VaultError> {
        #[derive(Deserialize)]
        struct Answer {
            auth: Auth,
        }
        #[derive(Deserialize)]
        struct Auth {
            #[serde(default)]
            client_token: Option<SecretString>,
            #[serde(default)]
            lease_duration: u64,
            #[serde(default)]
            renewable: bool,
        }
        let answer: Answer = serde_json::from_slice(answer)
            .map_err(|e| unavailable(&self.name, format!("unexpected login answer: {e}")))?;
        let token = answer
            .auth
            .client_token
            .unwrap_or_else(|| SecretString::from(String::new()));
        Ok(session(
            token,
            answer.auth.lease_duration,
            answer.auth.renewable,
        ))
    }

    /// Runs `op` with a valid token; when the vault refuses the token
    /// (revoked, expired early), logs in again and tries once more.
    async fn with_token<T, F, Fut>(&self, op: F) -> Result<T, VaultError>
    where
        F: Fn(SecretString) -> Fut,
        Fut: Future<Output = Result<Attempt<T>, VaultError>>,
    {
        let token = self.token().await?;
        match op(token).await? {
            Attempt::Done(value) => Ok(value),
            Attempt::TokenRefused => {
                self.forget_token().await;
                let token = self.token().await?;
                match op(token).await? {
                    Attempt::Done(value) => Ok(value),
                    Attempt::TokenRefused => Err(unavailable(
                        &self.name,
                        "permission denied for a fresh token: check that its policy allows reading and writing under the configured mount and prefix",
                    )),
                }
            }
        }
    }
}

/// What one authenticated request came to.
enum Attempt<T> {
    Done(T),
    /// 403: the token may have been revoked; a new login may help.
    TokenRefused,
}

/// A session for a token with `ttl` seconds left: renewed at two thirds of
/// it. A TTL of 0 means the token does not expire.
fn session(token: SecretString, ttl: u64, renewable: bool) -> Session {
    Session {
        token,
        renew_at: (ttl > 0).then(|| Instant::now() + Duration::from_secs(ttl) * 2 / 3),
        renewable,
    }
}

pub(super) fn unavailable(vault: &str, reason: impl Into<String>) -> VaultError {
    VaultError::Unavailable {
        vault: vault.to_owned(),
        reason: reason.into(),
    }
}

/// The deepest cause of a transport error ("connection refused"), which is
/// what the owner needs; the outer layers repeat the URL.
pub(super) fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[async_trait]
impl Vault for KvVault {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "vault"
    }

    fn stores_secrets(&self) -> bool {
        true
    }

    /// `SERVICE/ACCOUNT` under the configured prefix.
    fn reference_for(&self, service: &str, account: &str) -> String {
        format!("{service}/{account}")
    }

    async fn get(&self, reference: &str) -> Result<SecretString, VaultError> {
        let url = self.entry_url("data", reference);
        self.with_token(|token| {
            let url = url.clone();
            async move {
                let (status, body) = self.send(Method::GET, url, Some(&token), None).await?;
                match status {
                    StatusCode::FORBIDDEN => return Ok(Attempt::TokenRefused),
                    StatusCode::NOT_FOUND => {
                        return Err(VaultError::NotFound {
                            vault: self.name.clone(),
                            reference: reference.to_owned(),
                            hint: String::new(),
                        });
                    }
                    s if !s.is_success() => {
                        return Err(self.refusal("reading the secret", status, &body));
                    }
                    _ => {}
                }
                #[derive(Deserialize)]
                struct Read {
                    data: ReadData,
                }
                #[derive(Deserialize)]
                struct ReadData {
                    data: Option<Entry>,
                }
                #[derive(Deserialize)]
                struct Entry {
                    secret: Option<SecretString>,
                }
                let read: Read = serde_json::from_slice(&body).map_err(|e| {
                    unavailable(&self.name, format!("unexpected answer to a read: {e}"))
                })?;
                // A deleted version reads as null data.
                match read.data.data.and_then(|entry| entry.secret) {
                    Some(secret) => Ok(Attempt::Done(secret)),
                    None => Err(VaultError::NotFound {
                        vault: self.name.clone(),
                        reference: reference.to_owned(),
                        hint: "; the entry has no `secret` field".to_owned(),
                    }),
                }
            }
        })
        .await
    }

    async fn put(&self, reference: &str, secret: SecretString) -> Result<(), VaultError> {
        let url = self.entry_url("data", reference);
        let body = Zeroizing::new(
            serde_json::to_vec(&json!({"data": {"secret": secret.expose_secret()}}))
                .expect("JSON of a string"),
        );
        self.with_token(|token| {
            let (url, body) = (url.clone(), body.clone());
            async move {
                let (status, answer) = self
                    .send(Method::POST, url, Some(&token), Some(body))
                    .await?;
                match status {
                    StatusCode::FORBIDDEN => Ok(Attempt::TokenRefused),
                    s if s.is_success() => Ok(Attempt::Done(())),
                    _ => Err(self.refusal("writing the secret", status, &answer)),
                }
            }
        })
        .await
    }

    /// Deletes every version and the metadata, so nothing of the secret
    /// stays readable or recoverable through the KV API.
    async fn delete(&self, reference: &str) -> Result<(), VaultError> {
        let url = self.entry_url("metadata", reference);
        self.with_token(|token| {
            let url = url.clone();
            async move {
                let (status, answer) = self.send(Method::DELETE, url, Some(&token), None).await?;
                match status {
                    StatusCode::FORBIDDEN => Ok(Attempt::TokenRefused),
                    s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(Attempt::Done(())),
                    _ => Err(self.refusal("deleting the secret", status, &answer)),
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(address: &str, prefix: &str) -> KvVault {
        KvVault::new(
            "bao",
            KvSettings {
                address: Url::parse(address).unwrap(),
                mount: "secret".into(),
                prefix: prefix.into(),
                namespace: None,
                ca_file: None,
                auth: KvAuth::Token(SecretSource::Env("MCPIST_TEST_NO_SUCH_VAR".into())),
                timeout: Duration::from_millis(300),
            },
        )
    }

    #[test]
    fn entries_live_under_the_mount_and_prefix_with_names_encoded() {
        let v = vault("http://127.0.0.1:8200", "apps/mcpist");
        assert_eq!(
            v.entry_url("data", "github/work@corp").as_str(),
            "http://127.0.0.1:8200/v1/secret/data/apps/mcpist/github/work@corp"
        );
        let v = vault("https://vault.example.com/", "mcpist");
        assert_eq!(
            v.entry_url("metadata", "notion/a b").as_str(),
            "https://vault.example.com/v1/secret/metadata/mcpist/notion/a%20b"
        );
    }

    #[tokio::test]
    async fn a_missing_token_and_a_vault_that_is_down_are_said_in_words() {
        let error = vault("http://127.0.0.1:8200", "mcpist")
            .get("github/work")
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "vault `bao` is unavailable: the environment variable MCPIST_TEST_NO_SUCH_VAR is not set"
        );
        // Nothing listens on this port: bound and dropped.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "t0ken\n").unwrap();
        let down = KvVault::new(
            "bao",
            KvSettings {
                auth: KvAuth::Token(SecretSource::File(dir.path().join("token"))),
                ..vault(&format!("http://127.0.0.1:{port}"), "mcpist").settings
            },
        );
        let error = down.get("github/work").await.unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "vault `bao` is unavailable: cannot connect to http://127.0.0.1:{port}/ ("
            )),
            "{error}"
        );
    }
}
