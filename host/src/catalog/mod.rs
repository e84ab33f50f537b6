//! The modules being served: each pinned module with its compiled form, its
//! tools' argument and output validators, and its egress policy; and the
//! lookups of a module or a tool as one client's mask shows it.
//!
//! A catalog is built whole from a registry scan and replaced whole when the
//! plugins folder or the lock changes (`live.rs`); a call keeps the catalog
//! it started with. Calls themselves go through [`crate::calls`].

pub(crate) mod live;
pub mod schema;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::egress::ModulePolicy;
use crate::manifest::{ModuleManifest, ToolSpec};
use crate::policy::Mask;
use crate::registry::Scan;
use crate::runtime::{PreparedModule, ToolOutput};
use crate::script::ApprovedEngine;
use schema::ArgumentValidator;

/// A tool ready to be called.
#[derive(Debug)]
pub struct ServedTool {
    /// The tool as the module declared and the owner approved it.
    pub spec: ToolSpec,
    /// The input schema as enforced and as shown to clients (closed objects).
    pub input_schema: Value,
    input: ArgumentValidator,
    output: Option<ArgumentValidator>,
}

impl ServedTool {
    /// Check `arguments` against the input schema; the problems, if any, are
    /// written for the model.
    pub(crate) fn check_arguments(&self, arguments: &Value) -> Result<(), String> {
        self.input.validate(arguments)
    }

    /// [`ServedTool::check_arguments`], except at the JSON Pointers
    /// `unknown` (values not known yet).
    pub(crate) fn check_arguments_except(
        &self,
        arguments: &Value,
        unknown: &[String],
    ) -> Result<(), String> {
        self.input.validate_except(arguments, unknown)
    }

    /// Check a result against the declared output schema, if there is one.
    pub(crate) fn check_output(&self, output: &ToolOutput) -> Result<(), String> {
        let Some(validator) = &self.output else {
            return Ok(());
        };
        match &output.structured {
            None => Err("no structured result".to_owned()),
            Some(value) => validator.validate(value),
        }
    }
}

/// A pinned module ready to be called.
#[derive(Debug)]
pub struct ServedModule {
    /// What it declares, as pinned.
    pub manifest: ModuleManifest,
    /// The sha256 of the file served.
    pub sha256: String,
    /// The file's name in the plugins folder.
    pub file: String,
    pub(crate) prepared: PreparedModule,
    tools: BTreeMap<String, ServedTool>,
    /// Where it may send HTTP requests, with which credentials.
    pub policy: Arc<ModulePolicy>,
}

impl ServedModule {
    /// Its tools, in declaration order, as the module author arranged them.
    pub fn tools(&self) -> impl Iterator<Item = &ServedTool> {
        self.manifest
            .tools
            .iter()
            .filter_map(|t| self.tools.get(&t.name))
    }

    /// Whether `mask` shows it: allowed, with at least one shown tool.
    fn shown(&self, mask: &Mask) -> bool {
        let name = &self.manifest.name;
        mask.shows_module(name) && self.tools().any(|t| mask.shows_tool(name, &t.spec))
    }
}

/// A name that is not served, or that the client's mask hides: the two are
/// answered alike.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum LookupError {
    /// No module of that name is served to this client.
    #[error("unknown module `{module}`; available modules: {}", list(.available))]
    UnknownModule {
        /// The name asked for.
        module: String,
        /// The modules the client may see.
        available: Vec<String>,
    },
    /// The module has no tool of that name for this client.
    #[error("module `{module}` has no tool `{tool}`; its tools: {}", list(.available))]
    UnknownTool {
        /// The module.
        module: String,
        /// The tool asked for.
        tool: String,
        /// The module's tools the client may see.
        available: Vec<String>,
    },
}

/// Names for a message, or `(none)`.
fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

/// The served modules, by name.
#[derive(Debug, Default)]
pub struct Catalog {
    modules: BTreeMap<String, ServedModule>,
    script_engine: Option<ApprovedEngine>,
}

