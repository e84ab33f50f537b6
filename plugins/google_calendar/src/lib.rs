//! `google_calendar`: the Google Calendar API v3 for one Google account:
//! its calendars, their events, free/busy times with the free slots left
//! between them, and new events.
//!
//! The host attaches the account's OAuth token (`Authorization: Bearer ...`,
//! service `google`) to requests to www.googleapis.com; this module never
//! sees it. The token needs a Calendar scope: `calendar.readonly` to read,
//! `calendar.events` (or `calendar`) to create events.
//!
//! www.googleapis.com serves many Google APIs under one host; this module
//! only sends requests under `/calendar/v3/`, and an owner who wants the
//! host to enforce that adds `--paths /calendar/v3/` to the host rule.

mod api;
mod render;
mod rfc3339;
mod slots;
mod tools;

#[cfg(test)]
mod tests;

use serde_json::{Value, json};

use mcpist_plugin::{
    Call, CredentialBinding, Declaration, Injection, ToolError, ToolFlags, ToolSpec,
};

use api::Api;

mcpist_plugin::module!(declaration);

const HOST: &str = "https://www.googleapis.com";

fn declaration() -> Declaration {
    let read = ToolFlags::READ_ONLY
        | ToolFlags::IDEMPOTENT
        | ToolFlags::OPEN_WORLD
        | ToolFlags::CONCURRENCY_SAFE;
    Declaration::new(
        "google_calendar",
        env!("CARGO_PKG_VERSION"),
        "Google Calendar: list the account's calendars and their events, read one event, find busy and free slots across calendars, and create events.",
    )
    .host(HOST)
    .credential(CredentialBinding {
        service: "google".into(),
        inject: Injection::Bearer,
        hosts: vec![HOST.into()],
    })
    .tool(
        ToolSpec::new(
            "list_calendars",
            "List the calendars in this Google account's calendar list: id, name (summary), whether it is the primary calendar, the account's accessRole (owner, writer, reader or freeBusyReader) and the calendar's zone. An id is what calendarId takes in list_events, get_event, find_free_busy and create_event; \"primary\" always means the account's own calendar.",
            read,
        )
        .output(json!({
                    "type": "object",
                    "properties": {
                        "calendars": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "string"},
                                    "summary": {"type": ["string", "null"], "description": "The calendar's name (the owner's own name for it, if set)."},
                                    "primary": {"type": "boolean"},
                                    "accessRole": {"type": ["string", "null"], "description": "owner, writer, reader or freeBusyReader: writing needs owner or writer."},
                                    "timeZone": {"type": ["string", "null"]}
                                },
                                "required": ["id", "summary", "primary", "accessRole"]
                            }
                        },
                        "nextPageToken": next_page_schema()
                    },
                    "required": ["calendars", "nextPageToken"]
                })),
        on_api(tools::list_calendars),
    )
    .tool(
        ToolSpec::new(
            "list_events",
            "List one calendar's events that overlap timeMin..timeMax, recurring events expanded into their occurrences, in order of start. q matches words in the summary, description, location and attendees. Each event has its id, status, summary, start, end, location, attendees with their responses, organizer and link; descriptions are cut to 500 characters and attendees to 20 (get_event has the whole event).",
            read,
        )
        .output(json!({
                    "type": "object",
                    "properties": {
                        "calendarId": {"type": "string"},
                        "summary": {"type": ["string", "null"], "description": "The calendar's name."},
                        "timeZone": {"type": ["string", "null"], "description": "The zone the date-times are written in."},
                        "events": {"type": "array", "items": event_schema(false)},
                        "nextPageToken": next_page_schema()
                    },
                    "required": ["calendarId", "events", "nextPageToken"]
                })),
        on_api(tools::list_events),
    )
    .tool(
        ToolSpec::new(
            "get_event",
            "One event of a calendar by its id (from list_events), in full: summary, start and end, location, the whole description, every attendee with their response, organizer, recurrence, Meet link and the event's link.",
            read,
        )
        .output(event_schema(true)),
        on_api(tools::get_event),
    )
    .tool(
        ToolSpec::new(
            "find_free_busy",
            "When calendars are busy between timeMin and timeMax, and the free slots left once all of them are combined (at least minSlotMinutes long, if given), written at timeMin's UTC offset. Calendars are the account's own or other people's (their email address) when they share free/busy information. Google reports a calendar it cannot read (e.g. notFound) in that calendar's errors rather than failing: such a calendar is left out of the free slots, and the note says so.",
            read,
        )
        .output(json!({
                    "type": "object",
                    "properties": {
                        "timeMin": {"type": "string"},
                        "timeMax": {"type": "string"},
                        "calendars": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "string"},
                                    "busy": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
                                            "required": ["start", "end"]
                                        }
                                    },
                                    "errors": {"type": "array", "items": {"type": "string"},
                                               "description": "Why Google could not read this calendar, e.g. notFound; empty when it could."}
                                },
                                "required": ["id", "busy", "errors"]
                            }
                        },
                        "free": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "start": {"type": "string"},
                                    "end": {"type": "string"},
                                    "minutes": {"type": "integer", "minimum": 0}
                                },
                                "required": ["start", "end", "minutes"]
                            }
                        },
                        "note": {"type": "string", "description": "Which calendars the free slots leave out, and why."}
                    },
                    "required": ["timeMin", "timeMax", "calendars", "free"]
                })),
        on_api(tools::find_free_busy),
    )
    .tool(
        ToolSpec::new(
            "create_event",
            "Create an event in a calendar the account can write to (accessRole owner or writer; default its primary calendar). start and end are each a dateTime (RFC 3339) or, for an all-day event, a date; an all-day event's end date is exclusive (a one-day event on 2024-05-01 ends on 2024-05-02). Attendees are invited by email address; sendUpdates decides whether Google emails them (default none).",
            ToolFlags::OPEN_WORLD,
        )
        .output(event_schema(true)),
        on_api(tools::create_event),
    )
}

