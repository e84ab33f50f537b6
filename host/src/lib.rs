//! MCPist: a personal MCP server whose integrations are sandboxed WebAssembly
//! components.
//!
//! The crate is laid out by concern:
//! - [`runtime`]: the wasmtime engine, per-call sandboxed instances, limits;
//! - [`registry`]: the plugins folder, `registry.lock`, trust on first use;
//! - [`broker`]: accounts and their secrets, from pluggable vaults;
//! - [`egress`]: modules' outbound HTTP: approved hosts only, credentials
//!   injected by the host, secrets redacted from what comes back;
//! - [`catalog`]: the served modules and the one path every tool call takes;
//! - [`mcp`]: the meta-tools over MCP (rmcp), on stdio and on Streamable
//!   HTTP for clients holding an API key from [`clients`] or an access
//!   token from the owner's identity provider ([`oauth`]);
//! - [`policy`]: per-client tool masks;
//! - [`audit`]: the hash-chained record of every call;
//! - [`config`], [`logging`], [`cli`]: the `mcpist` binary's edges.

pub mod atomic_file;
pub mod audit;
pub mod broker;
pub mod catalog;
pub mod cli;
pub mod clients;
pub mod config;
pub mod data_file;
pub mod egress;
pub mod logging;
pub mod mcp;
pub mod oauth;
pub mod policy;
pub mod registry;
pub mod runtime;
