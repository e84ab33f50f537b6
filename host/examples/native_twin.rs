//! `mcpist`, except that the bundled `text.count` tool is answered by the
//! native Rust below instead of by the `text` module in a fresh sandbox.
//! Everything else (MCP, masks, argument and output validation, audit) is the
//! same code, so `cargo xtask bench` can report the sandbox's cost as a ratio
//! to this twin. Not for serving: the twin bypasses the module's pin, and is
//! only built with the `bench` feature.

use std::process::ExitCode;
use std::sync::Arc;

#[path = "../benches/common/text_count.rs"]
mod text_count;

fn main() -> ExitCode {
    let run = mcpist::cli::run_customized(|server| {
        server.native_twin("text", "count", Arc::new(text_count::count))
    });
    match run {
        Ok(code) => code,
        Err(error) => {
            eprintln!("native_twin: {error:#}");
            ExitCode::FAILURE
        }
    }
}
