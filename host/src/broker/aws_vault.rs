//! Secrets in AWS Secrets Manager: one secret per account, named
//! `PREFIX + SERVICE/ACCOUNT` (`mcpist/github/work` by default), whose
//! `SecretString` is the account's token, verbatim.
//!
//! Requests are the service's JSON protocol (awsJson1.1: a POST to the
//! regional endpoint, the operation in `X-Amz-Target`), signed with SigV4 by
//! `aws-sigv4` and sent with the project's own reqwest. Not the AWS SDK:
//! its default TLS stack builds C crypto, and all MCPist needs is four
//! operations. Requests go straight to the endpoint: no redirects, no proxy
//! from the environment, `https` unless the endpoint is loopback.
//!
//! Credentials are read for each operation (so a rotated credentials file
//! is picked up) from the offline part of AWS's standard chain: the
//! environment, then the shared credentials file. A `profile` named in
//! `mcpist.toml` is taken from the file only: the owner chose that identity,
//! and keys that happen to be exported in the server's environment must not
//! quietly replace it. They are never logged nor put in an error; neither is
//! a secret being written (AWS validation messages can quote the request).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroizing;

use super::guarded::DEFAULT_TIMEOUT;
use super::kv_vault::{innermost, unavailable};
use super::vault::{Vault, VaultError};
use crate::secure_url::https_or_loopback;

/// The prefix of secret names unless `prefix` says otherwise.
pub const DEFAULT_PREFIX: &str = "mcpist/";

/// The longest secret name Secrets Manager accepts.
const MAX_NAME: usize = 512;

/// How an AWS Secrets Manager vault is reached, from `[vaults.NAME]` with
/// `kind = "aws"`.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsSettings {
    /// The region; `None`: `AWS_REGION`, else `AWS_DEFAULT_REGION`, read
    /// when the vault is set up.
    pub region: Option<String>,
    /// Where requests go instead of `https://secretsmanager.REGION.amazonaws.com/`
    /// (a VPC endpoint, a test server).
    pub endpoint: Option<Url>,
    /// Put before `SERVICE/ACCOUNT` to make a secret's name.
    pub prefix: String,
    /// The profile of the shared credentials file to use, and only it.
    pub profile: Option<String>,
    /// How long one request may take.
    pub timeout: Duration,
}

/// `[vaults.NAME]` with `kind = "aws"`, as written. This vault owns its
/// configuration; `config.rs` only places its errors in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsVaultFile {
    region: Option<String>,
    endpoint_url: Option<String>,
    prefix: Option<String>,
    profile: Option<String>,
    timeout_ms: Option<u64>,
    cache_secs: Option<u64>,
}

/// A value of `[vaults.NAME]` that cannot be used: which key, and why.
#[derive(Debug)]
pub struct InvalidKey {
    /// The key within the table, e.g. `region`.
    pub key: &'static str,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl AwsVaultFile {
    /// The settings, and how long a secret read may be kept in memory.
    pub fn resolve(self) -> Result<(AwsSettings, Duration), InvalidKey> {
        let invalid = |key, message| InvalidKey { key, message };
        if let Some(region) = &self.region {
            check_region(region).map_err(|m| invalid("region", m))?;
        }
        let endpoint = self
            .endpoint_url
            .as_deref()
            .map(https_or_loopback)
            .transpose()
            .map_err(|m| invalid("endpoint_url", m))?;
        let prefix = self.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        if let Some(c) = prefix.chars().find(|c| !is_name_char(*c)) {
            return Err(invalid(
                "prefix",
                format!("{c:?} cannot be in a secret name: use ASCII letters, digits and /_+=.@-"),
            ));
        }
        // Half of a name leaves room for `SERVICE/ACCOUNT` (at most 129).
        if prefix.len() > MAX_NAME / 2 {
            return Err(invalid(
                "prefix",
                format!("at most {} characters", MAX_NAME / 2),
            ));
        }
        if self.profile.as_deref().is_some_and(str::is_empty) {
            return Err(invalid(
                "profile",
                "is empty: name a profile of the shared credentials file, or leave it out"
                    .to_owned(),
            ));
        }
        let timeout = self
            .timeout_ms
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        if timeout.is_zero() {
            return Err(invalid("timeout_ms", "must be at least 1".to_owned()));
        }
        let settings = AwsSettings {
            region: self.region,
            endpoint,
            prefix,
            profile: self.profile,
            timeout,
        };
        Ok((settings, Duration::from_secs(self.cache_secs.unwrap_or(0))))
    }
}

/// What Secrets Manager accepts in a name.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/_+=.@-".contains(c)
}

/// A region goes into the endpoint's host name: only what region names are
/// made of, so that a value from the environment cannot send requests (and
/// signatures) to another host.
fn check_region(region: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&region.len())
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    ok.then_some(()).ok_or_else(|| {
        format!("{region:?} is not an AWS region name (like \"eu-west-1\": lowercase letters, digits and '-')")
    })
}

/// Where requests go and which region they are signed for.
#[derive(Debug)]
struct Endpoint {
    url: Url,
    region: String,
}

