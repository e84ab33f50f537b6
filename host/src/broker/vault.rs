//! Where secrets live. A `Vault` stores secrets under references; the broker
//! maps (service, account) to a vault and a reference.
//!
//! Backends differ (environment variables, the local encrypted file,
//! HashiCorp Vault or OpenBao, AWS Secrets Manager), but callers only ever
//! see this trait and [`VaultError`], which separates "there is no such
//! secret" (the owner must add it) from "the vault cannot answer" (the owner
//! must fix the vault).

use async_trait::async_trait;
use secrecy::SecretString;

/// Why a vault could not give or keep a secret.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // the variants and fields are named by their messages
pub enum VaultError {
    /// The vault works but holds no secret under this reference.
    #[error("vault `{vault}` has no secret `{reference}`{hint}")]
    NotFound {
        vault: String,
        reference: String,
        /// How to provide it, starting with "; ", or empty.
        hint: String,
    },
    /// The vault cannot be used right now (wrong key, unreadable file,
    /// service down). Never includes secret material.
    #[error("vault `{vault}` is unavailable: {reason}")]
    Unavailable { vault: String, reason: String },
    /// The backend does not store secrets itself (e.g. environment variables).
    #[error("vault `{vault}` cannot store secrets: {reason}")]
    ReadOnly { vault: String, reason: String },
}

/// Where secrets are kept: one backend, named in `mcpist.toml`.
#[async_trait]
pub trait Vault: Send + Sync {
    /// The name the owner gave this vault in `mcpist.toml`.
    fn name(&self) -> &str;

    /// The backend, e.g. `file`, `env` or `vault`.
    fn kind(&self) -> &'static str;

    /// Whether `put` stores a secret. When false, the owner provides the
    /// secret to the backend directly and `mcpist account add` only records
    /// where to find it.
    fn stores_secrets(&self) -> bool;

    /// The reference under which a new account's secret is stored.
    fn reference_for(&self, service: &str, account: &str) -> String;

    /// The secret under `reference`.
    async fn get(&self, reference: &str) -> Result<SecretString, VaultError>;

    /// The secret as the backend holds it now, past any cache: what
    /// another process may just have written.
    async fn get_fresh(&self, reference: &str) -> Result<SecretString, VaultError> {
        self.get(reference).await
    }

    /// Keep `secret` under `reference`, replacing any before it.
    async fn put(&self, reference: &str, secret: SecretString) -> Result<(), VaultError>;

    /// Remove a secret; removing one that is absent is not an error.
    async fn delete(&self, reference: &str) -> Result<(), VaultError>;
}
