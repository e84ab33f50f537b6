//! `run_script` below the protocol: a script's calls take the call path of
//! the client that sent it, the engine is held to a call's limits, and an
//! engine that is not the approved one never runs.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use mcpist::egress::HttpSettings;
use mcpist::registry::lock::EnginePin;
use mcpist::runtime::CallError;
use mcpist::script::{self, DEFAULT_ENGINE_FILE, ScriptError, ScriptSide};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use common::{Home, Served, bundled, repo, test_limits};

/// The bundled engine in `home`'s plugins folder, approved in its lock
/// with `sha256` (the real one unless a test says otherwise).
fn add_engine(home: &Home, sha256: Option<&str>) {
    let built = repo().join("plugins").join(DEFAULT_ENGINE_FILE);
    assert!(
        built.is_file(),
        "{} is missing: run `cargo xtask build-plugins` (or `cargo xtask test`)",
        built.display()
    );
    let bytes = std::fs::read(&built).unwrap();
    let target = home.plugins().join(DEFAULT_ENGINE_FILE);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, &bytes).unwrap();
    let mut lock = home.lock();
    lock.pin_script_engine(EnginePin {
        file: DEFAULT_ENGINE_FILE.to_owned(),
        sha256: sha256.map_or_else(|| mcpist::registry::sha256_hex(&bytes), str::to_owned),
    });
    lock.save(&home.lock_path()).unwrap();
}

async fn run(served: &Served, source: &str) -> script::ScriptRun {
    let calls = Arc::clone(served.server.calls());
    script::run(
        calls,
        "stdio",
        source,
        &CancellationToken::new(),
        ScriptSide::default(),
    )
    .await
}

#[tokio::test]
async fn a_script_calls_tools_through_the_call_path_and_each_call_is_audited() {
    let home = Home::new(test_limits());
    let _ = home.serve(&[bundled("text")]).await;
    add_engine(&home, None);
    let served = home.server(HttpSettings::default(), BTreeMap::new()).await;
    let ran = run(
        &served,
        r#"
        const [a, b] = await Promise.all([
          tools.text.count({text: "one two"}),
          call("text", "count", {text: "three"}),
        ]);
        let refused;
        try { await tools.text.count({txt: 1}); } catch (e) { refused = e.message; }
        console.log("words", a.words + b.words);
        return {words: a.words + b.words, refused};
        "#,
    )
    .await;
    let value = ran.outcome.expect("the script ran");
    assert_eq!(value["words"], json!(3));
    assert!(
        value["refused"]
            .as_str()
            .unwrap()
            .starts_with("invalid arguments for text.count"),
        "{value}"
    );
    assert_eq!(ran.console, ["words 3"]);
    assert_eq!(ran.calls.len(), 3);
    let records = home.audit_records();
    let mine: Vec<_> = records
        .iter()
        .filter(|r| r["plan"] == json!(ran.id))
        .map(|r| r["outcome"].as_str().unwrap().to_owned())
        .collect();
    let mut outcomes = mine.clone();
    outcomes.sort();
    assert_eq!(outcomes, ["ok", "ok", "refused"]);
}

#[tokio::test]
async fn an_engine_that_is_not_the_approved_one_never_runs() {
    let home = Home::new(test_limits());
    let _ = home.serve(&[bundled("text")]).await;
    add_engine(&home, Some(&"0".repeat(64)));
    let served = home.server(HttpSettings::default(), BTreeMap::new()).await;
    let ran = run(&served, "return 1;").await;
    match ran.outcome {
        Err(ScriptError::Engine(message)) => assert!(
            message.contains("is not the one approved in registry.lock")
                && message.contains("mcpist plugins approve-engine"),
            "{message}"
        ),
        other => panic!("expected the engine to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn a_script_is_held_to_the_cpu_limit_of_a_call() {
    let home = Home::new(test_limits());
    let _ = home.serve(&[bundled("text")]).await;
    add_engine(&home, None);
    let served = home.server(HttpSettings::default(), BTreeMap::new()).await;
    let ran = run(&served, "while (true) {}").await;
    assert!(
        matches!(
            ran.outcome,
            Err(ScriptError::Call(CallError::CpuLimit { .. }))
        ),
        "{:?}",
        ran.outcome
    );
    let again = run(&served, "return 'next';").await;
    assert_eq!(again.outcome.unwrap(), json!("next"));
}
