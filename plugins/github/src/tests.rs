//! Native tests (`cargo test -p github --target <host triple>`): the pure
//! helpers, and every tool against the local GitHub stand-in
//! `tests/e2e/upstreams/github.py` over a plain TCP transport that plays the
//! host's part (it adds the account's token).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use mcpist_plugin::web::{Request, Response, Transport};
use mcpist_plugin::{Call, CallContext, ToolError};
use serde_json::{Value, json};

use crate::api;
use crate::shape;

// ---------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------

fn response(status: u16, body: &Value) -> Response {
    Response {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn upstream_message(result: Result<Response, ToolError>) -> String {
    match result {
        Err(ToolError::Upstream(message)) => message,
        Err(other) => panic!("expected an upstream error, got {other:?}"),
        Ok(r) => panic!("expected an error, got HTTP {}", r.status),
    }
}

#[test]
fn decodes_wrapped_base64_content() {
    // "hello, world\n" wrapped the way GitHub does it.
    match shape::decode_content("aGVsbG8s\nIHdvcmxk\nCg==\n") {
        shape::FileText::Text { text, truncated } => {
            assert_eq!(text, "hello, world\n");
            assert!(!truncated);
        }
        _ => panic!("expected text"),
    }
    assert!(matches!(
        shape::decode_content("iVBORw0KGgoAAAANSUhEUv/+/Q==\n"),
        shape::FileText::Binary
    ));
    assert!(matches!(
        shape::decode_content("not base64!"),
        shape::FileText::Invalid(_)
    ));
}

#[test]
fn truncates_on_character_boundaries() {
    assert_eq!(shape::truncate("héllo", 10), ("héllo".to_owned(), false));
    assert_eq!(shape::truncate("héllo", 2), ("hé…".to_owned(), true));
    assert_eq!(shape::truncate("", 0), (String::new(), false));
}

#[test]
fn trims_issues_and_marks_pull_requests() {
    let raw = json!({
        "id": 1, "node_id": "x", "number": 7, "title": "Fix it", "state": "open",
        "repository_url": "https://api.github.com/repos/o/r",
        "user": {"login": "bob", "id": 2}, "labels": [{"name": "bug", "color": "f00"}],
        "assignees": [{"login": "amy"}], "comments": 3, "created_at": "c", "updated_at": "u",
        "closed_at": null, "html_url": "https://github.com/o/r/pull/7", "body": "x".repeat(600),
        "pull_request": {"url": "...", "merged_at": null}, "draft": true
    });
    let short = shape::issue(&raw, Some(shape::LIST_BODY_CHARS));
    assert_eq!(short["is_pull_request"], true);
    assert_eq!(short["draft"], true);
    assert_eq!(short["user"], "bob");
    assert_eq!(short["labels"], json!(["bug"]));
    assert_eq!(short["assignees"], json!(["amy"]));
    assert_eq!(short["repository"], "o/r");
    assert_eq!(short["body_truncated"], true);
    assert_eq!(short["body"].as_str().unwrap().chars().count(), 501);
    assert!(short.get("node_id").is_none() && short.get("merged_at").is_none());
    let full = shape::issue(&raw, None);
    assert_eq!(full["body"].as_str().unwrap().len(), 600);
    assert!(full.get("body_truncated").is_none());

    let plain = shape::issue(&json!({"number": 1, "body": null, "user": null}), None);
    assert_eq!(plain["is_pull_request"], false);
    assert_eq!(plain["body"], Value::Null);
    assert_eq!(plain["labels"], json!([]));
}

#[test]
fn builds_paths_and_queries() {
    assert_eq!(
        api::repo_path("rust-lang", "cargo").unwrap(),
        "/repos/rust-lang/cargo"
    );
    assert!(matches!(
        api::repo_path("..", "x"),
        Err(ToolError::InvalidArguments(_))
    ));
    assert!(matches!(
        api::repo_path("a/b", "x"),
        Err(ToolError::InvalidArguments(_))
    ));
    assert_eq!(
        api::file_path("/docs//read me.md/").unwrap(),
        "docs/read%20me.md"
    );
    assert_eq!(api::file_path("").unwrap(), "");
    assert!(api::file_path("docs/../secret").is_err());
    let path = api::Query::new("/search/issues".into())
        .set("q", "repo:o/r is:open crash & burn")
        .opt("sort", None::<&str>)
        .set("per_page", 30)
        .build();
    assert_eq!(
        path,
        "/search/issues?q=repo%3Ao%2Fr%20is%3Aopen%20crash%20%26%20burn&per_page=30"
    );
}

#[test]
fn follows_links_only_on_the_api_origin() {
    assert_eq!(
        api::link_path("https://api.github.com/user/repos?page=2").as_deref(),
        Some("/user/repos?page=2")
    );
    assert_eq!(
        api::link_path("http://127.0.0.1:4000/repos/o/r/issues?page=3").as_deref(),
        Some("/repos/o/r/issues?page=3")
    );
    assert_eq!(api::link_path("https://evil.example").as_deref(), None);
}

#[test]
fn explains_error_answers() {
    let not_found = upstream_message(api::check(
        response(404, &json!({"message": "Not Found"})),
        "repository o/r",
    ));
    assert_eq!(
        not_found,
        "GitHub answered HTTP 404: repository o/r was not found, or this account has no access to it (GitHub answers 404 for private resources the token may not see)"
    );
    let invalid = upstream_message(api::check(
        response(
            422,
            &json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}]}),
        ),
        "repository o/r",
    ));
    assert_eq!(
        invalid,
        "GitHub answered HTTP 422: Validation Failed: Issue title is missing_field"
    );
    let mut limited = response(
        403,
        &json!({"message": "API rate limit exceeded for user ID 1."}),
    );
    limited
        .headers
        .push(("x-ratelimit-remaining".into(), "0".into()));
    limited
        .headers
        .push(("x-ratelimit-reset".into(), "1700000000".into()));
    let limited = upstream_message(api::check(limited, "x"));
    assert!(limited.contains("rate limit reached; the limit resets at Unix time 1700000000"));
    let other = upstream_message(api::check(response(500, &json!({"message": "boom"})), "x"));
    assert_eq!(other, "GitHub answered HTTP 500: boom");
}

