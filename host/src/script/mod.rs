//! Scripts (`run_script`, code mode): the model sends a short JavaScript
//! program and the server runs it, instead of the model making one round
//! trip per tool call.
//!
//! The program runs in the script engine, a WebAssembly component of its
//! own (`plugins/engines/javascript`, world `script-engine` in
//! `wit/script.wit`) pinned in the lock as `[script_engine]`, with the
//! limits of a tool call (CPU, memory, wall time). Its one way out is a tool
//! call: [`ToolCalls`] takes each through the host's one call path for the
//! client that sent the script (masks, consent, argument validation,
//! audit with the script's id, the concurrency-safe rule), so a script can
//! do nothing its client could not do call by call. Calls it starts
//! together run together, up to [`MAX_PARALLEL`].

mod catalogue;

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::calls::{
    CallService, CallWatcher, ClientSide, ConsentAnswer, ConsentAsker, ConsentQuestion, ToolCall,
};
use crate::plan::{StepWatcher, result_value};
use crate::registry::lock::EnginePin;
use crate::runtime::{
    CallError, GuestServices, HttpError, InboundResponse, OutboundRequest, PreparedEngine,
    ProgressReport, Runtime, SCRIPT_ENGINE, ScriptHost, ToolCallEnded,
};

pub use catalogue::typed_catalogue;

/// Where the bundled engine is built, inside the plugins folder.
pub const DEFAULT_ENGINE_FILE: &str = "engines/javascript.wasm";

/// Most tool calls one script may make.
pub const MAX_CALLS: usize = 256;
/// Most of a script's tool calls running at once; the sandbox pool and the
/// client's fair share bound it further.
pub const MAX_PARALLEL: usize = 8;
/// Longest script accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 64 << 10;
/// Console lines kept for the result.
const MAX_CONSOLE_LINES: usize = 200;

/// The approved script engine as the plugins folder should hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedEngine {
    /// Where the file is.
    pub path: PathBuf,
    /// What the lock approved.
    pub pin: EnginePin,
}

impl ApprovedEngine {
    /// The engine `pin` approves, in `plugins_dir`; none when the pin's
    /// path would leave the folder.
    pub fn locate(plugins_dir: &Path, pin: &EnginePin) -> Option<ApprovedEngine> {
        let relative = Path::new(&pin.file);
        let inside = relative
            .components()
            .all(|part| matches!(part, Component::Normal(_)));
        inside.then(|| ApprovedEngine {
            path: plugins_dir.join(relative),
            pin: pin.clone(),
        })
    }
}

/// Why a script did not run, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// No engine is approved, or its file is missing or changed.
    #[error("{0}")]
    Engine(String),
    /// The sandbox stopped it: a limit, a crash, a cancellation.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The script threw, or returned what cannot be JSON.
    #[error("the script failed: {0}")]
    Failed(String),
    /// The script is too long, or not given.
    #[error("{0}")]
    Refused(String),
}

fn load(
    runtime: &Runtime,
    approved: &ApprovedEngine,
) -> Result<(String, PreparedEngine), ScriptError> {
    let path = &approved.path;
    let bytes = std::fs::read(path).map_err(|e| {
        ScriptError::Engine(format!(
            "run_script is unavailable: the script engine {} cannot be read ({e}); the owner \
             builds it with `cargo xtask build-plugins`",
            path.display()
        ))
    })?;
    let sha256 = crate::registry::sha256_hex(&bytes);
    if sha256 != approved.pin.sha256 {
        return Err(ScriptError::Engine(format!(
            "run_script is unavailable: the script engine {} (sha256 {}) is not the one \
             approved in registry.lock ({}); the owner approves it with `mcpist plugins \
             approve-engine` after checking where it came from",
            path.display(),
            crate::registry::short_hash(&sha256),
            crate::registry::short_hash(&approved.pin.sha256),
        )));
    }
    let engine = runtime
        .prepare_script_engine(&approved.pin.file, &bytes, &sha256)
        .map_err(|e| ScriptError::Engine(format!("run_script is unavailable: {e}")))?;
    Ok((sha256, engine))
}

