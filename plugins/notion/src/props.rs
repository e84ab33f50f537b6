//! Reading Notion objects: rich text, titles, and property values flattened
//! to plain JSON.

use serde_json::{Map, Value, json};

/// The text of a rich text array: its `plain_text` pieces, concatenated.
pub fn plain(rich_text: Option<&Value>) -> String {
    rich_text
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.get("plain_text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// The title of a page (its `title` property) or a database (its `title`
/// rich text).
pub fn title(object: &Value) -> String {
    if let Some(Value::Array(_)) = object.get("title") {
        return plain(object.get("title"));
    }
    object
        .get("properties")
        .and_then(Value::as_object)
        .and_then(|props| {
            props
                .values()
                .find(|p| p.get("type").and_then(Value::as_str) == Some("title"))
        })
        .map(|p| plain(p.get("title")))
        .unwrap_or_default()
}

/// A page's or database's parent as `{type, id}` (`type` one of `page`,
/// `database`, `block`, `workspace`).
pub fn parent(object: &Value) -> Value {
    let Some(parent) = object.get("parent") else {
        return Value::Null;
    };
    let kind = parent.get("type").and_then(Value::as_str).unwrap_or("");
    let short = match kind {
        "page_id" => "page",
        "database_id" => "database",
        "block_id" => "block",
        "data_source_id" => "data_source",
        "workspace" => return json!({"type": "workspace"}),
        other => other,
    };
    match parent.get(kind).and_then(Value::as_str) {
        Some(id) => json!({"type": short, "id": id}),
        None => json!({"type": short}),
    }
}

/// The short form of a search result or a database row.
pub fn summary(object: &Value) -> Value {
    let s = |k: &str| object.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "id": s("id"),
        "object": s("object"),
        "title": title(object),
        "url": s("url"),
        "last_edited_time": s("last_edited_time"),
        "parent": parent(object),
    })
}

/// A user as `{id, name}` (the name only when Notion gave it).
fn user(value: &Value) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), value.get("id").cloned().unwrap_or(Value::Null));
    if let Some(name) = value.get("name").and_then(Value::as_str) {
        out.insert("name".into(), name.into());
    }
    Value::Object(out)
}

fn name_of(option: &Value) -> Value {
    option.get("name").cloned().unwrap_or(Value::Null)
}

fn date(value: &Value) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    json!({
        "start": value.get("start").cloned().unwrap_or(Value::Null),
        "end": value.get("end").cloned().unwrap_or(Value::Null),
    })
}

fn file(value: &Value) -> Value {
    let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
    json!({
        "name": value.get("name").cloned().unwrap_or(Value::Null),
        "url": value.get(kind).and_then(|f| f.get("url")).cloned().unwrap_or(Value::Null),
    })
}

/// One property value (`{"type": "select", "select": {...}, ...}`) as a
/// plain JSON value.
pub fn flatten(property: &Value) -> Value {
    let kind = property.get("type").and_then(Value::as_str).unwrap_or("");
    let value = property.get(kind).unwrap_or(&Value::Null);
    let list = |f: fn(&Value) -> Value| {
        Value::Array(
            value
                .as_array()
                .map(|a| a.iter().map(f).collect())
                .unwrap_or_default(),
        )
    };
    match kind {
        "title" | "rich_text" => plain(Some(value)).into(),
        "select" | "status" => name_of(value),
        "multi_select" => list(name_of),
        "date" => date(value),
        "people" => list(user),
        "created_by" | "last_edited_by" => user(value),
        "relation" => list(|r| r.get("id").cloned().unwrap_or(Value::Null)),
        "files" => list(file),
        "formula" => {
            let t = value.get("type").and_then(Value::as_str).unwrap_or("");
            let v = value.get(t).cloned().unwrap_or(Value::Null);
            if t == "date" { date(&v) } else { v }
        }
        "rollup" => {
            let t = value.get("type").and_then(Value::as_str).unwrap_or("");
            match t {
                "array" => list_of_values(value.get("array")),
                "date" => date(value.get("date").unwrap_or(&Value::Null)),
                _ => value.get(t).cloned().unwrap_or(Value::Null),
            }
        }
        "unique_id" => {
            let number = value.get("number").cloned().unwrap_or(Value::Null);
            match value.get("prefix").and_then(Value::as_str) {
                Some(prefix) if !number.is_null() => format!("{prefix}-{number}").into(),
                _ => number,
            }
        }
        "verification" => value.get("state").cloned().unwrap_or(Value::Null),
        "button" => Value::Null,
        // number, checkbox, url, email, phone_number, created_time,
        // last_edited_time, and anything newer: the value as Notion gave it.
        _ => value.clone(),
    }
}

