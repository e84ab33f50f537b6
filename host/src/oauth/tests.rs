//! The validator against a key set served on 127.0.0.1 by the test, with
//! Ed25519 keys it makes. The end-to-end tests run the same checks against
//! a real OpenID provider.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::*;

const RESOURCE: &str = "http://127.0.0.1:8770/mcp";

struct Key {
    kid: &'static str,
    signing: EncodingKey,
    jwk: Value,
}

fn key(kid: &'static str, seed: u8) -> Key {
    let secret = [seed; 32];
    let public = ed25519_dalek::SigningKey::from_bytes(&secret)
        .verifying_key()
        .to_bytes();
    // PKCS#8 for an Ed25519 private key: a fixed prefix, then the seed.
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&secret);
    Key {
        kid,
        signing: EncodingKey::from_ed_der(&der),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(public), "kid": kid, "use": "sig", "alg": "EdDSA"}),
    }
}

/// An issuer: its metadata and key set, on a free loopback port.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Value>>,
    jwks_fetches: Arc<AtomicUsize>,
    up: Arc<std::sync::atomic::AtomicBool>,
}

impl Issuer {
    async fn start(keys: &[&Key]) -> Issuer {
        use axum::routing::get;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let set = Arc::new(Mutex::new(
            json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}),
        ));
        let fetches = Arc::new(AtomicUsize::new(0));
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let metadata = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")});
        let (jwks_set, jwks_fetches, jwks_up) = (set.clone(), fetches.clone(), up.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let metadata = metadata.clone();
                    async move { axum::Json(metadata) }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    let (set, fetches, up) =
                        (jwks_set.clone(), jwks_fetches.clone(), jwks_up.clone());
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        if !up.load(Ordering::SeqCst) {
                            return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                        }
                        Ok(axum::Json(set.lock().unwrap().clone()))
                    }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Issuer {
            url,
            keys: set,
            jwks_fetches: fetches,
            up,
        }
    }

    fn publish(&self, keys: &[&Key]) {
        *self.keys.lock().unwrap() =
            json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    }

    fn settings(&self) -> JwtSettings {
        JwtSettings {
            issuer: self.url.clone(),
            jwks_uri: None,
            audience: None,
            client_claim: "client_id".into(),
            required_scopes: vec![],
            leeway: Duration::from_secs(0),
            token_types: vec!["at+jwt".into()],
            max_lifetime: Duration::from_secs(24 * 3600),
            jwks_max_age: Duration::from_secs(3600),
            jwks_min_refresh: Duration::from_secs(0),
        }
    }

    fn claims(&self) -> Value {
        json!({"iss": self.url, "aud": RESOURCE, "exp": now() + 300, "client_id": "desk", "scope": "mcp"})
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(key: &Key, claims: &Value) -> String {
    sign_typed(key, claims, Some("at+jwt"))
}

fn sign_typed(key: &Key, claims: &Value, typ: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.into());
    header.typ = typ.map(str::to_owned);
    encode(&header, claims, &key.signing).unwrap()
}

fn with(mut claims: Value, field: &str, value: Value) -> Value {
    claims[field] = value;
    claims
}

#[tokio::test]
async fn a_valid_token_names_its_client() {
    let k1 = key("k1", 1);
    let issuer = Issuer::start(&[&k1]).await;
    let validator = TokenValidator::new(issuer.settings(), RESOURCE).unwrap();
    let client = validator.validate(&sign(&k1, &issuer.claims())).await;
    assert_eq!(client.unwrap(), "jwt:desk");
}

