//! The one path every tool call takes, whatever the front end: MCP over
//! stdio and over Streamable HTTP, in meta-tool and flat mode. It knows no
//! protocol; a front end translates its requests into a [`ToolCall`] and the
//! answer back.
//!
//! A call goes through, in order: the fail-closed audit check, the client's
//! mask, the account and its mask, argument validation, the sandboxed run
//! (with the call's egress), output validation, the outcome, and the audit
//! record. Every call is recorded, whatever its outcome, including calls
//! refused before anything ran and calls the client cancelled.
//!
//! The same service answers what a client may see ([`CallService::catalog`],
//! [`CallService::module_schemas`], [`CallService::tools`]), through the same
//! masks, so that a masked tool looks exactly like one that does not exist.

mod fair_share;

pub(crate) use fair_share::FairShare;
mod consent;
mod exclusive;
mod views;
mod watch;

pub use consent::{ConsentAnswer, ConsentAsker, ConsentQuestion};
pub use watch::{CallWatcher, RequestResult};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::audit::{self, AuditLog, Outbound, Outcome, Record};
use crate::broker::{Account, Broker};
use crate::catalog::live::LiveCatalog;
use crate::catalog::{Catalog, LookupError, ServedModule, ServedTool};
use crate::egress::{CallEgress, Egress, OutboundRecord};
use crate::policy::{ConsentPolicy, Decision, Mask, Masks};
use crate::runtime::{CallContext, CallError, GuestCall, ModuleError, Runtime, ToolOutput};
pub use views::{ModuleSchema, ModuleSummary, ServiceAccounts, ToolView};

/// One tool call, as a front end received it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The module's name.
    pub module: String,
    /// The tool's name within the module.
    pub tool: String,
    /// The tool's arguments (an object, checked against its input schema).
    pub arguments: Value,
    /// The account to act for; the service's default when absent.
    pub account: Option<String>,
}

impl ToolCall {
    /// A call of `module.tool` with `arguments`, for the default account.
    pub fn new(module: &str, tool: &str, arguments: Value) -> ToolCall {
        ToolCall {
            module: module.to_owned(),
            tool: tool.to_owned(),
            arguments,
            account: None,
        }
    }
}

/// Why a call did not produce a result. Its text is written for the model:
/// it says what was wrong and, where there is one, what to do.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum InvokeError {
    /// No such module or tool for this client: absent, or hidden by its
    /// mask (the two are answered alike).
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The arguments do not match the tool's input schema.
    #[error("invalid arguments for {module}.{tool}: {problems}")]
    InvalidArguments {
        /// The module.
        module: String,
        /// The tool.
        tool: String,
        /// What the schema check found.
        problems: String,
    },
    /// The module ran and reported an error of its own.
    #[error("{module}.{tool} failed: {error}")]
    Module {
        /// The module.
        module: String,
        /// The tool.
        tool: String,
        /// The module's error.
        error: ModuleError,
    },
    /// No usable account: none set up, an unknown name, or one masked.
    #[error("{module}.{tool} cannot run for this account: {reason}")]
    Account {
        /// The module.
        module: String,
        /// The tool.
        tool: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The sandbox stopped the call (a limit, a crash, a cancellation).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The result does not match the tool's declared output schema.
    #[error(
        "{module}.{tool} returned a result that does not match its declared output schema: {problems}"
    )]
    InvalidOutput {
        /// The module.
        module: String,
        /// The tool.
        tool: String,
        /// What the schema check found.
        problems: String,
    },
    /// Refused with nothing run: the call could not be recorded.
    #[error(
        "this call was refused because the audit log cannot be written ({problem}); calls run again once it can (the owner frees disk space or fixes the file's permissions)"
    )]
    AuditUnavailable {
        /// Why the last write failed.
        problem: String,
    },
    /// The request was too malformed to name a tool; the text says how.
    #[error("{0}")]
    Malformed(String),
    /// The owner's consent policy refuses this tool to this client.
    #[error(
        "{module}.{tool} is refused to this client by the owner's consent policy ([consent] in mcpist.toml); nothing ran"
    )]
    ConsentDenied {
        /// The module.
        module: String,
        /// The tool.
        tool: String,
    },
    /// The person at the client was asked and did not agree.
    #[error("the person using this client {answer} {module}.{tool}, so it did not run")]
    Declined {
        /// The module.
        module: String,
        /// The tool.
        tool: String,
        /// What they did: declined it, dismissed the question, or did not
        /// answer in time.
        answer: String,
    },
    /// The call needs the person's consent and they cannot be asked.
    #[error(
        "{module}.{tool} runs only with the consent of the person using this client, and {reason}; nothing ran. To let this client run it without asking, the owner adds to mcpist.toml:\n{rule}"
    )]
    ConsentUnavailable {
        /// The module.
        module: String,
        /// The tool.
        tool: String,
        /// Why they cannot be asked.
        reason: String,
        /// The `mcpist.toml` rule that would allow it.
        rule: String,
    },
    /// Consent was asked for in a round of its own (MCP 2026-07-28): the
    /// client answers by sending the call again, and nothing ran yet.
    #[error("{module}.{tool} waits for the consent of the person using this client")]
    ConsentAsked {
        /// The module.
        module: String,
        /// The tool.
        tool: String,
    },
}

