//! Tool tests against a scripted Notion.

use mcpist_plugin::web::ScriptedApi;
use mcpist_plugin::{Call, CallContext, CallOutput, Content, ToolError};
use serde_json::{Value, json};

use crate::api;

/// The scripted API the tools are tested against.
type Fake = ScriptedApi;

fn fake(script: impl FnMut(&str, &str, Option<&Value>) -> (u16, Value) + 'static) -> Fake {
    ScriptedApi::new(api::API, script)
}

/// What the host's `call` does, over the scripted API.
fn dispatch(http: &mut Fake, tool: &str, args: &str) -> Result<CallOutput, ToolError> {
    let context = CallContext { account: None };
    let mut call = Call {
        context: &context,
        http,
    };
    crate::declaration().run(tool, args, &mut call)
}

const PAGE: &str = "1429989f-e8ac-4eff-bc8f-57f56486db54";

fn rt(s: &str) -> Value {
    json!([{"type": "text", "text": {"content": s, "link": null}, "plain_text": s, "href": null}])
}

fn para(id: &str, s: &str) -> Value {
    json!({"object": "block", "id": id, "type": "paragraph", "paragraph": {"rich_text": rt(s)}, "has_children": false})
}

fn structured(out: &mcpist_plugin::CallOutput) -> Value {
    serde_json::from_str(out.structured.as_deref().unwrap()).unwrap()
}

