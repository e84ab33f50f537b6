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
//! Each call gets a [`CallEgress`], which the runtime sees only as the
//! call's [`GuestServices`]: the sandbox owns the interface, this layer the
//! policy behind it. A request goes through named steps, each a short
//! function: check the request, apply the owner's rules, prepare headers and
//! credential, check the address, send and record, follow a redirect (back
//! to the rules). Upstream overrides live in [`upstream`].

pub(crate) mod address;
mod credential;
mod policy;
mod redact;
mod upstream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::broker::{Account, Broker};
use crate::manifest::Injection;
use crate::runtime::{GuestServices, HttpError, InboundResponse, OutboundRequest};
use address::{CheckedResolver, ForbiddenAddress, refusal};
use credential::{basic_credentials, inject_credential};
use policy::Binding;
pub use policy::ModulePolicy;
use redact::Redactor;
use upstream::Upstreams;

/// Limits on a module's outbound HTTP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpSettings {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Per request, including reading the body.
    pub timeout: Duration,
    /// Largest request body a module may send.
    pub max_request_bytes: usize,
    /// Largest response body handed back.
    pub max_response_bytes: usize,
    /// Requests one call may make, redirects included.
    pub max_requests_per_call: usize,
    /// Redirects followed for one request.
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

/// Why the shared HTTP clients could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EgressSetupError {
    /// An `[upstreams]` entry is not usable.
    #[error("[upstreams] {key:?}: {reason}")]
    Upstream {
        /// The entry's key, as written.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// reqwest refused the client configuration.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

/// Why a module's request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// Refused by policy; the message says how the owner could allow it.
    #[error("{0}")]
    Denied(String),
    /// Allowed, but failed (DNS, connection, timeout, size limit, vault).
    #[error("{0}")]
    Failed(String),
}

impl From<EgressError> for HttpError {
    fn from(error: EgressError) -> HttpError {
        match error {
            EgressError::Denied(m) => HttpError::Denied(m),
            EgressError::Failed(m) => HttpError::Failed(m),
        }
    }
}

/// One request that left the host, for logs and the audit trail: never
/// headers, bodies, paths or queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecord {
    /// The method sent.
    pub method: String,
    /// The logical origin (as the module addressed it).
    pub origin: String,
    /// The status, or `None` when no answer came.
    pub status: Option<u16>,
}

/// The requests one call sent. Shared, because the [`CallEgress`] that
/// fills it is consumed by the sandbox while the caller still wants to know
/// what was sent (for the audit log), even when the call is cut short.
#[derive(Debug, Clone, Default)]
pub struct OutboundLog(Arc<std::sync::Mutex<Vec<OutboundRecord>>>);

impl OutboundLog {
    /// Record a request as it leaves, before any answer: a call cancelled
    /// while it waits still shows that it was sent. Returns its index.
    fn push(&self, record: OutboundRecord) -> usize {
        let mut records = self.0.lock().unwrap_or_else(|e| e.into_inner());
        records.push(record);
        records.len() - 1
    }

