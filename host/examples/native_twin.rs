//! `mcpist`, except that the bundled `text.count` tool is answered by the
//! native Rust below instead of by the `text` module in a fresh sandbox.
//! Everything else (MCP, masks, argument and output validation, audit) is the
//! same code, so `cargo xtask bench` can report the sandbox's cost as a ratio
//! to this twin. Not for serving: the twin bypasses the module's pin.

use std::process::ExitCode;
use std::sync::Arc;

use mcpist::runtime::{ContentItem, ModuleError, ModuleErrorKind, ToolOutput};
use serde_json::{Value, json};

/// The same computation as `count` in `plugins/text/src/lib.rs`, with the
/// same result shape (`mcpist_plugin::structured`: the JSON as content and
/// as structured result).
fn count(arguments: &Value) -> Result<ToolOutput, ModuleError> {
    #[derive(serde::Deserialize)]
    struct CountArgs {
        text: String,
    }
    let args: CountArgs = serde_json::from_value(arguments.clone()).map_err(|e| ModuleError {
        kind: ModuleErrorKind::InvalidArguments,
        message: e.to_string(),
    })?;
    let text = args.text;
    let result = json!({
        "bytes": text.len(),
        "chars": text.chars().count(),
        "words": text.split_whitespace().count(),
        "lines": text.lines().count(),
    });
    Ok(ToolOutput {
        content: vec![ContentItem::Json(result.to_string())],
        structured: Some(result),
    })
}

fn main() -> ExitCode {
    let run =
        mcpist::cli::run_with(|runtime| runtime.with_native_twin("text", "count", Arc::new(count)));
    match run {
        Ok(code) => code,
        Err(error) => {
            eprintln!("native_twin: {error:#}");
            ExitCode::FAILURE
        }
    }
}
