//! The versions of the plugin world the host loads, side by side.
//!
//! A module built for `mcpist:plugin@0.1.0` keeps loading unchanged next to
//! one built for `0.2.0`: the linker holds the imports of both (0.2.0 reuses
//! 0.1.0's `log`, `http` and declaration types, and adds `progress`), and a
//! module is bound to the world whose `module` interface it exports. The rest
//! of the runtime sees one [`Plugin`] that answers `describe` and `call` in
//! 0.2.0's terms; a 0.1.0 result is a 0.2.0 result that uses only text and
//! JSON.

use std::pin::Pin;

use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::host::CallState;

/// Generated from `wit/deps/mcpist-plugin-0.1.0/plugin.wit`.
pub(crate) mod v01 {
    wasmtime::component::bindgen!({
        path: "../wit/deps/mcpist-plugin-0.1.0",
        world: "mcpist:plugin/plugin",
        imports: { "mcpist:plugin/http.send": async },
        exports: { default: async },
    });
}

/// Generated from `wit/plugin.wit`; what it shares with 0.1.0 is 0.1.0's
/// generated code, so the host implements those imports once. (With two
/// versions of the package in one world, bindgen names 0.2.0's parts
/// `plugin0_2_0`.)
pub(crate) mod v02 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "mcpist:plugin/plugin@0.2.0",
        with: {
            "mcpist:plugin/types@0.1.0": super::v01::mcpist::plugin::types,
            "mcpist:plugin/log@0.1.0": super::v01::mcpist::plugin::log,
            "mcpist:plugin/http@0.1.0": super::v01::mcpist::plugin::http,
        },
        exports: { default: async },
    });
}

/// Generated from `wit/script.wit`: the JavaScript engine behind
/// `run_script`, linked with a linker of its own (see
/// [`add_script_host_to_linker`]) so that no service module can import
/// `script-host`.
pub(crate) mod engine {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "mcpist:plugin/script-engine@0.2.0",
        imports: { default: async },
        exports: { default: async },
    });
}

pub(crate) use v01::mcpist::plugin::types as declared;
pub(crate) use v01::mcpist::plugin::{http as wit_http, log as wit_log};
pub(crate) use v02::mcpist::plugin0_2_0::progress as wit_progress;
pub(crate) use v02::mcpist::plugin0_2_0::types as results;

/// The `module` exports the host knows, newest first, as components name
/// them; errors name the one a module was bound to.
pub(crate) const MODULE_EXPORTS: [&str; 2] =
    ["mcpist:plugin/module@0.2.0", "mcpist:plugin/module@0.1.0"];

/// Link the imports of every world version the host loads.
pub(crate) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    v01::Plugin::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)?;
    v02::mcpist::plugin0_2_0::types::add_to_linker::<CallState, HasSelf<CallState>>(
        linker,
        |state| state,
    )?;
    wit_progress::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
}

/// Link `script-host`, for the script engine's linker only.
pub(crate) fn add_script_host_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    engine::ScriptEngine::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
}

/// A compiled module bound to the world version it was built for.
#[derive(Clone)]
pub(crate) enum PluginPre {
    V01(v01::PluginPre<CallState>),
    V02(v02::PluginPre<CallState>),
}

impl PluginPre {
    /// Bind to the newest world whose `module` the component exports.
    pub fn new(instance_pre: InstancePre<CallState>) -> Result<PluginPre, String> {
        let engine = instance_pre.engine().clone();
        let exports = instance_pre.component().component_type();
        let exports: Vec<&str> = exports.exports(&engine).map(|(name, _)| name).collect();
        if exports.contains(&MODULE_EXPORTS[0]) {
            return v02::PluginPre::new(instance_pre)
                .map(PluginPre::V02)
                .map_err(|e| format!("{e:#}"));
        }
        if exports.contains(&MODULE_EXPORTS[1]) {
            return v01::PluginPre::new(instance_pre)
                .map(PluginPre::V01)
                .map_err(|e| format!("{e:#}"));
        }
        let exports = if exports.is_empty() {
            "nothing".to_owned()
        } else {
            exports
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(format!("it exports {exports}"))
    }

    /// The `module` export this module was bound to.
    pub fn module_export(&self) -> &'static str {
        match self {
            PluginPre::V02(_) => MODULE_EXPORTS[0],
            PluginPre::V01(_) => MODULE_EXPORTS[1],
        }
    }

    pub async fn instantiate_async(
        &self,
        store: &mut Store<CallState>,
    ) -> wasmtime::Result<Plugin> {
        Ok(match self {
            PluginPre::V01(pre) => Plugin::V01(pre.instantiate_async(store).await?),
            PluginPre::V02(pre) => Plugin::V02(pre.instantiate_async(store).await?),
        })
    }
}

/// A compiled component, ready to be instantiated in a call's store: a
/// service module or the script engine.
pub(crate) trait Instantiate: Send + Sync {
    /// The instance, with its exports.
    type Instance: Send + Sync;

    fn instantiate<'a>(
        &'a self,
        store: &'a mut Store<CallState>,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<Self::Instance>> + Send + 'a>>;
}

impl Instantiate for PluginPre {
    type Instance = Plugin;

    fn instantiate<'a>(
        &'a self,
        store: &'a mut Store<CallState>,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<Plugin>> + Send + 'a>> {
        Box::pin(self.instantiate_async(store))
    }
}

impl Instantiate for engine::ScriptEnginePre<CallState> {
    type Instance = engine::ScriptEngine;

    fn instantiate<'a>(
        &'a self,
        store: &'a mut Store<CallState>,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<engine::ScriptEngine>> + Send + 'a>> {
        Box::pin(self.instantiate_async(store))
    }
}

/// An instance of a module, of either world version.
pub(crate) enum Plugin {
    V01(v01::Plugin),
    V02(v02::Plugin),
}

impl Plugin {
    pub async fn describe(
        &self,
        store: &mut Store<CallState>,
    ) -> wasmtime::Result<declared::ModuleInfo> {
        match self {
            Plugin::V01(plugin) => plugin.mcpist_plugin_module().call_describe(store).await,
            Plugin::V02(plugin) => {
                plugin
                    .mcpist_plugin0_2_0_module()
                    .call_describe(store)
                    .await
            }
        }
    }

    pub async fn call(
        &self,
        store: &mut Store<CallState>,
        tool: &str,
        arguments: &str,
        context: &declared::CallContext,
    ) -> wasmtime::Result<Result<results::CallOutput, declared::ToolError>> {
        match self {
            Plugin::V02(plugin) => {
                plugin
                    .mcpist_plugin0_2_0_module()
                    .call_call(store, tool, arguments, context)
                    .await
            }
            Plugin::V01(plugin) => {
                let result = plugin
                    .mcpist_plugin_module()
                    .call_call(store, tool, arguments, context)
                    .await?;
                Ok(result.map(|output| results::CallOutput {
                    content: output
                        .content
                        .into_iter()
                        .map(|piece| match piece {
                            declared::Content::Text(text) => results::Content::Text(text),
                            declared::Content::Json(text) => results::Content::Json(text),
                        })
                        .collect(),
                    structured: output.structured,
                }))
            }
        }
    }
}
