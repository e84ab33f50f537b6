//! The WebAssembly runtime: one wasmtime `Engine`, each module compiled once,
//! and a fresh, limited `Store` and instance for every call.
//!
//! A fresh instance per call is the isolation guarantee: nothing a module
//! computed for one call (or one account) is visible to the next. Compilation
//! and import resolution are done once, at load, into an `InstancePre`, so a
//! call only pays for instantiation.
//!
//! What a guest may ask of the host (HTTP, logging) goes through the
//! [`GuestServices`] trait, given per call by the caller; the runtime knows
//! nothing of the policy behind it. A call ends when the guest answers, a
//! limit is hit, or the caller's cancellation token fires: then the guest's
//! future is dropped at once (a busy guest yields at every epoch tick, a
//! waiting one is waiting in the host), which drops any request in flight
//! and hands the instance's pool slot back.

mod compiled_cache;
mod guest_output;
mod host;
mod limits;
mod output;
pub mod services;
mod wasi_http;
mod world;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, PoolingAllocationConfig, Store};

use crate::manifest::{
    CredentialBinding, Injection, ManifestError, ModuleManifest, ToolFlags, ToolSpec, parse_schema,
};
pub use limits::Limits;
pub use output::{
    ContentItem, EmbeddedResource, Media, ResourceContents, ResourceLink, ToolOutput,
};
pub use services::{
    GuestServices, HttpError, InboundResponse, LogLevel, NoServices, OutboundRequest,
    ProgressReport, ScriptHost, ToolCallEnded,
};

use compiled_cache::{CompiledModules, DiskCache};
use guest_output::GuestOutput;
use host::CallState;

use output::OutputError;
use world::{Instantiate, PluginPre, declared, engine};
pub(crate) use world::{wit_http, wit_log, wit_progress};

/// How often the engine's epoch advances. The CPU limit is checked at this
/// granularity, and a busy guest yields to other tasks this often.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Why the engine could not be set up, or a module not prepared.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine's configuration.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The bytes are not a component wasmtime can compile.
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    /// The component imports something the host does not provide.
    #[error(
        "the module imports `{import}`, which the host does not provide ({detail}). A module may import `mcpist:plugin/log` and `mcpist:plugin/http` 0.1.0, WASI 0.2 (`wasi:cli`, `wasi:clocks`, `wasi:random` and `wasi:io`; `wasi:filesystem` and `wasi:sockets` link but grant nothing) and `wasi:http/outgoing-handler` 0.2; rebuild it without what brings in `{import}` (a WASI 0.3 or preview 1 toolchain, or another runtime's host API)"
    )]
    Import {
        /// The import, as the component names it.
        import: String,
        /// wasmtime's words.
        detail: String,
    },
    /// The component's imports or exports do not fit the plugin world.
    #[error(
        "the component does not fit a plugin world the host loads: {0}. A module exports `mcpist:plugin/module@0.2.0` (world `mcpist:plugin/plugin` in wit/plugin.wit) or, built for the previous version, `mcpist:plugin/module@0.1.0` (wit/deps/mcpist-plugin-0.1.0)"
    )]
    Link(String),
}

impl RuntimeError {
    /// Name the import wasmtime could not link, when it says which.
    fn from_link(error: &wasmtime::Error) -> RuntimeError {
        let detail = format!("{error:#}");
        // wasmtime says "component imports instance `NAME`, but ...".
        let import = detail
            .strip_prefix("component imports ")
            .and_then(|rest| rest.split('`').nth(1))
            .map(str::to_owned);
        match import {
            Some(import) => RuntimeError::Import { import, detail },
            None => RuntimeError::Link(detail),
        }
    }
}

