//! The token broker: which account a call acts for, and that account's
//! secret, fetched from the vault the owner routed its service to.
//!
//! Secrets leave the broker only as [`SecretString`]s (zeroized on drop, and
//! redacted in `Debug`), and only towards the egress layer, which attaches
//! them to outbound requests. Modules and the LLM never receive them.

mod accounts;
mod aws_vault;
mod env_vault;
mod file_vault;
mod guarded;
mod kv_vault;
mod renewal;
mod status;
mod vault;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::data_file::Cached;
use crate::exchanger::{ExchangeError, Exchanger, OAuthApp};

pub use accounts::{Account, AccountKind, Accounts, AccountsError};
pub use aws_vault::{AwsSettings, AwsVaultFile, InvalidKey};
pub use guarded::DEFAULT_TIMEOUT as DEFAULT_VAULT_TIMEOUT;
pub use kv_vault::{KvAuth, KvSettings, SecretSource};
pub use renewal::{OAUTH_APP_SERVICE, Revocation};
pub use status::{AccountStatus, Health, expiry};
pub use vault::{Vault, VaultError};

/// The vault every service uses unless `mcpist.toml` routes it elsewhere.
pub const DEFAULT_VAULT: &str = "local";

/// A vault as configured.
#[derive(Debug, Clone, PartialEq)]
pub enum VaultBackend {
    /// The local encrypted file (the embedded default).
    File {
        /// The encrypted file.
        path: PathBuf,
        /// Its key, unless `MCPIST_VAULT_KEY` gives it.
        key_file: PathBuf,
    },
    /// Environment variables named `<prefix><SERVICE>_<ACCOUNT>`.
    Env {
        /// The variables' prefix.
        prefix: String,
    },
    /// HashiCorp Vault or OpenBao, KV version 2.
    Kv {
        /// Where and how.
        settings: Box<KvSettings>,
        /// How long a secret read may be kept in memory (zero: not kept).
        cache_for: Duration,
    },
    /// AWS Secrets Manager.
    Aws {
        /// Where and how.
        settings: Box<AwsSettings>,
        /// How long a secret read may be kept in memory (zero: not kept).
        cache_for: Duration,
    },
}

/// Where accounts are listed and secrets kept.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerSettings {
    /// `accounts.toml`.
    pub accounts_file: PathBuf,
    /// The vaults by name.
    pub vaults: BTreeMap<String, VaultBackend>,
    /// Service → vault name, for services not stored in [`DEFAULT_VAULT`].
    pub routes: BTreeMap<String, String>,
    /// Service → the OAuth app its accounts connect with.
    pub oauth: BTreeMap<String, OAuthApp>,
}

/// Why an account or its secret could not be found, kept or used.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the variants and fields are named by their messages
pub enum BrokerError {
    #[error(
        "no `{service}` account is set up: add one with `mcpist account add {service} NAME` (the token is read from stdin or a hidden prompt)"
    )]
    NoAccount { service: String },
    #[error("there is no `{service}` account named `{requested}`; {service} accounts: {}", .available.join(", "))]
    UnknownAccount {
        service: String,
        requested: String,
        available: Vec<String>,
    },
    #[error(
        "`{service}` has several accounts and no default: pass `account` (one of: {}) or set one with `mcpist account default {service} NAME`", .available.join(", ")
    )]
    NoDefault {
        service: String,
        available: Vec<String>,
    },
    #[error(
        "account name {0:?} is not valid: use ASCII letters, digits, '.', '_', '-' or '@' (1 to 64 characters)"
    )]
    InvalidName(String),
    #[error("service name {0:?} is not valid: use lowercase ASCII letters, digits, '_' and '-'")]
    InvalidService(String),
    #[error(
        "account `{account}` of `{service}` uses vault `{vault}`, which is not configured in mcpist.toml"
    )]
    UnknownVault {
        service: String,
        account: String,
        vault: String,
    },
    #[error("the secret of `{service}` account `{account}` cannot be read: {source}")]
    Secret {
        service: String,
        account: String,
        #[source]
        source: VaultError,
    },
    #[error(
        "account `{account}` of `{service}` must be connected again: mcpist account connect {service} {account}"
    )]
    Reconnect { service: String, account: String },
    #[error(
        "the token of `{service}` account `{account}` has expired and cannot be renewed: {source}"
    )]
    Renewal {
        service: String,
        account: String,
        #[source]
        source: Box<ExchangeError>,
    },
    #[error(
        "the OAuth tokens of `{service}` account `{account}` are not readable; connect it again: mcpist account connect {service} {account}"
    )]
    NotATokenSet { service: String, account: String },
    #[error(
        "the OAuth app of `{service}` has no client secret stored: run `mcpist oauth secret {service}` (it reads the secret from stdin or a hidden prompt)"
    )]
    NoClientSecret { service: String },
    #[error(transparent)]
    Exchange(Box<ExchangeError>),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
}

