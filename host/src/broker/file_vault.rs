//! The embedded default vault: one file of secrets encrypted with
//! XChaCha20-Poly1305 (an authenticated cipher, so a wrong key or a damaged
//! file is detected, never half-read).
//!
//! Layout: `MCPISTV1` (8 bytes) ‖ nonce (24 bytes) ‖ ciphertext of a JSON
//! object `{reference: secret}`; the magic is bound in as associated data.
//! The key is 32 bytes, from `MCPIST_VAULT_KEY` (64 hex digits or base64)
//! or from a key file (hex) created with mode 0600 on the first write.
//! Every write re-encrypts with a fresh nonce and replaces the file
//! atomically under an advisory lock, so concurrent `mcpist account` commands
//! cannot lose each other's updates and a crash leaves the old file intact.
//! Decrypted data lives in zeroizing buffers and is never cached.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::vault::{Vault, VaultError};
use crate::atomic_file::write_atomic;

const MAGIC: &[u8; 8] = b"MCPISTV1";
const NONCE_LEN: usize = 24;
pub const KEY_ENV: &str = "MCPIST_VAULT_KEY";

type Key = Zeroizing<[u8; 32]>;
type Secrets = BTreeMap<String, Zeroizing<String>>;

pub struct FileVault {
    name: String,
    path: PathBuf,
    key_file: PathBuf,
    /// The key given in the environment, which takes precedence over the
    /// key file.
    env_key: Option<SecretString>,
}

impl FileVault {
    pub fn new(name: &str, path: &Path, key_file: &Path, env_key: Option<SecretString>) -> Self {
        FileVault {
            name: name.to_owned(),
            path: path.to_owned(),
            key_file: key_file.to_owned(),
            env_key,
        }
    }

    fn unavailable(&self, reason: impl Into<String>) -> VaultError {
        VaultError::Unavailable {
            vault: self.name.clone(),
            reason: reason.into(),
        }
    }

    fn key_source(&self) -> String {
        match self.env_key {
            Some(_) => KEY_ENV.to_owned(),
            None => format!("key file {}", self.key_file.display()),
        }
    }

    /// The key, if one exists. `create` makes a key file when there is none.
    fn key(&self, create: bool) -> Result<Option<Key>, VaultError> {
        if let Some(text) = &self.env_key {
            return parse_key(text.expose_secret()).map(Some).ok_or_else(|| {
                self.unavailable(format!(
                    "{KEY_ENV} must be 32 bytes written as 64 hex digits or as base64"
                ))
            });
        }
        match std::fs::read_to_string(&self.key_file) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                check_private(&self.key_file).map_err(|r| self.unavailable(r))?;
                parse_key(&text).map(Some).ok_or_else(|| {
                    self.unavailable(format!(
                        "key file {} does not hold a 32-byte key (64 hex digits)",
                        self.key_file.display()
                    ))
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                self.create_key_file().map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.unavailable(format!(
                "cannot read key file {}: {e}",
                self.key_file.display()
            ))),
        }
    }

    fn create_key_file(&self) -> Result<Key, VaultError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let key: Key = Zeroizing::new(XChaCha20Poly1305::generate_key(&mut OsRng).into());
        let text = Zeroizing::new(format!("{}\n", hex::encode(key.as_slice())));
        if let Some(dir) = self.key_file.parent() {
            crate::atomic_file::create_private_dir(dir)
                .map_err(|e| self.unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.key_file)
            .map_err(|e| {
                self.unavailable(format!(
                    "cannot create key file {}: {e}",
                    self.key_file.display()
                ))
            })?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| {
                self.unavailable(format!(
                    "cannot write key file {}: {e}",
                    self.key_file.display()
                ))
            })?;
        tracing::info!(vault = %self.name, key_file = %self.key_file.display(), "created a new vault key file (back it up: without it the vault cannot be read)");
        Ok(key)
    }

    /// Decrypt the whole file; a missing file is an empty vault.
    fn read(&self, key: Option<&Key>) -> Result<Secrets, VaultError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Secrets::new()),
            Err(e) => {
                return Err(self.unavailable(format!("cannot read {}: {e}", self.path.display())));
            }
        };
        let key = key.ok_or_else(|| {
            self.unavailable(format!(
                "{} exists but there is no key: set {KEY_ENV} or restore the key file {}",
                self.path.display(),
                self.key_file.display()
            ))
        })?;
        if bytes.len() < MAGIC.len() + NONCE_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err(self.unavailable(format!(
                "{} is not an mcpist vault file (bad header)",
                self.path.display()
            )));
        }
        let (nonce, ciphertext) = bytes[MAGIC.len()..].split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(key.as_slice().into());
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: MAGIC })
            .map(Zeroizing::new)
            .map_err(|_| {
                self.unavailable(format!(
                    "cannot decrypt {}: the key ({}) is not the one it was written with, or the file is damaged; the file was left as it is",
                    self.path.display(),
                    self.key_source()
                ))
            })?;
        serde_json::from_slice(&plain).map_err(|_| {
            self.unavailable(format!(
                "{} decrypted but its content is not valid",
                self.path.display()
            ))
        })
    }

    fn write(&self, key: &Key, secrets: &Secrets) -> Result<(), VaultError> {
        let plain = Zeroizing::new(
            serde_json::to_vec(
                &secrets
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .expect("a map of strings always serialises"),
        );
        let cipher = XChaCha20Poly1305::new(key.as_slice().into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: MAGIC,
                },
            )
            .map_err(|_| self.unavailable("encryption failed"))?;
        let mut bytes = Vec::with_capacity(MAGIC.len() + NONCE_LEN + ciphertext.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        write_atomic(&self.path, &bytes)
            .map_err(|e| self.unavailable(format!("cannot write {}: {e}", self.path.display())))
    }

    /// Read, change and write back under an exclusive advisory lock.
    fn update(&self, change: impl FnOnce(&mut Secrets)) -> Result<(), VaultError> {
        let lock_path = self.path.with_extension("lock");
        if let Some(dir) = lock_path.parent() {
            crate::atomic_file::create_private_dir(dir)
                .map_err(|e| self.unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        use std::os::unix::fs::OpenOptionsExt;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| self.unavailable(format!("cannot open {}: {e}", lock_path.display())))?;
        lock.lock()
            .map_err(|e| self.unavailable(format!("cannot lock {}: {e}", lock_path.display())))?;
        let key = self.key(true)?.expect("key(create) always yields a key");
        // Decrypt first: with a wrong key nothing is written.
        let mut secrets = self.read(Some(&key))?;
        change(&mut secrets);
        self.write(&key, &secrets)
    }
}

#[async_trait]
impl Vault for FileVault {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "file"
    }

    fn stores_secrets(&self) -> bool {
        true
    }

    fn reference_for(&self, service: &str, account: &str) -> String {
        format!("{service}/{account}")
    }

    async fn get(&self, reference: &str) -> Result<SecretString, VaultError> {
        let key = self.key(false)?;
        let mut secrets = self.read(key.as_ref())?;
        match secrets.remove(reference) {
            Some(secret) => Ok(SecretString::from(secret.as_str())),
            None => Err(VaultError::NotFound {
                vault: self.name.clone(),
                reference: reference.to_owned(),
                hint: String::new(),
            }),
        }
    }

    async fn put(&self, reference: &str, secret: SecretString) -> Result<(), VaultError> {
        self.update(|secrets| {
            secrets.insert(
                reference.to_owned(),
                Zeroizing::new(secret.expose_secret().to_owned()),
            );
        })
    }

    async fn delete(&self, reference: &str) -> Result<(), VaultError> {
        if !self.path.exists() {
            return Ok(());
        }
        self.update(|secrets| {
            secrets.remove(reference);
        })
    }
}

