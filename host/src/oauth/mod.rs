//! Access tokens from the owner's identity provider, for owners who have one:
//! JWTs (RFC 9068) checked for issuer, audience (this server's resource
//! URI), expiry and a signature by one of the keys the issuer publishes
//! ([`key_set`]). A valid token names its client by a claim (`client_id` by
//! default), and that name, in its own namespace (`jwt:NAME`, so that a
//! token can never pass for `stdio` or for a client with an API key), is
//! the client's everywhere else: masks, audit.
//!
//! A token must say it is an access token (`typ` `at+jwt`, RFC 9068 §2.1;
//! configurable for providers that do not set it) and live no longer than
//! `max_lifetime` (24 hours by default): a century-long token is a
//! password, not an access token.
//!
//! Only asymmetric signatures are accepted. An HMAC token would be checked
//! with a secret this server does not have, and the classic confusion (a
//! token "signed" with the issuer's public key as an HMAC secret) must never
//! verify; `none` is not an algorithm.

mod key_set;

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use serde_json::{Map, Value};

pub use key_set::KeySet;

/// `[serve.jwt]`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtSettings {
    /// Compared exactly with the token's `iss`.
    pub issuer: String,
    /// Where the signing keys are; found from the issuer's metadata when
    /// absent.
    pub jwks_uri: Option<String>,
    /// The `aud` a token must carry; this server's resource URI when absent.
    pub audience: Option<String>,
    /// The claim that names the client.
    pub client_claim: String,
    /// Scopes every token must grant.
    pub required_scopes: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Accepted `typ` header values, compared without case and without an
    /// `application/` prefix; empty accepts any (or none).
    pub token_types: Vec<String>,
    /// Longest accepted lifetime, from `iat` (or now) to `exp`.
    pub max_lifetime: Duration,
    /// Keys are fetched again after this long.
    pub jwks_max_age: Duration,
    /// A token signed by an unknown key fetches the keys again (the issuer
    /// may have rotated them), but not more often than this: unknown key ids
    /// are free for anyone to send.
    pub jwks_min_refresh: Duration,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token is neither an API key nor a well-formed JWT: {0}")]
    Malformed(String),
    #[error(
        "tokens signed with {0} are not accepted: only asymmetric signatures (RS*, PS*, ES*, EdDSA) that verify with the issuer's published keys"
    )]
    Algorithm(String),
    #[error("the token is signed by a key the issuer does not publish (kid {0:?})")]
    UnknownKey(Option<String>),
    #[error("the token's signature does not verify with the issuer's key")]
    Signature,
    #[error("the token has expired: get a new one from the identity provider")]
    Expired,
    #[error("the token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("the token was issued by someone else: this server accepts tokens from {expected}")]
    Issuer { expected: String },
    #[error(
        "the token is not meant for this server: its audience (aud) must be {expected}; ask the identity provider for a token with resource={expected}"
    )]
    Audience { expected: String },
    #[error("the token has no `{0}` claim")]
    MissingClaim(String),
    #[error(
        "the token's type (typ) is {found:?}, not an access token ({accepted}); if your identity provider does not mark its access tokens, set [serve.jwt] token_types"
    )]
    Type {
        found: Option<String>,
        accepted: String,
    },
    #[error(
        "the token lives {seconds} s, longer than the {max} s this server accepts ([serve.jwt] max_lifetime_secs)"
    )]
    Lifetime { seconds: u64, max: u64 },
    #[error("the token's `{claim}` claim is not a usable client name: {reason}")]
    ClientName { claim: String, reason: &'static str },
    #[error("the token does not grant the scope(s) this server requires: {0}")]
    Scope(String),
    #[error("cannot get the identity provider's signing keys: {0}")]
    KeysUnavailable(String),
}

/// How a refusal is answered over HTTP (RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 401, `error="invalid_token"`.
    InvalidToken,
    /// 403, `error="insufficient_scope"`.
    InsufficientScope,
    /// 503: the token may be fine; this server cannot tell right now.
    Unavailable,
}

impl TokenError {
    pub fn refusal(&self) -> Refusal {
        match self {
            TokenError::Scope(_) => Refusal::InsufficientScope,
            TokenError::KeysUnavailable(_) => Refusal::Unavailable,
            _ => Refusal::InvalidToken,
        }
    }
}

/// Checks access tokens for one issuer and one audience.
pub struct TokenValidator {
    settings: JwtSettings,
    audience: String,
    keys: KeySet,
}

