//! The tools, written against [`Api`] so that tests can answer for Google.
//!
//! Arguments use the Calendar API's own names (`calendarId`, `timeMin`,
//! `pageToken`, ...), as the other modules use their services' names: a
//! model that knows the API reads them without a glossary. Each arguments
//! type is also its tool's input schema (see `crate::declaration`): the host
//! checks those bounds before a call runs, and the code here checks only
//! what a schema cannot say (dates, their order, addresses).

use mcpist_plugin::ToolError;
use mcpist_plugin::web;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::api::{self, Api, Query, Subject};
use crate::render::{self, Detail};
use crate::rfc3339::{self, Date, DateTime, Instant, Offset};
use crate::slots::{self, Interval};

/// Google's largest page of calendar list entries.
pub const MAX_CALENDARS_PER_PAGE: u32 = 250;
/// Google's largest page of events.
pub const MAX_EVENTS_PER_PAGE: u32 = 2500;
/// Events per page when the caller does not say: enough for a busy week,
/// small enough to leave room in the model's context.
pub const DEFAULT_EVENTS_PER_PAGE: u32 = 50;
/// Google's limit on the calendars of one free/busy query
/// (`calendarExpansionMax`).
pub const MAX_FREE_BUSY_CALENDARS: usize = 50;
/// Attendees one new event may invite here; Google takes more, but a model
/// inviting hundreds of people at once is more likely a mistake.
pub const MAX_ATTENDEES: usize = 100;

/// A calendar id or a person's email address; "primary" is the account's own calendar.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct CalendarId(#[schemars(length(min = 1, max = 1024))] String);

/// An RFC 3339 date-time, parsed by the tool (the schema only bounds it).
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Stamp(#[schemars(length(min = 10, max = 40))] String);

/// An IANA zone name.
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Zone(
    #[schemars(
        length(max = 64),
        pattern(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")
    )]
    String,
);