impl From<ExchangeError> for BrokerError {
    fn from(error: ExchangeError) -> BrokerError {
        BrokerError::Exchange(Box::new(error))
    }
}

/// Accounts and their secrets, each service's from the vault it is routed to.
pub struct Broker {
    accounts: Cached<Accounts>,
    vaults: BTreeMap<String, Arc<dyn Vault>>,
    routes: BTreeMap<String, String>,
    exchanger: Arc<Exchanger>,
    renewals: renewal::Renewals,
}

impl Broker {
    /// `env_key` is `MCPIST_VAULT_KEY`, for file vaults.
    pub fn new(settings: &BrokerSettings, env_key: Option<SecretString>) -> Broker {
        let vaults = settings
            .vaults
            .iter()
            .map(|(name, backend)| {
                // Every vault gets a time limit; a remote one may keep what
                // it read for a while.
                let (vault, timeout, cache_for): (Arc<dyn Vault>, _, _) = match backend {
                    VaultBackend::File { path, key_file } => (
                        Arc::new(file_vault::FileVault::new(
                            name,
                            path,
                            key_file,
                            env_key.clone(),
                        )),
                        guarded::DEFAULT_TIMEOUT,
                        Duration::ZERO,
                    ),
                    VaultBackend::Env { prefix } => (
                        Arc::new(env_vault::EnvVault::new(name, prefix)),
                        guarded::DEFAULT_TIMEOUT,
                        Duration::ZERO,
                    ),
                    VaultBackend::Kv {
                        settings,
                        cache_for,
                    } => (
                        Arc::new(kv_vault::KvVault::new(name, settings.as_ref().clone())),
                        settings.timeout,
                        *cache_for,
                    ),
                    VaultBackend::Aws {
                        settings,
                        cache_for,
                    } => (
                        Arc::new(aws_vault::AwsVault::new(name, settings.as_ref().clone())),
                        settings.timeout,
                        *cache_for,
                    ),
                };
                let vault: Arc<dyn Vault> =
                    Arc::new(guarded::GuardedVault::new(vault, timeout, cache_for));
                (name.clone(), vault)
            })
            .collect();
        Broker::with_vaults(
            settings.accounts_file.clone(),
            vaults,
            settings.routes.clone(),
        )
        .with_oauth(settings.oauth.clone())
    }

    /// A broker over vaults built elsewhere (tests, and backends that need
    /// their own setup).
    pub fn with_vaults(
        accounts_file: PathBuf,
        vaults: BTreeMap<String, Arc<dyn Vault>>,
        routes: BTreeMap<String, String>,
    ) -> Broker {
        Broker {
            renewals: renewal::Renewals::new(&accounts_file),
            accounts: Cached::new(&accounts_file),
            vaults,
            routes,
            exchanger: Arc::new(Exchanger::new(BTreeMap::new())),
        }
    }

    /// The OAuth apps accounts connect with (service → app).
    pub fn with_oauth(mut self, apps: BTreeMap<String, OAuthApp>) -> Broker {
        self.exchanger = Arc::new(Exchanger::new(apps));
        self
    }

    /// The requests to OAuth providers.
    pub fn exchanger(&self) -> &Exchanger {
        &self.exchanger
    }

    /// The accounts as they are on disk now: the file is read again when it
    /// changes, so that accounts added while the server runs are usable at
    /// once.
    pub fn accounts(&self) -> Result<Accounts, BrokerError> {
        Ok(self.accounts.get(Accounts::load)?.as_ref().clone())
    }

    /// The vault new accounts of `service` are stored in.
    pub fn vault_for(&self, service: &str) -> Result<&Arc<dyn Vault>, BrokerError> {
        let name = self
            .routes
            .get(service)
            .map(String::as_str)
            .unwrap_or(DEFAULT_VAULT);
        self.vaults
            .get(name)
            .ok_or_else(|| BrokerError::UnknownVault {
                service: service.to_owned(),
                account: String::new(),
                vault: name.to_owned(),
            })
    }

