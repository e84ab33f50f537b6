//! Talking to the Google Calendar API v3: the transport seam, paths and
//! queries, and turning Google's error bodies into messages that say what
//! to do.

use mcpist_plugin::ToolError;
pub use mcpist_plugin::web::Query;
use mcpist_plugin::web::{self, Response, Transport};
use serde_json::Value;

/// Where every request goes. The host may route it elsewhere (a test
/// upstream); that is invisible here.
pub const API: &str = "https://www.googleapis.com/calendar/v3";

/// The headers sent with every request. Never `Authorization`: the host adds
/// the account's token itself and refuses a module that sets one.
pub fn headers() -> [(&'static str, &'static str); 2] {
    [
        ("Accept", "application/json"),
        (
            "User-Agent",
            concat!("mcpist-google_calendar/", env!("CARGO_PKG_VERSION")),
        ),
    ]
}

/// What a request was about, so that an error can name it.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    CalendarList,
    /// A calendar by the id the caller gave.
    Calendar(&'a str),
    Event {
        calendar: &'a str,
        event: &'a str,
    },
    FreeBusy,
}

/// The API for one call: the transport and the account the host acts for
/// (its name only, for error messages; never its token).
pub struct Api<'a> {
    http: &'a mut dyn Transport,
    account: Option<&'a str>,
}

impl<'a> Api<'a> {
    pub fn new(http: &'a mut dyn Transport, account: Option<&'a str>) -> Api<'a> {
        Api { http, account }
    }

    pub fn get(&mut self, path: &str, subject: Subject<'_>) -> Result<Value, ToolError> {
        self.call("GET", path, None, subject)
    }

    pub fn post(
        &mut self,
        path: &str,
        body: &Value,
        subject: Subject<'_>,
    ) -> Result<Value, ToolError> {
        self.call("POST", path, Some(body), subject)
    }

    /// Send one request (`path` and query under [`API`], starting with `/`)
    /// and parse a 2xx JSON answer.
    fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        subject: Subject<'_>,
    ) -> Result<Value, ToolError> {
        let mut request = web::Request::new(method, format!("{API}{path}"));
        for (name, value) in headers() {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self.http.send(request)?;
        if !response.is_success() {
            return Err(error(&response, subject, self.account));
        }
        response.json()
    }
}

/// `/calendars/{id}`, the id percent-encoded as one segment: ids are email
/// addresses or things like `en.usa#holiday@group.v.calendar.google.com`,
/// whose `#` would otherwise end the path.
pub fn calendar_path(calendar: &str) -> String {
    format!("/calendars/{}", web::encode(calendar))
}

/// A calendar id argument (`what` names it), trimmed; `primary` when it
/// was left out.
pub fn calendar_id(what: &str, raw: Option<&str>) -> Result<String, ToolError> {
    let id = raw.map(str::trim).unwrap_or("primary");
    if id.is_empty() {
        return Err(ToolError::InvalidArguments(format!(
            "{what} is empty: give a calendar id from list_calendars, or \"primary\" for the account's own calendar"
        )));
    }
    Ok(id.to_owned())
}

/// A page token argument: opaque, but never empty.
pub fn page_token(raw: Option<&str>) -> Result<Option<String>, ToolError> {
    match raw.map(str::trim) {
        None => Ok(None),
        Some("") => Err(ToolError::InvalidArguments(
            "pageToken is empty: leave it out for the first page, or pass the nextPageToken of a previous answer".to_owned(),
        )),
        Some(token) => Ok(Some(token.to_owned())),
    }
}

/// What Google said, from its error body:
/// `{"error": {"code", "message", "errors": [{"domain", "reason", "message",
/// "location", "locationType"}], "status"}}`. Newer answers carry the reason
/// in `details[].reason` (google.rpc.ErrorInfo) instead of `errors`.
#[derive(Debug, Default, PartialEq)]
struct GoogleError {
    message: Option<String>,
    reason: Option<String>,
    location: Option<String>,
    status: Option<String>,
}

impl GoogleError {
    fn read(body: &[u8]) -> GoogleError {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return GoogleError::default();
        };
        let error = &value["error"];
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let first = &error["errors"][0];
        let reason = text(&first["reason"]).or_else(|| {
            error["details"]
                .as_array()?
                .iter()
                .find_map(|d| text(&d["reason"]))
        });
        GoogleError {
            message: text(&error["message"]).or_else(|| text(&first["message"])),
            reason,
            location: text(&first["location"]),
            status: text(&error["status"]),
        }
    }
}

/// Reasons Google gives when a quota or rate limit was hit.
const RATE_LIMITED: &[&str] = &[
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "quotaExceeded",
    "dailyLimitExceeded",
    "RATE_LIMIT_EXCEEDED",
];

