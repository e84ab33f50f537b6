//! The owner's web console: modules and their approval, accounts, clients
//! and the audit log, in a browser.
//!
//! It is served alone by `mcpist console`, or under `/console` beside `/mcp`
//! by `mcpist serve --http`; either way it lives under [`PREFIX`]. Every
//! action calls the same library operations as the command line
//! (`registry::approve`, `Broker::add`, `Clients::add`, ...), so the two
//! cannot disagree.
//!
//! Who gets in: only a browser that opened a one-time login link
//! ([`session`]). MCP API keys and access tokens open nothing here, and the
//! console's cookie (scoped to [`PREFIX`]) authorizes nothing at `/mcp`.
//! Every request must name a loopback host (or one the owner allowed), so a
//! DNS-rebinding page cannot reach it; every state-changing request must
//! carry the session's CSRF token and come from this origin. Pages are
//! rendered on the server with escaping templates, scripts only from
//! [`PREFIX`]`/assets` (a strict Content-Security-Policy), never framed.

mod pages;
pub mod session;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::broker::Broker;
use crate::clients::Clients;
use crate::config::Config;
use crate::exchanger::connect::SignIn;
use crate::runtime::Runtime;
use session::{LoginLinks, Session, Sessions};

/// Where the console's pages are.
pub const PREFIX: &str = "/console";

/// The session cookie's name on plain-http loopback. Behind TLS it is
/// [`SECURE_COOKIE`]; never `__Host-`, which would need `Path=/` and so
/// send the cookie to `/mcp` too.
const COOKIE: &str = "mcpist_console";
/// The session cookie's name when the console is served behind TLS.
const SECURE_COOKIE: &str = "__Secure-mcpist_console";

/// Largest form accepted (a token is at most 64 KiB).
const MAX_FORM_BYTES: usize = 96 * 1024;

/// What every page of the console is served with.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's state: the configuration it acts on and what it shares
/// with a server it runs beside.
pub struct Console {
    config: Config,
    runtime: Arc<Runtime>,
    broker: Arc<Broker>,
    clients: Clients,
    links: LoginLinks,
    sessions: Sessions,
    /// `Host` values accepted besides the loopback names.
    allowed_hosts: Vec<String>,
    /// Sign-ins started from the accounts page, by their `state`.
    sign_ins: Mutex<Vec<PendingSignIn>>,
}

/// An OAuth sign-in waiting for the provider to send the browser back.
struct PendingSignIn {
    service: String,
    name: String,
    make_default: bool,
    sign_in: SignIn,
    started: std::time::Instant,
}

impl Console {
    /// A console acting on `config`, scanning modules with `runtime` and
    /// reaching accounts through `broker` (a server's own, when it runs
    /// beside one).
    pub fn new(config: &Config, runtime: Arc<Runtime>, broker: Arc<Broker>) -> Console {
        Console {
            runtime,
            broker,
            clients: Clients::new(&config.serve.clients_file),
            links: LoginLinks::new(&config.home),
            sessions: Sessions::new(config.console.idle_timeout),
            allowed_hosts: config.serve.allowed_hosts.clone(),
            sign_ins: Mutex::new(Vec::new()),
            config: config.clone(),
        }
    }

    /// The session cookie's name.
    fn cookie_name(&self) -> &'static str {
        if self.config.console.behind_tls {
            SECURE_COOKIE
        } else {
            COOKIE
        }
    }

    /// `Set-Cookie` for the session `value` (empty: end it).
    fn set_cookie(&self, value: &str) -> HeaderValue {
        let mut cookie = format!(
            "{}={value}; Path={PREFIX}; HttpOnly; SameSite=Strict",
            self.cookie_name()
        );
        if self.config.console.behind_tls {
            cookie.push_str("; Secure");
        }
        if value.is_empty() {
            cookie.push_str("; Max-Age=0");
        }
        HeaderValue::from_str(&cookie).expect("a base64url cookie is a valid header")
    }

    /// The data folder it acts on.
    pub fn home(&self) -> &std::path::Path {
        &self.config.home
    }

    /// A one-time login link to this console at `base` (`http://HOST:PORT`).
    pub fn login_link(&self, base: &str) -> std::io::Result<String> {
        login_link(&self.links, base)
    }
}

