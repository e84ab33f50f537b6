//! MCP over Streamable HTTP at `/mcp`, for clients that do not launch the
//! server themselves.
//!
//! rmcp's Streamable HTTP service speaks the protocol (sessions,
//! `MCP-Protocol-Version`, SSE) and checks `Host` (DNS rebinding), `Origin`
//! and the body size. In front of it, every request must carry a bearer
//! token: an API key the owner issued (`mcpist_...`), or, when `[serve.jwt]`
//! names the owner's identity provider, an access token it issued for this
//! server ([`crate::oauth`]). Without one the answer is 401 with a
//! `WWW-Authenticate` header pointing at this server's Protected Resource
//! Metadata (RFC 9728), which names that identity provider, as the MCP
//! authorization spec asks.
//!
//! A session belongs to the client that opened it: another client's key
//! cannot use or end it, and a session that is not open (never was, or
//! ended) is 404 to every method; a DELETE that ends one answers 204.
//! A body that is not JSON is answered 400 with JSON-RPC's parse error
//! (`-32700`), and a batch (an array, which MCP no longer has since
//! 2025-06-18) 400 with an invalid request (`-32600`), where rmcp 3.9
//! would answer 415 and, for an unknown session's DELETE, 202. Connections are served by our own loop over hyper
//! (not `axum::serve`) so that they can be bounded: a connection must send
//! its headers within `[serve] header_timeout_secs` and may not sit idle
//! longer between requests, at most `[serve] max_connections` are served at
//! once, and the soft descriptor limit is raised to the hard one at start,
//! so that idle or half-sent connections cannot lock every client out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

use super::{McpServer, Session};
use crate::calls::CallService;
use crate::clients::{Clients, KEY_PREFIX};
use crate::oauth::{JwtSettings, Refusal, TokenValidator};

/// Where MCP is served.
pub const MCP_PATH: &str = "/mcp";
/// RFC 9728 metadata, for the resource at [`MCP_PATH`].
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// How the HTTP endpoint is exposed.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpServeSettings {
    /// The address listened on.
    pub bind: SocketAddr,
    /// Browser origins allowed to call (`https://app.example:443`); a
    /// request with any other `Origin` is refused with 403. Empty: every
    /// request that carries an `Origin` is refused.
    pub allowed_origins: Vec<String>,
    /// `Host` values accepted besides the loopback names, for a server
    /// reached by another name (behind a proxy, on a LAN).
    pub allowed_hosts: Vec<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Connections served at once.
    pub max_connections: usize,
    /// Time allowed for a request's headers, and for idling between
    /// requests.
    pub header_timeout: Duration,
    /// The URL clients use for `/mcp`; `http://BIND/mcp` when absent.
    pub resource: Option<String>,
    /// Accept access tokens from this identity provider too.
    pub jwt: Option<JwtSettings>,
}

impl HttpServeSettings {
    /// This server's resource URI (RFC 8707), the audience of its tokens.
    pub fn resource(&self) -> String {
        self.resource
            .clone()
            .unwrap_or_else(|| format!("http://{}{MCP_PATH}", self.bind))
    }
}

/// The client a request was authenticated as; the auth layer puts it in the
/// request's extensions, where the MCP handler finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(pub String);

/// rmcp's session header.
const SESSION_HEADER: &str = "mcp-session-id";

struct Gate {
    clients: Arc<Clients>,
    tokens: Option<TokenValidator>,
    /// Session id → the client that opened it.
    sessions: Mutex<HashMap<String, String>>,
    /// The `WWW-Authenticate` parameters every refusal carries.
    challenge: String,
}