/// A `nextPageToken` of a previous answer.
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PageToken(#[schemars(length(min = 1, max = 2048))] String);

fn zone(zone: &Option<Zone>) -> Option<&str> {
    zone.as_ref().map(|Zone(z)| z.trim())
}

fn page_token(token: &Option<PageToken>) -> Result<Option<String>, ToolError> {
    api::page_token(token.as_ref().map(|PageToken(t)| t.as_str()))
}

fn calendar(id: &Option<CalendarId>) -> Result<String, ToolError> {
    api::calendar_id("calendarId", id.as_ref().map(|CalendarId(c)| c.as_str()))
}

fn invalid(message: String) -> ToolError {
    ToolError::InvalidArguments(message)
}

fn next_page(list: &Value) -> Value {
    list.get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map_or(Value::Null, Value::from)
}

fn items(list: &Value) -> &[Value] {
    list.get("items")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

// ---------------------------------------------------------------- times

/// An instant argument (`timeMin`, `timeMax`): RFC 3339 with its offset.
/// Answers the text to send (`t`/`z` upper-cased, as Google expects), the
/// instant, and the offset it was written at.
fn instant_argument(name: &str, raw: &str) -> Result<(String, Instant, Offset), ToolError> {
    let text = raw.trim().to_ascii_uppercase();
    let example = "e.g. 2024-05-01T09:00:00+02:00, or 2024-05-01T07:00:00Z in UTC";
    let parsed = match rfc3339::parse_date_time(&text) {
        Ok(parsed) => parsed,
        Err(_) if rfc3339::parse_date(&text).is_ok() => {
            return Err(invalid(format!(
                "{name} {raw:?} is a date; give a date-time with a UTC offset, e.g. {text}T00:00:00Z for the start of that day in UTC (or {text}T00:00:00+02:00 at another offset)"
            )));
        }
        Err(why) => {
            return Err(invalid(format!(
                "{name} {raw:?} is not an RFC 3339 date-time: {why}; {example}"
            )));
        }
    };
    match (parsed.instant(), parsed.offset()) {
        (Some(instant), Some(offset)) => Ok((text, instant, offset)),
        _ => Err(invalid(format!(
            "{name} {raw:?} has no UTC offset, so it names no single instant: add one, e.g. {text}Z for UTC or {text}+02:00"
        ))),
    }
}

/// A `timeMin`..`timeMax` range, checked to be non-empty.
struct Range {
    min: String,
    max: String,
    interval: Interval,
    /// timeMin's offset: free slots are written at it.
    offset: Offset,
}

fn range(time_min: &str, time_max: &str) -> Result<Range, ToolError> {
    let (min, start, offset) = instant_argument("timeMin", time_min)?;
    let (max, end, _) = instant_argument("timeMax", time_max)?;
    if end <= start {
        return Err(invalid(format!(
            "timeMax ({max}) must be later than timeMin ({min}): the range is empty"
        )));
    }
    Ok(Range {
        min,
        max,
        interval: Interval { start, end },
        offset,
    })
}

// ---------------------------------------------------------------- list_calendars

fn hundred() -> u32 {
    100
}

fn default_events_per_page() -> u32 {
    DEFAULT_EVENTS_PER_PAGE
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListCalendarsArgs {
    /// Most calendars per page.
    #[serde(default = "hundred")]
    #[schemars(range(min = 1, max = MAX_CALENDARS_PER_PAGE))]
    max_results: u32,
    /// nextPageToken from the previous answer, to get the next page; keep the other arguments the same.
    page_token: Option<PageToken>,
}

pub fn list_calendars(api: &mut Api<'_>, args: ListCalendarsArgs) -> Result<Value, ToolError> {
    let path = Query::new("/users/me/calendarList".to_owned())
        .set("maxResults", args.max_results)
        .opt("pageToken", page_token(&args.page_token)?)
        .build();
    let list = api.get(&path, Subject::CalendarList)?;
    let calendars: Vec<Value> = items(&list).iter().map(render::calendar).collect();
    Ok(json!({"calendars": calendars, "nextPageToken": next_page(&list)}))
}

// ---------------------------------------------------------------- list_events

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListEventsArgs {
    /// The calendar's id from list_calendars: an email address, or one like en.usa#holiday@group.v.calendar.google.com. Default "primary", the account's own calendar.
    #[schemars(extend("default" = "primary"))]
    calendar_id: Option<CalendarId>,
    /// Start of the range: RFC 3339 with a UTC offset, e.g. 2024-05-01T00:00:00+02:00 or 2024-04-30T22:00:00Z.
    time_min: Stamp,
    /// End of the range (exclusive): RFC 3339 with a UTC offset, later than timeMin.
    time_max: Stamp,
    /// Only events whose summary, description, location or attendees match these words.
    #[schemars(length(max = 1000))]
    q: Option<String>,
    /// Most events per page.
    #[serde(default = "default_events_per_page")]
    #[schemars(range(min = 1, max = MAX_EVENTS_PER_PAGE))]
    max_results: u32,
    /// nextPageToken from the previous answer, to get the next page; keep the other arguments the same.
    page_token: Option<PageToken>,
    /// IANA zone name the answer's date-times are written in, e.g. Europe/Paris. Default: the calendar's own zone.
    time_zone: Option<Zone>,
}

pub fn list_events(api: &mut Api<'_>, args: ListEventsArgs) -> Result<Value, ToolError> {
    let calendar = calendar(&args.calendar_id)?;
    let range = range(&args.time_min.0, &args.time_max.0)?;
    let q = args.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let path = Query::new(format!("{}/events", api::calendar_path(&calendar)))
        .set("timeMin", &range.min)
        .set("timeMax", &range.max)
        // Occurrences of recurring events rather than their rules, in the
        // order they happen: what a model asking "what is on" wants.
        // (Google orders by start only for expanded events.)
        .set("singleEvents", "true")
        .set("orderBy", "startTime")
        .set("maxResults", args.max_results)
        .opt("q", q)
        .opt("pageToken", page_token(&args.page_token)?)
        .opt("timeZone", zone(&args.time_zone))
        .build();
    let list = api.get(&path, Subject::Calendar(&calendar))?;
    let events: Vec<Value> = items(&list)
        .iter()
        .map(|e| render::event(e, Detail::List))
        .collect();
    Ok(json!({
        "calendarId": calendar,
        "summary": list.get("summary").cloned().unwrap_or(Value::Null),
        "timeZone": list.get("timeZone").cloned().unwrap_or(Value::Null),
        "events": events,
        "nextPageToken": next_page(&list),
    }))
}

// ---------------------------------------------------------------- get_event

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetEventArgs {
    /// The calendar's id from list_calendars: an email address, or one like en.usa#holiday@group.v.calendar.google.com. Default "primary", the account's own calendar.
    #[schemars(extend("default" = "primary"))]
    calendar_id: Option<CalendarId>,
    /// The event's id, from list_events.
    #[schemars(length(min = 1, max = 1024))]
    event_id: String,
    /// IANA zone name the answer's date-times are written in. Default: the calendar's own zone.
    time_zone: Option<Zone>,
}

pub fn get_event(api: &mut Api<'_>, args: GetEventArgs) -> Result<Value, ToolError> {
    let calendar = calendar(&args.calendar_id)?;
    let event = args.event_id.trim();
    if event.is_empty() {
        return Err(invalid(
            "eventId is empty: give an event's id from list_events".to_owned(),
        ));
    }
    let path = Query::new(format!(
        "{}/events/{}",
        api::calendar_path(&calendar),
        web::encode(event)
    ))
    .opt("timeZone", zone(&args.time_zone))
    .build();
    let found = api.get(
        &path,
        Subject::Event {
            calendar: &calendar,
            event,
        },
    )?;
    Ok(render::event(&found, Detail::Full))
}

// ---------------------------------------------------------------- find_free_busy

fn primary() -> Vec<CalendarId> {
    vec![CalendarId("primary".to_owned())]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FreeBusyArgs {
    /// Start of the range: RFC 3339 with a UTC offset, e.g. 2024-05-01T00:00:00+02:00 or 2024-04-30T22:00:00Z.
    time_min: Stamp,
    /// End of the range (exclusive): RFC 3339 with a UTC offset, later than timeMin.
    time_max: Stamp,
    /// The calendars to combine: calendar ids or people's email addresses; "primary" is the account's own calendar.
    #[serde(default = "primary")]
    #[schemars(length(min = 1, max = MAX_FREE_BUSY_CALENDARS))]
    calendar_ids: Vec<CalendarId>,
    /// IANA zone name the busy intervals are written in, e.g. Europe/Paris. Default UTC.
    time_zone: Option<Zone>,
    /// Leave out free slots shorter than this many minutes, e.g. 30 to find room for a half-hour meeting.
    #[schemars(range(min = 1, max = 10080))]
    min_slot_minutes: Option<u32>,
}

/// One calendar's part of a free/busy answer.
struct Busy {
    id: String,
    /// As Google wrote them (in the answer's zone).
    intervals: Vec<(String, String)>,
    parsed: Vec<Interval>,
    errors: Vec<String>,
}

fn read_busy(id: &str, answer: &Value) -> Result<Busy, ToolError> {
    let mut busy = Busy {
        id: id.to_owned(),
        intervals: Vec::new(),
        parsed: Vec::new(),
        errors: Vec::new(),
    };
    for error in answer
        .get("errors")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        let reason = error.get("reason").and_then(Value::as_str).unwrap_or("");
        busy.errors.push(if reason.is_empty() {
            "unknown".to_owned()
        } else {
            reason.to_owned()
        });
    }
    for interval in answer
        .get("busy")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        let text = |key: &str| interval.get(key).and_then(Value::as_str).unwrap_or("");
        let (start, end) = (text("start"), text("end"));
        // A busy time that cannot be read must not turn into a free one.
        let instant = |t: &str| {
            rfc3339::parse_date_time(t)
                .ok()
                .and_then(|d| d.instant())
                .ok_or_else(|| {
                    ToolError::Upstream(format!(
                        "Google's free/busy answer for {id:?} has a busy interval that is not an RFC 3339 date-time: {t:?}"
                    ))
                })
        };
        busy.parsed.push(Interval {
            start: instant(start)?,
            end: instant(end)?,
        });
        busy.intervals.push((start.to_owned(), end.to_owned()));
    }
    Ok(busy)
}

pub fn find_free_busy(api: &mut Api<'_>, args: FreeBusyArgs) -> Result<Value, ToolError> {
    let range = range(&args.time_min.0, &args.time_max.0)?;
    let mut ids: Vec<String> = Vec::new();
    for CalendarId(raw) in &args.calendar_ids {
        let id = api::calendar_id("an id in calendarIds", Some(raw))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut body = json!({
        "timeMin": range.min,
        "timeMax": range.max,
        "items": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
    });
    if let Some(zone) = zone(&args.time_zone) {
        body["timeZone"] = zone.into();
    }
    let answer = api.post("/freeBusy", &body, Subject::FreeBusy)?;
    let empty = Map::new();
    let answered = answer
        .get("calendars")
        .and_then(Value::as_object)
        .unwrap_or(&empty);

    let mut calendars = Vec::new();
    let mut busy_everywhere = Vec::new();
    let mut unread: Vec<String> = Vec::new();
    let mut read = 0;
    for id in &ids {
        let Some(entry) = answered.get(id) else {
            unread.push(format!("{id} (not in Google's answer)"));
            continue;
        };
        let busy = read_busy(id, entry)?;
        if busy.errors.is_empty() {
            read += 1;
        } else {
            unread.push(format!("{id} ({})", busy.errors.join(", ")));
        }
        busy_everywhere.extend_from_slice(&busy.parsed);
        calendars.push(json!({
            "id": busy.id,
            "busy": busy.intervals.iter().map(|(s, e)| json!({"start": s, "end": e})).collect::<Vec<_>>(),
            "errors": busy.errors,
        }));
    }

    let free: Vec<Value> = if read == 0 {
        Vec::new()
    } else {
        slots::free(
            range.interval,
            &busy_everywhere,
            args.min_slot_minutes.unwrap_or(0),
        )
        .into_iter()
        .map(|slot| {
            json!({
                "start": slot.start.format(range.offset),
                "end": slot.end.format(range.offset),
                "minutes": slot.start.minutes_until(slot.end),
            })
        })
        .collect()
    };
    let mut out = json!({
        "timeMin": range.min,
        "timeMax": range.max,
        "calendars": calendars,
        "free": free,
    });
    if read == 0 {
        out["note"] = format!(
            "No calendar could be read, so no free slots are given: {}.",
            unread.join("; ")
        )
        .into();
    } else if !unread.is_empty() {
        out["note"] = format!(
            "The free slots leave out calendars Google could not read: {}. They may be busy then.",
            unread.join("; ")
        )
        .into();
    }
    Ok(out)
}

// ---------------------------------------------------------------- create_event

/// An event's start or end as given: Google's `EventDateTime`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("minProperties" = 1))]
pub struct When {
    /// For a timed event: RFC 3339, e.g. 2024-05-01T09:00:00+02:00. The UTC offset may be left out when timeZone is given.
    date_time: Option<Stamp>,
    /// For an all-day event: YYYY-MM-DD.
    #[schemars(pattern(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    date: Option<String>,
    /// IANA zone name, e.g. Europe/Paris: how Google shows the event, and the zone of a dateTime given without an offset.
    time_zone: Option<Zone>,
}

/// What a start or end was, for checking that the end comes after.
enum Point {
    Day(Date),
    At(Instant),
    /// A wall-clock reading in a named zone.
    Local(DateTime, String),
}

/// Check one of `start` / `end` and build Google's `EventDateTime` for it.
fn event_time(which: &str, when: &When) -> Result<(Value, Point), ToolError> {
    let zone = zone(&when.time_zone).filter(|z| !z.is_empty());
    let mut out = Map::new();
    let date_time = when.date_time.as_ref().map(|Stamp(s)| s.as_str());
    let point = match (date_time, when.date.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "{which} has both dateTime and date: give dateTime for a timed event or date for an all-day event"
            )));
        }
        (None, None) => {
            return Err(invalid(format!(
                "{which} needs dateTime (a timed event, e.g. 2024-05-01T09:00:00+02:00) or date (an all-day event, e.g. 2024-05-01)"
            )));
        }
        (Some(raw), None) => {
            let text = raw.trim().to_ascii_uppercase();
            let parsed = rfc3339::parse_date_time(&text).map_err(|why| {
                invalid(format!(
                    "{which}.dateTime {raw:?} is not an RFC 3339 date-time: {why}"
                ))
            })?;
            out.insert("dateTime".into(), text.clone().into());
            match (parsed.instant(), zone) {
                (Some(instant), _) => Point::At(instant),
                (None, Some(zone)) => Point::Local(parsed, zone.to_owned()),
                (None, None) => {
                    return Err(invalid(format!(
                        "{which}.dateTime {raw:?} has no UTC offset: add one (e.g. {text}+02:00) or give {which}.timeZone (e.g. Europe/Paris)"
                    )));
                }
            }
        }
        (None, Some(raw)) => {
            let date = rfc3339::parse_date(raw.trim())
                .map_err(|why| invalid(format!("{which}.date {raw:?} is not a date: {why}")))?;
            out.insert("date".into(), raw.trim().into());
            Point::Day(date)
        }
    };
    if let Some(zone) = zone {
        out.insert("timeZone".into(), zone.into());
    }
    Ok((Value::Object(out), point))
}

