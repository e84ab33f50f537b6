//! Tool tests against a scripted Google Calendar API.

use mcpist_plugin::web::ScriptedApi;
use mcpist_plugin::{Call, CallContext, CallOutput, ToolError, ToolFlags};
use serde_json::{Value, json};

use crate::api;

/// The scripted API the tools are tested against.
type Fake = ScriptedApi;

fn fake(script: impl FnMut(&str, &str, Option<&Value>) -> (u16, Value) + 'static) -> Fake {
    ScriptedApi::new(api::API, script)
}

/// A Google that must not be asked: the arguments are refused first.
fn unreachable() -> Fake {
    fake(|method, path, _| panic!("no request expected, got {method} {path}"))
}

/// What the host's `call` does for `account`, over the scripted API.
fn dispatch(
    http: &mut Fake,
    tool: &str,
    args: &str,
    account: Option<&str>,
) -> Result<CallOutput, ToolError> {
    let context = CallContext {
        account: account.map(str::to_owned),
    };
    let mut call = Call {
        context: &context,
        http,
    };
    crate::declaration().run(tool, args, &mut call)
}

fn run(http: &mut Fake, tool: &str, args: Value) -> Result<Value, ToolError> {
    dispatch(http, tool, &args.to_string(), Some("work")).map(|out: CallOutput| {
        serde_json::from_str(out.structured.as_deref().expect("structured")).unwrap()
    })
}

fn invalid(http: &mut Fake, tool: &str, args: Value) -> String {
    match run(http, tool, args) {
        Err(ToolError::InvalidArguments(m)) => m,
        other => panic!("expected invalid arguments, got {other:?}"),
    }
}

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"error": {"errors": [{"domain": "global", "reason": "notFound", "message": "Not Found"}], "code": 404, "message": "Not Found"}}),
    )
}

const HOLIDAYS: &str = "en.usa#holiday@group.v.calendar.google.com";

#[test]
fn describe_is_deterministic_and_binds_the_token_to_googleapis() {
    let a = crate::declaration().describe();
    let b = crate::declaration().describe();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(a.name, "google_calendar");
    assert_eq!(a.hosts, vec!["https://www.googleapis.com"]);
    assert_eq!(a.credentials.len(), 1);
    assert_eq!(a.credentials[0].service, "google");
    assert!(matches!(
        a.credentials[0].inject,
        mcpist_plugin::Injection::Bearer
    ));
    let names: Vec<&str> = a.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "list_calendars",
            "list_events",
            "get_event",
            "find_free_busy",
            "create_event"
        ]
    );
    for tool in &a.tools {
        let input: Value = serde_json::from_str(&tool.input_schema).unwrap();
        assert_eq!(input["type"], "object", "{}", tool.name);
        let _: Value = serde_json::from_str(tool.output_schema.as_deref().unwrap()).unwrap();
        let writes = tool.name == "create_event";
        assert_eq!(
            tool.flags.contains(ToolFlags::READ_ONLY),
            !writes,
            "{}",
            tool.name
        );
        assert!(
            !tool.flags.contains(ToolFlags::DESTRUCTIVE),
            "{}",
            tool.name
        );
        assert!(tool.flags.contains(ToolFlags::OPEN_WORLD), "{}", tool.name);
    }
}

#[test]
fn list_calendars_pages_and_trims_entries() {
    let mut http = fake(|method, path, _| {
        assert_eq!(
            (method, path),
            (
                "GET",
                "/users/me/calendarList?maxResults=2&pageToken=tok%2Fen%3D"
            )
        );
        (
            200,
            json!({"kind": "calendar#calendarList", "etag": "\"p33c\"", "nextPageToken": "next2", "items": [
                {"kind": "calendar#calendarListEntry", "id": "ann@example.com", "summary": "ann@example.com", "timeZone": "Europe/Paris",
                 "colorId": "14", "backgroundColor": "#9fe1e7", "selected": true, "accessRole": "owner", "primary": true,
                 "defaultReminders": [{"method": "popup", "minutes": 10}]},
                {"kind": "calendar#calendarListEntry", "id": HOLIDAYS, "summary": "Holidays in United States",
                 "timeZone": "America/New_York", "accessRole": "reader"}
            ]}),
        )
    });
    let out = run(
        &mut http,
        "list_calendars",
        json!({"maxResults": 2, "pageToken": "tok/en="}),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"calendars": [
            {"id": "ann@example.com", "summary": "ann@example.com", "primary": true, "accessRole": "owner", "timeZone": "Europe/Paris"},
            {"id": HOLIDAYS, "summary": "Holidays in United States", "primary": false, "accessRole": "reader", "timeZone": "America/New_York"}
        ], "nextPageToken": "next2"})
    );
}

