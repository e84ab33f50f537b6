//! The plugins folder checked against `registry.lock` (trust on first use).
//!
//! Every `*.wasm` file in the folder is hashed. A file whose sha256 matches
//! its pin is *pinned* and may be served; a file with no pin is *pending*; a
//! file whose hash differs from its pin is *changed*. Neither pending nor
//! changed modules are ever served: the owner approves them first.
//!
//! The [`guards`] look at what every module shows the LLM, at approval and
//! at each load: a pinned module they refuse is invalid, and one they flag is
//! *flagged* (not served) until the owner accepts those very findings.

pub mod diff;
pub mod guards;
pub mod lock;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::manifest::ModuleManifest;
use crate::runtime::{PreparedModule, Runtime};
pub use guards::{Finding, Guards, Severity};
pub use lock::{HostRule, Lock, LockEntry, LockError};

/// Why the plugins folder or the lock could not be read, or a change made.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the variants and fields are named by their messages
pub enum RegistryError {
    #[error("cannot read the plugins folder {path}: {source}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("no module named `{name}` is waiting for approval in {dir}{hint}")]
    NotFound {
        name: String,
        dir: PathBuf,
        hint: String,
    },
    #[error("no approved module is named `{name}`{hint}")]
    NotPinned { name: String, hint: String },
    #[error("module `{name}` does not declare host `{host}`; it declares: {}", if .declared.is_empty() { "no hosts".to_owned() } else { .declared.join(", ") })]
    UndeclaredHost {
        name: String,
        host: String,
        declared: Vec<String>,
    },
    #[error("module `{name}` ({file}) cannot be approved: {reason}")]
    NotApprovable {
        name: String,
        file: String,
        reason: String,
    },
    #[error(
        "module `{name}` ({file}) changed since it was shown (sha256 {shown} then, {now} now): nothing was approved; review it again"
    )]
    ChangedSinceShown {
        name: String,
        file: String,
        shown: String,
        now: String,
    },
    #[error("{} ({file}) is pinned and served: to stop serving it, `mcpist plugins remove {}`", .name, .name)]
    ServedNotWaiting { name: String, file: String },
    #[error("cannot move {file} out of the plugins folder to {}: {source}", .to.display())]
    SetAside {
        file: String,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where a module file stands against the lock.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleState {
    /// The file matches its pin and declares what was approved.
    Pinned,
    /// Not in the lock: waits for `mcpist plugins approve`.
    Pending,
    /// In the lock, but the file's hash differs from the pin.
    Changed {
        /// The sha256 the lock pins.
        pinned_sha256: String,
    },
    /// Pinned, but a guard flags what it shows the LLM and the owner has not
    /// accepted that finding (the guards' settings changed since approval).
    Flagged,
    /// Pinned, but another pinned version of the same module is the active
    /// one (`mcpist plugins use`); kept for a rollback.
    Standby {
        /// The file of the version served.
        active: String,
    },
    /// Cannot be used at all (not a component, wrong world, bad declaration,
    /// or a declaration that differs from the approved one).
    Invalid {
        /// Why, for the owner.
        reason: String,
    },
}

impl ModuleState {
    /// One sentence on what the state means and what to do.
    pub fn detail(&self) -> String {
        match self {
            ModuleState::Pinned => "pinned and served".to_owned(),
            ModuleState::Pending => {
                "new module, not served until approved: review it, then `mcpist plugins approve NAME`"
                    .to_owned()
            }
            ModuleState::Changed { pinned_sha256 } => format!(
                "the file's sha256 differs from the pinned {}; it is not served. If you expected this change, \
                 review it and approve it again; otherwise restore the pinned file",
                short_hash(pinned_sha256)
            ),
            ModuleState::Flagged => "pinned, but a guard flags what it shows the model and that finding was not accepted: \
                 read `mcpist plugins diff NAME`, then approve it again with --accept-flagged if you trust it"
                .to_owned(),
            ModuleState::Standby { active } => format!(
                "pinned, standing by: {active} is the version served; `mcpist plugins use` switches"
            ),
            ModuleState::Invalid { reason } => format!("cannot be used: {reason}"),
        }
    }

    /// Whether the owner can approve (or reject) a module in this state.
    pub fn is_waiting(&self) -> bool {
        waiting(self)
    }

    /// The state's name, as `plugins list` shows it.
    pub fn label(&self) -> &'static str {
        match self {
            ModuleState::Pinned => "pinned",
            ModuleState::Pending => "pending",
            ModuleState::Changed { .. } => "changed",
            ModuleState::Flagged => "flagged",
            ModuleState::Standby { .. } => "standby",
            ModuleState::Invalid { .. } => "invalid",
        }
    }
}

