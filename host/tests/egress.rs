//! Attacks on outbound HTTP and credentials. The `prober` test module sends
//! whatever request a test asks for; each attack must fail (or reach only
//! what it may, without the secret) while the host goes on serving.
//!
//! Its logical hosts are served by local servers through `[upstreams]`
//! overrides, exactly as a user points a module at GitHub Enterprise:
//! `https://api.service.test` (bound to service `svc`) and
//! `https://other.test` (no credential) both map to 127.0.0.1, so the owner
//! approves them with allow-private, as the tests' own upstreams.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{any, get};
use mcpist::egress::HttpSettings;
use mcpist::registry::HostRule;
use mcpist::runtime::{CallContext, ContentItem, Limits};
use secrecy::SecretString;
use serde_json::{Value, json};

use common::{Home, Served, Upstream, fixture};

const PERSONAL_TOKEN: &str = "ghp_personal_0123456789abcdef";
const WORK_TOKEN: &str = "ghp_work_fedcba9876543210";
/// A token with characters JSON and URLs escape.
const SLASHED_TOKEN: &str = "tok/with/slashes+and=signs";

/// The API the credential is bound to: it echoes the Authorization header it
/// received (in the body and in a header, as careless APIs do), redirects
/// where it is told, and can be slow or large.
fn service_api() -> Router {
    Router::new()
        .route(
            "/echo",
            any(|headers: HeaderMap, body: String| async move {
                let auth = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                (
                    [("x-echo-authorization", auth.clone())],
                    json!({"authorization": auth, "body": body}).to_string(),
                )
            }),
        )
        .route(
            "/redirect",
            get(|Query(q): Query<BTreeMap<String, String>>| async move {
                (StatusCode::FOUND, [(header::LOCATION, q["to"].clone())])
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/big", get(|| async { "x".repeat(256 * 1024) }))
        // Careless or hostile variants of the echo: compressed whatever was
        // asked for, a byte range whatever was asked for, JSON-escaped.
        .route(
            "/echo-gzip",
            get(|headers: HeaderMap| async move {
                (
                    [(header::CONTENT_ENCODING, "gzip")],
                    authorization(&headers),
                )
            }),
        )
        .route(
            "/echo-partial",
            get(|headers: HeaderMap| async move {
                let echo = authorization(&headers);
                let half = echo[..echo.len() / 2].to_owned();
                (
                    StatusCode::PARTIAL_CONTENT,
                    [(
                        header::CONTENT_RANGE,
                        format!("bytes 0-{}/{}", half.len() - 1, echo.len()),
                    )],
                    half,
                )
            }),
        )
        .route(
            "/echo-escaped",
            get(|headers: HeaderMap| async move {
                let escaped = authorization(&headers).replace('/', "\\/");
                format!(r#"{{"authorization":"{escaped}"}}"#)
            }),
        )
        // Redirects to `to`, keeping every other query parameter (the
        // credential among them, when it was injected as one).
        .route(
            "/bounce",
            get(|Query(q): Query<BTreeMap<String, String>>| async move {
                let kept: String = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(q.iter().filter(|(k, _)| *k != "to"))
                    .finish();
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, format!("{}?{kept}", q["to"]))],
                )
            }),
        )
}

fn authorization(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Any other host: records what reached it.
fn other_api() -> Router {
    Router::new().fallback(|| async { "landed" })
}

struct Probe {
    home: Home,
    service: Upstream,
    other: Upstream,
    catalog: Served,
    via: Via,
}

/// The two ways out of a module: the host's own `http` import, and
/// `wasi:http/outgoing-handler`, which every language's usual HTTP client
/// speaks. Each attack is tried through both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    McpistHttp,
    WasiHttp,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::McpistHttp => "mcpist-http",
            Via::WasiHttp => "wasi-http",
        }
    }
}

/// One test per way out for each attack.
macro_rules! through_both_ways_out {
    ($($attack:ident),* $(,)?) => {
        mod via_mcpist_http {
            $(#[tokio::test]
            async fn $attack() {
                super::$attack(super::Via::McpistHttp).await;
            })*
        }
        mod via_wasi_http {
            $(#[tokio::test]
            async fn $attack() {
                super::$attack(super::Via::WasiHttp).await;
            })*
        }
    };
}

