//! Argument validation against a tool's input schema.
//!
//! Parameter smuggling works by slipping extra properties into a call. So the
//! host treats every object schema that does not say otherwise as closed: it
//! adds `"additionalProperties": false` to each object node that lacks
//! `additionalProperties`, `patternProperties` and `unevaluatedProperties`.
//! The closed schema is what clients are shown, so the LLM sees the same rule
//! the host enforces. A tool that really takes free-form input opts out by
//! setting `additionalProperties` itself.

use serde_json::{Map, Value};

/// Most errors listed for one call; the rest are summarised.
const MAX_REPORTED_ERRORS: usize = 8;

/// Keywords whose value is a single subschema.
const SINGLE_SUBSCHEMA: &[&str] = &[
    "items",
    "additionalItems",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
];
/// Keywords whose value maps names to subschemas.
const NAMED_SUBSCHEMAS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// Keywords whose value is a list of subschemas that are combined. Closing a
/// branch of `allOf` would reject the properties declared by its siblings, so
/// branches are recursed into but not closed themselves.
const COMBINED_SUBSCHEMAS: &[&str] = &["allOf", "anyOf", "oneOf"];
const OPENING_KEYWORDS: &[&str] = &[
    "additionalProperties",
    "patternProperties",
    "unevaluatedProperties",
];

/// Return `schema` with every object node closed (see the module docs).
pub fn close_object_schemas(schema: &Value) -> Value {
    let mut schema = schema.clone();
    close(&mut schema, true);
    schema
}

fn close(node: &mut Value, may_close: bool) {
    let Value::Object(map) = node else { return };
    let is_object_schema = map.get("type").is_some_and(|t| {
        t == "object"
            || t.as_array()
                .is_some_and(|a| a.iter().any(|t| t == "object"))
    }) || map.contains_key("properties");
    if may_close && is_object_schema && !OPENING_KEYWORDS.iter().any(|k| map.contains_key(*k)) {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for (key, value) in map.iter_mut() {
        let key = key.as_str();
        if SINGLE_SUBSCHEMA.contains(&key) || key == "additionalProperties" {
            match value {
                Value::Array(items) => items.iter_mut().for_each(|v| close(v, true)),
                other => close(other, true),
            }
        } else if key == "prefixItems" {
            if let Value::Array(items) = value {
                items.iter_mut().for_each(|v| close(v, true));
            }
        } else if NAMED_SUBSCHEMAS.contains(&key) {
            if let Value::Object(named) = value {
                named.values_mut().for_each(|v| close(v, true));
            }
        } else if COMBINED_SUBSCHEMAS.contains(&key)
            && let Value::Array(branches) = value
        {
            branches.iter_mut().for_each(|v| close(v, false));
        }
    }
}

/// A compiled input schema.
pub struct ArgumentValidator {
    validator: jsonschema::Validator,
    /// Top-level property names, for "this tool accepts ..." hints.
    known: Vec<String>,
}

impl std::fmt::Debug for ArgumentValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgumentValidator")
            .field("known", &self.known)
            .finish_non_exhaustive()
    }
}

impl ArgumentValidator {
    /// Compile an (already closed) schema. Remote and file `$ref`s are never
    /// fetched: the validator is built without any retriever.
    pub fn new(schema: &Value) -> Result<Self, String> {
        // The validator must not take the host down, whatever a module declares.
        let compiled = std::panic::catch_unwind(|| jsonschema::validator_for(schema))
            .map_err(|_| "the schema could not be compiled".to_owned())?
            .map_err(|e| e.to_string())?;
        let known = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        Ok(ArgumentValidator {
            validator: compiled,
            known,
        })
    }

    /// Check `arguments`; the error lists every problem with its location.
    pub fn validate(&self, arguments: &Value) -> Result<(), String> {
        self.validate_except(arguments, &[])
    }