#[test]
fn list_events_expands_recurrences_in_order_and_encodes_the_calendar() {
    let mut http = fake(|_, path, _| {
        assert_eq!(
            path,
            "/calendars/en.usa%23holiday%40group.v.calendar.google.com/events?timeMin=2024-05-01T00%3A00%3A00%2B02%3A00&timeMax=2024-05-08T00%3A00%3A00Z&singleEvents=true&orderBy=startTime&maxResults=2500&q=stand%20up&timeZone=Europe%2FParis"
        );
        (
            200,
            json!({"kind": "calendar#events", "summary": "Holidays in United States", "timeZone": "Europe/Paris",
                   "accessRole": "reader", "items": [
                {"id": "e1", "status": "confirmed", "summary": "Stand up", "start": {"dateTime": "2024-05-01T09:30:00+02:00"},
                 "end": {"dateTime": "2024-05-01T09:45:00+02:00"}, "organizer": {"email": "ann@example.com"},
                 "htmlLink": "https://www.google.com/calendar/event?eid=ZTE"}
            ]}),
        )
    });
    let out = run(
        &mut http,
        "list_events",
        json!({"calendarId": HOLIDAYS, "timeMin": "2024-05-01t00:00:00+02:00", "timeMax": "2024-05-08T00:00:00z",
               "q": " stand up ", "maxResults": 2500, "timeZone": "Europe/Paris"}),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"calendarId": HOLIDAYS, "summary": "Holidays in United States", "timeZone": "Europe/Paris",
               "events": [{"id": "e1", "status": "confirmed", "summary": "Stand up", "start": "2024-05-01T09:30:00+02:00",
                           "end": "2024-05-01T09:45:00+02:00", "allDay": false, "organizer": "ann@example.com",
                           "htmlLink": "https://www.google.com/calendar/event?eid=ZTE"}],
               "nextPageToken": null})
    );
}

#[test]
fn list_events_refuses_ranges_google_would_refuse_without_saying_why() {
    let mut http = unreachable();
    let m = invalid(
        &mut http,
        "list_events",
        json!({"timeMin": "2024-05-02T00:00:00Z", "timeMax": "2024-05-02T02:00:00+02:00"}),
    );
    assert_eq!(
        m,
        "timeMax (2024-05-02T02:00:00+02:00) must be later than timeMin (2024-05-02T00:00:00Z): the range is empty"
    );
    let m = invalid(
        &mut http,
        "list_events",
        json!({"timeMin": "2024-05-02T09:00:00", "timeMax": "2024-05-03T00:00:00Z"}),
    );
    assert!(
        m.starts_with("timeMin \"2024-05-02T09:00:00\" has no UTC offset"),
        "{m}"
    );
    let m = invalid(
        &mut http,
        "list_events",
        json!({"timeMin": "2024-05-02", "timeMax": "2024-05-03T00:00:00Z"}),
    );
    assert!(
        m.contains("is a date; give a date-time with a UTC offset, e.g. 2024-05-02T00:00:00Z"),
        "{m}"
    );
    let m = invalid(
        &mut http,
        "list_events",
        json!({"timeMin": "2024-05-02T00:00:00Z", "timeMax": "May 3rd 2024"}),
    );
    assert!(
        m.starts_with("timeMax \"May 3rd 2024\" is not an RFC 3339 date-time"),
        "{m}"
    );
    let m = invalid(
        &mut http,
        "list_events",
        json!({"calendarId": " ", "timeMin": "2024-05-02T00:00:00Z", "timeMax": "2024-05-03T00:00:00Z"}),
    );
    assert!(m.starts_with("calendarId is empty"), "{m}");
}