/// Reads a variable of the server's environment; empty counts as unset.
type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn endpoint(vault: &str, settings: &AwsSettings, env: &EnvLookup) -> Result<Endpoint, VaultError> {
    let region = match &settings.region {
        Some(region) => region.clone(),
        None => {
            let (var, region) = ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .into_iter()
                .find_map(|var| env(var).map(|value| (var, value)))
                .ok_or_else(|| {
                    unavailable(
                        vault,
                        format!(
                            "no AWS region: set `region` under [vaults.{vault}] in mcpist.toml, or AWS_REGION in mcpist's environment"
                        ),
                    )
                })?;
            check_region(&region).map_err(|m| unavailable(vault, format!("{var}: {m}")))?;
            region
        }
    };
    let url = match &settings.endpoint {
        Some(url) => url.clone(),
        None => {
            // The China regions are in their own partition and domain.
            let domain = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            Url::parse(&format!("https://secretsmanager.{region}.{domain}/"))
                .expect("a checked region makes a valid host")
        }
    };
    Ok(Endpoint { url, region })
}

/// Keys to sign with, and where they came from (for messages: never the
/// keys themselves).
struct Keys {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
    from: String,
}

/// The environment's keys, else the shared credentials file's; only the
/// file's when `profile` was configured.
fn credentials(profile: Option<&str>, env: &EnvLookup) -> Result<Keys, String> {
    if let Some(profile) = profile {
        return from_profile(profile, env, "");
    }
    let id = env("AWS_ACCESS_KEY_ID");
    let secret = env("AWS_SECRET_ACCESS_KEY").map(SecretString::from);
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Keys {
            access_key_id,
            secret_access_key,
            session_token: env("AWS_SESSION_TOKEN").map(SecretString::from),
            from: "the environment (AWS_ACCESS_KEY_ID)".to_owned(),
        }),
        (Some(_), None) => Err(
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or neither to use the shared credentials file".to_owned(),
        ),
        (None, Some(_)) => Err(
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both, or neither to use the shared credentials file".to_owned(),
        ),
        (None, None) => {
            let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
            from_profile(
                &profile,
                env,
                ", or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys) in mcpist's environment",
            )
        }
    }
}

/// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`; `None` when
/// neither that variable nor `HOME` is set.
fn credentials_file(env: &EnvLookup) -> Option<PathBuf> {
    let home = env("HOME");
    match env("AWS_SHARED_CREDENTIALS_FILE") {
        Some(path) => Some(match (path.strip_prefix("~/"), &home) {
            (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => PathBuf::from(path),
        }),
        None => home.map(|home| PathBuf::from(home).join(".aws/credentials")),
    }
}

/// A profile's static keys. `otherwise` is appended to errors about a
/// missing file or profile: the other way to give keys, if there is one.
fn from_profile(profile: &str, env: &EnvLookup, otherwise: &str) -> Result<Keys, String> {
    let Some(path) = credentials_file(env) else {
        return Err(format!(
            "no AWS credentials: set AWS_SHARED_CREDENTIALS_FILE (or HOME, for ~/.aws/credentials) to a file with profile `{profile}`{otherwise}"
        ));
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "no AWS credentials: there is no {} for profile `{profile}` (write one with `aws configure --profile {profile}`, or point AWS_SHARED_CREDENTIALS_FILE at one){otherwise}",
                path.display()
            ));
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let Some(section) = profile_section(&text, profile) else {
        return Err(format!(
            "{} has no profile `{profile}`{otherwise}",
            path.display()
        ));
    };
    let value = |key: &str| {
        section
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    };
    match (value("aws_access_key_id"), value("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(Keys {
            access_key_id: id.to_owned(),
            secret_access_key: SecretString::from(secret.to_owned()),
            session_token: value("aws_session_token").map(|t| SecretString::from(t.to_owned())),
            from: format!("profile `{profile}` in {}", path.display()),
        }),
        _ => Err(format!(
            "profile `{profile}` in {} has no aws_access_key_id and aws_secret_access_key: MCPist reads static keys only, not SSO, role_arn or credential_process (temporary keys can be exported with `aws configure export-credentials --profile {profile} --format env`)",
            path.display()
        )),
    }
}

/// The `key = value` lines of every `[profile]` section of an INI text
/// (later lines win, as in the AWS tools). Comments start with `#` or `;`.
fn profile_section<'a>(text: &'a str, profile: &str) -> Option<Vec<(&'a str, &'a str)>> {
    let mut found = None::<Vec<_>>;
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let name = header.split(']').next().unwrap_or("").trim();
            inside = name == profile;
            if inside {
                found.get_or_insert_with(Vec::new);
            }
            continue;
        }
        if inside && let Some((key, value)) = line.split_once('=') {
            found
                .get_or_insert_with(Vec::new)
                .push((key.trim(), value.trim()));
        }
    }
    found
}

/// What Secrets Manager said when it refused: its error type (the part
/// after any `namespace#`) and message.
#[derive(Debug, Default, PartialEq)]
struct Refusal {
    kind: String,
    message: String,
}

