//! Running a checked plan: steps start as soon as the steps they depend on
//! have succeeded, up to `max_parallel` at once; a failed step's dependents
//! are skipped; `on_error = "stop"` cancels what runs and starts nothing
//! more; cancelling the plan cancels every running step. The person is
//! asked once, before anything runs, about every step the consent policy
//! asks about.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{OnError, Plan, Step, substitute};
use crate::audit::Outcome;
use crate::calls::{
    CallService, CallWatcher, ClientSide, ConsentAnswer, ConsentAsker, ConsentQuestion,
    InvokeError, RequestResult,
};
use crate::runtime::{ContentItem, LogLevel, ProgressReport, ToolOutput};

/// What the client's side offers a plan while it runs.
#[derive(Clone, Default)]
pub struct PlanSide {
    /// Told of the steps' module log lines, and of each step's end as
    /// progress.
    pub watcher: Option<Arc<dyn CallWatcher>>,
    /// Asks the person, once, about the steps the consent policy asks about.
    pub asker: Option<Arc<dyn ConsentAsker>>,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// It ran and answered.
    Ok,
    /// It ran, or was refused, and did not answer.
    Failed,
    /// The person did not agree to it; it did not run.
    Declined,
    /// A step it depends on did not succeed; it did not run.
    Skipped,
    /// The plan was cancelled (or stopped) while it ran.
    Cancelled,
    /// The plan stopped or was cancelled before it started.
    NotRun,
}

/// One step's part of the plan's result.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The step's id.
    pub id: String,
    /// Its module.
    pub module: String,
    /// Its tool.
    pub tool: String,
    /// How it ended.
    pub status: StepOutcome,
    /// How long it ran, in milliseconds (0 if it never started).
    pub duration_ms: f64,
    /// Its result (the part `select` names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why it did not succeed, or a note on its result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where it stood in the plan as sent.
    #[serde(skip)]
    position: usize,
}

/// How a plan run ended.
pub enum PlanRun {
    /// It ran: every step's report, in the order the plan gave them.
    Done {
        /// The plan's id, as the audit records it.
        id: String,
        /// What became of each step.
        steps: Vec<StepReport>,
    },
    /// The person is being asked about the plan in a round of its own (MCP
    /// 2026-07-28); nothing ran, and the answer comes with the retry.
    ConsentAsked,
}

/// Run `plan` for `client`. Cancelling `cancel` cancels the running steps.
pub async fn run(
    calls: Arc<CallService>,
    client: &str,
    plan: Plan,
    cancel: &CancellationToken,
    side: PlanSide,
) -> PlanRun {
    let id = plan_id();
    let answer = match ask_once(&calls, client, &plan, cancel, side.asker.as_deref()).await {
        Some(ConsentAnswer::Deferred) => return PlanRun::ConsentAsked,
        other => other,
    };
    let steps = Scheduler {
        calls,
        client: client.to_owned(),
        plan_id: Arc::from(id.as_str()),
        watcher: side.watcher,
        answer,
        cancel: cancel.child_token(),
    }
    .run(plan)
    .await;
    PlanRun::Done { id, steps }
}

/// A plan's id, for the audit: random, so that plans cannot be confused.
fn plan_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    format!("plan-{}", hex::encode(bytes))
}

/// Ask the person once about every step the policy asks about; none if
/// there are none (or no one to ask: each such step is then refused with
/// the how-to, by the call path).
async fn ask_once(
    calls: &CallService,
    client: &str,
    plan: &Plan,
    cancel: &CancellationToken,
    asker: Option<&dyn ConsentAsker>,
) -> Option<ConsentAnswer> {
    let asker = asker?;
    let covers: Vec<(String, ConsentQuestion)> = plan
        .steps
        .iter()
        .filter(|step| step.asks)
        .map(|step| {
            let question = ConsentQuestion {
                client: client.to_owned(),
                module: step.call.module.clone(),
                tool: step.call.tool.clone(),
                account: step.call.account.clone(),
                arguments: step.call.arguments.clone(),
                destructive: step.destructive,
                covers: Vec::new(),
            };
            (step.id.clone(), question)
        })
        .collect();
    if covers.is_empty() {
        return None;
    }
    let question = ConsentQuestion {
        client: client.to_owned(),
        module: "run_plan".to_owned(),
        tool: "run_plan".to_owned(),
        account: None,
        arguments: Value::Null,
        destructive: covers.iter().any(|(_, q)| q.destructive),
        covers,
    };
    tokio::select! {
        biased;
        () = cancel.cancelled() => Some(ConsentAnswer::Cancelled),
        answer = asker.ask(&question, calls.consent_timeout()) => Some(answer),
    }
}

/// The answer the person gave for the whole plan, given to each step the
/// call path asks about.
struct Settled(ConsentAnswer);

#[async_trait]
impl ConsentAsker for Settled {
    async fn ask(&self, _: &ConsentQuestion, _: Duration) -> ConsentAnswer {
        self.0.clone()
    }
}

