//! Reading a page's blocks (following pagination and nesting, within limits)
//! and rendering them as Markdown-like text.

use mcpist_plugin::ToolError;
use serde_json::Value;

use mcpist_plugin::web::Transport;

use crate::api;
use crate::props::plain;

/// One block and the children read for it.
#[derive(Debug)]
pub struct Node {
    pub block: Value,
    pub children: Vec<Node>,
    /// Why the block's children are missing, if it has some that were not read.
    pub missing: Option<String>,
}

/// Reads a block tree depth-first in document order, so that a truncated
/// result is a prefix of the page.
pub struct Reader<'a> {
    pub http: &'a mut dyn Transport,
    pub max_blocks: usize,
    pub max_depth: usize,
    pub max_requests: usize,
    pub blocks: usize,
    pub requests: usize,
    pub truncated: bool,
}

fn kind(block: &Value) -> &str {
    block.get("type").and_then(Value::as_str).unwrap_or("")
}

impl Reader<'_> {
    /// The children of `id` (a page or a block) at nesting `depth` (1 for a
    /// page's own blocks).
    pub fn children(&mut self, id: &str, depth: usize) -> Result<Vec<Node>, ToolError> {
        let mut nodes = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let room = self.max_blocks.saturating_sub(self.blocks);
            if room == 0 || self.requests >= self.max_requests {
                self.truncated = true;
                break;
            }
            let mut path = format!(
                "/blocks/{}/children?page_size={}",
                mcpist_plugin::web::encode(id),
                room.min(100)
            );
            if let Some(c) = &cursor {
                path.push_str("&start_cursor=");
                path.push_str(&mcpist_plugin::web::encode(c));
            }
            self.requests += 1;
            let list = api::get(self.http, &path)?;
            let results = list
                .get("results")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            // A page of results is read whole, and counted at once, before
            // descending, so the budget covers what was fetched.
            let results: Vec<Value> = results.into_iter().take(room).collect();
            self.blocks += results.len();
            for block in results {
                let mut node = Node {
                    block,
                    children: Vec::new(),
                    missing: None,
                };
                let has_children =
                    node.block.get("has_children").and_then(Value::as_bool) == Some(true);
                // Sub-pages and databases are separate objects, not content.
                let separate = matches!(kind(&node.block), "child_page" | "child_database");
                if has_children && !separate {
                    let child_id = node
                        .block
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    if depth >= self.max_depth {
                        node.missing = Some("nested blocks not read (max_depth reached)".into());
                        self.truncated = true;
                    } else if self.blocks >= self.max_blocks || self.requests >= self.max_requests {
                        node.missing =
                            Some("nested blocks not read (block or request budget used up)".into());
                        self.truncated = true;
                    } else {
                        match self.children(&child_id, depth + 1) {
                            Ok(children) => node.children = children,
                            // A nested block that cannot be read (e.g. a synced
                            // block from a page not shared with the integration)
                            // should not hide the rest of the page.
                            Err(ToolError::Upstream(m) | ToolError::Failed(m)) => {
                                node.missing =
                                    Some(format!("nested blocks could not be read: {m}"));
                                self.truncated = true;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                nodes.push(node);
            }
            let has_more = list.get("has_more").and_then(Value::as_bool) == Some(true);
            cursor = list
                .get("next_cursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if !has_more || cursor.is_none() {
                break;
            }
        }
        Ok(nodes)
    }
}

fn is_list_item(block: &Value) -> bool {
    matches!(
        kind(block),
        "bulleted_list_item" | "numbered_list_item" | "to_do"
    )
}

/// Containers whose own block has nothing to show: their children are
/// rendered in their place.
fn is_transparent(block: &Value) -> bool {
    matches!(kind(block), "column_list" | "column" | "synced_block")
}

/// Render blocks as lines of Markdown-like text, children indented.
pub fn render(nodes: &[Node], indent: usize, out: &mut Vec<String>) {
    let pad = "  ".repeat(indent);
    let mut number = 0usize;
    let mut previous_was_item = false;
    let mut first = true;
    for node in nodes {
        let block = &node.block;
        if is_transparent(block) {
            if !first && !out.last().is_some_and(String::is_empty) {
                out.push(String::new());
            }
            render(&node.children, indent, out);
            if let Some(missing) = &node.missing {
                out.push(format!("{pad}[{missing}]"));
            }
            previous_was_item = false;
            first = false;
            continue;
        }
        let item = is_list_item(block);
        let in_a_list = item && previous_was_item;
        let after_blank = out.last().is_some_and(String::is_empty);
        if !(first || in_a_list || after_blank) {
            out.push(String::new());
        }
        number = if kind(block) == "numbered_list_item" {
            number + 1
        } else {
            0
        };
        let lines = block_lines(block, number, &node.children);
        let start = out.len();
        for (i, line) in lines.iter().enumerate() {
            // Continuation lines of a list item line up with its text.
            let extra = if i > 0 && item { "  " } else { "" };
            if line.is_empty() {
                out.push(String::new());
            } else {
                out.push(format!("{pad}{extra}{line}"));
            }
        }
        let rendered_nothing = out.len() == start;
        if kind(block) != "table" {
            render(&node.children, indent + 1, out);
        }
        if let Some(missing) = &node.missing {
            out.push(format!("{pad}  [{missing}]"));
        }
        if !rendered_nothing || !node.children.is_empty() {
            first = false;
        }
        previous_was_item = item;
    }
}

fn text_of(payload: &Value) -> String {
    plain(payload.get("rich_text"))
}

fn caption(payload: &Value) -> String {
    plain(payload.get("caption"))
}

/// The lines of one block, without indentation.
fn block_lines(block: &Value, number: usize, children: &[Node]) -> Vec<String> {
    let kind = kind(block);
    let empty = Value::Null;
    let payload = block.get(kind).unwrap_or(&empty);
    let text = text_of(payload);
    let prefixed = |prefix: &str, text: &str| -> Vec<String> {
        let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        lines[0] = format!("{prefix}{}", lines[0]);
        lines
    };
    let str_field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    match kind {
        "paragraph" | "template" => {
            if text.is_empty() {
                Vec::new()
            } else {
                text.split('\n').map(str::to_owned).collect()
            }
        }
        "heading_1" => prefixed("# ", &text),
        "heading_2" => prefixed("## ", &text),
        "heading_3" => prefixed("### ", &text),
        "bulleted_list_item" => prefixed("- ", &text),
        "numbered_list_item" => prefixed(&format!("{number}. "), &text),
        "to_do" => {
            let checked = payload.get("checked").and_then(Value::as_bool) == Some(true);
            prefixed(if checked { "- [x] " } else { "- [ ] " }, &text)
        }
        "quote" => text.split('\n').map(|l| format!("> {l}")).collect(),
        "callout" => {
            let icon = payload
                .get("icon")
                .and_then(|i| i.get("emoji"))
                .and_then(Value::as_str)
                .map(|e| format!("{e} "))
                .unwrap_or_default();
            text.split('\n')
                .enumerate()
                .map(|(i, l)| {
                    if i == 0 {
                        format!("> {icon}{l}")
                    } else {
                        format!("> {l}")
                    }
                })
                .collect()
        }
        "toggle" => prefixed("▸ ", &text),
        "code" => {
            let language = str_field(payload, "language");
            let language = if language == "plain text" {
                String::new()
            } else {
                language
            };
            let mut lines = vec![format!("```{language}")];
            lines.extend(text.split('\n').map(str::to_owned));
            lines.push("```".into());
            let caption = caption(payload);
            if !caption.is_empty() {
                lines.push(format!("({caption})"));
            }
            lines
        }
        "divider" => vec!["---".into()],
        "equation" => vec![format!("$$ {} $$", str_field(payload, "expression"))],
        "child_page" | "child_database" => {
            let what = if kind == "child_page" {
                "child page"
            } else {
                "child database"
            };
            let id = str_field(block, "id");
            vec![format!(
                "[{what}] {} (id {id})",
                str_field(payload, "title")
            )]
        }
        "link_to_page" => {
            let t = str_field(payload, "type");
            let id = str_field(payload, &t);
            let what = t.trim_end_matches("_id").replace('_', " ");
            vec![format!("[link to {what}] (id {id})")]
        }
        "bookmark" | "embed" | "link_preview" => {
            let url = str_field(payload, "url");
            let caption = caption(payload);
            if caption.is_empty() {
                vec![format!("[{kind}] {url}")]
            } else {
                vec![format!("[{kind}] {caption} — {url}")]
            }
        }
        "image" | "video" | "audio" | "file" | "pdf" => {
            let t = str_field(payload, "type");
            let url = payload
                .get(&t)
                .and_then(|f| f.get("url"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let mut label = caption(payload);
            if label.is_empty() {
                label = str_field(payload, "name");
            }
            match (label.is_empty(), url.is_empty()) {
                (true, _) => vec![format!("[{kind}] {url}").trim_end().to_owned()],
                (false, true) => vec![format!("[{kind}] {label}")],
                (false, false) => vec![format!("[{kind}] {label} — {url}")],
            }
        }
        "table" => table_lines(payload, children),
        "table_row" => vec![row_line(payload)],
        "table_of_contents" => vec!["[table of contents]".into()],
        "breadcrumb" => vec!["[breadcrumb]".into()],
        "" => vec!["[block]".into()],
        other if !text.is_empty() => prefixed(&format!("[{other}] "), &text),
        other => vec![format!("[{other}]")],
    }
}

fn row_line(payload: &Value) -> String {
    let cells: Vec<String> = payload
        .get("cells")
        .and_then(Value::as_array)
        .map(|cells| {
            cells
                .iter()
                .map(|c| plain(Some(c)).replace('\n', " ").replace('|', "\\|"))
                .collect()
        })
        .unwrap_or_default();
    format!("| {} |", cells.join(" | "))
}

fn table_lines(payload: &Value, rows: &[Node]) -> Vec<String> {
    let header = payload.get("has_column_header").and_then(Value::as_bool) == Some(true);
    let mut lines = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let payload = row.block.get("table_row").unwrap_or(&Value::Null);
        lines.push(row_line(payload));
        if i == 0 && header {
            let width = payload
                .get("cells")
                .and_then(Value::as_array)
                .map_or(1, Vec::len);
            lines.push(format!("|{}", " --- |".repeat(width.max(1))));
        }
    }
    if lines.is_empty() {
        lines.push("[table]".into());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rt(s: &str) -> Value {
        json!([{"type": "text", "text": {"content": s}, "plain_text": s}])
    }

    fn b(kind: &str, payload: Value) -> Node {
        Node {
            block: json!({"object": "block", "id": "b1", "type": kind, kind: payload, "has_children": false}),
            children: vec![],
            missing: None,
        }
    }

    fn text(kind: &str, s: &str) -> Node {
        b(kind, json!({"rich_text": rt(s)}))
    }

    #[test]
    fn renders_common_blocks() {
        let mut toggle = text("toggle", "More");
        toggle.children = vec![
            text("paragraph", "hidden"),
            text("bulleted_list_item", "deep"),
        ];
        let nodes = vec![
            text("heading_1", "Title"),
            text("paragraph", "Hello\nworld"),
            text("bulleted_list_item", "one"),
            text("bulleted_list_item", "two"),
            text("numbered_list_item", "first"),
            text("numbered_list_item", "second"),
            b("to_do", json!({"rich_text": rt("task"), "checked": true})),
            b("to_do", json!({"rich_text": rt("open"), "checked": false})),
            text("quote", "wise"),
            b(
                "code",
                json!({"rich_text": rt("fn main() {}"), "language": "rust", "caption": []}),
            ),
            b(
                "callout",
                json!({"rich_text": rt("Note"), "icon": {"type": "emoji", "emoji": "💡"}}),
            ),
            toggle,
            b("divider", json!({})),
            b("child_page", json!({"title": "Sub"})),
            b(
                "bookmark",
                json!({"url": "https://example.com", "caption": []}),
            ),
            b(
                "image",
                json!({"type": "external", "external": {"url": "https://img"}, "caption": rt("pic")}),
            ),
            b("mystery", json!({})),
        ];
        let mut out = Vec::new();
        render(&nodes, 0, &mut out);
        let got = out.join("\n");
        let want = "# Title\n\nHello\nworld\n\n- one\n- two\n1. first\n2. second\n- [x] task\n- [ ] open\n\n> wise\n\n```rust\nfn main() {}\n```\n\n> 💡 Note\n\n▸ More\n  hidden\n\n  - deep\n\n---\n\n[child page] Sub (id b1)\n\n[bookmark] https://example.com\n\n[image] pic — https://img\n\n[mystery]";
        assert_eq!(got, want, "\n{got}");
    }

    #[test]
    fn renders_tables() {
        let row = |a: &str, c: &str| b("table_row", json!({"cells": [rt(a), rt(c)]}));
        let mut table = b(
            "table",
            json!({"table_width": 2, "has_column_header": true}),
        );
        table.children = vec![row("k", "v"), row("a", "1")];
        let mut out = Vec::new();
        render(&[table], 0, &mut out);
        assert_eq!(out.join("\n"), "| k | v |\n| --- | --- |\n| a | 1 |");
    }
}
