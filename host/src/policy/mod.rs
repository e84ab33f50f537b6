//! What each client may see and call: tool masks, configured per client in
//! `mcpist.toml` (`[masks.NAME]`; `stdio` is the local owner), and per
//! account (`[account_masks.SERVICE.ACCOUNT]`).
//!
//! A masked module or tool is invisible: absent from `get_module_schema`,
//! and `call_module_tool` answers exactly as it does for a name that does
//! not exist. A client without a mask sees everything that is served.
//!
//! An account mask limits what may act for one account (the work GitHub
//! account: read-only tools only), for every client or for the clients it
//! names. The tools stay visible, since other accounts may run them; a call
//! that would act for the account against its mask is refused, saying why.
//!
//! Consent ([`consent`]) says which calls wait for the person at the client
//! to agree.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::broker::Accounts;
use crate::manifest::ToolSpec;

pub mod consent;

pub use consent::{ConsentFile, ConsentPolicy, Decision};

/// A client's mask as written in `mcpist.toml`.
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

/// An account's mask as written in `mcpist.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountMaskFile {
    /// The clients it applies to; every client when absent.
    pub clients: Option<Vec<String>>,
    /// Tools that may act for the account, as `module.tool` globs; all when
    /// absent.
    pub tools: Option<Vec<String>>,
    /// Tools that may not, even if allowed by `tools`.
    #[serde(default)]
    pub deny_tools: Vec<String>,
    /// Only tools flagged read-only.
    #[serde(default)]
    pub read_only: bool,
    /// No tool flagged destructive.
    #[serde(default)]
    pub no_destructive: bool,
}

/// Which tools may pass: by name (globs) and by flags.
#[derive(Debug, Clone, Default)]
struct ToolRule {
    tools: Option<GlobSet>,
    deny: Option<GlobSet>,
    read_only: bool,
    no_destructive: bool,
}

/// A list of globs in a mask that does not compile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct GlobError {
    /// The mask's key holding the list (`modules`, `tools`, `deny_tools`).
    pub key: &'static str,
    /// Which glob, and what is wrong with it.
    pub problem: String,
}

/// A mask in `mcpist.toml` that does not compile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("[{table}] {source}")]
pub struct MaskError {
    /// The table at fault, as `masks.NAME` or `account_masks.SERVICE.ACCOUNT`.
    pub table: String,
    /// What is wrong in it.
    #[source]
    pub source: GlobError,
}

fn glob_set(globs: &[String], key: &'static str) -> Result<GlobSet, GlobError> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        builder.add(Glob::new(glob).map_err(|e| GlobError {
            key,
            problem: format!("{glob:?} is not a valid glob: {e}"),
        })?);
    }
    builder.build().map_err(|e| GlobError {
        key,
        problem: e.to_string(),
    })
}

impl ToolRule {
    fn compile(
        tools: Option<&[String]>,
        deny_tools: &[String],
        read_only: bool,
        no_destructive: bool,
    ) -> Result<ToolRule, GlobError> {
        Ok(ToolRule {
            tools: tools.map(|g| glob_set(g, "tools")).transpose()?,
            deny: (!deny_tools.is_empty())
                .then(|| glob_set(deny_tools, "deny_tools"))
                .transpose()?,
            read_only,
            no_destructive,
        })
    }

    /// `None` if the rule lets `module.tool` through, else why not.
    fn refusal(&self, module: &str, tool: &ToolSpec) -> Option<&'static str> {
        let name = format!("{module}.{}", tool.name);
        if self.tools.as_ref().is_some_and(|t| !t.is_match(&name)) {
            Some("the tool is not among those allowed")
        } else if self.deny.as_ref().is_some_and(|d| d.is_match(&name)) {
            Some("the tool is denied")
        } else if self.read_only && !tool.flags.read_only {
            Some("only read-only tools are allowed")
        } else if self.no_destructive && tool.flags.destructive {
            Some("destructive tools are not allowed")
        } else {
            None
        }
    }
}

/// A compiled mask: one client's, with the account masks that apply to it.
#[derive(Debug, Clone, Default)]
pub struct Mask {
    modules: Option<GlobSet>,
    tools: ToolRule,
    accounts: BTreeMap<String, Vec<String>>,
    /// (service, account) → what may act for it.
    account_rules: BTreeMap<(String, String), Vec<ToolRule>>,
}

impl Mask {
    /// Shows everything.
    pub fn open() -> Mask {
        Mask::default()
    }

    /// Compile one client's mask.
    pub fn compile(file: &MaskFile) -> Result<Mask, GlobError> {
        Ok(Mask {
            modules: file
                .modules
                .as_deref()
                .map(|g| glob_set(g, "modules"))
                .transpose()?,
            tools: ToolRule::compile(
                file.tools.as_deref(),
                &file.deny_tools,
                file.read_only,
                file.no_destructive,
            )?,
            accounts: file.accounts.clone(),
            account_rules: BTreeMap::new(),
        })
    }

    /// Whether the module may be seen at all.
    pub fn shows_module(&self, module: &str) -> bool {
        self.modules.as_ref().is_none_or(|m| m.is_match(module))
    }

