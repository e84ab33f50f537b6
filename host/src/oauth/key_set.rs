//! The issuer's signing keys (its JWKS), fetched when first needed, kept for
//! `jwks_max_age`, and fetched again early when a token names a key id we
//! have not seen: that is how an issuer's key rotation reaches us.
//!
//! A failed fetch keeps the keys we had. Fetches are serialised, so a burst
//! of requests after a rotation makes one request to the issuer, and are
//! spaced by `jwks_min_refresh`, so unknown key ids cannot be used to make
//! this server hammer the issuer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{JwtSettings, TokenError};
use crate::secure_url::https_or_loopback;

/// The issuer's metadata and key set are small; anything larger is refused.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

struct PublicKey {
    kid: Option<String>,
    /// The algorithm the issuer bound the key to, if it did.
    alg: Option<String>,
    key: DecodingKey,
}

#[derive(Default)]
struct State {
    /// Found by discovery, or configured.
    jwks_uri: Option<String>,
    keys: Arc<Vec<PublicKey>>,
    fetched: Option<Instant>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

pub struct KeySet {
    http: reqwest::Client,
    issuer: String,
    max_age: Duration,
    min_refresh: Duration,
    state: Mutex<State>,
}

impl KeySet {
    pub fn new(settings: &JwtSettings) -> Result<KeySet, TokenError> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            // Keys come from where the issuer's metadata says, not from
            // wherever a redirect leads, and never through a proxy from the
            // environment.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| TokenError::KeysUnavailable(e.to_string()))?;
        Ok(KeySet {
            http,
            issuer: settings.issuer.clone(),
            max_age: settings.jwks_max_age,
            min_refresh: settings.jwks_min_refresh,
            state: Mutex::new(State {
                jwks_uri: settings.jwks_uri.clone(),
                ..State::default()
            }),
        })
    }

    /// The key that should have signed a token with this header.
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, TokenError> {
        let mut state = self.state.lock().await;
        let stale = state.fetched.is_none_or(|t| t.elapsed() >= self.max_age);
        let mut refreshed = false;
        if stale && self.may_fetch(&state) {
            self.refresh(&mut state).await;
            refreshed = true;
        }
        if state.fetched.is_none() {
            return Err(TokenError::KeysUnavailable(
                state
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not fetched yet".into()),
            ));
        }
        if let Some(key) = find(&state.keys, kid, alg)? {
            return Ok(key);
        }
        if !refreshed && self.may_fetch(&state) {
            self.refresh(&mut state).await;
            if let Some(key) = find(&state.keys, kid, alg)? {
                return Ok(key);
            }
        }
        Err(TokenError::UnknownKey(kid.map(str::to_owned)))
    }

    fn may_fetch(&self, state: &State) -> bool {
        state
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.min_refresh)
    }

    /// Fetch the keys; on failure keep the ones we have and remember why.
    async fn refresh(&self, state: &mut State) {
        state.last_attempt = Some(Instant::now());
        match self.fetch(state).await {
            Ok(keys) => {
                tracing::info!(issuer = %self.issuer, keys = keys.len(), "fetched the identity provider's signing keys");
                state.keys = Arc::new(keys);
                state.fetched = Some(Instant::now());
                state.last_error = None;
            }
            Err(error) => {
                tracing::warn!(issuer = %self.issuer, "cannot fetch the identity provider's signing keys: {error}");
                state.last_error = Some(error);
            }
        }
    }

    async fn fetch(&self, state: &mut State) -> Result<Vec<PublicKey>, String> {
        let uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let set: JwkSet = serde_json::from_slice(&self.get(&uri).await?)
            .map_err(|e| format!("{uri} is not a JWK set: {e}"))?;
        let keys: Vec<PublicKey> = set
            .keys
            .iter()
            .filter(|jwk| {
                !matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature)
                    && !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
            })
            .filter_map(|jwk| {
                let key = DecodingKey::from_jwk(jwk)
                    .inspect_err(
                        |e| tracing::debug!(kid = ?jwk.common.key_id, "skipping a key: {e}"),
                    )
                    .ok()?;
                Some(PublicKey {
                    kid: jwk.common.key_id.clone(),
                    alg: jwk.common.key_algorithm.map(|a| format!("{a:?}")),
                    key,
                })
            })
            .collect();
        if keys.is_empty() {
            return Err(format!("{uri} lists no public signing key"));
        }
        Ok(keys)
    }

    /// The JWKS address from the issuer's metadata: OpenID Connect
    /// Discovery, then RFC 8414.
    async fn discover(&self) -> Result<String, String> {
        #[derive(Deserialize)]
        struct Metadata {
            issuer: String,
            jwks_uri: Option<String>,
        }
        let issuer = url::Url::parse(&self.issuer).map_err(|e| e.to_string())?;
        let trimmed = self.issuer.trim_end_matches('/');
        let path = issuer.path().trim_end_matches('/');
        let candidates = [
            format!("{trimmed}/.well-known/openid-configuration"),
            format!(
                "{}/.well-known/oauth-authorization-server{path}",
                issuer.origin().ascii_serialization()
            ),
        ];
        let mut errors = Vec::new();
        for url in candidates {
            match self.get(&url).await {
                Ok(body) => {
                    let metadata: Metadata = serde_json::from_slice(&body)
                        .map_err(|e| format!("{url} is not authorization server metadata: {e}"))?;
                    if metadata.issuer != self.issuer {
                        return Err(format!(
                            "{url} describes issuer {:?}, not {:?}",
                            metadata.issuer, self.issuer
                        ));
                    }
                    let jwks_uri = metadata
                        .jwks_uri
                        .ok_or_else(|| format!("{url} has no jwks_uri"))?;
                    https_or_loopback(&jwks_uri)?;
                    return Ok(jwks_uri);
                }
                Err(error) => errors.push(error),
            }
        }
        Err(errors.join("; "))
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("GET {url}: the answer is larger than 1 MiB"));
            }
        }
        Ok(body)
    }
}

/// The key for `kid` (or the only key, for a token without one), if it may
/// sign with `alg`.
fn find(
    keys: &[PublicKey],
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<Option<DecodingKey>, TokenError> {
    let found = match kid {
        Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    };
    let Some(found) = found else {
        return Ok(None);
    };
    let alg_name = format!("{alg:?}");
    if found.alg.as_ref().is_some_and(|bound| *bound != alg_name) {
        return Err(TokenError::Algorithm(format!(
            "{alg_name} by a key the issuer bound to {}",
            found.alg.as_deref().unwrap_or_default()
        )));
    }
    Ok(Some(found.key.clone()))
}
