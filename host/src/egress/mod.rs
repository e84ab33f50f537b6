//! Modules' outbound HTTP, performed by the host.
//!
//! A module asks; the host decides. A request leaves only if its URL matches
//! a host approved for the module (with the owner's method and path rules),
//! and only to a public address unless that host is approved with
//! `allow_private`; cloud metadata endpoints are never reachable. The
//! addresses are checked by the resolver that hands them to the connector.
//! Redirects are followed by the host, each hop checked again. The owner's
//! credential is attached by the host, only to hosts bound to it, and every
//! form of it is redacted from what comes back. A module may not set
//! credential headers itself.
//!
//! Upstream overrides (`[upstreams]` in `mcpist.toml`) send an approved
//! origin's requests to another base URL (GitHub Enterprise, or a local test
//! server); policy and credentials are decided on the original URL, and the
//! base URL is mapped back in `Location` and `Link` headers.

mod address;
pub mod policy;
pub mod redact;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::broker::{Account, Broker};
use crate::registry::manifest::Injection;
pub use address::{AddressClass, classify};
use address::{CheckedResolver, ForbiddenAddress, refusal};
pub use policy::ModulePolicy;
use redact::Redactor;

/// Limits on a module's outbound HTTP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// Per request, including reading the body.
    pub timeout: Duration,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    pub max_requests_per_call: usize,
    pub max_redirects: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
            max_request_bytes: 1 << 20,
            max_response_bytes: 8 << 20,
            max_requests_per_call: 32,
            max_redirects: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EgressSetupError {
    #[error("[upstreams] {key:?}: {reason}")]
    Upstream { key: String, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

/// A module's request, as it asked.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// What the module gets back: final response after redirects, with secrets
/// redacted.
#[derive(Debug, Clone)]
pub struct InboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// Refused by policy; the message says how the owner could allow it.
    #[error("{0}")]
    Denied(String),
    /// Allowed, but failed (DNS, connection, timeout, size limit, vault).
    #[error("{0}")]
    Failed(String),
}

/// One request that left the host, for logs and the audit trail: never
/// headers, bodies, paths or queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecord {
    pub method: String,
    pub origin: String,
    pub status: Option<u16>,
}

/// The requests one call sent. Shared, because the [`CallEgress`] that
/// fills it is consumed by the sandbox while the caller still wants to know
/// what was sent (for the audit log), even when the call is cut short.
#[derive(Debug, Clone, Default)]
pub struct OutboundLog(Arc<std::sync::Mutex<Vec<OutboundRecord>>>);

impl OutboundLog {
    fn push(&self, record: OutboundRecord) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    /// The requests recorded so far.
    pub fn records(&self) -> Vec<OutboundRecord> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Headers a module may never set: they belong to the transport, and
/// letting a module choose `Host` would let it reach other virtual hosts
/// behind an approved address.
const TRANSPORT_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

/// Headers that carry credentials: refused from a module for hosts with a
/// credential binding, and dropped when a redirect changes origin.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

struct Upstream {
    /// The origin modules address, e.g. `https://api.github.com`.
    logical: Url,
    /// Where its requests go instead, e.g. `http://127.0.0.1:8080/prefix`.
    base: Url,
}

/// The host's HTTP clients and settings, shared by every call.
pub struct Egress {
    settings: HttpSettings,
    public: reqwest::Client,
    private: reqwest::Client,
    upstreams: Vec<Upstream>,
}

impl Egress {
    /// `upstreams` maps a host (`api.github.com`, meaning https) or an
    /// origin (`http://api.test:8080`) to a base URL.
    pub fn new(
        settings: HttpSettings,
        upstreams: &BTreeMap<String, String>,
    ) -> Result<Egress, EgressSetupError> {
        let upstreams = upstreams
            .iter()
            .map(|(key, base)| parse_upstream(key, base))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Egress {
            public: client(&settings, false)?,
            private: client(&settings, true)?,
            settings,
            upstreams,
        })
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    fn to_physical(&self, logical: &Url) -> Url {
        let Some(up) = self
            .upstreams
            .iter()
            .find(|u| u.logical.origin() == logical.origin())
        else {
            return logical.clone();
        };
        let mut url = up.base.clone();
        let base_path = up.base.path().trim_end_matches('/');
        url.set_path(&format!("{base_path}{}", logical.path()));
        url.set_query(logical.query());
        url
    }

