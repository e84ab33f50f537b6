//! Google's calendar and event resources cut down to what a model reads:
//! a calendar list entry or an event is 1-4 KB of JSON (etags, colours,
//! reminders, conference data, iCalUID, sequence, ...), most of it noise
//! for planning a day. The output schemas in `lib.rs` describe these shapes.

use serde_json::{Map, Value, json};

/// Descriptions in event lists are cut to this many characters; get_event
/// gives the whole text.
pub const LIST_DESCRIPTION_CHARS: usize = 500;
/// Attendees shown per event in lists; get_event shows all of them.
pub const LIST_ATTENDEES: usize = 20;

/// How much of an event to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// In a list: description and attendees cut.
    List,
    /// One event: everything kept, plus recurrence, times of creation and
    /// change, and the video call link.
    Full,
}

fn string(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A calendar list entry: `{id, summary, primary, accessRole, timeZone}`.
/// The owner's own name for a calendar (`summaryOverride`) wins over its
/// name, as in Google Calendar's sidebar.
pub fn calendar(entry: &Value) -> Value {
    json!({
        "id": entry.get("id").cloned().unwrap_or(Value::Null),
        "summary": string(entry, "summaryOverride").or_else(|| string(entry, "summary")),
        "primary": entry.get("primary").and_then(Value::as_bool).unwrap_or(false),
        "accessRole": string(entry, "accessRole"),
        "timeZone": string(entry, "timeZone"),
    })
}

/// An event's `start` or `end` (`{dateTime, timeZone}` or `{date}`) as one
/// string, and whether it is a date (an all-day event).
fn when(value: Option<&Value>) -> (Value, bool) {
    let Some(value) = value else {
        return (Value::Null, false);
    };
    if let Some(date_time) = string(value, "dateTime") {
        (date_time.into(), false)
    } else if let Some(date) = string(value, "date") {
        (date.into(), true)
    } else {
        (Value::Null, false)
    }
}

/// A person (organizer, creator) as their email address, or their name
/// when Google gives no address.
fn person(value: Option<&Value>) -> Value {
    value
        .and_then(|p| string(p, "email").or_else(|| string(p, "displayName")))
        .map_or(Value::Null, Value::from)
}

fn attendee(value: &Value) -> Value {
    let mut out = Map::new();
    out.insert(
        "email".into(),
        string(value, "email")
            .or_else(|| string(value, "displayName"))
            .map_or(Value::Null, Value::from),
    );
    out.insert(
        "responseStatus".into(),
        string(value, "responseStatus").map_or(Value::Null, Value::from),
    );
    // The account's own entry: tells the model whether it accepted.
    if value.get("self").and_then(Value::as_bool) == Some(true) {
        out.insert("self".into(), true.into());
    }
    if value.get("optional").and_then(Value::as_bool) == Some(true) {
        out.insert("optional".into(), true.into());
    }
    Value::Object(out)
}

/// An event, compact. Keys Google left out stay out (except the few every
/// event has), so a short event reads short.
pub fn event(value: &Value, detail: Detail) -> Value {
    let mut out = Map::new();
    let (start, all_day) = when(value.get("start"));
    let (end, _) = when(value.get("end"));
    out.insert("id".into(), value.get("id").cloned().unwrap_or(Value::Null));
    out.insert(
        "status".into(),
        string(value, "status").map_or(Value::Null, Value::from),
    );
    out.insert(
        "summary".into(),
        string(value, "summary").map_or(Value::Null, Value::from),
    );
    out.insert("start".into(), start);
    out.insert("end".into(), end);
    out.insert("allDay".into(), all_day.into());
    if let Some(location) = string(value, "location") {
        out.insert("location".into(), location.into());
    }
    if let Some(kind) = string(value, "eventType").filter(|k| k != "default") {
        // focusTime, outOfOffice, workingLocation, ...: matters for planning.
        out.insert("eventType".into(), kind.into());
    }
    if let Some(description) = string(value, "description") {
        let cut = detail == Detail::List && description.chars().count() > LIST_DESCRIPTION_CHARS;
        if cut {
            let short: String = description.chars().take(LIST_DESCRIPTION_CHARS).collect();
            out.insert("description".into(), short.into());
            out.insert("descriptionTruncated".into(), true.into());
        } else {
            out.insert("description".into(), description.into());
        }
    }
    let attendees: &[Value] = value
        .get("attendees")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if !attendees.is_empty() {
        let shown = match detail {
            Detail::List => attendees.len().min(LIST_ATTENDEES),
            Detail::Full => attendees.len(),
        };
        out.insert(
            "attendees".into(),
            attendees[..shown].iter().map(attendee).collect(),
        );
        if shown < attendees.len() {
            out.insert("attendeesNotShown".into(), (attendees.len() - shown).into());
        }
    }
    let organizer = person(value.get("organizer"));
    if !organizer.is_null() {
        out.insert("organizer".into(), organizer);
    }
    if let Some(link) = string(value, "htmlLink") {
        out.insert("htmlLink".into(), link.into());
    }
    if detail == Detail::Full {
        for key in ["recurringEventId", "created", "updated", "hangoutLink"] {
            if let Some(text) = string(value, key) {
                out.insert(key.into(), text.into());
            }
        }
        if let Some(rules) = value.get("recurrence").filter(|r| r.is_array()) {
            out.insert("recurrence".into(), rules.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn google_event() -> Value {
        json!({
            "kind": "calendar#event",
            "etag": "\"3427581602830000\"",
            "id": "5qk2t0ahb8l1c6m7o8p9q0r1s2_20240501T073000Z",
            "status": "confirmed",
            "htmlLink": "https://www.google.com/calendar/event?eid=NXFr",
            "created": "2024-01-02T10:00:00.000Z",
            "updated": "2024-01-02T10:00:00.000Z",
            "summary": "Daily standup",
            "description": "x".repeat(600),
            "location": "Room 4",
            "creator": {"email": "ann@example.com", "self": true},
            "organizer": {"email": "ann@example.com", "displayName": "Ann", "self": true},
            "start": {"dateTime": "2024-05-01T09:30:00+02:00", "timeZone": "Europe/Paris"},
            "end": {"dateTime": "2024-05-01T09:45:00+02:00", "timeZone": "Europe/Paris"},
            "recurringEventId": "5qk2t0ahb8l1c6m7o8p9q0r1s2",
            "originalStartTime": {"dateTime": "2024-05-01T09:30:00+02:00", "timeZone": "Europe/Paris"},
            "iCalUID": "5qk2t0ahb8l1c6m7o8p9q0r1s2@google.com",
            "sequence": 0,
            "attendees": (0..25).map(|i| json!({"email": format!("p{i}@example.com"), "responseStatus": "needsAction", "self": i == 0})).collect::<Vec<_>>(),
            "hangoutLink": "https://meet.google.com/abc-defg-hij",
            "reminders": {"useDefault": true},
            "eventType": "default"
        })
    }

    #[test]
    fn events_in_lists_are_cut() {
        let e = event(&google_event(), Detail::List);
        assert_eq!(e["start"], "2024-05-01T09:30:00+02:00");
        assert_eq!(e["allDay"], false);
        assert_eq!(e["organizer"], "ann@example.com");
        assert_eq!(e["description"].as_str().unwrap().len(), 500);
        assert_eq!(e["descriptionTruncated"], true);
        assert_eq!(e["attendees"].as_array().unwrap().len(), 20);
        assert_eq!(e["attendeesNotShown"], 5);
        assert_eq!(
            e["attendees"][0],
            json!({"email": "p0@example.com", "responseStatus": "needsAction", "self": true})
        );
        assert!(e.get("recurringEventId").is_none() && e.get("eventType").is_none());
        assert!(e.get("etag").is_none() && e.get("reminders").is_none());
    }

    #[test]
    fn one_event_is_shown_whole() {
        let e = event(&google_event(), Detail::Full);
        assert_eq!(e["description"].as_str().unwrap().len(), 600);
        assert!(e.get("descriptionTruncated").is_none());
        assert_eq!(e["attendees"].as_array().unwrap().len(), 25);
        assert_eq!(e["recurringEventId"], "5qk2t0ahb8l1c6m7o8p9q0r1s2");
        assert_eq!(e["hangoutLink"], "https://meet.google.com/abc-defg-hij");
    }

    #[test]
    fn all_day_events_and_missing_fields() {
        let e = event(
            &json!({"id": "h1", "status": "confirmed", "start": {"date": "2024-07-04"}, "end": {"date": "2024-07-05"}, "eventType": "outOfOffice"}),
            Detail::List,
        );
        assert_eq!(
            e,
            json!({"id": "h1", "status": "confirmed", "summary": null, "start": "2024-07-04", "end": "2024-07-05", "allDay": true, "eventType": "outOfOffice"})
        );
    }

    #[test]
    fn calendars_prefer_the_owners_name_for_them() {
        let c = calendar(&json!({
            "kind": "calendar#calendarListEntry", "id": "c_1@group.calendar.google.com",
            "summary": "Team", "summaryOverride": "My team", "timeZone": "Europe/Paris",
            "accessRole": "writer", "backgroundColor": "#9fe1e7"
        }));
        assert_eq!(
            c,
            json!({"id": "c_1@group.calendar.google.com", "summary": "My team", "primary": false, "accessRole": "writer", "timeZone": "Europe/Paris"})
        );
    }
}