/// A step's (or a script's call's) watcher: the module's log lines go
/// through; its own progress and request counts do not, since the plan
/// reports progress per step (a script, per call).
pub(crate) struct StepWatcher(pub(crate) Arc<dyn CallWatcher>);

impl CallWatcher for StepWatcher {
    fn log(&self, module: &str, level: LogLevel, message: &str) {
        self.0.log(module, level, message);
    }

    fn request_done(&self, _: &str, _: &str, _: RequestResult) {}

    fn progress(&self, _: &ProgressReport) {}
}

struct Scheduler {
    calls: Arc<CallService>,
    client: String,
    plan_id: Arc<str>,
    watcher: Option<Arc<dyn CallWatcher>>,
    answer: Option<ConsentAnswer>,
    cancel: CancellationToken,
}

/// A step's end, from its task.
struct Ended {
    index: usize,
    duration: Duration,
    result: Result<ToolOutput, InvokeError>,
}

impl Scheduler {
    async fn run(self, plan: Plan) -> Vec<StepReport> {
        let total = plan.steps.len();
        let mut reports: Vec<Option<StepReport>> = vec![None; total];
        let mut results: BTreeMap<String, Value> = BTreeMap::new();
        let mut started: HashSet<usize> = HashSet::new();
        let mut running = JoinSet::new();
        let mut stopping = false;
        loop {
            self.skip_dependents_of_failures(&plan.steps, &mut reports);
            if self.cancel.is_cancelled() {
                stopping = true;
            }
            // A step that failed without running may let others be
            // skipped, or free a place: look again before waiting.
            let mut failed_at_start = false;
            if !stopping {
                for (index, step) in plan.steps.iter().enumerate() {
                    if running.len() >= plan.max_parallel {
                        break;
                    }
                    if started.contains(&index) || !self.ready(step, &plan.steps, &reports) {
                        continue;
                    }
                    started.insert(index);
                    match substitute(&step.call.arguments, &results) {
                        Ok(arguments) => {
                            running.spawn(self.start(index, step, arguments));
                        }
                        Err(problem) => {
                            reports[index] = Some(self.unrunnable(step, problem));
                            self.told(step, StepOutcome::Failed, &reports, total);
                            failed_at_start = true;
                        }
                    }
                }
            }
            let Some(ended) = running.join_next().await else {
                // Nothing runs, and nothing started: every step has ended,
                // or the plan stopped.
                if failed_at_start && !stopping {
                    continue;
                }
                break;
            };
            let Ok(ended) = ended else {
                // A step's task panicked: its report stays empty and it is
                // listed as not run.
                continue;
            };
            let index = ended.index;
            let step = &plan.steps[index];
            let report = self.report(step, ended, &mut results);
            let failed = report.status != StepOutcome::Ok;
            let status = report.status;
            reports[index] = Some(report);
            self.told(step, status, &reports, total);
            if failed && plan.on_error == OnError::Stop && !stopping {
                stopping = true;
                self.cancel.cancel();
            }
        }
        let mut reports: Vec<StepReport> = plan
            .steps
            .iter()
            .zip(reports)
            .map(|(step, report)| {
                report.unwrap_or_else(|| {
                    self.not_started(
                        step,
                        StepOutcome::NotRun,
                        "the plan stopped before it".into(),
                    )
                })
            })
            .collect();
        reports.sort_by_key(|r| r.position);
        fit(&mut reports, self.calls.output_limit());
        reports
    }

    /// Whether `step` may start: every step it depends on succeeded.
    fn ready(&self, step: &Step, steps: &[Step], reports: &[Option<StepReport>]) -> bool {
        step.depends_on.iter().all(|d| {
            reports[step_index(steps, d)]
                .as_ref()
                .is_some_and(|r| r.status == StepOutcome::Ok)
        })
    }