/// Why a call failed on the host's side (as opposed to the module reporting
/// an error, see [`ModuleError`]).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[allow(missing_docs)] // the fields are named by the messages
pub enum CallError {
    /// The guest ran WebAssembly for longer than its CPU budget.
    #[error("module `{module}` ran out of CPU time (limit {limit:?}); the call was stopped")]
    CpuLimit { module: String, limit: Duration },
    /// The guest tried to grow its memory past the limit.
    #[error(
        "module `{module}` tried to use more than its memory limit of {limit_mib} MiB; the call was stopped"
    )]
    MemoryLimit { module: String, limit_mib: u64 },
    /// The call, waiting included, took longer than the wall-clock limit.
    #[error("module `{module}` did not finish within {limit:?}; the call was stopped")]
    WallTimeout { module: String, limit: Duration },
    /// The caller cancelled the call (the client sent
    /// `notifications/cancelled`, or went away).
    #[error("the call to module `{module}` was cancelled by the client; it was stopped")]
    Cancelled { module: String },
    /// The result is larger than the output limit.
    #[error(
        "module `{module}` returned {size} bytes, more than the output limit of {limit} bytes; the result was discarded"
    )]
    OutputTooLarge {
        module: String,
        size: usize,
        limit: usize,
    },
    /// The guest trapped (a panic, an abort, a fault).
    #[error("module `{module}` crashed: {detail}")]
    Trap { module: String, detail: String },
    /// No instance could be made.
    #[error("module `{module}` could not be started: {detail}")]
    Instantiate { module: String, detail: String },
    /// The result broke the rules of `call-output`: its structured result
    /// is not JSON, or a piece is not what it says it is.
    #[error("module `{module}` returned an invalid result, which was discarded: {detail}")]
    InvalidOutput { module: String, detail: String },
    /// The module's `describe` broke the declaration rules.
    #[error("module `{module}` described itself wrongly: {source}")]
    Manifest {
        module: String,
        #[source]
        source: ManifestError,
    },
}

/// An error the module itself returned for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleError {
    /// What kind of failure the module reported.
    pub kind: ModuleErrorKind,
    /// The module's own words.
    pub message: String,
}

/// The kinds of `tool-error` in `wit/plugin.wit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleErrorKind {
    /// The module does not know the tool.
    UnknownTool,
    /// The module refused the arguments.
    InvalidArguments,
    /// The service the module called answered with an error.
    Upstream,
    /// Anything else.
    Failed,
}

impl std::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ModuleErrorKind::UnknownTool => "unknown tool",
            ModuleErrorKind::InvalidArguments => "invalid arguments",
            ModuleErrorKind::Upstream => "upstream service error",
            ModuleErrorKind::Failed => "tool failed",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

/// What the host tells a module about a call.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The account the call acts for, by name (never its secret).
    pub account: Option<String>,
}

/// One tool call, as the runtime hands it to the guest.
#[derive(Debug, Clone, Copy)]
pub struct GuestCall<'a> {
    /// The tool's name.
    pub tool: &'a str,
    /// Arguments already validated against the tool's input schema.
    pub arguments: &'a Value,
    /// What the module is told about the call.
    pub context: &'a CallContext,
}

/// A compiled module, ready to be instantiated for each call.
#[derive(Clone)]
pub struct PreparedModule {
    pre: PluginPre,
}

impl std::fmt::Debug for PreparedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedModule").finish_non_exhaustive()
    }
}

/// The script engine, compiled and linked, ready to run a script per call.
#[derive(Clone)]
pub struct PreparedEngine {
    pre: engine::ScriptEnginePre<CallState>,
}

impl std::fmt::Debug for PreparedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedEngine").finish_non_exhaustive()
    }
}

/// How errors and logs name the script engine.
pub const SCRIPT_ENGINE: &str = "script engine";

/// The engine, its linker, the compiled modules and the instance pool.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    /// The service modules' imports and `script-host`: only the script
    /// engine is linked with this one.
    script_linker: Linker<CallState>,
    limits: Limits,
    compiled: CompiledModules,
    /// One permit per slot of the instance pool, so that a burst of calls
    /// waits for a slot instead of failing to instantiate.
    slots: Arc<Semaphore>,
    /// Tools answered by host code instead of their module: only the
    /// benchmarks install one, to measure what the sandbox costs.
    #[cfg(feature = "bench")]
    native_twins: Vec<NativeTwin>,
}

/// A host implementation of one module tool; see [`Runtime::with_native_twin`].
#[cfg(feature = "bench")]
pub type NativeTool = Arc<dyn Fn(&Value) -> Result<ToolOutput, ModuleError> + Send + Sync>;

