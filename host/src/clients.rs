//! The clients allowed to call over HTTP, each with an API key the owner
//! issued (`mcpist client add NAME`). Only the keys' sha256 is stored, in
//! `clients.toml`; a key is shown once, when it is made.
//!
//! The file is re-read when it changes, so a key added or removed while the
//! server runs takes effect at the next request.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::data_file::{self, Cached, Versioned};

const FORMAT_VERSION: u32 = 1;

const HEADER: &str = "\
# clients.toml: the MCP clients allowed over HTTP, by name, with the sha256 of
# their API keys (never the keys). Written by `mcpist client ...`.
";
/// Every key starts with this, so a leaked one is easy to recognise (and to
/// find with secret scanners).
pub const KEY_PREFIX: &str = "mcpist_";

#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "client name {0:?} is not valid: use ASCII letters, digits, '.', '_' or '-' (1 to 64 characters), and not `stdio` (the local owner's)"
    )]
    InvalidName(String),
    #[error("a client named `{0}` exists already: remove it first to issue a new key")]
    Exists(String),
    #[error("there is no client named `{name}`{known}")]
    Unknown { name: String, known: String },
    #[error("cannot get random bytes for a key: {0}")]
    Random(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub name: String,
    pub key_sha256: String,
    /// RFC 3339.
    pub created: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    version: u32,
    #[serde(default, rename = "client")]
    clients: Vec<Client>,
}

impl Versioned for ClientsFile {
    const VERSION: u32 = FORMAT_VERSION;
    fn version(&self) -> u32 {
        self.version
    }
}

/// The registered clients, as on disk.
pub struct Clients {
    path: PathBuf,
    /// The file as last read, for `authenticate` on every request.
    cache: Cached<ClientsFile>,
}

impl Clients {
    pub fn new(path: &Path) -> Clients {
        Clients {
            path: path.to_owned(),
            cache: Cached::new(path),
        }
    }

    pub fn list(&self) -> Result<Vec<Client>, ClientsError> {
        Ok(load(&self.path)?.clients)
    }

    /// Register `name` and return its new key, to be shown once.
    pub fn add(&self, name: &str) -> Result<Zeroizing<String>, ClientsError> {
        check_name(name)?;
        let mut file = load(&self.path)?;
        if file.clients.iter().any(|c| c.name == name) {
            return Err(ClientsError::Exists(name.to_owned()));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|e| ClientsError::Random(e.to_string()))?;
        let key = Zeroizing::new(format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
        ));
        file.clients.push(Client {
            name: name.to_owned(),
            key_sha256: digest(&key),
            created: crate::audit::now(),
        });
        save(&self.path, &file)?;
        Ok(key)
    }

    pub fn remove(&self, name: &str) -> Result<(), ClientsError> {
        let mut file = load(&self.path)?;
        let before = file.clients.len();
        file.clients.retain(|c| c.name != name);
        if file.clients.len() == before {
            let names: Vec<&str> = file.clients.iter().map(|c| c.name.as_str()).collect();
            return Err(ClientsError::Unknown {
                name: name.to_owned(),
                known: if names.is_empty() {
                    "; no client is registered".to_owned()
                } else {
                    format!("; clients: {}", names.join(", "))
                },
            });
        }
        save(&self.path, &file)
    }

    /// The name of the client this key belongs to, if any. The stored
    /// digests are compared in constant time.
    pub fn authenticate(&self, key: &str) -> Result<Option<String>, ClientsError> {
        let presented = digest(key);
        Ok(self
            .cache
            .get(load)?
            .clients
            .iter()
            .find(|c| constant_time_eq(c.key_sha256.as_bytes(), presented.as_bytes()))
            .map(|c| c.name.clone()))
    }
}

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Names no client with an API key may take: the local owner's.
const RESERVED_NAMES: &[&str] = &["stdio"];

fn check_name(name: &str) -> Result<(), ClientsError> {
    let ok = (1..=64).contains(&name.len())
        && !RESERVED_NAMES.contains(&name)
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    ok.then_some(())
        .ok_or_else(|| ClientsError::InvalidName(name.to_owned()))
}

fn load(path: &Path) -> Result<ClientsFile, ClientsError> {
    data_file::read(path)
        .map(|file| {
            file.unwrap_or(ClientsFile {
                version: FORMAT_VERSION,
                clients: Vec::new(),
            })
        })
        .map_err(|message| ClientsError::Read {
            path: path.to_owned(),
            message,
        })
}

fn save(path: &Path, file: &ClientsFile) -> Result<(), ClientsError> {
    data_file::write(path, HEADER, file).map_err(|source| ClientsError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_shown_once_stored_hashed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clients.toml");
        let clients = Clients::new(&path);
        let key = clients.add("claude").unwrap();
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 43);
        let stored = std::fs::read_to_string(&path).unwrap();
        assert!(!stored.contains(key.as_str()), "only the digest is stored");
        assert_eq!(
            clients.authenticate(&key).unwrap().as_deref(),
            Some("claude")
        );
        assert_eq!(clients.authenticate("mcpist_guess").unwrap(), None);
        let other = clients.add("cursor").unwrap();
        assert_ne!(key.as_str(), other.as_str());
        assert!(matches!(
            clients.add("claude"),
            Err(ClientsError::Exists(_))
        ));
        for name in ["bad name", "stdio", "jwt:desk"] {
            assert!(matches!(
                clients.add(name),
                Err(ClientsError::InvalidName(_))
            ));
        }
        clients.remove("claude").unwrap();
        assert_eq!(
            clients.authenticate(&key).unwrap(),
            None,
            "removal takes effect at once"
        );
        let err = clients.remove("claude").unwrap_err();
        assert_eq!(
            err.to_string(),
            "there is no client named `claude`; clients: cursor"
        );
    }
}