/// Refuse an end that does not come after the start, where that can be
/// told without a zone database; Google checks the rest.
fn check_order(start: &Point, end: &Point) -> Result<(), ToolError> {
    match (start, end) {
        (Point::Day(a), Point::Day(b)) if b <= a => Err(invalid(format!(
            "end.date ({b}) must be after start.date ({a}): an all-day event's end date is exclusive, so a one-day event on {a} ends on {}",
            a.next_day()
        ))),
        (Point::At(a), Point::At(b)) if b <= a => Err(invalid(
            "end must be later than start: the event would last no time".to_owned(),
        )),
        (Point::Local(a, za), Point::Local(b, zb)) if za == zb && b.cmp_local(a).is_le() => {
            Err(invalid(
                "end must be later than start: the event would last no time".to_owned(),
            ))
        }
        (Point::Day(_), Point::At(_) | Point::Local(..))
        | (Point::At(_) | Point::Local(..), Point::Day(_)) => Err(invalid(
            "start and end must both be dates (an all-day event) or both be date-times (a timed event)"
                .to_owned(),
        )),
        _ => Ok(()),
    }
}

#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, Default)]
#[serde(rename_all = "camelCase")]
pub enum SendUpdates {
    All,
    ExternalOnly,
    #[default]
    None,
}

