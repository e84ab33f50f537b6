//! Compiled modules kept on disk across starts: reused when sound, rebuilt
//! when damaged, never loaded when their recorded hash does not match.

mod common;

use std::path::{Path, PathBuf};

use mcpist::registry;
use mcpist::runtime::{Limits, Runtime};

use common::bundled;

fn runtime(cache: &Path) -> Runtime {
    Runtime::new(Limits::default())
        .unwrap()
        .with_compiled_cache(cache)
}

fn entry(cache: &Path, extension: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

async fn describes_itself(runtime: &Runtime, bytes: &[u8], sha256: &str) {
    let module = runtime.prepare(bytes, sha256).unwrap();
    let manifest = runtime.describe(&module, "text.wasm").await.unwrap();
    assert_eq!(manifest.name, "text");
}

#[tokio::test]
async fn a_compiled_module_is_reused_and_a_damaged_entry_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("compiled");
    let bytes = std::fs::read(bundled("text")).unwrap();
    let sha256 = registry::sha256_hex(&bytes);

    describes_itself(&runtime(&cache), &bytes, &sha256).await;
    let artifact = entry(&cache, "cwasm");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the cache folder is private: {mode:o}");
    }
    let written = std::fs::metadata(&artifact).unwrap().modified().unwrap();

    // A second start loads it instead of compiling (the entry is not rewritten).
    std::thread::sleep(std::time::Duration::from_millis(20));
    describes_itself(&runtime(&cache), &bytes, &sha256).await;
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
        describes_itself(&runtime(&cache), &bytes, &sha256).await;
        assert_eq!(
            std::fs::read(&artifact).unwrap(),
            good,
            "the entry is rebuilt"
        );
    }

    // An entry whose recorded hash was made to match damaged bytes still
    // goes through wasmtime's own check of the artifact's header.
    let mut header = good.clone();
    header[..16].copy_from_slice(b"not an artifact!");
    std::fs::write(&artifact, &header).unwrap();
    std::fs::write(entry(&cache, "sha256"), registry::sha256_hex(&header)).unwrap();
    describes_itself(&runtime(&cache), &bytes, &sha256).await;
    assert_eq!(std::fs::read(&artifact).unwrap(), good);
}