/// Turn a non-2xx answer into a tool error that names Google's status,
/// reason and message, with what to do about the usual causes.
pub fn error(response: &Response, subject: Subject<'_>, account: Option<&str>) -> ToolError {
    let status = response.status;
    let google = GoogleError::read(&response.body);
    let message = google.message.clone().unwrap_or_else(|| {
        let text: String = response.text().chars().take(300).collect();
        if text.trim().is_empty() {
            "(no message)".to_owned()
        } else {
            text
        }
    });
    let mut out = format!("Google Calendar answered HTTP {status}");
    if let Some(reason) = &google.reason {
        out.push_str(&format!(" {reason}"));
    }
    // Where the problem is (a parameter such as timeMax) helps only with a
    // request Google found malformed.
    if let Some(location) = google.location.as_ref().filter(|_| status == 400) {
        out.push_str(&format!(" (in {location})"));
    }
    out.push_str(&format!(": {message}"));
    if let Some(advice) = advice(status, &google, response, subject, account) {
        out.push_str(if out.ends_with('.') { " " } else { ". " });
        out.push_str(&advice);
    }
    ToolError::Upstream(out)
}

fn advice(
    status: u16,
    google: &GoogleError,
    response: &Response,
    subject: Subject<'_>,
    account: Option<&str>,
) -> Option<String> {
    let reason = google.reason.as_deref().unwrap_or("");
    let name = account.unwrap_or("NAME");
    let which = account.map_or("this account".to_owned(), |a| {
        format!("the google account `{a}`")
    });
    let scope_missing = matches!(
        reason,
        "insufficientPermissions" | "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    ) || google
        .message
        .as_deref()
        .is_some_and(|m| m.contains("insufficient authentication scopes"));
    Some(match (status, reason) {
        (401, _) => format!(
            "Google refused the token stored for {which}: it has expired or been revoked, or it is not an OAuth token for Google. Store a valid one with `mcpist account add google {name}`."
        ),
        (403, _) if scope_missing => format!(
            "The token stored for {which} was granted without the Calendar scope this needs (https://www.googleapis.com/auth/calendar.readonly to read, https://www.googleapis.com/auth/calendar.events to create events): authorize again with it and store the new token with `mcpist account add google {name}`."
        ),
        (403 | 429, r) if status == 429 || RATE_LIMITED.contains(&r) => {
            match response.header("retry-after") {
                Some(after) => format!("Google's rate limit was reached: retry after {after} seconds."),
                None => "Google's rate limit was reached: retry in a minute.".to_owned(),
            }
        }
        (403, "requiredAccessLevel") => match subject {
            Subject::Calendar(id) | Subject::Event { calendar: id, .. } => format!(
                "The account may not change calendar {id:?}: list_calendars shows its accessRole, and writing needs writer or owner (\"primary\" is always the account's own)."
            ),
            _ => return None,
        },
        (403, "forbidden") => match subject {
            Subject::Calendar(id) | Subject::Event { calendar: id, .. } => format!(
                "The account's access to calendar {id:?} does not allow this: list_calendars shows its accessRole (freeBusyReader sees only busy times, through find_free_busy; reader cannot write)."
            ),
            _ => return None,
        },
        (404, _) | (_, "notFound") => match subject {
            Subject::Calendar(id) => format!(
                "No calendar {id:?} is visible to this account: list_calendars gives the ids it can use, and \"primary\" is its own calendar."
            ),
            Subject::Event { calendar, event } => format!(
                "No event {event:?} in calendar {calendar:?}: it may have been deleted or belong to another calendar; list_events gives the ids of a calendar's events."
            ),
            _ => return None,
        },
        (410, _) => "The event was deleted.".to_owned(),
        (400, "timeRangeEmpty") => {
            "timeMax must be later than timeMin (for an event: its end after its start; an all-day event ends on the day after its last day).".to_owned()
        }
        (s, _) if s >= 500 => "Google had a problem; retrying later may help.".to_owned(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Retry-After".into(), "12".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn message(e: ToolError) -> String {
        match e {
            ToolError::Upstream(m) => m,
            other => panic!("not an upstream error: {other:?}"),
        }
    }

    #[test]
    fn a_refused_token_names_the_account_and_the_fix() {
        let body = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.","errors":[{"message":"Invalid Credentials","domain":"global","reason":"authError","location":"Authorization","locationType":"header"}],"status":"UNAUTHENTICATED"}}"#;
        let m = message(error(
            &response(401, body),
            Subject::CalendarList,
            Some("work"),
        ));
        assert!(
            m.starts_with("Google Calendar answered HTTP 401 authError: Request had invalid authentication credentials."),
            "{m}"
        );
        assert!(
            m.contains("Google refused the token stored for the google account `work`"),
            "{m}"
        );
        assert!(m.ends_with("`mcpist account add google work`."), "{m}");
    }

    #[test]
    fn not_found_names_the_calendar_or_the_event() {
        let body = r#"{"error":{"errors":[{"domain":"global","reason":"notFound","message":"Not Found"}],"code":404,"message":"Not Found"}}"#;
        let m = message(error(
            &response(404, body),
            Subject::Calendar("team@example.com"),
            None,
        ));
        assert_eq!(
            m,
            "Google Calendar answered HTTP 404 notFound: Not Found. No calendar \"team@example.com\" is visible to this account: list_calendars gives the ids it can use, and \"primary\" is its own calendar."
        );
        let m = message(error(
            &response(404, body),
            Subject::Event {
                calendar: "primary",
                event: "abc",
            },
            None,
        ));
        assert!(
            m.contains("No event \"abc\" in calendar \"primary\""),
            "{m}"
        );
    }

    #[test]
    fn bad_requests_say_where_and_empty_ranges_say_how() {
        let body = r#"{"error":{"errors":[{"domain":"calendar","reason":"timeRangeEmpty","message":"The specified time range is empty.","locationType":"parameter","location":"timeMax"}],"code":400,"message":"The specified time range is empty."}}"#;
        let m = message(error(
            &response(400, body),
            Subject::Calendar("primary"),
            None,
        ));
        assert!(
            m.starts_with("Google Calendar answered HTTP 400 timeRangeEmpty (in timeMax): The specified time range is empty. timeMax must be later than timeMin"),
            "{m}"
        );
    }

    #[test]
    fn scopes_rate_limits_and_read_only_calendars_are_explained() {
        let scope = r#"{"error":{"code":403,"message":"Request had insufficient authentication scopes.","errors":[{"message":"Insufficient Permission","domain":"global","reason":"insufficientPermissions"}],"status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ACCESS_TOKEN_SCOPE_INSUFFICIENT","domain":"googleapis.com"}]}}"#;
        let m = message(error(&response(403, scope), Subject::FreeBusy, Some("me")));
        assert!(m.contains("without the Calendar scope"), "{m}");
        let limited = r#"{"error":{"errors":[{"domain":"usageLimits","reason":"rateLimitExceeded","message":"Rate Limit Exceeded"}],"code":403,"message":"Rate Limit Exceeded"}}"#;
        let m = message(error(&response(403, limited), Subject::FreeBusy, None));
        assert!(m.ends_with("retry after 12 seconds."), "{m}");
        let reader = r#"{"error":{"errors":[{"domain":"calendar","reason":"requiredAccessLevel","message":"You need to have writer access to this calendar."}],"code":403,"message":"You need to have writer access to this calendar."}}"#;
        let m = message(error(
            &response(403, reader),
            Subject::Calendar("en.usa#holiday@group.v.calendar.google.com"),
            None,
        ));
        assert!(
            m.contains("may not change calendar \"en.usa#holiday@group.v.calendar.google.com\""),
            "{m}"
        );
    }

    #[test]
    fn a_calendar_seen_only_as_free_busy_is_explained() {
        let body = r#"{"error":{"errors":[{"domain":"global","reason":"forbidden","message":"Forbidden"}],"code":403,"message":"Forbidden"}}"#;
        let m = message(error(
            &response(403, body),
            Subject::Calendar("boss@example.com"),
            None,
        ));
        assert!(
            m.starts_with("Google Calendar answered HTTP 403 forbidden: Forbidden. The account's access to calendar \"boss@example.com\" does not allow this"),
            "{m}"
        );
    }

    #[test]
    fn a_body_that_is_not_googles_is_quoted() {
        let m = message(error(
            &response(502, "<html>bad gateway</html>"),
            Subject::CalendarList,
            None,
        ));
        assert_eq!(
            m,
            "Google Calendar answered HTTP 502: <html>bad gateway</html>. Google had a problem; retrying later may help."
        );
    }

    #[test]
    fn calendar_ids_are_one_encoded_segment() {
        assert_eq!(
            calendar_path("en.usa#holiday@group.v.calendar.google.com"),
            "/calendars/en.usa%23holiday%40group.v.calendar.google.com"
        );
        assert_eq!(calendar_path("a/b"), "/calendars/a%2Fb");
        assert_eq!(calendar_id("calendarId", None).unwrap(), "primary");
        assert!(calendar_id("calendarId", Some("  ")).is_err());
    }
}
