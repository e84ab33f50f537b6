//! The tools: arguments in, trimmed GitHub answers out. Each arguments
//! type is also its tool's input schema (see `crate::declaration`), so the
//! bounds and choices written here are checked by the host before a call
//! runs; the code below checks only what a schema cannot say.

use std::collections::BTreeSet;

use mcpist_plugin::{Call, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{self, Query, repo_path};
use crate::shape;

/// Items a list tool returns unless asked for another number.
pub const DEFAULT_LIMIT: usize = 30;
/// Most items a list tool collects in one call (over several pages).
pub const MAX_LIMIT: usize = 300;
/// GitHub's own page size bound.
pub const MAX_PER_PAGE: u32 = 100;

fn default_limit() -> usize {
    DEFAULT_LIMIT
}

fn first_page() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// The page size: as asked, or large enough to reach `limit` in few pages.
fn per_page(per_page: Option<u32>, limit: usize) -> u32 {
    per_page.unwrap_or((limit as u32).min(MAX_PER_PAGE))
}

/// A choice as GitHub spells it in a query (its serde name).
fn wire(choice: &impl Serialize) -> String {
    match serde_json::to_value(choice) {
        Ok(Value::String(name)) => name,
        other => unreachable!("choices serialize as strings, not {other:?}"),
    }
}

fn non_empty<'a>(name: &str, value: &'a str) -> Result<&'a str, ToolError> {
    if value.trim().is_empty() {
        return Err(ToolError::InvalidArguments(format!(
            "{name} must not be empty"
        )));
    }
    Ok(value)
}

/// A repository's owner or name, as GitHub allows them.
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Name(#[schemars(length(min = 1, max = 100), pattern(r"^[A-Za-z0-9_.-]+$"))] String);

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    All,
    Public,
    Private,
}

#[derive(Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Affiliation {
    Owner,
    Collaborator,
    OrganizationMember,
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RepoSort {
    Created,
    Updated,
    Pushed,
    FullName,
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueState {
    Open,
    Closed,
    All,
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueSort {
    Created,
    Updated,
    Comments,
}

#[derive(Deserialize, Serialize, JsonSchema)]
pub enum SearchSort {
    #[serde(rename = "comments")]
    Comments,
    #[serde(rename = "reactions")]
    Reactions,
    #[serde(rename = "reactions-+1")]
    ThumbsUp,
    #[serde(rename = "reactions--1")]
    ThumbsDown,
    #[serde(rename = "reactions-smile")]
    Smile,
    #[serde(rename = "reactions-thinking_face")]
    ThinkingFace,
    #[serde(rename = "reactions-heart")]
    Heart,
    #[serde(rename = "reactions-tada")]
    Tada,
    #[serde(rename = "interactions")]
    Interactions,
    #[serde(rename = "created")]
    Created,
    #[serde(rename = "updated")]
    Updated,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListReposArgs {
    /// Only public or only private repositories; default all.
    visibility: Option<Visibility>,
    /// Which relationships to include; default all three.
    #[schemars(length(min = 1))]
    affiliation: Option<BTreeSet<Affiliation>>,
    /// Default full_name.
    sort: Option<RepoSort>,
    /// Sort direction.
    direction: Option<Direction>,
    /// Items per GitHub page (1-100); default limit, at most 100.
    #[schemars(range(min = 1, max = MAX_PER_PAGE))]
    per_page: Option<u32>,
    /// Most repositories to return in total; pages are followed until this many are collected.
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = MAX_LIMIT))]
    limit: usize,
}

