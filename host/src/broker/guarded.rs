//! What every vault gets from the broker, whatever its kind: a time limit
//! on each operation, so that a vault that hangs fails only the calls of
//! the services routed to it, and, where the owner allows it, a short
//! in-memory cache of what was read, so that a warm call does not pay a
//! round trip to a remote vault.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::SecretString;

use super::vault::{Vault, VaultError};

/// How long an operation may take unless `timeout_ms` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

pub struct GuardedVault {
    inner: Arc<dyn Vault>,
    timeout: Duration,
    /// Zero: nothing is cached.
    cache_for: Duration,
    /// Secrets read, and when. A `SecretString` zeroizes itself when an
    /// entry is dropped: on expiry, replacement, or removal.
    cache: std::sync::Mutex<HashMap<String, (SecretString, Instant)>>,
}

impl GuardedVault {
    pub fn new(inner: Arc<dyn Vault>, timeout: Duration, cache_for: Duration) -> GuardedVault {
        GuardedVault {
            inner,
            timeout,
            cache_for,
            cache: std::sync::Mutex::new(HashMap::new()),
        }
    }

    async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, VaultError>>,
    ) -> Result<T, VaultError> {
        tokio::time::timeout(self.timeout, operation)
            .await
            .unwrap_or_else(|_| {
                Err(VaultError::Unavailable {
                    vault: self.inner.name().to_owned(),
                    reason: format!("no answer within {} ms", self.timeout.as_millis()),
                })
            })
    }

    fn cached(&self, reference: &str) -> Option<SecretString> {
        let mut cache = self.cache.lock().expect("cache lock");
        let now = Instant::now();
        // Expired entries go (and are zeroized) whenever the cache is used.
        cache.retain(|_, (_, read_at)| now.duration_since(*read_at) < self.cache_for);
        cache.get(reference).map(|(secret, _)| secret.clone())
    }

    fn remember(&self, reference: &str, secret: &SecretString) {
        if !self.cache_for.is_zero() {
            self.cache
                .lock()
                .expect("cache lock")
                .insert(reference.to_owned(), (secret.clone(), Instant::now()));
        }
    }

    fn forget(&self, reference: &str) {
        self.cache.lock().expect("cache lock").remove(reference);
    }
}

#[async_trait]
impl Vault for GuardedVault {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn stores_secrets(&self) -> bool {
        self.inner.stores_secrets()
    }

    fn reference_for(&self, service: &str, account: &str) -> String {
        self.inner.reference_for(service, account)
    }

    async fn get(&self, reference: &str) -> Result<SecretString, VaultError> {
        if let Some(secret) = self.cached(reference) {
            return Ok(secret);
        }
        let secret = self.bounded(self.inner.get(reference)).await?;
        self.remember(reference, &secret);
        Ok(secret)
    }

    async fn get_fresh(&self, reference: &str) -> Result<SecretString, VaultError> {
        self.forget(reference);
        let secret = self.bounded(self.inner.get_fresh(reference)).await?;
        self.remember(reference, &secret);
        Ok(secret)
    }

    async fn put(&self, reference: &str, secret: SecretString) -> Result<(), VaultError> {
        self.forget(reference);
        self.bounded(self.inner.put(reference, secret.clone()))
            .await?;
        self.remember(reference, &secret);
        Ok(())
    }

    async fn delete(&self, reference: &str) -> Result<(), VaultError> {
        self.forget(reference);
        self.bounded(self.inner.delete(reference)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A vault that counts reads and can be made to hang.
    #[derive(Default)]
    struct Remote {
        reads: AtomicUsize,
        hang: std::sync::atomic::AtomicBool,
        value: std::sync::Mutex<String>,
    }

    #[async_trait]
    impl Vault for Remote {
        fn name(&self) -> &str {
            "remote"
        }
        fn kind(&self) -> &'static str {
            "test"
        }
        fn stores_secrets(&self) -> bool {
            true
        }
        fn reference_for(&self, service: &str, account: &str) -> String {
            format!("{service}/{account}")
        }
        async fn get(&self, _: &str) -> Result<SecretString, VaultError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            Ok(SecretString::from(self.value.lock().unwrap().clone()))
        }
        async fn put(&self, _: &str, secret: SecretString) -> Result<(), VaultError> {
            *self.value.lock().unwrap() = secret.expose_secret().to_owned();
            Ok(())
        }
        async fn delete(&self, _: &str) -> Result<(), VaultError> {
            self.value.lock().unwrap().clear();
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_hanging_vault_fails_within_its_time_limit() {
        let remote = Arc::new(Remote::default());
        remote.hang.store(true, Ordering::SeqCst);
        let vault = GuardedVault::new(remote, Duration::from_millis(50), Duration::ZERO);
        let error = vault.get("svc/a").await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "vault `remote` is unavailable: no answer within 50 ms"
        );
    }

    #[tokio::test]
    async fn reads_are_cached_for_the_configured_time_and_writes_replace_them() {
        let remote = Arc::new(Remote::default());
        let vault = GuardedVault::new(remote.clone(), DEFAULT_TIMEOUT, Duration::from_millis(200));
        vault.put("svc/a", SecretString::from("one")).await.unwrap();
        for _ in 0..5 {
            assert_eq!(vault.get("svc/a").await.unwrap().expose_secret(), "one");
        }
        // Written through, so the value came from the cache every time.
        assert_eq!(remote.reads.load(Ordering::SeqCst), 0);
        vault.put("svc/a", SecretString::from("two")).await.unwrap();
        assert_eq!(vault.get("svc/a").await.unwrap().expose_secret(), "two");
        // Expired: read again from the vault.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(vault.get("svc/a").await.unwrap().expose_secret(), "two");
        assert_eq!(remote.reads.load(Ordering::SeqCst), 1);
        // Removed: forgotten at once.
        vault.delete("svc/a").await.unwrap();
        assert_eq!(vault.get("svc/a").await.unwrap().expose_secret(), "");
        assert_eq!(remote.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn without_a_cache_every_read_goes_to_the_vault() {
        let remote = Arc::new(Remote::default());
        let vault = GuardedVault::new(remote.clone(), DEFAULT_TIMEOUT, Duration::ZERO);
        vault.put("svc/a", SecretString::from("x")).await.unwrap();
        vault.get("svc/a").await.unwrap();
        vault.get("svc/a").await.unwrap();
        assert_eq!(remote.reads.load(Ordering::SeqCst), 2);
    }
}
