//! The tools a script may call, as `run_script`'s description tells the
//! model: one line per tool in a compact typed form, generated from the
//! schemas the client would see, e.g.
//!
//! ```text
//! github.get_issue({owner: string, repo: string, number: integer}) -> {number, title, state, …} [read-only]
//! ```

use serde_json::Value;

use crate::calls::ToolView;

/// Longest catalogue; tools beyond it are counted (their schemas are a
/// `get_module_schema` away).
const MAX_BYTES: usize = 12 << 10;
/// How deep nested object types are spelled out.
const MAX_DEPTH: usize = 2;
/// Output properties named per tool.
const MAX_OUTPUT_FIELDS: usize = 8;

/// The catalogue of `tools`, one line each.
pub fn typed_catalogue(tools: &[ToolView]) -> String {
    let mut text = String::new();
    let mut left_out = 0;
    for tool in tools {
        let line = signature(tool);
        if left_out > 0 || text.len() + line.len() + 1 > MAX_BYTES {
            left_out += 1;
            continue;
        }
        text.push_str(&line);
        text.push('\n');
    }
    if left_out > 0 {
        text.push_str(&format!(
            "…and {left_out} more tools: get_module_schema lists them with their arguments.\n"
        ));
    }
    text
}

fn signature(tool: &ToolView) -> String {
    let mut line = format!(
        "{}.{}({})",
        tool.module,
        tool.name,
        type_of(&tool.input_schema, 0)
    );
    if let Some(output) = &tool.output_schema {
        line.push_str(" -> ");
        line.push_str(&output_shape(output));
    }
    let mut flags = Vec::new();
    if tool.flags.read_only {
        flags.push("read-only");
    }
    if tool.flags.destructive {
        flags.push("destructive");
    }
    if tool.takes_account {
        flags.push("takes account");
    }
    if !flags.is_empty() {
        line.push_str(&format!(" [{}]", flags.join(", ")));
    }
    line
}

/// A schema as a TypeScript-like type.
fn type_of(schema: &Value, depth: usize) -> String {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("|");
    }
    if let Some(value) = schema.get("const") {
        return value.to_string();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            return options
                .iter()
                .map(|option| type_of(option, depth))
                .collect::<Vec<_>>()
                .join("|");
        }
    }
    match schema.get("type") {
        Some(Value::String(kind)) => named_type(kind, schema, depth),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .map(|kind| named_type(kind, schema, depth))
            .collect::<Vec<_>>()
            .join("|"),
        _ if schema.get("properties").is_some() => object_type(schema, depth),
        _ => "any".to_owned(),
    }
}

fn named_type(kind: &str, schema: &Value, depth: usize) -> String {
    match kind {
        "object" => object_type(schema, depth),
        "array" => {
            let items = schema
                .get("items")
                .map_or_else(|| "any".to_owned(), |items| type_of(items, depth + 1));
            if items.contains('|') {
                format!("({items})[]")
            } else {
                format!("{items}[]")
            }
        }
        other => other.to_owned(),
    }
}

fn object_type(schema: &Value, depth: usize) -> String {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return "object".to_owned();
    };
    if properties.is_empty() {
        return "{}".to_owned();
    }
    if depth >= MAX_DEPTH {
        return "object".to_owned();
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let fields: Vec<String> = properties
        .iter()
        .map(|(name, property)| {
            let optional = if required.contains(&name.as_str()) {
                ""
            } else {
                "?"
            };
            format!("{name}{optional}: {}", type_of(property, depth + 1))
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// An output schema as the names of its top-level fields.
fn output_shape(schema: &Value) -> String {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return type_of(schema, MAX_DEPTH);
    };
    let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
    let more = names.len() > MAX_OUTPUT_FIELDS;
    names.truncate(MAX_OUTPUT_FIELDS);
    if more {
        names.push("…");
    }
    format!("{{{}}}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ToolFlags;
    use serde_json::json;

    fn tool(input: Value, output: Option<Value>) -> ToolView {
        ToolView {
            module: "github".into(),
            name: "get_issue".into(),
            description: String::new(),
            input_schema: input,
            output_schema: output,
            flags: ToolFlags {
                read_only: true,
                ..ToolFlags::default()
            },
            takes_account: true,
        }
    }

    #[test]
    fn a_tool_is_one_typed_line() {
        let view = tool(
            json!({
                "type": "object",
                "properties": {
                    "owner": {"type": "string"},
                    "number": {"type": "integer"},
                    "state": {"enum": ["open", "closed"]},
                    "labels": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["owner", "number"],
            }),
            Some(json!({"properties": {"title": {}, "state": {}}})),
        );
        assert_eq!(
            typed_catalogue(&[view]),
            "github.get_issue({labels?: string[], number: integer, owner: string, state?: \"open\"|\"closed\"}) -> {state, title} [read-only, takes account]\n"
        );
    }

    #[test]
    fn deep_objects_and_long_catalogues_are_cut() {
        let deep = json!({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "object", "properties": {"c": {"type": "string"}}}}}}});
        assert_eq!(type_of(&deep, 0), "{a?: {b?: object}}");
        let many: Vec<ToolView> = (0..2000).map(|_| tool(deep.clone(), None)).collect();
        let text = typed_catalogue(&many);
        assert!(text.len() <= MAX_BYTES + 100, "{}", text.len());
        assert!(text.ends_with("more tools: get_module_schema lists them with their arguments.\n"));
    }
}