/// The router: `/mcp` behind the bearer-token check, and the metadata
/// document.
pub fn router(
    calls: Arc<CallService>,
    session: Session,
    clients: Arc<Clients>,
    settings: &HttpServeSettings,
) -> anyhow::Result<Router> {
    let resource = settings.resource();
    let metadata_url = metadata_url(&resource)?;
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    hosts.extend(settings.allowed_hosts.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(settings.allowed_origins.clone())
        .enforce_origin_validation()
        .with_max_request_body_bytes(settings.max_body_bytes);
    let service = StreamableHttpService::new(
        move || Ok(McpServer::new(calls.clone(), session.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let tokens = settings
        .jwt
        .clone()
        .map(|jwt| TokenValidator::new(jwt, &resource))
        .transpose()?;
    let mut metadata = json!({
        "resource": resource,
        "resource_name": "MCPist",
        "bearer_methods_supported": ["header"],
    });
    let mut challenge = format!("Bearer resource_metadata=\"{metadata_url}\"");
    if let Some(tokens) = &tokens {
        metadata["authorization_servers"] = json!([tokens.issuer()]);
        if !tokens.required_scopes().is_empty() {
            metadata["scopes_supported"] = json!(tokens.required_scopes());
            challenge.push_str(&format!(
                ", scope=\"{}\"",
                tokens.required_scopes().join(" ")
            ));
        }
    }
    HeaderValue::from_str(&challenge)
        .map_err(|_| anyhow::anyhow!("the resource URL {resource:?} cannot go in a header"))?;
    let gate = Arc::new(Gate {
        clients,
        tokens,
        sessions: Mutex::new(HashMap::new()),
        challenge,
    });
    let metadata = Json(metadata);
    let metadata = move || {
        let metadata = metadata.clone();
        async move { metadata }
    };
    let max_body = settings.max_body_bytes;
    Ok(Router::new()
        .nest_service(MCP_PATH, service)
        // Inside the bearer-token check: a caller without a key learns
        // nothing about what the server would parse.
        .layer(axum::middleware::from_fn(move |request, next| {
            screen_body(request, next, max_body)
        }))
        .layer(axum::middleware::from_fn_with_state(gate, authenticate))
        .route(METADATA_PATH, get(metadata.clone()))
        .route(&format!("{METADATA_PATH}{MCP_PATH}"), get(metadata)))
}

/// RFC 9728 §3.1: the well-known path goes between the resource's origin
/// and its path.
fn metadata_url(resource: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(resource)
        .map_err(|e| anyhow::anyhow!("the resource URL {resource:?} is not valid: {e}"))?;
    Ok(format!(
        "{}{METADATA_PATH}{}",
        url.origin().ascii_serialization(),
        url.path().trim_end_matches('/')
    ))
}

/// Serve until Ctrl-C (or SIGTERM).
pub async fn serve(
    calls: Arc<CallService>,
    session: Session,
    clients: Arc<Clients>,
    settings: &HttpServeSettings,
    console: Option<Arc<crate::web::Console>>,
) -> anyhow::Result<()> {
    raise_descriptor_limit();
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
    let bound = listener.local_addr()?;
    let settings = HttpServeSettings {
        bind: bound,
        ..settings.clone()
    };
    let mut app = router(calls, session, clients, &settings)?;
    // The console's routes are merged after `/mcp` got its bearer-token
    // layer, so that layer does not cover them: the console has its own
    // sessions, and an MCP key opens none of its pages.
    let _console_url = match console {
        Some(console) => {
            let url = crate::web::UrlFile::write(console.home(), &format!("http://{bound}"))?;
            app = app.merge(crate::web::router(console));
            tracing::info!(url = %format!("http://{bound}{}/", crate::web::PREFIX), "web console ready: `mcpist console link` prints a login link");
            Some(url)
        }
        None => None,
    };
    tracing::info!(url = %format!("http://{bound}{MCP_PATH}"), "MCP server ready on Streamable HTTP");
    serve_connections(listener, app, &settings).await;
    tracing::info!("MCP server over HTTP stopped");
    Ok(())
}

/// Accept and serve connections until Ctrl-C or SIGTERM, each bounded in
/// time and all bounded in number; then give open requests a few seconds.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    settings: &HttpServeSettings,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let slots = Arc::new(tokio::sync::Semaphore::new(settings.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(error) => {
                // Out of descriptors, most likely: wait rather than spin.
                tracing::warn!("cannot accept a connection: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(
                max = settings.max_connections,
                "closed a new connection: the most connections ([serve] max_connections) are open"
            );
            continue;
        };
        // A sequential client sends its next request only after reading the
        // answer: without TCP_NODELAY, Nagle's algorithm and delayed ACKs add
        // tens of milliseconds to every small response.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {error}");
        }
        // The header timeout runs from the moment hyper waits for a request
        // head: on a new connection and between requests on a kept-alive
        // one, so it bounds idle connections too.
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_timeout)
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!("connection ended: {error}");
            }
            drop(slot);
        });
    }
    // Streams (SSE) never end by themselves: wait a little, then go.
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
}

/// Raise the soft limit on open descriptors to the hard limit: the usual
/// soft limit of 1024 is what a crowd of idle connections exhausts first.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
            && limit.rlim_cur < limit.rlim_max
            && {
                let soft = limit.rlim_cur;
                limit.rlim_cur = limit.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 || {
                    limit.rlim_cur = soft;
                    false
                }
            }
    };
    tracing::debug!(raised, soft = limit.rlim_cur, "open descriptor limit");
}

