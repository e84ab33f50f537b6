//! Talking to the GitHub REST API: the transport seam, the headers GitHub
//! wants, error messages, and `Link` pagination.

use mcpist_plugin::ToolError;
pub use mcpist_plugin::web::Query;
use mcpist_plugin::web::{self, Response, Transport};
use serde_json::Value;

/// Where every request goes. The host may route it elsewhere (a test
/// upstream, an enterprise proxy); that is invisible here.
pub const API: &str = "https://api.github.com";

/// The API version this module is written against.
pub const API_VERSION: &str = "2022-11-28";

/// Upper bound on the pages one call follows, whatever the page sizes.
const MAX_PAGES: usize = 100;

/// The media type asked for: GitHub's versioned JSON, the one its REST API
/// has always accepted (and the one GitHub's recorded API fixtures, which
/// the tests replay, were made with).
pub const MEDIA_TYPE: &str = "application/vnd.github.v3+json";

/// How the host attaches the account's token: GitHub's `token` scheme,
/// accepted everywhere a Bearer token is, including GitHub Enterprise Server.
pub const AUTH_TEMPLATE: &str = "token {secret}";

/// The headers sent with every request. Never `Authorization`: the host adds
/// the account's token itself and refuses a module that sets one.
pub fn headers() -> [(&'static str, String); 3] {
    [
        ("Accept", MEDIA_TYPE.to_owned()),
        ("X-GitHub-Api-Version", API_VERSION.to_owned()),
        (
            "User-Agent",
            concat!("mcpist-github/", env!("CARGO_PKG_VERSION")).to_owned(),
        ),
    ]
}

/// Send one request to the API. `path` is the path and query under
/// [`API`], starting with `/`.
pub fn send(
    http: &mut dyn Transport,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Response, ToolError> {
    let mut request = web::Request::new(method, format!("{API}{path}"));
    for (name, value) in headers() {
        request = request.header(name, &value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    http.send(request)
}

/// One path segment (an owner, a repository name), checked and encoded.
pub fn segment(what: &str, value: &str) -> Result<String, ToolError> {
    let value = value.trim();
    if value.is_empty() || value == "." || value == ".." || value.contains('/') {
        return Err(ToolError::InvalidArguments(format!(
            "{what} {value:?} is not a valid GitHub name (give the owner and the repository separately, e.g. owner \"rust-lang\", repo \"cargo\")"
        )));
    }
    Ok(web::encode(value))
}

/// `/repos/{owner}/{repo}`, encoded.
pub fn repo_path(owner: &str, repo: &str) -> Result<String, ToolError> {
    Ok(format!(
        "/repos/{}/{}",
        segment("owner", owner)?,
        segment("repo", repo)?
    ))
}

/// A file path inside a repository: separators kept, empty segments
/// dropped, `.` and `..` refused.
pub fn file_path(path: &str) -> Result<String, ToolError> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(ToolError::InvalidArguments(format!(
            "path {path:?} may not contain . or .. segments; give the path from the repository root, e.g. docs/README.md"
        )));
    }
    Ok(web::encode_path(&parts.join("/")))
}

/// GET `path` and keep a 2xx answer. `what` names the thing asked for, for
/// the 404 message (e.g. "repository alice/notes").
pub fn get(http: &mut dyn Transport, path: &str, what: &str) -> Result<Response, ToolError> {
    check(send(http, "GET", path, None)?, what)
}

/// POST a JSON body to `path` and keep a 2xx answer.
pub fn post(
    http: &mut dyn Transport,
    path: &str,
    body: &Value,
    what: &str,
) -> Result<Response, ToolError> {
    check(send(http, "POST", path, Some(body))?, what)
}

/// PATCH `path` with a JSON body and keep a 2xx answer.
pub fn patch(
    http: &mut dyn Transport,
    path: &str,
    body: &Value,
    what: &str,
) -> Result<Response, ToolError> {
    check(send(http, "PATCH", path, Some(body))?, what)
}

/// Turn a non-2xx answer into a tool error the LLM can act on.
pub fn check(response: Response, what: &str) -> Result<Response, ToolError> {
    if response.is_success() {
        return Ok(response);
    }
    let status = response.status;
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    let message = body
        .as_ref()
        .and_then(|b| b.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let detail = match status {
        404 => format!(
            "{what} was not found, or this account has no access to it (GitHub answers 404 for private resources the token may not see){}",
            if message.is_empty() || message == "Not Found" {
                String::new()
            } else {
                format!(": {message}")
            }
        ),
        401 => format!(
            "{}. The token stored for this account was refused: it may have expired or been revoked.",
            or(&message, "Bad credentials")
        ),
        403 | 429 if is_rate_limited(&response, &message) => {
            let mut detail = format!("{} (rate limit reached", or(&message, "rate limited"));
            if let Some(after) = response.header("retry-after") {
                detail.push_str(&format!("; retry after {after} seconds"));
            } else if let Some(reset) = response.header("x-ratelimit-reset") {
                detail.push_str(&format!("; the limit resets at Unix time {reset}"));
            }
            detail.push(')');
            detail
        }
        422 => {
            let errors = body
                .as_ref()
                .and_then(|b| b.get("errors"))
                .and_then(Value::as_array)
                .map(|errors| errors.iter().map(describe_error).collect::<Vec<_>>())
                .unwrap_or_default();
            let message = or(&message, "Validation Failed");
            if errors.is_empty() {
                message.to_owned()
            } else {
                format!("{message}: {}", errors.join("; "))
            }
        }
        _ => return response.error_for_status("GitHub"),
    };
    Err(ToolError::Upstream(format!(
        "GitHub answered HTTP {status}: {detail}"
    )))
}

fn or<'a>(message: &'a str, fallback: &'a str) -> &'a str {
    if message.is_empty() {
        fallback
    } else {
        message
    }
}

fn is_rate_limited(response: &Response, message: &str) -> bool {
    response.header("x-ratelimit-remaining") == Some("0")
        || response.status == 429
        || message.to_ascii_lowercase().contains("rate limit")
}

/// One entry of a 422 answer's `errors` list, e.g.
/// `{"resource": "Issue", "code": "missing_field", "field": "title"}`.
fn describe_error(error: &Value) -> String {
    if let Some(text) = error.as_str() {
        return text.to_owned();
    }
    if let Some(message) = error.get("message").and_then(Value::as_str) {
        return message.to_owned();
    }
    let field = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or("?");
    match error.get("value") {
        Some(value) if !value.is_null() => format!(
            "{} {} is {} ({value})",
            field("resource"),
            field("field"),
            field("code")
        ),
        _ => format!(
            "{} {} is {}",
            field("resource"),
            field("field"),
            field("code")
        ),
    }
}

/// The path and query of a pagination link, to be sent to [`API`] again.
/// GitHub's links are absolute URLs on the API origin; only the path is
/// kept, so that a link can never send the request (and the token the host
/// attaches) anywhere else.
pub fn link_path(link: &str) -> Option<String> {
    let path = match link.split_once("://") {
        Some((_, rest)) => &rest[rest.find('/')?..],
        None => link,
    };
    path.starts_with('/').then(|| path.to_owned())
}

/// Items gathered from a paginated list.
pub struct Page {
    pub items: Vec<Value>,
    /// More items were available than were collected.
    pub more: bool,
}

/// GET `path` (a JSON array answer) and follow `rel="next"` links until
/// `limit` items are kept. `keep` maps a raw item to the kept form, or drops
/// it by returning `None`.
pub fn collect(
    http: &mut dyn Transport,
    path: String,
    limit: usize,
    what: &str,
    mut keep: impl FnMut(&Value) -> Option<Value>,
) -> Result<Page, ToolError> {
    let mut items = Vec::new();
    let mut more = false;
    let mut next = Some(path);
    let mut pages = 0;
    while let Some(path) = next.take() {
        pages += 1;
        let response = get(http, &path, what)?;
        let page: Value = response.json()?;
        let Some(page) = page.as_array() else {
            return Err(ToolError::Upstream(
                "GitHub answered with something other than a list".into(),
            ));
        };
        for item in page {
            if items.len() == limit {
                more = true;
                break;
            }
            if let Some(kept) = keep(item) {
                items.push(kept);
            }
        }
        // A client that asked hears each page arrive; `done` only grows
        // while items are kept, and the host drops a report that does not.
        mcpist_plugin::progress(
            items.len() as f64,
            Some(limit as f64),
            &format!("page {pages}: {} of up to {limit} items", items.len()),
        );
        let link = response.next_link().and_then(|l| link_path(&l));
        if items.len() >= limit {
            more |= link.is_some();
            break;
        }
        if page.is_empty() || pages >= MAX_PAGES {
            more |= link.is_some();
            break;
        }
        next = link;
    }
    Ok(Page { items, more })
}