#[test]
fn get_event_shows_the_whole_event_and_names_what_was_not_found() {
    let mut http = fake(|_, path, _| match path {
        "/calendars/primary/events/abc_20240501T073000Z" => (
            200,
            json!({"id": "abc_20240501T073000Z", "status": "confirmed", "summary": "Standup",
                   "description": "d".repeat(900), "recurringEventId": "abc",
                   "start": {"dateTime": "2024-05-01T09:30:00+02:00", "timeZone": "Europe/Paris"},
                   "end": {"dateTime": "2024-05-01T09:45:00+02:00", "timeZone": "Europe/Paris"},
                   "attendees": [{"email": "ann@example.com", "responseStatus": "accepted", "self": true, "organizer": true}]}),
        ),
        _ => not_found(),
    });
    let out = run(
        &mut http,
        "get_event",
        json!({"eventId": "abc_20240501T073000Z"}),
    )
    .unwrap();
    assert_eq!(out["description"].as_str().unwrap().len(), 900);
    assert_eq!(out["recurringEventId"], "abc");
    assert_eq!(
        out["attendees"],
        json!([{"email": "ann@example.com", "responseStatus": "accepted", "self": true}])
    );
    let Err(ToolError::Upstream(m)) = run(
        &mut http,
        "get_event",
        json!({"calendarId": "bob@example.com", "eventId": "nope"}),
    ) else {
        panic!()
    };
    assert!(
        m.contains("No event \"nope\" in calendar \"bob@example.com\""),
        "{m}"
    );
    assert_eq!(http.sent[1].1, "/calendars/bob%40example.com/events/nope");
}