/// What the client's side offers a script while it runs.
#[derive(Clone, Default)]
pub struct ScriptSide {
    /// Told of the calls' module log lines, and of each call's end as
    /// progress.
    pub watcher: Option<Arc<dyn CallWatcher>>,
    /// Asks the person about calls the consent policy asks about, while
    /// the script waits.
    pub asker: Option<Arc<dyn ConsentAsker>>,
}

/// One tool call of a script, for its result.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    /// The module.
    pub module: String,
    /// The tool.
    pub tool: String,
    /// The account asked for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Whether it answered.
    pub ok: bool,
    /// How long it took, in milliseconds, from its start by the script.
    pub duration_ms: f64,
}

/// What a script did.
pub struct ScriptRun {
    /// Its id, as the audit records its calls.
    pub id: String,
    /// What it returned, or why it failed.
    pub outcome: Result<Value, ScriptError>,
    /// Its console lines.
    pub console: Vec<String>,
    /// Its tool calls, in the order they ended.
    pub calls: Vec<CallReport>,
}

impl ScriptRun {
    /// The result as the model reads it.
    pub fn to_json(&self) -> Value {
        let mut result = json!({
            "script": self.id,
            "ok": self.outcome.is_ok(),
            "console": self.console,
            "calls": self.calls,
        });
        match &self.outcome {
            Ok(value) => result["value"] = value.clone(),
            Err(error) => result["error"] = Value::String(error.to_string()),
        }
        result
    }
}

/// Run `source` for `client`: every tool call through `calls`, stopped by
/// `cancel` (which cancels the calls running).
pub async fn run(
    calls: Arc<CallService>,
    client: &str,
    source: &str,
    cancel: &CancellationToken,
    side: ScriptSide,
) -> ScriptRun {
    let id = script_id();
    let tool_calls = Arc::new(ToolCalls::new(calls.clone(), client, &id, side, cancel));
    // Whatever ends the script ends its calls.
    let _stop_calls = tool_calls.cancel.clone().drop_guard();
    let outcome = run_in_engine(&calls, source, cancel, tool_calls.clone()).await;
    let outcome = match outcome {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| ScriptError::Failed(format!("the engine returned invalid JSON: {e}"))),
        Err(error) => Err(error),
    };
    let outcome = outcome.and_then(|value| fit(value, calls.output_limit()));
    tracing::info!(client, script = %id, calls = tool_calls.started.load(Ordering::Relaxed), ok = outcome.is_ok(), "ran a script");
    ScriptRun {
        id,
        outcome,
        console: std::mem::take(&mut *lock(&tool_calls.console)),
        calls: std::mem::take(&mut *lock(&tool_calls.reports)),
    }
}

async fn run_in_engine(
    calls: &Arc<CallService>,
    source: &str,
    cancel: &CancellationToken,
    tool_calls: Arc<ToolCalls>,
) -> Result<String, ScriptError> {
    if source.trim().is_empty() {
        return Err(ScriptError::Refused(
            "the script is empty: send a JavaScript program in `script`".to_owned(),
        ));
    }
    if source.len() > MAX_SOURCE_BYTES {
        return Err(ScriptError::Refused(format!(
            "the script is {} bytes; at most {MAX_SOURCE_BYTES} are accepted",
            source.len()
        )));
    }
    let approved = calls.served().script_engine().cloned().ok_or_else(|| {
        ScriptError::Engine(
            "run_script is unavailable: no script engine is approved (the owner builds it with \
             `cargo xtask build-plugins` and approves it with `mcpist plugins approve-engine`)"
                .to_owned(),
        )
    })?;
    // At most half the sandbox pool runs scripts, so that the tool calls
    // scripts wait for always find a slot.
    let _turn = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(CallError::Cancelled { module: SCRIPT_ENGINE.to_owned() }.into()),
        turn = calls.scripts.turns.acquire() => turn.expect("never closed"),
    };
    let engine = calls.scripts.get(&calls.runtime, &approved).await?;
    let outcome = calls
        .runtime
        .run_script(
            &engine,
            source,
            Box::new(EngineServices),
            tool_calls,
            cancel,
        )
        .await?;
    outcome.map_err(ScriptError::Failed)
}

