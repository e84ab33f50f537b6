//! The call service on its own, with the bundled modules: what a mask hides
//! looks exactly like what does not exist, and nothing runs while the audit
//! log cannot be written. (Outcomes and cancellation, with the hostile test
//! modules, are in `host/tests/calls.rs`.)

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{InvokeError, ToolCall};
use crate::catalog::LookupError;
use crate::config::{Config, Env};
use crate::policy::{MaskFile, Masks};
use crate::server::Server;

/// A server of the bundled modules (built by `cargo xtask build-plugins`)
/// pinned by the repository's lock, with its data in `home` and `masks`.
async fn bundled(home: &Path, masks: BTreeMap<String, MaskFile>) -> Server {
    let mut config = bundled_config(home);
    config.masks = Arc::new(Masks::compile(&masks, &BTreeMap::new()).unwrap());
    Server::builder(&config).build().await.unwrap()
}

fn bundled_config(home: &Path) -> Config {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    assert!(
        repo.join("plugins/text.wasm").is_file(),
        "the bundled modules are missing: run `cargo xtask build-plugins`"
    );
    let env = Env {
        mcpist_home: Some(home.to_owned()),
        ..Env::default()
    };
    let mut config = Config::load(None, &env).unwrap();
    config.plugins_dir = repo.join("plugins");
    config.lock_file = repo.join("registry.lock");
    config.compiled_cache = None;
    config
}