/// One `.wasm` file found in the plugins folder.
#[derive(Debug, Clone)]
pub struct ModuleFile {
    /// File name inside the plugins folder.
    pub file: String,
    /// Its path.
    pub path: PathBuf,
    /// The sha256 of its bytes.
    pub sha256: String,
    /// Where it stands against the lock.
    pub state: ModuleState,
    /// What the module declares, when it could be read.
    pub manifest: Option<ModuleManifest>,
    /// Ready to serve: present only for pinned modules.
    pub prepared: Option<PreparedModule>,
    /// The owner's rules for the module's hosts, from its pin.
    pub host_rules: BTreeMap<String, HostRule>,
    /// What the guards found in its declaration.
    pub findings: Vec<Finding>,
}

impl ModuleFile {
    /// What approving it would change against `lock`, if its declaration
    /// could be read: what `mcpist plugins diff` prints.
    pub fn diff(&self, lock: &Lock) -> Option<diff::ModuleDiff> {
        let manifest = self.manifest.as_ref()?;
        let pin = lock.pin_for(&self.file, &manifest.name);
        Some(diff::ModuleDiff::new(
            pin,
            &self.file,
            &self.sha256,
            manifest,
            self.findings.clone(),
        ))
    }

    /// Whether the guards flag anything that approving must accept.
    pub fn has_flagged_findings(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Flagged)
    }

    /// The declared name, or the file stem when the module could not be read.
    pub fn name(&self) -> &str {
        match &self.manifest {
            Some(m) => &m.name,
            None => self.file.strip_suffix(".wasm").unwrap_or(&self.file),
        }
    }
}

/// The result of checking the plugins folder against the lock.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Every `.wasm` file, by file name.
    pub modules: Vec<ModuleFile>,
    /// Pins whose file is missing from the plugins folder.
    pub missing: Vec<LockEntry>,
    /// The approved script engine, where it should be; its file is read
    /// and checked against the pin when a script first needs it.
    pub script_engine: Option<crate::script::ApprovedEngine>,
}

impl Scan {
    /// The files that may be served.
    pub fn pinned(&self) -> impl Iterator<Item = &ModuleFile> {
        self.modules
            .iter()
            .filter(|m| m.state == ModuleState::Pinned)
    }

    /// Whether every file is pinned (served or standing by) and every pin
    /// has its file.
    pub fn all_pinned(&self) -> bool {
        self.missing.is_empty()
            && self
                .modules
                .iter()
                .all(|m| matches!(m.state, ModuleState::Pinned | ModuleState::Standby { .. }))
    }
}

/// How many hex digits of a sha256 tables show.
pub const HASH_PREFIX: usize = 12;

/// The first [`HASH_PREFIX`] digits of a sha256.
pub fn short_hash(sha256: &str) -> String {
    sha256.chars().take(HASH_PREFIX).collect()
}

/// The sha256 of `bytes`, in lowercase hex, as the lock pins it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hash, compile and describe every module in `dir`, and compare with `lock`.
/// Compiled modules come from the runtime's cache when it has them; the
/// cache forgets those no longer in the folder.
pub async fn scan(
    runtime: &Runtime,
    dir: &Path,
    lock: &Lock,
    guards: &Guards,
) -> Result<Scan, RegistryError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
            .collect(),
        // A missing folder is an empty one: nothing installed yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(RegistryError::ReadDir {
                path: dir.to_owned(),
                source,
            });
        }
    };
    files.sort();

    let mut modules = Vec::with_capacity(files.len());
    for path in files {
        modules.push(examine(runtime, &path, lock).await);
    }
    runtime.retain_prepared(
        &modules
            .iter()
            .map(|m| m.sha256.as_str())
            .collect::<Vec<_>>(),
    );
    runtime.evict_unpinned(
        &lock
            .entries()
            .iter()
            .map(|e| e.sha256.as_str())
            .chain(lock.script_engine().map(|pin| pin.sha256.as_str()))
            .collect::<Vec<_>>(),
    );
    choose_versions(&mut modules, lock);
    guard(&mut modules, lock, guards);

    let missing = lock
        .entries()
        .iter()
        .filter(|e| !modules.iter().any(|m| m.file == e.file))
        .cloned()
        .collect();
    let script_engine = lock
        .script_engine()
        .and_then(|pin| crate::script::ApprovedEngine::locate(dir, pin));
    Ok(Scan {
        modules,
        missing,
        script_engine,
    })
}