/// A one-time login link to the console at `base` (`http://HOST:PORT`),
/// issued in `links`.
pub fn login_link(links: &LoginLinks, base: &str) -> std::io::Result<String> {
    let token = links.issue()?;
    Ok(format!("{base}{PREFIX}/login?token={}", token.as_str()))
}

/// The console's routes, all under [`PREFIX`], each answer carrying the
/// security headers.
pub fn router(console: Arc<Console>) -> Router {
    let pages = pages::routes()
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            check_host,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(console);
    // `/console` is the nested router's `/`; `/console/` is routed here.
    Router::new()
        .nest(PREFIX, pages)
        .route(&format!("{PREFIX}/"), axum::routing::get(to_modules))
}

async fn to_modules() -> Response {
    see_other(&format!("{PREFIX}/modules"))
}

/// Serve the console alone on `bind` until Ctrl-C or SIGTERM; `ready` gets
/// the address actually bound.
pub async fn serve(
    console: Arc<Console>,
    bind: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
    let bound = listener.local_addr()?;
    let home = console.config.home.clone();
    let app = Router::new()
        .merge(router(console))
        .route("/", axum::routing::get(to_modules));
    let _url = UrlFile::write(&home, &format!("http://{bound}"))?;
    ready(bound);
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::mcp::http::shutdown())
        .await?;
    Ok(())
}

/// `$MCPIST_HOME/console/url` while a console runs: where `mcpist console
/// link` points its links. Removed when dropped.
pub struct UrlFile(std::path::PathBuf);

impl UrlFile {
    /// Record that a console answers at `base` (`http://HOST:PORT`).
    pub fn write(home: &std::path::Path, base: &str) -> std::io::Result<UrlFile> {
        let path = session::url_file(home);
        if let Some(dir) = path.parent() {
            crate::atomic_file::create_private_dir(dir)?;
        }
        crate::atomic_file::write_atomic(&path, base.as_bytes())?;
        Ok(UrlFile(path))
    }
}

impl Drop for UrlFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Refuse a request whose `Host` is not this machine's loopback (or a name
/// the owner allowed): a page on another site that rebinds its name to
/// 127.0.0.1 sends its own name.
async fn check_host(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_name)
        .unwrap_or_default();
    let allowed = matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]" | "::1")
        || console.allowed_hosts.contains(&host);
    if !allowed {
        tracing::warn!(host, "refused a console request for another host name");
        return pages::refusal(
            StatusCode::FORBIDDEN,
            "This console answers only at this machine's loopback address.",
        );
    }
    next.run(request).await
}

/// `HOST` of `HOST:PORT` (keeping an IPv6 literal's brackets).
fn host_name(authority: &str) -> String {
    let authority = authority.trim();
    match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => authority[..i].to_ascii_lowercase(),
        _ => authority.to_ascii_lowercase(),
    }
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A signed-in owner: extracting it refuses requests without a session.
pub(crate) struct Owner {
    session: Session,
    /// `http://HOST:PORT` as the browser addressed this server.
    origin: String,
}

impl FromRequestParts<Arc<Console>> for Owner {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Owner, Response> {
        Owner::from_headers(console, &parts.headers).ok_or_else(|| {
            pages::refusal(
                StatusCode::UNAUTHORIZED,
                "You are not signed in to this console (or your session ended). Run `mcpist console link` and open the link it prints.",
            )
        })
    }
}

impl Owner {
    /// The owner whose session cookie `headers` carry, if it is open.
    fn from_headers(console: &Console, headers: &HeaderMap) -> Option<Owner> {
        let session = cookie(headers, console.cookie_name())
            .and_then(|value| console.sessions.find(&value))?;
        let scheme = if console.config.console.behind_tls {
            "https"
        } else {
            "http"
        };
        Some(Owner {
            session,
            origin: origin_of(headers, scheme),
        })
    }

    /// Refuse a state-changing request that does not carry this session's
    /// CSRF token or that comes from another origin.
    fn check_form(&self, headers: &HeaderMap, csrf: &str) -> Result<(), FormRefused> {
        if !same_origin(headers, &self.origin) {
            tracing::warn!("refused a console form posted from another origin");
            return Err(FormRefused::OtherOrigin);
        }
        if !session::same_secret(csrf, &self.session.csrf) {
            tracing::warn!("refused a console form without this session's CSRF token");
            return Err(FormRefused::StaleCsrf);
        }
        Ok(())
    }
}