#[test]
fn describes_itself_deterministically() {
    let a = crate::declaration().describe();
    let b = crate::declaration().describe();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(a.name, "github");
    assert_eq!(a.hosts, vec!["https://api.github.com".to_owned()]);
    let names: Vec<&str> = a.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "list_my_repositories",
            "get_repository",
            "list_issues",
            "search_issues",
            "get_issue",
            "create_issue",
            "comment_on_issue",
            "update_issue",
            "get_file_contents"
        ]
    );
    for tool in &a.tools {
        let input: Value = serde_json::from_str(&tool.input_schema).unwrap();
        assert_eq!(input["type"], "object", "{}", tool.name);
        let output: Value = serde_json::from_str(tool.output_schema.as_ref().unwrap()).unwrap();
        assert_eq!(output["type"], "object", "{}", tool.name);
    }
    assert!(
        !api::headers()
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
    );
}

// ---------------------------------------------------------------------------
// Against the local GitHub stand-in
// ---------------------------------------------------------------------------

struct Upstream {
    child: Child,
    port: u16,
}

impl Upstream {
    /// Start `tests/e2e/upstreams/github.py`, or `None` without python3.
    fn start(tokens: &Value) -> Option<Upstream> {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/upstreams/github.py");
        let mut child = match Command::new("python3")
            .arg(&script)
            .args(["--port", "0", "--tokens", &tokens.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                eprintln!("skipping: cannot run python3 ({e})");
                return None;
            }
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Some(Upstream { child, port })
    }

    fn account(&self, token: &str) -> Tcp {
        Tcp {
            port: self.port,
            token: token.to_owned(),
            sent: Vec::new(),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plain HTTP/1.1 to the stand-in, adding the token the way the host does.
struct Tcp {
    port: u16,
    token: String,
    /// Method and path of every request sent.
    sent: Vec<String>,
}

impl Transport for Tcp {
    fn send(&mut self, request: Request) -> Result<Response, ToolError> {
        let method = request.method();
        let path = request
            .url()
            .strip_prefix(api::API)
            .expect("only the API is called");
        self.sent.push(format!("{method} {path}"));
        let body = request.body_bytes().unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nAuthorization: token {}\r\nContent-Length: {}\r\n",
            self.port,
            self.token,
            body.len()
        );
        for (name, value) in request.headers() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.write_all(&request).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
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

fn run(http: &mut Tcp, tool: &str, args: Value) -> Result<Value, ToolError> {
    let context = CallContext { account: None };
    let mut call = Call {
        context: &context,
        http,
    };
    let result = crate::declaration()
        .run(tool, &args.to_string(), &mut call)
        .map(|out| serde_json::from_str::<Value>(out.structured.as_deref().unwrap()).unwrap());
    if let (Ok(value), Ok(path)) = (&result, std::env::var("GITHUB_RESULTS_DUMP")) {
        // One line per result, for checking them against the output schemas.
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(file, "{}", json!({"tool": tool, "result": value})).unwrap();
    }
    result
}

fn error_text(result: Result<Value, ToolError>) -> (String, String) {
    match result {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(ToolError::Upstream(m)) => ("upstream".into(), m),
        Err(ToolError::InvalidArguments(m)) => ("invalid".into(), m),
        Err(e) => ("other".into(), format!("{e:?}")),
    }
}

#[test]
fn every_tool_against_the_stand_in() {
    if let Ok(path) = std::env::var("GITHUB_SCHEMA_DUMP") {
        let schemas: Value = crate::declaration()
            .describe()
            .tools
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    serde_json::from_str::<Value>(t.output_schema.as_ref().unwrap()).unwrap(),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        std::fs::write(path, schemas.to_string()).unwrap();
    }
    let Some(upstream) = Upstream::start(&json!({"tok-a": "alice", "tok-b": "alice-work"})) else {
        return;
    };
    let mut alice = upstream.account("tok-a");

    // Repositories, over several pages.
    let repos = run(
        &mut alice,
        "list_my_repositories",
        json!({"per_page": 2, "limit": 5}),
    )
    .unwrap();
    let names: Vec<&str> = repos["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "acme/handbook",
            "alice/alice-repo-1",
            "alice/alice-repo-2",
            "alice/alice-repo-3",
            "alice/alice-repo-4"
        ]
    );
    assert_eq!(repos["has_more"], true);
    assert_eq!(repos["count"], 5);
    assert_eq!(
        alice.sent,
        [
            "GET /user/repos?per_page=2",
            "GET /user/repos?per_page=2&page=2",
            "GET /user/repos?per_page=2&page=3"
        ]
    );
    let all = run(&mut alice, "list_my_repositories", json!({"limit": 300})).unwrap();
    assert_eq!(all["count"], 7);
    assert_eq!(all["has_more"], false);
    let private = run(
        &mut alice,
        "list_my_repositories",
        json!({"visibility": "private", "affiliation": ["owner"], "sort": "full_name"}),
    )
    .unwrap();
    let names: Vec<&str> = private["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice/alice-repo-2", "alice/notes"]);

    // One repository; another account's is invisible.
    let notes = run(
        &mut alice,
        "get_repository",
        json!({"owner": "alice", "repo": "notes"}),
    )
    .unwrap();
    assert_eq!(notes["full_name"], "alice/notes");
    assert_eq!(notes["private"], true);
    assert_eq!(notes["owner"], "alice");
    assert_eq!(notes["default_branch"], "main");
    let (kind, message) = error_text(run(
        &mut alice,
        "get_repository",
        json!({"owner": "alice-work", "repo": "notes"}),
    ));
    assert_eq!(kind, "upstream");
    assert!(
        message
            .contains("repository alice-work/notes was not found, or this account has no access"),
        "{message}"
    );

    // Issues, with pull requests marked, over pages.
    alice.sent.clear();
    let issues = run(
        &mut alice,
        "list_issues",
        json!({"owner": "alice", "repo": "alice-repo-1", "state": "all", "per_page": 4, "limit": 300}),
    )
    .unwrap();
    assert_eq!(issues["count"], 15);
    assert_eq!(issues["has_more"], false);
    assert_eq!(alice.sent.len(), 4);
    let prs: Vec<u64> = issues["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["is_pull_request"] == true)
        .map(|i| i["number"].as_u64().unwrap())
        .collect();
    assert_eq!(prs, [3, 5]);
    let open = run(
        &mut alice,
        "list_issues",
        json!({"owner": "alice", "repo": "alice-repo-1", "include_pull_requests": false, "labels": "bug"}),
    )
    .unwrap();
    assert_eq!(open["count"], 1);
    assert_eq!(open["issues"][0]["number"], 1);
    assert_eq!(open["issues"][0]["labels"], json!(["bug"]));
    assert_eq!(open["issues"][0]["assignees"], json!(["alice"]));
    let limited = run(
        &mut alice,
        "list_issues",
        json!({"owner": "alice", "repo": "alice-repo-1", "limit": 3}),
    )
    .unwrap();
    assert_eq!(limited["count"], 3);
    assert_eq!(limited["has_more"], true);

    // Search.
    let found = run(
        &mut alice,
        "search_issues",
        json!({"q": "repo:alice/alice-repo-1 is:pr crash"}),
    )
    .unwrap();
    assert_eq!(found["total_count"], 1);
    assert_eq!(found["incomplete_results"], false);
    assert_eq!(found["items"][0]["number"], 3);
    assert_eq!(found["items"][0]["repository"], "alice/alice-repo-1");
    assert_eq!(found["items"][0]["is_pull_request"], true);
    let paged = run(
        &mut alice,
        "search_issues",
        json!({"q": "repo:alice/alice-repo-1", "per_page": 5, "page": 2, "sort": "created", "order": "asc"}),
    )
    .unwrap();
    assert_eq!(paged["total_count"], 15);
    assert_eq!(paged["has_more"], true);
    assert_eq!(paged["items"].as_array().unwrap().len(), 5);
    let (kind, message) = error_text(run(
        &mut alice,
        "search_issues",
        json!({"q": "repo:alice-work/notes"}),
    ));
    assert_eq!(kind, "upstream");
    assert!(message.contains("HTTP 422"), "{message}");

    // One issue with its comments.
    let issue = run(
        &mut alice,
        "get_issue",
        json!({"owner": "alice", "repo": "alice-repo-1", "number": 1}),
    )
    .unwrap();
    assert_eq!(
        issue["issue"]["title"],
        "Crash when the config file is missing"
    );
    assert_eq!(issue["comments"].as_array().unwrap().len(), 2);
    assert_eq!(issue["comments"][1]["user"], "octocat");
    assert_eq!(issue["comments_has_more"], false);
    let one = run(
        &mut alice,
        "get_issue",
        json!({"owner": "alice", "repo": "alice-repo-1", "number": 1, "comment_limit": 1}),
    )
    .unwrap();
    assert_eq!(one["comments"].as_array().unwrap().len(), 1);
    assert_eq!(one["comments_has_more"], true);
    let (_, message) = error_text(run(
        &mut alice,
        "get_issue",
        json!({"owner": "alice", "repo": "alice-repo-1", "number": 99}),
    ));
    assert!(
        message.contains("issue #99 in alice/alice-repo-1 was not found"),
        "{message}"
    );

    // Writing.
    let created = run(
        &mut alice,
        "create_issue",
        json!({"owner": "alice", "repo": "notes", "title": "From the test", "body": "Hello", "labels": ["bug"], "assignees": ["alice"]}),
    )
    .unwrap();
    assert_eq!(created["number"], 2);
    assert_eq!(created["user"], "alice");
    assert_eq!(created["labels"], json!(["bug"]));
    let comment = run(
        &mut alice,
        "comment_on_issue",
        json!({"owner": "alice", "repo": "notes", "number": 2, "body": "A comment"}),
    )
    .unwrap();
    assert_eq!(comment["user"], "alice");
    assert_eq!(comment["body"], "A comment");
    let seen = run(
        &mut alice,
        "get_issue",
        json!({"owner": "alice", "repo": "notes", "number": 2}),
    )
    .unwrap();
    assert_eq!(seen["issue"]["title"], "From the test");
    assert_eq!(seen["issue"]["comments"], 1);
    assert_eq!(seen["comments"][0]["body"], "A comment");
    let closed = run(
        &mut alice,
        "update_issue",
        json!({"owner": "alice", "repo": "notes", "number": 2, "state": "closed", "state_reason": "not_planned", "labels": []}),
    )
    .unwrap();
    assert_eq!(
        (&closed["state"], &closed["state_reason"], &closed["labels"]),
        (&json!("closed"), &json!("not_planned"), &json!([]))
    );
    assert_eq!(closed["title"], "From the test", "what is not given stays");
    let reopened = run(
        &mut alice,
        "update_issue",
        json!({"owner": "alice", "repo": "notes", "number": 2, "state": "open", "title": "Renamed"}),
    )
    .unwrap();
    assert_eq!(
        (
            &reopened["state"],
            &reopened["state_reason"],
            &reopened["title"]
        ),
        (&json!("open"), &json!("reopened"), &json!("Renamed"))
    );
    for (arguments, expected) in [
        (json!({"number": 2}), "nothing to change"),
        (
            json!({"number": 2, "state_reason": "completed"}),
            "state_reason goes with state",
        ),
    ] {
        let mut arguments = arguments;
        arguments["owner"] = json!("alice");
        arguments["repo"] = json!("notes");
        let (kind, message) = error_text(run(&mut alice, "update_issue", arguments));
        assert_eq!(kind, "invalid");
        assert!(message.contains(expected), "{message}");
    }
    let (_, message) = error_text(run(
        &mut alice,
        "update_issue",
        json!({"owner": "alice", "repo": "notes", "number": 99, "state": "closed"}),
    ));
    assert!(
        message.contains("issue #99 in alice/notes was not found"),
        "{message}"
    );
    let (kind, _) = error_text(run(
        &mut alice,
        "create_issue",
        json!({"owner": "alice", "repo": "notes", "title": "  "}),
    ));
    assert_eq!(kind, "invalid");
    let invalid = upstream_message(api::post(
        &mut alice,
        "/repos/alice/notes/issues",
        &json!({"body": "no title"}),
        "repository alice/notes",
    ));
    assert_eq!(
        invalid,
        "GitHub answered HTTP 422: Validation Failed: Issue title is missing_field"
    );

    // Files.
    let readme = run(
        &mut alice,
        "get_file_contents",
        json!({"owner": "alice", "repo": "notes", "path": "README.md"}),
    )
    .unwrap();
    assert_eq!(readme["type"], "file");
    assert_eq!(readme["binary"], false);
    assert_eq!(
        readme["text"],
        "# Notes of alice\n\nThese notes belong to alice.\nSee docs/guide.md.\n"
    );
    let dev = run(
        &mut alice,
        "get_file_contents",
        json!({"owner": "alice", "repo": "notes", "path": "/README.md", "ref": "dev"}),
    )
    .unwrap();
    assert!(dev["text"].as_str().unwrap().contains("dev branch"));
    assert_eq!(dev["ref"], "dev");
    let docs = run(
        &mut alice,
        "get_file_contents",
        json!({"owner": "alice", "repo": "notes", "path": "docs/"}),
    )
    .unwrap();
    assert_eq!(docs["type"], "dir");
    assert_eq!(
        docs["entries"],
        json!([
            {"name": "guide.md", "path": "docs/guide.md", "type": "file", "size": 52},
            {"name": "images", "path": "docs/images", "type": "dir", "size": 0}
        ])
    );
    let root = run(
        &mut alice,
        "get_file_contents",
        json!({"owner": "alice", "repo": "notes"}),
    )
    .unwrap();
    assert_eq!(root["entries"].as_array().unwrap().len(), 3);
    let image = run(
        &mut alice,
        "get_file_contents",
        json!({"owner": "alice", "repo": "notes", "path": "image.png"}),
    )
    .unwrap();
    assert_eq!(image["binary"], true);
    assert!(image.get("text").is_none());
    assert!(image["note"].as_str().unwrap().contains("91 bytes"));
    let (_, message) = error_text(run(
        &mut alice,
        "get_file_contents",
        json!({"owner": "alice", "repo": "notes", "path": "nope.md"}),
    ));
    assert!(
        message.contains("path \"nope.md\" in repository alice/notes was not found"),
        "{message}"
    );
    let (kind, _) = error_text(run(
        &mut alice,
        "get_file_contents",
        json!({"owner": "alice", "repo": "notes", "path": "docs/../../x"}),
    ));
    assert_eq!(kind, "invalid");

    // The other account sees its own data, and a bad token is explained.
    let mut work = upstream.account("tok-b");
    let notes = run(
        &mut work,
        "get_file_contents",
        json!({"owner": "alice-work", "repo": "notes", "path": "README.md"}),
    )
    .unwrap();
    assert!(
        notes["text"]
            .as_str()
            .unwrap()
            .contains("belong to alice-work")
    );
    let mut nobody = upstream.account("tok-unknown");
    let (kind, message) = error_text(run(&mut nobody, "list_my_repositories", json!({})));
    assert_eq!(kind, "upstream");
    assert!(
        message.starts_with("GitHub answered HTTP 401: Bad credentials. The token"),
        "{message}"
    );
}
