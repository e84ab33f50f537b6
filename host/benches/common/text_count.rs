//! The native twin of the bundled `text.count`, shared by
//! `examples/native_twin.rs` (served over MCP by `cargo xtask bench`) and
//! `benches/sandbox.rs` (criterion), so that both measure the same code.

use mcpist::runtime::{ContentItem, ModuleError, ModuleErrorKind, ToolOutput};
use serde_json::{Value, json};

/// The same computation as `count` in `plugins/text/src/lib.rs`, with the
/// same result shape (`mcpist_plugin::structured`: the JSON as content and
/// as structured result).
pub fn count(arguments: &Value) -> Result<ToolOutput, ModuleError> {
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
