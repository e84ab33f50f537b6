//! Replacing a file so that a reader (or a crash) sees the old content or the
//! new, never a mix. Used for `registry.lock`, the accounts file and the
//! encrypted vault.

use std::io::Write;
use std::path::Path;

/// Write a sibling temporary file, fsync it, rename it over `path`, then
/// fsync the folder so that the rename itself is durable.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_then_rename(path, bytes, true)
}

/// Like [`write_atomic`], but never replaces an existing file: fails with
/// `AlreadyExists` if `path` appeared first (another process made it).
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_then_rename(path, bytes, false)
}

/// The file is owner-only, as every temporary file `tempfile` creates, in a
/// folder created owner-only if missing: the data folder and everything
/// mcpist keeps in it are the owner's.
fn write_then_rename(path: &Path, bytes: &[u8], replace: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    create_private_dir(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    if replace {
        temp.persist(path).map_err(|e| e.error)?;
    } else {
        temp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    std::fs::File::open(dir)?.sync_all()
}

/// Create `dir` and its missing parents private to the user (0700); an
/// existing folder is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
