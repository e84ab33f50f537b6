//! `github`: repositories, issues, comments and file contents through the
//! GitHub REST API (<https://docs.github.com/rest>).
//!
//! The module never sees a token: it declares a credential binding for the
//! `github` service and the host adds `Authorization: token <token>` of the
//! account chosen for the call to every request to api.github.com.
//!
//! Answers are GitHub's objects trimmed to the fields an LLM needs, returned
//! as structured results.

mod api;
mod shape;
mod tools;

#[cfg(test)]
mod tests;

use serde_json::{Value, json};

use mcpist_plugin::{
    CallContext, CallOutput, CredentialBinding, Guest, HeaderInjection, Injection, ModuleInfo,
    ToolError, ToolFlags,
};

use tools::{DEFAULT_LIMIT, MAX_LIMIT, MAX_PER_PAGE};

struct GitHub;
mcpist_plugin::export!(GitHub);

impl Guest for GitHub {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "github".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "GitHub through its REST API: list and inspect repositories, list, search, read, create and comment on issues, and read files, as the chosen GitHub account.".into(),
            tools: tool_list(),
            hosts: vec![api::API.into()],
            credentials: vec![CredentialBinding {
                service: "github".into(),
                inject: Injection::Header(HeaderInjection {
                    name: "Authorization".into(),
                    template: api::AUTH_TEMPLATE.into(),
                }),
                hosts: vec![api::API.into()],
            }],
        }
    }

    fn call(tool: String, args: String, _context: CallContext) -> Result<CallOutput, ToolError> {
        let result = tools::run(&mut mcpist_plugin::web::Host, &tool, &args)?;
        Ok(mcpist_plugin::structured(&result))
    }
}

fn owner() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[A-Za-z0-9_.-]+$",
        "description": "The user or organisation that owns the repository, e.g. rust-lang."
    })
}

fn repo() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[A-Za-z0-9_.-]+$",
        "description": "The repository name without its owner, e.g. cargo."
    })
}

fn number() -> Value {
    json!({"type": "integer", "minimum": 1, "description": "The issue or pull request number."})
}

fn per_page(default: &str) -> Value {
    json!({
        "type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE,
        "description": format!("Items per GitHub page (1-{MAX_PER_PAGE}); default {default}.")
    })
}

fn limit(what: &str) -> Value {
    json!({
        "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
        "description": format!("Most {what} to return in total; pages are followed until this many are collected.")
    })
}

fn direction() -> Value {
    json!({"type": "string", "enum": ["asc", "desc"], "description": "Sort direction."})
}

/// A trimmed issue (see `shape::issue`).
fn issue_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "number": {"description": "Issue or pull request number."},
            "title": {},
            "state": {"description": "open or closed."},
            "state_reason": {"description": "Why it was closed: completed, not_planned, reopened, or null."},
            "is_pull_request": {"type": "boolean", "description": "GitHub lists pull requests among issues; true for those."},
            "draft": {},
            "merged_at": {},
            "repository": {"description": "owner/repo (in search results)."},
            "user": {"description": "Login of the author."},
            "labels": {"type": "array", "description": "Label names."},
            "assignees": {"type": "array", "description": "Logins of the assignees."},
            "milestone": {},
            "comments": {"description": "Number of comments."},
            "created_at": {}, "updated_at": {}, "closed_at": {},
            "html_url": {},
            "body": {"description": "Markdown body (null when empty)."},
            "body_truncated": {"type": "boolean", "description": "The body was cut; get_issue returns all of it."}
        },
        "required": ["is_pull_request", "user", "labels", "assignees", "body"]
    })
}

fn comment_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {}, "user": {"description": "Login of the author."},
            "created_at": {}, "updated_at": {}, "html_url": {},
            "body": {"description": "Markdown body."}
        },
        "required": ["user", "body"]
    })
}

fn repo_summary_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "full_name": {"description": "owner/repo."},
            "description": {}, "private": {}, "visibility": {}, "fork": {}, "archived": {},
            "default_branch": {}, "language": {}, "stargazers_count": {}, "open_issues_count": {},
            "updated_at": {}, "pushed_at": {}, "html_url": {}
        }
    })
}

