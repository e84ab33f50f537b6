//! The owner's side of the authorization code flow (RFC 6749 §4.1) for a
//! native app (RFC 8252): PKCE S256 (RFC 7636) and a `state` made fresh for
//! each sign-in, the redirect to a listener on 127.0.0.1, and the code
//! exchanged by this process only after the answer proved it belongs to
//! this sign-in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Html;
use base64::Engine as _;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use url::Url;
use zeroize::Zeroizing;

use super::{Endpoints, ExchangeError, Exchanger, OAuthApp, TokenSet};

/// Why a sign-in did not give a token set.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the variants and fields are named by their messages
pub enum ConnectError {
    #[error(
        "the sign-in was not completed: the provider answered {code}{}; {again}",
        super::describe(.description)
    )]
    Denied {
        code: String,
        description: Option<String>,
        again: String,
    },
    #[error(
        "refused an answer that did not carry this sign-in's `state` (a stale browser tab, or a redirect forged by another page); nothing was stored; {again}"
    )]
    StateMismatch { again: String },
    #[error(
        "refused an answer from issuer {got:?} while signing in at {expected:?} (RFC 9207: a mix-up with another provider); nothing was stored; {again}"
    )]
    IssuerMismatch {
        expected: String,
        got: String,
        again: String,
    },
    #[error(
        "no sign-in finished within {} s (was the browser closed?); {again}, or use --device on a machine without a browser", .waited.as_secs()
    )]
    Timeout { waited: Duration, again: String },
    #[error("the provider's endpoints do not allow a browser sign-in: {0}")]
    NoAuthorizationEndpoint(String),
    #[error("cannot listen on 127.0.0.1:{port} for the sign-in's redirect: {source}")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
}

/// A PKCE pair: the verifier stays here, the challenge goes in the URL.
struct Pkce {
    verifier: Zeroizing<String>,
    challenge: String,
}