through_both_ways_out!(
    the_credential_of_the_chosen_account_reaches_only_the_bound_host,
    a_token_echoed_by_the_upstream_is_redacted_before_the_module_sees_it,
    a_request_to_an_unapproved_host_is_refused_with_how_to_approve,
    loopback_and_metadata_addresses_are_refused,
    a_name_resolving_to_a_private_address_is_refused_until_allowed,
    a_redirect_to_another_host_does_not_carry_the_credential,
    a_module_cannot_choose_the_encoding_or_a_range_of_a_credentialed_answer,
    an_encoded_or_partial_answer_to_a_credentialed_request_is_refused,
    a_json_escaped_echo_of_the_token_is_redacted,
    a_query_credential_does_not_follow_a_redirect_to_an_unbound_host,
    a_module_cannot_set_credential_headers_for_a_bound_host,
    another_services_account_or_an_unknown_account_is_refused,
    methods_and_paths_are_limited_to_the_owners_rule,
    limits_stop_runaway_requests,
);

impl Probe {
    async fn new(via: Via) -> Probe {
        Probe::with_settings(HttpSettings::default(), via).await
    }

    async fn with_settings(settings: HttpSettings, via: Via) -> Probe {
        let home = Home::new(Limits::default());
        let service = Upstream::start(service_api()).await;
        let other = Upstream::start(other_api()).await;
        home.serve(&[fixture("prober")]).await;
        for host in [
            "https://api.service.test",
            "https://other.test",
            "https://query.service.test",
        ] {
            home.set_host_rule("prober", host, allow_private());
        }
        // 169.254.169.254 is approved with allow-private too, to show that
        // metadata addresses stay unreachable whatever the owner allows.
        home.set_host_rule("prober", "http://169.254.169.254", allow_private());
        let broker = home.broker();
        broker
            .add(
                "svc",
                "personal",
                Some(SecretString::from(PERSONAL_TOKEN)),
                false,
            )
            .await
            .unwrap();
        broker
            .add("svc", "work", Some(SecretString::from(WORK_TOKEN)), false)
            .await
            .unwrap();
        broker
            .add(
                "svc",
                "slashed",
                Some(SecretString::from(SLASHED_TOKEN)),
                false,
            )
            .await
            .unwrap();
        broker
            .add(
                "other",
                "team",
                Some(SecretString::from("other-service-token")),
                false,
            )
            .await
            .unwrap();
        let upstreams = Probe::upstreams(&service, &other);
        let catalog = home.server(settings, upstreams).await;
        Probe {
            home,
            service,
            other,
            catalog,
            via,
        }
    }

    fn upstreams(service: &Upstream, other: &Upstream) -> BTreeMap<String, String> {
        [
            ("https://api.service.test".to_owned(), service.base()),
            ("https://other.test".to_owned(), other.base()),
            ("https://query.service.test".to_owned(), service.base()),
            // A name that resolves to a loopback address.
            (
                "https://private.test".to_owned(),
                format!("http://localhost:{}", other.addr.port()),
            ),
        ]
        .into_iter()
        .collect()
    }

    /// Apply the changed lock to the running server, as its watcher does
    /// when `mcpist plugins host` writes the lock: no restart.
    async fn reload(&self) {
        self.catalog.server.reload().await.unwrap();
    }

    async fn fetch(&self, arguments: Value) -> Result<Value, String> {
        self.fetch_as(None, arguments).await
    }

    async fn fetch_as(&self, account: Option<&str>, arguments: Value) -> Result<Value, String> {
        let mut arguments = arguments;
        arguments["via"] = json!(self.via.name());
        fetch(&self.catalog, account, arguments).await
    }

    /// The host still serves: a credentialed call right after the attack
    /// succeeds.
    async fn still_serving(&self) {
        let report = self
            .fetch(json!({"url": "https://api.service.test/echo"}))
            .await
            .unwrap();
        assert_eq!(report["status"], 200);
    }
}

