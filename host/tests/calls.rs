//! The one call path every front end uses: each way a call can end is
//! mapped to its outcome and recorded, and a call the client cancels really
//! stops: the guest, the request it has in flight, and its pool slot.

mod common;

use std::time::{Duration, Instant};

use mcpist::calls::{InvokeError, ToolCall};
use mcpist::registry::HostRule;
use mcpist::runtime::{CallError, Limits};
use secrecy::SecretString;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use common::{Home, Served, bundled, fixture, test_limits};

/// Run `call`, cancelling it after `after`; returns the result and how long
/// the call took.
async fn cancelled_after(
    served: &Served,
    call: &ToolCall,
    after: Duration,
) -> (Result<mcpist::runtime::ToolOutput, InvokeError>, Duration) {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let result = served.server.calls().call("stdio", call, &cancel).await;
    (result, started.elapsed())
}

fn assert_cancelled(result: &Result<mcpist::runtime::ToolOutput, InvokeError>) {
    match result {
        Err(InvokeError::Call(CallError::Cancelled { module })) => assert_eq!(module, "hostile"),
        other => panic!("expected a cancelled call, got {other:?}"),
    }
}

#[tokio::test]
async fn each_way_a_call_ends_is_mapped_to_its_outcome_and_recorded() {
    let home = Home::new(test_limits());
    let served = home.serve(&[bundled("text"), fixture("hostile")]).await;
    let never = CancellationToken::new();
    let calls = served.server.calls();
    let cases = [
        (ToolCall::new("text", "count", json!({"text": "a b"})), "ok"),
        (
            ToolCall::new("text", "json_query", json!({"json": "{", "pointer": ""})),
            "tool_error",
        ),
        (
            ToolCall::new("text", "count", json!({"txt": "a b"})),
            "refused",
        ),
        (ToolCall::new("nope", "count", json!({})), "refused"),
        (ToolCall::new("hostile", "trap", json!({})), "failed"),
        (ToolCall::new("hostile", "spin", json!({})), "failed"),
    ];
    for (call, outcome) in &cases {
        let result = calls.call("stdio", call, &never).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(error) => error.outcome().label(),
        };
        assert_eq!(label, *outcome, "{}.{}: {result:?}", call.module, call.tool);
    }
    let sleep = ToolCall::new("hostile", "sleep", json!({"ms": 2000}));
    let (result, took) = cancelled_after(&served, &sleep, Duration::from_millis(200)).await;
    assert_cancelled(&result);
    assert_eq!(result.unwrap_err().outcome().label(), "cancelled");

    let records = home.audit_records();
    let recorded: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = cases.iter().map(|(_, outcome)| *outcome).collect();
    expected.push("cancelled");
    assert_eq!(recorded, expected);
    // Each error's reason is recorded; the cancelled call's duration is the
    // time it really ran.
    assert!(records[0]["reason"].is_null());
    assert!(
        records[2]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid arguments for text.count"),
        "{}",
        records[2]
    );
    let cancelled = &records[6];
    assert!(
        cancelled["reason"]
            .as_str()
            .unwrap()
            .contains("cancelled by the client")
    );
    let duration = Duration::from_micros(cancelled["duration_us"].as_u64().unwrap());
    assert!(
        duration >= Duration::from_millis(200) && duration <= took,
        "{duration:?} (the call took {took:?})"
    );
}

#[tokio::test]
async fn a_cancelled_guest_is_stopped_at_once_and_hands_its_slot_to_the_next_call() {
    // One slot: the next call can only run if the cancelled one gave it back.
    let limits = Limits {
        cpu_time: Duration::from_secs(20),
        wall_time: Duration::from_secs(30),
        concurrent_calls: 1,
        ..test_limits()
    };
    let home = Home::new(limits);
    let served = home.serve(&[fixture("hostile")]).await;
    let spin = ToolCall::new("hostile", "spin", json!({}));
    let (result, took) = cancelled_after(&served, &spin, Duration::from_millis(100)).await;
    assert_cancelled(&result);
    // Stopped at the next epoch tick, not when the CPU limit ran out.
    assert!(took < Duration::from_secs(2), "took {took:?}");

    let echo = ToolCall::new("hostile", "echo", json!({"text": "next"}));
    let output = served
        .server
        .calls()
        .call("stdio", &echo, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        output.content,
        [mcpist::runtime::ContentItem::Text("next".into())]
    );
}