impl Refusal {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Refusal {
        #[derive(Deserialize, Default)]
        struct Body {
            #[serde(rename = "__type", alias = "code")]
            kind: Option<String>,
            #[serde(alias = "Message")]
            message: Option<String>,
        }
        let body: Body = serde_json::from_slice(body).unwrap_or_default();
        // The protocol puts the type in a header first, the body second;
        // both may carry a namespace before '#' and a URI after ':'.
        let kind = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or(body.kind)
            .unwrap_or_default();
        let kind = kind.rsplit('#').next().unwrap_or("");
        let kind = kind.split(':').next().unwrap_or("");
        let kind = if kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
            kind.chars().take(100).collect()
        } else {
            String::new()
        };
        let message: String = body
            .message
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(300)
            .collect();
        Refusal { kind, message }
    }

    fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}

/// Whether `text` may quote `secret`: contains it, or any 8 characters of
/// it in a row (a message cut short, or escaped around a quote, still
/// carries those).
fn may_quote(text: &str, secret: &str) -> bool {
    const RUN: usize = 8;
    if secret.is_empty() {
        return false;
    }
    if secret.len() <= RUN {
        return text.contains(secret);
    }
    text.as_bytes()
        .windows(RUN)
        .any(|run| memchr::memmem::find(secret.as_bytes(), run).is_some())
}

/// An answer: its status, headers, and body (zeroizing: a read carries the
/// secret); and where the keys it was signed with came from.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Zeroizing<Vec<u8>>,
    keys_from: String,
}

pub struct AwsVault {
    name: String,
    settings: AwsSettings,
    endpoint: Result<Endpoint, VaultError>,
    http: Result<reqwest::Client, VaultError>,
    env: Box<EnvLookup>,
}

impl AwsVault {
    /// AWS is not contacted until a secret is needed. A missing region
    /// makes every operation fail with what to set (and only this vault's).
    pub fn new(name: &str, settings: AwsSettings) -> AwsVault {
        AwsVault::with_env(name, settings, Box::new(process_env))
    }

    fn with_env(name: &str, settings: AwsSettings, env: Box<EnvLookup>) -> AwsVault {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| unavailable(name, format!("cannot set up HTTPS: {e}")));
        AwsVault {
            name: name.to_owned(),
            endpoint: endpoint(name, &settings, env.as_ref()),
            settings,
            http,
            env,
        }
    }

    /// The secret's name in Secrets Manager.
    fn secret_name(&self, reference: &str) -> String {
        format!("{}{reference}", self.settings.prefix)
    }

    /// One signed request: `operation` with the JSON `body`.
    async fn send(&self, operation: &str, body: Zeroizing<Vec<u8>>) -> Result<Answer, VaultError> {
        let http = self.http.as_ref().map_err(Clone::clone)?;
        let endpoint = self.endpoint.as_ref().map_err(Clone::clone)?;
        let keys = credentials(self.settings.profile.as_deref(), self.env.as_ref())
            .map_err(|reason| unavailable(&self.name, reason))?;
        let target = format!("secretsmanager.{operation}");
        let content_type = "application/x-amz-json-1.1";
        let signed = self
            .sign(endpoint, &keys, &target, content_type, &body)
            .map_err(|reason| unavailable(&self.name, reason))?;
        let response = http
            .post(endpoint.url.clone())
            .header("Content-Type", content_type)
            .header("X-Amz-Target", &target)
            .headers(signed)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| self.transport_error(&endpoint.url, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&endpoint.url, e))?;
        Ok(Answer {
            status,
            headers,
            body: Zeroizing::new(bytes.to_vec()),
            keys_from: keys.from,
        })
    }

    /// The SigV4 headers (`Authorization`, `X-Amz-Date`, and
    /// `X-Amz-Security-Token` with temporary keys), marked sensitive. The
    /// signer gets the body's hash, not the body: its trace log prints the
    /// request, and only its hash then.
    fn sign(
        &self,
        endpoint: &Endpoint,
        keys: &Keys,
        target: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<HeaderMap, String> {
        let identity = aws_credential_types::Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.expose_secret().to_owned(),
            keys.session_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            None,
            "mcpist",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&endpoint.region)
            .name("secretsmanager")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into();
        let request = SignableRequest::new(
            "POST",
            endpoint.url.as_str(),
            [("content-type", content_type), ("x-amz-target", target)].into_iter(),
            SignableBody::Precomputed(hex::encode(Sha256::digest(body))),
        )
        .map_err(|e| format!("cannot sign a request to {}: {e}", endpoint.url))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into_parts();
        let (headers, _query) = instructions.into_parts();
        let mut signed = HeaderMap::new();
        for header in headers {
            let mut value = HeaderValue::from_str(header.value()).map_err(|_| {
                format!(
                    "the credentials from {} do not fit in a header (stray characters in a key or token?)",
                    keys.from
                )
            })?;
            value.set_sensitive(true);
            let name = HeaderName::from_bytes(header.name().as_bytes())
                .map_err(|_| format!("the signer made a header named {:?}", header.name()))?;
            signed.insert(name, value);
        }
        Ok(signed)
    }

    fn transport_error(&self, url: &Url, error: reqwest::Error) -> VaultError {
        let reason = if error.is_timeout() {
            format!(
                "no answer from {url} within {} ms",
                self.settings.timeout.as_millis()
            )
        } else if error.is_connect() {
            format!("cannot connect to {url} ({})", innermost(&error))
        } else {
            format!("{url}: {}", innermost(&error))
        };
        unavailable(&self.name, reason)
    }

    /// A refusal in words, with what to check. `writing` is the secret
    /// being written, if any: a message that may quote it is withheld.
    fn refused(
        &self,
        what: &str,
        answer: &Answer,
        refusal: &Refusal,
        writing: Option<&SecretString>,
    ) -> VaultError {
        let mut said = match (refusal.kind.as_str(), refusal.message.as_str()) {
            ("", "") => String::new(),
            ("", message) => format!(": {message}"),
            (kind, "") => format!(": {kind}"),
            (kind, message) => format!(": {kind}: {message}"),
        };
        if let Some(secret) = writing
            && may_quote(&said, secret.expose_secret())
        {
            said = if refusal.kind.is_empty() || may_quote(&refusal.kind, secret.expose_secret()) {
                String::new()
            } else {
                format!(": {}", refusal.kind)
            };
            said.push_str(" (AWS's message is withheld: it may quote the secret)");
        }
        let from = &answer.keys_from;
        let hint = match refusal.kind.as_str() {
            "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "InvalidClientTokenId"
            | "SignatureDoesNotMatch" => {
                format!(" (check the AWS keys from {from}, and the vault's region)")
            }
            "ExpiredTokenException" | "ExpiredToken" => format!(
                " (the temporary keys from {from} have expired: renew them and their session token)"
            ),
            "AccessDeniedException" => format!(
                " (the IAM policy of the keys from {from} must allow secretsmanager:GetSecretValue, PutSecretValue, CreateSecret and DeleteSecret on secrets named {}*)",
                self.settings.prefix
            ),
            _ => String::new(),
        };
        unavailable(
            &self.name,
            format!("{what} answered {}{said}{hint}", answer.status),
        )
    }

    /// `PutSecretValue`, or `CreateSecret` when the name is new.
    async fn write(&self, reference: &str, secret: &SecretString) -> Result<(), VaultError> {
        let name = &self.secret_name(reference);
        let put = self
            .send("PutSecretValue", write_body(name, secret, None))
            .await?;
        if put.status.is_success() {
            return Ok(());
        }
        let refusal = Refusal::parse(&put.headers, &put.body);
        if !refusal.is("ResourceNotFoundException") {
            return Err(self.refused(
                &format!("writing secret `{name}`"),
                &put,
                &refusal,
                Some(secret),
            ));
        }
        tracing::debug!(vault = %self.name, %name, "no such secret yet; creating it");
        let description = match reference.split_once('/') {
            Some((service, account)) => format!("MCPist: the token of {service} account {account}"),
            None => "MCPist: an account's token".to_owned(),
        };
        let created = self
            .send("CreateSecret", write_body(name, secret, Some(&description)))
            .await?;
        if created.status.is_success() {
            return Ok(());
        }
        let refusal = Refusal::parse(&created.headers, &created.body);
        Err(self.refused(
            &format!("creating secret `{name}`"),
            &created,
            &refusal,
            Some(secret),
        ))
    }
}

