//! Compiled modules, the runtime's one cache of them: in memory by sha256
//! for this process (a hot reload rescans the folder, and compiles and links
//! only the files it has not seen), and on disk across starts when
//! configured, so that a start does not compile every module with Cranelift
//! again: the main cost of a cold start.
//!
//! Loading compiled code is running native code inside the process that
//! holds the vault key, so an entry on disk is trusted only as far as it is
//! proven to be ours:
//!
//! - An entry is named by the module's sha256, the engine's compatibility
//!   hash and this program's version, and carries an HMAC-SHA256 over that
//!   name and its bytes, keyed by a secret kept outside the cache folder
//!   (and outside `plugins/`), created owner-only on first use. Whoever can
//!   write the cache but not read the key cannot make an entry that loads.
//! - The folder is used only when it is owned by this user and not
//!   writable by group or others; otherwise modules are compiled every
//!   start, and a warning says why.
//! - Only pinned modules are written (a file merely dropped into `plugins/`
//!   is compiled in memory to be described, never kept), entries no pin
//!   refers to are evicted after each scan, and the folder is bounded.
//!
//! Any entry that fails a check is removed and the module compiled again.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;
use zeroize::Zeroizing;

use super::PreparedModule;

/// The most compiled code kept on disk: a new entry that would pass it is
/// not written (the module is compiled at each start instead).
const MAX_DISK_BYTES: u64 = 2 << 30;

/// Compiled and linked modules by sha256, with the folder that keeps their
/// compiled code across starts, if any.
#[derive(Default)]
pub(crate) struct CompiledModules {
    in_memory: Mutex<HashMap<String, PreparedModule>>,
    pub on_disk: Option<DiskCache>,
}

impl CompiledModules {
    pub fn get(&self, sha256: &str) -> Option<PreparedModule> {
        self.map().get(sha256).cloned()
    }

    pub fn insert(&self, sha256: &str, prepared: &PreparedModule) {
        self.map().insert(sha256.to_owned(), prepared.clone());
    }