async fn examine(runtime: &Runtime, path: &Path, lock: &Lock) -> ModuleFile {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut module = ModuleFile {
        file: file.clone(),
        path: path.to_owned(),
        sha256: String::new(),
        state: ModuleState::Pending,
        manifest: None,
        prepared: None,
        host_rules: BTreeMap::new(),
        findings: Vec::new(),
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            module.state = ModuleState::Invalid {
                reason: format!("cannot read {}: {e}", path.display()),
            };
            return module;
        }
    };
    module.sha256 = sha256_hex(&bytes);
    let pin = lock.by_file(&file);
    module.state = match pin {
        None => ModuleState::Pending,
        Some(pin) if pin.sha256 != module.sha256 => ModuleState::Changed {
            pinned_sha256: pin.sha256.clone(),
        },
        Some(_) => ModuleState::Pinned,
    };

    // Compile and describe in the sandbox, so that list and approve can show
    // what the module declares. Only pinned modules keep their compiled form,
    // in memory and on disk.
    let prepared = if module.state == ModuleState::Pinned {
        runtime.prepare_pinned(&file, &bytes, &module.sha256)
    } else {
        runtime.prepare(&file, &bytes, &module.sha256)
    };
    let described = match prepared {
        Ok(prepared) => runtime
            .describe(&prepared, &file)
            .await
            .map(|manifest| (prepared, manifest))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let (prepared, manifest) = match described {
        Ok(found) => found,
        // A changed file stays "changed" whatever its bytes now hold: that
        // it differs from what was approved is what the owner must know.
        Err(reason) if matches!(module.state, ModuleState::Changed { .. }) => {
            tracing::debug!(file = %file, "changed module is also unreadable: {reason}");
            return module;
        }
        Err(reason) => {
            module.state = ModuleState::Invalid { reason };
            return module;
        }
    };
    if let (ModuleState::Pinned, Some(pin)) = (&module.state, pin) {
        if pin.matches(&manifest) {
            module.prepared = Some(prepared);
            module.host_rules = pin.host_rules.clone();
        } else {
            // Same bytes, different declaration: the module's `describe` is
            // not deterministic, so what was approved is not what it says now.
            module.state = ModuleState::Invalid {
                reason: "its description differs from the one pinned in registry.lock although the file is unchanged; \
                         a module must describe itself the same way every time"
                    .to_owned(),
            };
        }
    }
    module.manifest = Some(manifest);
    module
}

/// One pinned file serves each module name: the active version from the
/// lock, else the first file; other pinned versions stand by.
fn choose_versions(modules: &mut [ModuleFile], lock: &Lock) {
    let pinned: Vec<(String, String)> = modules
        .iter()
        .filter(|m| m.state == ModuleState::Pinned)
        .map(|m| (m.name().to_owned(), m.file.clone()))
        .collect();
    for module in modules
        .iter_mut()
        .filter(|m| m.state == ModuleState::Pinned)
    {
        let name = module.name().to_owned();
        let versions: Vec<&str> = pinned
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, f)| f.as_str())
            .collect();
        if versions.len() < 2 {
            continue;
        }
        let active = lock
            .active(&name)
            .filter(|a| versions.contains(a))
            .unwrap_or(versions[0]);
        if module.file != active {
            module.state = ModuleState::Standby {
                active: active.to_owned(),
            };
            module.prepared = None;
        }
    }
}

/// Run the guards on every module that could be read. Shadowing is judged
/// against the pinned modules, the ones a client could be steered towards.
fn guard(modules: &mut [ModuleFile], lock: &Lock, guards: &Guards) {
    let pinned: Vec<ModuleManifest> = modules
        .iter()
        .filter(|m| m.state == ModuleState::Pinned)
        .filter_map(|m| m.manifest.clone())
        .collect();
    let others: Vec<&ModuleManifest> = pinned.iter().collect();
    for module in modules.iter_mut() {
        let Some(manifest) = &module.manifest else {
            continue;
        };
        module.findings = guards.inspect(manifest, &others);
        if module.state != ModuleState::Pinned {
            continue;
        }
        let refused: Vec<String> = module
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Refused)
            .map(Finding::to_string)
            .collect();
        let accepted = lock
            .by_file(&module.file)
            .map(|pin| pin.accepted_flags.as_slice())
            .unwrap_or_default();
        let unaccepted = module
            .findings
            .iter()
            .any(|f| f.severity == Severity::Flagged && !accepted.contains(&f.to_string()));
        if !refused.is_empty() {
            module.state = ModuleState::Invalid {
                reason: format!("refused by a guard: {}", refused.join("; ")),
            };
        } else if unaccepted {
            module.state = ModuleState::Flagged;
        } else {
            continue;
        }
        module.prepared = None;
    }
}

