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
//! world itself (`mcpist:plugin@0.2.0`) is documented in `wit/plugin.wit`.

// The generated code names this crate by its external name (so that the
// `export!` macro works from module crates); make that name resolve here too.
extern crate self as mcpist_plugin;

mod declare;
pub mod web;

pub use declare::{Call, Declaration, IntoOutput, ToolSpec};

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Bindings generated from `wit/plugin.wit`. 0.2.0 reuses 0.1.0's
/// declarations, `log` and `http`; with both versions in one world the
/// generated modules carry the version (`plugin0_1_0`, `plugin0_2_0`).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "mcpist:plugin/plugin@0.2.0",
        // 0.1.0's interfaces are generated here too, not taken from a crate.
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "mcpist_plugin::bindings",
        runtime_path: "mcpist_plugin::wit_bindgen::rt",
    });
}

pub use bindings::export;
pub use bindings::exports::mcpist::plugin0_2_0::module::Guest;
pub use bindings::mcpist::plugin0_1_0::types::{
    CallContext, CredentialBinding, HeaderInjection, Injection, ModuleInfo, Tool, ToolError,
    ToolFlags,
};
pub use bindings::mcpist::plugin0_1_0::{http, log};
pub use bindings::mcpist::plugin0_2_0::types::{
    CallOutput, Content, EmbeddedResource, Media, ResourceContents, ResourceLink,
};
#[doc(hidden)]
pub use wit_bindgen;

/// Tell the client how far the call has come: `done` out of `total` (when
/// known), e.g. `progress(3.0, Some(10.0), "page 3")`. Only a client that
/// asked hears it; `done` must grow from one report to the next (the host
/// drops the rest). Outside WebAssembly (a module's native tests) it does
/// nothing.
pub fn progress(done: f64, total: Option<f64>, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::mcpist::plugin0_2_0::progress::report(
        done,
        total,
        (!message.is_empty()).then_some(message),
    );
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (done, total, message);
}

/// A result of one image (`image/png`, `image/jpeg`, `image/gif` or
/// `image/webp`; the host checks the bytes are of that type), with a line of
/// text for clients and models that do not show images.
pub fn image(mime_type: &str, data: Vec<u8>, alt: &str) -> CallOutput {
    CallOutput {
        content: vec![
            Content::Image(Media {
                mime_type: mime_type.into(),
                data,
            }),
            Content::Text(alt.into()),
        ],
        structured: None,
    }
}

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
