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

use mcpist_plugin::web;
use serde_json::{Value, json};

use mcpist_plugin::{
    CallContext, CallOutput, CredentialBinding, Guest, Injection, ModuleInfo, ToolError, ToolFlags,
    arguments,
};

struct Notion;
mcpist_plugin::export!(Notion);

const HOST: &str = "https://api.notion.com";

fn id_schema(description: &str) -> Value {
    json!({"type": "string", "minLength": 32, "maxLength": 300, "description": description})
}

fn cursor_schema() -> Value {
    json!({"type": "string", "maxLength": 200,
           "description": "next_cursor from a previous answer, to get the next page of results."})
}

fn page_size_schema(default: u32) -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 100, "default": default,
           "description": "Results per page."})
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

fn describe() -> ModuleInfo {
    let read = ToolFlags::READ_ONLY
        | ToolFlags::IDEMPOTENT
        | ToolFlags::OPEN_WORLD
        | ToolFlags::CONCURRENCY_SAFE;
    let paging = json!({"type": "boolean"});
    let next = json!({"type": ["string", "null"]});
    ModuleInfo {
        name: "notion".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: "Notion: search the pages and databases shared with the integration, read a page as text, query a database's rows, and create pages or database rows.".into(),
        tools: vec![
            mcpist_plugin::tool(
                "search",
                "Search the pages and databases shared with the Notion integration by title. Returns ids, titles, urls and last edit times; use get_page or query_database with an id. An empty query lists everything shared.",
                read,
                &json!({
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "maxLength": 1000,
                                  "description": "Words to match in titles. Omit to list everything shared."},
                        "kind": {"type": "string", "enum": ["page", "database"],
                                 "description": "Only pages, or only databases. Default both."},
                        "sort": {"type": "string", "enum": ["last_edited_descending", "last_edited_ascending"],
                                 "description": "Order by last edit time instead of relevance."},
                        "page_size": page_size_schema(20),
                        "start_cursor": cursor_schema()
                    }
                }),
                Some(&json!({
                    "type": "object",
                    "properties": {
                        "results": {"type": "array", "items": summary_schema()},
                        "has_more": paging,
                        "next_cursor": next
                    },
                    "required": ["results", "has_more", "next_cursor"]
                })),
            ),
            mcpist_plugin::tool(
                "get_page",
                "Read a Notion page as Markdown-like text: title, properties (for database rows), then its blocks (headings, paragraphs, lists, to-dos, toggles with their contents, code, quotes, callouts, tables, links, files). Child pages and databases are listed by title and id, not opened. Long pages are cut at max_blocks and say so.",
                read,
                &json!({
                    "type": "object",
                    "properties": {
                        "page_id": id_schema("The page's id (32 hex digits, with or without dashes) or its Notion URL. A database row is a page too."),
                        "max_blocks": {"type": "integer", "minimum": 1, "maximum": 1000, "default": tools::DEFAULT_MAX_BLOCKS,
                                       "description": "Stop after reading this many blocks (nested ones included)."},
                        "max_depth": {"type": "integer", "minimum": 1, "maximum": 10, "default": tools::DEFAULT_MAX_DEPTH,
                                      "description": "How many levels of nested blocks (toggle contents, sub-list items) to read; 1 reads only the page's own blocks."}
                    },
                    "required": ["page_id"]
                }),
                Some(&json!({
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
            ),
            mcpist_plugin::tool(
                "query_database",
                "List the rows of a Notion database, optionally filtered and sorted with Notion's query syntax. Each row comes with its id, url, title and its properties as plain values (text, numbers, select names, date {start, end}, checkboxes, people, relation ids, formula results).",
                read,
                &json!({
                    "type": "object",
                    "properties": {
                        "database_id": id_schema("The database's id (32 hex digits, with or without dashes) or its Notion URL."),
                        "filter": {
                            "type": "object",
                            "additionalProperties": true,
                            "description": "A Notion filter object, passed as given. E.g. {\"property\": \"Status\", \"select\": {\"equals\": \"Done\"}}, {\"property\": \"Done\", \"checkbox\": {\"equals\": false}}, {\"property\": \"Name\", \"title\": {\"contains\": \"plan\"}}, {\"property\": \"Due\", \"date\": {\"on_or_before\": \"2024-06-30\"}}, or {\"and\": [filter, ...]} / {\"or\": [filter, ...]}."
                        },
                        "sorts": {
                            "type": "array",
                            "maxItems": 100,
                            "items": {"type": "object", "additionalProperties": true},
                            "description": "Notion sort objects, passed as given, e.g. [{\"property\": \"Due\", \"direction\": \"ascending\"}] or [{\"timestamp\": \"last_edited_time\", \"direction\": \"descending\"}]."
                        },
                        "page_size": page_size_schema(25),
                        "start_cursor": cursor_schema()
                    },
                    "required": ["database_id"]
                }),
                Some(&json!({
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
            ),
            mcpist_plugin::tool(
                "create_page",
                "Create a Notion page under a page (parent_page_id) or as a row of a database (parent_database_id), with a title and optional plain-text content (paragraphs separated by blank lines; Markdown is not interpreted). For a database row, other columns can be set with properties in Notion's property value format.",
                ToolFlags::OPEN_WORLD,
                &json!({
                    "type": "object",
                    "properties": {
                        "parent_page_id": id_schema("Create the page under this page (id or URL). Give this or parent_database_id, not both."),
                        "parent_database_id": id_schema("Create the page as a row of this database (id or URL). Give this or parent_page_id, not both."),
                        "title": {"type": "string", "maxLength": 10000, "description": "The page's title."},
                        "title_property": {"type": "string", "minLength": 1, "maxLength": 200, "default": "Name",
                                           "description": "For a database row: the name of the database's title column."},
                        "properties": {
                            "type": "object",
                            "additionalProperties": true,
                            "description": "For a database row: other column values in Notion's property value format, passed as given, e.g. {\"Status\": {\"select\": {\"name\": \"In progress\"}}, \"Tags\": {\"multi_select\": [{\"name\": \"ops\"}]}, \"Due\": {\"date\": {\"start\": \"2024-07-01\"}}, \"Done\": {\"checkbox\": false}, \"Points\": {\"number\": 3}, \"Notes\": {\"rich_text\": [{\"text\": {\"content\": \"...\"}}]}}."
                        },
                        "content": {"type": "string", "maxLength": 200000,
                                    "description": "The page's text. Paragraphs are separated by blank lines; single line breaks stay inside a paragraph."}
                    },
                    "required": ["title"]
                }),
                Some(&json!({
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
            ),
        ],
        hosts: vec![HOST.into()],
        credentials: vec![CredentialBinding {
            service: "notion".into(),
            inject: Injection::Bearer,
            hosts: vec![HOST.into()],
        }],
    }
}

fn dispatch(
    http: &mut dyn web::Transport,
    tool: &str,
    args: &str,
) -> Result<CallOutput, ToolError> {
    let value = match tool {
        "search" => tools::search(http, arguments(args)?)?,
        "get_page" => return tools::get_page(http, arguments(args)?),
        "query_database" => tools::query_database(http, arguments(args)?)?,
        "create_page" => tools::create_page(http, arguments(args)?)?,
        other => {
            return Err(ToolError::UnknownTool(format!(
                "notion has no tool named {other:?}"
            )));
        }
    };
    Ok(mcpist_plugin::structured(&value))
}

impl Guest for Notion {
    fn describe() -> ModuleInfo {
        describe()
    }

    fn call(tool: String, args: String, _context: CallContext) -> Result<CallOutput, ToolError> {
        dispatch(&mut web::Host, &tool, &args)
    }
}

#[cfg(test)]
mod tests;
