//! What a module declares about itself (its `describe` export), as host-side
//! types independent of the WIT bindings, plus the checks every declaration
//! must pass and the digests `registry.lock` pins.
//!
//! A leaf: it imports nothing else of the crate. The runtime produces these
//! types (from a guest's `describe`), the registry pins them, egress and the
//! masks read them; keeping them here is what lets those layers depend on
//! the declarations without depending on each other.

mod host_pattern;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use host_pattern::HostPattern;

/// Why a module's declaration is refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[allow(missing_docs)] // the variants and fields are named by their messages
pub enum ManifestError {
    #[error(
        "module name {0:?} is not valid: use lowercase ASCII letters, digits, '_' and '-', starting with a letter (at most 64)"
    )]
    ModuleName(String),
    #[error("module version {0:?} is not a semantic version such as 1.2.0")]
    Version(String),
    #[error(
        "tool name {0:?} is not valid: use ASCII letters, digits, '_' and '-' (1 to 64 characters)"
    )]
    ToolName(String),
    #[error("tool {0:?} is declared twice")]
    DuplicateTool(String),
    #[error("tool {tool:?}: {which} schema is not valid JSON: {error}")]
    SchemaJson {
        tool: String,
        which: &'static str,
        error: String,
    },
    #[error("tool {tool:?}: {which} schema is not a valid JSON Schema: {error}")]
    Schema {
        tool: String,
        which: &'static str,
        error: String,
    },
    #[error(
        "tool {tool:?}: {which} schema must describe an object (\"type\": \"object\"), as MCP requires"
    )]
    SchemaNotObject { tool: String, which: &'static str },
    #[error("{0}")]
    Host(String),
    #[error("credential binding for service {service:?}: {reason}")]
    Binding { service: String, reason: String },
}

/// Per-tool behaviour flags; see `tool-flags` in `wit/plugin.wit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolFlags {
    /// Reads only; changes nothing anywhere.
    pub read_only: bool,
    /// May delete or overwrite something.
    pub destructive: bool,
    /// Calling it twice with the same arguments does no more than once.
    pub idempotent: bool,
    /// Reaches outside the host (a remote service).
    pub open_world: bool,
    /// Safe to run beside another call of the same module and account.
    pub concurrency_safe: bool,
}

impl ToolFlags {
    /// The set flags by their WIT names, in declaration order.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.read_only, "read-only"),
            (self.destructive, "destructive"),
            (self.idempotent, "idempotent"),
            (self.open_world, "open-world"),
            (self.concurrency_safe, "concurrency-safe"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }

    /// The flags named as [`ToolFlags::names`] gives them; `None` if a name
    /// is not a flag.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Option<ToolFlags> {
        let mut flags = ToolFlags::default();
        for name in names {
            let flag = match name.as_ref() {
                "read-only" => &mut flags.read_only,
                "destructive" => &mut flags.destructive,
                "idempotent" => &mut flags.idempotent,
                "open-world" => &mut flags.open_world,
                "concurrency-safe" => &mut flags.concurrency_safe,
                _ => return None,
            };
            *flag = true;
        }
        Some(flags)
    }
}

#[derive(Debug, Clone, PartialEq)]
/// One tool as its module declares it.
pub struct ToolSpec {
    /// The tool's name, unique in its module.
    pub name: String,
    /// What the model is told the tool does.
    pub description: String,
    /// The JSON Schema of its arguments (an object).
    pub input_schema: Value,
    /// The JSON Schema of its structured result, if it declares one.
    pub output_schema: Option<Value>,
    /// What it does to the world.
    pub flags: ToolFlags,
}

impl ToolSpec {
    /// sha256 over the canonical JSON of everything the LLM is shown about the
    /// tool, so that any change to it (a rug pull) changes the digest.
    pub fn digest(&self) -> String {
        let value = serde_json::json!({
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
            "flags": self.flags.names(),
        });
        hex::encode(Sha256::digest(canonical_json(&value).as_bytes()))
    }
}

/// How the host attaches a credential; see `injection` in `wit/plugin.wit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Injection {
    /// `Authorization: Bearer SECRET`.
    Bearer,
    /// A named header, `{secret}` in the template replaced by the secret.
    Header {
        /// The header's name.
        name: String,
        /// Its value, with `{secret}` where the secret goes.
        template: String,
    },
    /// HTTP basic auth, the secret as the password.
    Basic {
        /// The user name sent with it.
        username: String,
    },
    /// A query parameter.
    Query {
        /// The parameter's name.
        param: String,
    },
}