impl InvokeError {
    /// How the audit log records a call that ended with this error.
    pub fn outcome(&self) -> Outcome {
        match self {
            InvokeError::Module { .. } => Outcome::ToolError,
            InvokeError::Lookup(_)
            | InvokeError::InvalidArguments { .. }
            | InvokeError::Account { .. }
            | InvokeError::AuditUnavailable { .. }
            | InvokeError::Malformed(_)
            | InvokeError::ConsentDenied { .. }
            | InvokeError::ConsentUnavailable { .. } => Outcome::Refused,
            InvokeError::Declined { .. } => Outcome::Declined,
            InvokeError::ConsentAsked { .. } => Outcome::ConsentAsked,
            InvokeError::Call(CallError::Cancelled { .. }) => Outcome::Cancelled,
            InvokeError::Call(_) | InvokeError::InvalidOutput { .. } => Outcome::Failed,
        }
    }
}

/// What one call did besides its result, for the audit log, as far as it
/// got.
#[derive(Debug, Default)]
struct CallTrace {
    /// The file that ran (or would have), once the module was found.
    module_sha256: Option<String>,
    /// The account the call acted for, once resolved.
    account: Option<String>,
    /// The requests it sent.
    outbound: Vec<OutboundRecord>,
    /// How consent was given, where the policy decided on it.
    consent: Option<&'static str>,
    /// The plan the call was a step of.
    plan: Option<Arc<str>>,
}

/// What [`CallService::check_step`] found out about a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepFacts {
    /// The module flags the tool destructive.
    pub destructive: bool,
    /// The consent policy asks the person before it runs.
    pub asks: bool,
}

/// The parts a call needs, wired once by [`crate::server::Server`].
pub struct CallService {
    pub(crate) catalog: Arc<LiveCatalog>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) egress: Arc<Egress>,
    pub(crate) broker: Arc<Broker>,
    pub(crate) masks: Arc<Masks>,
    pub(crate) audit: Arc<AuditLog>,
    /// Record arguments themselves, not only their digest.
    pub(crate) record_arguments: bool,
    /// The sandbox pool, shared fairly between clients.
    pub(crate) fair_share: Arc<FairShare>,
    /// Which calls wait for the person at the client to agree.
    pub(crate) consent: Arc<ConsentPolicy>,
    /// Tools that are not concurrency-safe run alone per module and account.
    pub(crate) module_locks: exclusive::ModuleLocks,
    /// The script engine, once a script needed it, and turns to run one.
    pub(crate) scripts: crate::script::Scripts,
}

/// What the client's side offers a call while it runs, when its front end
/// can: an ear for the module's log lines, and a way to ask the person for
/// consent. A call without an asker is refused where consent is needed.
#[derive(Clone, Default)]
pub struct ClientSide {
    /// Told of the module's log lines as they happen.
    pub watcher: Option<Arc<dyn CallWatcher>>,
    /// Asks the person for consent.
    pub asker: Option<Arc<dyn ConsentAsker>>,
    /// The plan this call is a step of, for the audit.
    pub plan: Option<Arc<str>>,
}

