//! Hostile modules: each attack fails its own call, and the host answers the
//! next call normally.

mod common;

use std::time::Duration;

use mcpist::calls::InvokeError;
use mcpist::runtime::{CallContext, CallError, ContentItem, Limits};
use serde_json::{Value, json};

use common::{Home, Served, fixture, test_limits};

async fn hostile(limits: Limits) -> (Home, Served) {
    let home = Home::new(limits);
    let catalog = home.serve(&[fixture("hostile")]).await;
    (home, catalog)
}

async fn call(catalog: &Served, tool: &str, arguments: Value) -> Result<String, InvokeError> {
    let output = catalog
        .invoke("hostile", tool, &arguments, &CallContext::default())
        .await?;
    Ok(output
        .content
        .into_iter()
        .map(|c| match c {
            ContentItem::Text(t) | ContentItem::Json(t) => t,
            other => panic!("expected text, got {other:?}"),
        })
        .collect())
}

/// The host still serves: a normal call right after the attack succeeds.
async fn still_serving(catalog: &Served) {
    assert_eq!(
        call(catalog, "echo", json!({"text": "still here"}))
            .await
            .unwrap(),
        "still here"
    );
}

#[tokio::test]
async fn an_endless_loop_is_stopped_by_the_cpu_limit() {
    let (_home, catalog) = hostile(test_limits()).await;
    let err = call(&catalog, "spin", json!({})).await.unwrap_err();
    assert_eq!(
        err,
        InvokeError::Call(CallError::CpuLimit {
            module: "hostile".into(),
            limit: Duration::from_millis(300)
        })
    );
    assert!(err.to_string().contains("ran out of CPU time"), "{err}");
    still_serving(&catalog).await;
}

#[tokio::test]
async fn allocating_past_the_memory_limit_fails_the_call() {
    let (_home, catalog) = hostile(test_limits()).await;
    let err = call(&catalog, "hog", json!({"mib": 100}))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        InvokeError::Call(CallError::MemoryLimit {
            module: "hostile".into(),
            limit_mib: 32
        })
    );
    // Within the limit the same tool works.
    assert_eq!(
        call(&catalog, "hog", json!({"mib": 8})).await.unwrap(),
        "allocated 8 MiB"
    );
    still_serving(&catalog).await;
}

#[tokio::test]
async fn a_panic_traps_only_its_call() {
    let (_home, catalog) = hostile(test_limits()).await;
    let err = call(&catalog, "trap", json!({})).await.unwrap_err();
    let InvokeError::Call(CallError::Trap { module, detail }) = &err else {
        panic!("expected a trap, got {err:?}");
    };
    assert_eq!(module, "hostile");
    assert!(detail.contains("unreachable"), "{detail}");
    // The module's last words (here Rust's panic message on stderr) say why.
    assert!(
        detail.contains("the module's last output:") && detail.contains("deliberate panic"),
        "{detail}"
    );
    still_serving(&catalog).await;
}

#[tokio::test]
async fn an_oversized_output_is_discarded() {
    let (_home, catalog) = hostile(test_limits()).await;
    let err = call(&catalog, "flood", json!({"mib": 10}))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        InvokeError::Call(CallError::OutputTooLarge {
            module: "hostile".into(),
            size: 10 << 20,
            limit: 1 << 20
        })
    );
    still_serving(&catalog).await;
}

#[tokio::test]
async fn the_wall_clock_limit_stops_a_call_that_waits() {
    let limits = Limits {
        wall_time: Duration::from_millis(500),
        ..test_limits()
    };
    let (_home, catalog) = hostile(limits).await;
    let err = call(&catalog, "sleep", json!({"ms": 10_000}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, InvokeError::Call(CallError::WallTimeout { .. })),
        "{err:?}"
    );
    still_serving(&catalog).await;
}

