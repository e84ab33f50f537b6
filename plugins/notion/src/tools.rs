//! The tools. Each arguments type is also its tool's input schema (see
//! `crate::declaration`): the host checks those bounds before a call runs,
//! and the code here checks only what a schema cannot say. Requests go
//! through the call's transport, so that tests can answer for Notion.

use mcpist_plugin::{Call, CallOutput, Content, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::api::{self, Hint, MAX_REQUESTS};
use crate::props;
use crate::render::{self, Reader};

/// Notion's limit on one rich text object's `text.content`, in UTF-16 code
/// units (JavaScript string length).
pub const MAX_TEXT: usize = 2000;
/// Notion's limit on the rich text objects of one block.
const MAX_RICH_TEXT_ITEMS: usize = 100;
/// Notion's limit on the blocks of one create or append request.
const MAX_BLOCKS_PER_REQUEST: usize = 100;
/// Kept well under Notion's 500 KB request limit (and the host's 1 MiB).
const MAX_BATCH_BYTES: usize = 300_000;

fn cursor_of(list: &Value) -> (Value, Value) {
    let has_more = list
        .get("has_more")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let next = list
        .get("next_cursor")
        .and_then(Value::as_str)
        .filter(|_| has_more)
        .map_or(Value::Null, |c| c.into());
    (has_more.into(), next)
}

fn results(list: &Value) -> &[Value] {
    list.get("results")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A page or database: its id (32 hex digits, with or without dashes) or
/// its Notion URL, parsed by `api::parse_id`.
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Id(#[schemars(length(min = 32, max = 300))] String);

/// `next_cursor` of a previous answer.
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Cursor(#[schemars(length(max = 200))] String);

// ---------------------------------------------------------------- search

#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Page,
    Database,
}

#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    LastEditedDescending,
    LastEditedAscending,
}

fn twenty() -> u32 {
    20
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Words to match in titles. Omit to list everything shared.
    #[schemars(length(max = 1000))]
    query: Option<String>,
    /// Only pages, or only databases. Default both.
    kind: Option<Kind>,
    /// Order by last edit time instead of relevance.
    sort: Option<Order>,
    /// Results per page.
    #[serde(default = "twenty")]
    #[schemars(range(min = 1, max = 100))]
    page_size: u32,
    /// next_cursor from a previous answer, to get the next page of results.
    start_cursor: Option<Cursor>,
}

pub fn search(args: SearchArgs, call: &mut Call) -> Result<Value, ToolError> {
    let mut body = Map::new();
    if let Some(query) = args
        .query
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
    {
        body.insert("query".into(), query.into());
    }
    if let Some(kind) = args.kind {
        let value = match kind {
            Kind::Page => "page",
            Kind::Database => "database",
        };
        body.insert(
            "filter".into(),
            json!({"property": "object", "value": value}),
        );
    }
    if let Some(order) = args.sort {
        let direction = match order {
            Order::LastEditedDescending => "descending",
            Order::LastEditedAscending => "ascending",
        };
        body.insert(
            "sort".into(),
            json!({"direction": direction, "timestamp": "last_edited_time"}),
        );
    }
    body.insert("page_size".into(), args.page_size.into());
    if let Some(Cursor(c)) = &args.start_cursor {
        body.insert("start_cursor".into(), api::cursor(c)?.into());
    }
    let list = api::post(call.http, "/search", &Value::Object(body))?;
    let (has_more, next_cursor) = cursor_of(&list);
    let results: Vec<Value> = results(&list).iter().map(props::summary).collect();
    Ok(json!({"results": results, "has_more": has_more, "next_cursor": next_cursor}))
}

// ---------------------------------------------------------------- get_page

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetPageArgs {
    /// The page's id (32 hex digits, with or without dashes) or its Notion URL. A database row is a page too.
    page_id: Id,
    /// Stop after reading this many blocks (nested ones included).
    #[serde(default = "default_max_blocks")]
    #[schemars(range(min = 1, max = 1000))]
    max_blocks: u32,
    /// How many levels of nested blocks (toggle contents, sub-list items) to read; 1 reads only the page's own blocks.
    #[serde(default = "default_max_depth")]
    #[schemars(range(min = 1, max = 10))]
    max_depth: u32,
}

fn default_max_blocks() -> u32 {
    300
}

fn default_max_depth() -> u32 {
    4
}

pub fn get_page(args: GetPageArgs, call: &mut Call) -> Result<CallOutput, ToolError> {
    let http = &mut *call.http;
    let id = api::parse_id("page_id", &args.page_id.0)?;
    let page = api::get(http, &format!("/pages/{}", mcpist_plugin::web::encode(&id)))?;
    let page_id = page
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or(&id)
        .to_owned();
    let title = props::title(&page);
    let url = page.get("url").cloned().unwrap_or(Value::Null);
    let edited = page.get("last_edited_time").cloned().unwrap_or(Value::Null);

    let mut reader = Reader {
        http,
        max_blocks: args.max_blocks as usize,
        max_depth: args.max_depth as usize,
        max_requests: MAX_REQUESTS - 1,
        blocks: 0,
        requests: 0,
        truncated: false,
    };
    let nodes = reader.children(&page_id, 1)?;

    // Properties other than the title (database rows have them).
    let mut properties = props::flatten_all(&page);
    let title_key = page
        .get("properties")
        .and_then(Value::as_object)
        .and_then(|p| {
            p.iter()
                .find(|(_, v)| v.get("type").and_then(Value::as_str) == Some("title"))
                .map(|(k, _)| k.clone())
        });
    if let Some(key) = title_key {
        properties.remove(&key);
    }

    let mut lines = vec![format!(
        "# {}",
        if title.is_empty() { "Untitled" } else { &title }
    )];
    let mut facts = vec![format!("id: {page_id}")];
    if let Some(url) = url.as_str() {
        facts.push(format!("url: {url}"));
    }
    if let Some(edited) = edited.as_str() {
        facts.push(format!("last edited: {edited}"));
    }
    if page
        .get("in_trash")
        .or_else(|| page.get("archived"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        facts.push("in trash".into());
    }
    lines.push(facts.join(" · "));
    if !properties.is_empty() {
        lines.push(String::new());
        lines.push("Properties:".into());
        for (name, value) in &properties {
            lines.push(format!("- {name}: {}", props::display(value)));
        }
    }
    lines.push(String::new());
    let body_start = lines.len();
    render::render(&nodes, 0, &mut lines);
    if lines.len() == body_start {
        lines.push("(this page has no content)".into());
    }
    if reader.truncated {
        lines.push(String::new());
        lines.push(format!(
            "[truncated: read {} blocks in {} requests; raise max_blocks or max_depth, or open child pages and nested blocks separately]",
            reader.blocks,
            reader.requests + 1
        ));
    }
    let summary = json!({
        "id": page_id,
        "title": title,
        "url": url,
        "last_edited_time": edited,
        "parent": props::parent(&page),
        "properties": properties,
        "block_count": reader.blocks,
        "truncated": reader.truncated,
    });
    Ok(CallOutput {
        content: vec![Content::Text(lines.join("\n"))],
        structured: Some(summary.to_string()),
    })
}

// ---------------------------------------------------------------- query_database

fn twenty_five() -> u32 {
    25
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryArgs {
    /// The database's id (32 hex digits, with or without dashes) or its Notion URL.
    database_id: Id,
    /// A Notion filter object, passed as given. E.g. {"property": "Status", "select": {"equals": "Done"}}, {"property": "Done", "checkbox": {"equals": false}}, {"property": "Name", "title": {"contains": "plan"}}, {"property": "Due", "date": {"on_or_before": "2024-06-30"}}, or {"and": [filter, ...]} / {"or": [filter, ...]}.
    filter: Option<Map<String, Value>>,
    /// Notion sort objects, passed as given, e.g. [{"property": "Due", "direction": "ascending"}] or [{"timestamp": "last_edited_time", "direction": "descending"}].
    #[schemars(length(max = 100))]
    sorts: Option<Vec<Map<String, Value>>>,
    /// Results per page.
    #[serde(default = "twenty_five")]
    #[schemars(range(min = 1, max = 100))]
    page_size: u32,
    /// next_cursor from a previous answer, to get the next page of results.
    start_cursor: Option<Cursor>,
}

pub fn query_database(args: QueryArgs, call: &mut Call) -> Result<Value, ToolError> {
    let id = api::parse_id("database_id", &args.database_id.0)?;
    let mut body = Map::new();
    if let Some(filter) = args.filter.filter(|f| !f.is_empty()) {
        body.insert("filter".into(), filter.into());
    }
    if let Some(sorts) = args.sorts.filter(|s| !s.is_empty()) {
        body.insert("sorts".into(), sorts.into());
    }
    body.insert("page_size".into(), args.page_size.into());
    if let Some(Cursor(c)) = &args.start_cursor {
        body.insert("start_cursor".into(), api::cursor(c)?.into());
    }
    let path = format!("/databases/{}/query", mcpist_plugin::web::encode(&id));
    let list = api::post(call.http, &path, &Value::Object(body))?;
    let (has_more, next_cursor) = cursor_of(&list);
    let rows: Vec<Value> = results(&list)
        .iter()
        .map(|page| {
            json!({
                "id": page.get("id").cloned().unwrap_or(Value::Null),
                "url": page.get("url").cloned().unwrap_or(Value::Null),
                "title": props::title(page),
                "last_edited_time": page.get("last_edited_time").cloned().unwrap_or(Value::Null),
                "properties": props::flatten_all(page),
            })
        })
        .collect();
    Ok(json!({
        "database_id": id,
        "results": rows,
        "has_more": has_more,
        "next_cursor": next_cursor,
    }))
}

// ---------------------------------------------------------------- create_page

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateArgs {
    /// Create the page under this page (id or URL). Give this or parent_database_id, not both.
    parent_page_id: Option<Id>,
    /// Create the page as a row of this database (id or URL). Give this or parent_page_id, not both.
    parent_database_id: Option<Id>,
    /// The page's title.
    #[schemars(length(max = 10000))]
    title: String,
    /// For a database row: the name of the database's title column.
    #[schemars(length(min = 1, max = 200), extend("default" = "Name"))]
    title_property: Option<String>,
    /// For a database row: other column values in Notion's property value format, passed as given, e.g. {"Status": {"select": {"name": "In progress"}}, "Tags": {"multi_select": [{"name": "ops"}]}, "Due": {"date": {"start": "2024-07-01"}}, "Done": {"checkbox": false}, "Points": {"number": 3}, "Notes": {"rich_text": [{"text": {"content": "..."}}]}}.
    properties: Option<Map<String, Value>>,
    /// The page's text. Paragraphs are separated by blank lines; single line breaks stay inside a paragraph.
    #[schemars(length(max = 200000))]
    content: Option<String>,
}

/// Split `text` into pieces of at most `limit` UTF-16 code units, on
/// character boundaries.
pub fn split_text(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut units = 0;
    for c in text.chars() {
        let n = c.len_utf16();
        if units + n > limit && !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
            units = 0;
        }
        current.push(c);
        units += n;
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// A rich text array for `text`, split to fit Notion's per-object limit.
pub fn rich_text(text: &str) -> Vec<Value> {
    split_text(text, MAX_TEXT)
        .into_iter()
        .map(|piece| json!({"type": "text", "text": {"content": piece}}))
        .collect()
}

/// Paragraphs of `content` (separated by blank lines) as paragraph blocks.
/// A paragraph longer than one block can hold becomes several blocks.
pub fn paragraph_blocks(content: &str) -> Vec<Value> {
    let content = content.replace("\r\n", "\n").replace('\r', "\n");
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in content.split('\n') {
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join("\n"));
                current.clear();
            }
        } else {
            current.push(line.trim_end());
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join("\n"));
    }
    let mut blocks = Vec::new();
    for paragraph in paragraphs {
        let pieces = rich_text(&paragraph);
        for group in pieces.chunks(MAX_RICH_TEXT_ITEMS) {
            blocks.push(json!({
                "object": "block",
                "type": "paragraph",
                "paragraph": {"rich_text": group},
            }));
        }
    }
    blocks
}

/// Blocks grouped into requests Notion accepts.
fn batches(blocks: Vec<Value>) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = Vec::new();
    let mut bytes = 0;
    for block in blocks {
        let size = block.to_string().len();
        let full = out
            .last()
            .is_none_or(|b| b.len() >= MAX_BLOCKS_PER_REQUEST || bytes + size > MAX_BATCH_BYTES);
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        out.last_mut().expect("a batch").push(block);
    }
    out
}

pub fn create_page(args: CreateArgs, call: &mut Call) -> Result<Value, ToolError> {
    let http = &mut *call.http;
    let invalid = |m: &str| Err(ToolError::InvalidArguments(m.to_owned()));
    let title = rich_text(&args.title);
    let (parent, properties, default_title_property) = match (
        &args.parent_page_id,
        &args.parent_database_id,
    ) {
        (Some(_), Some(_)) | (None, None) => {
            return invalid(
                "give exactly one of parent_page_id (the new page goes under that page) and parent_database_id (the new page is a row of that database)",
            );
        }
        (Some(page), None) => {
            if args.properties.as_ref().is_some_and(|p| !p.is_empty()) {
                return invalid(
                    "properties apply only to a database row (parent_database_id); a page under a page has just a title",
                );
            }
            if args.title_property.is_some() {
                return invalid(
                    "title_property applies only to a database row (parent_database_id)",
                );
            }
            let parent = json!({"page_id": api::parse_id("parent_page_id", &page.0)?});
            let properties = json!({"title": {"title": title}});
            (parent, properties, None)
        }
        (None, Some(database)) => {
            let parent = json!({"database_id": api::parse_id("parent_database_id", &database.0)?});
            let name = args
                .title_property
                .as_deref()
                .map(str::trim)
                .unwrap_or("Name");
            if name.is_empty() {
                return invalid("title_property must name the database's title property");
            }
            let mut properties = args.properties.clone().unwrap_or_default();
            if properties.contains_key(name) {
                return Err(ToolError::InvalidArguments(format!(
                    "properties names the title property {name:?}; give the title as `title` instead"
                )));
            }
            properties.insert(name.to_owned(), json!({"title": title}));
            let default = args.title_property.is_none().then_some("Name");
            (parent, Value::Object(properties), default)
        }
    };

    let blocks = paragraph_blocks(args.content.as_deref().unwrap_or(""));
    let total = blocks.len();
    let mut batches = batches(blocks).into_iter();
    if batches.len() > MAX_REQUESTS {
        return Err(ToolError::InvalidArguments(format!(
            "content makes {total} paragraphs, more than one call can send ({} requests of at most {MAX_BLOCKS_PER_REQUEST}); create the page with part of it",
            MAX_REQUESTS
        )));
    }

    let mut body = json!({"parent": parent, "properties": properties});
    if let Some(first) = batches.next() {
        body["children"] = first.into();
    }
    let sent = body
        .get("children")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let hint = Hint {
        default_title_property,
    };
    let page = api::call(http, "POST", "/pages", Some(&body), hint)?;
    let id = page
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let url = page.get("url").cloned().unwrap_or(Value::Null);

    let mut done = sent;
    for batch in batches {
        let n = batch.len();
        let path = format!("/blocks/{}/children", mcpist_plugin::web::encode(&id));
        let result = api::call(
            http,
            "PATCH",
            &path,
            Some(&json!({"children": batch})),
            Hint::default(),
        );
        if let Err(ToolError::Upstream(m) | ToolError::Failed(m)) = result {
            return Err(ToolError::Upstream(format!(
                "The page was created (id {id}, url {}) but adding the rest of its content failed after {done} of {total} paragraph blocks: {m}",
                url.as_str().unwrap_or("?")
            )));
        }
        result?;
        done += n;
    }

    Ok(json!({
        "id": id,
        "url": url,
        "title": props::title(&page),
        "parent": props::parent(&page),
        "created_time": page.get("created_time").cloned().unwrap_or(Value::Null),
        "paragraph_blocks": total,
    }))
}
