//! GitHub's objects trimmed to what an LLM needs. GitHub answers with dozens
//! of URL templates and ids per object; these keep the useful fields under
//! their GitHub names.

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// Longest issue or comment body kept in a list; the full text is one
/// `get_issue` away.
pub const LIST_BODY_CHARS: usize = 500;

/// Longest file text returned by `get_file_contents`.
pub const MAX_FILE_CHARS: usize = 100_000;

/// Copy `keys` that are present in `from` (null values included).
fn pick(from: &Value, keys: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for key in keys {
        if let Some(value) = from.get(*key) {
            out.insert((*key).to_owned(), value.clone());
        }
    }
    out
}

fn login(user: Option<&Value>) -> Value {
    user.and_then(|u| u.get("login"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn logins(users: Option<&Value>) -> Value {
    Value::Array(
        users
            .and_then(Value::as_array)
            .map(|users| users.iter().map(|u| login(Some(u))).collect())
            .unwrap_or_default(),
    )
}

/// At most `max` characters of `text`, and whether it was cut.
pub fn truncate(text: &str, max: usize) -> (String, bool) {
    match text.char_indices().nth(max) {
        Some((cut, _)) => (format!("{}…", &text[..cut]), true),
        None => (text.to_owned(), false),
    }
}

/// Put `body` (possibly cut to `max` characters) into `out`.
fn body_into(out: &mut Map<String, Value>, body: Option<&Value>, max: Option<usize>) {
    let body = body.cloned().unwrap_or(Value::Null);
    match (body.as_str(), max) {
        (Some(text), Some(max)) => {
            let (text, cut) = truncate(text, max);
            out.insert("body".into(), Value::String(text));
            if cut {
                out.insert("body_truncated".into(), Value::Bool(true));
            }
        }
        _ => {
            out.insert("body".into(), body);
        }
    }
}

/// The fields of a repository in a list.
const REPO_SUMMARY: &[&str] = &[
    "full_name",
    "description",
    "private",
    "visibility",
    "fork",
    "archived",
    "default_branch",
    "language",
    "stargazers_count",
    "open_issues_count",
    "updated_at",
    "pushed_at",
    "html_url",
];

/// A repository in a list.
pub fn repo_summary(repo: &Value) -> Value {
    Value::Object(pick(repo, REPO_SUMMARY))
}

/// A repository on its own: the summary and more.
pub fn repo_detail(repo: &Value) -> Value {
    let mut out = pick(repo, REPO_SUMMARY);
    out.extend(pick(
        repo,
        &[
            "topics",
            "homepage",
            "forks_count",
            "watchers_count",
            "subscribers_count",
            "has_issues",
            "created_at",
            "permissions",
        ],
    ));
    out.insert("owner".into(), login(repo.get("owner")));
    if let Some(license) = repo.get("license").filter(|l| !l.is_null()) {
        out.insert(
            "license".into(),
            license
                .get("spdx_id")
                .or_else(|| license.get("name"))
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    for relative in ["parent", "source"] {
        if let Some(full_name) = repo.get(relative).and_then(|r| r.get("full_name")) {
            out.insert(relative.into(), full_name.clone());
        }
    }
    Value::Object(out)
}

/// `owner/repo` from an issue's `repository_url`
/// (`https://api.github.com/repos/owner/repo`).
fn repository_of(issue: &Value) -> Option<Value> {
    let url = issue.get("repository_url")?.as_str()?;
    let (_, rest) = url.split_once("/repos/")?;
    Some(Value::String(rest.trim_end_matches('/').to_owned()))
}

/// An issue (or a pull request, which GitHub lists among issues). `max_body`
/// cuts the body to that many characters; `None` keeps all of it.
pub fn issue(issue: &Value, max_body: Option<usize>) -> Value {
    let mut out = pick(issue, &["number", "title", "state", "state_reason"]);
    let pr = issue.get("pull_request").filter(|p| !p.is_null());
    out.insert("is_pull_request".into(), Value::Bool(pr.is_some()));
    if let Some(pr) = pr {
        if let Some(draft) = issue.get("draft") {
            out.insert("draft".into(), draft.clone());
        }
        if let Some(merged_at) = pr.get("merged_at").filter(|m| !m.is_null()) {
            out.insert("merged_at".into(), merged_at.clone());
        }
    }
    if let Some(repository) = repository_of(issue) {
        out.insert("repository".into(), repository);
    }
    out.insert("user".into(), login(issue.get("user")));
    out.insert(
        "labels".into(),
        Value::Array(
            issue
                .get("labels")
                .and_then(Value::as_array)
                .map(|labels| {
                    labels
                        .iter()
                        .filter_map(|l| match l {
                            Value::String(_) => Some(l.clone()),
                            _ => l.get("name").cloned(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
    );
    out.insert("assignees".into(), logins(issue.get("assignees")));
    if let Some(milestone) = issue.get("milestone").and_then(|m| m.get("title")) {
        out.insert("milestone".into(), milestone.clone());
    }
    out.extend(pick(
        issue,
        &[
            "comments",
            "created_at",
            "updated_at",
            "closed_at",
            "html_url",
        ],
    ));
    body_into(&mut out, issue.get("body"), max_body);
    Value::Object(out)
}

/// A comment on an issue.
pub fn comment(comment: &Value) -> Value {
    let mut out = pick(comment, &["id"]);
    out.insert("user".into(), login(comment.get("user")));
    out.extend(pick(comment, &["created_at", "updated_at", "html_url"]));
    body_into(&mut out, comment.get("body"), None);
    Value::Object(out)
}

/// A directory entry from the contents API.
pub fn entry(entry: &Value) -> Value {
    Value::Object(pick(entry, &["name", "path", "type", "size"]))
}

/// The text of a file from the contents API: decoded from the `content`
/// base64 (which GitHub wraps with newlines).
pub enum FileText {
    Text { text: String, truncated: bool },
    Binary,
    Invalid(String),
}

pub fn decode_content(content: &str) -> FileText {
    let compact: String = content
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
        Ok(bytes) => bytes,
        Err(e) => return FileText::Invalid(e.to_string()),
    };
    match String::from_utf8(bytes) {
        Ok(text) => {
            let (text, truncated) = truncate(&text, MAX_FILE_CHARS);
            FileText::Text { text, truncated }
        }
        Err(_) => FileText::Binary,
    }
}

/// The answer of the contents API for one path, shaped: a file with its
/// text, a directory with its entries, or a symlink / submodule.
pub fn contents(answer: &Value, requested: &str, reference: Option<&str>) -> Value {
    if let Some(entries) = answer.as_array() {
        return json!({
            "type": "dir",
            "path": requested,
            "ref": reference,
            "entries": entries.iter().map(entry).collect::<Vec<_>>(),
        });
    }
    let mut out = pick(answer, &["type", "name", "path", "size", "sha", "html_url"]);
    out.insert("ref".into(), json!(reference));
    match answer.get("type").and_then(Value::as_str) {
        Some("file") => {
            let content = answer.get("content").and_then(Value::as_str).unwrap_or("");
            let encoding = answer.get("encoding").and_then(Value::as_str);
            let size = answer.get("size").and_then(Value::as_u64).unwrap_or(0);
            if encoding != Some("base64") || (content.is_empty() && size > 0) {
                out.insert(
                    "note".into(),
                    json!(format!(
                        "GitHub did not include the content of this {size}-byte file (the contents API only inlines files up to 1 MB); open html_url to read it"
                    )),
                );
                return Value::Object(out);
            }
            match decode_content(content) {
                FileText::Text { text, truncated } => {
                    out.insert("binary".into(), Value::Bool(false));
                    out.insert("text".into(), Value::String(text));
                    if truncated {
                        out.insert("truncated".into(), Value::Bool(true));
                        out.insert(
                            "note".into(),
                            json!(format!(
                                "only the first {MAX_FILE_CHARS} characters are shown"
                            )),
                        );
                    }
                }
                FileText::Binary => {
                    out.insert("binary".into(), Value::Bool(true));
                    out.insert(
                        "note".into(),
                        json!(format!(
                            "binary file of {size} bytes (not UTF-8 text); its content is not shown"
                        )),
                    );
                }
                FileText::Invalid(error) => {
                    out.insert(
                        "note".into(),
                        json!(format!(
                            "GitHub sent content that is not valid base64 ({error})"
                        )),
                    );
                }
            }
        }
        Some("symlink") => {
            out.extend(pick(answer, &["target"]));
        }
        Some("submodule") => {
            out.extend(pick(answer, &["submodule_git_url"]));
        }
        _ => {}
    }
    Value::Object(out)
}
