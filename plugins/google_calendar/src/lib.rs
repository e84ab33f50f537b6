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

use mcpist_plugin::web;
use serde_json::{Value, json};

use mcpist_plugin::{
    CallContext, CallOutput, CredentialBinding, Guest, Injection, ModuleInfo, ToolError, ToolFlags,
    arguments,
};

struct GoogleCalendar;
mcpist_plugin::export!(GoogleCalendar);

const HOST: &str = "https://www.googleapis.com";

fn calendar_id_schema(description: &str) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 1024, "default": "primary",
           "description": description})
}

fn calendar_id_default() -> Value {
    calendar_id_schema(
        "The calendar's id from list_calendars: an email address, or one like en.usa#holiday@group.v.calendar.google.com. Default \"primary\", the account's own calendar.",
    )
}

fn instant_schema(description: &str) -> Value {
    json!({"type": "string", "minLength": 10, "maxLength": 40, "description": description})
}

fn zone_schema(description: &str) -> Value {
    json!({"type": "string", "maxLength": 64,
           "pattern": "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$",
           "description": description})
}

fn page_token_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 2048,
           "description": "nextPageToken from the previous answer, to get the next page; keep the other arguments the same."})
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

fn describe() -> ModuleInfo {
    let read = ToolFlags::READ_ONLY
        | ToolFlags::IDEMPOTENT
        | ToolFlags::OPEN_WORLD
        | ToolFlags::CONCURRENCY_SAFE;
    let time_min = instant_schema(
        "Start of the range: RFC 3339 with a UTC offset, e.g. 2024-05-01T00:00:00+02:00 or 2024-04-30T22:00:00Z.",
    );
    let time_max = instant_schema(
        "End of the range (exclusive): RFC 3339 with a UTC offset, later than timeMin.",
    );
    let event_time = |which: &str| {
        json!({
            "type": "object",
            "minProperties": 1,
            "properties": {
                "dateTime": {"type": "string", "minLength": 10, "maxLength": 40,
                             "description": "For a timed event: RFC 3339, e.g. 2024-05-01T09:00:00+02:00. The UTC offset may be left out when timeZone is given."},
                "date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                         "description": "For an all-day event: YYYY-MM-DD."},
                "timeZone": zone_schema("IANA zone name, e.g. Europe/Paris: how Google shows the event, and the zone of a dateTime given without an offset.")
            },
            "description": format!("When the event {which}: dateTime or date, not both.")
        })
    };
    ModuleInfo {
        name: "google_calendar".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: "Google Calendar: list the account's calendars and their events, read one event, find busy and free slots across calendars, and create events.".into(),
        tools: vec![
            mcpist_plugin::tool(
                "list_calendars",
                "List the calendars in this Google account's calendar list: id, name (summary), whether it is the primary calendar, the account's accessRole (owner, writer, reader or freeBusyReader) and the calendar's zone. An id is what calendarId takes in list_events, get_event, find_free_busy and create_event; \"primary\" always means the account's own calendar.",
                read,
                &json!({
                    "type": "object",
                    "properties": {
                        "maxResults": {"type": "integer", "minimum": 1, "maximum": tools::MAX_CALENDARS_PER_PAGE, "default": 100,
                                       "description": "Most calendars per page."},
                        "pageToken": page_token_schema()
                    }
                }),
                Some(&json!({
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
            ),
            mcpist_plugin::tool(
                "list_events",
                "List one calendar's events that overlap timeMin..timeMax, recurring events expanded into their occurrences, in order of start. q matches words in the summary, description, location and attendees. Each event has its id, status, summary, start, end, location, attendees with their responses, organizer and link; descriptions are cut to 500 characters and attendees to 20 (get_event has the whole event).",
                read,
                &json!({
                    "type": "object",
                    "properties": {
                        "calendarId": calendar_id_default(),
                        "timeMin": time_min,
                        "timeMax": time_max,
                        "q": {"type": "string", "maxLength": 1000, "description": "Only events whose summary, description, location or attendees match these words."},
                        "maxResults": {"type": "integer", "minimum": 1, "maximum": tools::MAX_EVENTS_PER_PAGE, "default": tools::DEFAULT_EVENTS_PER_PAGE,
                                       "description": "Most events per page."},
                        "pageToken": page_token_schema(),
                        "timeZone": zone_schema("IANA zone name the answer's date-times are written in, e.g. Europe/Paris. Default: the calendar's own zone.")
                    },
                    "required": ["timeMin", "timeMax"]
                }),
                Some(&json!({
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
            ),
            mcpist_plugin::tool(
                "get_event",
                "One event of a calendar by its id (from list_events), in full: summary, start and end, location, the whole description, every attendee with their response, organizer, recurrence, Meet link and the event's link.",
                read,
                &json!({
                    "type": "object",
                    "properties": {
                        "calendarId": calendar_id_default(),
                        "eventId": {"type": "string", "minLength": 1, "maxLength": 1024, "description": "The event's id, from list_events."},
                        "timeZone": zone_schema("IANA zone name the answer's date-times are written in. Default: the calendar's own zone.")
                    },
                    "required": ["eventId"]
                }),
                Some(&event_schema(true)),
            ),
            mcpist_plugin::tool(
                "find_free_busy",
                "When calendars are busy between timeMin and timeMax, and the free slots left once all of them are combined (at least minSlotMinutes long, if given), written at timeMin's UTC offset. Calendars are the account's own or other people's (their email address) when they share free/busy information. Google reports a calendar it cannot read (e.g. notFound) in that calendar's errors rather than failing: such a calendar is left out of the free slots, and the note says so.",
                read,
                &json!({
                    "type": "object",
                    "properties": {
                        "timeMin": time_min,
                        "timeMax": time_max,
                        "calendarIds": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": tools::MAX_FREE_BUSY_CALENDARS,
                            "items": calendar_id_schema("A calendar id or a person's email address; \"primary\" is the account's own calendar."),
                            "default": ["primary"],
                            "description": "The calendars to combine."
                        },
                        "timeZone": zone_schema("IANA zone name the busy intervals are written in, e.g. Europe/Paris. Default UTC."),
                        "minSlotMinutes": {"type": "integer", "minimum": 1, "maximum": 10080,
                                           "description": "Leave out free slots shorter than this many minutes, e.g. 30 to find room for a half-hour meeting."}
                    },
                    "required": ["timeMin", "timeMax"]
                }),
                Some(&json!({
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
            ),
            mcpist_plugin::tool(
                "create_event",
                "Create an event in a calendar the account can write to (accessRole owner or writer; default its primary calendar). start and end are each a dateTime (RFC 3339) or, for an all-day event, a date; an all-day event's end date is exclusive (a one-day event on 2024-05-01 ends on 2024-05-02). Attendees are invited by email address; sendUpdates decides whether Google emails them (default none).",
                ToolFlags::OPEN_WORLD,
                &json!({
                    "type": "object",
                    "properties": {
                        "calendarId": calendar_id_default(),
                        "summary": {"type": "string", "minLength": 1, "maxLength": 1024, "description": "The event's title."},
                        "description": {"type": "string", "maxLength": 8192, "description": "Notes shown with the event; plain text or simple HTML."},
                        "location": {"type": "string", "maxLength": 1024, "description": "A place or an address."},
                        "start": event_time("starts"),
                        "end": event_time("ends (exclusive)"),
                        "attendees": {
                            "type": "array",
                            "maxItems": tools::MAX_ATTENDEES,
                            "items": {"type": "string", "minLength": 3, "maxLength": 254, "pattern": "^[^@\\s]+@[^@\\s]+$"},
                            "description": "Email addresses of the people to invite."
                        },
                        "sendUpdates": {"type": "string", "enum": ["all", "externalOnly", "none"], "default": "none",
                                        "description": "Whom Google emails the invitation: all attendees, externalOnly (those outside the organizer's Google Workspace domain), or none."}
                    },
                    "required": ["summary", "start", "end"]
                }),
                Some(&event_schema(true)),
            ),
        ],
        hosts: vec![HOST.into()],
        credentials: vec![CredentialBinding {
            service: "google".into(),
            inject: Injection::Bearer,
            hosts: vec![HOST.into()],
        }],
    }
}

fn dispatch(
    http: &mut dyn web::Transport,
    tool: &str,
    args: &str,
    account: Option<&str>,
) -> Result<CallOutput, ToolError> {
    let mut api = api::Api::new(http, account);
    let value = match tool {
        "list_calendars" => tools::list_calendars(&mut api, arguments(args)?)?,
        "list_events" => tools::list_events(&mut api, arguments(args)?)?,
        "get_event" => tools::get_event(&mut api, arguments(args)?)?,
        "find_free_busy" => tools::find_free_busy(&mut api, arguments(args)?)?,
        "create_event" => tools::create_event(&mut api, arguments(args)?)?,
        other => {
            return Err(ToolError::UnknownTool(format!(
                "google_calendar has no tool named {other:?}"
            )));
        }
    };
    Ok(mcpist_plugin::structured(&value))
}

impl Guest for GoogleCalendar {
    fn describe() -> ModuleInfo {
        describe()
    }

    fn call(tool: String, args: String, context: CallContext) -> Result<CallOutput, ToolError> {
        dispatch(&mut web::Host, &tool, &args, context.account.as_deref())
    }
}

#[cfg(test)]
mod tests;
