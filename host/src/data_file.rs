//! The small TOML files mcpist keeps for the owner (`accounts.toml`,
//! `clients.toml`): read with a format-version check, written atomically
//! with a header that says what the file is.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::atomic_file::write_atomic;

/// A data file whose format carries a version number.
pub trait Versioned {
    /// The version this build reads and writes.
    const VERSION: u32;
    /// The version the file was written with.
    fn version(&self) -> u32;
}

/// Read `path`; a file that does not exist yet is `Ok(None)`. The error is
/// a one-line reason, for the caller to attach to the path.
pub fn read<T: DeserializeOwned + Versioned>(path: &Path) -> Result<Option<T>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let value: T = toml::from_str(&text).map_err(|e| e.message().to_owned())?;
    if value.version() != T::VERSION {
        return Err(format!(
            "format version {} is not supported (expected {}): upgrade mcpist",
            value.version(),
            T::VERSION
        ));
    }
    Ok(Some(value))
}

/// Replace `path` with `header` and `value` as TOML.
pub fn write<T: Serialize>(path: &Path, header: &str, value: &T) -> std::io::Result<()> {
    let body = toml::to_string_pretty(value).map_err(std::io::Error::other)?;
    write_atomic(path, format!("{header}\n{body}").as_bytes())
}

/// What identifies one version of a file: modification time, length and
/// inode (a save replaces the file, so the inode changes with every write).
type Stamp = (Option<std::time::SystemTime>, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok(), m.len(), m.ino()))
}

/// A data file read on a hot path (every request, every call): parsed again
/// only when it changed on disk, so that edits by the CLI take effect at the
/// next use without re-reading an unchanged file each time.
pub struct Cached<T> {
    path: std::path::PathBuf,
    state: std::sync::RwLock<Option<(Stamp, std::sync::Arc<T>)>>,
}

impl<T> Cached<T> {
    pub fn new(path: &Path) -> Cached<T> {
        Cached {
            path: path.to_owned(),
            state: std::sync::RwLock::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's content, from `load` when it changed since the last call
    /// (or cannot be stamped, e.g. it does not exist yet).
    pub fn get<E>(&self, load: impl FnOnce(&Path) -> Result<T, E>) -> Result<std::sync::Arc<T>, E> {
        let now = stamp(&self.path);
        if let Some(now) = now
            && let Some((seen, value)) = &*self.state.read().unwrap_or_else(|e| e.into_inner())
            && *seen == now
        {
            return Ok(value.clone());
        }
        let value = std::sync::Arc::new(load(&self.path)?);
        if let Some(now) = now {
            *self.state.write().unwrap_or_else(|e| e.into_inner()) = Some((now, value.clone()));
        }
        Ok(value)
    }
}