#[cfg(feature = "bench")]
struct NativeTwin {
    module: String,
    tool: String,
    run: NativeTool,
}

/// Per call, room in the instance pool for this many core instances and
/// tables (a Rust component has 3 core modules and 2 tables; components from
/// other toolchains link in more, e.g. a language runtime's libraries) and
/// memories (one is the norm).
const CORE_INSTANCES_PER_CALL: u32 = 16;
const MEMORIES_PER_CALL: u32 = 2;

/// Bytes of each table reset in place rather than handed back to the kernel.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

impl Runtime {
    /// An engine whose every call is held to `limits`.
    pub fn new(limits: Limits) -> Result<Runtime, RuntimeError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // A fresh instance per call is only cheap if instantiation does not
        // map and unmap memory each time: the pooling allocator reserves the
        // slots once, keeps a module's copy-on-write memory image mapped in
        // the slot it last used, and resets a slot on release. Released
        // linear memory goes back to the kernel (`madvise`): keeping 1 or
        // 4 MiB resident and resetting it with `memset` measured slower here
        // (docs/benchmarks.md). Tables are a few KiB: they are reset with
        // `memset`, which saves two `madvise` calls (and their TLB flushes)
        // per call.
        let slots = limits.concurrent_calls.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots * CORE_INSTANCES_PER_CALL)
            .total_tables(slots * CORE_INSTANCES_PER_CALL)
            .total_memories(slots * MEMORIES_PER_CALL)
            .total_stacks(slots)
            .max_memory_size(usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX))
            .table_elements(limits::MAX_TABLE_ELEMENTS)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
        config.allocation_strategy(pool);
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        world::add_to_linker(&mut linker).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let mut script_linker = linker.clone();
        world::add_script_host_to_linker(&mut script_linker)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        Ok(Runtime {
            engine,
            linker,
            script_linker,
            limits,
            compiled: CompiledModules::default(),
            slots: Arc::new(Semaphore::new(slots as usize)),
            #[cfg(feature = "bench")]
            native_twins: Vec::new(),
        })
    }

    /// Answer `module`'s `tool` with `run`, in the host, instead of in a
    /// sandbox. Everything around the call (protocol, masks, argument and
    /// output validation, audit) stays as it is, so a benchmark comparing
    /// the two measures the sandbox alone. Never used to serve: only built
    /// with the `bench` feature.
    #[cfg(feature = "bench")]
    pub fn with_native_twin(mut self, module: &str, tool: &str, run: NativeTool) -> Runtime {
        self.native_twins.push(NativeTwin {
            module: module.to_owned(),
            tool: tool.to_owned(),
            run,
        });
        self
    }

    /// What every call is held to.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Set up and tear down one call's sandbox (store, limits, instance)
    /// without calling into it: the fixed cost of a fresh instance per call.
    /// Only built with the `bench` feature.
    #[cfg(feature = "bench")]
    pub async fn instantiate_and_drop(&self, module: &PreparedModule) -> Result<(), CallError> {
        let never = CancellationToken::new();
        self.run(
            &module.pre,
            "benchmark",
            Box::new(NoServices),
            None,
            &never,
            |_, _| Box::pin(async { Ok(()) }),
        )
        .await
    }

    /// Keep the compiled form of pinned modules in `dir` across starts,
    /// each entry proven by a MAC keyed by the secret in `key_file` (created
    /// if missing; it must not be inside `dir`).
    pub fn with_compiled_cache(mut self, dir: &Path, key_file: &Path) -> Runtime {
        self.compiled.on_disk = Some(DiskCache::new(dir, key_file));
        self
    }

    /// Compile a component and resolve its imports, once per `sha256` (the
    /// hash of `bytes`): from memory if this runtime prepared it before,
    /// else with Cranelift. Never kept on disk: see [`Runtime::prepare_pinned`].
    /// `label` names the module in the log (its file name).
    pub fn prepare(
        &self,
        label: &str,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<PreparedModule, RuntimeError> {
        self.prepare_with(label, bytes, sha256, false)
    }

    /// [`Runtime::prepare`] for a module the owner approved: its compiled
    /// form is also read from and kept in the disk cache, if there is one.
    /// Only approved code is kept, so a writer of `plugins/` cannot fill
    /// the disk with the compiled forms of files nobody approved.
    pub fn prepare_pinned(
        &self,
        label: &str,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<PreparedModule, RuntimeError> {
        self.prepare_with(label, bytes, sha256, true)
    }

    fn prepare_with(
        &self,
        label: &str,
        bytes: &[u8],
        sha256: &str,
        persist: bool,
    ) -> Result<PreparedModule, RuntimeError> {
        if let Some(prepared) = self.compiled.get(sha256) {
            return Ok(prepared);
        }
        let component = self.component(label, bytes, sha256, persist)?;
        let prepared = self.link(&component)?;
        self.compiled.insert(sha256, &prepared);
        Ok(prepared)
    }

    /// Compile the script engine the owner approved (its sha256 pinned as
    /// the lock's `[script_engine]`) and resolve its imports, `script-host`
    /// among them; kept in the disk cache like a pinned module.
    pub fn prepare_script_engine(
        &self,
        label: &str,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<PreparedEngine, RuntimeError> {
        let component = self.component(label, bytes, sha256, true)?;
        let instance_pre = self
            .script_linker
            .instantiate_pre(&component)
            .map_err(|e| RuntimeError::from_link(&e))?;
        let pre = engine::ScriptEnginePre::new(instance_pre).map_err(|e| {
            RuntimeError::Link(format!(
                "it is not a script engine (world `mcpist:plugin/script-engine@0.2.0`): {e:#}"
            ))
        })?;
        Ok(PreparedEngine { pre })
    }

    /// The compiled form of `bytes`: from the disk cache when `persist` and
    /// it holds it, else compiled (and, when `persist`, kept there).
    fn component(
        &self,
        label: &str,
        bytes: &[u8],
        sha256: &str,
        persist: bool,
    ) -> Result<Component, RuntimeError> {
        let on_disk = self.compiled.on_disk.as_ref().filter(|_| persist);
        let component = match on_disk.and_then(|cache| cache.load(&self.engine, sha256)) {
            Some(component) => component,
            None => {
                let component = self.compile(label, bytes)?;
                match on_disk {
                    // Use the mapped copy just written rather than the
                    // compiled one, which would stay resident in full.
                    Some(cache) => {
                        cache.store(&self.engine, sha256, &component);
                        cache.load(&self.engine, sha256).unwrap_or(component)
                    }
                    None => component,
                }
            }
        };
        Ok(component)
    }

    /// Compile with Cranelift, saying so when it takes a while: a module
    /// carrying a language runtime (Python, JavaScript) takes seconds.
    fn compile(&self, label: &str, bytes: &[u8]) -> Result<Component, RuntimeError> {
        const SAY_FROM_BYTES: usize = 4 << 20;
        let started = std::time::Instant::now();
        let large = bytes.len() >= SAY_FROM_BYTES;
        let ticker = large
            .then(|| {
                let what = format!(
                    "compiling {label} ({:.1} MiB), first load only",
                    bytes.len() as f64 / f64::from(1 << 20)
                );
                tracing::info!("{what}");
                CompileTicker::start(what)
            })
            .flatten();
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| RuntimeError::Compile(format!("{e:#}")));
        if let Some(ticker) = ticker {
            ticker.stop();
        }
        if large {
            tracing::info!("compiled {label} in {:.1?}", started.elapsed());
        }
        component
    }

    /// Forget the prepared modules whose sha256 is not in `present` (files
    /// gone from the plugins folder); the disk cache keeps them.
    pub(crate) fn retain_prepared(&self, present: &[&str]) {
        self.compiled.retain(present);
    }

    /// Remove from the disk cache every entry that is not the compiled form
    /// of a module in `pinned` (sha256s pinned in the lock).
    pub(crate) fn evict_unpinned(&self, pinned: &[&str]) {
        if let Some(cache) = &self.compiled.on_disk {
            cache.evict_except(&self.engine, pinned);
        }
    }

    fn link(&self, component: &Component) -> Result<PreparedModule, RuntimeError> {
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| RuntimeError::from_link(&e))?;
        let pre = PluginPre::new(instance_pre).map_err(RuntimeError::Link)?;
        Ok(PreparedModule { pre })
    }

    /// Ask a module to describe itself, in a sandboxed instance of its own.
    /// `label` names the module in errors until its real name is known.
    pub async fn describe(
        &self,
        module: &PreparedModule,
        label: &str,
    ) -> Result<ModuleManifest, CallError> {
        let never = CancellationToken::new();
        let export = module.pre.module_export();
        let info = self
            .run(
                &module.pre,
                label,
                Box::new(NoServices),
                None,
                &never,
                move |plugin, store| {
                    Box::pin(async move {
                        plugin
                            .describe(store)
                            .await
                            .map_err(|e| e.context(format!("export `{export}#describe`")))
                    })
                },
            )
            .await?;
        let manifest = manifest_from_wit(info).map_err(|source| CallError::Manifest {
            module: label.to_owned(),
            source,
        })?;
        manifest.validate().map_err(|source| CallError::Manifest {
            module: label.to_owned(),
            source,
        })?;
        Ok(manifest)
    }

    /// Call a tool in a fresh instance of `module` (named `name`), with
    /// `services` answering what the guest asks of the host. The call stops
    /// when `cancel` fires, with [`CallError::Cancelled`].
    pub async fn call(
        &self,
        module: &PreparedModule,
        name: &str,
        call: GuestCall<'_>,
        services: Box<dyn GuestServices>,
        cancel: &CancellationToken,
    ) -> Result<Result<ToolOutput, ModuleError>, CallError> {
        #[cfg(feature = "bench")]
        if let Some(twin) = self
            .native_twins
            .iter()
            .find(|t| t.module == name && t.tool == call.tool)
        {
            return Ok((twin.run)(call.arguments));
        }
        let arguments = call.arguments.to_string();
        let wit_context = declared::CallContext {
            account: call.context.account.clone(),
        };
        let tool_name = call.tool.to_owned();
        let export = module.pre.module_export();
        let (result, refusal) = self
            .run(
                &module.pre,
                name,
                services,
                None,
                cancel,
                move |plugin, store| {
                    Box::pin(async move {
                        let result = plugin
                            .call(&mut *store, &tool_name, &arguments, &wit_context)
                            .await
                            .map_err(|e| {
                                e.context(format!("export `{export}#call` (tool `{tool_name}`)"))
                            })?;
                        Ok((result, store.data().http_hooks.refusal()))
                    })
                },
            )
            .await?;
        match result {
            Ok(output) => self.check_output(name, output).map(Ok),
            Err(error) => {
                let mut error = module_error(error);
                // wasi:http can only tell the guest "denied"; the person at
                // the client learns from the host what to approve.
                if let Some(refusal) = refusal {
                    error.message.push_str(&format!(
                        " (the host refused an HTTP request of this call: {refusal})"
                    ));
                }
                Ok(Err(error))
            }
        }
    }

    /// Run `source` in a fresh instance of the script engine, held to the
    /// same limits as a tool call, with `host` starting the tool calls it
    /// asks for. The script's value is JSON text; its error, the uncaught
    /// exception as the engine describes it. `services` answers the rest
    /// of what the engine asks (its log; HTTP, which it must be refused).
    pub async fn run_script(
        &self,
        engine: &PreparedEngine,
        source: &str,
        services: Box<dyn GuestServices>,
        host: Arc<dyn ScriptHost>,
        cancel: &CancellationToken,
    ) -> Result<Result<String, String>, CallError> {
        let source = source.to_owned();
        self.run(
            &engine.pre,
            SCRIPT_ENGINE,
            services,
            Some(host),
            cancel,
            move |instance, store| {
                Box::pin(async move {
                    instance
                        .mcpist_plugin0_2_0_script()
                        .call_run(store, &source)
                        .await
                        .map_err(|e| e.context("export `mcpist:plugin/script@0.2.0#run`"))
                })
            },
        )
        .await
    }

    /// Instantiate `module` in a fresh store with the call limits and run
    /// `f`, until it ends, a limit is hit or `cancel` fires.
    async fn run<P, R, F>(
        &self,
        pre: &P,
        name: &str,
        services: Box<dyn GuestServices>,
        script: Option<Arc<dyn ScriptHost>>,
        cancel: &CancellationToken,
        f: F,
    ) -> Result<R, CallError>
    where
        P: Instantiate,
        R: Send + 'static,
        F: for<'a> FnOnce(
                &'a P::Instance,
                &'a mut Store<CallState>,
            ) -> std::pin::Pin<
                Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>,
            > + Send,
    {
        let cancelled = || CallError::Cancelled {
            module: name.to_owned(),
        };
        // The semaphore is never closed, so acquiring only waits: for a slot,
        // or for the caller to give up.
        let _slot = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(cancelled()),
            slot = self.slots.acquire() => slot,
        };
        let limits = self.limits;
        let stdout = GuestOutput::default();
        let stderr = GuestOutput::default();
        let mut state = CallState::new(
            name,
            &limits,
            stdout.clone(),
            stderr.clone(),
            Arc::from(services),
        );
        state.script = script;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // The CPU budget is counted in epoch ticks during which the guest was
        // running WebAssembly: the deadline callback fires at most once per
        // tick, and only from guest code, so time the guest spends blocked in
        // the host (a sleep, later an HTTP request) is not charged.
        let cpu_budget = ticks(limits.cpu_time);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            let state = ctx.data_mut();
            state.cpu_ticks += 1;
            if state.cpu_ticks > cpu_budget {
                return Err(wasmtime::Error::new(CpuLimitReached));
            }
            // Yield so that a busy module cannot hold a runtime thread.
            Ok(wasmtime::UpdateDeadline::Yield(1))
        });

        let guest = tokio::time::timeout(limits.wall_time, async {
            let instance =
                pre.instantiate(&mut store)
                    .await
                    .map_err(|e| CallError::Instantiate {
                        module: name.to_owned(),
                        detail: format!("{e:#}"),
                    })?;
            f(&instance, &mut store)
                .await
                .map_err(|e| self.classify(name, &store, e))
        });
        // Cancellation drops the guest's future: a guest running WebAssembly
        // is between two epoch ticks (it yields at each), one waiting is
        // waiting on the host (an HTTP request in flight is dropped with it).
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => Err(cancelled()),
            finished = guest => finished.unwrap_or_else(|_elapsed| {
                Err(CallError::WallTimeout {
                    module: name.to_owned(),
                    limit: limits.wall_time,
                })
            }),
        };
        let state = store.data();
        let services = state.services.as_ref();
        let outcome = match outcome {
            // A crash says why in the module's own last words (a Python
            // traceback, a Rust panic message) and in a request the host
            // refused, which the guest may not have reported.
            Err(CallError::Trap { module, mut detail }) => {
                if let Some(refusal) = state.http_hooks.refusal() {
                    detail.push_str(&format!(
                        "; the host refused an HTTP request of this call: {refusal}"
                    ));
                }
                if let Some(lines) = stderr.last_lines(services) {
                    detail.push_str(&format!("; the module's last output: {lines}"));
                }
                Err(CallError::Trap { module, detail })
            }
            other => other,
        };
        stdout.flush_to_log(services, name, "stdout");
        stderr.flush_to_log(services, name, "stderr");
        outcome
    }

    /// Turn a wasmtime error from a call into what the owner needs to know.
    fn classify(
        &self,
        module: &str,
        store: &Store<CallState>,
        error: wasmtime::Error,
    ) -> CallError {
        let module = module.to_owned();
        if error.downcast_ref::<CpuLimitReached>().is_some() {
            return CallError::CpuLimit {
                module,
                limit: self.limits.cpu_time,
            };
        }
        if store.data().limiter.refused {
            return CallError::MemoryLimit {
                module,
                limit_mib: self.limits.memory_bytes >> 20,
            };
        }
        let detail = match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::UnreachableCodeReached) => {
                "wasm `unreachable` executed (usually a panic or abort in the module)".to_owned()
            }
            Some(trap) => format!("wasm trap: {trap}"),
            None => format!("{error:#}"),
        };
        CallError::Trap { module, detail }
    }

    fn check_output(
        &self,
        module: &str,
        output: world::results::CallOutput,
    ) -> Result<ToolOutput, CallError> {
        output::checked(output, self.limits.output_bytes).map_err(|error| match error {
            OutputError::TooLarge { size, limit } => CallError::OutputTooLarge {
                module: module.to_owned(),
                size,
                limit,
            },
            OutputError::Invalid(detail) => CallError::InvalidOutput {
                module: module.to_owned(),
                detail,
            },
        })
    }
}