pub fn list_my_repositories(args: ListReposArgs, call: &mut Call) -> Result<Value, ToolError> {
    let affiliation = args
        .affiliation
        .map(|set| set.iter().map(wire).collect::<Vec<_>>().join(","));
    let path = Query::new("/user/repos".into())
        .opt("visibility", args.visibility.as_ref().map(wire))
        .opt("affiliation", affiliation)
        .opt("sort", args.sort.as_ref().map(wire))
        .opt("direction", args.direction.as_ref().map(wire))
        .set("per_page", per_page(args.per_page, args.limit))
        .build();
    let page = api::collect(
        call.http,
        path,
        args.limit,
        "the repository list of this account",
        |repo| Some(shape::repo_summary(repo)),
    )?;
    Ok(json!({
        "count": page.items.len(),
        "has_more": page.more,
        "repositories": page.items,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoArgs {
    /// The user or organisation that owns the repository, e.g. rust-lang.
    owner: Name,
    /// The repository name without its owner, e.g. cargo.
    repo: Name,
}

pub fn get_repository(args: RepoArgs, call: &mut Call) -> Result<Value, ToolError> {
    let path = repo_path(&args.owner.0, &args.repo.0)?;
    let what = format!("repository {}/{}", args.owner, args.repo);
    let repo: Value = api::get(call.http, &path, &what)?.json()?;
    Ok(shape::repo_detail(&repo))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListIssuesArgs {
    /// The user or organisation that owns the repository, e.g. rust-lang.
    owner: Name,
    /// The repository name without its owner, e.g. cargo.
    repo: Name,
    /// Default open.
    state: Option<IssueState>,
    /// Comma-separated label names; only issues with all of them, e.g. bug,help wanted.
    #[schemars(length(max = 1000))]
    labels: Option<String>,
    /// A login, `none` for unassigned issues, or `*` for assigned ones.
    #[schemars(length(max = 100))]
    assignee: Option<String>,
    /// Only issues updated at or after this ISO 8601 time, e.g. 2024-05-01T00:00:00Z.
    #[schemars(length(max = 40))]
    since: Option<String>,
    /// Default created.
    sort: Option<IssueSort>,
    /// Sort direction.
    direction: Option<Direction>,
    /// false leaves pull requests out.
    #[serde(default = "yes")]
    include_pull_requests: bool,
    /// Items per GitHub page (1-100); default limit, at most 100.
    #[schemars(range(min = 1, max = MAX_PER_PAGE))]
    per_page: Option<u32>,
    /// Most issues to return in total; pages are followed until this many are collected.
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = MAX_LIMIT))]
    limit: usize,
}

pub fn list_issues(args: ListIssuesArgs, call: &mut Call) -> Result<Value, ToolError> {
    let labels = args.labels.as_deref().map(|l| {
        l.split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(",")
    });
    let path = Query::new(format!(
        "{}/issues",
        repo_path(&args.owner.0, &args.repo.0)?
    ))
    .opt("state", args.state.as_ref().map(wire))
    .opt("labels", labels.filter(|l| !l.is_empty()))
    .opt("assignee", args.assignee.filter(|a| !a.is_empty()))
    .opt("since", args.since.filter(|s| !s.is_empty()))
    .opt("sort", args.sort.as_ref().map(wire))
    .opt("direction", args.direction.as_ref().map(wire))
    .set("per_page", per_page(args.per_page, args.limit))
    .build();
    let include_prs = args.include_pull_requests;
    let what = format!("repository {}/{}", args.owner, args.repo);
    let page = api::collect(call.http, path, args.limit, &what, |issue| {
        let is_pr = issue.get("pull_request").is_some_and(|p| !p.is_null());
        (include_prs || !is_pr).then(|| shape::issue(issue, Some(shape::LIST_BODY_CHARS)))
    })?;
    Ok(json!({
        "repository": format!("{}/{}", args.owner, args.repo),
        "count": page.items.len(),
        "has_more": page.more,
        "issues": page.items,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Search query: words plus qualifiers such as repo:, org:, is:open, is:closed, is:issue, is:pr, label:, author:, assignee:.
    #[schemars(length(min = 1, max = 256))]
    q: String,
    /// Default: best match.
    sort: Option<SearchSort>,
    /// Sort direction.
    order: Option<Direction>,
    /// Items per GitHub page (1-100); default 30.
    #[schemars(range(min = 1, max = MAX_PER_PAGE))]
    per_page: Option<u32>,
    /// Page of results, from 1.
    #[serde(default = "first_page")]
    #[schemars(range(min = 1, max = 1000))]
    page: u32,
}

pub fn search_issues(args: SearchArgs, call: &mut Call) -> Result<Value, ToolError> {
    let q = non_empty("q", &args.q)?;
    let per_page = per_page(args.per_page, DEFAULT_LIMIT);
    let page = args.page;
    if u64::from(page.saturating_sub(1)) * u64::from(per_page) >= 1000 {
        return Err(ToolError::InvalidArguments(format!(
            "GitHub search only returns the first 1000 results: page {page} at per_page {per_page} is beyond them; narrow the query instead"
        )));
    }
    let path = Query::new("/search/issues".into())
        .set("q", q)
        .opt("sort", args.sort.as_ref().map(wire))
        .opt("order", args.order.as_ref().map(wire))
        // GitHub's defaults (30 per page, page 1) stay implicit.
        .opt("per_page", (per_page != 30).then_some(per_page))
        .opt("page", (page != 1).then_some(page))
        .build();
    let response = api::get(call.http, &path, "the search")?;
    let has_more = response.next_link().is_some();
    let answer: Value = response.json()?;
    let items = answer
        .get("items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|i| shape::issue(i, Some(shape::LIST_BODY_CHARS)))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    Ok(json!({
        "total_count": answer.get("total_count").cloned().unwrap_or(json!(items.len())),
        "incomplete_results": answer.get("incomplete_results").cloned().unwrap_or(json!(false)),
        "page": page,
        "per_page": per_page,
        "has_more": has_more,
        "items": items,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetIssueArgs {
    /// The user or organisation that owns the repository, e.g. rust-lang.
    owner: Name,
    /// The repository name without its owner, e.g. cargo.
    repo: Name,
    /// The issue or pull request number.
    #[schemars(range(min = 1))]
    number: u64,
    /// Most comments to return; 0 for none.
    #[serde(default = "default_limit")]
    #[schemars(range(max = MAX_LIMIT))]
    comment_limit: usize,
}

pub fn get_issue(args: GetIssueArgs, call: &mut Call) -> Result<Value, ToolError> {
    let number = args.number;
    let comment_limit = args.comment_limit;
    let base = format!(
        "{}/issues/{number}",
        repo_path(&args.owner.0, &args.repo.0)?
    );
    let what = format!("issue #{number} in {}/{}", args.owner, args.repo);
    let issue: Value = api::get(call.http, &base, &what)?.json()?;
    let count = issue.get("comments").and_then(Value::as_u64).unwrap_or(1);
    let comments = if comment_limit == 0 || count == 0 {
        api::Page {
            items: Vec::new(),
            more: comment_limit == 0 && count > 0,
        }
    } else {
        let path = Query::new(format!("{base}/comments"))
            .set("per_page", comment_limit.min(MAX_PER_PAGE as usize))
            .build();
        api::collect(call.http, path, comment_limit, &what, |c| {
            Some(shape::comment(c))
        })?
    };
    Ok(json!({
        "issue": shape::issue(&issue, None),
        "comments": comments.items,
        "comments_has_more": comments.more,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIssueArgs {
    /// The user or organisation that owns the repository, e.g. rust-lang.
    owner: Name,
    /// The repository name without its owner, e.g. cargo.
    repo: Name,
    /// Issue title.
    #[schemars(length(min = 1, max = 256))]
    title: String,
    /// Markdown body.
    #[schemars(length(max = 65536))]
    body: Option<String>,
    /// Label names.
    #[schemars(length(max = 100), inner(length(min = 1, max = 100)))]
    labels: Option<Vec<String>>,
    /// Logins to assign.
    #[schemars(length(max = 10), inner(length(min = 1, max = 100)))]
    assignees: Option<Vec<String>>,
}

pub fn create_issue(args: CreateIssueArgs, call: &mut Call) -> Result<Value, ToolError> {
    let title = non_empty("title", &args.title)?;
    let path = format!("{}/issues", repo_path(&args.owner.0, &args.repo.0)?);
    let mut body = json!({"title": title});
    if let Some(text) = args.body {
        body["body"] = json!(text);
    }
    if let Some(labels) = args.labels {
        body["labels"] = json!(labels);
    }
    if let Some(assignees) = args.assignees {
        body["assignees"] = json!(assignees);
    }
    let what = format!("repository {}/{}", args.owner, args.repo);
    let issue: Value = api::post(call.http, &path, &body, &what)?.json()?;
    Ok(shape::issue(&issue, None))
}

/// The state an issue is set to.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NewState {
    Open,
    Closed,
}

/// Why an issue is closed, or that it is reopened.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateReason {
    Completed,
    NotPlanned,
    Reopened,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIssueArgs {
    /// The user or organisation that owns the repository, e.g. rust-lang.
    owner: Name,
    /// The repository name without its owner, e.g. cargo.
    repo: Name,
    /// The issue or pull request number.
    #[schemars(range(min = 1))]
    number: u64,
    /// open to reopen it, closed to close it.
    state: Option<NewState>,
    /// With state: closed as completed (the default) or not_planned; reopened with open.
    state_reason: Option<StateReason>,
    /// The new title, replacing the old one.
    #[schemars(length(min = 1, max = 256))]
    title: Option<String>,
    /// The new Markdown body, replacing the old one.
    #[schemars(length(max = 65536))]
    body: Option<String>,
    /// The label names it will have, replacing all it has; [] removes them all.
    #[schemars(length(max = 100), inner(length(min = 1, max = 100)))]
    labels: Option<Vec<String>>,
}

pub fn update_issue(args: UpdateIssueArgs, call: &mut Call) -> Result<Value, ToolError> {
    let number = args.number;
    let mut body = serde_json::Map::new();
    if let Some(state) = &args.state {
        body.insert("state".into(), json!(wire(state)));
    }
    if let Some(reason) = &args.state_reason {
        if args.state.is_none() {
            return Err(ToolError::InvalidArguments(
                "state_reason goes with state: closed (completed or not_planned) or open (reopened)".into(),
            ));
        }
        body.insert("state_reason".into(), json!(wire(reason)));
    }
    if let Some(title) = &args.title {
        body.insert("title".into(), json!(non_empty("title", title)?));
    }
    if let Some(text) = args.body {
        body.insert("body".into(), json!(text));
    }
    if let Some(labels) = args.labels {
        body.insert("labels".into(), json!(labels));
    }
    if body.is_empty() {
        return Err(ToolError::InvalidArguments(
            "nothing to change: give state, title, body or labels".into(),
        ));
    }
    let path = format!(
        "{}/issues/{number}",
        repo_path(&args.owner.0, &args.repo.0)?
    );
    let what = format!("issue #{number} in {}/{}", args.owner, args.repo);
    let issue: Value = api::patch(call.http, &path, &Value::Object(body), &what)?.json()?;
    Ok(shape::issue(&issue, None))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentArgs {
    /// The user or organisation that owns the repository, e.g. rust-lang.
    owner: Name,
    /// The repository name without its owner, e.g. cargo.
    repo: Name,
    /// The issue or pull request number.
    #[schemars(range(min = 1))]
    number: u64,
    /// Markdown text of the comment.
    #[schemars(length(min = 1, max = 65536))]
    body: String,
}

pub fn comment_on_issue(args: CommentArgs, call: &mut Call) -> Result<Value, ToolError> {
    let number = args.number;
    let text = non_empty("body", &args.body)?;
    let path = format!(
        "{}/issues/{number}/comments",
        repo_path(&args.owner.0, &args.repo.0)?
    );
    let what = format!("issue #{number} in {}/{}", args.owner, args.repo);
    let comment: Value = api::post(call.http, &path, &json!({"body": text}), &what)?.json()?;
    Ok(shape::comment(&comment))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentsArgs {
    /// The user or organisation that owns the repository, e.g. rust-lang.
    owner: Name,
    /// The repository name without its owner, e.g. cargo.
    repo: Name,
    /// File or directory path, e.g. src/main.rs or docs.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    path: String,
    /// Branch, tag or commit SHA; default: the repository's default branch.
    #[serde(rename = "ref")]
    #[schemars(length(max = 255))]
    reference: Option<String>,
}

pub fn get_file_contents(args: ContentsArgs, call: &mut Call) -> Result<Value, ToolError> {
    let file = api::file_path(&args.path)?;
    let reference = args.reference.filter(|r| !r.trim().is_empty());
    let path = Query::new(format!(
        "{}/contents/{file}",
        repo_path(&args.owner.0, &args.repo.0)?
    ))
    .opt("ref", reference.as_deref())
    .build();
    let shown = args.path.trim_matches('/');
    let what = match &reference {
        Some(r) => format!(
            "path {shown:?} at ref {r:?} in repository {}/{}",
            args.owner, args.repo
        ),
        None => format!("path {shown:?} in repository {}/{}", args.owner, args.repo),
    };
    let answer: Value = api::get(call.http, &path, &what)?.json()?;
    Ok(shape::contents(&answer, shown, reference.as_deref()))
}