    /// Mark the steps that can no longer run because a step they depend on
    /// did not succeed (repeated until nothing changes: a skip skips on).
    fn skip_dependents_of_failures(&self, steps: &[Step], reports: &mut [Option<StepReport>]) {
        loop {
            let mut changed = false;
            for (index, step) in steps.iter().enumerate() {
                if reports[index].is_some() {
                    continue;
                }
                let failed = step.depends_on.iter().find(|d| {
                    reports[step_index(steps, d)]
                        .as_ref()
                        .is_some_and(|r| r.status != StepOutcome::Ok)
                });
                if let Some(failed) = failed {
                    reports[index] = Some(self.not_started(
                        step,
                        StepOutcome::Skipped,
                        format!("step `{failed}`, which it depends on, did not succeed"),
                    ));
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// The step's call, as a task of its own.
    fn start(
        &self,
        index: usize,
        step: &Step,
        arguments: Value,
    ) -> impl Future<Output = Ended> + Send + 'static {
        let calls = self.calls.clone();
        let client = self.client.clone();
        let call = crate::calls::ToolCall {
            arguments,
            ..step.call.clone()
        };
        let side = ClientSide {
            watcher: self
                .watcher
                .clone()
                .map(|w| Arc::new(StepWatcher(w)) as Arc<dyn CallWatcher>),
            asker: match (&self.answer, step.asks) {
                (Some(answer), true) => Some(Arc::new(Settled(answer.clone())) as _),
                _ => None,
            },
            plan: Some(self.plan_id.clone()),
        };
        let cancel = self.cancel.clone();
        async move {
            let started = Instant::now();
            let result = calls.call_from(&client, &call, &cancel, side).await;
            Ended {
                index,
                duration: started.elapsed(),
                result,
            }
        }
    }

    fn report(
        &self,
        step: &Step,
        ended: Ended,
        results: &mut BTreeMap<String, Value>,
    ) -> StepReport {
        let duration_ms = ended.duration.as_secs_f64() * 1000.0;
        let mut report = StepReport {
            id: step.id.clone(),
            module: step.call.module.clone(),
            tool: step.call.tool.clone(),
            status: StepOutcome::Ok,
            duration_ms,
            result: None,
            error: None,
            position: step.position,
        };
        match ended.result {
            Ok(output) => {
                let value = result_value(output);
                report.result = match &step.select {
                    None => Some(value.clone()),
                    Some(pointer) => {
                        let part = value.pointer(pointer).cloned();
                        if part.is_none() {
                            report.error =
                                Some(format!("select {pointer:?} matched nothing in the result"));
                        }
                        part
                    }
                };
                results.insert(step.id.clone(), value);
            }
            Err(error) => {
                report.status = match error.outcome() {
                    Outcome::Cancelled => StepOutcome::Cancelled,
                    Outcome::Declined => StepOutcome::Declined,
                    _ => StepOutcome::Failed,
                };
                report.error = Some(error.to_string());
            }
        }
        report
    }

    /// A step whose arguments could not be completed from earlier results:
    /// it fails without running, and the refusal is audited.
    fn unrunnable(&self, step: &Step, problem: String) -> StepReport {
        let request = json!({
            "module": step.call.module,
            "tool": step.call.tool,
            "account": step.call.account,
            "arguments": step.call.arguments,
        });
        let refused = self.calls.refuse_malformed(&self.client, &request, problem);
        self.not_started(step, StepOutcome::Failed, refused.to_string())
    }

    fn not_started(&self, step: &Step, status: StepOutcome, why: String) -> StepReport {
        StepReport {
            id: step.id.clone(),
            module: step.call.module.clone(),
            tool: step.call.tool.clone(),
            status,
            duration_ms: 0.0,
            result: None,
            error: Some(why),
            position: step.position,
        }
    }

    /// Tell a client that asked how many steps have ended.
    fn told(&self, step: &Step, status: StepOutcome, reports: &[Option<StepReport>], total: usize) {
        let Some(watcher) = &self.watcher else {
            return;
        };
        let ended = reports.iter().filter(|r| r.is_some()).count();
        let status = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        watcher.progress(&ProgressReport {
            done: ended as f64,
            total: Some(total as f64),
            message: Some(format!(
                "step `{}` ({}.{}): {status}",
                step.id, step.call.module, step.call.tool
            )),
        });
    }
}

fn step_index(steps: &[Step], id: &str) -> usize {
    steps
        .iter()
        .position(|s| s.id == id)
        .expect("dependencies were checked")
}

/// A step's result as one JSON value, for references and the report: the
/// structured result when the tool gives one; else its text (read as JSON
/// when it is JSON); media and resources are described, not carried.
pub(crate) fn result_value(output: ToolOutput) -> Value {
    if let Some(structured) = output.structured {
        return structured;
    }
    let mut pieces: Vec<Value> = output
        .content
        .into_iter()
        .map(|piece| match piece {
            ContentItem::Text(text) | ContentItem::Json(text) => {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            }
            ContentItem::Image(media) | ContentItem::Audio(media) => json!({
                "mime_type": media.mime_type,
                "bytes": media.data.len(),
            }),
            ContentItem::ResourceLink(link) => json!({"uri": link.uri, "name": link.name}),
            ContentItem::Resource(resource) => json!({"uri": resource.uri}),
        })
        .collect();
    match pieces.len() {
        0 => Value::Null,
        1 => pieces.remove(0),
        _ => Value::Array(pieces),
    }
}

/// Keep the reports within `limit` bytes: the largest results give way to
/// a note saying how to ask for less.
fn fit(reports: &mut [StepReport], limit: usize) {
    let size = |r: &StepReport| r.result.as_ref().map_or(0, |v| v.to_string().len());
    loop {
        let total: usize = reports.iter().map(size).sum();
        if total <= limit {
            return;
        }
        let Some(largest) = reports.iter_mut().max_by_key(|r| size(r)) else {
            return;
        };
        let bytes = size(largest);
        if bytes == 0 {
            return;
        }
        largest.result = None;
        largest.error = Some(format!(
            "its result ({bytes} bytes) was left out: the plan's results may hold {limit} bytes; give the step a `select` pointer to return only the part needed"
        ));
    }
}
