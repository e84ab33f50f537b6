//! Server-side plans (`run_plan`): a model sends a whole workflow once, as
//! a graph of tool calls, and the server runs it — independent steps side by
//! side, each step fed with earlier steps' results — instead of the model
//! making one round trip per call.
//!
//! A plan is checked whole before anything runs ([`check`]): every problem
//! is listed at once (ids, dependencies, cycles, tools the client may not
//! see, references, arguments as far as they are known). Then [`run`] runs
//! it: each step is an ordinary call through the one call path (masks,
//! consent, argument validation after substitution, audit, the
//! concurrency-safe rule), recorded with the plan's id.

mod run;

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use crate::calls::{CallService, ToolCall};

pub use run::{PlanRun, PlanSide, StepOutcome, StepReport, run};
pub(crate) use run::{StepWatcher, result_value};

/// Most steps one plan may have.
pub const MAX_STEPS: usize = 64;
/// Most steps running at once; the sandbox pool bounds it further.
pub const MAX_PARALLEL: usize = 16;
/// Steps running at once when the plan does not say.
pub const DEFAULT_PARALLEL: usize = 4;

/// A plan as the model sent it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// The steps, in any order.
    pub steps: Vec<StepRequest>,
    /// What a failed step does to the steps that do not depend on it.
    #[serde(default)]
    pub on_error: OnError,
    /// Steps running at once.
    pub max_parallel: Option<usize>,
}

/// One step as the model sent it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    /// The step's name, for references and the result.
    pub id: String,
    /// The module.
    pub module: String,
    /// The tool.
    pub tool: String,
    /// The tool's arguments; a value `{"$from": ID, "pointer": "/a/0"}`
    /// stands for part of step ID's result.
    #[serde(default = "empty_object")]
    pub arguments: Value,
    /// The account to act for; the service's default when absent.
    pub account: Option<String>,
    /// Steps that must succeed first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Return only this part (a JSON Pointer) of the step's result.
    pub select: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// What a failed step does to the rest of the plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The steps that do not depend on it go on.
    #[default]
    Continue,
    /// Nothing more starts, and the running steps are cancelled.
    Stop,
}

/// A reference in a step's arguments to part of an earlier step's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Where in the arguments it stands (a JSON Pointer).
    pub at: String,
    /// The step whose result it takes.
    pub from: String,
    /// Which part of that result (a JSON Pointer; empty for all of it).
    pub pointer: String,
}

/// A step that passed the checks.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its id.
    pub id: String,
    /// The call, with references still in its arguments.
    pub call: ToolCall,
    /// The steps it waits for.
    pub depends_on: Vec<String>,
    /// Its references to earlier results.
    pub references: Vec<Reference>,
    /// The part of its result to return.
    pub select: Option<String>,
    /// The consent policy asks the person before it runs.
    pub asks: bool,
    /// Its tool is flagged destructive.
    pub destructive: bool,
    /// Where it stood in the plan as sent.
    pub position: usize,
}

/// A plan that passed the checks, its steps in an order where each comes
/// after those it depends on.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The steps, dependencies first.
    pub steps: Vec<Step>,
    /// What a failed step does.
    pub on_error: OnError,
    /// Steps running at once.
    pub max_parallel: usize,
}