impl std::fmt::Display for Injection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Injection::Bearer => write!(f, "header `Authorization: Bearer {{secret}}`"),
            Injection::Header { name, template } => write!(f, "header `{name}: {template}`"),
            Injection::Basic { username } => write!(f, "basic auth as user {username:?}"),
            Injection::Query { param } => write!(f, "query parameter `{param}`"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// A credential the module needs, and where the host attaches it.
pub struct CredentialBinding {
    /// The service whose account's secret is attached (e.g. `github`).
    pub service: String,
    /// How it is attached.
    pub inject: Injection,
    /// The declared hosts that get it; no other host ever does.
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
/// Everything a module declares about itself.
pub struct ModuleManifest {
    /// The module's name (lowercase, unique among the modules served).
    pub name: String,
    /// Its semantic version.
    pub version: String,
    /// One or two sentences for the catalog.
    pub description: String,
    /// Its tools, in the order the author arranged them.
    pub tools: Vec<ToolSpec>,
    /// The origins it may send HTTP requests to, once approved.
    pub hosts: Vec<String>,
    /// The credentials the host attaches for it.
    pub credentials: Vec<CredentialBinding>,
}

impl ModuleManifest {
    /// Check names, versions and schemas. A module that fails is never served.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if !valid_module_name(&self.name) {
            return Err(ManifestError::ModuleName(self.name.clone()));
        }
        if !valid_version(&self.version) {
            return Err(ManifestError::Version(self.version.clone()));
        }
        let mut seen = std::collections::HashSet::new();
        for tool in &self.tools {
            if !valid_tool_name(&tool.name) {
                return Err(ManifestError::ToolName(tool.name.clone()));
            }
            if !seen.insert(tool.name.as_str()) {
                return Err(ManifestError::DuplicateTool(tool.name.clone()));
            }
            check_schema(&tool.name, "input", &tool.input_schema)?;
            if let Some(output) = &tool.output_schema {
                check_schema(&tool.name, "output", output)?;
            }
        }
        for host in &self.hosts {
            HostPattern::parse(host).map_err(ManifestError::Host)?;
        }
        for binding in &self.credentials {
            check_binding(binding, &self.hosts).map_err(|reason| ManifestError::Binding {
                service: binding.service.clone(),
                reason,
            })?;
        }
        Ok(())
    }
}

fn check_binding(binding: &CredentialBinding, hosts: &[String]) -> Result<(), String> {
    if !valid_module_name(&binding.service) {
        return Err("the service name must be lowercase ASCII letters, digits, '_' and '-', starting with a letter".to_owned());
    }
    if binding.hosts.is_empty() {
        return Err("it names no hosts".to_owned());
    }
    if let Some(host) = binding.hosts.iter().find(|h| !hosts.contains(h)) {
        return Err(format!(
            "host {host:?} is not among the module's declared hosts"
        ));
    }
    match &binding.inject {
        Injection::Bearer | Injection::Basic { .. } => Ok(()),
        Injection::Header { name, template } => {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                Err(format!("{name:?} is not a valid header name"))
            } else if !template.contains("{secret}") {
                Err("the header template must contain {secret}".to_owned())
            } else {
                Ok(())
            }
        }
        Injection::Query { param } if param.is_empty() => {
            Err("the query parameter name is empty".to_owned())
        }
        Injection::Query { .. } => Ok(()),
    }
}

/// Parse a schema declared as JSON text.
pub fn parse_schema(tool: &str, which: &'static str, text: &str) -> Result<Value, ManifestError> {
    serde_json::from_str(text).map_err(|e| ManifestError::SchemaJson {
        tool: tool.to_owned(),
        which,
        error: e.to_string(),
    })
}

fn check_schema(tool: &str, which: &'static str, schema: &Value) -> Result<(), ManifestError> {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(ManifestError::SchemaNotObject {
            tool: tool.to_owned(),
            which,
        });
    }
    jsonschema::meta::validate(schema).map_err(|e| ManifestError::Schema {
        tool: tool.to_owned(),
        which,
        error: e.to_string(),
    })
}

fn valid_module_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `MAJOR.MINOR.PATCH` with an optional `-pre` / `+build` suffix.
fn valid_version(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && version.len() <= 64
}

/// JSON with object keys sorted and no insignificant whitespace, so equal
/// values always hash equal whatever order the module wrote them in.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, value)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(value, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(description: &str) -> ToolSpec {
        ToolSpec {
            name: "t".into(),
            description: description.into(),
            input_schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
            output_schema: None,
            flags: ToolFlags {
                read_only: true,
                ..ToolFlags::default()
            },
        }
    }

    #[test]
    fn digest_ignores_key_order_but_not_content() {
        let a = tool("does a thing");
        let mut b = a.clone();
        b.input_schema =
            serde_json::from_str(r#"{"properties": {"a": {"type": "string"}}, "type": "object"}"#)
                .unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), tool("does a thing.").digest());
        let mut c = a.clone();
        c.flags.destructive = true;
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn validation_names_the_problem() {
        let mut m = ModuleManifest {
            name: "Bad Name".into(),
            version: "1.0.0".into(),
            description: String::new(),
            tools: vec![tool("x")],
            hosts: vec![],
            credentials: vec![],
        };
        assert_eq!(
            m.validate(),
            Err(ManifestError::ModuleName("Bad Name".into()))
        );
        m.name = "good".into();
        m.version = "1.0".into();
        assert_eq!(m.validate(), Err(ManifestError::Version("1.0".into())));
        m.version = "1.0.0-beta.1".into();
        assert_eq!(m.validate(), Ok(()));
        m.tools.push(tool("y"));
        assert_eq!(m.validate(), Err(ManifestError::DuplicateTool("t".into())));
        m.tools.pop();
        m.tools[0].input_schema = json!({"type": "array"});
        assert!(matches!(
            m.validate(),
            Err(ManifestError::SchemaNotObject { .. })
        ));
        m.tools[0].input_schema = json!({"type": "object", "properties": {"a": {"type": 7}}});
        assert!(matches!(m.validate(), Err(ManifestError::Schema { .. })));
    }
}
