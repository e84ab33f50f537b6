//! The tools against a running `tests/e2e/upstreams/notion.py`, standing in
//! for the host: skipped unless `NOTION_UPSTREAM` names one, e.g.
//!
//! ```text
//! python3 tests/e2e/upstreams/notion.py --port 8765 \
//!     --tokens '{"secret_tok_a": "workspace-a", "secret_tok_b": "workspace-b"}' &
//! NOTION_UPSTREAM=127.0.0.1:8765 cargo test -p notion upstream
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;

use mcpist_plugin::web::Response;
use mcpist_plugin::{Content, ToolError};
use serde_json::{Value, json};

use crate::api::{self, Http};
use crate::dispatch;

/// A plain HTTP/1.1 client that adds the token, as the host would.
struct Upstream {
    address: String,
    token: &'static str,
    requests: usize,
}

impl Http for Upstream {
    fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ToolError> {
        self.requests += 1;
        let mut stream = TcpStream::connect(&self.address).expect("connect to the upstream");
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} /v1{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            self.token,
            body.len()
        );
        for (name, value) in api::headers() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header block");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Ok(Response {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        })
    }
}

fn upstream(token: &'static str) -> Option<Upstream> {
    let address = std::env::var("NOTION_UPSTREAM").ok()?;
    Some(Upstream {
        address,
        token,
        requests: 0,
    })
}

