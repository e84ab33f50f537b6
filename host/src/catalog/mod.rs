//! The modules being served and the one path every tool call takes: find the
//! module and tool, validate the arguments, run the tool in a fresh instance,
//! check the result. The MCP layer (and later the plan executor) calls only
//! this.

pub mod live;
pub mod schema;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::broker::{Broker, BrokerError};
use crate::egress::{CallEgress, Egress, ModulePolicy, OutboundRecord};
use crate::policy::Mask;
use crate::registry::manifest::ToolSpec;
use crate::registry::{ModuleManifest, Scan};
use crate::runtime::{CallContext, CallError, ModuleError, PreparedModule, Runtime, ToolOutput};
use schema::ArgumentValidator;

/// A tool ready to be called.
#[derive(Debug)]
pub struct ServedTool {
    pub spec: ToolSpec,
    /// The input schema as enforced and as shown to clients (closed objects).
    pub input_schema: Value,
    input: ArgumentValidator,
    output: Option<ArgumentValidator>,
}

/// A pinned module ready to be called.
#[derive(Debug)]
pub struct ServedModule {
    pub manifest: ModuleManifest,
    pub sha256: String,
    pub file: String,
    prepared: PreparedModule,
    tools: BTreeMap<String, ServedTool>,
    /// Where it may send HTTP requests, with which credentials.
    pub policy: Arc<ModulePolicy>,
}