    /// Whether `module.tool` may be seen (and so called).
    pub fn shows_tool(&self, module: &str, tool: &ToolSpec) -> bool {
        self.shows_module(module) && self.tools.refusal(module, tool).is_none()
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

    /// Whether `module.tool` may act for `service` account `account`; if
    /// not, why, for the caller.
    pub fn account_refusal(
        &self,
        service: &str,
        account: &str,
        module: &str,
        tool: &ToolSpec,
    ) -> Option<String> {
        let rules = self
            .account_rules
            .get(&(service.to_owned(), account.to_owned()))?;
        rules.iter().find_map(|rule| {
            rule.refusal(module, tool).map(|why| {
                format!(
                    "the {service} account `{account}` is masked for `{module}.{}`: {why} for that account (see [account_masks.{service}.{account}] in mcpist.toml); use another account or ask the owner",
                    tool.name
                )
            })
        })
    }
}

/// The masks of all clients.
#[derive(Debug, Clone, Default)]
pub struct Masks {
    by_client: BTreeMap<String, Arc<Mask>>,
    /// For clients without a mask of their own.
    open: Arc<Mask>,
    configured: Vec<String>,
    masked_accounts: Vec<(String, String)>,
}

/// `[account_masks.SERVICE.ACCOUNT]`, by service then account.
pub type AccountMaskFiles = BTreeMap<String, BTreeMap<String, AccountMaskFile>>;

impl Masks {
    /// Compile every client's mask and every account mask, once.
    pub fn compile(
        files: &BTreeMap<String, MaskFile>,
        account_files: &AccountMaskFiles,
    ) -> Result<Masks, MaskError> {
        let mut by_client: BTreeMap<String, Mask> = files
            .iter()
            .map(|(client, file)| {
                Mask::compile(file)
                    .map(|mask| (client.clone(), mask))
                    .map_err(|source| MaskError {
                        table: format!("masks.{client}"),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        let configured = files.keys().cloned().collect();
        let mut open = Mask::open();
        let mut rules = Vec::new();
        let mut masked_accounts = Vec::new();
        for (service, accounts) in account_files {
            for (account, file) in accounts {
                let rule = ToolRule::compile(
                    file.tools.as_deref(),
                    &file.deny_tools,
                    file.read_only,
                    file.no_destructive,
                )
                .map_err(|source| MaskError {
                    table: format!("account_masks.{service}.{account}"),
                    source,
                })?;
                masked_accounts.push((service.clone(), account.clone()));
                rules.push((
                    (service.clone(), account.clone()),
                    file.clients.clone(),
                    rule,
                ));
            }
        }
        // A client named only by an account mask gets a mask of its own.
        let named: BTreeSet<&String> = rules
            .iter()
            .flat_map(|(_, c, _)| c.iter().flatten())
            .collect();
        for client in named {
            by_client.entry(client.clone()).or_default();
        }
        for (key, clients, rule) in rules {
            let applies = |client: &str| {
                clients
                    .as_ref()
                    .is_none_or(|c| c.iter().any(|n| n == client))
            };
            for (client, mask) in &mut by_client {
                if applies(client) {
                    mask.account_rules
                        .entry(key.clone())
                        .or_default()
                        .push(rule.clone());
                }
            }
            if clients.is_none() {
                open.account_rules.entry(key).or_default().push(rule);
            }
        }
        Ok(Masks {
            by_client: by_client
                .into_iter()
                .map(|(c, m)| (c, Arc::new(m)))
                .collect(),
            open: Arc::new(open),
            configured,
            masked_accounts,
        })
    }

    /// The clients with a mask of their own in `mcpist.toml`.
    pub fn configured_clients(&self) -> &[String] {
        &self.configured
    }

    /// The (service, account) pairs with an account mask.
    pub fn masked_accounts(&self) -> &[(String, String)] {
        &self.masked_accounts
    }

    /// The mask of `client`; everything for a client without one, save what
    /// account masks for every client forbid.
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
    use crate::manifest::ToolFlags;

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
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("modules: \"[\" is not a valid glob"),
            "{err}"
        );
    }

    #[test]
    fn account_masks_limit_what_acts_for_an_account_for_the_clients_they_name() {
        let rule = |clients: Option<Vec<&str>>, read_only: bool, deny: &[&str]| AccountMaskFile {
            clients: clients.map(|c| c.into_iter().map(String::from).collect()),
            read_only,
            deny_tools: deny.iter().map(|d| d.to_string()).collect(),
            ..AccountMaskFile::default()
        };
        let mut accounts = AccountMaskFiles::new();
        accounts
            .entry("github".into())
            .or_default()
            .insert("work".into(), rule(None, true, &[]));
        accounts.entry("github".into()).or_default().insert(
            "personal".into(),
            rule(Some(vec!["phone"]), false, &["github.get_*"]),
        );
        let masks = Masks::compile(&BTreeMap::new(), &accounts).unwrap();
        let (get, create) = (
            tool("get_issue", true, false),
            tool("create_issue", false, false),
        );

        for client in ["phone", "someone", "stdio"] {
            let mask = masks.of(client);
            assert!(
                mask.shows_tool("github", &create),
                "account masks hide nothing"
            );
            assert!(
                mask.account_refusal("github", "work", "github", &get)
                    .is_none()
            );
            let why = mask
                .account_refusal("github", "work", "github", &create)
                .unwrap();
            assert!(
                why.contains("only read-only tools") && why.contains("[account_masks.github.work]"),
                "{why}"
            );
        }
        let phone = masks.of("phone");
        assert!(
            phone
                .account_refusal("github", "personal", "github", &get)
                .unwrap()
                .contains("denied")
        );
        assert!(
            phone
                .account_refusal("github", "personal", "github", &create)
                .is_none()
        );
        assert!(
            masks
                .of("someone")
                .account_refusal("github", "personal", "github", &get)
                .is_none()
        );

        let bad = AccountMaskFiles::from([(
            "github".into(),
            BTreeMap::from([("work".into(), rule(None, false, &["["]))]),
        )]);
        let err = Masks::compile(&BTreeMap::new(), &bad)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("[account_masks.github.work] deny_tools:"),
            "{err}"
        );
    }
}
