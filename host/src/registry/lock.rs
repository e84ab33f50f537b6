//! `registry.lock`: the modules the owner approved, pinned by sha256.
//!
//! The file is TOML, meant to be committed and reviewed like a dependency
//! lock. It is only ever rewritten whole and atomically (temporary file,
//! fsync, rename), so a crash leaves either the old or the new file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file::write_atomic;
use crate::manifest::{CredentialBinding, ModuleManifest, ToolFlags, ToolSpec, canonical_json};

const FORMAT_VERSION: u32 = 1;

const HEADER: &str = "\
# registry.lock: the service modules approved to run, pinned by sha256.
# Written by `mcpist plugins approve`; review changes like a dependency lock.
";

/// Why the lock could not be read or written.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the variants and fields are named by their messages
pub enum LockError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid lock file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "{path} has format version {found}; this mcpist understands version {FORMAT_VERSION}: upgrade mcpist"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One approved module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    /// The module's declared name.
    pub name: String,
    /// Its declared version.
    pub version: String,
    /// File name inside the plugins folder.
    pub file: String,
    /// The sha256 of the approved file.
    pub sha256: String,
    /// Approved outbound origins.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Approved credential bindings.
    #[serde(default)]
    pub credentials: Vec<CredentialBinding>,
    /// Tool name → digest of its name, description, schemas and flags.
    #[serde(default)]
    pub tools: BTreeMap<String, String>,
    /// The owner's rules for approved hosts, keyed by the host as declared.
    /// Set with `mcpist plugins host`; kept across re-approvals.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_rules: BTreeMap<String, HostRule>,
    /// What the owner approved of each tool, as the LLM is shown it, so
    /// that `plugins diff` can show what a new build changes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub approved: BTreeMap<String, ApprovedTool>,
    /// Guard findings the owner read and accepted (`--accept-flagged`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_flags: Vec<String>,
}

/// One tool as approved: its description, schemas (canonical JSON) and
/// flags. Its digest is the pin in [`LockEntry::tools`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovedTool {
    /// The description the model was shown.
    pub description: String,
    /// The input schema, as canonical JSON.
    pub input_schema: String,
    /// The output schema, as canonical JSON, if declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<String>,
    /// As [`ToolFlags::names`] gives them.
    #[serde(default)]
    pub flags: Vec<String>,
}

impl ApprovedTool {
    /// The record of `tool` as approved now.
    pub fn of(tool: &ToolSpec) -> ApprovedTool {
        ApprovedTool {
            description: tool.description.clone(),
            input_schema: canonical_json(&tool.input_schema),
            output_schema: tool.output_schema.as_ref().map(canonical_json),
            flags: tool.flags.names().into_iter().map(str::to_owned).collect(),
        }
    }

    /// The tool again, if the record is well-formed.
    pub fn to_spec(&self, name: &str) -> Option<ToolSpec> {
        Some(ToolSpec {
            name: name.to_owned(),
            description: self.description.clone(),
            input_schema: serde_json::from_str(&self.input_schema).ok()?,
            output_schema: match &self.output_schema {
                Some(schema) => Some(serde_json::from_str(schema).ok()?),
                None => None,
            },
            flags: ToolFlags::from_names(&self.flags)?,
        })
    }
}

/// How a module may use one approved host. The default allows any method
/// and path, and public addresses only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRule {
    /// Allowed methods (`GET`, `POST`, ...); empty allows every method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Allowed path prefixes (`/repos/`); empty allows every path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Whether the host may resolve to a loopback, private, link-local or
    /// CGNAT address (a service on the owner's own network, or a test
    /// server). Cloud metadata endpoints stay unreachable regardless.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_private: bool,
}

impl HostRule {
    /// A short human summary, empty for the default rule.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.methods.is_empty() {
            parts.push(format!("methods {}", self.methods.join(",")));
        }
        if !self.paths.is_empty() {
            parts.push(format!("paths {}", self.paths.join(",")));
        }
        if self.allow_private {
            parts.push("private addresses allowed".to_owned());
        }
        parts.join("; ")
    }
}