    fn to_logical(&self, physical: &Url) -> Url {
        for up in &self.upstreams {
            let base_path = up.base.path().trim_end_matches('/');
            if up.base.origin() == physical.origin()
                && let Some(rest) = physical.path().strip_prefix(base_path)
                && (rest.is_empty() || rest.starts_with('/'))
            {
                let mut url = up.logical.clone();
                url.set_path(if rest.is_empty() { "/" } else { rest });
                url.set_query(physical.query());
                return url;
            }
        }
        physical.clone()
    }

    /// Map upstream base URLs in a header value back to the origins the
    /// module knows (pagination `Link`s, `Location`).
    fn to_logical_text(&self, value: &str) -> String {
        let mut value = value.to_owned();
        for up in &self.upstreams {
            let base = up.base.as_str().trim_end_matches('/');
            let logical = up.logical.as_str().trim_end_matches('/');
            if value.contains(base) {
                value = value.replace(base, logical);
            }
        }
        value
    }
}

fn parse_upstream(key: &str, base: &str) -> Result<Upstream, EgressSetupError> {
    let bad = |reason: String| EgressSetupError::Upstream {
        key: key.to_owned(),
        reason,
    };
    let origin = if key.contains("://") {
        key.to_owned()
    } else {
        format!("https://{key}")
    };
    let logical = Url::parse(&origin)
        .ok()
        .filter(|u| u.path() == "/" && u.query().is_none() && u.username().is_empty())
        .ok_or_else(|| {
            bad(
                "the key must be a host (api.github.com) or an origin (https://api.github.com)"
                    .to_owned(),
            )
        })?;
    let base = Url::parse(base).map_err(|e| bad(format!("{base:?} is not a URL: {e}")))?;
    if !matches!(base.scheme(), "http" | "https")
        || base.query().is_some()
        || !base.username().is_empty()
    {
        return Err(bad(format!(
            "{base:?} must be an http(s) base URL without query or user"
        )));
    }
    Ok(Upstream { logical, base })
}

fn client(
    settings: &HttpSettings,
    allow_private: bool,
) -> Result<reqwest::Client, EgressSetupError> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(CheckedResolver { allow_private }))
        // The host follows redirects itself, checking every hop.
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment would bypass the address checks.
        .no_proxy()
        .connect_timeout(settings.connect_timeout)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| EgressSetupError::Client(e.to_string()))
}

/// One call's outbound HTTP: the module's policy, the accounts the call acts
/// for, and the secrets fetched so far (only when a request needs them).
pub struct CallEgress {
    egress: Arc<Egress>,
    policy: Arc<ModulePolicy>,
    broker: Option<Arc<Broker>>,
    /// Service → the account this call acts for.
    accounts: BTreeMap<String, Account>,
    /// Service → its secret, fetched on first use in this call and zeroized
    /// when the call ends.
    secrets: BTreeMap<String, SecretString>,
    redactor: Redactor,
    requests: usize,
    outbound: OutboundLog,
}