/// The error the epoch callback raises when a call's CPU budget is spent.
#[derive(Debug)]
struct CpuLimitReached;

impl std::fmt::Display for CpuLimitReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CPU time limit reached")
    }
}

impl std::error::Error for CpuLimitReached {}

fn ticks(d: Duration) -> u64 {
    (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

/// Advance the engine's epoch every `EPOCH_TICK` for as long as the engine
/// lives; the thread ends once the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("mcpist-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("cannot spawn the epoch ticker thread");
}

/// Longest error message a module may return; the rest is cut, so that a
/// module cannot make the host hold, redact, log and audit megabytes for
/// every failing call.
pub const MAX_ERROR_BYTES: usize = 16 << 10;

fn module_error(error: declared::ToolError) -> ModuleError {
    let (kind, mut message) = match error {
        declared::ToolError::UnknownTool(m) => (ModuleErrorKind::UnknownTool, m),
        declared::ToolError::InvalidArguments(m) => (ModuleErrorKind::InvalidArguments, m),
        declared::ToolError::Upstream(m) => (ModuleErrorKind::Upstream, m),
        declared::ToolError::Failed(m) => (ModuleErrorKind::Failed, m),
    };
    if message.len() > MAX_ERROR_BYTES {
        let total = message.len();
        let mut cut = MAX_ERROR_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.shrink_to_fit();
        message.push_str(&format!(" [cut: the module's error was {total} bytes]"));
    }
    ModuleError { kind, message }
}

fn manifest_from_wit(info: declared::ModuleInfo) -> Result<ModuleManifest, ManifestError> {
    let tools = info
        .tools
        .into_iter()
        .map(|t| {
            let input_schema = parse_schema(&t.name, "input", &t.input_schema)?;
            let output_schema = t
                .output_schema
                .as_deref()
                .map(|s| parse_schema(&t.name, "output", s))
                .transpose()?;
            use declared::ToolFlags as F;
            Ok(ToolSpec {
                flags: ToolFlags {
                    read_only: t.flags.contains(F::READ_ONLY),
                    destructive: t.flags.contains(F::DESTRUCTIVE),
                    idempotent: t.flags.contains(F::IDEMPOTENT),
                    open_world: t.flags.contains(F::OPEN_WORLD),
                    concurrency_safe: t.flags.contains(F::CONCURRENCY_SAFE),
                },
                name: t.name,
                description: t.description,
                input_schema,
                output_schema,
            })
        })
        .collect::<Result<Vec<_>, ManifestError>>()?;
    let credentials = info
        .credentials
        .into_iter()
        .map(|c| {
            use declared::Injection as I;
            CredentialBinding {
                service: c.service,
                inject: match c.inject {
                    I::Bearer => Injection::Bearer,
                    I::Header(h) => Injection::Header {
                        name: h.name,
                        template: h.template,
                    },
                    I::Basic(username) => Injection::Basic { username },
                    I::Query(param) => Injection::Query { param },
                },
                hosts: c.hosts,
            }
        })
        .collect();
    Ok(ModuleManifest {
        name: info.name,
        version: info.version,
        description: info.description,
        tools,
        hosts: info.hosts,
        credentials,
    })
}

/// While a long first compile runs, a line on the terminal that counts the
/// seconds (Cranelift reports no progress of its own). None when stderr is
/// not a terminal, where the log lines say it instead.
struct CompileTicker {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl CompileTicker {
    fn start(what: String) -> Option<CompileTicker> {
        use std::io::{IsTerminal, Write};
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let tick = std::time::Duration::from_millis(500);
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                let seconds = started.elapsed().as_secs();
                let _ = write!(std::io::stderr(), "\r{what}: {seconds} s");
            }
            // Leave the terminal line empty for the log line that follows.
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        });
        Some(CompileTicker { stop, thread })
    }

    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}
