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