impl Catalog {
    /// Serve every pinned module of `scan`. A module whose schemas cannot be
    /// compiled is left out with a warning; the others are served.
    pub(crate) fn new(scan: &Scan) -> Catalog {
        let mut modules = BTreeMap::new();
        for file in scan.pinned() {
            let (Some(manifest), Some(prepared)) = (&file.manifest, &file.prepared) else {
                continue;
            };
            let policy = Arc::new(ModulePolicy::new(
                &manifest.name,
                &manifest.hosts,
                &manifest.credentials,
                &file.host_rules,
            ));
            match serve(
                manifest,
                file.sha256.clone(),
                file.file.clone(),
                prepared.clone(),
                policy,
            ) {
                Ok(module) => {
                    modules.insert(manifest.name.clone(), module);
                }
                Err(reason) => {
                    tracing::warn!(module = %manifest.name, file = %file.file, "not served: {reason}");
                }
            }
        }
        Catalog {
            modules,
            script_engine: scan.script_engine.clone(),
        }
    }

    /// The script engine the owner approved, if any.
    pub fn script_engine(&self) -> Option<&ApprovedEngine> {
        self.script_engine.as_ref()
    }

    /// Every served module, by name.
    pub fn modules(&self) -> impl Iterator<Item = &ServedModule> {
        self.modules.values()
    }

    /// The modules `mask` shows: allowed, and with at least one shown tool.
    pub fn visible<'a>(&'a self, mask: &'a Mask) -> impl Iterator<Item = &'a ServedModule> {
        self.modules.values().filter(move |m| m.shown(mask))
    }

    /// A served module; one `mask` hides is answered as unknown, with the
    /// same message a name that does not exist gets.
    pub fn module(&self, name: &str, mask: &Mask) -> Result<&ServedModule, LookupError> {
        self.modules
            .get(name)
            .filter(|m| m.shown(mask))
            .ok_or_else(|| LookupError::UnknownModule {
                module: name.to_owned(),
                available: self
                    .visible(mask)
                    .map(|m| m.manifest.name.clone())
                    .collect(),
            })
    }

    /// A served tool, answered like [`Catalog::module`] when `mask` hides it.
    pub fn tool(
        &self,
        module: &str,
        tool: &str,
        mask: &Mask,
    ) -> Result<(&ServedModule, &ServedTool), LookupError> {
        let served = self.module(module, mask)?;
        let shown = |t: &&ServedTool| mask.shows_tool(module, &t.spec);
        let found =
            served
                .tools
                .get(tool)
                .filter(shown)
                .ok_or_else(|| LookupError::UnknownTool {
                    module: module.to_owned(),
                    tool: tool.to_owned(),
                    available: served
                        .tools()
                        .filter(shown)
                        .map(|t| t.spec.name.clone())
                        .collect(),
                })?;
        Ok((served, found))
    }
}

fn serve(
    manifest: &ModuleManifest,
    sha256: String,
    file: String,
    prepared: PreparedModule,
    policy: Arc<ModulePolicy>,
) -> Result<ServedModule, String> {
    let mut tools = BTreeMap::new();
    for spec in &manifest.tools {
        let input_schema = schema::close_object_schemas(&spec.input_schema);
        let input = ArgumentValidator::new(&input_schema)
            .map_err(|e| format!("tool `{}`: input schema: {e}", spec.name))?;
        // Output schemas are checked as declared: a module may return more
        // than it promised, the client just ignores it.
        let output = spec
            .output_schema
            .as_ref()
            .map(ArgumentValidator::new)
            .transpose()
            .map_err(|e| format!("tool `{}`: output schema: {e}", spec.name))?;
        tools.insert(
            spec.name.clone(),
            ServedTool {
                spec: spec.clone(),
                input_schema,
                input,
                output,
            },
        );
    }
    Ok(ServedModule {
        manifest: manifest.clone(),
        sha256,
        file,
        prepared,
        tools,
        policy,
    })
}