    /// The status of the request at `index`, once it came.
    fn answered(&self, index: usize, status: u16) {
        if let Some(record) = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(index)
        {
            record.status = Some(status);
        }
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

/// Headers that choose how an answer is encoded or cut: refused from a
/// module for hosts with a credential binding, since a compressed or
/// partial echo of the credential would pass redaction (`TE` is a
/// transport header, refused for every host).
const ENCODING_HEADERS: &[&str] = &["accept-encoding", "range", "if-range"];

/// Headers that carry credentials: refused from a module for hosts with a
/// credential binding, and dropped when a redirect changes origin.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// The host's HTTP clients and settings, shared by every call.
pub struct Egress {
    settings: HttpSettings,
    public: reqwest::Client,
    private: reqwest::Client,
    upstreams: Upstreams,
}

impl Egress {
    /// `upstreams` maps a host (`api.github.com`, meaning https) or an
    /// origin (`http://api.test:8080`) to a base URL.
    pub fn new(
        settings: HttpSettings,
        upstreams: &BTreeMap<String, String>,
    ) -> Result<Egress, EgressSetupError> {
        Ok(Egress {
            public: client(&settings, false)?,
            private: client(&settings, true)?,
            settings,
            upstreams: Upstreams::parse(upstreams)?,
        })
    }

    /// The limits every call is held to.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }
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
///
/// A module may have several requests in flight (each `wasi:http` request is
/// a task of its own); they are sent one after another, so that the per-call
/// budget, the secrets fetched and a renewed token are the same for all of
/// them. The redactor is shared without waiting: a log line is never held up
/// by a slow request.
pub struct CallEgress {
    session: tokio::sync::Mutex<EgressSession>,
    redactor: Arc<Redactor>,
    outbound: OutboundLog,
    max_request_bytes: usize,
}

impl std::fmt::Debug for CallEgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallEgress").finish_non_exhaustive()
    }
}

#[async_trait]
impl GuestServices for CallEgress {
    async fn send_http(&self, request: OutboundRequest) -> Result<InboundResponse, HttpError> {
        self.send(request).await.map_err(HttpError::from)
    }

    fn redact(&self, text: &str) -> String {
        self.redactor.text(text)
    }

    fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }
}

impl CallEgress {
    /// The egress of one call of the module `policy` describes, acting for
    /// `accounts` (service → account), with secrets from `broker`.
    pub fn new(
        egress: Arc<Egress>,
        policy: Arc<ModulePolicy>,
        broker: Option<Arc<Broker>>,
        accounts: BTreeMap<String, Account>,
    ) -> CallEgress {
        let redactor = Arc::new(Redactor::default());
        let outbound = OutboundLog::default();
        let max_request_bytes = egress.settings.max_request_bytes;
        let session = EgressSession {
            egress,
            policy,
            broker,
            accounts,
            secrets: BTreeMap::new(),
            redactor: redactor.clone(),
            requests: 0,
            outbound: outbound.clone(),
        };
        CallEgress {
            session: tokio::sync::Mutex::new(session),
            redactor,
            outbound,
            max_request_bytes,
        }
    }

    /// The log of the requests this call sends.
    pub fn outbound(&self) -> OutboundLog {
        self.outbound.clone()
    }

    /// Send the module's request, or refuse it; no secret is ever in the
    /// error.
    pub async fn send(&self, request: OutboundRequest) -> Result<InboundResponse, EgressError> {
        self.session.lock().await.send(request).await
    }
}

/// The state of a call's egress that its requests share, one at a time.
struct EgressSession {
    egress: Arc<Egress>,
    policy: Arc<ModulePolicy>,
    broker: Option<Arc<Broker>>,
    /// Service → the account this call acts for.
    accounts: BTreeMap<String, Account>,
    /// Service → its secret, fetched on first use in this call and zeroized
    /// when the call ends.
    secrets: BTreeMap<String, SecretString>,
    redactor: Arc<Redactor>,
    requests: usize,
    outbound: OutboundLog,
}

/// A request on its way: where it goes now, as the module addressed it.
/// A redirect makes the next hop.
struct Hop {
    method: Method,
    /// The logical URL (before any upstream override).
    url: Url,
    body: Option<Vec<u8>>,
    /// False once a redirect left the first origin: credential headers the
    /// module set do not follow it there.
    keep_credential_headers: bool,
    /// True for the module's own request, false for a redirect's hop.
    from_module: bool,
}

impl EgressSession {
    /// Send the module's request, or refuse it; no secret is ever in the
    /// error.
    async fn send(&mut self, request: OutboundRequest) -> Result<InboundResponse, EgressError> {
        let result = self.send_checked(request).await;
        result.map_err(|e| match e {
            EgressError::Denied(m) => EgressError::Denied(self.redactor.text(&m)),
            EgressError::Failed(m) => EgressError::Failed(self.redactor.text(&m)),
        })
    }

