//! `notion`: the Notion REST API (version 2022-06-28) for one account's
//! integration token: search, read pages as text, query databases, and
//! create pages.
//!
//! The host attaches the token (`Authorization: Bearer ...`) to requests to
//! api.notion.com; this module never sees it. Notion only shows an
//! integration the pages and databases shared with it, so "not found" often
//! means "not shared", and the error says so.

mod api;
mod props;
mod render;
mod tools;

#[cfg(test)]
mod tests;

use serde_json::{Value, json};

use mcpist_plugin::{CredentialBinding, Declaration, Injection, ToolFlags, ToolSpec};

mcpist_plugin::module!(declaration);

const HOST: &str = "https://api.notion.com";

fn declaration() -> Declaration {
    let read = ToolFlags::READ_ONLY
        | ToolFlags::IDEMPOTENT
        | ToolFlags::OPEN_WORLD
        | ToolFlags::CONCURRENCY_SAFE;
    let paging = json!({"type": "boolean"});
    let next = json!({"type": ["string", "null"]});
    Declaration::new(
        "notion",
        env!("CARGO_PKG_VERSION"),
        "Notion: search the pages and databases shared with the integration, read a page as text, query a database's rows, and create pages or database rows.",
    )
    .host(HOST)
    .credential(CredentialBinding {
        service: "notion".into(),
        inject: Injection::Bearer,
        hosts: vec![HOST.into()],
    })
    .tool(
        ToolSpec::new(
            "search",
            "Search the pages and databases shared with the Notion integration by title. Returns ids, titles, urls and last edit times; use get_page or query_database with an id. An empty query lists everything shared.",
            read,
        )
        .output(json!({
                    "type": "object",
                    "properties": {
                        "results": {"type": "array", "items": summary_schema()},
                        "has_more": paging,
                        "next_cursor": next
                    },
                    "required": ["results", "has_more", "next_cursor"]
                })),
        tools::search,
    )
    .tool(
        ToolSpec::new(
            "get_page",
            "Read a Notion page as Markdown-like text: title, properties (for database rows), then its blocks (headings, paragraphs, lists, to-dos, toggles with their contents, code, quotes, callouts, tables, links, files). Child pages and databases are listed by title and id, not opened. Long pages are cut at max_blocks and say so.",
            read,
        )
        .output(json!({
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "url": {"type": ["string", "null"]},
                        "last_edited_time": {"type": ["string", "null"]},
                        "parent": parent_schema(),
                        "properties": {"type": "object", "description": "Property values flattened to plain JSON (database rows)."},
                        "block_count": {"type": "integer", "minimum": 0},
                        "truncated": {"type": "boolean"}
                    },
                    "required": ["id", "title", "block_count", "truncated"]
                })),
        tools::get_page,
    )
    .tool(
        ToolSpec::new(
            "query_database",
            "List the rows of a Notion database, optionally filtered and sorted with Notion's query syntax. Each row comes with its id, url, title and its properties as plain values (text, numbers, select names, date {start, end}, checkboxes, people, relation ids, formula results).",
            read,
        )
        .output(json!({
                    "type": "object",
                    "properties": {
                        "database_id": {"type": "string"},
                        "results": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "string"},
                                    "url": {"type": ["string", "null"]},
                                    "title": {"type": "string"},
                                    "last_edited_time": {"type": ["string", "null"]},
                                    "properties": {"type": "object"}
                                },
                                "required": ["id", "title", "properties"]
                            }
                        },
                        "has_more": paging,
                        "next_cursor": next
                    },
                    "required": ["database_id", "results", "has_more", "next_cursor"]
                })),
        tools::query_database,
    )
    .tool(
        ToolSpec::new(
            "create_page",
            "Create a Notion page under a page (parent_page_id) or as a row of a database (parent_database_id), with a title and optional plain-text content (paragraphs separated by blank lines; Markdown is not interpreted). For a database row, other columns can be set with properties in Notion's property value format.",
            ToolFlags::OPEN_WORLD,
        )
        .output(json!({
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "url": {"type": ["string", "null"]},
                        "title": {"type": "string"},
                        "parent": parent_schema(),
                        "created_time": {"type": ["string", "null"]},
                        "paragraph_blocks": {"type": "integer", "minimum": 0}
                    },
                    "required": ["id", "url", "title", "paragraph_blocks"]
                })),
        tools::create_page,
    )
}

/// A search result or a page/database reference.
fn summary_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "description": "page or database"},
            "title": {"type": "string"},
            "url": {"type": ["string", "null"]},
            "last_edited_time": {"type": ["string", "null"]},
            "parent": parent_schema()
        },
        "required": ["id", "object", "title"]
    })
}

fn parent_schema() -> Value {
    json!({
        "type": ["object", "null"],
        "properties": {"type": {"type": "string"}, "id": {"type": "string"}}
    })
}
