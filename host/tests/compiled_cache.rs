//! Compiled modules kept on disk across starts: reused when sound, rebuilt
//! when damaged, and never loaded unless this user's mcpist provably wrote
//! them for this very module. Each attack here is someone who can write the
//! cache folder (or `plugins/`) but not read the key in the data folder.

mod common;

use std::path::{Path, PathBuf};

use mcpist::registry::{self, Guards, Lock};
use mcpist::runtime::{Limits, Runtime};

use common::bundled;

struct Cache {
    dir: tempfile::TempDir,
}

impl Cache {
    fn new() -> Cache {
        Cache {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn folder(&self) -> PathBuf {
        self.dir.path().join("compiled")
    }

    /// A fresh runtime, as at a new start.
    fn runtime(&self) -> Runtime {
        Runtime::new(Limits::default())
            .unwrap()
            .with_compiled_cache(&self.folder(), &self.dir.path().join("cache.key"))
    }

    fn entries(&self, extension: &str) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.folder())
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == extension))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    fn entry(&self, extension: &str) -> PathBuf {
        let found = self.entries(extension);
        assert_eq!(found.len(), 1, "{found:?}");
        found.into_iter().next().unwrap()
    }
}

fn module(name: &str) -> (Vec<u8>, String) {
    let bytes = std::fs::read(bundled(name)).unwrap();
    let sha256 = registry::sha256_hex(&bytes);
    (bytes, sha256)
}

async fn name_of(runtime: &Runtime, bytes: &[u8], sha256: &str) -> String {
    let module = runtime.prepare_pinned("test.wasm", bytes, sha256).unwrap();
    runtime.describe(&module, "x.wasm").await.unwrap().name
}

#[tokio::test]
async fn a_compiled_module_is_reused_and_a_damaged_entry_is_rebuilt() {
    let cache = Cache::new();
    let (bytes, sha256) = module("text");

    assert_eq!(name_of(&cache.runtime(), &bytes, &sha256).await, "text");
    let artifact = cache.entry("cwasm");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cache.folder())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the cache folder is private: {mode:o}");
    }
    let written = std::fs::metadata(&artifact).unwrap().modified().unwrap();

    // A second start loads it instead of compiling (the entry is not rewritten).
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(name_of(&cache.runtime(), &bytes, &sha256).await, "text");
    assert_eq!(
        std::fs::metadata(&artifact).unwrap().modified().unwrap(),
        written
    );

    // One flipped byte, or a cut file: not loaded, compiled again, rewritten.
    let good = std::fs::read(&artifact).unwrap();
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    for damaged in [flipped, good[..good.len() / 3].to_vec()] {
        std::fs::write(&artifact, &damaged).unwrap();
        assert_eq!(name_of(&cache.runtime(), &bytes, &sha256).await, "text");
        assert_eq!(
            std::fs::read(&artifact).unwrap(),
            good,
            "the entry is rebuilt"
        );
    }
}

#[tokio::test]
async fn substituted_code_in_the_cache_is_never_loaded() {
    let cache = Cache::new();
    let (text, text_sha) = module("text");
    let (other, other_sha) = module("time");
    let runtime = cache.runtime();
    name_of(&runtime, &text, &text_sha).await;
    let text_entry = cache.entry("cwasm");
    name_of(&runtime, &other, &other_sha).await;
    let other_entry = cache
        .entries("cwasm")
        .into_iter()
        .find(|p| *p != text_entry)
        .unwrap();
    let mac_of = |p: &Path| p.with_extension("mac");
    // The attacker writes a new file and renames it over the entry, as
    // mcpist itself replaces entries: the first runtime still maps the old
    // one (a file rewritten in place under a mapping would fault it, see
    // docs/security.md, Known limits).
    let substitute = |from: &Path, to: &Path| {
        let staged = to.with_extension("staged");
        std::fs::copy(from, &staged).unwrap();
        std::fs::rename(&staged, to).unwrap();
    };

    // The attacker puts another module's compiled code, with its genuine
    // MAC, in place of the pinned module's entry.
    substitute(&other_entry, &text_entry);
    substitute(&mac_of(&other_entry), &mac_of(&text_entry));
    assert_eq!(name_of(&cache.runtime(), &text, &text_sha).await, "text");

    // ... or with a "checksum" of the substitute, as a plain hash would be.
    substitute(&other_entry, &text_entry);
    std::fs::write(
        mac_of(&text_entry),
        registry::sha256_hex(&std::fs::read(&other_entry).unwrap()),
    )
    .unwrap();
    assert_eq!(name_of(&cache.runtime(), &text, &text_sha).await, "text");

    // A cache folder others can write is not used at all.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(cache.folder(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    substitute(&other_entry, &text_entry);
    substitute(&mac_of(&other_entry), &mac_of(&text_entry));
    let substituted = std::fs::read(&text_entry).unwrap();
    assert_eq!(name_of(&cache.runtime(), &text, &text_sha).await, "text");
    assert_eq!(
        std::fs::read(&text_entry).unwrap(),
        substituted,
        "a folder others can write is neither read nor written"
    );
}

#[tokio::test]
async fn only_pinned_modules_are_kept_and_unpinned_entries_are_evicted() {
    let cache = Cache::new();
    let home = tempfile::tempdir().unwrap();
    let plugins = home.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    for name in ["text", "time"] {
        std::fs::copy(bundled(name), plugins.join(format!("{name}.wasm"))).unwrap();
    }
    let lock_path = home.path().join("registry.lock");
    let scan = |runtime: Runtime| {
        let lock = Lock::load(&lock_path).unwrap();
        let plugins = plugins.clone();
        async move {
            registry::scan(&runtime, &plugins, &lock, &Guards::default())
                .await
                .unwrap()
        }
    };

    // Dropped into plugins/ but not approved: described, never kept.
    let found = scan(cache.runtime()).await;
    assert_eq!(found.modules.len(), 2);
    assert!(cache.entries("cwasm").is_empty());

    // Approved: kept.
    let mut lock = Lock::load(&lock_path).unwrap();
    for name in ["text", "time"] {
        registry::approve(&found, &mut lock, registry::Approval::of(name), &plugins).unwrap();
    }
    lock.save(&lock_path).unwrap();
    scan(cache.runtime()).await;
    assert_eq!(cache.entries("cwasm").len(), 2);

    // Unpinned (revoked from the lock): its entry goes at the next scan,
    // as does anything else left in the folder.
    let mut lock = Lock::load(&lock_path).unwrap();
    lock.unpin("time.wasm").unwrap();
    lock.save(&lock_path).unwrap();
    std::fs::write(cache.folder().join("planted.bin"), b"junk").unwrap();
    scan(cache.runtime()).await;
    assert_eq!(cache.entries("cwasm").len(), 1);
    assert!(!cache.folder().join("planted.bin").exists());
}