/// The body of `PutSecretValue`, or of `CreateSecret` when a description is
/// given, in a zeroizing buffer sized up front so that no growth leaves a
/// copy of the secret behind in freed memory. The request token is what the
/// SDKs send for idempotency; it is random, so the body's hash (which the
/// signer logs at trace) says nothing of the secret.
fn write_body(name: &str, secret: &SecretString, create_with: Option<&str>) -> Zeroizing<Vec<u8>> {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Write<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        secret_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        secret_string: &'a str,
        client_request_token: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'a str>,
    }
    let token = request_token();
    let write = Write {
        secret_id: create_with.is_none().then_some(name),
        name: create_with.is_some().then_some(name),
        secret_string: secret.expose_secret(),
        client_request_token: &token,
        description: create_with,
    };
    // JSON escapes a byte into at most 6.
    let room =
        6 * (secret.expose_secret().len() + name.len() + create_with.map_or(0, str::len)) + 200;
    let mut body = Zeroizing::new(Vec::with_capacity(room));
    serde_json::to_writer(&mut *body, &write).expect("JSON of strings");
    body
}

/// A random UUID (version 4), as `ClientRequestToken`.
fn request_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The body of a read or a delete (no secret in it).
fn json_body(value: serde_json::Value) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(serde_json::to_vec(&value).expect("JSON of strings"))
}