    /// Which account of `service` a call acts for: the one it names, else
    /// the service's default.
    pub fn resolve(
        accounts: &Accounts,
        service: &str,
        requested: Option<&str>,
    ) -> Result<Account, BrokerError> {
        let available: Vec<String> = accounts.of(service).map(|a| a.name.clone()).collect();
        if available.is_empty() {
            return Err(BrokerError::NoAccount {
                service: service.to_owned(),
            });
        }
        let name = match requested {
            Some(name) => name,
            None => accounts
                .default_for(service)
                .ok_or_else(|| BrokerError::NoDefault {
                    service: service.to_owned(),
                    available: available.clone(),
                })?,
        };
        accounts
            .find(service, name)
            .cloned()
            .ok_or_else(|| BrokerError::UnknownAccount {
                service: service.to_owned(),
                requested: name.to_owned(),
                available,
            })
    }

    /// What a call sends for an account: its token, or for an OAuth
    /// account its access token, renewed first when it is about to expire.
    pub async fn secret(&self, account: &Account) -> Result<SecretString, BrokerError> {
        match account.kind {
            AccountKind::Token => self.stored_secret(account).await,
            AccountKind::OAuth => self.access_token(account, None).await,
        }
    }

    /// The account's vault entry as stored.
    async fn stored_secret(&self, account: &Account) -> Result<SecretString, BrokerError> {
        self.vault_of(account)?
            .get(&account.reference)
            .await
            .map_err(|source| BrokerError::Secret {
                service: account.service.clone(),
                account: account.name.clone(),
                source,
            })
    }

    /// The vault an account's secret is in.
    fn vault_of(&self, account: &Account) -> Result<&Arc<dyn Vault>, BrokerError> {
        self.vaults
            .get(&account.vault)
            .ok_or_else(|| BrokerError::UnknownVault {
                service: account.service.clone(),
                account: account.name.clone(),
                vault: account.vault.clone(),
            })
    }

    /// Add (or replace) an account. `secret` is required for vaults that
    /// store secrets and ignored for those that do not.
    pub async fn add(
        &self,
        service: &str,
        name: &str,
        secret: Option<SecretString>,
        make_default: bool,
    ) -> Result<Account, BrokerError> {
        self.store_account(service, name, AccountKind::Token, secret, make_default)
            .await
    }

    async fn store_account(
        &self,
        service: &str,
        name: &str,
        kind: AccountKind,
        secret: Option<SecretString>,
        make_default: bool,
    ) -> Result<Account, BrokerError> {
        check_service(service)?;
        check_account(name)?;
        let vault = self.vault_for(service)?;
        let account = Account {
            service: service.to_owned(),
            name: name.to_owned(),
            vault: vault.name().to_owned(),
            reference: vault.reference_for(service, name),
            kind,
        };
        if vault.stores_secrets() {
            let secret = secret.ok_or_else(|| VaultError::Unavailable {
                vault: vault.name().to_owned(),
                reason: "no secret was given".to_owned(),
            })?;
            vault.put(&account.reference, secret).await?;
        }
        let mut accounts = self.accounts()?;
        accounts.upsert(account.clone());
        if make_default {
            accounts.set_default(service, name);
        }
        accounts.save(self.accounts.path())?;
        Ok(account)
    }

    /// Remove an account and its stored secret: the account first, so that
    /// a crash between the two leaves at worst an unlisted secret (which
    /// the next `add` of that name replaces), never a listed account
    /// without its secret.
    pub async fn remove(&self, service: &str, name: &str) -> Result<Account, BrokerError> {
        let mut accounts = self.accounts()?;
        let account = Broker::resolve(&accounts, service, Some(name))?;
        accounts.remove(service, name);
        accounts.save(self.accounts.path())?;
        if let Some(vault) = self.vaults.get(&account.vault) {
            vault.delete(&account.reference).await?;
        }
        Ok(account)
    }

    /// Make an account the one calls use when they name none.
    pub fn set_default(&self, service: &str, name: &str) -> Result<(), BrokerError> {
        let mut accounts = self.accounts()?;
        Broker::resolve(&accounts, service, Some(name))?;
        accounts.set_default(service, name);
        accounts.save(self.accounts.path())?;
        Ok(())
    }
}

