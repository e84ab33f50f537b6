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
    Ok(Scan { modules, missing })
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
        runtime.prepare_pinned(&bytes, &module.sha256)
    } else {
        runtime.prepare(&bytes, &module.sha256)
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

/// Pin the pending, changed or flagged module called `name` (its declared
/// name or its file stem). Findings the guards flag need `accept_flagged`.
/// Returns the new entry; the caller saves the lock.
pub fn approve(
    scan: &Scan,
    lock: &mut Lock,
    name: &str,
    dir: &Path,
    accept_flagged: bool,
) -> Result<LockEntry, RegistryError> {
    let module = find(scan, name, dir)?;
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

/// The module file `name` (declared name or file stem) means: one waiting
/// for approval if there is one, else the first found.
pub(crate) fn find<'a>(
    scan: &'a Scan,
    name: &str,
    dir: &Path,
) -> Result<&'a ModuleFile, RegistryError> {
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
            RegistryError::NotFound {
                name: name.to_owned(),
                dir: dir.to_owned(),
                hint: if names.is_empty() {
                    "; no module is waiting".to_owned()
                } else {
                    format!("; waiting: {}", names.join(", "))
                },
            }
        })
}

/// Make the pinned version `name@version` (or the pinned file `name`,
/// without `.wasm`) the one served; the caller saves the lock. A version may
/// be given in part: `github@1` is the pinned 1.x.y, if there is one.
pub(crate) fn use_version(lock: &mut Lock, spec: &str) -> Result<LockEntry, RegistryError> {
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