impl TokenValidator {
    /// `resource` is this server's resource URI, the audience unless the
    /// settings name another.
    pub fn new(settings: JwtSettings, resource: &str) -> Result<TokenValidator, TokenError> {
        let audience = settings
            .audience
            .clone()
            .unwrap_or_else(|| resource.to_owned());
        let keys = KeySet::new(&settings)?;
        Ok(TokenValidator {
            settings,
            audience,
            keys,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    pub fn required_scopes(&self) -> &[String] {
        &self.settings.required_scopes
    }

    /// The client a valid token was issued to.
    pub async fn validate(&self, token: &str) -> Result<String, TokenError> {
        let alg = header_algorithm(token)?;
        if !ACCEPTED_ALGORITHMS.contains(&alg.as_str()) {
            return Err(TokenError::Algorithm(alg));
        }
        let header = decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        self.check_type(header.typ.as_deref())?;
        let key = self.keys.key_for(header.kid.as_deref(), header.alg).await?;

        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.settings.leeway.as_secs();
        let claims = decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| self.claim_error(e.into_kind()))?
            .claims;

        self.check_lifetime(&claims)?;
        let claim = &self.settings.client_claim;
        let client = claims
            .get(claim)
            .ok_or_else(|| TokenError::MissingClaim(claim.clone()))?
            .as_str()
            .ok_or(TokenError::ClientName {
                claim: claim.clone(),
                reason: "it is not a string",
            })?;
        check_client_name(client).map_err(|reason| TokenError::ClientName {
            claim: claim.clone(),
            reason,
        })?;

        let granted: Vec<&str> = claims
            .get("scope")
            .and_then(Value::as_str)
            .map(|s| s.split(' ').collect())
            .unwrap_or_default();
        let missing: Vec<&str> = self
            .settings
            .required_scopes
            .iter()
            .map(String::as_str)
            .filter(|s| !granted.contains(s))
            .collect();
        if !missing.is_empty() {
            return Err(TokenError::Scope(missing.join(" ")));
        }
        Ok(format!("{JWT_CLIENT_PREFIX}{client}"))
    }

    fn check_type(&self, typ: Option<&str>) -> Result<(), TokenError> {
        let accepted = &self.settings.token_types;
        let normal = |t: &str| {
            let t = t.to_ascii_lowercase();
            t.strip_prefix("application/")
                .map(str::to_owned)
                .unwrap_or(t)
        };
        if accepted.is_empty()
            || typ.is_some_and(|t| accepted.iter().any(|a| normal(a) == normal(t)))
        {
            return Ok(());
        }
        Err(TokenError::Type {
            found: typ.map(str::to_owned),
            accepted: accepted.join(", "),
        })
    }

    fn check_lifetime(&self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let from = claims
            .get("iat")
            .and_then(Value::as_u64)
            .map_or(now, |iat| iat.min(now));
        let seconds = exp.saturating_sub(from);
        let max = self.settings.max_lifetime.as_secs();
        if seconds > max {
            return Err(TokenError::Lifetime { seconds, max });
        }
        Ok(())
    }

    fn claim_error(&self, kind: ErrorKind) -> TokenError {
        match kind {
            ErrorKind::InvalidSignature => TokenError::Signature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::Issuer {
                expected: self.settings.issuer.clone(),
            },
            ErrorKind::InvalidAudience => TokenError::Audience {
                expected: self.audience.clone(),
            },
            ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
            // The key's type does not fit the header's algorithm (an RSA key
            // named for an ES256 token): as good as a bad signature.
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey => TokenError::Signature,
            other => TokenError::Malformed(format!("{other:?}")),
        }
    }
}

/// What every client name from a token starts with: tokens have their own
/// namespace, apart from `stdio` and the clients with API keys (whose names
/// cannot hold a `:`).
pub const JWT_CLIENT_PREFIX: &str = "jwt:";

/// Asymmetric algorithms only: see the module's documentation.
const ACCEPTED_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// The `alg` of a compact JWS, read before anything else is trusted.
fn header_algorithm(token: &str) -> Result<String, TokenError> {
    use base64::Engine;
    let malformed = |why: &str| TokenError::Malformed(why.to_owned());
    let (header, rest) = token
        .split_once('.')
        .ok_or_else(|| malformed("it does not have three dot-separated parts"))?;
    if rest.matches('.').count() != 1 {
        return Err(malformed("it does not have three dot-separated parts"));
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("its header is not base64url"))?;
    let header: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| malformed("its header is not a JSON object"))?;
    header
        .get("alg")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| malformed("its header has no alg"))
}

/// A client name from a token goes into logs, the audit log and mask
/// lookups: printable, one line, bounded.
fn check_client_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > 256 {
        return Err("it is longer than 256 bytes");
    }
    if name.chars().any(char::is_control) {
        return Err("it contains control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
