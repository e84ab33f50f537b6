//! What each client may see and call: tool masks, configured per client in
//! `mcpist.toml` (`[masks.NAME]`; `stdio` is the local owner).
//!
//! A masked module or tool is invisible: absent from `get_module_schema`,
//! and `call_module_tool` answers exactly as it does for a name that does
//! not exist. A client without a mask sees everything that is served.

use std::collections::BTreeMap;
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::broker::Accounts;
use crate::registry::manifest::ToolSpec;

/// A mask as written in `mcpist.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskFile {
    /// Modules shown (globs, e.g. `github`, `note*`); all when absent.
    pub modules: Option<Vec<String>>,
    /// Tools shown, as `module.tool` globs (e.g. `github.get_*`); all when
    /// absent.
    pub tools: Option<Vec<String>>,
    /// Tools hidden even if shown by the lists above.
    #[serde(default)]
    pub deny_tools: Vec<String>,
    /// Only tools flagged read-only.
    #[serde(default)]
    pub read_only: bool,
    /// No tool flagged destructive.
    #[serde(default)]
    pub no_destructive: bool,
    /// Per service, the accounts this client may act for; other services'
    /// accounts are all usable.
    #[serde(default)]
    pub accounts: BTreeMap<String, Vec<String>>,
}

/// A compiled mask.
#[derive(Debug, Clone, Default)]
pub struct Mask {
    modules: Option<GlobSet>,
    tools: Option<GlobSet>,
    deny: Option<GlobSet>,
    read_only: bool,
    no_destructive: bool,
    accounts: BTreeMap<String, Vec<String>>,
}

impl Mask {
    /// Shows everything.
    pub fn open() -> Mask {
        Mask::default()
    }

    pub fn compile(file: &MaskFile) -> Result<Mask, String> {
        let set = |globs: &[String], what: &str| -> Result<GlobSet, String> {
            let mut builder = GlobSetBuilder::new();
            for glob in globs {
                builder.add(
                    Glob::new(glob)
                        .map_err(|e| format!("{what}: {glob:?} is not a valid glob: {e}"))?,
                );
            }
            builder.build().map_err(|e| format!("{what}: {e}"))
        };
        Ok(Mask {
            modules: file
                .modules
                .as_deref()
                .map(|g| set(g, "modules"))
                .transpose()?,
            tools: file.tools.as_deref().map(|g| set(g, "tools")).transpose()?,
            deny: (!file.deny_tools.is_empty())
                .then(|| set(&file.deny_tools, "deny_tools"))
                .transpose()?,
            read_only: file.read_only,
            no_destructive: file.no_destructive,
            accounts: file.accounts.clone(),
        })
    }

    pub fn shows_module(&self, module: &str) -> bool {
        self.modules.as_ref().is_none_or(|m| m.is_match(module))
    }

    pub fn shows_tool(&self, module: &str, tool: &ToolSpec) -> bool {
        let name = format!("{module}.{}", tool.name);
        self.shows_module(module)
            && self.tools.as_ref().is_none_or(|t| t.is_match(&name))
            && !self.deny.as_ref().is_some_and(|d| d.is_match(&name))
            && (!self.read_only || tool.flags.read_only)
            && !(self.no_destructive && tool.flags.destructive)
    }

    /// `accounts` as this client sees them: for a service the mask
    /// restricts, only the allowed accounts, and the default only if it is
    /// one of them.
    pub fn accounts(&self, accounts: &Accounts) -> Accounts {
        let mut visible = accounts.clone();
        for (service, allowed) in &self.accounts {
            visible.retain_of(service, |name| allowed.iter().any(|a| a == name));
        }
        visible
    }
}

/// The masks of all clients.
#[derive(Debug, Clone, Default)]
pub struct Masks {
    by_client: BTreeMap<String, Arc<Mask>>,
    open: Arc<Mask>,
}

impl Masks {
    pub fn compile(files: &BTreeMap<String, MaskFile>) -> Result<Masks, String> {
        let by_client = files
            .iter()
            .map(|(client, file)| {
                Mask::compile(file)
                    .map(|mask| (client.clone(), Arc::new(mask)))
                    .map_err(|e| format!("[masks.{client}] {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Masks {
            by_client,
            open: Arc::new(Mask::open()),
        })
    }

    /// The mask of `client`; everything for a client without one.
    pub fn of(&self, client: &str) -> Arc<Mask> {
        self.by_client
            .get(client)
            .cloned()
            .unwrap_or_else(|| self.open.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::manifest::ToolFlags;

    fn tool(name: &str, read_only: bool, destructive: bool) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: String::new(),
            input_schema: serde_json::json!({"type": "object"}),
            output_schema: None,
            flags: ToolFlags {
                read_only,
                destructive,
                ..ToolFlags::default()
            },
        }
    }

    #[test]
    fn modules_tools_and_flags_narrow_what_is_shown() {
        let mask = Mask::compile(&MaskFile {
            modules: Some(vec!["github".into(), "te*".into()]),
            deny_tools: vec!["github.create_*".into()],
            no_destructive: true,
            ..MaskFile::default()
        })
        .unwrap();
        assert!(mask.shows_module("github") && mask.shows_module("text"));
        assert!(!mask.shows_module("notion"));
        assert!(mask.shows_tool("github", &tool("get_issue", true, false)));
        assert!(!mask.shows_tool("github", &tool("create_issue", false, false)));
        assert!(!mask.shows_tool("github", &tool("delete_repo", false, true)));
        assert!(!mask.shows_tool("notion", &tool("search", true, false)));

        let read_only = Mask::compile(&MaskFile {
            read_only: true,
            tools: Some(vec!["*.get_*".into(), "text.*".into()]),
            ..MaskFile::default()
        })
        .unwrap();
        assert!(read_only.shows_tool("github", &tool("get_issue", true, false)));
        assert!(!read_only.shows_tool("github", &tool("get_token", false, false)));
        assert!(!read_only.shows_tool("github", &tool("list_issues", true, false)));
        assert!(Mask::open().shows_tool("x", &tool("y", false, true)));

        let err = Mask::compile(&MaskFile {
            modules: Some(vec!["[".into()]),
            ..MaskFile::default()
        })
        .unwrap_err();
        assert!(
            err.starts_with("modules: \"[\" is not a valid glob"),
            "{err}"
        );
    }
}