fn tool_list() -> Vec<mcpist_plugin::Tool> {
    let read = ToolFlags::READ_ONLY
        | ToolFlags::IDEMPOTENT
        | ToolFlags::OPEN_WORLD
        | ToolFlags::CONCURRENCY_SAFE;
    let write = ToolFlags::OPEN_WORLD;
    let tool = |name: &str, description: &str, flags, input: Value, output: Value| {
        mcpist_plugin::tool(name, description, flags, &input, Some(&output))
    };
    vec![
        tool(
            "list_my_repositories",
            "List the repositories the account can access (its own, collaborations and organisation memberships), following pagination up to `limit`.",
            read,
            json!({
                "type": "object",
                "properties": {
                    "visibility": {"type": "string", "enum": ["all", "public", "private"], "description": "Only public or only private repositories; default all."},
                    "affiliation": {
                        "type": "array", "minItems": 1, "uniqueItems": true,
                        "items": {"type": "string", "enum": ["owner", "collaborator", "organization_member"]},
                        "description": "Which relationships to include; default all three."
                    },
                    "sort": {"type": "string", "enum": ["created", "updated", "pushed", "full_name"], "description": "Default full_name."},
                    "direction": direction(),
                    "per_page": per_page("limit, at most 100"),
                    "limit": limit("repositories")
                }
            }),
            json!({
                "type": "object",
                "properties": {
                    "count": {"type": "integer"},
                    "has_more": {"type": "boolean", "description": "More repositories exist beyond limit."},
                    "repositories": {"type": "array", "items": repo_summary_schema()}
                },
                "required": ["count", "has_more", "repositories"]
            }),
        ),
        tool(
            "get_repository",
            "Details of one repository: description, visibility, default branch, language, topics, stars, forks, open issues, dates and the account's permissions.",
            read,
            json!({
                "type": "object",
                "properties": {"owner": owner(), "repo": repo()},
                "required": ["owner", "repo"]
            }),
            json!({
                "type": "object",
                "properties": {
                    "full_name": {}, "owner": {}, "description": {}, "private": {}, "visibility": {},
                    "fork": {}, "parent": {"description": "owner/repo this is a fork of."},
                    "archived": {}, "default_branch": {}, "language": {}, "topics": {}, "homepage": {},
                    "license": {"description": "SPDX id."}, "stargazers_count": {}, "forks_count": {},
                    "watchers_count": {}, "subscribers_count": {}, "open_issues_count": {},
                    "has_issues": {}, "created_at": {}, "updated_at": {}, "pushed_at": {}, "html_url": {},
                    "permissions": {"description": "What the account may do: admin, maintain, push, triage, pull."}
                },
                "required": ["owner"]
            }),
        ),
        tool(
            "list_issues",
            "List a repository's issues, newest first by default. GitHub includes pull requests in this list; they are marked is_pull_request (or left out with include_pull_requests false). Bodies are cut to 500 characters; get_issue has the full text and comments.",
            read,
            json!({
                "type": "object",
                "properties": {
                    "owner": owner(),
                    "repo": repo(),
                    "state": {"type": "string", "enum": ["open", "closed", "all"], "description": "Default open."},
                    "labels": {"type": "string", "maxLength": 1000, "description": "Comma-separated label names; only issues with all of them, e.g. bug,help wanted."},
                    "assignee": {"type": "string", "maxLength": 100, "description": "A login, `none` for unassigned issues, or `*` for assigned ones."},
                    "since": {"type": "string", "maxLength": 40, "description": "Only issues updated at or after this ISO 8601 time, e.g. 2024-05-01T00:00:00Z."},
                    "sort": {"type": "string", "enum": ["created", "updated", "comments"], "description": "Default created."},
                    "direction": direction(),
                    "include_pull_requests": {"type": "boolean", "default": true, "description": "false leaves pull requests out."},
                    "per_page": per_page("limit, at most 100"),
                    "limit": limit("issues")
                },
                "required": ["owner", "repo"]
            }),
            json!({
                "type": "object",
                "properties": {
                    "repository": {"type": "string"},
                    "count": {"type": "integer"},
                    "has_more": {"type": "boolean", "description": "More issues exist beyond limit."},
                    "issues": {"type": "array", "items": issue_schema()}
                },
                "required": ["repository", "count", "has_more", "issues"]
            }),
        ),
        tool(
            "search_issues",
            "Search issues and pull requests across GitHub with GitHub's search syntax, e.g. `repo:owner/name is:open is:issue crash`, `author:login is:pr`, `label:bug org:acme`. Returns one page of results (GitHub serves at most the first 1000).",
            read,
            json!({
                "type": "object",
                "properties": {
                    "q": {"type": "string", "minLength": 1, "maxLength": 256, "description": "Search query: words plus qualifiers such as repo:, org:, is:open, is:closed, is:issue, is:pr, label:, author:, assignee:."},
                    "sort": {
                        "type": "string",
                        "enum": ["comments", "reactions", "reactions-+1", "reactions--1", "reactions-smile", "reactions-thinking_face", "reactions-heart", "reactions-tada", "interactions", "created", "updated"],
                        "description": "Default: best match."
                    },
                    "order": direction(),
                    "per_page": per_page("30"),
                    "page": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1, "description": "Page of results, from 1."}
                },
                "required": ["q"]
            }),
            json!({
                "type": "object",
                "properties": {
                    "total_count": {"description": "Matches in all pages."},
                    "incomplete_results": {"description": "GitHub timed out and the results may be partial."},
                    "page": {"type": "integer"},
                    "per_page": {"type": "integer"},
                    "has_more": {"type": "boolean", "description": "A next page exists."},
                    "items": {"type": "array", "items": issue_schema()}
                },
                "required": ["total_count", "incomplete_results", "page", "per_page", "has_more", "items"]
            }),
        ),
        tool(
            "get_issue",
            "One issue or pull request with its full body and its comments (oldest first, up to comment_limit).",
            read,
            json!({
                "type": "object",
                "properties": {
                    "owner": owner(),
                    "repo": repo(),
                    "number": number(),
                    "comment_limit": {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
                                      "description": "Most comments to return; 0 for none."}
                },
                "required": ["owner", "repo", "number"]
            }),
            json!({
                "type": "object",
                "properties": {
                    "issue": issue_schema(),
                    "comments": {"type": "array", "items": comment_schema()},
                    "comments_has_more": {"type": "boolean", "description": "More comments exist beyond comment_limit."}
                },
                "required": ["issue", "comments", "comments_has_more"]
            }),
        ),
        tool(
            "create_issue",
            "Open a new issue in a repository. Labels and assignees that the account may not set are refused by GitHub.",
            write,
            json!({
                "type": "object",
                "properties": {
                    "owner": owner(),
                    "repo": repo(),
                    "title": {"type": "string", "minLength": 1, "maxLength": 256, "description": "Issue title."},
                    "body": {"type": "string", "maxLength": 65536, "description": "Markdown body."},
                    "labels": {"type": "array", "maxItems": 100, "items": {"type": "string", "minLength": 1, "maxLength": 100}, "description": "Label names."},
                    "assignees": {"type": "array", "maxItems": 10, "items": {"type": "string", "minLength": 1, "maxLength": 100}, "description": "Logins to assign."}
                },
                "required": ["owner", "repo", "title"]
            }),
            issue_schema(),
        ),
        tool(
            "comment_on_issue",
            "Add a comment to an issue or pull request.",
            write,
            json!({
                "type": "object",
                "properties": {
                    "owner": owner(),
                    "repo": repo(),
                    "number": number(),
                    "body": {"type": "string", "minLength": 1, "maxLength": 65536, "description": "Markdown text of the comment."}
                },
                "required": ["owner", "repo", "number", "body"]
            }),
            comment_schema(),
        ),
        tool(
            "get_file_contents",
            "Read a file from a repository (its text, when it is UTF-8; at most 100000 characters), or list a directory's entries. The path is from the repository root; an empty path lists the root.",
            read,
            json!({
                "type": "object",
                "properties": {
                    "owner": owner(),
                    "repo": repo(),
                    "path": {"type": "string", "maxLength": 1000, "default": "", "description": "File or directory path, e.g. src/main.rs or docs."},
                    "ref": {"type": "string", "maxLength": 255, "description": "Branch, tag or commit SHA; default: the repository's default branch."}
                },
                "required": ["owner", "repo"]
            }),
            json!({
                "type": "object",
                "properties": {
                    "type": {"description": "file, dir, symlink or submodule."},
                    "name": {}, "path": {}, "size": {}, "sha": {}, "html_url": {},
                    "ref": {"description": "The ref asked for, or null for the default branch."},
                    "text": {"type": "string", "description": "The file's text."},
                    "binary": {"type": "boolean", "description": "The file is not UTF-8 text; its content is not shown."},
                    "truncated": {"type": "boolean"},
                    "note": {"type": "string"},
                    "entries": {
                        "type": "array",
                        "description": "A directory's entries.",
                        "items": {
                            "type": "object",
                            "properties": {"name": {}, "path": {}, "type": {"description": "file, dir, symlink or submodule."}, "size": {}}
                        }
                    },
                    "target": {"description": "A symlink's target."},
                    "submodule_git_url": {}
                },
                "required": ["type"]
            }),
        ),
    ]
}