/// The guards' flagged findings on `module`, and an error if it may not be
/// approved: refused findings, or flagged ones not accepted.
fn check_findings(
    module: &ModuleFile,
    name: &str,
    accept_flagged: bool,
) -> Result<Vec<String>, RegistryError> {
    let list = |severity| -> Vec<String> {
        module
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .map(Finding::to_string)
            .collect()
    };
    let (refused, flagged) = (list(Severity::Refused), list(Severity::Flagged));
    let refuse = |reason: String| RegistryError::NotApprovable {
        name: name.to_owned(),
        file: module.file.clone(),
        reason,
    };
    if !refused.is_empty() {
        return Err(refuse(format!(
            "a guard refuses it:\n  - {}",
            refused.join("\n  - ")
        )));
    }
    if !flagged.is_empty() && !accept_flagged {
        return Err(refuse(format!(
            "a guard flags what it shows the model:\n  - {}\nRead them in `mcpist plugins diff {name}`; if you trust the module anyway, approve it with --accept-flagged",
            flagged.join("\n  - ")
        )));
    }
    Ok(flagged)
}

/// What the owner approves: a module by name, and optionally the hash of
/// the file as it was shown to them.
#[derive(Debug, Clone, Copy)]
pub struct Approval<'a> {
    /// Declared name or file stem.
    pub name: &'a str,
    /// The sha256 the owner reviewed: the approval is refused if the file
    /// is not that file any more (it changed while they read the diff).
    pub shown_sha256: Option<&'a str>,
    /// Accept the findings the guards flag.
    pub accept_flagged: bool,
}

impl<'a> Approval<'a> {
    /// Approve `name` as it is now, accepting no flagged findings.
    pub fn of(name: &'a str) -> Approval<'a> {
        Approval {
            name,
            shown_sha256: None,
            accept_flagged: false,
        }
    }
}

/// Pin the pending, changed or flagged module the approval names. Findings
/// the guards flag need `accept_flagged`. Returns the new entry; the caller
/// saves the lock.
pub fn approve(
    scan: &Scan,
    lock: &mut Lock,
    approval: Approval<'_>,
    dir: &Path,
) -> Result<LockEntry, RegistryError> {
    let Approval {
        name,
        shown_sha256,
        accept_flagged,
    } = approval;
    let module = find(scan, name, dir)?;
    if let Some(shown) = shown_sha256
        && shown != module.sha256
    {
        return Err(RegistryError::ChangedSinceShown {
            name: module.name().to_owned(),
            file: module.file.clone(),
            shown: short_hash(shown),
            now: short_hash(&module.sha256),
        });
    }
    let refuse = |reason: String| RegistryError::NotApprovable {
        name: name.to_owned(),
        file: module.file.clone(),
        reason,
    };
    match (&module.state, &module.manifest) {
        (ModuleState::Invalid { reason }, _) => Err(refuse(reason.clone())),
        (ModuleState::Pinned, _) => Err(refuse("it is already pinned".to_owned())),
        (_, None) => Err(refuse("its description could not be read".to_owned())),
        (_, Some(manifest)) => {
            let accepted_flags = check_findings(module, name, accept_flagged)?;
            let mut entry = LockEntry::new(&module.file, &module.sha256, manifest);
            entry.accepted_flags = accepted_flags;
            // The owner's host rules survive a re-approval for the hosts the
            // new version still declares.
            if let Some(old) = lock.by_file(&module.file) {
                entry.host_rules = old
                    .host_rules
                    .iter()
                    .filter(|(host, _)| manifest.hosts.contains(host))
                    .map(|(h, r)| (h.clone(), r.clone()))
                    .collect();
            }
            lock.pin(entry.clone());
            // A newly approved version is the one served; others stand by.
            lock.activate(&entry.file);
            Ok(entry)
        }
    }
}

/// A module set aside by [`reject`] or [`remove`].
#[derive(Debug, Clone)]
pub struct SetAside {
    /// The module's name.
    pub name: String,
    /// Its file name in the plugins folder.
    pub file: String,
    /// Where the file is now; `None` when it was already gone.
    pub moved_to: Option<PathBuf>,
}

impl std::fmt::Display for SetAside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.moved_to {
            Some(path) => write!(
                f,
                "{} ({}): moved to {}",
                self.name,
                self.file,
                path.display()
            ),
            None => write!(
                f,
                "{} ({}): the file was already gone",
                self.name, self.file
            ),
        }
    }
}