#[tokio::test]
async fn issuer_audience_expiry_and_claims_are_checked() {
    let k1 = key("k1", 1);
    let issuer = Issuer::start(&[&k1]).await;
    let mut settings = issuer.settings();
    settings.required_scopes = vec!["mcp".into(), "tools".into()];
    let validator = TokenValidator::new(settings, RESOURCE).unwrap();
    let claims = issuer.claims();
    let refused = |claims: Value| {
        let token = sign(&k1, &claims);
        let validator = &validator;
        async move { validator.validate(&token).await.unwrap_err() }
    };
    let cases = [
        (
            with(claims.clone(), "iss", json!("https://evil.example")),
            "issued by someone else",
        ),
        (
            with(claims.clone(), "aud", json!("http://127.0.0.1:9999/mcp")),
            "not meant for this server",
        ),
        (with(claims.clone(), "exp", json!(now() - 5)), "expired"),
        (
            with(claims.clone(), "nbf", json!(now() + 600)),
            "not valid yet",
        ),
        (
            with(claims.clone(), "client_id", json!(7)),
            "not a usable client name",
        ),
        (
            with(claims.clone(), "client_id", json!("a\nb")),
            "control characters",
        ),
        (
            with(claims.clone(), "scope", json!("mcp")),
            "scope(s) this server requires: tools",
        ),
    ];
    for (claims, expected) in cases {
        let error = refused(claims).await.to_string();
        assert!(error.contains(expected), "{error}");
    }
    let mut no_client = claims.clone();
    no_client.as_object_mut().unwrap().remove("client_id");
    assert!(matches!(refused(no_client).await, TokenError::MissingClaim(c) if c == "client_id"));
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(matches!(refused(no_exp).await, TokenError::MissingClaim(c) if c == "exp"));
    assert_eq!(
        refused(with(claims, "scope", json!("mcp"))).await.refusal(),
        Refusal::InsufficientScope
    );
}

#[tokio::test]
async fn forged_signatures_hmac_confusion_and_none_are_refused() {
    let k1 = key("k1", 1);
    let issuer = Issuer::start(&[&k1]).await;
    let validator = TokenValidator::new(issuer.settings(), RESOURCE).unwrap();
    let claims = issuer.claims();

    // Signed by another key under the published key's id.
    let forger = Key {
        kid: "k1",
        ..key("forged", 9)
    };
    let error = validator
        .validate(&sign(&forger, &claims))
        .await
        .unwrap_err();
    assert!(matches!(error, TokenError::Signature), "{error}");

    // HS256 with the issuer's public key as the shared secret.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let public = k1.jwk.to_string();
    let hmac = encode(
        &header,
        &claims,
        &EncodingKey::from_secret(public.as_bytes()).unwrap(),
    )
    .unwrap();
    let error = validator.validate(&hmac).await.unwrap_err();
    assert!(
        matches!(error, TokenError::Algorithm(ref a) if a == "HS256"),
        "{error}"
    );

    // Unsigned.
    let body = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        body(&json!({"alg": "none", "kid": "k1"})),
        body(&claims)
    );
    let error = validator.validate(&none).await.unwrap_err();
    assert!(
        matches!(error, TokenError::Algorithm(ref a) if a == "none"),
        "{error}"
    );

    // The right signature, cut and pasted onto other claims.
    let genuine = sign(&k1, &claims);
    let other = sign(&k1, &with(claims.clone(), "client_id", json!("admin")));
    let spliced: Vec<&str> = other
        .split('.')
        .take(2)
        .chain(genuine.split('.').skip(2))
        .collect();
    let error = validator.validate(&spliced.join(".")).await.unwrap_err();
    assert!(matches!(error, TokenError::Signature), "{error}");

    assert!(matches!(
        validator.validate("not-a-jwt").await.unwrap_err(),
        TokenError::Malformed(_)
    ));
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_a_down_issuer_keeps_known_keys() {
    let (k1, k2) = (key("k1", 1), key("k2", 2));
    let issuer = Issuer::start(&[&k1]).await;
    let mut settings = issuer.settings();
    settings.jwks_min_refresh = Duration::from_millis(300);
    let validator = Arc::new(TokenValidator::new(settings, RESOURCE).unwrap());
    assert_eq!(
        validator
            .validate(&sign(&k1, &issuer.claims()))
            .await
            .unwrap(),
        "jwt:desk"
    );
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), 1);

    // The issuer rotates: k2 signs from now on. A burst of tokens by the new
    // key, once the spacing has passed, makes exactly one fetch.
    issuer.publish(&[&k2, &k1]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let token = sign(&k2, &issuer.claims());
    let burst: Vec<_> = (0..10)
        .map(|_| {
            let (validator, token) = (validator.clone(), token.clone());
            tokio::spawn(async move { validator.validate(&token).await })
        })
        .collect();
    for task in burst {
        assert_eq!(task.await.unwrap().unwrap(), "jwt:desk");
    }
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), 2);

    // Unknown key ids do not make the server hammer the issuer.
    let stranger = key("k3", 3);
    for _ in 0..5 {
        let error = validator
            .validate(&sign(&stranger, &issuer.claims()))
            .await
            .unwrap_err();
        assert!(
            matches!(error, TokenError::UnknownKey(Some(ref k)) if k == "k3"),
            "{error}"
        );
    }
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), 2);

    // The issuer goes down: known keys keep working.
    issuer.up.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let error = validator
        .validate(&sign(&stranger, &issuer.claims()))
        .await
        .unwrap_err();
    assert!(matches!(error, TokenError::UnknownKey(_)), "{error}");
    assert_eq!(
        validator
            .validate(&sign(&k2, &issuer.claims()))
            .await
            .unwrap(),
        "jwt:desk"
    );
}