/// A form posted by the signed-in owner from the console's own page: the
/// extractor refuses one without a session, from another origin, without
/// the session's CSRF token, or that is not a form of `T`'s fields.
pub(crate) struct Posted<T> {
    owner: Owner,
    form: T,
}

/// A form's fields and the CSRF token every form carries.
#[derive(serde::Deserialize)]
struct Signed<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

impl<T> axum::extract::FromRequest<Arc<Console>> for Posted<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request(request: Request, console: &Arc<Console>) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let owner = Owner::from_request_parts(&mut parts, console).await?;
        let headers = parts.headers.clone();
        let request = Request::from_parts(parts, body);
        let axum::Form(signed) = axum::Form::<Signed<T>>::from_request(request, console)
            .await
            .map_err(|rejection| {
                pages::refusal(
                    rejection.status(),
                    &format!(
                        "This form could not be read ({}), so nothing was changed.",
                        rejection.body_text()
                    ),
                )
            })?;
        owner
            .check_form(&headers, &signed.csrf)
            .map_err(IntoResponse::into_response)?;
        Ok(Posted {
            owner,
            form: signed.fields,
        })
    }
}

/// Why a form was not acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormRefused {
    /// Posted by a page of another origin (or by something not a browser).
    OtherOrigin,
    /// Without this session's CSRF token.
    StaleCsrf,
}

impl IntoResponse for FormRefused {
    fn into_response(self) -> Response {
        pages::refusal(
            StatusCode::FORBIDDEN,
            match self {
                FormRefused::OtherOrigin => {
                    "This form was not sent from the console's own page, so nothing was changed."
                }
                FormRefused::StaleCsrf => {
                    "This form is stale (it came from an earlier session or another page), so nothing was changed. Reload the page and try again."
                }
            },
        )
    }
}

/// The session cookie's value, if the request carries one.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(given, _)| *given == name)
        .map(|(_, value)| value.to_owned())
}

/// `SCHEME://HOST` from the request's `Host` header.
fn origin_of(headers: &HeaderMap, scheme: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    format!("{scheme}://{host}")
}

/// Whether a state-changing request comes from this origin. A browser sends
/// `Origin` with every POST; under `Referrer-Policy: no-referrer` a
/// same-origin form post says `Origin: null`, which is accepted only when
/// Fetch Metadata says the request is same-origin. No `Origin` at all is a
/// client that is not a browser, and is refused.
fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let same_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == "same-origin");
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some("null") => {
            headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("same-origin")
        }
        Some(given) => given.eq_ignore_ascii_case(origin) && same_site,
        None => false,
    }
}

/// A 303 to `location`.
fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn only_forms_from_this_origin_are_taken() {
        let here = "http://127.0.0.1:8771";
        assert!(same_origin(&headers(&[("origin", here)]), here));
        assert!(same_origin(
            &headers(&[("origin", here), ("sec-fetch-site", "same-origin")]),
            here
        ));
        assert!(!same_origin(
            &headers(&[("origin", "http://evil.example")]),
            here
        ));
        assert!(!same_origin(
            &headers(&[("origin", "http://127.0.0.1:9999")]),
            here
        ));
        assert!(!same_origin(
            &headers(&[("origin", here), ("sec-fetch-site", "cross-site")]),
            here
        ));
        assert!(
            !same_origin(&headers(&[]), here),
            "no Origin: not a browser form"
        );
        assert!(!same_origin(&headers(&[("origin", "null")]), here));
        assert!(same_origin(
            &headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]),
            here
        ));
    }

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("127.0.0.1:8771"), "127.0.0.1");
        assert_eq!(host_name("LocalHost"), "localhost");
        assert_eq!(host_name("[::1]:8771"), "[::1]");
        assert_eq!(host_name("[::1]"), "[::1]");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let map = headers(&[("cookie", "a=1; mcpist_console=xyz; b=2")]);
        assert_eq!(cookie(&map, COOKIE).as_deref(), Some("xyz"));
        let other = headers(&[("cookie", "mcpist_consolex=1")]);
        assert_eq!(cookie(&other, COOKIE), None);
    }
}