/// Set a waiting (pending, changed or flagged) module's file aside into
/// `aside_dir`; the lock is not touched. A served module is refused: it is
/// removed with [`remove`].
pub fn reject(
    scan: &Scan,
    name: &str,
    dir: &Path,
    aside_dir: &Path,
) -> Result<SetAside, RegistryError> {
    let module = find(scan, name, dir)?;
    if !waiting(&module.state) && !matches!(module.state, ModuleState::Invalid { .. }) {
        return Err(RegistryError::ServedNotWaiting {
            name: module.name().to_owned(),
            file: module.file.clone(),
        });
    }
    Ok(SetAside {
        name: module.name().to_owned(),
        file: module.file.clone(),
        moved_to: Some(set_aside(dir, &module.file, &module.sha256, aside_dir)?),
    })
}

/// Unpin every version of the approved module `name` and set its files
/// aside into `aside_dir`, saving the lock at `lock_file` after each.
pub fn remove(
    lock: &mut Lock,
    lock_file: &Path,
    name: &str,
    dir: &Path,
    aside_dir: &Path,
) -> Result<Vec<SetAside>, RegistryError> {
    let files: Vec<(String, String, String)> = lock
        .entries()
        .iter()
        .filter(|e| e.answers_to(name))
        .map(|e| (e.name.clone(), e.file.clone(), e.sha256.clone()))
        .collect();
    if files.is_empty() {
        let pinned: Vec<&str> = lock.entries().iter().map(|e| e.name.as_str()).collect();
        return Err(RegistryError::NotPinned {
            name: name.to_owned(),
            hint: format!(
                "; approved modules: {}",
                if pinned.is_empty() {
                    "(none)".to_owned()
                } else {
                    pinned.join(", ")
                }
            ),
        });
    }
    let mut removed = Vec::new();
    for (name, file, sha256) in files {
        lock.unpin(&file);
        lock.save(lock_file)?;
        let moved_to = if dir.join(&file).is_file() {
            Some(set_aside(dir, &file, &sha256, aside_dir)?)
        } else {
            None
        };
        removed.push(SetAside {
            name,
            file,
            moved_to,
        });
    }
    Ok(removed)
}

/// Move a module file out of the plugins folder into `aside_dir`, named
/// with its hash, so that nothing is lost and it is never loaded again by
/// accident.
fn set_aside(
    dir: &Path,
    file: &str,
    sha256: &str,
    aside_dir: &Path,
) -> Result<PathBuf, RegistryError> {
    let target = aside_dir.join(format!("{file}.{}", short_hash(sha256)));
    let failed = |source| RegistryError::SetAside {
        file: file.to_owned(),
        to: target.clone(),
        source,
    };
    crate::atomic_file::create_private_dir(aside_dir).map_err(failed)?;
    let source = dir.join(file);
    std::fs::rename(&source, &target)
        .or_else(|_| {
            // Another filesystem: copy, then remove.
            std::fs::copy(&source, &target).and_then(|_| std::fs::remove_file(&source))
        })
        .map_err(failed)?;
    Ok(target)
}

/// The module file `name` (declared name or file stem) means: one waiting
/// for approval if there is one, else the first found.
pub fn find<'a>(scan: &'a Scan, name: &str, dir: &Path) -> Result<&'a ModuleFile, RegistryError> {
    let candidates: Vec<&ModuleFile> = scan
        .modules
        .iter()
        .filter(|m| m.name() == name || m.file.strip_suffix(".wasm") == Some(name))
        .collect();
    candidates
        .iter()
        .find(|m| waiting(&m.state))
        .or(candidates.first())
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = scan
                .modules
                .iter()
                .filter(|m| waiting(&m.state))
                .map(|m| m.name())
                .collect();
            let mut hint = if names.is_empty() {
                "; no module is waiting".to_owned()
            } else {
                format!("; waiting: {}", names.join(", "))
            };
            // A file that cannot be described has no declared name: it may
            // well be the module meant, so say why it is not usable.
            for invalid in &scan.modules {
                if let ModuleState::Invalid { reason } = &invalid.state {
                    hint.push_str(&format!(
                        "; {} is not a usable module: {reason}",
                        invalid.file
                    ));
                }
            }
            RegistryError::NotFound {
                name: name.to_owned(),
                dir: dir.to_owned(),
                hint,
            }
        })
}