impl std::fmt::Debug for CallEgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallEgress")
            .field("module", &self.policy.module)
            .field("accounts", &self.accounts)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl CallEgress {
    pub fn new(
        egress: Arc<Egress>,
        policy: Arc<ModulePolicy>,
        broker: Option<Arc<Broker>>,
        accounts: BTreeMap<String, Account>,
    ) -> CallEgress {
        CallEgress {
            egress,
            policy,
            broker,
            accounts,
            secrets: BTreeMap::new(),
            redactor: Redactor::default(),
            requests: 0,
            outbound: OutboundLog::default(),
        }
    }

    /// The log of the requests this call sends.
    pub fn outbound(&self) -> OutboundLog {
        self.outbound.clone()
    }

    /// Hide this call's secrets in text bound for a log or the module.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.text(text)
    }

    pub async fn send(&mut self, request: OutboundRequest) -> Result<InboundResponse, EgressError> {
        let result = self.send_inner(request).await;
        result.map_err(|e| match e {
            EgressError::Denied(m) => EgressError::Denied(self.redactor.text(&m)),
            EgressError::Failed(m) => EgressError::Failed(self.redactor.text(&m)),
        })
    }

    async fn send_inner(
        &mut self,
        request: OutboundRequest,
    ) -> Result<InboundResponse, EgressError> {
        let settings = *self.egress.settings();
        self.requests += 1;
        if self.requests > settings.max_requests_per_call {
            return Err(EgressError::Denied(format!(
                "module `{}` made more than {} HTTP requests in one call",
                self.policy.module, settings.max_requests_per_call
            )));
        }
        let mut url = Url::parse(&request.url).map_err(|e| {
            EgressError::Denied(format!("{:?} is not an absolute URL: {e}", request.url))
        })?;
        url.set_fragment(None);
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressError::Denied(
                "URLs with user information (user:password@) are not allowed; the host attaches credentials".to_owned(),
            ));
        }
        let mut method = Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .ok()
            .filter(|m| *m != Method::CONNECT && *m != Method::TRACE)
            .ok_or_else(|| {
                EgressError::Denied(format!("method {:?} is not allowed", request.method))
            })?;
        let mut body = request.body;
        if body
            .as_ref()
            .is_some_and(|b| b.len() > settings.max_request_bytes)
        {
            return Err(EgressError::Denied(format!(
                "the request body is larger than the limit of {} bytes",
                settings.max_request_bytes
            )));
        }
        let module_headers = module_headers(&request.headers)?;
        let mut keep_credential_headers = true;

        for hop in 0..=settings.max_redirects {
            let grant = self
                .policy
                .check(method.as_str(), &url)
                .map_err(EgressError::Denied)?;
            let allow_private = grant.rule.allow_private;
            let declared = grant.declared.clone();
            let binding = self.policy.binding_for(&url);
            let mut headers = HeaderMap::new();
            for (name, value) in &module_headers {
                let credential_header = CREDENTIAL_HEADERS.contains(&name.as_str())
                    || binding.is_some_and(|b| matches!(&b.inject, Injection::Header { name: n, .. } if n.eq_ignore_ascii_case(name.as_str())));
                if credential_header && binding.is_some() {
                    return Err(EgressError::Denied(format!(
                        "module `{}` may not set the {name} header for {}: the host attaches the credential itself",
                        self.policy.module,
                        url.origin().ascii_serialization()
                    )));
                }
                if credential_header && !keep_credential_headers {
                    continue;
                }
                headers.append(name.clone(), value.clone());
            }
            let mut physical = self.egress.to_physical(&url);
            if let Some(binding) = binding {
                let service = binding.service.clone();
                let inject = binding.inject.clone();
                if let Injection::Query { param } = &inject
                    && url.query_pairs().any(|(k, _)| k == param.as_str())
                {
                    return Err(EgressError::Denied(format!(
                        "module `{}` may not set the query parameter {param:?} for {}: the host attaches the credential itself",
                        self.policy.module,
                        url.origin().ascii_serialization()
                    )));
                }
                let secret = self.secret(&service, &inject).await?;
                inject_credential(&inject, secret, &mut headers, &mut physical)?;
            }
            if let Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) = physical.host()
                && let Some(ip) = physical
                    .host_str()
                    .and_then(|h| h.trim_matches(['[', ']']).parse().ok())
                && let Some(reason) = refusal(ip, allow_private)
            {
                return Err(self.private_refusal(&url, &declared, &reason));
            }
            let client = if allow_private {
                &self.egress.private
            } else {
                &self.egress.public
            };
            let mut builder = client
                .request(method.clone(), physical.clone())
                .headers(headers)
                .timeout(settings.timeout);
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let origin = url.origin().ascii_serialization();
            let sent = builder.send().await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    self.outbound.push(OutboundRecord {
                        method: method.to_string(),
                        origin: origin.clone(),
                        status: None,
                    });
                    return Err(self.transport_error(&url, &declared, error));
                }
            };
            let status = response.status();
            self.outbound.push(OutboundRecord {
                method: method.to_string(),
                origin: origin.clone(),
                status: Some(status.as_u16()),
            });
            tracing::debug!(module = %self.policy.module, %method, %origin, status = status.as_u16(), hop, "outbound request");
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match (status, location) {
                (
                    StatusCode::MOVED_PERMANENTLY
                    | StatusCode::FOUND
                    | StatusCode::SEE_OTHER
                    | StatusCode::TEMPORARY_REDIRECT
                    | StatusCode::PERMANENT_REDIRECT,
                    Some(location),
                ) => {
                    let next = physical.join(&location).map_err(|e| {
                        EgressError::Failed(format!(
                            "{origin} redirected to an invalid location: {e}"
                        ))
                    })?;
                    let mut next = self.egress.to_logical(&next);
                    next.set_fragment(None);
                    if next.origin() != url.origin() {
                        keep_credential_headers = false;
                    }
                    // As browsers do: 303 always, and 301/302 after a POST,
                    // continue with a GET and no body.
                    if status == StatusCode::SEE_OTHER
                        || (method == Method::POST
                            && matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND))
                    {
                        method = Method::GET;
                        body = None;
                    }
                    url = next;
                }
                _ => return self.read(response, &origin).await,
            }
        }
        Err(EgressError::Failed(format!(
            "more than {} redirects; gave up",
            settings.max_redirects
        )))
    }

    /// The secret for `service`, fetched from the broker on first use; its
    /// forms are registered for redaction before it is used.
    async fn secret(
        &mut self,
        service: &str,
        inject: &Injection,
    ) -> Result<&SecretString, EgressError> {
        if !self.secrets.contains_key(service) {
            let account = self.accounts.get(service).ok_or_else(|| {
                EgressError::Denied(format!("this call has no `{service}` account"))
            })?;
            let broker = self.broker.as_ref().ok_or_else(|| {
                EgressError::Failed("no credential broker is configured".to_owned())
            })?;
            let secret = broker
                .secret(account)
                .await
                .map_err(|e| EgressError::Failed(e.to_string()))?;
            let raw = secret.expose_secret();
            self.redactor.add(raw.as_bytes());
            let encoded: String = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
            self.redactor.add(encoded.as_bytes());
            if let Injection::Basic { username } = inject {
                self.redactor
                    .add(basic_credentials(username, raw).as_bytes());
            }
            self.secrets.insert(service.to_owned(), secret);
        }
        Ok(&self.secrets[service])
    }

    fn private_refusal(&self, url: &Url, declared: &str, reason: &str) -> EgressError {
        let module = &self.policy.module;
        let fix = if reason.contains("metadata") {
            String::new()
        } else {
            format!(
                "; if {declared} is meant to reach your own network, allow it with `mcpist plugins host {module} {declared} --allow-private`"
            )
        };
        EgressError::Denied(format!(
            "refused to connect module `{module}` to {}: {reason}{fix}",
            url.origin().ascii_serialization()
        ))
    }

    fn transport_error(&self, url: &Url, declared: &str, error: reqwest::Error) -> EgressError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        let mut root = String::new();
        while let Some(e) = source {
            if let Some(forbidden) = e.downcast_ref::<ForbiddenAddress>() {
                return self.private_refusal(url, declared, &forbidden.to_string());
            }
            root = e.to_string();
            source = e.source();
        }
        let origin = url.origin().ascii_serialization();
        let what = if error.is_timeout() {
            format!("timed out (limit {:?})", self.egress.settings.timeout)
        } else if error.is_connect() {
            format!("cannot connect: {root}")
        } else {
            root
        };
        EgressError::Failed(format!("request to {origin} failed: {what}"))
    }

    async fn read(
        &self,
        mut response: reqwest::Response,
        origin: &str,
    ) -> Result<InboundResponse, EgressError> {
        let limit = self.egress.settings.max_response_bytes;
        let too_large = || {
            EgressError::Failed(format!(
                "the response from {origin} is larger than the limit of {limit} bytes"
            ))
        };
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes());
                (
                    name.as_str().to_owned(),
                    self.redactor.text(&self.egress.to_logical_text(&value)),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            EgressError::Failed(format!(
                "reading the response from {origin} failed: {}",
                e.without_url()
            ))
        })? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(InboundResponse {
            status,
            headers,
            body: self.redactor.bytes(body),
        })
    }
}

