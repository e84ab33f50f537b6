//! Hot reload: the catalog being served is replaced whole when the plugins
//! folder or `registry.lock` changes, without a restart.
//!
//! A new file becomes pending and a changed file becomes changed: neither is
//! served. In particular a changed file stops the module it replaces, since
//! the pinned bytes are gone from the folder; that is what a restart would
//! do too, so what is served never depends on when the server started. A
//! removed file is unloaded; an approval (the lock changing) serves the
//! module at once. Calls already running finish on the catalog they started
//! with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{Notify, watch};

use super::Catalog;
use crate::registry::{self, Guards, Lock, ModuleState, RegistryError, Scan};
use crate::runtime::Runtime;

/// How long the folder must be quiet before a reload: a file being copied
/// sends many events.
const SETTLE: Duration = Duration::from_millis(300);

/// The catalog being served now.
pub struct LiveCatalog {
    current: RwLock<Arc<Catalog>>,
    /// Bumped at every replacement, for sessions that tell their client.
    generation: watch::Sender<u64>,
}

impl LiveCatalog {
    /// Serve `catalog` until it is replaced.
    pub fn new(catalog: Catalog) -> LiveCatalog {
        LiveCatalog {
            current: RwLock::new(Arc::new(catalog)),
            generation: watch::Sender::new(0),
        }
    }

    /// The catalog served now; a call keeps it for as long as it runs.
    pub fn get(&self) -> Arc<Catalog> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serve `catalog` from now on. Sessions are told only if the modules
    /// served (by name and file hash) changed: a pending file dropped in, or
    /// an edited host rule, changes no tool list.
    pub fn replace(&self, catalog: Catalog) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let changed = served(&current) != served(&catalog);
        *current = Arc::new(catalog);
        drop(current);
        if changed {
            self.generation.send_modify(|g| *g += 1);
        }
    }

    /// Changes whenever the modules served change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

fn served(catalog: &Catalog) -> Vec<(&str, &str)> {
    catalog
        .modules()
        .map(|m| (m.manifest.name.as_str(), m.sha256.as_str()))
        .collect()
}

/// Everything needed to scan the folder and build a catalog again.
pub struct Reloader {
    runtime: Arc<Runtime>,
    plugins_dir: PathBuf,
    lock_file: PathBuf,
    guards: Guards,
    live: Arc<LiveCatalog>,
    /// Pending files already announced in the log, by sha256.
    announced: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Reloader {
    /// Scan once and build the first catalog; returns the scan for the
    /// caller to report.
    pub async fn start(
        runtime: Arc<Runtime>,
        plugins_dir: &Path,
        lock_file: &Path,
        guards: Guards,
    ) -> Result<(Arc<Reloader>, Scan), RegistryError> {
        let lock = Lock::load(lock_file)?;
        let scan = registry::scan(&runtime, plugins_dir, &lock, &guards).await?;
        let catalog = Catalog::new(&scan);
        let reloader = Reloader {
            runtime,
            plugins_dir: plugins_dir.to_owned(),
            lock_file: lock_file.to_owned(),
            guards,
            live: Arc::new(LiveCatalog::new(catalog)),
            announced: Default::default(),
        };
        Ok((Arc::new(reloader), scan))
    }

    /// Log each file waiting for approval once, not at every reload.
    fn announce_pending(&self, scan: &Scan) {
        let mut announced = self.announced.lock().unwrap_or_else(|e| e.into_inner());
        for module in &scan.modules {
            let waiting = matches!(
                module.state,
                ModuleState::Pending | ModuleState::Changed { .. }
            );
            if waiting && announced.insert(module.sha256.clone()) {
                tracing::info!(module = module.name(), file = %module.file, state = module.state.label(), "waiting for approval: `mcpist plugins diff {}`", module.name());
            }
        }
    }

    /// The catalog it keeps up to date.
    pub fn live(&self) -> &Arc<LiveCatalog> {
        &self.live
    }

    /// Scan again and serve what is pinned now. On an error (an unreadable
    /// lock, say) the catalog being served stays as it is.
    pub async fn reload(&self) -> Result<(), RegistryError> {
        let lock = Lock::load(&self.lock_file)?;
        let scan = registry::scan(&self.runtime, &self.plugins_dir, &lock, &self.guards).await?;
        let before = self.live.get();
        let catalog = Catalog::new(&scan);
        report(&before, &catalog, &scan);
        self.announce_pending(&scan);
        self.live.replace(catalog);
        Ok(())
    }

    /// Watch the plugins folder and the lock; reload when they change, until
    /// the returned handle is dropped.
    pub fn watch(self: &Arc<Self>) -> Result<WatchHandle, notify::Error> {
        let changed = Arc::new(Notify::new());
        let lock_name = self.lock_file.file_name().map(|n| n.to_owned());
        let signal = changed.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                let relevant = event.paths.iter().any(|p| {
                    p.extension().is_some_and(|e| e == "wasm")
                        || p.file_name() == lock_name.as_deref()
                });
                if relevant && !event.kind.is_access() {
                    signal.notify_one();
                }
            })?;
        // The drop-in folder may not exist yet: make it, so that the first
        // module dropped in is seen.
        crate::atomic_file::create_private_dir(&self.plugins_dir).map_err(notify::Error::io)?;
        watcher.watch(&self.plugins_dir, RecursiveMode::NonRecursive)?;
        let lock_dir = self
            .lock_file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if lock_dir != self.plugins_dir {
            watcher.watch(lock_dir, RecursiveMode::NonRecursive)?;
        }
        let reloader = self.clone();
        let task = tokio::spawn(async move {
            loop {
                changed.notified().await;
                loop {
                    tokio::select! {
                        () = changed.notified() => continue,
                        () = tokio::time::sleep(SETTLE) => break,
                    }
                }
                if let Err(error) = reloader.reload().await {
                    tracing::error!(
                        "cannot reload the plugins: {error}; still serving what was loaded before"
                    );
                }
            }
        });
        tracing::info!(plugins_dir = %self.plugins_dir.display(), lock = %self.lock_file.display(), "watching for module changes");
        Ok(WatchHandle {
            _watcher: watcher,
            task,
        })
    }
}

/// Keeps the watch going; dropping it stops it.
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Log what a reload changed.
fn report(before: &Catalog, after: &Catalog, scan: &Scan) {
    for module in after.modules() {
        match before.modules.get(&module.manifest.name) {
            None => {
                tracing::info!(module = %module.manifest.name, file = %module.file, "now served")
            }
            Some(old) if old.sha256 != module.sha256 => {
                tracing::info!(module = %module.manifest.name, file = %module.file, "now serving the newly approved build")
            }
            Some(_) => {}
        }
    }
    for module in before.modules() {
        if !after.modules.contains_key(&module.manifest.name) {
            let why = scan.modules.iter().find(|m| m.file == module.file).map_or(
                "its file was removed",
                |m| match m.state {
                    ModuleState::Changed { .. } => {
                        "its file changed; approve the new build to serve it"
                    }
                    ModuleState::Flagged => "a guard flags it",
                    _ => "it can no longer be used",
                },
            );
            tracing::warn!(module = %module.manifest.name, file = %module.file, "no longer served: {why}");
        }
    }
}