/// 64 hex digits, or base64 of 32 bytes.
fn parse_key(text: &str) -> Option<Key> {
    let text = text.trim();
    let bytes = Zeroizing::new(
        hex::decode(text)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())?,
    );
    let mut key: Key = Zeroizing::new([0; 32]);
    (bytes.len() == 32).then(|| key.copy_from_slice(&bytes))?;
    Some(key)
}

/// Refuse a key file that other users can read, as ssh does for its keys.
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "key file {} is accessible to other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(dir: &Path, env_key: Option<&str>) -> FileVault {
        FileVault::new(
            "local",
            &dir.join("vault.enc"),
            &dir.join("vault.key"),
            env_key.map(|k| SecretString::from(k.to_owned())),
        )
    }

    #[tokio::test]
    async fn stores_encrypted_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path(), None);
        assert!(matches!(
            v.get("github/me").await,
            Err(VaultError::NotFound { .. })
        ));
        v.put("github/me", SecretString::from("ghp_supersecret"))
            .await
            .unwrap();
        v.put("notion/me", SecretString::from("secret_n"))
            .await
            .unwrap();
        assert_eq!(
            v.get("github/me").await.unwrap().expose_secret(),
            "ghp_supersecret"
        );
        let raw = std::fs::read(dir.path().join("vault.enc")).unwrap();
        assert!(raw.starts_with(MAGIC));
        assert!(memchr::memmem::find(&raw, b"ghp_supersecret").is_none());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("vault.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        v.delete("github/me").await.unwrap();
        assert!(matches!(
            v.get("github/me").await,
            Err(VaultError::NotFound { .. })
        ));
        assert_eq!(
            v.get("notion/me").await.unwrap().expose_secret(),
            "secret_n"
        );
    }

    #[tokio::test]
    async fn a_wrong_key_is_reported_and_the_file_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let right = hex::encode([7u8; 32]);
        let wrong = hex::encode([8u8; 32]);
        vault(dir.path(), Some(&right))
            .put("s/a", SecretString::from("x"))
            .await
            .unwrap();
        let before = std::fs::read(dir.path().join("vault.enc")).unwrap();
        let v = vault(dir.path(), Some(&wrong));
        let err = v.get("s/a").await.unwrap_err();
        assert!(matches!(err, VaultError::Unavailable { .. }));
        assert!(err.to_string().contains("MCPIST_VAULT_KEY"), "{err}");
        assert!(v.put("s/b", SecretString::from("y")).await.is_err());
        assert_eq!(std::fs::read(dir.path().join("vault.enc")).unwrap(), before);
        assert!(
            vault(dir.path(), Some("not a key"))
                .get("s/a")
                .await
                .is_err()
        );
        // No key file was created while an environment key was in use.
        assert!(!dir.path().join("vault.key").exists());
    }

    #[tokio::test]
    async fn a_damaged_file_and_an_exposed_key_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path(), None);
        v.put("s/a", SecretString::from("x")).await.unwrap();
        let path = dir.path().join("vault.enc");
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            v.get("s/a").await,
            Err(VaultError::Unavailable { .. })
        ));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("vault.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let err = v.get("s/a").await.unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
