//! The requests to a provider: discovery, the token endpoint (code, refresh
//! token, device code), revocation and device authorization. Form-encoded
//! as RFC 6749 requires, answers read as JSON, OAuth errors kept apart from
//! transport errors so that the broker can tell "connect again" from "try
//! later".

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

use super::{ClientAuth, Endpoints, ExchangeError, Exchanger, OAuthApp, TokenSet, unix_now};
use crate::secure_url::https_or_loopback;

/// Largest answer read from a provider.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The fields of a discovery document MCPist uses (RFC 8414 §2).
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: String,
    revocation_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
}

/// A successful token answer (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: SecretString,
    token_type: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default)]
    scope: Option<String>,
}

/// An error answer (RFC 6749 §5.2).
#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// What the device authorization endpoint answered (RFC 8628 §3.2).
#[derive(Debug, Deserialize)]
pub struct DeviceAuthorization {
    device_code: SecretString,
    /// What the owner types.
    pub user_code: String,
    /// Where the owner types it.
    pub verification_uri: String,
    /// The same page with the code filled in, if the provider offers it.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// How long the codes last, in seconds.
    pub expires_in: u64,
    /// How often to ask, in seconds.
    #[serde(default)]
    pub interval: Option<u64>,
}

/// Fetch and check the issuer's metadata: RFC 8414's well-known location
/// (inserted before the issuer's path), then OpenID Connect's (appended),
/// as the MCP authorization spec orders them.
pub(super) async fn discover(
    http: &reqwest::Client,
    service: &str,
    issuer: &Url,
) -> Result<Endpoints, ExchangeError> {
    let fail = |message: String| ExchangeError::Endpoints {
        service: service.to_owned(),
        message,
    };
    let path = issuer.path().trim_end_matches('/');
    let origin = issuer.origin().ascii_serialization();
    let candidates = [
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
        format!("{origin}{path}/.well-known/openid-configuration"),
    ];
    let mut tried = Vec::new();
    for candidate in candidates {
        let answer = match http.get(&candidate).send().await {
            Ok(answer) if answer.status().is_success() => answer,
            Ok(answer) => {
                tried.push(format!("{candidate}: HTTP {}", answer.status().as_u16()));
                continue;
            }
            Err(e) => {
                tried.push(format!("{candidate}: {}", root_cause(&e)));
                continue;
            }
        };
        let body = read_limited(answer)
            .await
            .map_err(|m| fail(format!("{candidate}: {m}")))?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("{candidate} is not a discovery document: {e}")))?;
        // RFC 8414 §3.3: the document must be the issuer's own.
        if metadata.issuer.trim_end_matches('/') != issuer.as_str().trim_end_matches('/') {
            return Err(fail(format!(
                "{candidate} names the issuer {:?}, not {:?}",
                metadata.issuer,
                issuer.as_str()
            )));
        }
        let endpoint = |name: &str, value: Option<String>| -> Result<Option<Url>, ExchangeError> {
            value
                .map(|v| https_or_loopback(&v).map_err(|m| fail(format!("{name}: {m}"))))
                .transpose()
        };
        return Ok(Endpoints {
            issuer: Some(metadata.issuer),
            authorization: endpoint("authorization_endpoint", metadata.authorization_endpoint)?,
            token: https_or_loopback(&metadata.token_endpoint)
                .map_err(|m| fail(format!("token_endpoint: {m}")))?,
            revocation: endpoint("revocation_endpoint", metadata.revocation_endpoint)?,
            device_authorization: endpoint(
                "device_authorization_endpoint",
                metadata.device_authorization_endpoint,
            )?,
        });
    }
    Err(fail(format!(
        "no discovery document at the issuer {}: {}",
        issuer.as_str(),
        tried.join("; ")
    )))
}

impl Exchanger {
    /// Exchange an authorization code (RFC 6749 §4.1.3 with RFC 7636's
    /// verifier).
    pub async fn exchange_code(
        &self,
        app: &OAuthApp,
        client_secret: Option<&SecretString>,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenSet, ExchangeError> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("code_verifier", verifier.to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
        ];
        if let Some(resource) = &app.resource {
            form.push(("resource", resource.clone()));
        }
        self.token_request(app, client_secret, "exchange the sign-in code", form)
            .await
    }

