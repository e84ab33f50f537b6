//! Shared setup for the host's integration tests: the bundled modules, the
//! hostile test modules (built here on first use), and a private data folder.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use mcpist::catalog::Catalog;
use mcpist::registry::{self, Lock, Scan};
use mcpist::runtime::{Limits, Runtime};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A bundled module built by `cargo xtask build-plugins`.
pub fn bundled(name: &str) -> PathBuf {
    let path = repo().join("plugins").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask build-plugins` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// A hostile test module from tests/fixtures, built once per test process.
/// It has its own target folder, so this never waits on the outer cargo.
pub fn fixture(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let out = BUILT.get_or_init(|| {
        let repo = repo();
        let target = repo.join("target/fixtures");
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(repo.join("tests/fixtures/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("RUSTFLAGS")
            .status()
            .expect("cannot run cargo to build the test modules");
        assert!(status.success(), "building tests/fixtures failed");
        target.join("wasm32-wasip2/release")
    });
    out.join(format!("{name}.wasm"))
}

/// Limits small enough that the hostile tests finish quickly.
pub fn test_limits() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        cpu_time: std::time::Duration::from_millis(300),
        wall_time: std::time::Duration::from_secs(3),
        output_bytes: 1 << 20,
    }
}

/// A private plugins folder and lock.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub runtime: Arc<Runtime>,
}

impl Home {
    pub fn new(limits: Limits) -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        Home {
            dir,
            runtime: Arc::new(Runtime::new(limits).unwrap()),
        }
    }

    pub fn plugins(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.path().join("registry.lock")
    }

    pub fn add(&self, module: &Path) -> PathBuf {
        let dest = self.plugins().join(module.file_name().unwrap());
        std::fs::copy(module, &dest).unwrap();
        dest
    }

    pub fn lock(&self) -> Lock {
        Lock::load(&self.lock_path()).unwrap()
    }

    pub async fn scan(&self) -> Scan {
        registry::scan(&self.runtime, &self.plugins(), &self.lock())
            .await
            .unwrap()
    }

    pub async fn approve(&self, name: &str) {
        let scan = self.scan().await;
        let mut lock = self.lock();
        registry::approve(&scan, &mut lock, name, &self.plugins()).unwrap();
        lock.save(&self.lock_path()).unwrap();
    }

    /// Add and approve modules, and return the catalog serving them.
    pub async fn serve(&self, modules: &[PathBuf]) -> Catalog {
        for module in modules {
            self.add(module);
        }
        let scan = self.scan().await;
        let mut lock = self.lock();
        for module in &scan.modules {
            registry::approve(&scan, &mut lock, module.name(), &self.plugins()).unwrap();
        }
        lock.save(&self.lock_path()).unwrap();
        Catalog::new(self.runtime.clone(), &self.scan().await)
    }
}