#[async_trait]
impl Vault for AwsVault {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "aws"
    }

    fn stores_secrets(&self) -> bool {
        true
    }

    /// `SERVICE/ACCOUNT`, after the configured prefix.
    fn reference_for(&self, service: &str, account: &str) -> String {
        format!("{service}/{account}")
    }

    async fn get(&self, reference: &str) -> Result<SecretString, VaultError> {
        let name = self.secret_name(reference);
        let answer = self
            .send(
                "GetSecretValue",
                json_body(serde_json::json!({ "SecretId": name })),
            )
            .await?;
        if !answer.status.is_success() {
            let refusal = Refusal::parse(&answer.headers, &answer.body);
            // AWS answers 400, moto 404: the type says it either way.
            if refusal.is("ResourceNotFoundException") {
                let region = self
                    .endpoint
                    .as_ref()
                    .map(|e| e.region.as_str())
                    .unwrap_or("");
                let add = match reference.split_once('/') {
                    Some((service, account)) => {
                        format!(": add it with `mcpist account add {service} {account}`")
                    }
                    None => String::new(),
                };
                return Err(VaultError::NotFound {
                    vault: self.name.clone(),
                    reference: reference.to_owned(),
                    hint: format!("; there is no AWS secret `{name}` in {region}{add}"),
                });
            }
            return Err(self.refused(&format!("reading secret `{name}`"), &answer, &refusal, None));
        }
        #[derive(Deserialize)]
        struct Read {
            #[serde(rename = "SecretString")]
            secret_string: Option<SecretString>,
            #[serde(rename = "SecretBinary")]
            secret_binary: Option<serde::de::IgnoredAny>,
        }
        // serde's message could quote the answer, which holds the secret.
        let read: Read = serde_json::from_slice(&answer.body).map_err(|_| {
            unavailable(
                &self.name,
                format!(
                    "the answer to reading secret `{name}` from {} is not Secrets Manager's JSON (is `endpoint_url` right?)",
                    self.endpoint.as_ref().map_or("", |e| e.url.as_str())
                ),
            )
        })?;
        match (read.secret_string, read.secret_binary) {
            (Some(secret), _) => Ok(secret),
            (None, Some(_)) => Err(unavailable(
                &self.name,
                format!(
                    "secret `{name}` holds binary data; MCPist reads the token from SecretString (store it with `mcpist account add`)"
                ),
            )),
            (None, None) => Err(VaultError::NotFound {
                vault: self.name.clone(),
                reference: reference.to_owned(),
                hint: format!("; AWS secret `{name}` has no SecretString"),
            }),
        }
    }

    /// The previous value stays in AWS as the `AWSPREVIOUS` version until
    /// the next write or the account's removal.
    async fn put(&self, reference: &str, secret: SecretString) -> Result<(), VaultError> {
        self.write(reference, &secret).await
    }

    /// At once and for good (`ForceDeleteWithoutRecovery`), every version:
    /// a removed account's token must not stay recoverable for the default
    /// 30-day window.
    async fn delete(&self, reference: &str) -> Result<(), VaultError> {
        let name = self.secret_name(reference);
        let answer = self
            .send(
                "DeleteSecret",
                json_body(serde_json::json!({
                    "SecretId": name,
                    "ForceDeleteWithoutRecovery": true,
                })),
            )
            .await?;
        if answer.status.is_success() {
            return Ok(());
        }
        let refusal = Refusal::parse(&answer.headers, &answer.body);
        if refusal.is("ResourceNotFoundException") {
            return Ok(());
        }
        Err(self.refused(
            &format!("deleting secret `{name}`"),
            &answer,
            &refusal,
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::VaultBackend;
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn env_of(vars: &[(&str, &str)]) -> Box<EnvLookup> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Box::new(move |name| vars.get(name).filter(|v| !v.is_empty()).cloned())
    }

    fn settings(region: Option<&str>, endpoint: Option<&str>) -> AwsSettings {
        AwsSettings {
            region: region.map(str::to_owned),
            endpoint: endpoint.map(|e| Url::parse(e).unwrap()),
            prefix: DEFAULT_PREFIX.to_owned(),
            profile: None,
            timeout: Duration::from_secs(2),
        }
    }

    fn load(table: &str) -> Result<crate::config::Config, String> {
        let dir = tempfile::tempdir().unwrap();
        crate::config::Config::parse_text(
            &format!("[vaults.sm]\nkind = \"aws\"\n{table}\n"),
            dir.path(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn the_table_takes_a_region_an_endpoint_and_a_prefix_and_defaults_the_rest() {
        let config = load("region = \"eu-west-1\"").unwrap();
        let VaultBackend::Aws {
            settings,
            cache_for,
        } = &config.broker.vaults["sm"]
        else {
            panic!("{:?}", config.broker.vaults["sm"]);
        };
        assert_eq!(
            **settings,
            AwsSettings {
                region: Some("eu-west-1".into()),
                endpoint: None,
                prefix: "mcpist/".into(),
                profile: None,
                timeout: DEFAULT_TIMEOUT,
            }
        );
        assert_eq!(*cache_for, Duration::ZERO);
        let config = load(
            "endpoint_url = \"http://127.0.0.1:5000\"\nprefix = \"team/\"\nprofile = \"ops\"\ntimeout_ms = 700\ncache_secs = 30",
        )
        .unwrap();
        let VaultBackend::Aws {
            settings,
            cache_for,
        } = &config.broker.vaults["sm"]
        else {
            panic!();
        };
        assert_eq!(settings.region, None);
        assert_eq!(
            settings.endpoint.as_ref().unwrap().as_str(),
            "http://127.0.0.1:5000/"
        );
        assert_eq!(
            (settings.prefix.as_str(), settings.profile.as_deref()),
            ("team/", Some("ops"))
        );
        assert_eq!(
            (settings.timeout, *cache_for),
            (Duration::from_millis(700), Duration::from_secs(30))
        );
    }

    #[test]
    fn keys_in_mcpist_toml_and_endpoints_that_could_be_read_on_the_way_are_refused() {
        // The keys are never written in the config, which others may read.
        let error = load("region = \"us-east-1\"\naws_secret_access_key = \"x\"").unwrap_err();
        assert!(
            error.contains("unknown field `aws_secret_access_key`"),
            "{error}"
        );
        let error =
            load("region = \"us-east-1\"\nendpoint_url = \"http://sm.example.com\"").unwrap_err();
        assert!(
            error.contains(":4: key `vaults.sm.endpoint_url`: ")
                && error.contains("must use https"),
            "{error}"
        );
        // A region becomes part of a host name.
        let error = load("region = \"evil.example.com/\"").unwrap_err();
        assert!(
            error.contains(":3: key `vaults.sm.region`: ")
                && error.contains("not an AWS region name"),
            "{error}"
        );
        let error = load("prefix = \"my secrets/\"").unwrap_err();
        assert!(
            error.contains("key `vaults.sm.prefix`: ' ' cannot be in a secret name"),
            "{error}"
        );
        let error = load("timeout_ms = 0").unwrap_err();
        assert!(
            error.contains("key `vaults.sm.timeout_ms`: must be at least 1"),
            "{error}"
        );
    }

    #[test]
    fn the_region_comes_from_the_table_else_the_environment_and_makes_the_endpoint() {
        let at = |region: Option<&str>, vars: &[(&str, &str)]| {
            endpoint("sm", &settings(region, None), env_of(vars).as_ref())
                .map(|e| (e.url.to_string(), e.region))
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            at(Some("eu-west-1"), &[("AWS_REGION", "us-east-1")]).unwrap(),
            (
                "https://secretsmanager.eu-west-1.amazonaws.com/".into(),
                "eu-west-1".into()
            )
        );
        assert_eq!(
            at(
                None,
                &[("AWS_DEFAULT_REGION", "us-west-2"), ("AWS_REGION", "")]
            )
            .unwrap()
            .1,
            "us-west-2"
        );
        assert_eq!(
            at(None, &[("AWS_REGION", "cn-north-1")]).unwrap().0,
            "https://secretsmanager.cn-north-1.amazonaws.com.cn/"
        );
        assert_eq!(
            at(None, &[]).unwrap_err(),
            "vault `sm` is unavailable: no AWS region: set `region` under [vaults.sm] in mcpist.toml, or AWS_REGION in mcpist's environment"
        );
        assert!(
            at(None, &[("AWS_REGION", "x.evil.com#")])
                .unwrap_err()
                .contains("AWS_REGION: \"x.evil.com#\" is not an AWS region name")
        );
        // An endpoint given is used as is, signed for the region.
        let e = endpoint(
            "sm",
            &settings(Some("eu-central-1"), Some("https://vpce-1.example.com")),
            env_of(&[]).as_ref(),
        )
        .unwrap();
        assert_eq!(
            (e.url.as_str(), e.region.as_str()),
            ("https://vpce-1.example.com/", "eu-central-1")
        );
    }

    fn credentials_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, text).unwrap();
        let path = path.display().to_string();
        (dir, path)
    }

    const FILE: &str = "# the owner's keys\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default/secret+key\n\n\
                        [ops]\n; temporary\naws_access_key_id=AKIDOPS\naws_secret_access_key=ops-secret\naws_session_token = ops-session\n\
                        [sso]\nsso_session = corp\nsso_role_name = admin\n";

    #[test]
    fn keys_come_from_the_environment_then_the_shared_file_and_a_configured_profile_wins() {
        let (_dir, path) = credentials_file(FILE);
        let keys = |profile: Option<&str>, vars: &[(&str, &str)]| {
            credentials(profile, env_of(vars).as_ref()).map(|k| {
                (
                    k.access_key_id,
                    k.secret_access_key.expose_secret().to_owned(),
                    k.session_token.map(|t| t.expose_secret().to_owned()),
                )
            })
        };
        let env_keys = [
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ("AWS_SESSION_TOKEN", "env-session"),
            ("AWS_SHARED_CREDENTIALS_FILE", path.as_str()),
        ];
        assert_eq!(
            keys(None, &env_keys).unwrap(),
            (
                "AKIDENV".into(),
                "env-secret".into(),
                Some("env-session".into())
            )
        );
        // The owner named a profile: exported keys do not replace it.
        assert_eq!(
            keys(Some("ops"), &env_keys).unwrap(),
            (
                "AKIDOPS".into(),
                "ops-secret".into(),
                Some("ops-session".into())
            )
        );
        let file_only = [("AWS_SHARED_CREDENTIALS_FILE", path.as_str())];
        assert_eq!(
            keys(None, &file_only).unwrap(),
            ("AKIDDEFAULT".into(), "default/secret+key".into(), None)
        );
        assert_eq!(
            keys(None, &[file_only[0], ("AWS_PROFILE", "ops")])
                .unwrap()
                .0,
            "AKIDOPS"
        );
        // ~/.aws/credentials when no file is named.
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        std::fs::write(home.path().join(".aws/credentials"), FILE).unwrap();
        let home = home.path().display().to_string();
        assert_eq!(
            keys(None, &[("HOME", home.as_str())]).unwrap().0,
            "AKIDDEFAULT"
        );
    }

    #[test]
    fn missing_or_unusable_keys_say_what_to_set_and_never_quote_a_key() {
        let (_dir, path) = credentials_file(FILE);
        let error = |profile: Option<&str>, vars: &[(&str, &str)]| {
            credentials(profile, env_of(vars).as_ref()).err().unwrap()
        };
        let nothing = error(None, &[]);
        assert!(
            nothing.starts_with("no AWS credentials: ")
                && nothing.contains("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            "{nothing}"
        );
        let no_file = error(None, &[("HOME", "/nonexistent-home")]);
        assert!(
            no_file
                .contains("there is no /nonexistent-home/.aws/credentials for profile `default`")
                && no_file.contains("set AWS_ACCESS_KEY_ID"),
            "{no_file}"
        );
        let half = error(None, &[("AWS_ACCESS_KEY_ID", "AKIDENV")]);
        assert_eq!(
            half,
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or neither to use the shared credentials file"
        );
        let file = [("AWS_SHARED_CREDENTIALS_FILE", path.as_str())];
        assert_eq!(
            error(Some("nope"), &file),
            format!("{path} has no profile `nope`")
        );
        let sso = error(Some("sso"), &file);
        assert!(
            sso.contains("MCPist reads static keys only") && sso.contains("--profile sso"),
            "{sso}"
        );
        for message in [nothing, no_file, half, sso] {
            for key in ["default/secret+key", "ops-secret", "ops-session"] {
                assert!(!message.contains(key), "{message}");
            }
        }
    }

    #[test]
    fn error_types_are_read_from_the_header_or_the_body_without_namespace() {
        let parse = |header: Option<&str>, body: &str| {
            let mut headers = HeaderMap::new();
            if let Some(h) = header {
                headers.insert("x-amzn-errortype", HeaderValue::from_str(h).unwrap());
            }
            Refusal::parse(&headers, body.as_bytes())
        };
        let refusal = parse(
            None,
            r#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#,
        );
        assert!(refusal.is("ResourceNotFoundException"));
        assert_eq!(
            refusal.message,
            "Secrets Manager can't find the specified secret."
        );
        let refusal = parse(
            Some(
                "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/",
            ),
            r#"{"Message":"User: arn:aws:iam::1:user/x is not authorized"}"#,
        );
        assert_eq!(refusal.kind, "AccessDeniedException");
        assert_eq!(
            refusal.message,
            "User: arn:aws:iam::1:user/x is not authorized"
        );
        assert_eq!(parse(None, "<html>bad gateway</html>"), Refusal::default());
    }

    #[test]
    fn a_message_that_may_quote_the_secret_is_recognised() {
        let secret = "secret_notion_a_3333";
        assert!(may_quote(
            "Value 'secret_notion_a_3333' at 'secretString'",
            secret
        ));
        // Cut short, or with only part of it.
        assert!(may_quote("Value 'secret_noti…", secret));
        assert!(!may_quote(
            "Secrets Manager can't find the specified secret.",
            secret
        ));
        assert!(may_quote("got 'abc'", "abc"));
        assert!(!may_quote("anything", ""));
    }

    /// A server that answers each request with the next canned answer and
    /// records what it was sent (the `X-Amz-Target` and the body).
    struct Canned {
        url: String,
        seen: Arc<Mutex<Vec<(String, String)>>>,
    }

    async fn canned(answers: Vec<(u16, &'static str)>) -> Canned {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(std::collections::VecDeque::from(answers)));
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let (record, answers) = (record.clone(), answers.clone());
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    loop {
                        let mut chunk = [0u8; 4096];
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buffer).to_string();
                        let Some(end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let head = text[..end].to_ascii_lowercase();
                        let header = |name: &str| {
                            head.lines().find_map(|l| {
                                l.strip_prefix(&format!("{name}: ")).map(str::to_owned)
                            })
                        };
                        let length: usize =
                            header("content-length").map_or(0, |l| l.parse().unwrap());
                        if buffer.len() < end + 4 + length {
                            continue;
                        }
                        let body = text[end + 4..end + 4 + length].to_owned();
                        record
                            .lock()
                            .unwrap()
                            .push((header("x-amz-target").unwrap_or_default(), body));
                        buffer.drain(..end + 4 + length);
                        let (status, answer) =
                            answers.lock().unwrap().pop_front().expect("an answer");
                        let response = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        socket.write_all(response.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        Canned { url, seen }
    }

    fn vault_at(url: &str) -> AwsVault {
        AwsVault::with_env(
            "sm",
            settings(Some("eu-west-1"), Some(url)),
            env_of(&[
                ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
                ("AWS_SECRET_ACCESS_KEY", "test-secret-key"),
            ]),
        )
    }

    const NOT_FOUND: &str = r#"{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#;

    #[tokio::test]
    async fn a_missing_secret_is_not_found_whether_aws_answers_400_or_moto_404() {
        for status in [400, 404] {
            let server = canned(vec![(status, NOT_FOUND)]).await;
            let error = vault_at(&server.url)
                .get("notion/team-a")
                .await
                .unwrap_err();
            assert!(matches!(error, VaultError::NotFound { .. }), "{error:?}");
            assert_eq!(
                error.to_string(),
                "vault `sm` has no secret `notion/team-a`; there is no AWS secret `mcpist/notion/team-a` in eu-west-1: add it with `mcpist account add notion team-a`"
            );
            assert_eq!(
                server.seen.lock().unwrap()[0],
                (
                    "secretsmanager.getsecretvalue".to_owned(),
                    r#"{"SecretId":"mcpist/notion/team-a"}"#.to_owned()
                )
            );
        }
    }

    #[tokio::test]
    async fn a_write_creates_the_secret_when_it_is_new_and_a_delete_of_nothing_succeeds() {
        let server = canned(vec![
            (400, NOT_FOUND),
            (200, r#"{"ARN":"arn:aws:secretsmanager:eu-west-1:1:secret:mcpist/notion/team-a-AbCdEf","Name":"mcpist/notion/team-a"}"#),
            (400, NOT_FOUND),
        ])
        .await;
        let vault = vault_at(&server.url);
        vault
            .put("notion/team-a", SecretString::from("tok\"en"))
            .await
            .unwrap();
        vault.delete("notion/team-a").await.unwrap();
        let seen = server.seen.lock().unwrap();
        let targets: Vec<_> = seen.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            targets,
            [
                "secretsmanager.putsecretvalue",
                "secretsmanager.createsecret",
                "secretsmanager.deletesecret"
            ]
        );
        let put: serde_json::Value = serde_json::from_str(&seen[0].1).unwrap();
        assert_eq!(
            (put["SecretId"].as_str(), put["SecretString"].as_str()),
            (Some("mcpist/notion/team-a"), Some("tok\"en"))
        );
        assert_eq!(put["ClientRequestToken"].as_str().unwrap().len(), 36);
        let create: serde_json::Value = serde_json::from_str(&seen[1].1).unwrap();
        assert_eq!(create["Name"].as_str(), Some("mcpist/notion/team-a"));
        assert_eq!(
            create["Description"].as_str(),
            Some("MCPist: the token of notion account team-a")
        );
        assert_ne!(put["ClientRequestToken"], create["ClientRequestToken"]);
        let delete: serde_json::Value = serde_json::from_str(&seen[2].1).unwrap();
        assert_eq!(
            delete,
            serde_json::json!({"SecretId": "mcpist/notion/team-a", "ForceDeleteWithoutRecovery": true})
        );
    }

    #[tokio::test]
    async fn a_refused_write_names_the_fix_and_withholds_a_message_that_quotes_the_secret() {
        let server = canned(vec![
            (400, r#"{"__type":"ValidationException","message":"Value 'tok-abcdefgh-1234' at 'secretString' failed to satisfy constraint"}"#),
            (400, r#"{"__type":"com.amazonaws.secretsmanager#AccessDeniedException","message":"not authorized to perform: secretsmanager:PutSecretValue"}"#),
            (200, "<ListAllMyBucketsResult/>"),
        ])
        .await;
        let vault = vault_at(&server.url);
        let error = vault
            .put("notion/team-a", SecretString::from("tok-abcdefgh-1234"))
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "vault `sm` is unavailable: writing secret `mcpist/notion/team-a` answered 400 Bad Request: ValidationException (AWS's message is withheld: it may quote the secret)"
        );
        let error = vault
            .put("notion/team-a", SecretString::from("tok-abcdefgh-1234"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("AccessDeniedException: not authorized to perform: secretsmanager:PutSecretValue (the IAM policy of the keys from the environment (AWS_ACCESS_KEY_ID) must allow")
                && error.contains("on secrets named mcpist/*"),
            "{error}"
        );
        // Something else at the endpoint (moto routes unsigned requests to S3).
        let error = vault.get("notion/team-a").await.unwrap_err().to_string();
        assert!(
            error.contains("is not Secrets Manager's JSON (is `endpoint_url` right?)"),
            "{error}"
        );
    }

    #[test]
    fn requests_are_signed_for_the_region_and_service_with_the_session_token_sensitive() {
        let vault = AwsVault::with_env("sm", settings(Some("eu-west-1"), None), env_of(&[]));
        let keys = Keys {
            access_key_id: "AKIDTEST".into(),
            secret_access_key: SecretString::from("test-secret-key"),
            session_token: Some(SecretString::from("session-token-1")),
            from: "test".into(),
        };
        let endpoint = vault.endpoint.as_ref().unwrap();
        let headers = vault
            .sign(
                endpoint,
                &keys,
                "secretsmanager.GetSecretValue",
                "application/x-amz-json-1.1",
                b"{}",
            )
            .unwrap();
        let authorization = headers["authorization"].to_str().unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/"),
            "{authorization}"
        );
        assert!(
            authorization.contains("/eu-west-1/secretsmanager/aws4_request"),
            "{authorization}"
        );
        assert!(
            authorization.contains(
                "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
            ),
            "{authorization}"
        );
        assert!(!authorization.contains("test-secret-key"));
        assert_eq!(headers["x-amz-security-token"], "session-token-1");
        assert!(headers.values().all(HeaderValue::is_sensitive));
    }
}
