//! The token exchanger: MCPist as an OAuth 2.0 client of the services the
//! owner connects (RFC 6749), so that accounts whose access tokens expire
//! within the hour keep working without the owner pasting tokens.
//!
//! - [`OAuthApp`]: an app the owner registered at a provider, from
//!   `[oauth.SERVICE]` in `mcpist.toml` (endpoints by discovery, RFC 8414,
//!   or given, or from a [`presets`] entry for the services MCPist ships
//!   modules for);
//! - [`Exchanger`]: the requests to the provider: code exchange with PKCE,
//!   refresh, revocation (RFC 7009), device authorization (RFC 8628);
//! - [`TokenSet`]: what an OAuth account keeps in its vault;
//! - [`connect`]: the owner's side of the authorization code flow (a
//!   loopback listener, RFC 8252) and of the device flow.
//!
//! When tokens are renewed (before they expire, once on a 401, one refresh
//! at a time per account) is the broker's business; the exchanger only
//! speaks to providers. Neither a token nor the client secret ever appears
//! in an error, a log line, or a command line.

pub mod connect;
pub mod presets;
mod provider;
mod token_set;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

pub use provider::DeviceAuthorization;
pub use token_set::{TokenSet, TokenState, unix_now};

/// How long before expiry an access token is renewed, by default.
pub const DEFAULT_REFRESH_SKEW: Duration = Duration::from_secs(60);

/// The limit on each request to a provider.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// How the app proves itself at the token endpoint (RFC 6749 §2.3,
/// RFC 8414 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (the RFC's default).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A public client: the client id only; PKCE protects the code.
    None,
}

/// Where the app's endpoints come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointSource {
    /// The issuer's discovery document (RFC 8414, then OpenID Connect).
    Issuer(Url),
    /// Given in the configuration, or by a preset.
    Given(Arc<Endpoints>),
}

/// A provider's endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoints {
    /// The issuer identifier, when known: an `iss` in the authorization
    /// response must match it (RFC 9207).
    pub issuer: Option<String>,
    /// Where the owner signs in.
    pub authorization: Option<Url>,
    /// Where codes and refresh tokens become access tokens.
    pub token: Url,
    /// RFC 7009.
    pub revocation: Option<Url>,
    /// RFC 8628.
    pub device_authorization: Option<Url>,
}

/// An OAuth app registered at a provider, for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthApp {
    /// The service its accounts are of (e.g. `google`).
    pub service: String,
    /// The app's client id (public).
    pub client_id: String,
    /// Where its endpoints come from.
    pub endpoints: EndpointSource,
    /// What to ask for.
    pub scopes: Vec<String>,
    /// Extra authorization request parameters (e.g. `access_type=offline`).
    pub extra_params: Vec<(String, String)>,
    /// How it authenticates at the token endpoint.
    pub client_auth: ClientAuth,
    /// The resource indicator (RFC 8707), for providers that issue tokens
    /// per API.
    pub resource: Option<String>,
    /// The loopback port of the redirect URI; 0 picks a free one (RFC 8252
    /// §7.3: providers accept any port for loopback redirects).
    pub redirect_port: u16,
    /// How long before expiry an access token is renewed.
    pub refresh_skew: Duration,
}

impl OAuthApp {
    /// Whether the app has a client secret to present.
    pub fn needs_secret(&self) -> bool {
        self.client_auth != ClientAuth::None
    }
}

/// Why a provider could not be reached or refused.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the variants and fields are named by their messages
pub enum ExchangeError {
    #[error(
        "no OAuth app is configured for `{service}`: add `[oauth.{service}]` with its `client_id` to mcpist.toml, then store its client secret with `mcpist oauth secret {service}`"
    )]
    NoApp { service: String },
    #[error("the OAuth endpoints of `{service}` cannot be used: {message}")]
    Endpoints { service: String, message: String },
    /// The provider answered with an OAuth error (RFC 6749 §5.2).
    #[error("{provider} refused to {action} for `{service}`: {code}{}", describe(.description))]
    Refused {
        service: String,
        provider: String,
        action: &'static str,
        code: String,
        description: Option<String>,
    },
    #[error("cannot reach {provider} to {action} for `{service}`: {message}")]
    Transport {
        service: String,
        provider: String,
        action: &'static str,
        message: String,
    },
}

fn describe(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

impl ExchangeError {
    /// The provider no longer accepts the grant (RFC 6749 §5.2): the
    /// refresh token is spent, expired or revoked.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, ExchangeError::Refused { code, .. } if code == "invalid_grant")
    }

    /// The OAuth error code, if the provider gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ExchangeError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The requests to providers, with each app's endpoints discovered once.
pub struct Exchanger {
    http: reqwest::Client,
    apps: std::collections::BTreeMap<String, OAuthApp>,
    discovered: tokio::sync::Mutex<HashMap<String, Arc<Endpoints>>>,
}

impl Exchanger {
    /// An exchanger for `apps` (service → app).
    pub fn new(apps: std::collections::BTreeMap<String, OAuthApp>) -> Exchanger {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            // A token endpoint that redirects would carry the client
            // secret and the codes elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("mcpist/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with these settings builds");
        Exchanger {
            http,
            apps,
            discovered: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The app of `service`.
    pub fn app(&self, service: &str) -> Result<&OAuthApp, ExchangeError> {
        self.apps.get(service).ok_or_else(|| ExchangeError::NoApp {
            service: service.to_owned(),
        })
    }

    /// The app's endpoints, fetched from its issuer the first time.
    pub async fn endpoints(&self, app: &OAuthApp) -> Result<Arc<Endpoints>, ExchangeError> {
        let issuer = match &app.endpoints {
            EndpointSource::Given(endpoints) => return Ok(endpoints.clone()),
            EndpointSource::Issuer(issuer) => issuer,
        };
        let mut discovered = self.discovered.lock().await;
        if let Some(endpoints) = discovered.get(&app.service) {
            return Ok(endpoints.clone());
        }
        let endpoints = Arc::new(provider::discover(&self.http, &app.service, issuer).await?);
        discovered.insert(app.service.clone(), endpoints.clone());
        Ok(endpoints)
    }
}
