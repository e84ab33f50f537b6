//! The owner's accounts: (service, account name) → where its secret lives.
//! `accounts.toml` holds no secret, only vault names and references, so it
//! can be read and listed freely.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data_file::{self, Versioned};

const FORMAT_VERSION: u32 = 1;
const HEADER: &str = "\
# accounts.toml: the owner's accounts per service and where each one's secret
# is kept. No secrets here; written by `mcpist account ...`.
";

/// Why the accounts file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the variants and fields are named by their messages
pub enum AccountsError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One account: a name, and where its secret is kept (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The service, as modules bind it (e.g. `github`).
    pub service: String,
    /// The owner's name for it (e.g. `work`).
    pub name: String,
    /// The vault holding the secret (a name from `mcpist.toml`).
    pub vault: String,
    /// Where in that vault.
    pub reference: String,
    /// What its secret is: a static token, or an OAuth token set.
    #[serde(default, skip_serializing_if = "AccountKind::is_token")]
    pub kind: AccountKind,
}

/// What an account's secret is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// A token the owner pasted; it is used as it is.
    #[default]
    Token,
    /// Tokens from `mcpist account connect`, renewed by the broker.
    OAuth,
}

impl AccountKind {
    fn is_token(&self) -> bool {
        *self == AccountKind::Token
    }

    /// As `mcpist account list` shows it.
    pub fn label(self) -> &'static str {
        match self {
            AccountKind::Token => "token",
            AccountKind::OAuth => "oauth",
        }
    }
}

/// Every account, with each service's default: `accounts.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    #[serde(default = "format_version")]
    version: u32,
    #[serde(default, rename = "account")]
    accounts: Vec<Account>,
    /// Service → its default account's name.
    #[serde(default, rename = "default")]
    defaults: BTreeMap<String, String>,
}

fn format_version() -> u32 {
    FORMAT_VERSION
}

impl Versioned for Accounts {
    const VERSION: u32 = FORMAT_VERSION;
    fn version(&self) -> u32 {
        self.version
    }
}

impl Accounts {
    /// Read the file; a missing file means no accounts yet.
    pub fn load(path: &Path) -> Result<Accounts, AccountsError> {
        data_file::read(path)
            .map(Option::unwrap_or_default)
            .map_err(|message| AccountsError::Read {
                path: path.to_owned(),
                message,
            })
    }

    /// Write `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), AccountsError> {
        let mut repr = self.clone();
        repr.version = FORMAT_VERSION;
        data_file::write(path, HEADER, &repr).map_err(|source| AccountsError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// Every account.
    pub fn all(&self) -> &[Account] {
        &self.accounts
    }

    /// The accounts of `service`.
    pub fn of(&self, service: &str) -> impl Iterator<Item = &Account> {
        self.accounts.iter().filter(move |a| a.service == service)
    }

    /// The account `name` of `service`.
    pub fn find(&self, service: &str, name: &str) -> Option<&Account> {
        self.of(service).find(|a| a.name == name)
    }

    /// The name of `service`'s default account.
    pub fn default_for(&self, service: &str) -> Option<&str> {
        self.defaults.get(service).map(String::as_str)
    }

    /// Add or replace an account. The first account of a service becomes
    /// its default.
    pub fn upsert(&mut self, account: Account) {
        self.defaults
            .entry(account.service.clone())
            .or_insert_with(|| account.name.clone());
        self.accounts
            .retain(|a| !(a.service == account.service && a.name == account.name));
        self.accounts.push(account);
        self.accounts
            .sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
    }

    /// Remove an account. If it was the default and exactly one account of
    /// the service remains, that one becomes the default; with several left
    /// the owner must choose.
    pub fn remove(&mut self, service: &str, name: &str) -> Option<Account> {
        let index = self
            .accounts
            .iter()
            .position(|a| a.service == service && a.name == name)?;
        let removed = self.accounts.remove(index);
        if self.default_for(service) == Some(name) {
            self.defaults.remove(service);
            let left: Vec<&Account> = self.of(service).collect();
            if let [only] = left.as_slice() {
                let only = only.name.clone();
                self.defaults.insert(service.to_owned(), only);
            }
        }
        Some(removed)
    }

    /// Keep only the accounts of `service` whose names pass `keep` (the
    /// other services' are untouched); the default goes if it is dropped.
    pub fn retain_of(&mut self, service: &str, keep: impl Fn(&str) -> bool) {
        self.accounts
            .retain(|a| a.service != service || keep(&a.name));
        if self.default_for(service).is_some_and(|d| !keep(d)) {
            self.defaults.remove(service);
        }
    }

    /// Make `name` the default of `service`; false if there is no such account.
    pub fn set_default(&mut self, service: &str, name: &str) -> bool {
        if self.find(service, name).is_none() {
            return false;
        }
        self.defaults.insert(service.to_owned(), name.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(service: &str, name: &str) -> Account {
        Account {
            service: service.into(),
            name: name.into(),
            vault: "local".into(),
            reference: format!("{service}/{name}"),
            kind: AccountKind::Token,
        }
    }

    #[test]
    fn first_account_is_default_and_defaults_follow_removal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.toml");
        let mut accounts = Accounts::load(&path).unwrap();
        accounts.upsert(account("github", "personal"));
        accounts.upsert(account("github", "work"));
        accounts.upsert(account("notion", "team"));
        assert_eq!(accounts.default_for("github"), Some("personal"));
        accounts.save(&path).unwrap();
        let mut accounts = Accounts::load(&path).unwrap();
        assert_eq!(accounts.of("github").count(), 2);
        assert!(accounts.set_default("github", "work"));
        assert!(!accounts.set_default("github", "nobody"));
        accounts.remove("github", "work");
        assert_eq!(accounts.default_for("github"), Some("personal"));
        accounts.upsert(account("github", "ci"));
        accounts.upsert(account("github", "work"));
        accounts.remove("github", "personal");
        assert_eq!(accounts.default_for("github"), None);
    }
}
