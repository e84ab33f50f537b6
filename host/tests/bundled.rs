//! The bundled `text` and `time` modules, called through the host as a
//! client would call them.

mod common;

use mcpist::calls::InvokeError;
use mcpist::catalog::LookupError;
use mcpist::runtime::{CallContext, Limits};
use serde_json::{Value, json};

use common::{Home, Served, bundled};

async fn catalog() -> (Home, Served) {
    let home = Home::new(Limits::default());
    let catalog = home.serve(&[bundled("text"), bundled("time")]).await;
    (home, catalog)
}

async fn ok(catalog: &Served, module: &str, tool: &str, arguments: Value) -> Value {
    catalog
        .invoke(module, tool, &arguments, &CallContext::default())
        .await
        .unwrap_or_else(|e| panic!("{module}.{tool}: {e}"))
        .structured
        .expect("bundled tools return structured results")
}

async fn err(catalog: &Served, module: &str, tool: &str, arguments: Value) -> String {
    catalog
        .invoke(module, tool, &arguments, &CallContext::default())
        .await
        .expect_err("the call should fail")
        .to_string()
}

#[tokio::test]
async fn text_hashes() {
    let (_h, c) = catalog().await;
    let digest = |v: Value| v["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        digest(ok(&c, "text", "hash", json!({"text": ""})).await),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        digest(
            ok(
                &c,
                "text",
                "hash",
                json!({"text": "abc", "algorithm": "md5"})
            )
            .await
        ),
        "900150983cd24fb0d6963f7d28e17f72"
    );
    assert_eq!(
        digest(
            ok(
                &c,
                "text",
                "hash",
                json!({"text": "abc", "algorithm": "sha1", "encoding": "base64"})
            )
            .await
        ),
        "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="
    );
    let sha512 = digest(
        ok(
            &c,
            "text",
            "hash",
            json!({"text": "abc", "algorithm": "sha512"}),
        )
        .await,
    );
    assert!(sha512.starts_with("ddaf35a193617aba") && sha512.len() == 128);
    // The schema's enum is enforced by the host before the module runs.
    assert!(
        err(
            &c,
            "text",
            "hash",
            json!({"text": "a", "algorithm": "crc32"})
        )
        .await
        .contains("arguments/algorithm")
    );
}

#[tokio::test]
async fn text_base64_round_trips() {
    let (_h, c) = catalog().await;
    let encoded = ok(&c, "text", "base64_encode", json!({"text": "<<???>>"})).await;
    assert_eq!(encoded, json!({"data": "PDw/Pz8+Pg=="}));
    let url = ok(
        &c,
        "text",
        "base64_encode",
        json!({"text": "<<???>>", "alphabet": "url_safe", "padding": false}),
    )
    .await;
    assert_eq!(url, json!({"data": "PDw_Pz8-Pg"}));
    let decoded = ok(
        &c,
        "text",
        "base64_decode",
        json!({"data": "PDw_Pz8-Pg", "alphabet": "url_safe"}),
    )
    .await;
    assert_eq!(decoded, json!({"text": "<<???>>", "bytes": 7}));
    let accented = ok(&c, "text", "base64_decode", json!({"data": "aMOpbGxv"})).await;
    assert_eq!(accented, json!({"text": "héllo", "bytes": 6}));
    assert!(
        err(&c, "text", "base64_decode", json!({"data": "!!"}))
            .await
            .contains("not valid base64")
    );
    assert!(
        err(&c, "text", "base64_decode", json!({"data": "/w=="}))
            .await
            .contains("not UTF-8")
    );
}

#[tokio::test]
async fn text_json_query() {
    let (_h, c) = catalog().await;
    let doc = r#"{"items": [{"name": "a/b", "n": 1}], "x~y": true}"#;
    assert_eq!(
        ok(
            &c,
            "text",
            "json_query",
            json!({"json": doc, "pointer": "/items/0/name"})
        )
        .await,
        json!({"found": true, "value": "a/b"})
    );
    assert_eq!(
        ok(
            &c,
            "text",
            "json_query",
            json!({"json": doc, "pointer": "/x~0y"})
        )
        .await,
        json!({"found": true, "value": true})
    );
    assert_eq!(
        ok(
            &c,
            "text",
            "json_query",
            json!({"json": doc, "pointer": "/nope"})
        )
        .await,
        json!({"found": false})
    );
    assert!(
        err(
            &c,
            "text",
            "json_query",
            json!({"json": "{", "pointer": ""})
        )
        .await
        .contains("not valid JSON")
    );
    assert!(
        err(
            &c,
            "text",
            "json_query",
            json!({"json": doc, "pointer": "items"})
        )
        .await
        .contains("start with '/'")
    );
}

