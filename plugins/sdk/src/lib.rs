//! Rust SDK for MCPist service modules.
//!
//! A module is a [`Declaration`]: each tool declared once, with its input
//! schema derived from its arguments type, exported with [`module!`] (see
//! [`Declaration`]). The bindings underneath stay available: a module may
//! instead implement [`Guest`] and register it with [`export!`]:
//!
//! ```ignore
//! struct MyModule;
//! mcpist_plugin::export!(MyModule);
//! impl mcpist_plugin::Guest for MyModule {
//!     fn describe() -> mcpist_plugin::ModuleInfo { /* name, version, tools, ... */ }
//!     fn call(tool: String, arguments: String, context: mcpist_plugin::CallContext)
//!         -> Result<mcpist_plugin::CallOutput, mcpist_plugin::ToolError> { /* ... */ }
//! }
//! ```
//!
//! and is built with `cargo build --release --target wasm32-wasip2`. The
//! world itself is documented in `wit/plugin.wit`.

// The generated code names this crate by its external name (so that the
// `export!` macro works from module crates); make that name resolve here too.
extern crate self as mcpist_plugin;

mod declare;
pub mod web;

pub use declare::{Call, Declaration, IntoOutput, ToolSpec};

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Bindings generated from `wit/plugin.wit`.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "mcpist:plugin/plugin",
        pub_export_macro: true,
        default_bindings_module: "mcpist_plugin::bindings",
        runtime_path: "mcpist_plugin::wit_bindgen::rt",
    });
}

pub use bindings::export;
pub use bindings::exports::mcpist::plugin::module::Guest;
pub use bindings::mcpist::plugin::types::{
    CallContext, CallOutput, Content, CredentialBinding, HeaderInjection, Injection, ModuleInfo,
    Tool, ToolError, ToolFlags,
};
pub use bindings::mcpist::plugin::{http, log};
#[doc(hidden)]
pub use wit_bindgen;

/// Describe a tool from JSON Schema values.
pub fn tool(
    name: &str,
    description: &str,
    flags: ToolFlags,
    input: &Value,
    output: Option<&Value>,
) -> Tool {
    Tool {
        name: name.into(),
        description: description.into(),
        input_schema: input.to_string(),
        output_schema: output.map(Value::to_string),
        flags,
    }
}

/// Read a call's arguments. The host has already validated them against the
/// tool's input schema, so a failure here means the schema and the type
/// disagree; it is reported as invalid arguments all the same.
pub fn arguments<T: DeserializeOwned>(arguments: &str) -> Result<T, ToolError> {
    serde_json::from_str(arguments).map_err(|e| ToolError::InvalidArguments(e.to_string()))
}

/// A structured result, also given as JSON text for clients that do not read
/// structured content.
pub fn structured(value: &Value) -> CallOutput {
    let text = value.to_string();
    CallOutput {
        content: vec![Content::Json(text.clone())],
        structured: Some(text),
    }
}