fn allow_private() -> HostRule {
    HostRule {
        allow_private: true,
        ..HostRule::default()
    }
}

async fn fetch(catalog: &Served, account: Option<&str>, arguments: Value) -> Result<Value, String> {
    let context = CallContext {
        account: account.map(str::to_owned),
    };
    match catalog
        .invoke("prober", "fetch", &arguments, &context)
        .await
    {
        Ok(output) => {
            let text: String = output
                .content
                .into_iter()
                .map(|c| match c {
                    ContentItem::Text(t) | ContentItem::Json(t) => t,
                    other => panic!("expected text, got {other:?}"),
                })
                .collect();
            Ok(serde_json::from_str(&text).unwrap())
        }
        Err(e) => Err(e.to_string()),
    }
}

fn assert_contains(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
}

async fn the_credential_of_the_chosen_account_reaches_only_the_bound_host(via: Via) {
    let probe = Probe::new(via).await;
    let personal = probe
        .fetch(json!({"url": "https://api.service.test/echo"}))
        .await
        .unwrap();
    assert_eq!(
        personal["account"], "personal",
        "the first account is the default"
    );
    probe
        .fetch_as(
            Some("work"),
            json!({"url": "https://api.service.test/echo"}),
        )
        .await
        .unwrap();
    let auth: Vec<String> = probe
        .service
        .seen()
        .iter()
        .map(|s| s.header("authorization").unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        auth,
        [
            format!("Bearer {PERSONAL_TOKEN}"),
            format!("Bearer {WORK_TOKEN}")
        ]
    );
    // The unbound host gets no credential.
    probe
        .fetch(json!({"url": "https://other.test/anything"}))
        .await
        .unwrap();
    let seen = probe.other.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("authorization"), None);
}

