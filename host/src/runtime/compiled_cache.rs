//! Compiled modules, the runtime's one cache of them: in memory by sha256
//! for this process (a hot reload rescans the folder, and compiles and links
//! only the files it has not seen), and on disk across starts when
//! configured, so that a start does not compile every module with Cranelift
//! again: the main cost of a cold start.
//!
//! An entry on disk is keyed by the module's sha256, the engine's compatibility hash
//! (its configuration and compiler settings) and this program's version; its
//! own sha256 is recorded beside it when it is written. An entry is used only
//! if it is there whole with that sha256 and wasmtime accepts it for this
//! engine; anything else is removed and the module compiled again.
//!
//! Loading compiled code is trusting it: the folder is created private to the
//! user (0700), the same trust as the program's own files. Someone who can
//! write there can already replace the program.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::PreparedModule;

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

/// Where compiled code is kept across starts.
#[derive(Debug, Clone)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    pub fn new(dir: &Path) -> DiskCache {
        DiskCache {
            dir: dir.to_owned(),
        }
    }

    /// The entry name for a module under this engine.
    fn key(engine: &Engine, module_sha256: &str) -> String {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let key = format!(
            "{module_sha256}\0{:016x}\0mcpist {}",
            engine_hash.finish(),
            env!("CARGO_PKG_VERSION")
        );
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    /// The compiled module, if a sound entry is there.
    pub fn load(&self, engine: &Engine, module_sha256: &str) -> Option<Component> {
        let key = Self::key(engine, module_sha256);
        let (artifact, digest) = self.paths(&key);
        let bytes = std::fs::read(&artifact).ok()?;
        let recorded = std::fs::read_to_string(&digest).unwrap_or_default();
        if hex::encode(Sha256::digest(&bytes)) != recorded.trim() {
            tracing::warn!(entry = %artifact.display(), "a compiled-module cache entry does not match its recorded sha256; compiling again");
            self.discard(&key);
            return None;
        }
        // SAFETY: the bytes are an artifact this program serialized for an
        // engine with the same compatibility hash (the key), unchanged since
        // (their sha256 is the one recorded when they were written), read
        // from a folder private to the user. wasmtime still checks the
        // artifact's header against this engine and refuses a mismatch.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(entry = %artifact.display(), "a compiled-module cache entry cannot be loaded ({error}); compiling again");
                self.discard(&key);
                None
            }
        }
    }

    /// Keep `component` for the next start. Failing to is not an error: the
    /// next start compiles again.
    pub fn store(&self, engine: &Engine, module_sha256: &str, component: &Component) {
        let key = Self::key(engine, module_sha256);
        if let Err(error) = self.write(&key, component) {
            tracing::warn!(dir = %self.dir.display(), "cannot keep a compiled module: {error}");
        }
    }

    fn write(&self, key: &str, component: &Component) -> anyhow::Result<()> {
        create_private_dir(&self.dir)?;
        let bytes = component.serialize()?;
        let (artifact, digest) = self.paths(key);
        // The artifact first, then its digest: a crash between the two
        // leaves an entry without a digest, which is not used.
        crate::atomic_file::write_atomic(&artifact, &bytes)?;
        crate::atomic_file::write_atomic(&digest, hex::encode(Sha256::digest(&bytes)).as_bytes())?;
        Ok(())
    }

    fn discard(&self, key: &str) {
        let (artifact, digest) = self.paths(key);
        let _ = std::fs::remove_file(digest);
        let _ = std::fs::remove_file(artifact);
    }

    fn paths(&self, key: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{key}.cwasm")),
            self.dir.join(format!("{key}.sha256")),
        )
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}