impl SendUpdates {
    fn as_str(self) -> &'static str {
        match self {
            SendUpdates::All => "all",
            SendUpdates::ExternalOnly => "externalOnly",
            SendUpdates::None => "none",
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEventArgs {
    /// The calendar's id from list_calendars: an email address, or one like en.usa#holiday@group.v.calendar.google.com. Default "primary", the account's own calendar.
    #[schemars(extend("default" = "primary"))]
    calendar_id: Option<CalendarId>,
    /// The event's title.
    #[schemars(length(min = 1, max = 1024))]
    summary: String,
    /// Notes shown with the event; plain text or simple HTML.
    #[schemars(length(max = 8192))]
    description: Option<String>,
    /// A place or an address.
    #[schemars(length(max = 1024))]
    location: Option<String>,
    /// When the event starts: dateTime or date, not both.
    start: When,
    /// When the event ends (exclusive): dateTime or date, not both.
    end: When,
    /// Email addresses of the people to invite.
    #[schemars(
        length(max = MAX_ATTENDEES),
        inner(length(min = 3, max = 254), pattern(r"^[^@\s]+@[^@\s]+$"))
    )]
    attendees: Option<Vec<String>>,
    /// Whom Google emails the invitation: all attendees, externalOnly (those outside the organizer's Google Workspace domain), or none.
    #[serde(default)]
    send_updates: SendUpdates,
}