/// A script's id, for the audit: random, so that scripts cannot be
/// confused.
fn script_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    format!("script-{}", hex::encode(bytes))
}

/// A script's value, if it fits the output limit; else a failure saying
/// how to return less.
fn fit(value: Value, limit: usize) -> Result<Value, ScriptError> {
    let size = value.to_string().len();
    if size > limit {
        return Err(ScriptError::Failed(format!(
            "its value is {size} bytes and a result may hold {limit}; return only the parts needed"
        )));
    }
    Ok(value)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the engine may reach besides tool calls: nothing.
struct EngineServices;

#[async_trait]
impl GuestServices for EngineServices {
    async fn send_http(&self, _: OutboundRequest) -> Result<InboundResponse, HttpError> {
        Err(HttpError::Denied(
            "a script reaches services only through tool calls".to_owned(),
        ))
    }

    fn redact(&self, text: &str) -> String {
        text.to_owned()
    }

    fn max_request_bytes(&self) -> usize {
        0
    }
}

/// Per-server state of scripts: the compiled engine, loaded when the first
/// script needs it (compiling it takes seconds, and a server that runs no
/// script should not pay), and the turns to run one.
pub struct Scripts {
    loaded: tokio::sync::Mutex<Option<(String, PreparedEngine)>>,
    turns: Semaphore,
}

impl Scripts {
    /// Scripts for a sandbox pool of `slots`.
    pub fn new(slots: u32) -> Scripts {
        Scripts {
            loaded: tokio::sync::Mutex::default(),
            turns: Semaphore::new((slots as usize / 2).max(1)),
        }
    }

    /// The engine `approved` names, checked against its pin and compiled
    /// (or read from the compiled cache) on first use.
    async fn get(
        &self,
        runtime: &Arc<Runtime>,
        approved: &ApprovedEngine,
    ) -> Result<PreparedEngine, ScriptError> {
        let mut loaded = self.loaded.lock().await;
        if let Some((sha256, engine)) = loaded.as_ref()
            && *sha256 == approved.pin.sha256
        {
            return Ok(engine.clone());
        }
        let runtime = runtime.clone();
        let approved = approved.clone();
        let (sha256, engine) = tokio::task::spawn_blocking(move || load(&runtime, &approved))
            .await
            .map_err(|e| ScriptError::Engine(format!("loading the script engine failed: {e}")))??;
        *loaded = Some((sha256, engine.clone()));
        Ok(engine)
    }
}

/// The script's tool calls: each a task of its own through the call path,
/// its end sent back for [`ScriptHost::next_ended`].
struct ToolCalls {
    calls: Arc<CallService>,
    client: String,
    script: Arc<str>,
    side: ScriptSide,
    cancel: CancellationToken,
    parallel: Arc<Semaphore>,
    started: AtomicU32,
    running: AtomicUsize,
    ended_tx: mpsc::UnboundedSender<ToolCallEnded>,
    ended_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<ToolCallEnded>>,
    console: Mutex<Vec<String>>,
    reports: Arc<Mutex<Vec<CallReport>>>,
}

impl ToolCalls {
    fn new(
        calls: Arc<CallService>,
        client: &str,
        id: &str,
        side: ScriptSide,
        cancel: &CancellationToken,
    ) -> ToolCalls {
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        ToolCalls {
            calls,
            client: client.to_owned(),
            script: Arc::from(id),
            side,
            cancel: cancel.child_token(),
            parallel: Arc::new(Semaphore::new(MAX_PARALLEL)),
            started: AtomicU32::new(0),
            running: AtomicUsize::new(0),
            ended_tx,
            ended_rx: tokio::sync::Mutex::new(ended_rx),
            console: Mutex::new(Vec::new()),
            reports: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The side a call of this script gets: the module's log lines, not its
    /// own progress (the script reports progress per call); consent asked
    /// while the script waits.
    fn call_side(&self) -> ClientSide {
        ClientSide {
            watcher: self
                .side
                .watcher
                .clone()
                .map(|w| Arc::new(StepWatcher(w)) as Arc<dyn CallWatcher>),
            asker: self
                .side
                .asker
                .clone()
                .map(|asker| Arc::new(WhileWaiting(asker)) as Arc<dyn ConsentAsker>),
            plan: Some(self.script.clone()),
        }
    }
}

#[async_trait]
impl ScriptHost for ToolCalls {
    fn call_tool(
        &self,
        module: String,
        tool: String,
        account: Option<String>,
        arguments: String,
    ) -> u32 {
        let number = self.started.fetch_add(1, Ordering::Relaxed);
        self.running.fetch_add(1, Ordering::Relaxed);
        let ended = self.ended_tx.clone();
        if number as usize >= MAX_CALLS {
            let _ = ended.send(ToolCallEnded {
                call: number,
                outcome: Err(format!(
                    "a script may make at most {MAX_CALLS} tool calls; this one did not run"
                )),
            });
            return number;
        }
        let calls = self.calls.clone();
        let client = self.client.clone();
        let side = self.call_side();
        let cancel = self.cancel.clone();
        let parallel = self.parallel.clone();
        let reports = self.reports.clone();
        let watcher = self.side.watcher.clone();
        let started = Instant::now();
        tokio::spawn(async move {
            let outcome = match serde_json::from_str::<Value>(&arguments) {
                Err(e) => Err(format!("the arguments are not JSON: {e}")),
                Ok(arguments) => {
                    let call = ToolCall {
                        module: module.clone(),
                        tool: tool.clone(),
                        arguments,
                        account: account.clone(),
                    };
                    let _turn = tokio::select! {
                        biased;
                        () = cancel.cancelled() => None,
                        turn = parallel.acquire_owned() => turn.ok(),
                    };
                    calls
                        .call_from(&client, &call, &cancel, side)
                        .await
                        .map(|output| result_value(output).to_string())
                        .map_err(|error| error.to_string())
                }
            };
            let report = CallReport {
                module,
                tool,
                account,
                ok: outcome.is_ok(),
                duration_ms: duration_ms(started.elapsed()),
            };
            let done = {
                let mut reports = lock(&reports);
                reports.push(report.clone());
                reports.len()
            };
            if let Some(watcher) = watcher {
                watcher.progress(&ProgressReport {
                    done: done as f64,
                    total: None,
                    message: Some(format!(
                        "{}.{}: {}",
                        report.module,
                        report.tool,
                        if report.ok { "ok" } else { "failed" }
                    )),
                });
            }
            let _ = ended.send(ToolCallEnded {
                call: number,
                outcome,
            });
        });
        number
    }

    async fn next_ended(&self) -> Option<ToolCallEnded> {
        if self.running.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let ended = self.ended_rx.lock().await.recv().await?;
        self.running.fetch_sub(1, Ordering::Relaxed);
        Some(ended)
    }

    fn console(&self, line: String) {
        let mut console = lock(&self.console);
        if console.len() < MAX_CONSOLE_LINES {
            console.push(line);
        } else if console.len() == MAX_CONSOLE_LINES {
            console.push(format!(
                "[further console lines dropped: at most {MAX_CONSOLE_LINES} are kept]"
            ));
        }
    }
}

fn duration_ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

/// Asks the person while the script waits, as `elicitation/create` can.
/// MCP 2026-07-28 asks in the answer to the request instead, which a
/// script cannot pause for: such a call is refused with the way out.
struct WhileWaiting(Arc<dyn ConsentAsker>);

#[async_trait]
impl ConsentAsker for WhileWaiting {
    async fn ask(&self, question: &ConsentQuestion, timeout: Duration) -> ConsentAnswer {
        match self.0.ask(question, timeout).await {
            ConsentAnswer::Deferred => ConsentAnswer::Unsupported(
                "a script cannot wait for the answer at this protocol version (it is asked in the \
                 answer to the request); call this tool with call_module_tool or run_plan"
                    .to_owned(),
            ),
            answer => answer,
        }
    }
}