/// A handler that talks to the Calendar API as the call's account.
fn on_api<A>(
    tool: fn(&mut Api<'_>, A) -> Result<Value, ToolError>,
) -> impl Fn(A, &mut Call<'_>) -> Result<Value, ToolError> {
    move |args, call| {
        let mut api = Api::new(call.http, call.context.account.as_deref());
        tool(&mut api, args)
    }
}

fn next_page_schema() -> Value {
    json!({"type": ["string", "null"], "description": "Pass as pageToken for more; null on the last page."})
}

/// An event as `render::event` shapes it.
fn event_schema(full: bool) -> Value {
    let text = || json!({"type": "string"});
    let mut properties = json!({
        "id": text(),
        "status": {"type": ["string", "null"], "description": "confirmed, tentative or cancelled."},
        "summary": {"type": ["string", "null"], "description": "The title; null when the event has none or its details are hidden from this account."},
        "start": {"type": ["string", "null"], "description": "RFC 3339 date-time, or a date (YYYY-MM-DD) for an all-day event."},
        "end": {"type": ["string", "null"], "description": "Exclusive: an all-day event ends on the day after its last day."},
        "allDay": {"type": "boolean"},
        "location": text(),
        "eventType": {"type": "string", "description": "Only when not a plain event: focusTime, outOfOffice, workingLocation, ..."},
        "description": text(),
        "attendees": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "email": {"type": ["string", "null"]},
                    "responseStatus": {"type": ["string", "null"], "description": "needsAction, declined, tentative or accepted."},
                    "self": {"type": "boolean", "description": "This is the account itself."},
                    "optional": {"type": "boolean"}
                },
                "required": ["email", "responseStatus"]
            }
        },
        "organizer": {"type": "string", "description": "The organizer's email address."},
        "htmlLink": {"type": "string", "description": "The event in Google Calendar's web interface."}
    });
    if full {
        for (key, description) in [
            (
                "recurringEventId",
                "For an occurrence of a recurring event: the id of the series.",
            ),
            ("created", "When the event was created (RFC 3339)."),
            ("updated", "When the event last changed (RFC 3339)."),
            ("hangoutLink", "The Google Meet link, if any."),
        ] {
            properties[key] = json!({"type": "string", "description": description});
        }
        properties["recurrence"] = json!({"type": "array", "items": text(),
            "description": "RRULE, EXRULE, RDATE and EXDATE lines of a recurring series."});
    } else {
        properties["descriptionTruncated"] = json!({"type": "boolean",
            "description": "The description was cut; get_event has all of it."});
        properties["attendeesNotShown"] = json!({"type": "integer", "minimum": 1,
            "description": "Attendees left out of this list; get_event has all of them."});
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": ["id", "status", "summary", "start", "end", "allDay"]
    })
}