/// Make the pinned file `file` the version of its module that is served;
/// the caller saves the lock.
pub fn use_file(lock: &mut Lock, file: &str) -> Result<LockEntry, RegistryError> {
    let entry = lock
        .by_file(file)
        .cloned()
        .ok_or_else(|| RegistryError::NotPinned {
            name: file.to_owned(),
            hint: "; approve it first".to_owned(),
        })?;
    lock.activate(&entry.file);
    Ok(entry)
}

/// Make the pinned version `name@version` (or the pinned file `name`,
/// without `.wasm`) the one served; the caller saves the lock. A version may
/// be given in part: `github@1` is the pinned 1.x.y, if there is one.
pub fn use_version(lock: &mut Lock, spec: &str) -> Result<LockEntry, RegistryError> {
    let (name, version) = spec.split_once('@').unwrap_or((spec, ""));
    let matching: Vec<&LockEntry> = lock
        .entries()
        .iter()
        .filter(|e| {
            (e.name == name
                && (version.is_empty()
                    || e.version == version
                    || e.version.starts_with(&format!("{version}."))))
                || e.file.strip_suffix(".wasm") == Some(spec)
        })
        .collect();
    let versions = |name: &str| -> String {
        lock.entries()
            .iter()
            .filter(|e| e.name == name)
            .map(|e| format!("{}@{} ({})", e.name, e.version, e.file))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match matching.as_slice() {
        [one] => {
            let entry = (*one).clone();
            lock.activate(&entry.file);
            Ok(entry)
        }
        [] => Err(RegistryError::NotPinned {
            name: spec.to_owned(),
            hint: match versions(name).as_str() {
                "" => "; approve it first with `mcpist plugins approve NAME`".to_owned(),
                pinned => format!("; pinned versions: {pinned}"),
            },
        }),
        several => Err(RegistryError::NotPinned {
            name: spec.to_owned(),
            hint: format!(
                " unambiguously: {} match; name one by its file instead (`mcpist plugins use FILE-STEM`)",
                several
                    .iter()
                    .map(|e| e.file.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// A state `approve` can act on.
fn waiting(state: &ModuleState) -> bool {
    matches!(
        state,
        ModuleState::Pending | ModuleState::Changed { .. } | ModuleState::Flagged
    )
}

/// Set how the approved module `name` may use one of its declared hosts
/// (replacing any earlier rule), in every pinned version of it. Returns the
/// names of the files whose pins changed; the caller saves the lock.
pub fn set_host_rule(
    lock: &mut Lock,
    name: &str,
    host: &str,
    rule: HostRule,
) -> Result<Vec<String>, RegistryError> {
    let pinned: Vec<String> = lock.entries().iter().map(|e| e.name.clone()).collect();
    let mut entries: Vec<&mut LockEntry> = lock
        .entries_mut()
        .iter_mut()
        .filter(|e| e.answers_to(name))
        .collect();
    if entries.is_empty() {
        return Err(RegistryError::NotPinned {
            name: name.to_owned(),
            hint: if pinned.is_empty() {
                "; approve it first with `mcpist plugins approve NAME`".to_owned()
            } else {
                format!("; approved modules: {}", pinned.join(", "))
            },
        });
    }
    let mut changed = Vec::new();
    for entry in entries
        .iter_mut()
        .filter(|e| e.hosts.iter().any(|h| h == host))
    {
        if rule == HostRule::default() {
            entry.host_rules.remove(host);
        } else {
            entry.host_rules.insert(host.to_owned(), rule.clone());
        }
        changed.push(entry.file.clone());
    }
    if changed.is_empty() {
        return Err(RegistryError::UndeclaredHost {
            name: name.to_owned(),
            host: host.to_owned(),
            declared: entries[0].hosts.clone(),
        });
    }
    Ok(changed)
}