/// Check `request` whole for `client`: every problem is listed, so that the
/// model can fix them all in one go. Nothing has run when this fails.
pub fn check(calls: &CallService, client: &str, request: PlanRequest) -> Result<Plan, Vec<String>> {
    let mut problems = Vec::new();
    if request.steps.is_empty() {
        problems.push("a plan needs at least one step".to_owned());
    }
    if request.steps.len() > MAX_STEPS {
        problems.push(format!(
            "a plan has at most {MAX_STEPS} steps, this one {}; split it",
            request.steps.len()
        ));
    }
    let max_parallel = request.max_parallel.unwrap_or(DEFAULT_PARALLEL);
    if !(1..=MAX_PARALLEL).contains(&max_parallel) {
        problems.push(format!(
            "max_parallel must be from 1 to {MAX_PARALLEL}, not {max_parallel}"
        ));
    }
    let mut ids: BTreeSet<String> = BTreeSet::new();
    for step in &request.steps {
        if !valid_id(&step.id) {
            problems.push(format!(
                "step id {:?} is not 1 to 64 ASCII letters, digits, `_` or `-`",
                step.id
            ));
        }
        if !ids.insert(step.id.clone()) {
            problems.push(format!(
                "two steps are named `{}`; ids must be unique",
                step.id
            ));
        }
    }
    let graph: Vec<(String, Vec<String>)> = request
        .steps
        .iter()
        .map(|s| (s.id.clone(), s.depends_on.clone()))
        .collect();
    let cycle = never_ready(&graph);
    if !cycle.is_empty() {
        problems.push(format!(
            "steps {} can never run: they depend on each other in a cycle, or on steps that do",
            cycle
                .iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut steps = Vec::new();
    for (position, step) in request.steps.into_iter().enumerate() {
        let id = step.id.clone();
        let mut problem = |text: String| problems.push(format!("step `{id}`: {text}"));
        for dependency in &step.depends_on {
            if dependency == &step.id {
                problem("it depends on itself".to_owned());
            } else if !ids.contains(dependency) {
                problem(format!(
                    "depends on `{dependency}`, which is not a step of the plan"
                ));
            }
        }
        if let Some(select) = &step.select
            && !is_pointer(select)
        {
            problem(format!(
                "select {select:?} is not a JSON Pointer (empty, or starting with `/`)"
            ));
        }
        if !step.arguments.is_object() {
            problem("arguments must be an object".to_owned());
            continue;
        }
        let mut references = Vec::new();
        collect_references(&step.arguments, &mut String::new(), &mut references);
        for reference in &references {
            if !step.depends_on.contains(&reference.from) {
                problem(format!(
                    "arguments at {:?} take step `{}`'s result, so `{}` must be in depends_on",
                    display_pointer(&reference.at),
                    reference.from,
                    reference.from
                ));
            }
            if !is_pointer(&reference.pointer) {
                problem(format!(
                    "pointer {:?} (at {:?}) is not a JSON Pointer (empty, or starting with `/`)",
                    reference.pointer,
                    display_pointer(&reference.at)
                ));
            }
        }
        let call = ToolCall {
            module: step.module,
            tool: step.tool,
            arguments: step.arguments,
            account: step.account,
        };
        let unknown: Vec<String> = references.iter().map(|r| r.at.clone()).collect();
        match calls.check_step(client, &call, &unknown) {
            Ok(facts) => steps.push(Step {
                id: step.id,
                call,
                depends_on: step.depends_on,
                references,
                select: step.select,
                asks: facts.asks,
                destructive: facts.destructive,
                position,
            }),
            Err(error) => problem(error.to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Plan {
        steps: in_dependency_order(steps),
        on_error: request.on_error,
        max_parallel,
    })
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_pointer(text: &str) -> bool {
    text.is_empty() || text.starts_with('/')
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

/// Whether `value` is a reference: an object of `$from` (a string) and,
/// optionally, `pointer` (a string), nothing else.
fn as_reference(value: &Value) -> Option<(String, String)> {
    let object = value.as_object()?;
    let from = object.get("$from")?.as_str()?;
    let pointer = match object.get("pointer") {
        None => "",
        Some(Value::String(pointer)) => pointer,
        Some(_) => return None,
    };
    let known = object.keys().all(|k| k == "$from" || k == "pointer");
    known.then(|| (from.to_owned(), pointer.to_owned()))
}

/// Every reference in `value`, with where it stands.
fn collect_references(value: &Value, at: &mut String, found: &mut Vec<Reference>) {
    if let Some((from, pointer)) = as_reference(value) {
        found.push(Reference {
            at: at.clone(),
            from,
            pointer,
        });
        return;
    }
    let len = at.len();
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                at.push('/');
                at.push_str(&key.replace('~', "~0").replace('/', "~1"));
                collect_references(item, at, found);
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                at.push('/');
                at.push_str(&index.to_string());
                collect_references(item, at, found);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

/// `value` with each reference replaced by the part of the result it names,
/// or what is missing.
pub(crate) fn substitute(
    value: &Value,
    results: &BTreeMap<String, Value>,
) -> Result<Value, String> {
    if let Some((from, pointer)) = as_reference(value) {
        let result = results
            .get(&from)
            .ok_or_else(|| format!("step `{from}` has no result"))?;
        return result.pointer(&pointer).cloned().ok_or_else(|| {
            format!(
                "step `{from}`'s result has nothing at {:?}",
                display_pointer(&pointer)
            )
        });
    }
    Ok(match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, results)?)))
                .collect::<Result<_, String>>()?,
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute(v, results))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The ids of the steps that can never start (Kahn's algorithm): those in
/// a cycle, and those depending on them. A dependency on an id that is not
/// a step is reported apart, and counts as met here.
fn never_ready(graph: &[(String, Vec<String>)]) -> Vec<String> {
    let known: BTreeSet<&str> = graph.iter().map(|(id, _)| id.as_str()).collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    loop {
        let ready: Vec<&str> = graph
            .iter()
            .filter(|(id, _)| !done.contains(id.as_str()))
            .filter(|(_, deps)| {
                deps.iter()
                    .all(|d| done.contains(d.as_str()) || !known.contains(d.as_str()))
            })
            .map(|(id, _)| id.as_str())
            .collect();
        if ready.is_empty() {
            break;
        }
        done.extend(ready);
    }
    let waiting: BTreeSet<&str> = known.difference(&done).copied().collect();
    waiting.into_iter().map(str::to_owned).collect()
}

/// The steps of an acyclic plan, ordered so that each comes after its
/// dependencies; among steps ready together, by id.
fn in_dependency_order(steps: Vec<Step>) -> Vec<Step> {
    let mut waiting: BTreeMap<String, Step> =
        steps.into_iter().map(|s| (s.id.clone(), s)).collect();
    let mut ordered = Vec::with_capacity(waiting.len());
    let mut done = BTreeSet::new();
    while !waiting.is_empty() {
        let ready: Vec<String> = waiting
            .values()
            .filter(|s| s.depends_on.iter().all(|d| done.contains(d)))
            .map(|s| s.id.clone())
            .collect();
        assert!(!ready.is_empty(), "a checked plan has no cycle");
        for id in ready {
            let step = waiting.remove(&id).expect("listed as waiting");
            done.insert(id);
            ordered.push(step);
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_found_with_where_they_stand() {
        let arguments = json!({
            "title": {"$from": "issues", "pointer": "/items/0/title"},
            "labels": ["x", {"$from": "labels"}],
            "a/b": {"$from": "c", "pointer": ""},
            "not": {"$from": "x", "extra": 1}
        });
        let mut found = Vec::new();
        collect_references(&arguments, &mut String::new(), &mut found);
        let found: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|r| (r.at.as_str(), r.from.as_str(), r.pointer.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("/a~1b", "c", ""),
                ("/labels/1", "labels", ""),
                ("/title", "issues", "/items/0/title"),
            ]
        );
    }

    #[test]
    fn substitution_takes_the_named_part_or_says_what_is_missing() {
        let results = BTreeMap::from([("issues".to_owned(), json!({"items": [{"number": 7}]}))]);
        let arguments = json!({"n": {"$from": "issues", "pointer": "/items/0/number"}, "k": [1]});
        assert_eq!(
            substitute(&arguments, &results).unwrap(),
            json!({"n": 7, "k": [1]})
        );
        let missing = json!({"n": {"$from": "issues", "pointer": "/items/3/number"}});
        assert_eq!(
            substitute(&missing, &results).unwrap_err(),
            "step `issues`'s result has nothing at \"/items/3/number\""
        );
    }

    fn step(id: &str, depends_on: &[&str]) -> Step {
        Step {
            id: id.into(),
            call: ToolCall::new("text", "count", json!({})),
            depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
            references: Vec::new(),
            select: None,
            asks: false,
            destructive: false,
            position: 0,
        }
    }

    #[test]
    fn steps_are_ordered_after_their_dependencies_and_cycles_are_named() {
        let ordered = in_dependency_order(vec![
            step("c", &["b"]),
            step("b", &["a"]),
            step("a", &[]),
            step("d", &[]),
        ]);
        let ids: Vec<&str> = ordered.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "d", "b", "c"]);
        let graph = |edges: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
            edges
                .iter()
                .map(|(id, deps)| {
                    (
                        (*id).to_owned(),
                        deps.iter().map(|d| (*d).to_owned()).collect(),
                    )
                })
                .collect()
        };
        let stuck = never_ready(&graph(&[
            ("a", &[]),
            ("b", &["c"]),
            ("c", &["b"]),
            ("d", &["c"]),
            ("e", &["nowhere"]),
        ]));
        assert_eq!(stuck, ["b", "c", "d"]);
    }
}
