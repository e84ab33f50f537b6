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
    CredentialBinding, Declaration, HeaderInjection, Injection, ToolFlags, ToolSpec,
};

mcpist_plugin::module!(declaration);

fn declaration() -> Declaration {
    let read = ToolFlags::READ_ONLY
        | ToolFlags::IDEMPOTENT
        | ToolFlags::OPEN_WORLD
        | ToolFlags::CONCURRENCY_SAFE;
    let write = ToolFlags::OPEN_WORLD;
    Declaration::new(
        "github",
        env!("CARGO_PKG_VERSION"),
        "GitHub through its REST API: list and inspect repositories, list, search, read, create and comment on issues, and read files, as the chosen GitHub account.",
    )
    .host(api::API)
    .credential(CredentialBinding {
        service: "github".into(),
        inject: Injection::Header(HeaderInjection {
            name: "Authorization".into(),
            template: api::AUTH_TEMPLATE.into(),
        }),
        hosts: vec![api::API.into()],
    })
    .tool(
        ToolSpec::new(
            "list_my_repositories",
            "List the repositories the account can access (its own, collaborations and organisation memberships), following pagination up to `limit`.",
            read,
        )
        .output(json!({
                "type": "object",
                "properties": {
                    "count": {"type": "integer"},
                    "has_more": {"type": "boolean", "description": "More repositories exist beyond limit."},
                    "repositories": {"type": "array", "items": repo_summary_schema()}
                },
                "required": ["count", "has_more", "repositories"]
            })),
        tools::list_my_repositories,
    )
    .tool(
        ToolSpec::new(
            "get_repository",
            "Details of one repository: description, visibility, default branch, language, topics, stars, forks, open issues, dates and the account's permissions.",
            read,
        )
        .output(json!({
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
            })),
        tools::get_repository,
    )
    .tool(
        ToolSpec::new(
            "list_issues",
            "List a repository's issues, newest first by default. GitHub includes pull requests in this list; they are marked is_pull_request (or left out with include_pull_requests false). Bodies are cut to 500 characters; get_issue has the full text and comments.",
            read,
        )
        .output(json!({
                "type": "object",
                "properties": {
                    "repository": {"type": "string"},
                    "count": {"type": "integer"},
                    "has_more": {"type": "boolean", "description": "More issues exist beyond limit."},
                    "issues": {"type": "array", "items": issue_schema()}
                },
                "required": ["repository", "count", "has_more", "issues"]
            })),
        tools::list_issues,
    )
    .tool(
        ToolSpec::new(
            "search_issues",
            "Search issues and pull requests across GitHub with GitHub's search syntax, e.g. `repo:owner/name is:open is:issue crash`, `author:login is:pr`, `label:bug org:acme`. Returns one page of results (GitHub serves at most the first 1000).",
            read,
        )
        .output(json!({
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
            })),
        tools::search_issues,
    )
    .tool(
        ToolSpec::new(
            "get_issue",
            "One issue or pull request with its full body and its comments (oldest first, up to comment_limit).",
            read,
        )
        .output(json!({
                "type": "object",
                "properties": {
                    "issue": issue_schema(),
                    "comments": {"type": "array", "items": comment_schema()},
                    "comments_has_more": {"type": "boolean", "description": "More comments exist beyond comment_limit."}
                },
                "required": ["issue", "comments", "comments_has_more"]
            })),
        tools::get_issue,
    )
    .tool(
        ToolSpec::new(
            "create_issue",
            "Open a new issue in a repository. Labels and assignees that the account may not set are refused by GitHub.",
            write,
        )
        .output(issue_schema()),
        tools::create_issue,
    )
    .tool(
        ToolSpec::new(
            "comment_on_issue",
            "Add a comment to an issue or pull request.",
            write,
        )
        .output(comment_schema()),
        tools::comment_on_issue,
    )
    .tool(
        ToolSpec::new(
            "update_issue",
            "Change an issue or pull request: close it (as completed or not planned) or reopen it, or replace its title, body or labels. What it replaces is not kept, so it is marked destructive: the person using the client may be asked first.",
            ToolFlags::DESTRUCTIVE | ToolFlags::IDEMPOTENT | ToolFlags::OPEN_WORLD,
        )
        .output(issue_schema()),
        tools::update_issue,
    )
    .tool(
        ToolSpec::new(
            "get_file_contents",
            "Read a file from a repository (its text, when it is UTF-8; at most 100000 characters), or list a directory's entries. The path is from the repository root; an empty path lists the root.",
            read,
        )
        .output(json!({
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
            })),
        tools::get_file_contents,
    )
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