fn text(out: &mcpist_plugin::CallOutput) -> String {
    match &out.content[0] {
        Content::Text(t) | Content::Json(t) => t.clone(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[test]
fn describe_is_deterministic_and_binds_the_token_to_notion() {
    let a = crate::declaration().describe();
    let b = crate::declaration().describe();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(a.hosts, vec!["https://api.notion.com"]);
    assert_eq!(a.credentials.len(), 1);
    for tool in &a.tools {
        let _: Value = serde_json::from_str(&tool.input_schema).unwrap();
        let _: Value = serde_json::from_str(tool.output_schema.as_deref().unwrap()).unwrap();
    }
}

#[test]
fn search_sends_filter_and_trims_results() {
    let mut http = fake(|method, path, body| {
        assert_eq!((method, path), ("POST", "/search"));
        assert_eq!(
            body.unwrap(),
            &json!({"query": "plan", "filter": {"property": "object", "value": "database"}, "page_size": 5, "start_cursor": "abc"})
        );
        (
            200,
            json!({"object": "list", "results": [
            {"object": "database", "id": "d1", "title": rt("Tasks"), "url": "https://www.notion.so/d1", "last_edited_time": "2024-01-01T00:00:00.000Z", "parent": {"type": "page_id", "page_id": "p1"}, "properties": {}},
            {"object": "page", "id": "p2", "properties": {"title": {"id": "title", "type": "title", "title": rt("Plan")}}, "url": "u", "last_edited_time": "t", "parent": {"type": "workspace", "workspace": true}}
        ], "next_cursor": "zz", "has_more": true}),
        )
    });
    let out = dispatch(
        &mut http,
        "search",
        r#"{"query": " plan ", "kind": "database", "page_size": 5, "start_cursor": "abc"}"#,
    )
    .unwrap();
    assert_eq!(
        structured(&out),
        json!({"results": [
        {"id": "d1", "object": "database", "title": "Tasks", "url": "https://www.notion.so/d1", "last_edited_time": "2024-01-01T00:00:00.000Z", "parent": {"type": "page", "id": "p1"}},
        {"id": "p2", "object": "page", "title": "Plan", "url": "u", "last_edited_time": "t", "parent": {"type": "workspace"}}
    ], "has_more": true, "next_cursor": "zz"})
    );
}

#[test]
fn get_page_follows_pagination_and_nesting() {
    let mut http = fake(|_, path, _| match path {
        p if p == format!("/pages/{PAGE}") => (
            200,
            json!({"object": "page", "id": PAGE, "url": "https://www.notion.so/x", "last_edited_time": "t",
                "parent": {"type": "database_id", "database_id": "d"},
                "properties": {"Name": {"type": "title", "title": rt("Hello")}, "Done": {"type": "checkbox", "checkbox": true}}}),
        ),
        p if p == format!("/blocks/{PAGE}/children?page_size=100") => (
            200,
            json!({"results": [
                para("a", "one"),
                {"object": "block", "id": "t", "type": "toggle", "toggle": {"rich_text": rt("More")}, "has_children": true},
                {"object": "block", "id": "c", "type": "child_page", "child_page": {"title": "Sub"}, "has_children": true},
            ], "has_more": true, "next_cursor": "n2"}),
        ),
        "/blocks/t/children?page_size=97" => (
            200,
            json!({"results": [para("h", "hidden")], "has_more": false, "next_cursor": null}),
        ),
        p if p == format!("/blocks/{PAGE}/children?page_size=96&start_cursor=n2") => (
            200,
            json!({"results": [para("z", "last")], "has_more": false, "next_cursor": null}),
        ),
        other => panic!("unexpected {other}"),
    });
    let out = dispatch(
        &mut http,
        "get_page",
        &format!(
            r#"{{"page_id": "{}", "max_blocks": 100}}"#,
            PAGE.replace('-', "")
        ),
    )
    .unwrap();
    let t = text(&out);
    assert_eq!(
        t,
        format!(
            "# Hello\nid: {PAGE} · url: https://www.notion.so/x · last edited: t\n\nProperties:\n- Done: yes\n\none\n\n▸ More\n  hidden\n\n[child page] Sub (id c)\n\nlast"
        )
    );
    let s = structured(&out);
    assert_eq!(s["block_count"], 5);
    assert_eq!(s["truncated"], false);
    assert_eq!(s["properties"], json!({"Done": true}));
    assert_eq!(http.sent.len(), 4);
}

#[test]
fn get_page_stops_at_the_block_budget_and_depth() {
    let mut http = fake(|_, path, _| {
        if path.starts_with("/pages/") {
            return (
                200,
                json!({"object": "page", "id": PAGE, "properties": {"title": {"type": "title", "title": rt("Long")}}}),
            );
        }
        assert_eq!(path, format!("/blocks/{PAGE}/children?page_size=2"));
        (
            200,
            json!({"results": [
            para("a", "one"),
            {"object": "block", "id": "t", "type": "toggle", "toggle": {"rich_text": rt("More")}, "has_children": true},
        ], "has_more": true, "next_cursor": "n2"}),
        )
    });
    let out = dispatch(
        &mut http,
        "get_page",
        &format!(r#"{{"page_id": "{PAGE}", "max_blocks": 2}}"#),
    )
    .unwrap();
    assert!(
        text(&out).contains("[nested blocks not read (block or request budget used up)]"),
        "{}",
        text(&out)
    );
    assert!(text(&out).ends_with(
        "raise max_blocks or max_depth, or open child pages and nested blocks separately]"
    ));
    assert_eq!(structured(&out)["truncated"], true);
}

#[test]
fn errors_say_what_notion_said() {
    let mut http = fake(|_, _, _| {
        (
            404,
            json!({"object": "error", "status": 404, "code": "object_not_found", "message": "Could not find page with ID: x. Make sure the relevant pages and databases are shared with your integration."}),
        )
    });
    let Err(ToolError::Upstream(m)) = dispatch(
        &mut http,
        "get_page",
        &format!(r#"{{"page_id": "{PAGE}"}}"#),
    ) else {
        panic!()
    };
    assert!(
        m.starts_with("Notion answered HTTP 404 object_not_found: Could not find page"),
        "{m}"
    );
    let Err(ToolError::InvalidArguments(m)) =
        dispatch(&mut http, "get_page", r#"{"page_id": "nope"}"#)
    else {
        panic!()
    };
    assert!(m.contains("not a Notion id"));
    assert!(http.sent.len() == 1);
}

#[test]
fn query_database_passes_filter_and_sorts_and_flattens_rows() {
    let mut http = fake(|method, path, body| {
        assert_eq!(
            (method, path),
            ("POST", format!("/databases/{PAGE}/query").as_str())
        );
        assert_eq!(
            body.unwrap(),
            &json!({"filter": {"property": "Done", "checkbox": {"equals": true}}, "sorts": [{"property": "Points", "direction": "descending"}], "page_size": 25})
        );
        (
            200,
            json!({"results": [{"object": "page", "id": "r1", "url": "u", "last_edited_time": "t", "properties": {
            "Name": {"type": "title", "title": rt("Row")}, "Points": {"type": "number", "number": 5}}}], "has_more": false, "next_cursor": null}),
        )
    });
    let out = dispatch(&mut http, "query_database", &format!(r#"{{"database_id": "{PAGE}", "filter": {{"property": "Done", "checkbox": {{"equals": true}}}}, "sorts": [{{"property": "Points", "direction": "descending"}}]}}"#)).unwrap();
    assert_eq!(
        structured(&out),
        json!({"database_id": PAGE, "results": [{"id": "r1", "url": "u", "title": "Row", "last_edited_time": "t", "properties": {"Name": "Row", "Points": 5}}], "has_more": false, "next_cursor": null})
    );
}

#[test]
fn create_page_in_a_database_splits_content_and_appends_the_rest() {
    let long = "x".repeat(4500);
    let content = format!(
        "first\nline two\n\n\n{long}\n\n{}",
        (0..150)
            .map(|i| format!("p{i}"))
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    let mut http = fake(|method, path, body| {
        let body = body.unwrap();
        match (method, path) {
            ("POST", "/pages") => {
                assert_eq!(body["parent"], json!({"database_id": PAGE}));
                assert_eq!(
                    body["properties"]["Task"],
                    json!({"title": [{"type": "text", "text": {"content": "T"}}]})
                );
                assert_eq!(body["properties"]["Done"], json!({"checkbox": false}));
                let children = body["children"].as_array().unwrap();
                assert_eq!(children.len(), 100);
                assert_eq!(
                    children[0]["paragraph"]["rich_text"][0]["text"]["content"],
                    "first\nline two"
                );
                let pieces = children[1]["paragraph"]["rich_text"].as_array().unwrap();
                assert_eq!(
                    pieces
                        .iter()
                        .map(|p| p["text"]["content"].as_str().unwrap().len())
                        .collect::<Vec<_>>(),
                    vec![2000, 2000, 500]
                );
                (
                    200,
                    json!({"object": "page", "id": "new", "url": "https://www.notion.so/new", "created_time": "c",
                    "parent": {"type": "database_id", "database_id": PAGE}, "properties": {"Task": {"type": "title", "title": rt("T")}}}),
                )
            }
            ("PATCH", "/blocks/new/children") => {
                assert_eq!(body["children"].as_array().unwrap().len(), 52);
                (200, json!({"object": "list", "results": []}))
            }
            other => panic!("unexpected {other:?}"),
        }
    });
    let args = json!({"parent_database_id": PAGE, "title": "T", "title_property": "Task", "properties": {"Done": {"checkbox": false}}, "content": content});
    let out = dispatch(&mut http, "create_page", &args.to_string()).unwrap();
    assert_eq!(
        structured(&out),
        json!({"id": "new", "url": "https://www.notion.so/new", "title": "T", "parent": {"type": "database", "id": PAGE}, "created_time": "c", "paragraph_blocks": 152})
    );
}

#[test]
fn create_page_checks_its_parent() {
    let mut http = fake(|_, _, _| panic!("no request expected"));
    for args in [
        json!({"title": "T"}),
        json!({"title": "T", "parent_page_id": PAGE, "parent_database_id": PAGE}),
        json!({"title": "T", "parent_page_id": PAGE, "properties": {"Done": {"checkbox": true}}}),
        json!({"title": "T", "parent_database_id": PAGE, "properties": {"Name": {"title": []}}}),
        json!({"title": "T", "parent_page_id": "12"}),
    ] {
        assert!(
            matches!(
                dispatch(&mut http, "create_page", &args.to_string()),
                Err(ToolError::InvalidArguments(_))
            ),
            "{args}"
        );
    }
}

#[test]
fn create_page_under_a_page_uses_the_title_property() {
    let mut http = fake(|_, _, body| {
        let body = body.unwrap();
        assert_eq!(
            body,
            &json!({"parent": {"page_id": PAGE}, "properties": {"title": {"title": [{"type": "text", "text": {"content": "Notes"}}]}}})
        );
        (
            200,
            json!({"object": "page", "id": "n", "url": "u", "parent": {"type": "page_id", "page_id": PAGE}, "properties": {"title": {"type": "title", "title": rt("Notes")}}}),
        )
    });
    let out = dispatch(
        &mut http,
        "create_page",
        &json!({"parent_page_id": PAGE, "title": "Notes"}).to_string(),
    )
    .unwrap();
    assert_eq!(structured(&out)["paragraph_blocks"], 0);
}