    /// [`ArgumentValidator::validate`], leaving out what is wrong at or
    /// below the JSON Pointers `unknown`: values not known yet (a plan
    /// step's references to earlier results), checked once they are.
    pub fn validate_except(&self, arguments: &Value, unknown: &[String]) -> Result<(), String> {
        let mut problems = Vec::new();
        let mut total = 0;
        let is_unknown = |path: &str| {
            unknown.iter().any(|u| {
                path == u
                    || path
                        .strip_prefix(u.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
        };
        for error in self.validator.iter_errors(arguments) {
            if is_unknown(error.instance_path().as_str()) {
                continue;
            }
            total += 1;
            if problems.len() < MAX_REPORTED_ERRORS {
                problems.push(self.describe(&error, arguments));
            }
        }
        if total == 0 {
            return Ok(());
        }
        if total > problems.len() {
            problems.push(format!("... and {} more", total - problems.len()));
        }
        Err(problems.join("; "))
    }

    fn describe(&self, error: &jsonschema::ValidationError<'_>, arguments: &Value) -> String {
        use jsonschema::error::ValidationErrorKind;
        let path = error.instance_path().as_str();
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                self.unknown_property(path, &unexpected.join("', '"))
            }
            // With no `properties` beside it, `additionalProperties: false`
            // is reported as a false schema, without the property's name.
            ValidationErrorKind::FalseSchema
                if error
                    .schema_path()
                    .as_str()
                    .ends_with("/additionalProperties") =>
            {
                let names: Vec<&str> = arguments
                    .pointer(path)
                    .and_then(Value::as_object)
                    .map(|o| {
                        o.keys()
                            .map(String::as_str)
                            .filter(|k| !self.known.iter().any(|n| n == k))
                            .collect()
                    })
                    .unwrap_or_default();
                self.unknown_property(path, &names.join("', '"))
            }
            _ => format!("{}: {error}", at(path)),
        }
    }

    fn unknown_property(&self, parent: &str, names: &str) -> String {
        if !parent.is_empty() {
            return format!("{}: unknown property '{names}'", at(parent));
        }
        let accepted = if self.known.is_empty() {
            "this tool takes no arguments".to_owned()
        } else {
            format!("this tool accepts: {}", self.known.join(", "))
        };
        format!("unknown argument '{names}' ({accepted})")
    }
}

/// Where in the arguments a problem is, e.g. `arguments/items/0`.
fn at(path: &str) -> String {
    format!("arguments{path}")
}

/// The empty object, for calls that pass no arguments.
pub fn empty_arguments() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn closes_objects_but_respects_explicit_openness() {
        let schema = json!({
            "type": "object",
            "properties": {
                "nested": {"type": "object", "properties": {"x": {"type": "string"}}},
                "free": {"type": "object", "additionalProperties": true},
                "list": {"type": "array", "items": {"type": "object"}}
            }
        });
        let closed = close_object_schemas(&schema);
        assert_eq!(closed["additionalProperties"], json!(false));
        assert_eq!(
            closed["properties"]["nested"]["additionalProperties"],
            json!(false)
        );
        assert_eq!(
            closed["properties"]["free"]["additionalProperties"],
            json!(true)
        );
        assert_eq!(
            closed["properties"]["list"]["items"]["additionalProperties"],
            json!(false)
        );
    }

    #[test]
    fn does_not_close_combined_branches() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "anyOf": [{"properties": {"a": {"minLength": 1}}, "required": ["a"]}, {"required": ["b"]}]
        });
        let closed = close_object_schemas(&schema);
        assert!(closed["anyOf"][0].get("additionalProperties").is_none());
        let v = ArgumentValidator::new(&closed).unwrap();
        assert!(v.validate(&json!({"a": "x", "b": "y"})).is_ok());
        assert!(v.validate(&json!({"a": "x", "c": 1})).is_err());
    }

    #[test]
    fn unknown_arguments_are_refused_with_the_accepted_names() {
        let schema = close_object_schemas(&json!({
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"]
        }));
        let v = ArgumentValidator::new(&schema).unwrap();
        assert!(v.validate(&json!({"text": "hi"})).is_ok());
        let err = v
            .validate(&json!({"text": "hi", "system_prompt": "obey"}))
            .unwrap_err();
        assert_eq!(
            err,
            "unknown argument 'system_prompt' (this tool accepts: text)"
        );
        let err = v.validate(&json!({"text": 5})).unwrap_err();
        assert!(err.starts_with("arguments/text: "), "{err}");
        let err = v.validate(&json!({})).unwrap_err();
        assert!(err.contains("text"), "{err}");
    }

    #[test]
    fn a_tool_without_properties_takes_no_arguments() {
        let v = ArgumentValidator::new(&close_object_schemas(&json!({"type": "object"}))).unwrap();
        assert!(v.validate(&empty_arguments()).is_ok());
        let err = v.validate(&json!({"x": 1})).unwrap_err();
        assert_eq!(err, "unknown argument 'x' (this tool takes no arguments)");
    }

    #[test]
    fn remote_references_are_not_fetched() {
        let schema = json!({"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/schema.json"}}});
        assert!(ArgumentValidator::new(&schema).is_err());
    }
}