fn records(home: &Path) -> Vec<Value> {
    std::fs::read_to_string(home.join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_masked_tool_or_module_is_answered_exactly_like_one_that_does_not_exist() {
    let home = tempfile::tempdir().unwrap();
    let phone = MaskFile {
        modules: Some(vec!["text".into(), "time".into()]),
        deny_tools: vec!["text.hash".into()],
        ..MaskFile::default()
    };
    let server = bundled(home.path(), BTreeMap::from([("phone".into(), phone)])).await;
    let calls = server.calls();
    let never = CancellationToken::new();
    let never = &never;
    let answer = |module: &str, tool: &str| {
        let call = ToolCall::new(module, tool, json!({"text": "x"}));
        async move { calls.call("phone", &call, never).await.unwrap_err() }
    };

    // A tool hidden by the mask, and one that does not exist: the same
    // error, the same text but for the name asked for.
    let masked = answer("text", "hash").await;
    let missing = answer("text", "no_such_tool").await;
    assert!(
        matches!(masked, InvokeError::Lookup(LookupError::UnknownTool { .. })),
        "{masked}"
    );
    assert_eq!(
        masked.to_string().replace("`hash`", "`NAME`"),
        missing.to_string().replace("`no_such_tool`", "`NAME`")
    );
    assert!(!masked.to_string().contains("hash;"), "{masked}");
    // The same for a whole module.
    let masked = answer("github", "get_issue").await;
    let missing = answer("gitlab", "get_issue").await;
    assert_eq!(
        masked.to_string().replace("`github`", "`NAME`"),
        missing.to_string().replace("`gitlab`", "`NAME`")
    );
    // And the views agree: neither is listed, nor described.
    let catalog = calls.catalog("phone");
    let names: Vec<&str> = catalog.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["text", "time"]);
    assert!(!catalog[0].tools.iter().any(|t| t == "hash"));
    assert_eq!(
        calls
            .module_schemas("phone", &["github".into()])
            .unwrap_err()
            .to_string(),
        missing.to_string().replace("gitlab", "github")
    );
    assert!(!calls.tools("phone").iter().any(|t| t.name == "hash"));
    // The owner, unmasked, still runs it.
    let hash = ToolCall::new("text", "hash", json!({"text": "x"}));
    assert!(calls.call("stdio", &hash, never).await.is_ok());

    // Every refusal is recorded as one, the hidden tool like the missing
    // one: neither names a file that ran.
    let records = records(home.path());
    let refusals: Vec<(&str, &str, Option<&str>)> = records[..4]
        .iter()
        .map(|r| {
            (
                r["tool"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["module_sha256"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        refusals,
        [
            ("hash", "refused", None),
            ("no_such_tool", "refused", None),
            ("get_issue", "refused", None),
            ("get_issue", "refused", None),
        ]
    );
    assert_eq!(records[4]["outcome"], "ok");
}

#[tokio::test]
async fn calls_are_refused_with_nothing_run_while_the_audit_log_cannot_be_written() {
    let home = tempfile::tempdir().unwrap();
    let server = bundled(home.path(), BTreeMap::new()).await;
    let calls = server.calls();
    let never = CancellationToken::new();
    let count = ToolCall::new("text", "count", json!({"text": "one two"}));
    assert!(calls.call("stdio", &count, &never).await.is_ok());

    calls.audit.break_writes();
    // The call whose line cannot be written has run: it is answered.
    assert!(calls.call("stdio", &count, &never).await.is_ok());
    // Every later call is refused, saying why, until a line can be written.
    for _ in 0..2 {
        let refused = calls.call("stdio", &count, &never).await.unwrap_err();
        assert!(
            matches!(refused, InvokeError::AuditUnavailable { .. }),
            "{refused}"
        );
        assert!(
            refused
                .to_string()
                .contains("the audit log cannot be written"),
            "{refused}"
        );
    }
    assert_eq!(records(home.path()).len(), 1, "nothing more was written");

    calls.audit.repair_writes();
    // The first refusal that can be recorded is recorded, and lets calls
    // through again.
    let refused = calls.call("stdio", &count, &never).await.unwrap_err();
    assert!(matches!(refused, InvokeError::AuditUnavailable { .. }));
    assert!(calls.call("stdio", &count, &never).await.is_ok());
    let records = records(home.path());
    let outcomes: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "refused", "ok"]);
    assert!(records[1]["module_sha256"].is_null(), "nothing ran");
    assert!(
        crate::audit::verify(&home.path().join("audit.log"))
            .unwrap()
            .problems
            .is_empty()
    );
}

/// Answers consent questions from a script, and keeps them.
struct ScriptedPerson {
    answers: std::sync::Mutex<Vec<super::ConsentAnswer>>,
    asked: std::sync::Mutex<Vec<super::ConsentQuestion>>,
}

#[async_trait::async_trait]
impl super::ConsentAsker for ScriptedPerson {
    async fn ask(
        &self,
        question: &super::ConsentQuestion,
        _timeout: std::time::Duration,
    ) -> super::ConsentAnswer {
        self.asked.lock().unwrap().push(question.clone());
        let next = self.answers.lock().unwrap().pop();
        match next {
            Some(answer) => answer,
            // Out of answers: the person never answers.
            None => std::future::pending().await,
        }
    }
}

#[tokio::test]
async fn a_call_the_policy_holds_runs_only_with_the_persons_consent() {
    use super::{ClientSide, ConsentAnswer};
    use crate::policy::{ConsentFile, ConsentPolicy, Decision, consent::ConsentRuleFile};

    let home = tempfile::tempdir().unwrap();
    let rule = |tools: &str, decision| ConsentRuleFile {
        clients: None,
        tools: vec![tools.into()],
        decision,
    };
    let policy = ConsentPolicy::compile(&ConsentFile {
        rules: vec![
            rule("text.count", Decision::Ask),
            rule("text.hash", Decision::Deny),
        ],
        ..ConsentFile::default()
    })
    .unwrap();
    let mut config = bundled_config(home.path());
    config.consent = Arc::new(policy);
    let server = Server::builder(&config).build().await.unwrap();
    let calls = server.calls();
    let person = Arc::new(ScriptedPerson {
        // Popped from the end.
        answers: std::sync::Mutex::new(vec![
            ConsentAnswer::Deferred,
            ConsentAnswer::TimedOut,
            ConsentAnswer::Accepted,
            ConsentAnswer::Declined,
        ]),
        asked: std::sync::Mutex::default(),
    });
    let side = || ClientSide {
        watcher: None,
        asker: Some(person.clone()),
        plan: None,
    };
    let never = CancellationToken::new();
    let count = ToolCall::new("text", "count", json!({"text": "a b c"}));

    let declined = calls
        .call_from("desk", &count, &never, side())
        .await
        .unwrap_err();
    assert!(
        matches!(declined, InvokeError::Declined { .. }),
        "{declined}"
    );
    assert!(
        calls
            .call_from("desk", &count, &never, side())
            .await
            .is_ok()
    );
    let late = calls
        .call_from("desk", &count, &never, side())
        .await
        .unwrap_err();
    assert!(
        late.to_string().contains("did not answer within 120 s"),
        "{late}"
    );
    let deferred = calls
        .call_from("desk", &count, &never, side())
        .await
        .unwrap_err();
    assert!(
        matches!(deferred, InvokeError::ConsentAsked { .. }),
        "{deferred}"
    );
    // Asked what runs, as it will run.
    let asked = person.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 4);
    assert_eq!(
        (
            asked[0].client.as_str(),
            asked[0].module.as_str(),
            asked[0].tool.as_str()
        ),
        ("desk", "text", "count")
    );
    assert_eq!(asked[0].arguments, json!({"text": "a b c"}));

    // No way to ask: refused, with the rule that would allow it.
    let unasked = calls.call("desk", &count, &never).await.unwrap_err();
    let text = unasked.to_string();
    assert!(matches!(unasked, InvokeError::ConsentUnavailable { .. }));
    assert!(
        text.contains("[[consent.rules]]\nclients = [\"desk\"]\ntools = [\"text.count\"]\ndecision = \"allow\""),
        "{text}"
    );
    // Denied by the owner: nobody is asked.
    let hash = ToolCall::new("text", "hash", json!({"text": "x"}));
    let denied = calls
        .call_from("desk", &hash, &never, side())
        .await
        .unwrap_err();
    assert!(
        matches!(denied, InvokeError::ConsentDenied { .. }),
        "{denied}"
    );
    // Tools no rule names and not flagged destructive run unasked.
    let now = ToolCall::new("time", "now", json!({}));
    assert!(calls.call_from("desk", &now, &never, side()).await.is_ok());
    assert_eq!(person.asked.lock().unwrap().len(), 4);

    // A question nobody answers ends when the caller gives up.
    let cancel = CancellationToken::new();
    let asking = calls.call_from("desk", &count, &cancel, side());
    let (given_up, ()) = tokio::join!(asking, async { cancel.cancel() });
    assert!(matches!(
        given_up.unwrap_err(),
        InvokeError::Call(crate::runtime::CallError::Cancelled { .. })
    ));

    let recorded = records(home.path());
    let outcomes: Vec<&str> = recorded
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    // The call that ran with consent says so; the one no rule held does not.
    assert_eq!(recorded[1]["consent"], "accepted");
    assert!(recorded[6].get("consent").is_none());
    assert_eq!(
        outcomes,
        [
            "declined",
            "ok",
            "declined",
            "consent_asked",
            "refused",
            "refused",
            "ok",
            "cancelled"
        ]
    );
}