#[tokio::test]
async fn text_counts_and_regex() {
    let (_h, c) = catalog().await;
    assert_eq!(
        ok(
            &c,
            "text",
            "count",
            json!({"text": "naïve café\nsecond line\n"})
        )
        .await,
        json!({"bytes": 25, "chars": 23, "words": 4, "lines": 2})
    );
    let found = ok(
        &c,
        "text",
        "regex_match",
        json!({"text": "a1 B22 c333", "pattern": r"(?P<letter>[a-z])(\d+)", "case_insensitive": true, "limit": 2}),
    )
    .await;
    assert_eq!(found["matched"], json!(true));
    assert_eq!(found["truncated"], json!(true));
    assert_eq!(
        found["matches"][1],
        json!({"text": "B22", "start": 3, "end": 6, "groups": ["B", "22"], "named": {"letter": "B"}})
    );
    assert_eq!(
        ok(
            &c,
            "text",
            "regex_match",
            json!({"text": "abc", "pattern": "z"})
        )
        .await,
        json!({"matched": false, "truncated": false, "matches": []})
    );
}

#[tokio::test]
async fn time_now_convert_and_format() {
    let (_h, c) = catalog().await;
    let now = ok(&c, "time", "now", json!({"zone": "Asia/Tokyo"})).await;
    assert_eq!(now["zone"], "Asia/Tokyo");
    assert_eq!(now["offset"], "+09");
    let host_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now["unix_seconds"].as_i64().unwrap() - host_now).abs() < 60,
        "{now}"
    );

    let paris = ok(&c, "time", "convert", json!({"datetime": "2026-07-14T12:00", "zone": "America/New_York", "to_zone": "Europe/Paris"})).await;
    assert_eq!(paris["datetime"], "2026-07-14T18:00:00+02:00[Europe/Paris]");
    let formatted = ok(&c, "time", "format", json!({"datetime": "2026-07-14T18:00:00+02:00[Europe/Paris]", "format": "%A %d %B %Y, %H:%M %Z"})).await;
    assert_eq!(
        formatted,
        json!({"text": "Tuesday 14 July 2026, 18:00 CEST"})
    );
    assert!(
        err(&c, "time", "now", json!({"zone": "Mars/Olympus"}))
            .await
            .contains("unknown time zone")
    );
}

#[tokio::test]
async fn time_parse_add_and_difference() {
    let (_h, c) = catalog().await;
    let parsed = ok(
        &c,
        "time",
        "parse",
        json!({"text": "22/11/2026 09:15", "format": "%d/%m/%Y %H:%M", "zone": "Europe/London"}),
    )
    .await;
    assert_eq!(
        parsed["datetime"],
        "2026-11-22T09:15:00+00:00[Europe/London]"
    );
    // One day across the end of DST keeps the wall-clock time.
    let next = ok(
        &c,
        "time",
        "add",
        json!({"datetime": "2026-10-24T12:00:00+02:00[Europe/Berlin]", "duration": "1 day"}),
    )
    .await;
    assert_eq!(next["datetime"], "2026-10-25T12:00:00+01:00[Europe/Berlin]");
    let back = ok(
        &c,
        "time",
        "add",
        json!({"datetime": "2026-03-31", "duration": "-P1M"}),
    )
    .await;
    assert_eq!(back["date"], "2026-02-28");
    let diff = ok(
        &c,
        "time",
        "difference",
        json!({"start": "2026-01-01", "end": "2026-03-15T06:00", "largest": "months"}),
    )
    .await;
    assert_eq!(diff["iso8601"], "P2M14DT6H");
    assert_eq!(diff["total_seconds"], json!(6_328_800.0));
    assert!(
        err(
            &c,
            "time",
            "add",
            json!({"datetime": "2026-01-01", "duration": "soon"})
        )
        .await
        .contains("unrecognised duration")
    );
}

#[tokio::test]
async fn unknown_tools_and_arguments_are_refused_before_the_module_runs() {
    let (_h, c) = catalog().await;
    let e = c
        .invoke("time", "tomorrow", &json!({}), &CallContext::default())
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        InvokeError::Lookup(LookupError::UnknownTool { .. })
    ));
    assert!(
        e.to_string()
            .contains("its tools: now, convert, format, parse, add, difference"),
        "{e}"
    );
    let e = err(
        &c,
        "time",
        "now",
        json!({"zone": "UTC", "conversation_history": []}),
    )
    .await;
    assert_eq!(
        e,
        "invalid arguments for time.now: unknown argument 'conversation_history' (this tool accepts: zone)"
    );
}