#[test]
fn free_busy_combines_calendars_and_reports_those_google_could_not_read() {
    let mut http = fake(|method, path, body| {
        assert_eq!((method, path), ("POST", "/freeBusy"));
        assert_eq!(
            body.unwrap(),
            &json!({"timeMin": "2024-05-01T09:00:00+02:00", "timeMax": "2024-05-01T17:00:00+02:00",
                    "timeZone": "Europe/Paris",
                    "items": [{"id": "primary"}, {"id": "bob@example.com"}, {"id": "gone@example.com"}]})
        );
        (
            200,
            json!({"kind": "calendar#freeBusy", "timeMin": "2024-05-01T07:00:00.000Z", "timeMax": "2024-05-01T15:00:00.000Z",
            "calendars": {
                "primary": {"busy": [
                    {"start": "2024-05-01T09:30:00+02:00", "end": "2024-05-01T10:00:00+02:00"},
                    {"start": "2024-05-01T12:00:00+02:00", "end": "2024-05-01T13:00:00+02:00"}]},
                "bob@example.com": {"busy": [
                    {"start": "2024-05-01T09:45:00+02:00", "end": "2024-05-01T10:30:00+02:00"},
                    {"start": "2024-05-01T16:40:00+02:00", "end": "2024-05-01T18:00:00+02:00"}]},
                "gone@example.com": {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
            }}),
        )
    });
    let out = run(
        &mut http,
        "find_free_busy",
        json!({"timeMin": "2024-05-01T09:00:00+02:00", "timeMax": "2024-05-01T17:00:00+02:00", "timeZone": "Europe/Paris",
               "calendarIds": ["primary", "bob@example.com", "gone@example.com", "primary"], "minSlotMinutes": 30}),
    )
    .unwrap();
    // Busy somewhere: 09:30-10:30 (two calendars overlapping), 12:00-13:00,
    // 16:40-17:00 (cut at timeMax); 09:00-09:30 is just long enough.
    assert_eq!(
        out["free"],
        json!([
            {"start": "2024-05-01T09:00:00+02:00", "end": "2024-05-01T09:30:00+02:00", "minutes": 30},
            {"start": "2024-05-01T10:30:00+02:00", "end": "2024-05-01T12:00:00+02:00", "minutes": 90},
            {"start": "2024-05-01T13:00:00+02:00", "end": "2024-05-01T16:40:00+02:00", "minutes": 220}
        ])
    );
    let ids: Vec<&str> = out["calendars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["primary", "bob@example.com", "gone@example.com"]);
    assert_eq!(out["calendars"][2]["errors"], json!(["notFound"]));
    assert!(
        out["note"]
            .as_str()
            .unwrap()
            .contains("gone@example.com (notFound)")
    );
}

#[test]
fn free_slots_are_written_at_time_min_offset_and_skip_nothing_unasked() {
    let mut http = fake(|_, _, _| {
        (
            200,
            json!({"calendars": {
                "primary": {"busy": [{"start": "2024-05-01T07:30:00Z", "end": "2024-05-01T08:00:00Z"}]},
                "gone@example.com": {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
            }}),
        )
    });
    let out = run(
        &mut http,
        "find_free_busy",
        json!({"timeMin": "2024-05-01T09:00:00+02:00", "timeMax": "2024-05-01T11:00:00+02:00",
               "calendarIds": ["primary", "gone@example.com"]}),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({
            "timeMin": "2024-05-01T09:00:00+02:00", "timeMax": "2024-05-01T11:00:00+02:00",
            "calendars": [
                {"id": "primary", "busy": [{"start": "2024-05-01T07:30:00Z", "end": "2024-05-01T08:00:00Z"}], "errors": []},
                {"id": "gone@example.com", "busy": [], "errors": ["notFound"]}
            ],
            "free": [
                {"start": "2024-05-01T09:00:00+02:00", "end": "2024-05-01T09:30:00+02:00", "minutes": 30},
                {"start": "2024-05-01T10:00:00+02:00", "end": "2024-05-01T11:00:00+02:00", "minutes": 60}
            ],
            "note": "The free slots leave out calendars Google could not read: gone@example.com (notFound). They may be busy then."
        })
    );
}

#[test]
fn no_free_slots_are_claimed_when_no_calendar_could_be_read() {
    let mut http = fake(|_, _, _| {
        (
            200,
            json!({"calendars": {"x@example.com": {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}}}),
        )
    });
    let out = run(
        &mut http,
        "find_free_busy",
        json!({"timeMin": "2024-05-01T09:00:00Z", "timeMax": "2024-05-01T11:00:00Z", "calendarIds": ["x@example.com"]}),
    )
    .unwrap();
    assert_eq!(out["free"], json!([]));
    assert_eq!(
        out["note"],
        "No calendar could be read, so no free slots are given: x@example.com (notFound)."
    );
    // A busy interval Google wrote in a way that cannot be read fails the
    // call rather than becoming free time.
    let mut http = fake(|_, _, _| {
        (
            200,
            json!({"calendars": {"primary": {"busy": [{"start": "soon", "end": "2024-05-01T10:00:00Z"}]}}}),
        )
    });
    let Err(ToolError::Upstream(m)) = run(
        &mut http,
        "find_free_busy",
        json!({"timeMin": "2024-05-01T09:00:00Z", "timeMax": "2024-05-01T11:00:00Z"}),
    ) else {
        panic!()
    };
    assert!(m.contains("not an RFC 3339 date-time: \"soon\""), "{m}");
}

#[test]
fn create_event_sends_googles_shapes_and_no_emails_by_default() {
    let mut http = fake(|method, path, body| {
        let body = body.unwrap().clone();
        assert_eq!(method, "POST");
        match path {
            "/calendars/primary/events?sendUpdates=none" => {
                assert_eq!(
                    body,
                    json!({"summary": "Planning", "location": "Room 4",
                           "start": {"dateTime": "2024-05-02T10:00:00", "timeZone": "Europe/Paris"},
                           "end": {"dateTime": "2024-05-02T11:00:00", "timeZone": "Europe/Paris"},
                           "attendees": [{"email": "bob@example.com"}, {"email": "cy@example.org"}]})
                );
            }
            "/calendars/team%40example.com/events?sendUpdates=all" => {
                assert_eq!(
                    body,
                    json!({"summary": "Offsite", "start": {"date": "2024-07-01"}, "end": {"date": "2024-07-03"}})
                );
            }
            other => panic!("unexpected {other}"),
        }
        let mut event = body.clone();
        event["id"] = "new1".into();
        event["status"] = "confirmed".into();
        event["htmlLink"] = "https://www.google.com/calendar/event?eid=bmV3MQ".into();
        event["organizer"] = json!({"email": "ann@example.com", "self": true});
        if let Some(list) = event["attendees"].as_array_mut() {
            for a in list {
                a["responseStatus"] = "needsAction".into();
            }
        }
        (200, event)
    });
    let out = run(
        &mut http,
        "create_event",
        json!({"summary": " Planning ", "location": "Room 4", "description": "  ",
               "start": {"dateTime": "2024-05-02T10:00:00", "timeZone": "Europe/Paris"},
               "end": {"dateTime": "2024-05-02T11:00:00", "timeZone": "Europe/Paris"},
               "attendees": ["bob@example.com", "cy@example.org", "BOB@example.com"]}),
    )
    .unwrap();
    assert_eq!(out["id"], "new1");
    assert_eq!(out["start"], "2024-05-02T10:00:00");
    assert_eq!(
        out["attendees"],
        json!([{"email": "bob@example.com", "responseStatus": "needsAction"}, {"email": "cy@example.org", "responseStatus": "needsAction"}])
    );
    let out = run(
        &mut http,
        "create_event",
        json!({"calendarId": "team@example.com", "summary": "Offsite", "sendUpdates": "all",
               "start": {"date": "2024-07-01"}, "end": {"date": "2024-07-03"}}),
    )
    .unwrap();
    assert_eq!(out["allDay"], true);
}

#[test]
fn create_event_checks_start_and_end_before_asking_google() {
    let mut http = unreachable();
    for (start, end, why) in [
        (
            json!({"date": "2024-05-01"}),
            json!({"date": "2024-05-01"}),
            "end.date (2024-05-01) must be after start.date (2024-05-01): an all-day event's end date is exclusive, so a one-day event on 2024-05-01 ends on 2024-05-02",
        ),
        (
            json!({"dateTime": "2024-05-01T10:00:00+02:00"}),
            json!({"dateTime": "2024-05-01T08:00:00Z"}),
            "end must be later than start",
        ),
        (
            json!({"dateTime": "2024-05-01T10:00:00", "timeZone": "Europe/Paris"}),
            json!({"dateTime": "2024-05-01T09:00:00", "timeZone": "Europe/Paris"}),
            "end must be later than start",
        ),
        (
            json!({"dateTime": "2024-05-01T10:00:00"}),
            json!({"dateTime": "2024-05-01T11:00:00Z"}),
            "start.dateTime \"2024-05-01T10:00:00\" has no UTC offset: add one (e.g. 2024-05-01T10:00:00+02:00) or give start.timeZone",
        ),
        (
            json!({"date": "2024-05-01"}),
            json!({"dateTime": "2024-05-01T11:00:00Z"}),
            "start and end must both be dates",
        ),
        (
            json!({"date": "2024-05-01", "dateTime": "2024-05-01T11:00:00Z"}),
            json!({"date": "2024-05-02"}),
            "start has both dateTime and date",
        ),
        (
            json!({"timeZone": "Europe/Paris"}),
            json!({"date": "2024-05-02"}),
            "start needs dateTime",
        ),
        (
            json!({"date": "2024-02-30"}),
            json!({"date": "2024-03-02"}),
            "start.date \"2024-02-30\" is not a date: 2024-02 has no day 30",
        ),
    ] {
        let m = invalid(
            &mut http,
            "create_event",
            json!({"summary": "x", "start": start, "end": end}),
        );
        assert!(m.starts_with(why), "{m}");
    }
    let m = invalid(
        &mut http,
        "create_event",
        json!({"summary": "x", "start": {"date": "2024-05-01"}, "end": {"date": "2024-05-02"}, "attendees": ["bob at example.com"]}),
    );
    assert_eq!(m, "attendee \"bob at example.com\" is not an email address");
}

#[test]
fn a_refused_token_is_reported_with_the_account_to_mend() {
    let mut http = fake(|_, _, _| {
        (
            401,
            json!({"error": {"code": 401, "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                             "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError", "location": "Authorization", "locationType": "header"}],
                             "status": "UNAUTHENTICATED"}}),
        )
    });
    let Err(ToolError::Upstream(m)) = run(&mut http, "list_calendars", json!({})) else {
        panic!()
    };
    assert!(
        m.starts_with("Google Calendar answered HTTP 401 authError"),
        "{m}"
    );
    assert!(
        m.contains("Google refused the token stored for the google account `work`"),
        "{m}"
    );
    assert!(m.contains("`mcpist account add google work`"), "{m}");
}

#[test]
fn unknown_tools_are_named() {
    let mut http = unreachable();
    assert!(matches!(
        dispatch(&mut http, "delete_everything", "{}", None),
        Err(ToolError::UnknownTool(m)) if m.contains("delete_everything")
    ));
}