    async fn send_checked(
        &mut self,
        request: OutboundRequest,
    ) -> Result<InboundResponse, EgressError> {
        let (mut hop, module_headers) = self.check_request(request)?;
        // Whether any hop so far carried the owner's credential: the answer
        // to such a request may echo it, so it must come back in a form the
        // redactor can see whole.
        let mut credentialed = false;
        // An OAuth access token the service refused is renewed once per
        // call, and the request sent again with the new one.
        let mut renewed = false;
        let mut redirects = 0;
        while redirects <= self.egress.settings.max_redirects {
            let grant = self
                .policy
                .check(hop.method.as_str(), &hop.url)
                .map_err(EgressError::Denied)?;
            grant
                .check_headers(&self.policy.module, &module_headers)
                .map_err(EgressError::Denied)?;
            let (allow_private, declared) = (grant.rule.allow_private, grant.declared.clone());
            self.refuse_secret_in_unbound_url(&hop.url)?;
            let (physical, headers, injected) = self.prepare(&hop, &module_headers).await?;
            credentialed |= injected;
            if let Some(reason) = literal_address_refusal(&physical, allow_private) {
                return Err(self.private_refusal(&hop.url, &declared, &reason));
            }
            let response = self
                .send_and_record(&hop, physical.clone(), headers, allow_private, &declared)
                .await?;
            if injected
                && !renewed
                && response.status() == StatusCode::UNAUTHORIZED
                && self.renew_secret(&hop.url).await?
            {
                renewed = true;
                continue;
            }
            match self.redirect(&hop, &physical, &response)? {
                Some(next) => {
                    hop = next;
                    redirects += 1;
                }
                None => {
                    let origin = hop.url.origin().ascii_serialization();
                    if credentialed {
                        refuse_encoded_answer(&response, &origin)?;
                    }
                    return self.read(response, &origin).await;
                }
            }
        }
        Err(EgressError::Failed(format!(
            "more than {} redirects; gave up",
            self.egress.settings.max_redirects
        )))
    }

    /// Step 1, check the request: within the per-call budget, an absolute
    /// URL without user information, an allowed method, a body within the
    /// limit, headers a module may set.
    fn check_request(
        &mut self,
        request: OutboundRequest,
    ) -> Result<(Hop, Vec<(HeaderName, HeaderValue)>), EgressError> {
        let settings = &self.egress.settings;
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
        let method = Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .ok()
            .filter(|m| *m != Method::CONNECT && *m != Method::TRACE)
            .ok_or_else(|| {
                EgressError::Denied(format!("method {:?} is not allowed", request.method))
            })?;
        if request
            .body
            .as_ref()
            .is_some_and(|b| b.len() > settings.max_request_bytes)
        {
            return Err(EgressError::Denied(format!(
                "the request body is larger than the limit of {} bytes",
                settings.max_request_bytes
            )));
        }
        let headers = module_headers(&request.headers)?;
        let hop = Hop {
            method,
            url,
            body: request.body,
            keep_credential_headers: true,
            from_module: true,
        };
        Ok((hop, headers))
    }

    /// Step 2b, before a hop to a host the credential is not bound to: the
    /// URL must not carry the secret in any form the redactor knows (a
    /// bound host's redirect that keeps a credential query string).
    fn refuse_secret_in_unbound_url(&self, url: &Url) -> Result<(), EgressError> {
        if self.policy.binding_for(url).is_none() && self.redactor.contains(url.as_str().as_bytes())
        {
            return Err(EgressError::Denied(format!(
                "refused to follow a redirect to {}: the URL carries the credential of a host it is not bound to",
                url.origin().ascii_serialization()
            )));
        }
        Ok(())
    }