fn call(http: &mut Upstream, tool: &str, args: Value) -> Result<(String, Value), ToolError> {
    let out = dispatch(http, tool, &args.to_string())?;
    let text = out
        .content
        .iter()
        .map(|c| match c {
            Content::Text(t) | Content::Json(t) => t.as_str(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let structured = serde_json::from_str(out.structured.as_deref().unwrap()).unwrap();
    Ok((text, structured))
}

fn find(http: &mut Upstream, query: &str, kind: &str) -> String {
    let (_, found) = call(http, "search", json!({"query": query, "kind": kind})).unwrap();
    found["results"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no {kind} {query:?}"))
        .to_owned()
}

#[test]
fn upstream_end_to_end() {
    let Some(mut a) = upstream("secret_tok_a") else {
        eprintln!("NOTION_UPSTREAM not set; skipped");
        return;
    };
    let mut b = upstream("secret_tok_b").unwrap();

    // Each token sees its own workspace.
    let (_, hits) = call(&mut a, "search", json!({"query": "welcome"})).unwrap();
    assert_eq!(hits["results"][0]["title"], "Welcome to workspace-a");
    let (_, hits) = call(&mut b, "search", json!({"query": "welcome"})).unwrap();
    assert_eq!(hits["results"][0]["title"], "Welcome to workspace-b");

    // Search pagination.
    let (_, first) = call(&mut a, "search", json!({"page_size": 2})).unwrap();
    assert_eq!(first["has_more"], true);
    let (_, second) = call(
        &mut a,
        "search",
        json!({"page_size": 2, "start_cursor": first["next_cursor"]}),
    )
    .unwrap();
    assert_ne!(first["results"][0]["id"], second["results"][0]["id"]);

    // A page with every block type, nested toggles, a table.
    let alpha = find(&mut a, "Project Alpha", "page");
    let (text, summary) = call(
        &mut a,
        "get_page",
        json!({"page_id": alpha.replace('-', "")}),
    )
    .unwrap();
    println!("{text}");
    for want in [
        "# Project Alpha",
        "# Overview",
        "See Meeting Notes for decisions.",
        "- Import CSV files\n  - Up to 10 MB each",
        "1. Write the parser\n2. Write the mapper",
        "- [x] Review the design",
        "- [ ] Write the migration guide",
        "▸ Details\n  The importer runs in the background.",
        "  ```python\n  def parse(row):",
        "    Nested two levels deep.",
        "> Simple things should be simple.",
        "> ⏰ Deadline is June 30.",
        "```shell",
        "---",
        "| Metric | Target |\n| --- | --- |",
        "[bookmark] Notion API — https://developers.notion.com",
        "[image] Architecture diagram — https://images.example.com",
        "[child page] Meeting Notes (id ",
        "[child database] Tasks (id ",
        "End of the overview.",
    ] {
        assert!(text.contains(want), "missing {want:?}");
    }
    assert_eq!(summary["truncated"], false);

    // Block pagination: 250 blocks at 100 a request.
    let log = find(&mut a, "Engineering Log", "page");
    a.requests = 0;
    let (text, summary) = call(
        &mut a,
        "get_page",
        json!({"page_id": log, "max_blocks": 1000}),
    )
    .unwrap();
    assert_eq!(summary["block_count"], 250);
    assert_eq!(a.requests, 4);
    assert!(text.contains("Log entry 250"));
    let (text, summary) = call(
        &mut a,
        "get_page",
        json!({"page_id": log, "max_blocks": 120}),
    )
    .unwrap();
    assert_eq!(
        (
            summary["block_count"].as_u64(),
            summary["truncated"].as_bool()
        ),
        (Some(120), Some(true))
    );
    assert!(text.contains("Log entry 120") && !text.contains("Log entry 121"));

    // Database queries.
    let tasks = find(&mut a, "Tasks", "database");
    let (_, rows) = call(&mut a, "query_database", json!({
        "database_id": tasks,
        "filter": {"and": [{"property": "Status", "select": {"equals": "Done"}}, {"property": "Done", "checkbox": {"equals": true}}]},
        "sorts": [{"property": "Points", "direction": "descending"}],
    })).unwrap();
    let names: Vec<&str> = rows["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Write the parser", "Set up CI"]);
    assert_eq!(rows["results"][0]["properties"]["Tags"], json!(["backend"]));
    assert_eq!(
        rows["results"][0]["properties"]["Due"],
        json!({"start": "2024-02-01", "end": null})
    );
    assert_eq!(rows["results"][0]["properties"]["Owner"][0]["name"], "Ann");
    let Err(ToolError::Upstream(m)) = call(
        &mut a,
        "query_database",
        json!({"database_id": tasks, "filter": {"property": "Nope", "select": {"equals": "x"}}}),
    ) else {
        panic!()
    };
    assert!(
        m.starts_with("Notion answered HTTP 400 validation_error: Could not find property"),
        "{m}"
    );

    // The other workspace's database is not visible.
    let Err(ToolError::Upstream(m)) = call(&mut b, "query_database", json!({"database_id": tasks}))
    else {
        panic!()
    };
    assert!(
        m.contains("404 object_not_found") && m.contains("Connections"),
        "{m}"
    );

    // Create a row with long content, then read it back.
    let long = "word ".repeat(900);
    let content = format!(
        "Intro line\n\n{long}\n\n{}",
        (1..=120)
            .map(|i| format!("Para {i}"))
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    let (_, created) = call(
        &mut a,
        "create_page",
        json!({
            "parent_database_id": tasks, "title": "Plan the launch",
            "properties": {"Status": {"select": {"name": "Blocked"}}, "Points": {"number": 13}},
            "content": content,
        }),
    )
    .unwrap();
    assert_eq!(created["paragraph_blocks"], 122);
    let (text, summary) = call(&mut a, "get_page", json!({"page_id": created["id"]})).unwrap();
    assert_eq!(summary["block_count"], 122);
    assert_eq!(summary["properties"]["Status"], "Blocked");
    assert!(
        text.contains(&long.trim_end().to_owned()) && text.contains("Para 120"),
        "{text}"
    );
    let (_, rows) = call(&mut a, "query_database", json!({"database_id": tasks, "filter": {"property": "Status", "select": {"equals": "Blocked"}}})).unwrap();
    assert!(
        rows["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == created["id"])
    );

    // A page under a page, found by search.
    let (_, child) = call(
        &mut a,
        "create_page",
        json!({"parent_page_id": alpha, "title": "Retro notes", "content": "Went well."}),
    )
    .unwrap();
    assert_eq!(child["parent"], json!({"type": "page", "id": alpha}));
    let (_, hits) = call(&mut a, "search", json!({"query": "retro", "kind": "page"})).unwrap();
    assert!(
        hits["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == child["id"])
    );

    // A wrong title property is explained.
    let Err(ToolError::Upstream(m)) = call(
        &mut a,
        "create_page",
        json!({"parent_database_id": find(&mut b, "Reading", "database"), "title": "x"}),
    ) else {
        panic!()
    };
    assert!(m.contains("404"), "{m}");
    let Err(ToolError::Upstream(m)) = call(
        &mut a,
        "create_page",
        json!({"parent_database_id": tasks, "title": "x", "title_property": "Title"}),
    ) else {
        panic!()
    };
    assert!(m.contains("Title is not a property that exists"), "{m}");
}
