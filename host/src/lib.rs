//! MCPist: a personal MCP server whose integrations are sandboxed WebAssembly
//! components.
//!
//! The crate is laid out by concern, each layer depending only on those
//! below it:
//! - [`manifest`]: what a module declares (tools, hosts, credential
//!   bindings); a leaf that imports nothing else of the crate;
//! - [`runtime`]: the wasmtime engine, its compiled modules, per-call
//!   sandboxed instances and limits, and the [`runtime::GuestServices`]
//!   trait through which a guest reaches the host;
//! - [`registry`]: the plugins folder, `registry.lock`, trust on first use;
//! - [`exchanger`]: MCPist as an OAuth client of the services the owner
//!   connects: sign-in, refresh and revocation at their providers;
//! - [`broker`]: accounts and their secrets, from pluggable vaults; OAuth
//!   accounts' access tokens renewed before they expire;
//! - [`egress`]: modules' outbound HTTP, the implementation of the guest
//!   services: approved hosts only, credentials injected by the host,
//!   secrets redacted from what comes back;
//! - [`policy`]: per-client and per-account tool masks;
//! - [`audit`]: the hash-chained record of every call;
//! - [`catalog`]: the modules being served, kept up to date by hot reload;
//! - [`calls`]: the one audited path every tool call takes, whatever the
//!   front end;
//! - [`plan`]: server-side plans (`run_plan`): a graph of calls checked
//!   whole, then run in parallel where the tools' flags allow, each step a
//!   call of [`calls`];
//! - [`server`]: the composition root that wires all of the above once;
//! - `mcp`: the front end over MCP (rmcp), on stdio and on Streamable
//!   HTTP for clients holding an API key from `clients` or an access
//!   token from the owner's identity provider (`oauth`); served through
//!   [`server::Server`];
//! - [`web`]: the owner's web console, a second front end over the same
//!   operations as the command line (approvals, accounts, clients, audit);
//! - [`config`], [`logging`], [`cli`]: the `mcpist` binary's edges.
//!
//! Embedding: load a configuration, build the server, and call a tool the
//! way every front end does.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use mcpist::calls::ToolCall;
//! use mcpist::config::{Config, Env};
//! use mcpist::server::Server;
//! use tokio_util::sync::CancellationToken;
//!
//! let config = Config::load(None, &Env::from_process())?;
//! let server = Server::builder(&config).build().await?;
//! let call = ToolCall::new("text", "count", serde_json::json!({"text": "one two"}));
//! // The client's name selects its mask, and is what the audit log records.
//! let output = server
//!     .calls()
//!     .call("stdio", &call, &CancellationToken::new())
//!     .await?;
//! println!("{:?}", output.structured);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub(crate) mod atomic_file;
pub mod audit;
pub mod broker;
pub mod calls;
pub mod catalog;
pub mod cli;
pub(crate) mod clients;
pub mod config;
pub(crate) mod data_file;
pub mod egress;
pub mod exchanger;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod logging;
pub mod manifest;
pub(crate) mod mcp;
pub(crate) mod oauth;
pub mod plan;
pub mod policy;
pub mod registry;
pub mod runtime;
pub mod script;
pub(crate) mod secure_url;
pub mod server;
pub(crate) mod untrusted_text;
pub mod web;