async fn a_token_echoed_by_the_upstream_is_redacted_before_the_module_sees_it(via: Via) {
    let probe = Probe::new(via).await;
    let report = probe
        .fetch(json!({"url": "https://api.service.test/echo"}))
        .await
        .unwrap();
    let text = report.to_string();
    assert!(!text.contains(PERSONAL_TOKEN), "{text}");
    assert_eq!(
        report["headers"]["x-echo-authorization"],
        "Bearer [REDACTED]"
    );
    let body: Value = serde_json::from_str(report["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["authorization"], "Bearer [REDACTED]");
}

async fn a_request_to_an_unapproved_host_is_refused_with_how_to_approve(via: Via) {
    let probe = Probe::new(via).await;
    let err = probe
        .fetch(json!({"url": "https://evil.test/steal"}))
        .await
        .unwrap_err();
    assert_contains(
        &err,
        &["https://evil.test", "is not an approved host", "prober"],
    );
    // The physical address behind an approved name is not itself approved.
    let direct = format!("{}/echo", probe.service.base());
    let err = probe.fetch(json!({ "url": direct })).await.unwrap_err();
    assert_contains(&err, &["is not an approved host"]);
    assert!(probe.service.seen().is_empty());
    probe.still_serving().await;
}

#[tokio::test]
async fn a_module_without_approved_hosts_has_no_network() {
    let home = Home::new(Limits::default());
    let catalog = home.serve(&[fixture("hostile")]).await;
    let err = catalog
        .invoke(
            "hostile",
            "fetch",
            &json!({"url": "https://example.com/"}),
            &CallContext::default(),
        )
        .await
        .unwrap_err();
    assert_contains(
        &err.to_string(),
        &["example.com", "is not an approved host"],
    );
}

async fn loopback_and_metadata_addresses_are_refused(via: Via) {
    let probe = Probe::new(via).await;
    // An approved IP literal on loopback, without allow-private.
    let err = probe
        .fetch(json!({"url": "http://127.0.0.1/admin"}))
        .await
        .unwrap_err();
    assert_contains(&err, &["127.0.0.1", "loopback", "--allow-private"]);
    // The metadata endpoint, although approved with allow-private.
    let err = probe
        .fetch(json!({"url": "http://169.254.169.254/latest/meta-data/"}))
        .await
        .unwrap_err();
    assert_contains(&err, &["169.254.169.254", "metadata"]);
    assert!(!err.contains("--allow-private"), "no way around it: {err}");
    probe.still_serving().await;
}

async fn a_name_resolving_to_a_private_address_is_refused_until_allowed(via: Via) {
    let probe = Probe::new(via).await;
    let err = probe
        .fetch(json!({"url": "https://private.test/x"}))
        .await
        .unwrap_err();
    assert_contains(&err, &["private.test", "--allow-private"]);
    assert!(probe.other.seen().is_empty(), "nothing was sent");
    // The same request goes through once the owner allows it: the refusal
    // was the guard, not a dead server.
    probe
        .home
        .set_host_rule("prober", "https://private.test", allow_private());
    probe.reload().await;
    let report = probe
        .fetch(json!({"url": "https://private.test/x"}))
        .await
        .unwrap();
    assert_eq!(report["body"], "landed");
}

async fn a_redirect_to_another_host_does_not_carry_the_credential(via: Via) {
    let probe = Probe::new(via).await;
    // The service redirects to the physical address of other.test; the host
    // maps it back, re-checks it (approved), and drops the credential.
    let to = format!("{}/landing", probe.other.base());
    let report = probe
        .fetch(json!({"url": format!("https://api.service.test/redirect?to={to}")}))
        .await
        .unwrap();
    assert_eq!(report["body"], "landed");
    let landed = probe.other.seen();
    assert_eq!(landed.len(), 1);
    assert_eq!(landed[0].uri, "/landing");
    assert_eq!(landed[0].header("authorization"), None);
    // A redirect to a host the module may not reach is refused.
    for to in [
        "https://evil.test/",
        "http://169.254.169.254/latest/meta-data/",
    ] {
        let err = probe
            .fetch(json!({"url": format!("https://api.service.test/redirect?to={to}")}))
            .await
            .unwrap_err();
        assert!(
            err.contains("is not an approved host") || err.contains("metadata"),
            "{err}"
        );
    }
    probe.still_serving().await;
}

async fn a_module_cannot_choose_the_encoding_or_a_range_of_a_credentialed_answer(via: Via) {
    let probe = Probe::new(via).await;
    // Asking for a compressed echo (to inflate it past redaction) or for the
    // echo in byte ranges (to join the halves) is refused before anything
    // leaves; TE is a transport header, refused everywhere.
    for (name, value, refused) in [
        ("Accept-Encoding", "gzip", "accept-encoding"),
        ("Range", "bytes=0-12", "range"),
        ("Range", "bytes=13-", "range"),
        ("If-Range", "\"etag\"", "if-range"),
        ("TE", "gzip", "te"),
    ] {
        let err = probe
            .fetch(json!({"url": "https://api.service.test/echo", "headers": {name: value}}))
            .await
            .unwrap_err();
        assert_contains(&err, &[&format!("may not set the {refused} header")]);
    }
    assert!(probe.service.seen().is_empty());
    // A host without a credential may be asked for ranges and encodings.
    let report = probe
        .fetch(json!({"url": "https://other.test/", "headers": {"Range": "bytes=0-3"}}))
        .await
        .unwrap();
    assert_eq!(report["status"], 200);
    // The credentialed request asks for the body as it is.
    probe.still_serving().await;
    let seen = probe.service.seen();
    assert_eq!(seen[0].header("accept-encoding"), Some("identity"));
}

async fn an_encoded_or_partial_answer_to_a_credentialed_request_is_refused(via: Via) {
    let probe = Probe::new(via).await;
    for (path, expected) in [
        ("/echo-gzip", "Content-Encoding \"gzip\""),
        ("/echo-partial", "partial response (206)"),
    ] {
        let err = probe
            .fetch(json!({"url": format!("https://api.service.test{path}")}))
            .await
            .unwrap_err();
        assert_contains(&err, &[expected, "credential"]);
        assert!(!err.contains("ghp_personal"), "{err}");
    }
    probe.still_serving().await;
}

async fn a_json_escaped_echo_of_the_token_is_redacted(via: Via) {
    let probe = Probe::new(via).await;
    let report = probe
        .fetch_as(
            Some("slashed"),
            json!({"url": "https://api.service.test/echo-escaped"}),
        )
        .await
        .unwrap();
    let body = report["body"].as_str().unwrap();
    assert!(body.contains("[REDACTED]"), "{body}");
    for fragment in ["with", "slashes", "signs"] {
        assert!(!body.contains(fragment), "{fragment} leaked: {body}");
    }
}

async fn a_query_credential_does_not_follow_a_redirect_to_an_unbound_host(via: Via) {
    let probe = Probe::new(via).await;
    let to = format!("{}/landing", probe.other.base());
    let err = probe
        .fetch(json!({"url": format!("https://query.service.test/bounce?to={to}")}))
        .await
        .unwrap_err();
    assert_contains(&err, &["carries the credential", "https://other.test"]);
    assert!(!err.contains(PERSONAL_TOKEN), "{err}");
    assert!(
        probe.other.seen().is_empty(),
        "the secret reached other.test"
    );
    // The credential reached the bound host as a query parameter, redacted
    // from what the module sees.
    let seen = probe.service.seen();
    assert!(
        seen[0].uri.contains("api_key=ghp_personal"),
        "{}",
        seen[0].uri
    );
    // A redirect within the bound host keeps working.
    let report = probe
        .fetch(json!({"url": "https://query.service.test/bounce?to=/echo"}))
        .await
        .unwrap();
    assert_eq!(report["status"], 200);
}

async fn a_module_cannot_set_credential_headers_for_a_bound_host(via: Via) {
    let probe = Probe::new(via).await;
    for (name, value) in [
        ("Authorization", "Bearer attacker-token"),
        ("authorization", "token attacker-token"),
        ("Cookie", "session=attacker"),
        ("Proxy-Authorization", "Basic eDp5"),
    ] {
        let err = probe
            .fetch(json!({
                "url": "https://api.service.test/echo",
                "headers": { name: value }
            }))
            .await
            .unwrap_err();
        // wasi:http refuses Proxy-Authorization in the guest already.
        if !(via == Via::WasiHttp && name == "Proxy-Authorization") {
            assert_contains(&err, &["may not set", "attaches the credential itself"]);
        }
    }
    // Smuggling a second header through a value is not possible either
    // (wasi:http's fields refuse it in the guest).
    let err = probe
        .fetch(json!({
            "url": "https://api.service.test/echo",
            "headers": {"X-Note": "a\r\nAuthorization: Bearer attacker"}
        }))
        .await
        .unwrap_err();
    let refused = match via {
        Via::McpistHttp => "not valid",
        Via::WasiHttp => "InvalidSyntax",
    };
    assert_contains(&err, &[refused]);
    assert!(probe.service.seen().is_empty());
    probe.still_serving().await;
}

async fn another_services_account_or_an_unknown_account_is_refused(via: Via) {
    let probe = Probe::new(via).await;
    let err = probe
        .fetch_as(
            Some("team"),
            json!({"url": "https://api.service.test/echo"}),
        )
        .await
        .unwrap_err();
    assert_contains(
        &err,
        &["no `svc` account named `team`", "personal, slashed, work"],
    );
    let err = probe
        .fetch_as(
            Some("nobody"),
            json!({"url": "https://api.service.test/echo"}),
        )
        .await
        .unwrap_err();
    assert_contains(&err, &["no `svc` account named `nobody`"]);
    assert!(probe.service.seen().is_empty());
    probe.still_serving().await;
}

#[tokio::test]
async fn a_call_needing_a_service_without_accounts_says_how_to_add_one() {
    let home = Home::new(Limits::default());
    let catalog = home.serve(&[fixture("prober")]).await;
    let err = fetch(&catalog, None, json!({"url": "https://other.test/"}))
        .await
        .unwrap_err();
    assert_contains(&err, &["mcpist account add svc NAME"]);
}

async fn methods_and_paths_are_limited_to_the_owners_rule(via: Via) {
    let probe = Probe::new(via).await;
    probe.home.set_host_rule(
        "prober",
        "https://api.service.test",
        HostRule {
            methods: vec!["GET".into()],
            paths: vec!["/echo".into()],
            allow_private: true,
        },
    );
    probe.reload().await;
    let err = probe
        .fetch(json!({"url": "https://api.service.test/echo", "method": "POST", "body": "x"}))
        .await
        .unwrap_err();
    assert_contains(&err, &["POST", "mcpist plugins host"]);
    let err = probe
        .fetch(json!({"url": "https://api.service.test/redirect?to=/echo"}))
        .await
        .unwrap_err();
    assert_contains(&err, &["/redirect", "mcpist plugins host"]);
    // `..` cannot climb out of an allowed prefix, plain or encoded for a
    // server that decodes before it normalises.
    let err = probe
        .fetch(json!({"url": "https://api.service.test/echo/../redirect?to=/echo"}))
        .await
        .unwrap_err();
    assert_contains(&err, &["/redirect"]);
    for path in [
        "/echo/..%2fredirect",
        "/echo/%2e%2e%2Fredirect",
        "/echo/%2E%2E/redirect",
        "/echo/..%5credirect",
        "/echo/..\\redirect",
    ] {
        let err = probe
            .fetch(json!({"url": format!("https://api.service.test{path}?to=/echo")}))
            .await
            .unwrap_err();
        // A wasi:http client cannot even form a path with a backslash.
        assert!(
            err.contains("encoded slash")
                || err.contains("outside the prefixes")
                || (via == Via::WasiHttp && err.contains("path refused")),
            "{path}: {err}"
        );
    }
    // A method override cannot turn an allowed GET into a DELETE.
    for name in [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        let err = probe
            .fetch(json!({"url": "https://api.service.test/echo", "headers": {name: "DELETE"}}))
            .await
            .unwrap_err();
        assert_contains(&err, &["may not set the", "method rule"]);
    }
    assert!(probe.service.seen().is_empty());
    probe.still_serving().await;
}

async fn limits_stop_runaway_requests(via: Via) {
    let settings = HttpSettings {
        timeout: Duration::from_millis(500),
        max_request_bytes: 1024,
        max_response_bytes: 64 * 1024,
        max_requests_per_call: 3,
        ..HttpSettings::default()
    };
    let probe = Probe::with_settings(settings, via).await;
    let err = probe
        .fetch(json!({"url": "https://other.test/", "repeat": 4}))
        .await
        .unwrap_err();
    assert_contains(&err, &["more than 3 HTTP requests in one call"]);
    assert_eq!(probe.other.seen().len(), 3);
    let err = probe
        .fetch(json!({"url": "https://other.test/", "method": "POST", "body": "x".repeat(2048)}))
        .await
        .unwrap_err();
    assert_contains(
        &err,
        &["request body is larger than the limit of 1024 bytes"],
    );
    let err = probe
        .fetch(json!({"url": "https://api.service.test/big"}))
        .await
        .unwrap_err();
    assert_contains(&err, &["65536"]);
    let err = probe
        .fetch(json!({"url": "https://api.service.test/slow"}))
        .await
        .unwrap_err();
    assert_contains(&err, &["timed out"]);
    probe.still_serving().await;
}

#[tokio::test]
async fn a_vault_that_cannot_be_opened_fails_only_calls_that_need_it() {
    let probe = Probe::new(Via::McpistHttp).await;
    // The same vault file opened with the wrong key.
    let wrong = Some(SecretString::from("00".repeat(32)));
    let upstreams = Probe::upstreams(&probe.service, &probe.other);
    let catalog = probe
        .home
        .server_with_key(HttpSettings::default(), upstreams, wrong)
        .await;
    let err = fetch(
        &catalog,
        None,
        json!({"url": "https://api.service.test/echo"}),
    )
    .await
    .unwrap_err();
    assert_contains(&err, &["vault `local` is unavailable"]);
    assert!(!err.contains(PERSONAL_TOKEN));
    // The unbound host needs no secret, so it still works.
    let report = fetch(&catalog, None, json!({"url": "https://other.test/"}))
        .await
        .unwrap();
    assert_eq!(report["body"], "landed");
    // The vault file was not damaged: the right key still opens it.
    probe.still_serving().await;
}
