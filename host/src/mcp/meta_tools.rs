//! Definitions and argument types of the meta-tools.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub const GET_MODULE_SCHEMA: &str = "get_module_schema";
pub const CALL_MODULE_TOOL: &str = "call_module_tool";

/// One module name or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(name) => vec![name],
            OneOrMany::Many(names) => names,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetModuleSchemaArgs {
    pub module: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallModuleToolArgs {
    pub module: String,
    pub tool: String,
    pub arguments: Option<Value>,
    pub account: Option<String>,
}

/// Read a meta-tool's arguments; the error is written for the model.
pub fn parse<T: DeserializeOwned>(arguments: Value) -> Result<T, String> {
    serde_json::from_value(arguments).map_err(|e| format!("invalid arguments: {e}"))
}

pub fn definitions() -> Vec<Tool> {
    let get_schema = Tool::new(
        GET_MODULE_SCHEMA,
        "List the available service modules, or describe modules' tools. Without arguments: every \
         module with its version, description and tool names. With `module` (a name or a list of \
         names): each tool's description, JSON input schema, output schema and annotations \
         (readOnlyHint, destructiveHint, idempotentHint, openWorldHint). Call this before \
         call_module_tool to learn the exact arguments a tool takes.",
        object(json!({
            "type": "object",
            "properties": {
                "module": {
                    "anyOf": [
                        {"type": "string"},
                        {"type": "array", "items": {"type": "string"}}
                    ],
                    "description": "A module name, or a list of module names, from the catalog."
                }
            },
            "additionalProperties": false
        })),
    )
    .with_title("Get module schema")
    .with_annotations(
        ToolAnnotations::new()
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    );

    let call_tool = Tool::new(
        CALL_MODULE_TOOL,
        "Run one tool of a service module. `arguments` must match the tool's input schema from \
         get_module_schema exactly (unknown properties are refused). `account` picks which of the \
         owner's accounts the tool acts for; omit it for the default account. The result is the \
         tool's own content (and structured content when the tool declares an output schema).",
        object(json!({
            "type": "object",
            "properties": {
                "module": {"type": "string", "description": "Module name, e.g. text."},
                "tool": {"type": "string", "description": "Tool name within the module."},
                "arguments": {
                    "type": "object",
                    "description": "The tool's arguments, matching its input schema.",
                    "additionalProperties": true
                },
                "account": {"type": "string", "description": "Account name; default account when omitted."}
            },
            "required": ["module", "tool"],
            "additionalProperties": false
        })),
    )
    .with_title("Call module tool");

    vec![get_schema, call_tool]
}

fn object(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!("meta-tool schemas are JSON objects"),
    }
}
