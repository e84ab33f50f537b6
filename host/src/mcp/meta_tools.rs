//! Definitions and argument types of the meta-tools.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub const GET_MODULE_SCHEMA: &str = "get_module_schema";
pub const CALL_MODULE_TOOL: &str = "call_module_tool";
pub const RUN_PLAN: &str = "run_plan";
pub const RUN_SCRIPT: &str = "run_script";

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunScriptArgs {
    pub script: String,
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

    vec![get_schema, call_tool, run_plan()]
}

/// `run_plan`, offered in both tool modes.
pub fn run_plan() -> Tool {
    Tool::new(
        RUN_PLAN,
        "Run several module tools in one request, as a plan the server runs: steps that do not \
         depend on each other run in parallel (up to max_parallel), a step runs once the steps in \
         its depends_on have succeeded, and an argument value {\"$from\": STEP_ID, \"pointer\": \
         \"/json/pointer\"} is replaced by that part of an earlier step's result (the step must be \
         in depends_on). The whole plan is checked before anything runs and refused with every \
         problem listed. A failed step skips the steps that depend on it; on_error \"stop\" stops \
         the plan instead. The result lists each step's status (ok, failed, declined, skipped, \
         cancelled, not_run), duration and result; give a step `select` (a JSON Pointer) to return \
         only part of its result. Each step is a normal tool call: same arguments, masks, consent \
         and audit as call_module_tool.",
        object(json!({
            "type": "object",
            "properties": {
                "steps": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": crate::plan::MAX_STEPS,
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "description": "The step's name, unique in the plan."},
                            "module": {"type": "string"},
                            "tool": {"type": "string"},
                            "arguments": {"type": "object", "additionalProperties": true, "description": "The tool's arguments; a value may be {\"$from\": STEP_ID, \"pointer\": \"/a/0\"}."},
                            "account": {"type": "string", "description": "Account name; default account when omitted."},
                            "depends_on": {"type": "array", "items": {"type": "string"}, "description": "Steps that must succeed first."},
                            "select": {"type": "string", "description": "A JSON Pointer: return only this part of the step's result."}
                        },
                        "required": ["id", "module", "tool"],
                        "additionalProperties": false
                    }
                },
                "on_error": {"type": "string", "enum": ["continue", "stop"], "description": "continue (default): steps not depending on a failed one go on; stop: cancel the rest."},
                "max_parallel": {"type": "integer", "minimum": 1, "maximum": crate::plan::MAX_PARALLEL, "description": "Steps running at once (default 4)."}
            },
            "required": ["steps"],
            "additionalProperties": false
        })),
    )
    .with_title("Run plan")
}

/// `run_script`, offered in both tool modes when the owner approved a
/// script engine, with `catalogue` (the tools this client may call, typed)
/// in its description.
pub fn run_script(catalogue: &str) -> Tool {
    let description = format!(
        "Run a short JavaScript program on the server that calls module tools, instead of calling \
         them one by one. The program is the body of an async function: `await` tool calls and \
         `return` a JSON value. Call a tool with `await tools.MODULE.TOOL(arguments, {{account}})` \
         (or `await call(\"MODULE\", \"TOOL\", arguments, {{account}})`); it resolves to the tool's \
         structured result (or its text, parsed when it is JSON) and throws an Error with the \
         reason when the call fails. Calls started together run in parallel, e.g. `await \
         Promise.all([...])`. Each call is a normal tool call: same arguments, masks, consent and \
         audit as call_module_tool. Nothing else is reachable: no network, files or environment. \
         `console.log` lines and the returned value come back as the result, with each call's \
         outcome; the script runs with the CPU, memory and time limits of a tool call. Example: \
         `const [a, b] = await Promise.all([tools.github.get_issue({{owner: \"o\", repo: \"r\", \
         number: 1}}), tools.github.get_issue({{owner: \"o\", repo: \"r\", number: 2}})]); return \
         [a.title, b.title];`\n\nThe tools (arguments, the fields of the result, flags):\n{catalogue}"
    );
    Tool::new(
        RUN_SCRIPT,
        description,
        object(json!({
            "type": "object",
            "properties": {
                "script": {
                    "type": "string",
                    "maxLength": crate::script::MAX_SOURCE_BYTES,
                    "description": "The JavaScript program: the body of an async function."
                }
            },
            "required": ["script"],
            "additionalProperties": false
        })),
    )
    .with_title("Run script")
}

fn object(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!("meta-tool schemas are JSON objects"),
    }
}