impl LockEntry {
    /// The pin of `file` (with `sha256`) declaring `manifest`.
    pub fn new(file: &str, sha256: &str, manifest: &ModuleManifest) -> Self {
        LockEntry {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            file: file.to_owned(),
            sha256: sha256.to_owned(),
            hosts: manifest.hosts.clone(),
            credentials: manifest.credentials.clone(),
            tools: manifest
                .tools
                .iter()
                .map(|t| (t.name.clone(), t.digest()))
                .collect(),
            host_rules: BTreeMap::new(),
            approved: manifest
                .tools
                .iter()
                .map(|t| (t.name.clone(), ApprovedTool::of(t)))
                .collect(),
            accepted_flags: Vec::new(),
        }
    }

    /// The approved tools, as far as the lock records them faithfully: a
    /// record whose digest is not the pin's is left out (the lock was
    /// edited by hand), and so is a tool pinned by a lock too old to record
    /// it.
    pub fn approved_tools(&self) -> BTreeMap<String, ToolSpec> {
        self.approved
            .iter()
            .filter_map(|(name, tool)| {
                let spec = tool.to_spec(name)?;
                (self.tools.get(name) == Some(&spec.digest())).then(|| (name.clone(), spec))
            })
            .collect()
    }

    /// Whether `name` designates this entry: its module name, or its file
    /// name without `.wasm`.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.file.strip_suffix(".wasm") == Some(name)
    }

    /// Whether `manifest` declares exactly what this entry approved.
    pub fn matches(&self, manifest: &ModuleManifest) -> bool {
        self.name == manifest.name
            && self.version == manifest.version
            && self.hosts == manifest.hosts
            && self.credentials == manifest.credentials
            && self.tools.len() == manifest.tools.len()
            && manifest
                .tools
                .iter()
                .all(|t| self.tools.get(&t.name) == Some(&t.digest()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFileRepr {
    version: u32,
    /// Module name → the file served when several versions are pinned.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    active: BTreeMap<String, String>,
    /// The script engine `run_script` runs, when one is approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    script_engine: Option<EnginePin>,
    #[serde(default, rename = "module")]
    modules: Vec<LockEntry>,
}

/// The approved script engine: the component `run_script` runs scripts in.
/// It can call every tool the calling client may call, and nothing else;
/// unlike a module it declares no tools, hosts or credentials, so its pin
/// is its file and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnginePin {
    /// Path inside the plugins folder, e.g. `engines/javascript.wasm`.
    pub file: String,
    /// The sha256 of the approved file.
    pub sha256: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
/// `registry.lock`: every approved module, and the active version of each.
pub struct Lock {
    entries: Vec<LockEntry>,
    active: BTreeMap<String, String>,
    script_engine: Option<EnginePin>,
}

impl Lock {
    /// Read the lock; a missing file is an empty lock (nothing approved yet).
    pub fn load(path: &Path) -> Result<Lock, LockError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lock::default()),
            Err(source) => {
                return Err(LockError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Lock::parse(&text, path)
    }

    /// The lock `text` holds; `path` is named in errors.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Lock, LockError> {
        let repr: LockFileRepr = toml::from_str(text).map_err(|e| LockError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if repr.version != FORMAT_VERSION {
            return Err(LockError::Version {
                path: path.to_owned(),
                found: repr.version,
            });
        }
        Ok(Lock {
            entries: repr.modules,
            active: repr.active,
            script_engine: repr.script_engine,
        })
    }

    /// The approved script engine, if any.
    pub fn script_engine(&self) -> Option<&EnginePin> {
        self.script_engine.as_ref()
    }

    /// Approve `pin` as the script engine, replacing any earlier one.
    pub fn pin_script_engine(&mut self, pin: EnginePin) {
        self.script_engine = Some(pin);
    }

    /// Every pin.
    pub fn entries(&self) -> &[LockEntry] {
        &self.entries
    }

    /// Every pin, to change.
    pub fn entries_mut(&mut self) -> &mut [LockEntry] {
        &mut self.entries
    }

    /// The pin of `file`.
    pub fn by_file(&self, file: &str) -> Option<&LockEntry> {
        self.entries.iter().find(|e| e.file == file)
    }

    /// Pin `entry`, replacing any entry for the same file.
    pub fn pin(&mut self, entry: LockEntry) {
        self.entries.retain(|e| e.file != entry.file);
        self.entries.push(entry);
        self.entries
            .sort_by(|a, b| (&a.name, &a.version, &a.file).cmp(&(&b.name, &b.version, &b.file)));
    }

    /// Remove the pin of `file`; returns it if there was one.
    pub fn unpin(&mut self, file: &str) -> Option<LockEntry> {
        let index = self.entries.iter().position(|e| e.file == file)?;
        self.active.retain(|_, active| active != file);
        Some(self.entries.remove(index))
    }

    /// The file that serves module `name` when several of its versions are
    /// pinned, as set by [`Lock::activate`].
    pub fn active(&self, name: &str) -> Option<&str> {
        self.active.get(name).map(String::as_str)
    }

    /// Serve `file` for its module from now on; the module's other pinned
    /// versions stand by (for a rollback).
    pub fn activate(&mut self, file: &str) {
        if let Some(entry) = self.by_file(file) {
            self.active.insert(entry.name.clone(), file.to_owned());
        }
    }

    /// The pin a module file is compared with: its own, else the pin of
    /// another file of the same module (a new build under a new file name).
    pub fn pin_for(&self, file: &str, name: &str) -> Option<&LockEntry> {
        self.by_file(file)
            .or_else(|| self.entries.iter().find(|e| e.name == name))
    }

    /// The lock as written to disk.
    pub fn to_toml(&self) -> String {
        let repr = LockFileRepr {
            version: FORMAT_VERSION,
            active: self.active.clone(),
            script_engine: self.script_engine.clone(),
            modules: self.entries.clone(),
        };
        let body = toml::to_string_pretty(&repr).expect("lock entries always serialise");
        format!("{HEADER}\n{body}")
    }

    /// Replace the file atomically.
    pub fn save(&self, path: &Path) -> Result<(), LockError> {
        write_atomic(path, self.to_toml().as_bytes()).map_err(|source| LockError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Injection, ToolFlags, ToolSpec};

    fn manifest() -> ModuleManifest {
        ModuleManifest {
            name: "demo".into(),
            version: "1.0.0".into(),
            description: "d".into(),
            tools: vec![ToolSpec {
                name: "go".into(),
                description: "goes".into(),
                input_schema: serde_json::json!({"type": "object"}),
                output_schema: None,
                flags: ToolFlags::default(),
            }],
            hosts: vec!["https://api.example.com".into()],
            credentials: vec![CredentialBinding {
                service: "example".into(),
                inject: Injection::Header {
                    name: "X-Key".into(),
                    template: "{secret}".into(),
                },
                hosts: vec!["https://api.example.com".into()],
            }],
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.lock");
        let mut lock = Lock::default();
        lock.pin(LockEntry::new("demo.wasm", "ab", &manifest()));
        lock.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# registry.lock"), "{text}");
        assert_eq!(Lock::load(&path).unwrap(), lock);
    }

    #[test]
    fn missing_file_is_empty_and_bad_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.lock");
        assert!(Lock::load(&path).unwrap().entries().is_empty());
        std::fs::write(&path, "version = 1\n[[module]]\nname = 3\n").unwrap();
        assert!(matches!(Lock::load(&path), Err(LockError::Parse { .. })));
        std::fs::write(&path, "version = 9\n").unwrap();
        assert!(matches!(
            Lock::load(&path),
            Err(LockError::Version { found: 9, .. })
        ));
    }

    #[test]
    fn matches_detects_any_declared_change() {
        let m = manifest();
        let entry = LockEntry::new("demo.wasm", "ab", &m);
        assert!(entry.matches(&m));
        let mut changed = m.clone();
        changed.tools[0].description = "goes, and also reads your keys".into();
        assert!(!entry.matches(&changed));
        let mut more_hosts = m.clone();
        more_hosts.hosts.push("https://evil.example".into());
        assert!(!entry.matches(&more_hosts));
    }

    #[test]
    fn pin_replaces_the_entry_for_the_same_file() {
        let mut lock = Lock::default();
        lock.pin(LockEntry::new("demo.wasm", "aa", &manifest()));
        lock.pin(LockEntry::new("demo.wasm", "bb", &manifest()));
        assert_eq!(lock.entries().len(), 1);
        assert_eq!(lock.entries()[0].sha256, "bb");
    }
}
