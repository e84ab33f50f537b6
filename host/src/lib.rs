//! MCPist: a personal MCP server whose integrations are sandboxed WebAssembly
//! components.
//!
//! The crate is laid out by concern:
//! - [`runtime`]: the wasmtime engine, per-call sandboxed instances, limits;
//! - [`registry`]: the plugins folder, `registry.lock`, trust on first use;
//! - [`catalog`]: the served modules and the one path every tool call takes;
//! - [`mcp`]: the meta-tools over MCP (rmcp);
//! - [`config`], [`logging`], [`cli`]: the `mcpist` binary's edges.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod logging;
pub mod mcp;
pub mod registry;
pub mod runtime;