    /// Renew the access token with the refresh token (RFC 6749 §6).
    pub async fn refresh(
        &self,
        app: &OAuthApp,
        client_secret: Option<&SecretString>,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, ExchangeError> {
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.expose_secret().to_owned()),
        ];
        if let Some(resource) = &app.resource {
            form.push(("resource", resource.clone()));
        }
        tracing::debug!(service = %app.service, "refreshing an access token");
        self.token_request(app, client_secret, "renew the access token", form)
            .await
    }

    /// Ask for a device code (RFC 8628 §3.1).
    pub async fn device_authorization(
        &self,
        app: &OAuthApp,
        client_secret: Option<&SecretString>,
    ) -> Result<DeviceAuthorization, ExchangeError> {
        let endpoints = self.endpoints(app).await?;
        let url = endpoints.device_authorization.clone().ok_or_else(|| {
            ExchangeError::Endpoints {
                service: app.service.clone(),
                message: "the provider offers no device authorization endpoint (RFC 8628); connect without --device, or set `device_authorization_endpoint` if it has one".to_owned(),
            }
        })?;
        let mut form = vec![("scope", app.scopes.join(" "))];
        if let Some(resource) = &app.resource {
            form.push(("resource", resource.clone()));
        }
        let body = self
            .post_form(app, client_secret, &url, "start a device sign-in", form)
            .await?;
        serde_json::from_slice(&body)
            .map_err(|e| self.malformed(app, &url, "start a device sign-in", &e.to_string()))
    }

    /// Poll the token endpoint until the owner approves the device code,
    /// refuses it, or it expires (RFC 8628 §3.4–3.5).
    pub async fn poll_device(
        &self,
        app: &OAuthApp,
        client_secret: Option<&SecretString>,
        device: &DeviceAuthorization,
    ) -> Result<TokenSet, ExchangeError> {
        let mut interval = std::time::Duration::from_secs(device.interval.unwrap_or(5).max(1));
        let deadline =
            tokio::time::Instant::now() + std::time::Duration::from_secs(device.expires_in.max(1));
        loop {
            tokio::time::sleep(interval).await;
            let form = vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:device_code".to_owned(),
                ),
                ("device_code", device.device_code.expose_secret().to_owned()),
            ];
            match self
                .token_request(app, client_secret, "finish the device sign-in", form)
                .await
            {
                Err(e) if e.code() == Some("authorization_pending") => {}
                // §3.5: wait five seconds longer from now on.
                Err(e) if e.code() == Some("slow_down") => {
                    interval += std::time::Duration::from_secs(5);
                }
                other => return other,
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ExchangeError::Refused {
                    service: app.service.clone(),
                    provider: "the provider".to_owned(),
                    action: "finish the device sign-in",
                    code: "expired_token".to_owned(),
                    description: Some("the code was not approved in time".to_owned()),
                });
            }
        }
    }

    /// Revoke a token (RFC 7009 §2.1). Ok when the provider says it is
    /// gone, which includes a token it no longer knows.
    pub async fn revoke(
        &self,
        app: &OAuthApp,
        client_secret: Option<&SecretString>,
        token: &SecretString,
        hint: &str,
    ) -> Result<(), ExchangeError> {
        let endpoints = self.endpoints(app).await?;
        let url = endpoints
            .revocation
            .clone()
            .ok_or_else(|| ExchangeError::Endpoints {
                service: app.service.clone(),
                message: "the provider has no revocation endpoint (RFC 7009) in its configuration"
                    .to_owned(),
            })?;
        let form = vec![
            ("token", token.expose_secret().to_owned()),
            ("token_type_hint", hint.to_owned()),
        ];
        self.post_form(app, client_secret, &url, "revoke the tokens", form)
            .await
            .map(drop)
    }

    async fn token_request(
        &self,
        app: &OAuthApp,
        client_secret: Option<&SecretString>,
        action: &'static str,
        form: Vec<(&'static str, String)>,
    ) -> Result<TokenSet, ExchangeError> {
        let endpoints = self.endpoints(app).await?;
        let body = self
            .post_form(app, client_secret, &endpoints.token, action, form)
            .await?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| self.malformed(app, &endpoints.token, action, &strip_values(&e)))?;
        Ok(TokenSet::issued(
            answer.access_token,
            answer.token_type,
            answer.refresh_token,
            answer.expires_in,
            answer.scope,
            unix_now(),
        ))
    }

    /// POST a form with the app's client authentication; the answer's body
    /// when it is not an OAuth error. Some providers (GitHub) answer errors
    /// with 200, so the body is checked whatever the status.
    async fn post_form(
        &self,
        app: &OAuthApp,
        client_secret: Option<&SecretString>,
        url: &Url,
        action: &'static str,
        mut form: Vec<(&'static str, String)>,
    ) -> Result<Vec<u8>, ExchangeError> {
        let provider = url.origin().ascii_serialization();
        let mut request = self
            .http
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match (app.client_auth, client_secret) {
            (ClientAuth::ClientSecretBasic, Some(secret)) => {
                request = request.header(
                    reqwest::header::AUTHORIZATION,
                    basic_authorization(&app.client_id, secret).expose_secret(),
                );
            }
            (ClientAuth::ClientSecretPost, Some(secret)) => {
                form.push(("client_id", app.client_id.clone()));
                form.push(("client_secret", secret.expose_secret().to_owned()));
            }
            (ClientAuth::None, _) => form.push(("client_id", app.client_id.clone())),
            (_, None) => {
                return Err(ExchangeError::Endpoints {
                    service: app.service.clone(),
                    message: format!(
                        "the app authenticates with a client secret and none is stored: run `mcpist oauth secret {}`",
                        app.service
                    ),
                });
            }
        }
        // The encoded form holds secrets; it is zeroized once sent.
        let encoded = Zeroizing::new(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish(),
        );
        for (_, value) in &mut form {
            zeroize::Zeroize::zeroize(value);
        }
        let answer = request
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(encoded.as_bytes().to_vec())
            .send()
            .await
            .map_err(|e| ExchangeError::Transport {
                service: app.service.clone(),
                provider: provider.clone(),
                action,
                message: root_cause(&e),
            })?;
        let status = answer.status();
        let body = read_limited(answer)
            .await
            .map_err(|message| ExchangeError::Transport {
                service: app.service.clone(),
                provider: provider.clone(),
                action,
                message,
            })?;
        if let Ok(error) = serde_json::from_slice::<ErrorAnswer>(&body) {
            return Err(ExchangeError::Refused {
                service: app.service.clone(),
                provider,
                action,
                code: error.error,
                description: error.error_description,
            });
        }
        if !status.is_success() {
            return Err(ExchangeError::Transport {
                service: app.service.clone(),
                provider,
                action,
                message: format!("HTTP {}", status.as_u16()),
            });
        }
        Ok(body)
    }

    fn malformed(
        &self,
        app: &OAuthApp,
        url: &Url,
        action: &'static str,
        why: &str,
    ) -> ExchangeError {
        ExchangeError::Transport {
            service: app.service.clone(),
            provider: url.origin().ascii_serialization(),
            action,
            message: format!("the answer is not what RFC 6749 describes: {why}"),
        }
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_authorization(client_id: &str, secret: &SecretString) -> SecretString {
    let encode =
        |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let pair = Zeroizing::new(format!(
        "{}:{}",
        encode(client_id),
        Zeroizing::new(encode(secret.expose_secret())).as_str()
    ));
    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()));
    SecretString::from(format!("Basic {}", encoded.as_str()))
}

async fn read_limited(mut answer: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| root_cause(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The innermost cause, without the URL (which may carry a query).
fn root_cause(error: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut root = String::new();
    while let Some(e) = source {
        root = e.to_string();
        source = e.source();
    }
    if error.is_timeout() {
        "no answer in time".to_owned()
    } else {
        root
    }
}

/// A JSON error's message without any quoted value from the document (which
/// could be a token).
fn strip_values(error: &serde_json::Error) -> String {
    format!(
        "{} at line {} column {}",
        match error.classify() {
            serde_json::error::Category::Data => "a field is missing or has the wrong type",
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
            serde_json::error::Category::Io => "unreadable",
        },
        error.line(),
        error.column()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_authorization_encodes_both_parts_before_joining_them() {
        let header = basic_authorization("my app", &SecretString::from("s:e/c"));
        let encoded = header.expose_secret().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(decoded, b"my+app:s%3Ae%2Fc");
    }
}
