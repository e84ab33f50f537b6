//! MCP over Streamable HTTP at `/mcp`, for clients that do not launch the
//! server themselves.
//!
//! rmcp's Streamable HTTP service speaks the protocol (sessions,
//! `MCP-Protocol-Version`, SSE) and checks `Host` (DNS rebinding), `Origin`
//! and the body size. In front of it, every request must carry an API key
//! the owner issued (`Authorization: Bearer mcpist_...`); without one the
//! answer is 401 with a `WWW-Authenticate` header pointing at this server's
//! Protected Resource Metadata (RFC 9728), as the MCP authorization spec
//! asks.

use std::net::SocketAddr;
use std::sync::Arc;

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
use crate::catalog::Catalog;
use crate::clients::Clients;

/// Where MCP is served.
pub const MCP_PATH: &str = "/mcp";
/// RFC 9728 metadata, for the resource at [`MCP_PATH`].
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// How the HTTP endpoint is exposed.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpServeSettings {
    pub bind: SocketAddr,
    /// Browser origins allowed to call (`https://app.example:443`); a
    /// request with any other `Origin` is refused with 403. Empty: every
    /// request that carries an `Origin` is refused.
    pub allowed_origins: Vec<String>,
    /// `Host` values accepted besides the loopback names, for a server
    /// reached by another name (behind a proxy, on a LAN).
    pub allowed_hosts: Vec<String>,
    pub max_body_bytes: usize,
}

/// The client a request was authenticated as; the auth layer puts it in the
/// request's extensions, where the MCP handler finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(pub String);

struct Gate {
    clients: Arc<Clients>,
    /// The `WWW-Authenticate` value of a 401.
    challenge: HeaderValue,
}

/// The router: `/mcp` behind the API-key check, and the metadata document.
pub fn router(
    catalog: Arc<Catalog>,
    session: Session,
    clients: Arc<Clients>,
    settings: &HttpServeSettings,
) -> Router {
    let base = format!("http://{}", settings.bind);
    let resource = format!("{base}{MCP_PATH}");
    let metadata_url = format!("{base}{METADATA_PATH}{MCP_PATH}");
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
        move || Ok(McpServer::new(catalog.clone(), session.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let gate = Arc::new(Gate {
        clients,
        challenge: HeaderValue::from_str(&format!("Bearer resource_metadata=\"{metadata_url}\""))
            .expect("the metadata URL is a valid header value"),
    });
    let metadata = Json(json!({
        "resource": resource,
        "resource_name": "MCPist",
        "bearer_methods_supported": ["header"],
    }));
    let metadata = move || {
        let metadata = metadata.clone();
        async move { metadata }
    };
    Router::new()
        .nest_service(MCP_PATH, service)
        .layer(axum::middleware::from_fn_with_state(gate, authenticate))
        .route(METADATA_PATH, get(metadata.clone()))
        .route(&format!("{METADATA_PATH}{MCP_PATH}"), get(metadata))
}

/// Serve until Ctrl-C (or SIGTERM).
pub async fn serve(
    catalog: Arc<Catalog>,
    session: Session,
    clients: Arc<Clients>,
    settings: &HttpServeSettings,
) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;

    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
    let bound = listener.local_addr()?;
    let settings = HttpServeSettings {
        bind: bound,
        ..settings.clone()
    };
    let app = router(catalog, session, clients, &settings);
    tracing::info!(url = %format!("http://{bound}{MCP_PATH}"), "MCP server ready on Streamable HTTP");
    // A sequential client sends its next request only after reading the
    // answer: without TCP_NODELAY, Nagle's algorithm and delayed ACKs add
    // tens of milliseconds to every small response.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {error}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    tracing::info!("MCP server over HTTP stopped");
    Ok(())
}

async fn shutdown() {
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

/// Let a request through only with a registered client's key.
async fn authenticate(State(gate): State<Arc<Gate>>, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        });
    let Some(key) = presented else {
        return unauthorized(&gate, None);
    };
    match gate.clients.authenticate(key) {
        Ok(Some(name)) => {
            request.extensions_mut().insert(ClientName(name));
            next.run(request).await
        }
        Ok(None) => {
            tracing::warn!("refused an HTTP request with an unknown API key");
            unauthorized(&gate, Some("invalid_token"))
        }
        Err(error) => {
            tracing::error!("{error}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "the server cannot read its client list; see its log"})),
            )
                .into_response()
        }
    }
}

fn unauthorized(gate: &Gate, error: Option<&str>) -> Response {
    let mut challenge = gate.challenge.clone();
    if let Some(error) = error {
        let value = format!(
            "{}, error=\"{error}\"",
            gate.challenge.to_str().unwrap_or("")
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            challenge = value;
        }
    }
    let message = match error {
        None => {
            "this server needs an API key: send `Authorization: Bearer <key>`; the owner issues one with `mcpist client add NAME`"
        }
        Some(_) => {
            "the API key is not valid (revoked, or never issued): ask the owner for a key made with `mcpist client add NAME`"
        }
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        Json(json!({ "error": "unauthorized", "error_description": message })),
    )
        .into_response()
}
