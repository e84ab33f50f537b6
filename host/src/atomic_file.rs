//! Replacing a file so that a reader (or a crash) sees the old content or the
//! new, never a mix. Used for `registry.lock`, the accounts file and the
//! encrypted vault.

use std::io::Write;
use std::path::Path;

/// Write a sibling temporary file, fsync it, rename it over `path`, then
/// fsync the folder so that the rename itself is durable.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}