pub(crate) async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM can be handled");
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Let a request through only with a registered client's key or a valid
/// access token.
async fn authenticate(State(gate): State<Arc<Gate>>, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        });
    let Some(presented) = presented else {
        return refuse(&gate, None, &no_credentials(&gate));
    };
    let client = match &gate.tokens {
        Some(tokens) if !presented.starts_with(KEY_PREFIX) => {
            match tokens.validate(presented).await {
                Ok(client) => client,
                Err(error) => {
                    tracing::warn!("refused an HTTP request's access token: {error}");
                    return match error.refusal() {
                        Refusal::Unavailable => server_error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            &format!("{error}; try again later"),
                        ),
                        refusal => refuse(&gate, Some(refusal), &error.to_string()),
                    };
                }
            }
        }
        _ => match gate.clients.authenticate(presented) {
            Ok(Some(name)) => name,
            Ok(None) => {
                tracing::warn!("refused an HTTP request with an unknown API key");
                return refuse(
                    &gate,
                    Some(Refusal::InvalidToken),
                    "the API key is not valid (revoked, or never issued): ask the owner for a key made with `mcpist client add NAME`",
                );
            }
            Err(error) => {
                tracing::error!("{error}");
                return server_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the server cannot read its client list; see its log",
                );
            }
        },
    };
    // A session is its opener's: to anyone else it does not exist.
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &session {
        match gate.session_owner(id) {
            Some(owner) if owner == client => {}
            Some(_) => {
                tracing::warn!(client = %client, "refused a request for another client's MCP session");
                return session_not_found();
            }
            None => return session_not_found(),
        }
    }
    let ends_session = request.method() == axum::http::Method::DELETE;
    request.extensions_mut().insert(ClientName(client.clone()));
    let response = next.run(request).await;
    match session {
        None => {
            if let Some(opened) = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                gate.sessions_map().insert(opened.to_owned(), client);
            }
        }
        Some(id) if ends_session && response.status().is_success() => {
            gate.sessions_map().remove(&id);
            // rmcp answers 202; the session is gone, with nothing to say.
            return StatusCode::NO_CONTENT.into_response();
        }
        Some(_) => {}
    }
    response
}

fn session_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "session not found: it ended, or was never opened; start a new one with initialize",
    )
        .into_response()
}

/// Answer a POST whose body is not one JSON-RPC message here, as JSON-RPC
/// says, rather than with rmcp's 415; pass everything else on unchanged.
async fn screen_body(request: Request, next: Next, max_body: usize) -> Response {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if request.method() != axum::http::Method::POST || !is_json {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, max_body).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {max_body} bytes, the most this server reads ([serve] max_body_kib)"),
        )
            .into_response();
    };
    if let Some(refusal) = body_refusal(&bytes) {
        return (StatusCode::BAD_REQUEST, Json(refusal)).into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// The JSON-RPC error for a body that is not one message: `-32700` when it
/// is not JSON, `-32600` for a batch.
fn body_refusal(body: &[u8]) -> Option<serde_json::Value> {
    let error = |code: i32, message: String| json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return Some(error(
            -32700,
            format!("Parse error: the body is not JSON ({e})"),
        ));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    (first == Some(&b'[')).then(|| {
        error(
            -32600,
            "Invalid Request: a JSON-RPC batch; MCP has no batches since 2025-06-18, send one message per request".to_owned(),
        )
    })
}

impl Gate {
    fn sessions_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn session_owner(&self, id: &str) -> Option<String> {
        self.sessions_map().get(id).cloned()
    }
}

fn no_credentials(gate: &Gate) -> String {
    let mut message = "this server needs a bearer token: send `Authorization: Bearer <API key>`; the owner issues keys with `mcpist client add NAME`".to_owned();
    if let Some(tokens) = &gate.tokens {
        message.push_str(&format!(
            ", or an access token from {} for this server",
            tokens.issuer()
        ));
    }
    message
}

/// 401 (no or a bad token) or 403 (a token without the scopes needed), with
/// the `WWW-Authenticate` header of RFC 6750 and RFC 9728.
fn refuse(gate: &Gate, refusal: Option<Refusal>, description: &str) -> Response {
    let (status, error) = match refusal {
        None => (StatusCode::UNAUTHORIZED, None),
        Some(Refusal::InsufficientScope) => (StatusCode::FORBIDDEN, Some("insufficient_scope")),
        Some(_) => (StatusCode::UNAUTHORIZED, Some("invalid_token")),
    };
    let mut challenge = gate.challenge.clone();
    if let Some(error) = error {
        challenge.push_str(&format!(", error=\"{error}\""));
    }
    let challenge = HeaderValue::from_str(&challenge).expect("checked when the router was made");
    (
        status,
        [(header::WWW_AUTHENTICATE, challenge)],
        Json(json!({ "error": error.unwrap_or("unauthorized"), "error_description": description })),
    )
        .into_response()
}

fn server_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
