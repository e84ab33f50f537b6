//! Outbound HTTP through the host, with a small builder on top of the raw
//! `http.send` import.
//!
//! The host decides whether a request may leave (the module's approved hosts)
//! and adds the owner's credential itself, so a module never sets
//! `Authorization` for a credentialed host; the host refuses such a request.
//!
//! ```ignore
//! let repos: serde_json::Value = web::Request::get("https://api.example.com/items?page=1")
//!     .header("Accept", "application/json")
//!     .send()?
//!     .error_for_status("example")?
//!     .json()?;
//! ```

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ToolError;
use crate::http;

/// Where a module's requests go. In a module it is [`Host`]; a module's
/// native tests substitute a scripted API or a local server, so the same
/// code runs against both.
pub trait Transport {
    fn send(&mut self, request: Request) -> Result<Response, ToolError>;
}

/// The host's `http.send`: the only way out of the sandbox.
pub struct Host;

impl Transport for Host {
    fn send(&mut self, request: Request) -> Result<Response, ToolError> {
        request.send()
    }
}

/// A request being built.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    pub fn new(method: &str, url: impl Into<String>) -> Request {
        Request {
            method: method.to_owned(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(url: impl Into<String>) -> Request {
        Request::new("GET", url)
    }

    pub fn post(url: impl Into<String>) -> Request {
        Request::new("POST", url)
    }

    pub fn patch(url: impl Into<String>) -> Request {
        Request::new("PATCH", url)
    }

    pub fn delete(url: impl Into<String>) -> Request {
        Request::new("DELETE", url)
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body, with `Content-Type: application/json; charset=utf-8`.
    pub fn json(mut self, body: &Value) -> Request {
        self.body = Some(body.to_string().into_bytes());
        self.header("Content-Type", "application/json; charset=utf-8")
    }

    pub fn body(mut self, body: Vec<u8>) -> Request {
        self.body = Some(body);
        self
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub fn body_bytes(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// Send through the host. A refusal by the host's policy and a transport
    /// failure both become a tool error whose message says what happened.
    pub fn send(self) -> Result<Response, ToolError> {
        let request = http::Request {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
        };
        match http::send(&request) {
            Ok(response) => Ok(Response {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            Err(http::Error::Denied(message)) => Err(ToolError::Failed(format!(
                "the host refused the request: {message}"
            ))),
            Err(http::Error::Failed(message)) => Err(ToolError::Upstream(message)),
        }
    }
}

/// A response, body fully read (the host caps its size).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ToolError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ToolError::Upstream(format!(
                "the service answered with a body that is not the expected JSON ({e})"
            ))
        })
    }

    /// Keep a 2xx response; turn anything else into an upstream error that
    /// names the service, the status and the service's own message.
    pub fn error_for_status(self, service: &str) -> Result<Response, ToolError> {
        if self.is_success() {
            return Ok(self);
        }
        let detail = serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| {
                let text = self.text();
                text.chars().take(300).collect()
            });
        Err(ToolError::Upstream(format!(
            "{service} answered HTTP {}: {detail}",
            self.status
        )))
    }

    /// The `rel="next"` target of an RFC 8288 `Link` header, as used for
    /// pagination (GitHub and many other APIs).
    pub fn next_link(&self) -> Option<String> {
        next_link(self.header("link")?)
    }
}

/// The `rel="next"` URL of a `Link` header value.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_owned())
    })
}

/// Percent-encode a string for use as one path segment or query value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A path with a query string built from the parameters that are set.
pub struct Query {
    path: String,
    params: Vec<(&'static str, String)>,
}

impl Query {
    /// `path`, without a query yet.
    pub fn new(path: String) -> Query {
        Query {
            path,
            params: Vec::new(),
        }
    }

    /// Add `name=value`.
    pub fn set(mut self, name: &'static str, value: impl ToString) -> Query {
        self.params.push((name, value.to_string()));
        self
    }

    /// Add `name=value` if there is a value.
    pub fn opt(self, name: &'static str, value: Option<impl ToString>) -> Query {
        match value {
            Some(value) => self.set(name, value),
            None => self,
        }
    }

    /// The path with its query, every value percent-encoded.
    pub fn build(self) -> String {
        if self.params.is_empty() {
            return self.path;
        }
        let query: Vec<String> = self
            .params
            .iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect();
        format!("{}?{}", self.path, query.join("&"))
    }
}

/// Percent-encode a path that may contain `/` separators, keeping them.
pub fn encode_path(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// What a scripted API answers: a status and a JSON body, given the
/// method, the path below the API's base URL and the JSON body sent.
#[cfg(feature = "testing")]
type Script = Box<dyn FnMut(&str, &str, Option<&Value>) -> (u16, Value)>;

/// A scripted JSON API for a module's native tests: every request must go
/// below `base` and carry no `Authorization` (the host attaches
/// credentials), and is recorded in [`ScriptedApi::sent`]. With the
/// `testing` feature only (a dev-dependency), so that it never changes a
/// module's build.
#[cfg(feature = "testing")]
pub struct ScriptedApi {
    base: &'static str,
    script: Script,
    /// Every request: method, path below the base, JSON body.
    pub sent: Vec<(String, String, Option<Value>)>,
}

#[cfg(feature = "testing")]
impl ScriptedApi {
    /// An API at `base` answering with `script`.
    pub fn new(
        base: &'static str,
        script: impl FnMut(&str, &str, Option<&Value>) -> (u16, Value) + 'static,
    ) -> ScriptedApi {
        ScriptedApi {
            base,
            script: Box::new(script),
            sent: Vec::new(),
        }
    }
}

#[cfg(feature = "testing")]
impl Transport for ScriptedApi {
    fn send(&mut self, request: Request) -> Result<Response, ToolError> {
        let method = request.method();
        let path = request
            .url()
            .strip_prefix(self.base)
            .unwrap_or_else(|| panic!("only {} is called, not {}", self.base, request.url()));
        assert!(
            !request
                .headers()
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("authorization")),
            "the host, not the module, authorizes requests"
        );
        let body: Option<Value> = request
            .body_bytes()
            .map(|b| serde_json::from_slice(b).expect("JSON bodies"));
        self.sent.push((method.into(), path.into(), body.clone()));
        let (status, body) = (self.script)(method, path, body.as_ref());
        Ok(Response {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/json; charset=UTF-8".into(),
            )],
            body: body.to_string().into_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        let link = r#"<https://api.github.com/user/repos?page=2>; rel="next", <https://api.github.com/user/repos?page=5>; rel="last""#;
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://api.github.com/user/repos?page=2")
        );
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="prev""#), None);
    }

    #[test]
    fn a_query_holds_only_the_parameters_that_are_set() {
        let path = Query::new("/items".into())
            .set("q", "a&b c")
            .opt("page", None::<u32>)
            .opt("per_page", Some(50))
            .build();
        assert_eq!(path, "/items?q=a%26b%20c&per_page=50");
        assert_eq!(Query::new("/items".into()).build(), "/items");
    }

    #[test]
    fn encodes_reserved_characters() {
        assert_eq!(encode("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(encode_path("docs/read me.md"), "docs/read%20me.md");
    }
}