#[tokio::test]
async fn a_call_cancelled_while_waiting_for_a_slot_never_runs() {
    let limits = Limits {
        concurrent_calls: 1,
        ..test_limits()
    };
    let home = Home::new(limits);
    let served = std::sync::Arc::new(home.serve(&[fixture("hostile")]).await);
    let holder = served.clone();
    let busy = tokio::spawn(async move {
        let sleep = ToolCall::new("hostile", "sleep", json!({"ms": 800}));
        let calls = holder.server.calls();
        calls.call("stdio", &sleep, &CancellationToken::new()).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let counter = ToolCall::new("hostile", "counter", json!({}));
    let (result, took) = cancelled_after(&served, &counter, Duration::from_millis(100)).await;
    assert_cancelled(&result);
    assert!(
        took < Duration::from_millis(700),
        "it waited for the slot: {took:?}"
    );
    assert!(
        busy.await.unwrap().is_ok(),
        "the call holding the slot ran on"
    );
}

#[tokio::test]
async fn cancelling_a_call_closes_its_request_in_flight() {
    // An upstream that reads one request and never answers; it reports when
    // the connection goes away.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = vec![0; 4096];
        let mut request = Vec::new();
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buffer).await.unwrap();
            request.extend_from_slice(&buffer[..n]);
        }
        // Nothing is sent back; the next read ends when the peer closes.
        let eof = socket.read(&mut buffer).await.unwrap_or(0);
        let _ = closed_tx.send((eof, Instant::now()));
    });

    let home = Home::new(Limits::default());
    home.serve(&[fixture("prober")]).await;
    let allow_private = HostRule {
        allow_private: true,
        ..HostRule::default()
    };
    home.set_host_rule("prober", "https://other.test", allow_private);
    home.broker()
        .add("svc", "personal", Some(SecretString::from("t0k3n")), true)
        .await
        .unwrap();
    let upstreams = [(
        "https://other.test".to_owned(),
        format!("http://127.0.0.1:{port}"),
    )]
    .into_iter()
    .collect();
    let served = home.server(Default::default(), upstreams).await;

    let fetch = ToolCall::new(
        "prober",
        "fetch",
        json!({"url": "https://other.test/write"}),
    );
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let calls = served.server.calls().clone();
    let running = tokio::spawn(async move { calls.call("stdio", &fetch, &cancel).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled_at = Instant::now();
    trigger.cancel();
    let result = running.await.unwrap();
    let Err(InvokeError::Call(CallError::Cancelled { module })) = &result else {
        panic!("expected a cancelled call, got {result:?}");
    };
    assert_eq!(module, "prober");
    let (eof, closed_at) = tokio::time::timeout(Duration::from_secs(5), closed_rx)
        .await
        .expect("the upstream's connection was left open")
        .unwrap();
    assert_eq!(eof, 0, "the upstream saw the connection close");
    assert!(closed_at.duration_since(cancelled_at) < Duration::from_secs(2));

    // The record says what was sent before the call was stopped: one
    // request, never answered.
    let record = home.audit_records().pop().unwrap();
    assert_eq!(record["outcome"], "cancelled");
    assert_eq!(
        record["outbound"],
        json!([{"method": "GET", "origin": "https://other.test", "status": null}])
    );
}

#[tokio::test]
async fn one_client_with_many_slow_calls_cannot_make_another_wait() {
    let limits = Limits {
        concurrent_calls: 4,
        wall_time: Duration::from_secs(10),
        ..test_limits()
    };
    let home = Home::new(limits);
    let served = std::sync::Arc::new(home.serve(&[fixture("hostile")]).await);
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut greedy = Vec::new();
    for _ in 0..12 {
        let (served, finished) = (served.clone(), finished.clone());
        greedy.push(tokio::spawn(async move {
            // A concurrency-safe tool: what holds the victim back can only
            // be the pool.
            let sleep = ToolCall::new("hostile", "nap", json!({"ms": 1500}));
            let result = served
                .server
                .calls()
                .call("greedy", &sleep, &CancellationToken::new())
                .await;
            finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            result
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let echo = ToolCall::new("hostile", "echo", json!({"text": "my turn"}));
    let mine = served
        .server
        .calls()
        .call("victim", &echo, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        finished.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the victim's call waited for the greedy client's calls to end"
    );
    assert!(format!("{mine:?}").contains("my turn"));
    for call in greedy {
        call.await.unwrap().unwrap();
    }
}