/// Check and convert the module's headers.
fn module_headers(
    headers: &[(String, String)],
) -> Result<Vec<(HeaderName, HeaderValue)>, EgressError> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| EgressError::Denied(format!("{name:?} is not a valid header name")))?;
            if TRANSPORT_HEADERS.contains(&name.as_str()) {
                return Err(EgressError::Denied(format!(
                    "a module may not set the {name} header; the host sets it"
                )));
            }
            let value = HeaderValue::from_str(value).map_err(|_| {
                EgressError::Denied(format!("the value of header {name} is not valid"))
            })?;
            Ok((name, value))
        })
        .collect()
}

/// `base64(username:secret)`, with no copy of the secret left behind.
fn basic_credentials(username: &str, secret: &str) -> zeroize::Zeroizing<String> {
    let mut pair =
        zeroize::Zeroizing::new(String::with_capacity(username.len() + 1 + secret.len()));
    pair.push_str(username);
    pair.push(':');
    pair.push_str(secret);
    zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()))
}

fn inject_credential(
    inject: &Injection,
    secret: &SecretString,
    headers: &mut HeaderMap,
    url: &mut Url,
) -> Result<(), EgressError> {
    let raw = secret.expose_secret();
    let header = |name: &str,
                  value: zeroize::Zeroizing<String>|
     -> Result<(HeaderName, HeaderValue), EgressError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| EgressError::Failed(format!("{name:?} is not a valid header name")))?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            EgressError::Failed(
                "the stored credential contains characters not allowed in an HTTP header"
                    .to_owned(),
            )
        })?;
        value.set_sensitive(true);
        Ok((name, value))
    };
    let (name, value) = match inject {
        Injection::Bearer => header(
            "authorization",
            zeroize::Zeroizing::new(format!("Bearer {raw}")),
        )?,
        Injection::Header { name, template } => header(
            name,
            zeroize::Zeroizing::new(template.replace("{secret}", raw)),
        )?,
        Injection::Basic { username } => {
            let mut value = zeroize::Zeroizing::new(String::from("Basic "));
            value.push_str(&basic_credentials(username, raw));
            header("authorization", value)?
        }
        Injection::Query { param } => {
            url.query_pairs_mut().append_pair(param, raw);
            return Ok(());
        }
    };
    headers.insert(name, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injected(inject: Injection) -> (HeaderMap, Url) {
        let mut headers = HeaderMap::new();
        let mut url = Url::parse("https://api.example.com/items?page=2").unwrap();
        inject_credential(
            &inject,
            &SecretString::from("s3cr3t-token"),
            &mut headers,
            &mut url,
        )
        .unwrap();
        (headers, url)
    }

    #[test]
    fn each_injection_form_places_the_secret_where_the_binding_says() {
        let (headers, _) = injected(Injection::Bearer);
        assert_eq!(headers["authorization"], "Bearer s3cr3t-token");
        assert!(headers["authorization"].is_sensitive());
        let (headers, _) = injected(Injection::Header {
            name: "X-Api-Key".into(),
            template: "key={secret}".into(),
        });
        assert_eq!(headers["x-api-key"], "key=s3cr3t-token");
        let (headers, _) = injected(Injection::Basic {
            username: "bot".into(),
        });
        // base64("bot:s3cr3t-token")
        assert_eq!(headers["authorization"], "Basic Ym90OnMzY3IzdC10b2tlbg==");
        let (headers, url) = injected(Injection::Query {
            param: "api_key".into(),
        });
        assert!(headers.is_empty());
        assert_eq!(url.query(), Some("page=2&api_key=s3cr3t-token"));
    }

    #[test]
    fn upstream_overrides_map_requests_and_links_both_ways() {
        let upstreams = [
            (
                "api.github.com".to_owned(),
                "http://127.0.0.1:9000/api.github.com/abc".to_owned(),
            ),
            (
                "http://svc.test:8080".to_owned(),
                "http://127.0.0.1:9001".to_owned(),
            ),
        ]
        .into_iter()
        .collect();
        let egress = Egress::new(HttpSettings::default(), &upstreams).unwrap();
        let logical = Url::parse("https://api.github.com/repos/o/r?page=2").unwrap();
        let physical = egress.to_physical(&logical);
        assert_eq!(
            physical.as_str(),
            "http://127.0.0.1:9000/api.github.com/abc/repos/o/r?page=2"
        );
        assert_eq!(egress.to_logical(&physical), logical);
        assert_eq!(
            egress
                .to_physical(&Url::parse("http://svc.test:8080/x").unwrap())
                .as_str(),
            "http://127.0.0.1:9001/x"
        );
        // Another origin is left alone.
        let other = Url::parse("https://example.com/").unwrap();
        assert_eq!(egress.to_physical(&other), other);
        let link = r#"<http://127.0.0.1:9000/api.github.com/abc/repositories/1/issues?page=3>; rel="next""#;
        assert_eq!(
            egress.to_logical_text(link),
            r#"<https://api.github.com/repositories/1/issues?page=3>; rel="next""#
        );
        assert!(
            Egress::new(
                HttpSettings::default(),
                &[("api.github.com".to_owned(), "not a url".to_owned())]
                    .into_iter()
                    .collect()
            )
            .is_err()
        );
    }
}