    /// Forget, in memory, the modules whose sha256 is not in `present`.
    pub fn retain(&self, present: &[&str]) {
        self.map()
            .retain(|sha256, _| present.contains(&sha256.as_str()));
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, PreparedModule>> {
        self.in_memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where compiled code is kept across starts, and the key that proves an
/// entry was written by this user's mcpist.
pub(crate) struct DiskCache {
    dir: PathBuf,
    key_file: PathBuf,
    /// Read (or created) on first use; `None` when it cannot be, which
    /// turns the disk cache off.
    key: OnceLock<Option<Zeroizing<[u8; 32]>>>,
}

impl DiskCache {
    pub fn new(dir: &Path, key_file: &Path) -> DiskCache {
        DiskCache {
            dir: dir.to_owned(),
            key_file: key_file.to_owned(),
            key: OnceLock::new(),
        }
    }

    /// The entry name for a module under this engine.
    fn entry_name(engine: &Engine, module_sha256: &str) -> String {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let name = format!(
            "{module_sha256}\0{:016x}\0mcpist {}",
            engine_hash.finish(),
            env!("CARGO_PKG_VERSION")
        );
        hex::encode(Sha256::digest(name.as_bytes()))
    }

    /// The compiled module, if a sound entry is there. Its code is mapped
    /// from the file rather than copied: the kernel shares the pages and
    /// can drop them, so a large module (a language runtime of tens of MiB)
    /// does not stay resident in full.
    pub fn load(&self, engine: &Engine, module_sha256: &str) -> Option<Component> {
        use std::os::unix::fs::MetadataExt;
        let key = self.usable_key()?;
        let name = Self::entry_name(engine, module_sha256);
        let (artifact, tag_file) = self.paths(&name);
        let file = std::fs::File::open(&artifact).ok()?;
        let verified = file.metadata().ok()?;
        let tag = std::fs::read_to_string(&tag_file).unwrap_or_default();
        let proven = hex::decode(tag.trim()).is_ok_and(|tag| {
            mac_of_file(key, &name, &file).is_ok_and(|mac| mac.verify_slice(&tag).is_ok())
        });
        if !proven {
            tracing::warn!(entry = %artifact.display(), "a compiled-module cache entry is not one this mcpist wrote (its MAC does not verify); compiling the module again");
            self.discard(&name);
            return None;
        }
        // SAFETY: the file is an artifact this program serialized for an
        // engine with the same compatibility hash and for this module (both
        // in the entry's name), unchanged since: its MAC, keyed by a secret
        // outside the cache folder, verifies over the name and the bytes.
        // The folder is this user's and writable by no one else (see
        // `usable_key`), and the file mapped is the one verified (same
        // inode, size and time, checked below); entries are replaced by
        // rename, never rewritten in place. wasmtime still checks the
        // artifact's header against this engine and refuses a mismatch.
        let loaded = unsafe { Component::deserialize_file(engine, &artifact) };
        let mapped = std::fs::metadata(&artifact).ok();
        let same_file = mapped.is_some_and(|m| {
            (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec())
                == (
                    verified.dev(),
                    verified.ino(),
                    verified.len(),
                    verified.mtime(),
                    verified.mtime_nsec(),
                )
        });
        match loaded {
            Ok(component) if same_file => Some(component),
            Ok(_) => {
                tracing::warn!(entry = %artifact.display(), "a compiled-module cache entry changed while it was loaded; compiling the module again");
                self.discard(&name);
                None
            }
            Err(error) => {
                tracing::warn!(entry = %artifact.display(), "a compiled-module cache entry cannot be loaded ({error}); compiling again");
                self.discard(&name);
                None
            }
        }
    }

    /// Keep `component` for the next start. Failing to is not an error: the
    /// next start compiles again.
    pub fn store(&self, engine: &Engine, module_sha256: &str, component: &Component) {
        let Some(key) = self.usable_key() else {
            return;
        };
        let name = Self::entry_name(engine, module_sha256);
        if let Err(error) = self.write(key, &name, component) {
            tracing::warn!(dir = %self.dir.display(), "cannot keep a compiled module: {error}");
        }
    }

    /// Remove every entry that is not the compiled form, under `engine`, of
    /// one of `pinned` (module sha256s), and anything else in the folder
    /// that is not an entry.
    pub fn evict_except(&self, engine: &Engine, pinned: &[&str]) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let kept: HashSet<String> = pinned
            .iter()
            .map(|sha256| Self::entry_name(engine, sha256))
            .collect();
        for entry in entries.flatten() {
            let path = entry.path();
            let keep = path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|stem| kept.contains(stem));
            if !keep && path.is_file() {
                tracing::debug!(entry = %path.display(), "evicting a compiled module no pin refers to");
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    fn write(&self, key: &[u8; 32], name: &str, component: &Component) -> anyhow::Result<()> {
        let bytes = component.serialize()?;
        let used = folder_bytes(&self.dir);
        if used + bytes.len() as u64 > MAX_DISK_BYTES {
            anyhow::bail!(
                "the folder holds {used} bytes and this entry would pass the limit of {MAX_DISK_BYTES}"
            );
        }
        let (artifact, tag_file) = self.paths(name);
        let tag = hex::encode(mac(key, name, &bytes).finalize().into_bytes());
        // The artifact first, then its MAC: a crash between the two leaves
        // an entry that does not verify, which is not used.
        crate::atomic_file::write_atomic(&artifact, &bytes)?;
        crate::atomic_file::write_atomic(&tag_file, tag.as_bytes())?;
        Ok(())
    }

    /// The key, when the folder may be used at all: created private if
    /// missing, owned by this user and writable by no one else.
    fn usable_key(&self) -> Option<&[u8; 32]> {
        let key = self
            .key
            .get_or_init(|| match open_key(&self.dir, &self.key_file) {
                Ok(key) => Some(key),
                Err(reason) => {
                    tracing::warn!(dir = %self.dir.display(), "not using the compiled-module cache: {reason}; modules are compiled at every start");
                    None
                }
            });
        key.as_deref()
    }

    fn discard(&self, name: &str) {
        let (artifact, tag_file) = self.paths(name);
        let _ = std::fs::remove_file(tag_file);
        let _ = std::fs::remove_file(artifact);
    }

    fn paths(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{name}.cwasm")),
            self.dir.join(format!("{name}.mac")),
        )
    }
}

/// [`mac`] of a file's contents, read in chunks rather than whole.
fn mac_of_file(key: &[u8; 32], name: &str, file: &std::fs::File) -> std::io::Result<Hmac<Sha256>> {
    use std::io::Read;
    let mut mac = mac(key, name, &[]);
    let mut reader = file;
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            return Ok(mac);
        }
        mac.update(&chunk[..n]);
    }
}

fn mac(key: &[u8; 32], name: &str, bytes: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(name.as_bytes());
    mac.update(&[0]);
    mac.update(bytes);
    mac
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Check the folder (creating it private if missing), then read the key
/// file, creating it owner-only with fresh random bytes if missing.
fn open_key(dir: &Path, key_file: &Path) -> Result<Zeroizing<[u8; 32]>, String> {
    crate::atomic_file::create_private_dir(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    check_private(dir)?;
    if key_file.starts_with(dir) {
        return Err(format!(
            "its key {} must not be inside the cache folder",
            key_file.display()
        ));
    }
    match std::fs::read(key_file) {
        Ok(bytes) => {
            check_private(key_file)?;
            let bytes = Zeroizing::new(bytes);
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                format!(
                    "{} is not a 32-byte key; remove it and a new one is made",
                    key_file.display()
                )
            })?;
            Ok(Zeroizing::new(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = Zeroizing::new([0u8; 32]);
            getrandom::fill(key.as_mut()).map_err(|e| format!("no randomness for a key: {e}"))?;
            // Entries made under another key can never verify: start empty.
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
            match crate::atomic_file::write_new(key_file, key.as_ref()) {
                Ok(()) => Ok(key),
                // Another mcpist made it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => open_key(dir, key_file),
                Err(e) => Err(format!("cannot create its key {}: {e}", key_file.display())),
            }
        }
        Err(e) => Err(format!("cannot read its key {}: {e}", key_file.display())),
    }
}

/// Refuse a path that another user could have written: not owned by this
/// user, or writable by group or others.
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(format!(
            "{} is owned by uid {}, not by this user (uid {me})",
            path.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by group or others (mode {:o}); make it private with `chmod go-w`",
            path.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn a_folder_writable_by_others_or_a_key_inside_it_is_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("compiled");
        let key_file = tmp.path().join("cache.key");
        let key = open_key(&dir, &key_file).unwrap();
        assert_eq!(std::fs::metadata(&key_file).unwrap().mode() & 0o777, 0o600);
        // The same key is read back.
        assert_eq!(*open_key(&dir, &key_file).unwrap(), *key);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = open_key(&dir, &key_file).unwrap_err();
        assert!(err.contains("writable by group or others"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = open_key(&dir, &dir.join("k")).unwrap_err();
        assert!(err.contains("must not be inside"), "{err}");
    }
}
