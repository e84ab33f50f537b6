//! Talking to the Notion REST API: the transport seam, the headers Notion
//! wants, ids, and error messages.

use mcpist_plugin::ToolError;
use mcpist_plugin::web::{self, Response, Transport};
use serde_json::Value;

/// Where every request goes. The host may route it elsewhere (a test
/// upstream); that is invisible here.
pub const API: &str = "https://api.notion.com/v1";

/// The API version this module is written against (sent as `Notion-Version`).
pub const NOTION_VERSION: &str = "2022-06-28";

/// Most requests one call makes. The host refuses more than 32 per call by
/// default; staying below keeps a long page from failing outright.
pub const MAX_REQUESTS: usize = 30;

/// The headers sent with every request. Never `Authorization`: the host adds
/// the account's token itself and refuses a module that sets one.
pub fn headers() -> [(&'static str, &'static str); 3] {
    [
        ("Notion-Version", NOTION_VERSION),
        ("Accept", "application/json"),
        (
            "User-Agent",
            concat!("mcpist-notion/", env!("CARGO_PKG_VERSION")),
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
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    http.send(request)
}

/// What a request was for, to make error messages useful.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hint<'a> {
    /// The title property a new database row's title was put in, when the
    /// caller did not choose it.
    pub default_title_property: Option<&'a str>,
}

/// Send a request and parse a 2xx JSON answer.
pub fn call(
    http: &mut dyn Transport,
    method: &str,
    path: &str,
    body: Option<&Value>,
    hint: Hint<'_>,
) -> Result<Value, ToolError> {
    let response = send(http, method, path, body)?;
    if !response.is_success() {
        return Err(error(&response, hint));
    }
    response.json()
}

pub fn get(http: &mut dyn Transport, path: &str) -> Result<Value, ToolError> {
    call(http, "GET", path, None, Hint::default())
}

pub fn post(http: &mut dyn Transport, path: &str, body: &Value) -> Result<Value, ToolError> {
    call(http, "POST", path, Some(body), Hint::default())
}

/// Turn a non-2xx answer into a tool error that names Notion's status, error
/// code and message, with advice for the usual causes.
pub fn error(response: &Response, hint: Hint<'_>) -> ToolError {
    let status = response.status;
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    let field = |name: &str| {
        body.as_ref()
            .and_then(|b| b.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = field("code");
    let message = field("message").unwrap_or_else(|| {
        let text: String = response.text().chars().take(300).collect();
        if text.trim().is_empty() {
            "(no message)".to_owned()
        } else {
            text
        }
    });
    let mut out = match &code {
        Some(code) => format!("Notion answered HTTP {status} {code}: {message}"),
        None => format!("Notion answered HTTP {status}: {message}"),
    };
    let advice = match code.as_deref() {
        Some("object_not_found") => Some(
            "Notion also answers this when the page or database exists but is not shared with the integration: in Notion, open it (or a parent page), choose ••• → Connections and add the integration. Check the id too (use the search tool to find it).".to_owned(),
        ),
        Some("unauthorized") => Some(
            "The token stored for this account was refused: it may have been revoked or mistyped; the owner should store a valid internal integration secret for the notion service.".to_owned(),
        ),
        Some("restricted_resource") => Some(
            "The integration lacks the capability this needs: in Notion's integration settings, enable reading and inserting content.".to_owned(),
        ),
        Some("rate_limited") => Some(match response.header("retry-after") {
            Some(after) => format!("Retry after {after} seconds."),
            None => "Retry in a few seconds.".to_owned(),
        }),
        Some("validation_error") if message.contains("is a database, not a page") => {
            Some("Use query_database to list a database's rows.".to_owned())
        }
        Some("validation_error") if message.contains("is a page, not a database") => {
            Some("Use get_page to read a page.".to_owned())
        }
        Some("validation_error") => hint.default_title_property.and_then(|name| {
            message.contains(name).then(|| {
                format!("The title was put in the database property {name:?}, the default; if the database's title column has another name, pass it as title_property.")
            })
        }),
        _ if status >= 500 => Some("Notion had a problem; retrying later may help.".to_owned()),
        _ => None,
    };
    if let Some(advice) = advice {
        out.push(' ');
        out.push_str(&advice);
    }
    ToolError::Upstream(out)
}

/// Read a page, database or block id given as 32 hexadecimal digits, with or
/// without dashes, or as a Notion URL ending in one. Answers the dashed,
/// lower-case form.
pub fn parse_id(what: &str, raw: &str) -> Result<String, ToolError> {
    let trimmed = raw.trim();
    let hex: String = if trimmed.contains('/') {
        // A URL such as https://www.notion.so/team/Roadmap-1429989fe8ac4effbc8f57f56486db54?v=...
        let path = trimmed.split(['?', '#']).next().unwrap_or("");
        let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        let digits: String = last.chars().filter(|c| *c != '-').collect();
        let n = digits.chars().count();
        if n >= 32 {
            digits.chars().skip(n - 32).collect()
        } else {
            digits
        }
    } else {
        trimmed.chars().filter(|c| *c != '-').collect()
    };
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ToolError::InvalidArguments(format!(
            "{what} {raw:?} is not a Notion id: give 32 hexadecimal digits, with or without dashes (e.g. 1429989f-e8ac-4eff-bc8f-57f56486db54), or the Notion URL of the page or database; the search tool finds ids by title"
        )));
    }
    let h = hex.to_ascii_lowercase();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// A pagination cursor, checked loosely (Notion's are ids) and encoded.
pub fn cursor(raw: &str) -> Result<String, ToolError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 200 {
        return Err(ToolError::InvalidArguments(
            "start_cursor must be the next_cursor of a previous answer".to_owned(),
        ));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_every_usual_form() {
        let want = "1429989f-e8ac-4eff-bc8f-57f56486db54";
        for raw in [
            "1429989fe8ac4effbc8f57f56486db54",
            "1429989F-E8AC-4EFF-BC8F-57F56486DB54",
            " 1429989f-e8ac-4eff-bc8f-57f56486db54 ",
            "https://www.notion.so/acme/Roadmap-1429989fe8ac4effbc8f57f56486db54?v=aaaabbbbccccddddeeeeffff00001111",
            "https://www.notion.so/1429989fe8ac4effbc8f57f56486db54",
            "notion.so/Roadmap-1429989fe8ac4effbc8f57f56486db54/",
        ] {
            assert_eq!(parse_id("page_id", raw).unwrap(), want, "{raw}");
        }
        for raw in [
            "",
            "abc",
            "1429989fe8ac4effbc8f57f56486db5",
            "1429989fe8ac4effbc8f57f56486db54a",
            "../../users",
            "g429989fe8ac4effbc8f57f56486db54",
        ] {
            assert!(
                matches!(
                    parse_id("page_id", raw),
                    Err(ToolError::InvalidArguments(_))
                ),
                "{raw}"
            );
        }
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Retry-After".into(), "7".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn errors_name_status_code_and_message() {
        let e = error(
            &response(
                404,
                r#"{"object":"error","status":404,"code":"object_not_found","message":"Could not find page with ID: x."}"#,
            ),
            Hint::default(),
        );
        let ToolError::Upstream(m) = e else { panic!() };
        assert!(
            m.starts_with(
                "Notion answered HTTP 404 object_not_found: Could not find page with ID: x."
            ),
            "{m}"
        );
        assert!(m.contains("Connections"));
        let ToolError::Upstream(m) = error(
            &response(
                429,
                r#"{"object":"error","status":429,"code":"rate_limited","message":"slow down"}"#,
            ),
            Hint::default(),
        ) else {
            panic!()
        };
        assert!(m.contains("Retry after 7 seconds"), "{m}");
        let ToolError::Upstream(m) =
            error(&response(502, "<html>bad gateway</html>"), Hint::default())
        else {
            panic!()
        };
        assert!(
            m.starts_with("Notion answered HTTP 502: <html>bad gateway</html>"),
            "{m}"
        );
        let hint = Hint {
            default_title_property: Some("Name"),
        };
        let ToolError::Upstream(m) = error(
            &response(
                400,
                r#"{"object":"error","status":400,"code":"validation_error","message":"Name is not a property that exists."}"#,
            ),
            hint,
        ) else {
            panic!()
        };
        assert!(m.contains("title_property"), "{m}");
    }
}