impl Pkce {
    fn new() -> Pkce {
        let verifier = Zeroizing::new(random_token());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// 32 random bytes, base64url: a PKCE verifier (43 characters, within RFC
/// 7636's 43–128) or a `state`.
fn random_token() -> String {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).expect("the OS random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
}

/// A sign-in waiting for the browser to come back.
pub struct SignIn {
    /// Taken when the sign-in starts waiting.
    listener: Option<tokio::net::TcpListener>,
    redirect_uri: String,
    state: String,
    pkce: Pkce,
    url: Url,
    endpoints: Arc<Endpoints>,
    /// How to try again, for the errors.
    again: String,
}

/// What the browser brought back to the listener.
type Callback = (HashMap<String, String>, oneshot::Sender<&'static str>);

impl SignIn {
    /// Listen on loopback and build the authorization URL. `again` is the
    /// command that starts over.
    pub async fn start(
        exchanger: &Exchanger,
        app: &OAuthApp,
        again: String,
    ) -> Result<SignIn, ConnectError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", app.redirect_port))
            .await
            .map_err(|source| ConnectError::Listen {
                port: app.redirect_port,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| ConnectError::Listen {
                port: app.redirect_port,
                source,
            })?
            .port();
        let redirect_uri = format!("http://127.0.0.1:{port}/callback");
        let mut sign_in = SignIn::redirecting_to(exchanger, app, redirect_uri, again).await?;
        sign_in.listener = Some(listener);
        Ok(sign_in)
    }

    /// A sign-in whose answer comes back to `redirect_uri`, served by the
    /// caller (the web console), which hands it to [`SignIn::complete`].
    pub async fn redirecting_to(
        exchanger: &Exchanger,
        app: &OAuthApp,
        redirect_uri: String,
        again: String,
    ) -> Result<SignIn, ConnectError> {
        let endpoints = exchanger.endpoints(app).await?;
        let authorization = endpoints.authorization.clone().ok_or_else(|| {
            ConnectError::NoAuthorizationEndpoint(
                "no `authorization_endpoint` is configured or published".to_owned(),
            )
        })?;
        let state = random_token();
        let pkce = Pkce::new();
        let mut url = authorization;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &app.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("state", &state)
                .append_pair("code_challenge", &pkce.challenge)
                .append_pair("code_challenge_method", "S256");
            if !app.scopes.is_empty() {
                query.append_pair("scope", &app.scopes.join(" "));
            }
            if let Some(resource) = &app.resource {
                query.append_pair("resource", resource);
            }
            for (name, value) in &app.extra_params {
                query.append_pair(name, value);
            }
        }
        Ok(SignIn {
            listener: None,
            redirect_uri,
            state,
            pkce,
            url,
            endpoints,
            again,
        })
    }

    /// This sign-in's `state`: the answer that carries it is this one's.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// Check the provider's answer (the redirect's query) and exchange its
    /// code. `Ok(None)`: the request was not an answer at all.
    pub async fn complete(
        &self,
        exchanger: &Exchanger,
        app: &OAuthApp,
        client_secret: Option<&SecretString>,
        params: &HashMap<String, String>,
    ) -> Result<Option<TokenSet>, ConnectError> {
        let Some(code) = self.check(params)? else {
            return Ok(None);
        };
        let tokens = exchanger
            .exchange_code(
                app,
                client_secret,
                &code,
                &self.pkce.verifier,
                &self.redirect_uri,
            )
            .await?;
        Ok(Some(tokens))
    }

    /// The page the owner opens.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Wait up to `timeout` for the browser's redirect, check it, exchange
    /// the code. The browser is told the outcome in words.
    pub async fn finish(
        mut self,
        exchanger: &Exchanger,
        app: &OAuthApp,
        client_secret: Option<&SecretString>,
        timeout: Duration,
    ) -> Result<TokenSet, ConnectError> {
        let (sender, mut callbacks) = mpsc::channel::<Callback>(8);
        let router = axum::Router::new()
            .route("/callback", axum::routing::get(callback))
            .with_state(sender);
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(
            axum::serve(self.listener.take().expect("finish runs once"), router)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .into_future(),
        );
        let again = self.again.clone();
        let outcome = tokio::time::timeout(timeout, async {
            while let Some((params, reply)) = callbacks.recv().await {
                let result = self.complete(exchanger, app, client_secret, &params).await;
                let (page, outcome) = match result {
                    Ok(Some(tokens)) => (
                        "Connected. You can close this window and go back to the terminal.",
                        Ok(tokens),
                    ),
                    // Not an authorization response at all (a probe, a
                    // reload without the query): keep waiting.
                    Ok(None) => {
                        let _ = reply.send("This is MCPist's sign-in listener; it is waiting for the provider's answer.");
                        continue;
                    }
                    Err(e) => ("MCPist refused this sign-in. The terminal says why.", Err(e)),
                };
                let _ = reply.send(page);
                return outcome;
            }
            unreachable!("the listener holds a sender until it stops")
        })
        .await
        .unwrap_or(Err(ConnectError::Timeout {
            waited: timeout,
            again,
        }));
        shutdown.cancel();
        // Let the last page reach the browser before the process ends.
        let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        outcome
    }

    /// `Some(code)` for this sign-in's answer, `None` for something that is
    /// not an answer, an error for an answer that must end the sign-in.
    fn check(&self, params: &HashMap<String, String>) -> Result<Option<String>, ConnectError> {
        let again = || self.again.clone();
        if !params.contains_key("state")
            && !params.contains_key("error")
            && !params.contains_key("code")
        {
            return Ok(None);
        }
        // `state` first: an error or a code that is not for this sign-in
        // must not decide anything.
        if params.get("state").map(String::as_bytes) != Some(self.state.as_bytes()) {
            return Err(ConnectError::StateMismatch { again: again() });
        }
        if let (Some(expected), Some(got)) = (&self.endpoints.issuer, params.get("iss"))
            && expected.trim_end_matches('/') != got.trim_end_matches('/')
        {
            return Err(ConnectError::IssuerMismatch {
                expected: expected.clone(),
                got: got.clone(),
                again: again(),
            });
        }
        if let Some(code) = params.get("error") {
            return Err(ConnectError::Denied {
                code: code.clone(),
                description: params.get("error_description").cloned(),
                again: again(),
            });
        }
        match params.get("code") {
            Some(code) if !code.is_empty() => Ok(Some(code.clone())),
            _ => Err(ConnectError::Denied {
                code: "no code".to_owned(),
                description: None,
                again: again(),
            }),
        }
    }
}

async fn callback(
    State(sender): State<mpsc::Sender<Callback>>,
    Query(params): Query<HashMap<String, String>>,
) -> Html<String> {
    let (reply, answer) = oneshot::channel();
    if sender.send((params, reply)).await.is_err() {
        return Html(page("This sign-in has already ended."));
    }
    Html(page(answer.await.unwrap_or("This sign-in has ended.")))
}

/// A static page: nothing from the request is echoed into it.
fn page(message: &str) -> String {
    format!(
        "<!doctype html><meta charset=utf-8><title>MCPist</title><p style=\"font:16px system-ui;margin:3em\">{message}</p>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_the_sha256_of_the_verifier() {
        let pkce = Pkce::new();
        assert_eq!(pkce.verifier.len(), 43);
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(pkce.verifier.as_bytes()));
        assert_eq!(pkce.challenge, expected);
        assert_ne!(random_token(), random_token());
    }

    #[tokio::test]
    async fn only_this_sign_ins_answer_from_its_issuer_is_taken() {
        let app = OAuthApp {
            service: "google".into(),
            client_id: "app".into(),
            endpoints: super::super::EndpointSource::Given(Arc::new(Endpoints {
                issuer: Some("https://id.example.com".into()),
                authorization: Some(Url::parse("https://id.example.com/auth").unwrap()),
                token: Url::parse("https://id.example.com/token").unwrap(),
                revocation: None,
                device_authorization: None,
            })),
            scopes: vec!["calendar".into()],
            extra_params: vec![("access_type".into(), "offline".into())],
            client_auth: super::super::ClientAuth::None,
            resource: None,
            redirect_port: 0,
            refresh_skew: Duration::from_secs(60),
        };
        let exchanger = Exchanger::new(Default::default());
        let sign_in = SignIn::start(&exchanger, &app, "again".into())
            .await
            .unwrap();
        let query: HashMap<String, String> = sign_in.url().query_pairs().into_owned().collect();
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["access_type"], "offline");
        assert!(query["redirect_uri"].starts_with("http://127.0.0.1:"));
        let state = query["state"].clone();
        let params = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(matches!(sign_in.check(&params(&[])), Ok(None)));
        assert!(matches!(
            sign_in.check(&params(&[("code", "c"), ("state", "other")])),
            Err(ConnectError::StateMismatch { .. })
        ));
        // An error without this sign-in's state decides nothing either.
        assert!(matches!(
            sign_in.check(&params(&[("error", "access_denied")])),
            Err(ConnectError::StateMismatch { .. })
        ));
        assert!(matches!(
            sign_in.check(&params(&[
                ("code", "c"),
                ("state", &state),
                ("iss", "https://evil.example.com")
            ])),
            Err(ConnectError::IssuerMismatch { .. })
        ));
        assert!(matches!(
            sign_in.check(&params(&[("error", "access_denied"), ("state", &state)])),
            Err(ConnectError::Denied { .. })
        ));
        assert_eq!(
            sign_in
                .check(&params(&[
                    ("code", "c"),
                    ("state", &state),
                    ("iss", "https://id.example.com/")
                ]))
                .unwrap(),
            Some("c".to_owned())
        );
    }
}