impl CallService {
    /// Run `call` for `client`, and record it. Cancelling `cancel` stops the
    /// call where it is (the guest, and any request in flight) and records
    /// it as cancelled.
    pub async fn call(
        &self,
        client: &str,
        call: &ToolCall,
        cancel: &CancellationToken,
    ) -> Result<ToolOutput, InvokeError> {
        self.call_from(client, call, cancel, ClientSide::default())
            .await
    }

    /// [`CallService::call`], with what the client's side offers: its
    /// watcher told of the call's log lines as they happen, its asker asked
    /// where the consent policy says so.
    pub async fn call_from(
        &self,
        client: &str,
        call: &ToolCall,
        cancel: &CancellationToken,
        side: ClientSide,
    ) -> Result<ToolOutput, InvokeError> {
        let started = Instant::now();
        let mut trace = CallTrace {
            account: call.account.clone(),
            plan: side.plan.clone(),
            ..CallTrace::default()
        };
        // Fail closed: a tool runs only while its call can be recorded. The
        // refusal is itself an append, and the first that succeeds (space
        // freed, permissions fixed) lets calls run again.
        let result = match self.audit.failure() {
            Some(problem) => Err(InvokeError::AuditUnavailable { problem }),
            None => self.run(client, call, &mut trace, cancel, side).await,
        };
        let duration_us = started.elapsed().as_micros() as u64;
        self.record(client, call, result.as_ref().err(), trace, duration_us);
        result
    }

    /// Refuse a request too malformed to name a tool (`problem` says why),
    /// recording whatever names it gave.
    pub fn refuse_malformed(
        &self,
        client: &str,
        arguments: &Value,
        problem: String,
    ) -> InvokeError {
        let name = |key: &str| arguments[key].as_str().unwrap_or("").to_owned();
        let call = ToolCall {
            module: name("module"),
            tool: name("tool"),
            arguments: arguments.clone(),
            account: arguments["account"].as_str().map(str::to_owned),
        };
        let trace = CallTrace {
            account: call.account.clone(),
            ..CallTrace::default()
        };
        let error = InvokeError::Malformed(problem);
        self.record(client, &call, Some(&error), trace, 0);
        error
    }

    /// What a plan needs to know of one step before anything runs: that
    /// `client` may call the tool (an unknown or masked one answered
    /// alike), that its arguments fit the schema except at the JSON
    /// Pointers `unknown` (values not known yet), and whether the consent
    /// policy will ask the person first.
    pub fn check_step(
        &self,
        client: &str,
        call: &ToolCall,
        unknown: &[String],
    ) -> Result<StepFacts, InvokeError> {
        let mask = self.masks.of(client);
        let catalog = self.catalog.get();
        let (_, tool) = catalog.tool(&call.module, &call.tool, &mask)?;
        tool.check_arguments_except(&call.arguments, unknown)
            .map_err(|problems| InvokeError::InvalidArguments {
                module: call.module.clone(),
                tool: call.tool.clone(),
                problems,
            })?;
        let destructive = tool.spec.flags.destructive;
        Ok(StepFacts {
            asks: self
                .consent
                .decide(client, &call.module, &call.tool, destructive)
                == Decision::Ask,
            destructive,
        })
    }

    /// How long the person has to answer a consent question.
    pub fn consent_timeout(&self) -> std::time::Duration {
        self.consent.timeout()
    }

    /// The most a call's result may hold, in bytes (`[limits] output_kib`).
    pub fn output_limit(&self) -> usize {
        self.runtime.limits().output_bytes
    }