fn list_of_values(items: Option<&Value>) -> Value {
    Value::Array(
        items
            .and_then(Value::as_array)
            .map(|a| a.iter().map(flatten).collect())
            .unwrap_or_default(),
    )
}

/// Every property of a page, flattened, by name.
pub fn flatten_all(page: &Value) -> Map<String, Value> {
    page.get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, p)| (name.clone(), flatten(p)))
                .collect()
        })
        .unwrap_or_default()
}

/// A flattened value as short text for the page header.
pub fn display(value: &Value) -> String {
    match value {
        Value::Null => "—".into(),
        Value::String(s) if s.is_empty() => "—".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.is_empty() => "—".into(),
        Value::Array(items) => items.iter().map(display).collect::<Vec<_>>().join(", "),
        Value::Object(map) => {
            if map.contains_key("start") {
                let start = display(&map["start"]);
                match map.get("end") {
                    Some(Value::String(end)) => format!("{start} → {end}"),
                    _ => start,
                }
            } else if let Some(Value::String(name)) = map.get("name") {
                name.clone()
            } else if let Some(Value::String(url)) = map.get("url") {
                url.clone()
            } else if let Some(Value::String(id)) = map.get("id") {
                id.clone()
            } else {
                Value::Object(map.clone()).to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> Value {
        json!([{"type": "text", "text": {"content": s, "link": null}, "plain_text": s, "href": null}])
    }

    #[test]
    fn flattens_every_common_property_type() {
        let page = json!({"properties": {
            "Name": {"id": "title", "type": "title", "title": rt("Ship it")},
            "Notes": {"id": "a", "type": "rich_text", "rich_text": rt("soon")},
            "Points": {"id": "b", "type": "number", "number": 3},
            "Status": {"id": "c", "type": "select", "select": {"id": "x", "name": "Done", "color": "green"}},
            "Stage": {"id": "c2", "type": "status", "status": null},
            "Tags": {"id": "d", "type": "multi_select", "multi_select": [{"name": "a"}, {"name": "b"}]},
            "Due": {"id": "e", "type": "date", "date": {"start": "2024-03-01", "end": null, "time_zone": null}},
            "Done": {"id": "f", "type": "checkbox", "checkbox": true},
            "Link": {"id": "g", "type": "url", "url": "https://x"},
            "Who": {"id": "h", "type": "people", "people": [{"object": "user", "id": "u1", "name": "Ann"}, {"object": "user", "id": "u2"}]},
            "Rel": {"id": "i", "type": "relation", "relation": [{"id": "r1"}], "has_more": false},
            "F": {"id": "j", "type": "formula", "formula": {"type": "number", "number": 7}},
            "R": {"id": "k", "type": "rollup", "rollup": {"type": "array", "array": [{"type": "number", "number": 1}], "function": "show_original"}},
            "ID": {"id": "l", "type": "unique_id", "unique_id": {"prefix": "TASK", "number": 12}},
        }});
        let flat = Value::Object(flatten_all(&page));
        assert_eq!(
            flat,
            json!({
                "Name": "Ship it", "Notes": "soon", "Points": 3, "Status": "Done", "Stage": null,
                "Tags": ["a", "b"], "Due": {"start": "2024-03-01", "end": null}, "Done": true,
                "Link": "https://x", "Who": [{"id": "u1", "name": "Ann"}, {"id": "u2"}], "Rel": ["r1"],
                "F": 7, "R": [1], "ID": "TASK-12",
            })
        );
        assert_eq!(title(&page), "Ship it");
        assert_eq!(display(&flat["Who"]), "Ann, u2");
        assert_eq!(display(&flat["Due"]), "2024-03-01");
    }
}