#[tokio::test]
async fn waiting_is_not_charged_as_cpu_time() {
    // Sleeping 600 ms under a 300 ms CPU budget succeeds: the guest is
    // blocked in the host, not running.
    let (_home, catalog) = hostile(test_limits()).await;
    assert_eq!(
        call(&catalog, "sleep", json!({"ms": 600})).await.unwrap(),
        "slept"
    );
}

#[tokio::test]
async fn every_call_gets_a_fresh_instance() {
    let (_home, catalog) = hostile(test_limits()).await;
    for _ in 0..3 {
        assert_eq!(call(&catalog, "counter", json!({})).await.unwrap(), "1");
    }
}

/// Instances come from a pool and a slot is reused by the next call: what a
/// call wrote to its memory must be gone. Each call looks for the previous
/// call's mark in the same place (the same page of linear memory) and
/// finds nothing.
#[tokio::test]
async fn memory_a_call_wrote_is_zero_for_the_next_call() {
    let (_home, catalog) = hostile(test_limits()).await;
    let first = call(&catalog, "remnants", json!({})).await.unwrap();
    assert!(first.starts_with("0 at page "), "{first}");
    for _ in 0..3 {
        assert_eq!(call(&catalog, "remnants", json!({})).await.unwrap(), first);
    }
}

/// More calls at once than the pool has slots: the extra calls wait for a
/// slot and then run; none fails for want of one.
#[tokio::test]
async fn calls_beyond_the_pool_size_wait_for_a_slot() {
    let limits = Limits {
        concurrent_calls: 2,
        ..test_limits()
    };
    let (_home, catalog) = hostile(limits).await;
    let catalog = std::sync::Arc::new(catalog);
    let calls = (0..6).map(|_| {
        let catalog = catalog.clone();
        tokio::spawn(async move { call(&catalog, "sleep", json!({"ms": 100})).await })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(call.await.unwrap().unwrap(), "slept");
    }
}

#[tokio::test]
async fn nothing_is_granted_no_env_args_files_or_sockets() {
    let (_home, catalog) = hostile(test_limits()).await;
    // The test process has HOME, PATH and cargo's variables; none may show.
    assert!(std::env::vars().next().is_some());
    let found: Value =
        serde_json::from_str(&call(&catalog, "snoop", json!({})).await.unwrap()).unwrap();
    assert_eq!(found["env"], json!([]));
    assert_eq!(found["args"], json!([]));
    assert!(found["read_passwd"]["err"].is_string(), "{found}");
    assert!(found["read_dot"]["err"].is_string(), "{found}");
    assert!(found["tcp"]["err"].is_string(), "{found}");
}

#[tokio::test]
async fn a_url_with_user_information_is_refused_without_echoing_it() {
    let (_home, catalog) = hostile(test_limits()).await;
    let err = call(
        &catalog,
        "fetch",
        json!({"url": "https://user:pw@example.com/x?token=1"}),
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("Denied"), "{message}");
    assert!(message.contains("user information"), "{message}");
    assert!(
        !message.contains("pw@") && !message.contains("token=1"),
        "{message}"
    );
}

#[tokio::test]
async fn guest_output_and_logs_do_not_fail_the_call() {
    let (_home, catalog) = hostile(test_limits()).await;
    assert_eq!(call(&catalog, "shout", json!({})).await.unwrap(), "shouted");
}

#[tokio::test]
async fn a_module_without_credentials_takes_no_account() {
    let (_home, catalog) = hostile(test_limits()).await;
    let context = CallContext {
        account: Some("work".into()),
    };
    let err = catalog
        .invoke("hostile", "echo", &json!({"text": "x"}), &context)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("uses no accounts"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_running_beside_normal_calls_do_not_disturb_them() {
    let (_home, catalog) = hostile(test_limits()).await;
    let catalog = std::sync::Arc::new(catalog);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let catalog = catalog.clone();
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                assert!(call(&catalog, "spin", json!({})).await.is_err());
            } else {
                let text = format!("call {i}");
                assert_eq!(
                    call(&catalog, "echo", json!({"text": text})).await.unwrap(),
                    text
                );
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}
