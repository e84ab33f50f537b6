//! Secrets from the server's environment variables: for development and for
//! deployments where a supervisor injects secrets as variables. Read-only.

use async_trait::async_trait;
use secrecy::SecretString;

use super::vault::{Vault, VaultError};

/// Reads one variable: the process environment, or a test's own map.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct EnvVault {
    name: String,
    prefix: String,
    /// Where variables are read; the process environment unless a test
    /// supplies its own.
    lookup: Lookup,
}

impl EnvVault {
    pub fn new(name: &str, prefix: &str) -> EnvVault {
        EnvVault::with_lookup(name, prefix, |var| std::env::var(var).ok())
    }

    pub fn with_lookup(
        name: &str,
        prefix: &str,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> EnvVault {
        EnvVault {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            lookup: Box::new(lookup),
        }
    }
}

#[async_trait]
impl Vault for EnvVault {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "env"
    }

    fn stores_secrets(&self) -> bool {
        false
    }

    /// `MCPIST_SECRET_GITHUB_WORK` for service `github`, account `work`.
    fn reference_for(&self, service: &str, account: &str) -> String {
        let shout = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        format!("{}{}_{}", self.prefix, shout(service), shout(account))
    }

    async fn get(&self, reference: &str) -> Result<SecretString, VaultError> {
        match (self.lookup)(reference) {
            Some(value) if !value.is_empty() => Ok(SecretString::from(value)),
            _ => Err(VaultError::NotFound {
                vault: self.name.clone(),
                reference: reference.to_owned(),
                hint: format!("; set the environment variable {reference} for the mcpist server"),
            }),
        }
    }

    async fn put(&self, reference: &str, _secret: SecretString) -> Result<(), VaultError> {
        Err(VaultError::ReadOnly {
            vault: self.name.clone(),
            reason: format!(
                "it reads environment variables; set {reference} for the mcpist server instead"
            ),
        })
    }

    async fn delete(&self, _reference: &str) -> Result<(), VaultError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn reads_the_derived_variable_and_names_a_missing_one() {
        let vault = EnvVault::with_lookup("dev", "MCPIST_SECRET_", |var| {
            (var == "MCPIST_SECRET_GITHUB_WORK").then(|| "tok".to_owned())
        });
        let reference = vault.reference_for("github", "work");
        assert_eq!(reference, "MCPIST_SECRET_GITHUB_WORK");
        assert_eq!(vault.get(&reference).await.unwrap().expose_secret(), "tok");
        let missing = vault.get("MCPIST_SECRET_GITHUB_HOME").await.unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("set the environment variable MCPIST_SECRET_GITHUB_HOME"),
            "{missing}"
        );
    }
}