impl ServedModule {
    pub fn tools(&self) -> impl Iterator<Item = &ServedTool> {
        // In declaration order, as the module author arranged them.
        self.manifest
            .tools
            .iter()
            .filter_map(|t| self.tools.get(&t.name))
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum InvokeError {
    #[error("unknown module `{module}`; available modules: {}", list(.available))]
    UnknownModule {
        module: String,
        available: Vec<String>,
    },
    #[error("module `{module}` has no tool `{tool}`; its tools: {}", list(.available))]
    UnknownTool {
        module: String,
        tool: String,
        available: Vec<String>,
    },
    #[error("invalid arguments for {module}.{tool}: {problems}")]
    InvalidArguments {
        module: String,
        tool: String,
        problems: String,
    },
    #[error("{module}.{tool} failed: {error}")]
    Module {
        module: String,
        tool: String,
        error: ModuleError,
    },
    #[error("{module}.{tool} cannot run for this account: {reason}")]
    Account {
        module: String,
        tool: String,
        reason: String,
    },
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(
        "{module}.{tool} returned a result that does not match its declared output schema: {problems}"
    )]
    InvalidOutput {
        module: String,
        tool: String,
        problems: String,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

/// What one call did besides its result, for the audit log.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CallTrace {
    /// The file that ran (or would have), once the module was found.
    pub module_sha256: Option<String>,
    /// The account the call acted for, once resolved.
    pub account: Option<String>,
    /// The requests it sent.
    pub outbound: Vec<OutboundRecord>,
}

/// The served modules, by name.
pub struct Catalog {
    runtime: Arc<Runtime>,
    egress: Arc<Egress>,
    broker: Arc<Broker>,
    modules: BTreeMap<String, ServedModule>,
}

impl Catalog {
    /// Serve every pinned module of `scan`. A module whose schemas cannot be
    /// compiled is left out with a warning; the others are served.
    pub fn new(
        runtime: Arc<Runtime>,
        scan: &Scan,
        egress: Arc<Egress>,
        broker: Arc<Broker>,
    ) -> Catalog {
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
            runtime,
            egress,
            broker,
            modules,
        }
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    pub fn modules(&self) -> impl Iterator<Item = &ServedModule> {
        self.modules.values()
    }

    /// The modules `mask` shows: allowed, and with at least one shown tool.
    pub fn visible<'a>(&'a self, mask: &'a Mask) -> impl Iterator<Item = &'a ServedModule> {
        self.modules.values().filter(move |m| {
            mask.shows_module(&m.manifest.name)
                && m.tools()
                    .any(|t| mask.shows_tool(&m.manifest.name, &t.spec))
        })
    }

    /// A served module; one `mask` hides is answered as unknown, with the
    /// same message a name that does not exist gets.
    pub fn module(&self, name: &str, mask: &Mask) -> Result<&ServedModule, InvokeError> {
        self.modules
            .get(name)
            .filter(|m| shown(m, mask))
            .ok_or_else(|| InvokeError::UnknownModule {
                module: name.to_owned(),
                available: self
                    .visible(mask)
                    .map(|m| m.manifest.name.clone())
                    .collect(),
            })
    }

    pub fn tool(
        &self,
        module: &str,
        tool: &str,
        mask: &Mask,
    ) -> Result<(&ServedModule, &ServedTool), InvokeError> {
        let served = self.module(module, mask)?;
        let shown = |t: &&ServedTool| mask.shows_tool(module, &t.spec);
        let found =
            served
                .tools
                .get(tool)
                .filter(shown)
                .ok_or_else(|| InvokeError::UnknownTool {
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

    /// Validate and run one tool call in a fresh sandboxed instance.
    pub async fn invoke(
        &self,
        module: &str,
        tool: &str,
        arguments: &Value,
        context: &CallContext,
    ) -> Result<ToolOutput, InvokeError> {
        let mut trace = CallTrace::default();
        self.invoke_traced(module, tool, arguments, context, &Mask::open(), &mut trace)
            .await
    }

    /// [`Catalog::invoke`], also filling in `trace` with what the call did,
    /// as far as it got.
    pub async fn invoke_traced(
        &self,
        module: &str,
        tool: &str,
        arguments: &Value,
        context: &CallContext,
        mask: &Mask,
        trace: &mut CallTrace,
    ) -> Result<ToolOutput, InvokeError> {
        let (served, found) = self.tool(module, tool, mask)?;
        trace.module_sha256 = Some(served.sha256.clone());
        found
            .input
            .validate(arguments)
            .map_err(|problems| InvokeError::InvalidArguments {
                module: module.to_owned(),
                tool: tool.to_owned(),
                problems,
            })?;
        let refuse_account = |reason: String| InvokeError::Account {
            module: module.to_owned(),
            tool: tool.to_owned(),
            reason,
        };
        let services = served.policy.services();
        let mut accounts = BTreeMap::new();
        if services.is_empty() {
            if let Some(account) = &context.account {
                return Err(refuse_account(format!(
                    "module `{module}` uses no accounts, so `account` ({account:?}) must be omitted"
                )));
            }
        } else {
            // The accounts this client may use; others look absent.
            let known = self
                .broker
                .accounts()
                .map(|all| mask.accounts(&all))
                .map_err(|e: BrokerError| refuse_account(e.to_string()))?;
            for service in services {
                let account = Broker::resolve(&known, service, context.account.as_deref())
                    .map_err(|e| refuse_account(e.to_string()))?;
                if let Some(reason) =
                    mask.account_refusal(service, &account.name, module, &found.spec)
                {
                    return Err(refuse_account(reason));
                }
                accounts.insert(service.to_owned(), account);
            }
        }
        // The module learns which account it acts for, never its secret.
        let context = CallContext {
            account: accounts.values().next().map(|a| a.name.clone()),
        };
        trace.account = context.account.clone();
        let egress = CallEgress::new(
            self.egress.clone(),
            served.policy.clone(),
            Some(self.broker.clone()),
            accounts,
        );
        let outbound = egress.outbound();
        let output = self
            .runtime
            .call(&served.prepared, module, tool, arguments, &context, egress)
            .await;
        trace.outbound = outbound.records();
        let output = output?.map_err(|error| InvokeError::Module {
            module: module.to_owned(),
            tool: tool.to_owned(),
            error,
        })?;
        if let Some(validator) = &found.output {
            let problem = match &output.structured {
                None => Some("no structured result".to_owned()),
                Some(value) => validator.validate(value).err(),
            };
            if let Some(problems) = problem {
                return Err(InvokeError::InvalidOutput {
                    module: module.to_owned(),
                    tool: tool.to_owned(),
                    problems,
                });
            }
        }
        Ok(output)
    }
}

/// Whether `mask` shows the module: allowed, with at least one shown tool.
fn shown(module: &ServedModule, mask: &Mask) -> bool {
    let name = &module.manifest.name;
    mask.shows_module(name) && module.tools().any(|t| mask.shows_tool(name, &t.spec))
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