/// Longest secret accepted from the owner; anything longer is not a token.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Why text the owner gave is not a secret to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretTextError {
    /// Nothing but whitespace.
    #[error("it is empty")]
    Empty,
    /// Over [`MAX_SECRET_BYTES`].
    #[error("it is longer than {} KiB", MAX_SECRET_BYTES / 1024)]
    TooLong,
    /// A token is one line; several are a paste gone wrong.
    #[error("it spans several lines")]
    MultiLine,
}

/// The secret in `text` as the owner typed or piped it: trimmed, one line,
/// not empty, not oversized. The caller zeroizes `text`.
pub fn secret_from_text(text: &str) -> Result<SecretString, SecretTextError> {
    if text.len() > MAX_SECRET_BYTES {
        return Err(SecretTextError::TooLong);
    }
    let secret = text.trim();
    if secret.is_empty() {
        return Err(SecretTextError::Empty);
    }
    if secret.contains(['\n', '\r']) {
        return Err(SecretTextError::MultiLine);
    }
    Ok(SecretString::from(secret.to_owned()))
}

/// Check a service and account name as `add` would, before work that
/// would be wasted on a name it refuses.
pub fn check_names(service: &str, name: &str) -> Result<(), BrokerError> {
    check_service(service)?;
    check_account(name)
}

fn check_account(name: &str) -> Result<(), BrokerError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    ok.then_some(())
        .ok_or_else(|| BrokerError::InvalidName(name.to_owned()))
}

fn check_service(service: &str) -> Result<(), BrokerError> {
    // The OAuth apps' client secrets are kept as if they were accounts of
    // this service.
    let ok = service != OAUTH_APP_SERVICE
        && (1..=64).contains(&service.len())
        && service.starts_with(|c: char| c.is_ascii_lowercase())
        && service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    ok.then_some(())
        .ok_or_else(|| BrokerError::InvalidService(service.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn broker(dir: &std::path::Path) -> Broker {
        let mut vaults = BTreeMap::new();
        vaults.insert(
            DEFAULT_VAULT.to_owned(),
            VaultBackend::File {
                path: dir.join("vault.enc"),
                key_file: dir.join("vault.key"),
            },
        );
        vaults.insert(
            "dev".to_owned(),
            VaultBackend::Env {
                prefix: "MCPIST_TEST_SECRET_".into(),
            },
        );
        let routes = [("ci".to_owned(), "dev".to_owned())].into_iter().collect();
        Broker::new(
            &BrokerSettings {
                accounts_file: dir.join("accounts.toml"),
                vaults,
                routes,
                oauth: BTreeMap::new(),
            },
            None,
        )
    }

    #[tokio::test]
    async fn accounts_resolve_by_name_or_default_with_helpful_errors() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path());
        let err = Broker::resolve(&b.accounts().unwrap(), "github", None).unwrap_err();
        assert!(
            err.to_string().contains("mcpist account add github NAME"),
            "{err}"
        );
        b.add(
            "github",
            "personal",
            Some(SecretString::from("tok-p")),
            false,
        )
        .await
        .unwrap();
        b.add("github", "work", Some(SecretString::from("tok-w")), false)
            .await
            .unwrap();
        b.add("notion", "team", Some(SecretString::from("tok-n")), false)
            .await
            .unwrap();
        let accounts = b.accounts().unwrap();
        let default = Broker::resolve(&accounts, "github", None).unwrap();
        assert_eq!(default.name, "personal");
        let work = Broker::resolve(&accounts, "github", Some("work")).unwrap();
        assert_eq!(b.secret(&work).await.unwrap().expose_secret(), "tok-w");
        // Another service's account name is not an account of this one.
        let err = Broker::resolve(&accounts, "github", Some("team")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "there is no `github` account named `team`; github accounts: personal, work"
        );
        assert!(
            b.add("github", "bad name", Some(SecretString::from("x")), false)
                .await
                .is_err()
        );
        b.remove("github", "work").await.unwrap();
        assert!(Broker::resolve(&b.accounts().unwrap(), "github", Some("work")).is_err());
    }

    #[tokio::test]
    async fn env_routed_services_record_a_variable_and_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path());
        let account = b.add("ci", "bot", None, false).await.unwrap();
        assert_eq!(account.vault, "dev");
        assert_eq!(account.reference, "MCPIST_TEST_SECRET_CI_BOT");
        let err = b.secret(&account).await.unwrap_err();
        assert!(matches!(
            err,
            BrokerError::Secret {
                source: VaultError::NotFound { .. },
                ..
            }
        ));
        assert!(!dir.path().join("vault.enc").exists());
    }
}
