//! What a client may see, through its mask: the catalog, modules' schemas,
//! and every tool (for flat mode). Protocol-free: a front end decides how to
//! show them.

use serde_json::Value;

use super::{CallService, InvokeError};
use crate::catalog::{ServedModule, ServedTool};
use crate::manifest::ToolFlags;
use crate::policy::Mask;

/// A module in the catalog, with the names of the tools the client sees.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleSummary {
    /// The module's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its description.
    pub description: String,
    /// The tools the client may see, in declaration order.
    pub tools: Vec<String>,
}

/// One tool, as a client may call it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolView {
    /// The module it belongs to.
    pub module: String,
    /// The tool's name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The input schema as enforced (object schemas closed).
    pub input_schema: Value,
    /// The declared output schema, if any.
    pub output_schema: Option<Value>,
    /// Its behaviour flags.
    pub flags: ToolFlags,
    /// Whether it acts for one of the owner's accounts (and so takes one).
    pub takes_account: bool,
}

/// A module's tools with their schemas, and the accounts it can act for.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleSchema {
    /// The module's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its description.
    pub description: String,
    /// The sha256 of the file served.
    pub sha256: String,
    /// The tools the client may see.
    pub tools: Vec<ToolView>,
    /// Per service it uses, the accounts the client may use (`None` for a
    /// module without accounts); the error text when they cannot be read.
    pub accounts: Option<Result<Vec<ServiceAccounts>, String>>,
}

/// The accounts of one service a client may use: names only.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceAccounts {
    /// The service, as modules bind it.
    pub service: String,
    /// The accounts' names.
    pub accounts: Vec<String>,
    /// The one used when a call names none.
    pub default: Option<String>,
}

impl CallService {
    /// The modules `client` may see, with their tools' names.
    pub fn catalog(&self, client: &str) -> Vec<ModuleSummary> {
        let mask = self.masks.of(client);
        let catalog = self.catalog.get();
        catalog
            .visible(&mask)
            .map(|m| ModuleSummary {
                name: m.manifest.name.clone(),
                version: m.manifest.version.clone(),
                description: m.manifest.description.clone(),
                tools: shown_tools(m, &mask).map(|t| t.spec.name.clone()).collect(),
            })
            .collect()
    }

    /// The named modules' schemas, as `client` may see them; a module its
    /// mask hides is answered as unknown.
    pub fn module_schemas(
        &self,
        client: &str,
        names: &[String],
    ) -> Result<Vec<ModuleSchema>, InvokeError> {
        let mask = self.masks.of(client);
        let catalog = self.catalog.get();
        names
            .iter()
            .map(|name| {
                let module = catalog.module(name, &mask)?;
                Ok(ModuleSchema {
                    name: module.manifest.name.clone(),
                    version: module.manifest.version.clone(),
                    description: module.manifest.description.clone(),
                    sha256: module.sha256.clone(),
                    tools: tool_views(module, &mask).collect(),
                    accounts: self.service_accounts(module, &mask),
                })
            })
            .collect()
    }

    /// Whether `module.tool`, as `client` may see it, has a parameter
    /// `name` of its own.
    pub fn declares_argument(&self, client: &str, module: &str, tool: &str, name: &str) -> bool {
        let mask = self.masks.of(client);
        let catalog = self.catalog.get();
        catalog
            .tool(module, tool, &mask)
            .is_ok_and(|(_, tool)| tool.input_schema["properties"].get(name).is_some())
    }

    /// Every tool `client` may see, module by module.
    pub fn tools(&self, client: &str) -> Vec<ToolView> {
        let mask = self.masks.of(client);
        let catalog = self.catalog.get();
        catalog
            .visible(&mask)
            .flat_map(|m| tool_views(m, &mask))
            .collect()
    }

    fn service_accounts(
        &self,
        module: &ServedModule,
        mask: &Mask,
    ) -> Option<Result<Vec<ServiceAccounts>, String>> {
        let services = module.policy.services();
        if services.is_empty() {
            return None;
        }
        let accounts = match self.broker.accounts() {
            Ok(accounts) => mask.accounts(&accounts),
            Err(error) => return Some(Err(error.to_string())),
        };
        Some(Ok(services
            .into_iter()
            .map(|service| ServiceAccounts {
                service: service.to_owned(),
                accounts: accounts.of(service).map(|a| a.name.clone()).collect(),
                default: accounts.default_for(service).map(str::to_owned),
            })
            .collect()))
    }
}

fn shown_tools<'a>(
    module: &'a ServedModule,
    mask: &'a Mask,
) -> impl Iterator<Item = &'a ServedTool> {
    module
        .tools()
        .filter(move |t| mask.shows_tool(&module.manifest.name, &t.spec))
}

/// The tools of `module` that `mask` shows, as a client may call them.
fn tool_views<'a>(module: &'a ServedModule, mask: &'a Mask) -> impl Iterator<Item = ToolView> + 'a {
    let takes_account = !module.policy.services().is_empty();
    shown_tools(module, mask).map(move |tool| ToolView {
        module: module.manifest.name.clone(),
        name: tool.spec.name.clone(),
        description: tool.spec.description.clone(),
        input_schema: tool.input_schema.clone(),
        output_schema: tool.spec.output_schema.clone(),
        flags: tool.spec.flags,
        takes_account,
    })
}