    /// Changes whenever hot reload changes the modules served.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.catalog.changes()
    }

    /// The catalog served now.
    pub fn served(&self) -> Arc<Catalog> {
        self.catalog.get()
    }

    /// The client's mask, the catalog, the tool, the account, the arguments,
    /// the sandbox, the result: everything between the audit check and the
    /// record.
    async fn run(
        &self,
        client: &str,
        call: &ToolCall,
        trace: &mut CallTrace,
        cancel: &CancellationToken,
        side: ClientSide,
    ) -> Result<ToolOutput, InvokeError> {
        let mask = self.masks.of(client);
        let catalog = self.catalog.get();
        let (module, tool) = catalog.tool(&call.module, &call.tool, &mask)?;
        trace.module_sha256 = Some(module.sha256.clone());
        let accounts = self.accounts(module, tool, &mask, call.account.as_deref())?;
        tool.check_arguments(&call.arguments).map_err(|problems| {
            InvokeError::InvalidArguments {
                module: call.module.clone(),
                tool: call.tool.clone(),
                problems,
            }
        })?;
        // The module learns which account it acts for, never its secret.
        let context = CallContext {
            account: accounts.values().next().map(|a| a.name.clone()),
        };
        trace.account = context.account.clone();
        let question = ConsentQuestion {
            client: client.to_owned(),
            module: call.module.clone(),
            tool: call.tool.clone(),
            account: context.account.clone(),
            arguments: call.arguments.clone(),
            destructive: tool.spec.flags.destructive,
            covers: Vec::new(),
        };
        trace.consent = self
            .consent(question, side.asker.as_deref(), cancel)
            .await?;
        let egress = CallEgress::new(
            self.egress.clone(),
            module.policy.clone(),
            Some(self.broker.clone()),
            accounts,
        );
        let outbound = egress.outbound();
        let services: Box<dyn crate::runtime::GuestServices> = match side.watcher {
            Some(watcher) => Box::new(watch::Watched { egress, watcher }),
            None => Box::new(egress),
        };
        let cancelled = || {
            InvokeError::Call(CallError::Cancelled {
                module: call.module.clone(),
            })
        };
        // A tool that is not concurrency-safe waits until it can run alone
        // for this module and account (and others wait for it).
        let _exclusive = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(cancelled()),
            turn = self.module_locks.turn(
                client,
                &call.module,
                context.account.as_deref(),
                tool.spec.flags.concurrency_safe,
            ) => turn,
        };
        // Wait for this client's fair turn at the pool, or for the caller
        // to give up.
        let _turn = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(cancelled()),
            turn = self.fair_share.turn(client) => turn,
        };
        let guest = GuestCall {
            tool: &call.tool,
            arguments: &call.arguments,
            context: &context,
        };
        let output = self
            .runtime
            .call(&module.prepared, &call.module, guest, services, cancel)
            .await;
        trace.outbound = outbound.records();
        let output = output?.map_err(|error| InvokeError::Module {
            module: call.module.clone(),
            tool: call.tool.clone(),
            error,
        })?;
        tool.check_output(&output)
            .map_err(|problems| InvokeError::InvalidOutput {
                module: call.module.clone(),
                tool: call.tool.clone(),
                problems,
            })?;
        Ok(output)
    }

    /// Whether the call may run, as the consent policy says: at once, never,
    /// or once the person at the client accepts (asked through `asker`,
    /// while the call holds no sandbox). What the audit records of it when
    /// it may: `allowed` for a destructive tool the policy lets run unasked,
    /// `accepted` when the person agreed.
    async fn consent(
        &self,
        question: ConsentQuestion,
        asker: Option<&dyn ConsentAsker>,
        cancel: &CancellationToken,
    ) -> Result<Option<&'static str>, InvokeError> {
        let ConsentQuestion {
            client,
            module,
            tool,
            destructive,
            ..
        } = &question;
        let (module, tool) = (module.clone(), tool.clone());
        match self.consent.decide(client, &module, &tool, *destructive) {
            Decision::Allow => return Ok(destructive.then_some("allowed")),
            Decision::Deny => return Err(InvokeError::ConsentDenied { module, tool }),
            Decision::Ask => {}
        }
        let unavailable = |reason: String| InvokeError::ConsentUnavailable {
            rule: crate::policy::consent::rule_for(client, &module, &tool, Decision::Allow),
            module: module.clone(),
            tool: tool.clone(),
            reason,
        };
        let Some(asker) = asker else {
            return Err(unavailable(
                "this way of calling cannot ask the person".to_owned(),
            ));
        };
        let timeout = self.consent.timeout();
        let answer = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                return Err(InvokeError::Call(CallError::Cancelled { module }));
            }
            answer = asker.ask(&question, timeout) => answer,
        };
        let declined = |answer: String| InvokeError::Declined {
            module: module.clone(),
            tool: tool.clone(),
            answer,
        };
        match answer {
            ConsentAnswer::Accepted => Ok(Some("accepted")),
            ConsentAnswer::Declined => Err(declined("declined".to_owned())),
            ConsentAnswer::Cancelled => Err(declined("dismissed the question about".to_owned())),
            ConsentAnswer::TimedOut => Err(declined(format!(
                "did not answer within {} s whether to allow",
                timeout.as_secs()
            ))),
            ConsentAnswer::Unsupported(reason) => Err(unavailable(reason)),
            ConsentAnswer::Deferred => Err(InvokeError::ConsentAsked { module, tool }),
        }
    }

    /// Service → the account this call acts for: the one named, else the
    /// service's default, among the accounts the client's mask leaves it,
    /// and only if the account's own mask lets this tool act for it.
    fn accounts(
        &self,
        module: &ServedModule,
        tool: &ServedTool,
        mask: &Mask,
        requested: Option<&str>,
    ) -> Result<BTreeMap<String, Account>, InvokeError> {
        let name = &module.manifest.name;
        let refuse = |reason: String| InvokeError::Account {
            module: name.clone(),
            tool: tool.spec.name.clone(),
            reason,
        };
        let services = module.policy.services();
        if services.is_empty() {
            return match requested {
                Some(account) => Err(refuse(format!(
                    "module `{name}` uses no accounts, so `account` ({account:?}) must be omitted"
                ))),
                None => Ok(BTreeMap::new()),
            };
        }
        // The accounts this client may use; others look absent.
        let known = self
            .broker
            .accounts()
            .map(|all| mask.accounts(&all))
            .map_err(|e| refuse(e.to_string()))?;
        let mut accounts = BTreeMap::new();
        for service in services {
            let account =
                Broker::resolve(&known, service, requested).map_err(|e| refuse(e.to_string()))?;
            if let Some(reason) = mask.account_refusal(service, &account.name, name, &tool.spec) {
                return Err(refuse(reason));
            }
            accounts.insert(service.to_owned(), account);
        }
        Ok(accounts)
    }

    /// Log the call's end and append its audit record. A write that fails
    /// is logged as an error: the answer has been computed by then, and the
    /// client still gets it; later calls are refused until a write succeeds.
    fn record(
        &self,
        client: &str,
        call: &ToolCall,
        error: Option<&InvokeError>,
        trace: CallTrace,
        duration_us: u64,
    ) {
        let (module, tool) = (&call.module, &call.tool);
        let (outcome, reason) = match error {
            None => {
                tracing::info!(%module, %tool, elapsed_us = duration_us, "call ok");
                (Outcome::Ok, None)
            }
            Some(error) => {
                let outcome = error.outcome();
                tracing::warn!(%module, %tool, elapsed_us = duration_us, outcome = outcome.label(), "{error}");
                (outcome, Some(audit::reason(&error.to_string())))
            }
        };
        let record = Record {
            time: audit::now(),
            client: client.to_owned(),
            module: module.clone(),
            module_sha256: trace.module_sha256,
            tool: tool.clone(),
            account: trace.account,
            outcome,
            reason,
            duration_us,
            outbound: trace
                .outbound
                .into_iter()
                .map(|r| Outbound {
                    method: r.method,
                    origin: r.origin,
                    status: r.status,
                })
                .collect(),
            consent: trace.consent.map(str::to_owned),
            plan: trace.plan.map(|plan| plan.to_string()),
            arguments_sha256: audit::digest(&call.arguments),
            arguments: self.record_arguments.then(|| call.arguments.clone()),
        };
        if let Err(error) = self.audit.append(record) {
            tracing::error!("{error}");
        }
    }
}

#[cfg(test)]
mod tests;
