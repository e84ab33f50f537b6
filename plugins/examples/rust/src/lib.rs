//! The example module in Rust: word statistics, and the title of a web page
//! fetched with `wstd`'s HTTP client (wasi:http, sent by the host through
//! its egress rules).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use mcpist_plugin::{Declaration, ToolError, ToolFlags, ToolSpec};

mcpist_plugin::module!(declaration);

fn declaration() -> Declaration {
    Declaration::new(
        "example-rust",
        env!("CARGO_PKG_VERSION"),
        "Example module in Rust: word statistics and web page titles.",
    )
    .host("https://example.com")
    .tool(
        ToolSpec::new(
            "word_stats",
            "Word statistics of a passage: how many words (runs of letters, digits and underscores), how many distinct ones ignoring case, and the longest.",
            ToolFlags::READ_ONLY | ToolFlags::IDEMPOTENT | ToolFlags::CONCURRENCY_SAFE,
        )
        .output(json!({
            "type": "object",
            "properties": {
                "words": {"type": "integer"},
                "unique_words": {"type": "integer"},
                "longest": {"type": "string"}
            },
            "required": ["words", "unique_words", "longest"]
        })),
        |WordStats { text }, _| {
            // A bug, on purpose: shows how a panic is reported.
            assert!(text != "crash", "the example crashed on purpose");
            Ok(word_stats(&text))
        },
    )
    .tool(
        ToolSpec::new(
            "page_title",
            "Fetch a page from https://example.com and return its HTTP status and <title>.",
            ToolFlags::READ_ONLY | ToolFlags::OPEN_WORLD | ToolFlags::CONCURRENCY_SAFE,
        )
        .output(json!({
            "type": "object",
            "properties": {"status": {"type": "integer"}, "title": {"type": "string"}},
            "required": ["status", "title"]
        })),
        |PageTitle { url }, _| wstd::runtime::block_on(page_title(url)),
    )
}

#[derive(Deserialize, JsonSchema)]
struct WordStats {
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct PageTitle {
    /// An https:// URL on example.com.
    url: String,
}

fn word_stats(text: &str) -> Value {
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let unique: std::collections::BTreeSet<String> =
        words.iter().map(|w| w.to_lowercase()).collect();
    // The first of the longest, as the other languages' examples choose.
    let longest = words.iter().fold(
        "",
        |longest, w| if w.len() > longest.len() { w } else { longest },
    );
    json!({"words": words.len(), "unique_words": unique.len(), "longest": longest})
}

async fn page_title(url: String) -> Result<Value, ToolError> {
    use wstd::http::{Body, Client, Request};
    if !url.starts_with("https://") {
        return Err(ToolError::InvalidArguments(format!(
            "url must start with https://, got {url:?}"
        )));
    }
    let request = Request::get(url.as_str())
        .header("accept", "text/html")
        .body(Body::empty())
        .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
    let response = Client::new()
        .send(request)
        .await
        .map_err(|e| ToolError::Upstream(format!("fetching {url} failed: {e}")))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let page = body
        .str_contents()
        .await
        .map_err(|e| ToolError::Upstream(format!("reading {url} failed: {e}")))?
        .to_owned();
    Ok(json!({"status": status, "title": title(&page)}))
}

/// The text of the first `<title>` element, with the usual entities.
fn title(page: &str) -> String {
    let lower = page.to_ascii_lowercase();
    let Some(open) = lower.find("<title") else {
        return String::new();
    };
    let Some(start) = lower[open..].find('>').map(|i| open + i + 1) else {
        return String::new();
    };
    let end = lower[start..]
        .find("</title>")
        .map_or(page.len(), |i| start + i);
    page[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}