pub fn create_event(api: &mut Api<'_>, args: CreateEventArgs) -> Result<Value, ToolError> {
    let calendar = calendar(&args.calendar_id)?;
    let summary = args.summary.trim();
    if summary.is_empty() {
        return Err(invalid(
            "summary is empty: give the event a title".to_owned(),
        ));
    }
    let (start, start_point) = event_time("start", &args.start)?;
    let (end, end_point) = event_time("end", &args.end)?;
    check_order(&start_point, &end_point)?;

    let mut attendees: Vec<String> = Vec::new();
    for raw in args.attendees.unwrap_or_default() {
        let email = raw.trim().to_owned();
        let (local, domain) = email.split_once('@').unwrap_or(("", ""));
        if local.is_empty() || !domain.contains('.') || email.contains(char::is_whitespace) {
            return Err(invalid(format!("attendee {raw:?} is not an email address")));
        }
        if !attendees.iter().any(|a| a.eq_ignore_ascii_case(&email)) {
            attendees.push(email);
        }
    }

    let mut body = json!({"summary": summary, "start": start, "end": end});
    for (key, value) in [
        ("description", &args.description),
        ("location", &args.location),
    ] {
        if let Some(text) = value.as_deref().filter(|t| !t.trim().is_empty()) {
            body[key] = text.into();
        }
    }
    if !attendees.is_empty() {
        body["attendees"] = attendees.iter().map(|a| json!({"email": a})).collect();
    }
    let path = Query::new(format!("{}/events", api::calendar_path(&calendar)))
        .set("sendUpdates", args.send_updates.as_str())
        .build();
    let created = api.post(&path, &body, Subject::Calendar(&calendar))?;
    Ok(render::event(&created, Detail::Full))
}