    /// Step 3, prepare headers and credential: the module's headers (never
    /// a credential header, nor a choice of encoding or byte range, for a
    /// bound host), then the credential the binding names, on the URL the
    /// request really goes to. Returns whether a credential was attached.
    async fn prepare(
        &mut self,
        hop: &Hop,
        module_headers: &[(HeaderName, HeaderValue)],
    ) -> Result<(Url, HeaderMap, bool), EgressError> {
        let policy = self.policy.clone();
        let binding = policy.binding_for(&hop.url);
        let mut headers = HeaderMap::new();
        for (name, value) in module_headers {
            if binding.is_some() && ENCODING_HEADERS.contains(&name.as_str()) {
                return Err(EgressError::Denied(format!(
                    "module `{}` may not set the {name} header for {}: the host carries its credential, and an answer in another encoding or in byte ranges could hide it from redaction",
                    self.policy.module,
                    hop.url.origin().ascii_serialization()
                )));
            }
            if !is_credential_header(name, binding) {
                headers.append(name.clone(), value.clone());
            } else if binding.is_some() {
                return Err(self.refuse_module_credential(&format!("the {name} header"), &hop.url));
            } else if hop.keep_credential_headers {
                headers.append(name.clone(), value.clone());
            }
        }
        let mut physical = self.egress.upstreams.to_physical(&hop.url);
        if let Some(binding) = binding {
            if let Injection::Query { param } = &binding.inject
                && hop.url.query_pairs().any(|(k, _)| k == param.as_str())
            {
                if hop.from_module {
                    return Err(self.refuse_module_credential(
                        &format!("the query parameter {param:?}"),
                        &hop.url,
                    ));
                }
                // A redirect within the bound hosts that kept the query
                // string: the host attaches the credential afresh.
                remove_query_param(&mut physical, param);
            }
            let secret = self.secret(&binding.service, &binding.inject).await?;
            inject_credential(&binding.inject, secret, &mut headers, &mut physical)?;
            // Ask for the body as it is, so any echo is redacted whole.
            headers.insert(
                reqwest::header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
        }
        Ok((physical, headers, binding.is_some()))
    }

    /// Step 5, send and record: one request on the shared client for its
    /// address class, recorded in the call's outbound log as it leaves, with
    /// its status once answered.
    async fn send_and_record(
        &self,
        hop: &Hop,
        physical: Url,
        headers: HeaderMap,
        allow_private: bool,
        declared: &str,
    ) -> Result<reqwest::Response, EgressError> {
        let client = if allow_private {
            &self.egress.private
        } else {
            &self.egress.public
        };
        let mut builder = client
            .request(hop.method.clone(), physical)
            .headers(headers)
            .timeout(self.egress.settings.timeout);
        if let Some(body) = &hop.body {
            builder = builder.body(body.clone());
        }
        let origin = hop.url.origin().ascii_serialization();
        let index = self.outbound.push(OutboundRecord {
            method: hop.method.to_string(),
            origin: origin.clone(),
            status: None,
        });
        let sent = builder.send().await;
        let status = sent.as_ref().ok().map(|r| r.status().as_u16());
        if let Some(status) = status {
            self.outbound.answered(index, status);
        }
        tracing::debug!(module = %self.policy.module, method = %hop.method, %origin, ?status, "outbound request");
        sent.map_err(|error| self.transport_error(&hop.url, declared, error))
    }

    /// Step 6, follow a redirect: the next hop if `response` is one, with
    /// the method and body a browser would use, and credential headers left
    /// behind when it changes origin. The next hop goes through the rules
    /// again.
    fn redirect(
        &self,
        hop: &Hop,
        physical: &Url,
        response: &reqwest::Response,
    ) -> Result<Option<Hop>, EgressError> {
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok());
        let (true, Some(location)) = (is_redirect(status), location) else {
            return Ok(None);
        };
        let next = physical.join(location).map_err(|e| {
            EgressError::Failed(format!(
                "{} redirected to an invalid location: {e}",
                hop.url.origin().ascii_serialization()
            ))
        })?;
        let mut url = self.egress.upstreams.to_logical(&next);
        url.set_fragment(None);
        // As browsers do: 303 always, and 301/302 after a POST, continue
        // with a GET and no body.
        let to_get = status == StatusCode::SEE_OTHER
            || (hop.method == Method::POST
                && matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND));
        Ok(Some(Hop {
            method: if to_get {
                Method::GET
            } else {
                hop.method.clone()
            },
            body: if to_get { None } else { hop.body.clone() },
            from_module: false,
            keep_credential_headers: hop.keep_credential_headers
                && url.origin() == hop.url.origin(),
            url,
        }))
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
            self.keep_secret(service, inject, secret);
        }
        Ok(&self.secrets[service])
    }

    /// Register a secret's forms for redaction, then keep it for the rest
    /// of the call.
    fn keep_secret(&mut self, service: &str, inject: &Injection, secret: SecretString) {
        let raw = secret.expose_secret();
        self.redactor.add_secret(raw);
        if let Injection::Basic { username } = inject {
            self.redactor
                .add(basic_credentials(username, raw).as_bytes());
        }
        self.secrets.insert(service.to_owned(), secret);
    }

    /// After the host bound to `url` answered 401: whether the broker
    /// renewed the credential (only OAuth accounts can be). The refused
    /// token stays registered for redaction.
    async fn renew_secret(&mut self, url: &Url) -> Result<bool, EgressError> {
        let policy = self.policy.clone();
        let Some(binding) = policy.binding_for(url) else {
            return Ok(false);
        };
        let (Some(account), Some(broker), Some(rejected)) = (
            self.accounts.get(&binding.service),
            self.broker.as_ref(),
            self.secrets.get(&binding.service),
        ) else {
            return Ok(false);
        };
        let renewed = broker
            .renew_rejected(account, rejected)
            .await
            .map_err(|e| EgressError::Failed(e.to_string()))?;
        match renewed {
            Some(secret) => {
                tracing::debug!(module = %self.policy.module, service = %binding.service, "sending again with a renewed access token");
                self.keep_secret(&binding.service, &binding.inject, secret);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn refuse_module_credential(&self, what: &str, url: &Url) -> EgressError {
        EgressError::Denied(format!(
            "module `{}` may not set {what} for {}: the host attaches the credential itself",
            self.policy.module,
            url.origin().ascii_serialization()
        ))
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
                    self.redactor
                        .text(&self.egress.upstreams.to_logical_text(&value)),
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

/// Step 4, check the address, when the URL names one: the resolver checks
/// names as it resolves them, but an IP literal is never resolved.
fn literal_address_refusal(physical: &Url, allow_private: bool) -> Option<String> {
    let (Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)), Some(host)) =
        (physical.host(), physical.host_str())
    else {
        return None;
    };
    let ip = host.trim_matches(['[', ']']).parse().ok()?;
    refusal(ip, allow_private)
}

fn remove_query_param(url: &mut Url, param: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != param)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
}

/// The answer to a request that carried the credential must be whole and
/// unencoded, as asked for: a partial (206) or compressed answer could hold
/// an echo of the secret that redaction cannot see.
fn refuse_encoded_answer(response: &reqwest::Response, origin: &str) -> Result<(), EgressError> {
    if response.status() == StatusCode::PARTIAL_CONTENT {
        return Err(EgressError::Failed(format!(
            "{origin} answered a request that carried the credential with a partial response (206), which the host does not pass on"
        )));
    }
    let encoded = response
        .headers()
        .get_all(reqwest::header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(str::trim)
        .find(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"));
    if let Some(coding) = encoded {
        return Err(EgressError::Failed(format!(
            "{origin} answered a request that carried the credential with Content-Encoding {coding:?} although the host asked for identity; the host does not pass on encoded answers to credentialed requests"
        )));
    }
    Ok(())
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    )
}

/// Whether `name` carries a credential: always for `Authorization`,
/// `Proxy-Authorization` and `Cookie`, and the binding's own header.
fn is_credential_header(name: &HeaderName, binding: Option<&Binding>) -> bool {
    CREDENTIAL_HEADERS.contains(&name.as_str())
        || binding.is_some_and(|b| {
            matches!(&b.inject, Injection::Header { name: n, .. } if n.eq_ignore_ascii_case(name.as_str()))
        })
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