#[tokio::test]
async fn an_unreachable_issuer_is_unavailable_not_invalid() {
    let k1 = key("k1", 1);
    let issuer = Issuer::start(&[&k1]).await;
    issuer.up.store(false, Ordering::SeqCst);
    let validator = TokenValidator::new(issuer.settings(), RESOURCE).unwrap();
    let error = validator
        .validate(&sign(&k1, &issuer.claims()))
        .await
        .unwrap_err();
    assert_eq!(error.refusal(), Refusal::Unavailable, "{error}");
    assert!(error.to_string().contains("503"), "{error}");
}

#[tokio::test]
async fn a_token_that_is_not_an_access_token_or_lives_too_long_is_refused() {
    let k1 = key("k1", 1);
    let issuer = Issuer::start(&[&k1]).await;
    let validator = TokenValidator::new(issuer.settings(), RESOURCE).unwrap();
    let claims = issuer.claims();
    // An ID token or a generic JWT is not an access token.
    for typ in [Some("JWT"), None, Some("id+jwt")] {
        let error = validator
            .validate(&sign_typed(&k1, &claims, typ))
            .await
            .unwrap_err();
        assert!(matches!(error, TokenError::Type { .. }), "{typ:?}: {error}");
    }
    assert!(
        validator
            .validate(&sign_typed(&k1, &claims, Some("application/AT+JWT")))
            .await
            .is_ok()
    );
    // A century-long token, with or without iat.
    let century = now() + 100 * 365 * 24 * 3600;
    for claims in [
        with(claims.clone(), "exp", json!(century)),
        with(
            with(claims.clone(), "exp", json!(century)),
            "iat",
            json!(now()),
        ),
    ] {
        let error = validator.validate(&sign(&k1, &claims)).await.unwrap_err();
        assert!(error.to_string().contains("max_lifetime_secs"), "{error}");
    }
    // The owner can accept untyped tokens from a provider that sets none.
    let mut settings = issuer.settings();
    settings.token_types = vec![];
    let lenient = TokenValidator::new(settings, RESOURCE).unwrap();
    assert!(
        lenient
            .validate(&sign_typed(&k1, &claims, None))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_token_naming_the_local_owner_is_a_client_of_its_own() {
    let k1 = key("k1", 1);
    let issuer = Issuer::start(&[&k1]).await;
    let validator = TokenValidator::new(issuer.settings(), RESOURCE).unwrap();
    let claims = with(issuer.claims(), "client_id", json!("stdio"));
    assert_eq!(
        validator.validate(&sign(&k1, &claims)).await.unwrap(),
        "jwt:stdio"
    );
}
