//! The tools: arguments in, trimmed GitHub answers out.

use mcpist_plugin::{ToolError, arguments};
use serde::Deserialize;
use serde_json::{Value, json};

use mcpist_plugin::web::Transport;

use crate::api::{self, Query, repo_path};
use crate::shape;

/// Items a list tool returns unless asked for another number.
pub const DEFAULT_LIMIT: usize = 30;
/// Most items a list tool collects in one call (over several pages).
pub const MAX_LIMIT: usize = 300;
/// GitHub's own page size bound.
pub const MAX_PER_PAGE: u32 = 100;

/// Run `tool` with `args` (JSON text) over `http`.
pub fn run(http: &mut dyn Transport, tool: &str, args: &str) -> Result<Value, ToolError> {
    match tool {
        "list_my_repositories" => list_my_repositories(http, arguments(args)?),
        "get_repository" => get_repository(http, arguments(args)?),
        "list_issues" => list_issues(http, arguments(args)?),
        "search_issues" => search_issues(http, arguments(args)?),
        "get_issue" => get_issue(http, arguments(args)?),
        "create_issue" => create_issue(http, arguments(args)?),
        "comment_on_issue" => comment_on_issue(http, arguments(args)?),
        "get_file_contents" => get_file_contents(http, arguments(args)?),
        other => Err(ToolError::UnknownTool(format!(
            "github has no tool named {other:?}"
        ))),
    }
}

fn one_of<'a>(name: &str, value: &'a str, allowed: &[&str]) -> Result<&'a str, ToolError> {
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(ToolError::InvalidArguments(format!(
            "{name} must be one of {}, not {value:?}",
            allowed.join(", ")
        )))
    }
}

fn limit(limit: Option<usize>) -> Result<usize, ToolError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ToolError::InvalidArguments(format!(
            "limit must be between 1 and {MAX_LIMIT}, not {n}"
        ))),
    }
}

/// The page size: as asked, or large enough to reach `limit` in few pages.
fn per_page(per_page: Option<u32>, limit: usize) -> Result<u32, ToolError> {
    match per_page {
        None => Ok((limit as u32).min(MAX_PER_PAGE)),
        Some(n) if (1..=MAX_PER_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(ToolError::InvalidArguments(format!(
            "per_page must be between 1 and {MAX_PER_PAGE}, not {n}"
        ))),
    }
}

fn issue_number(number: u64) -> Result<u64, ToolError> {
    if number == 0 {
        return Err(ToolError::InvalidArguments(
            "number must be 1 or more (issue numbers start at 1)".into(),
        ));
    }
    Ok(number)
}

fn non_empty<'a>(name: &str, value: &'a str) -> Result<&'a str, ToolError> {
    if value.trim().is_empty() {
        return Err(ToolError::InvalidArguments(format!(
            "{name} must not be empty"
        )));
    }
    Ok(value)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListReposArgs {
    visibility: Option<String>,
    affiliation: Option<Vec<String>>,
    sort: Option<String>,
    direction: Option<String>,
    per_page: Option<u32>,
    limit: Option<usize>,
}

fn list_my_repositories(http: &mut dyn Transport, args: ListReposArgs) -> Result<Value, ToolError> {
    let limit = limit(args.limit)?;
    let per_page = per_page(args.per_page, limit)?;
    let visibility = args
        .visibility
        .as_deref()
        .map(|v| one_of("visibility", v, &["all", "public", "private"]))
        .transpose()?;
    let affiliation = match &args.affiliation {
        Some(list) if list.is_empty() => {
            return Err(ToolError::InvalidArguments(
                "affiliation, when given, must name at least one of owner, collaborator, organization_member".into(),
            ));
        }
        Some(list) => {
            for a in list {
                one_of(
                    "affiliation",
                    a,
                    &["owner", "collaborator", "organization_member"],
                )?;
            }
            Some(list.join(","))
        }
        None => None,
    };
    let sort = args
        .sort
        .as_deref()
        .map(|s| one_of("sort", s, &["created", "updated", "pushed", "full_name"]))
        .transpose()?;
    let direction = args
        .direction
        .as_deref()
        .map(|d| one_of("direction", d, &["asc", "desc"]))
        .transpose()?;
    let path = Query::new("/user/repos".into())
        .opt("visibility", visibility)
        .opt("affiliation", affiliation)
        .opt("sort", sort)
        .opt("direction", direction)
        .set("per_page", per_page)
        .build();
    let page = api::collect(
        http,
        path,
        limit,
        "the repository list of this account",
        |repo| Some(shape::repo_summary(repo)),
    )?;
    Ok(json!({
        "count": page.items.len(),
        "has_more": page.more,
        "repositories": page.items,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoArgs {
    owner: String,
    repo: String,
}

fn get_repository(http: &mut dyn Transport, args: RepoArgs) -> Result<Value, ToolError> {
    let path = repo_path(&args.owner, &args.repo)?;
    let what = format!("repository {}/{}", args.owner, args.repo);
    let repo: Value = api::get(http, &path, &what)?.json()?;
    Ok(shape::repo_detail(&repo))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListIssuesArgs {
    owner: String,
    repo: String,
    state: Option<String>,
    labels: Option<String>,
    assignee: Option<String>,
    since: Option<String>,
    sort: Option<String>,
    direction: Option<String>,
    include_pull_requests: Option<bool>,
    per_page: Option<u32>,
    limit: Option<usize>,
}

fn list_issues(http: &mut dyn Transport, args: ListIssuesArgs) -> Result<Value, ToolError> {
    let limit = limit(args.limit)?;
    let per_page = per_page(args.per_page, limit)?;
    let state = args
        .state
        .as_deref()
        .map(|s| one_of("state", s, &["open", "closed", "all"]))
        .transpose()?;
    let sort = args
        .sort
        .as_deref()
        .map(|s| one_of("sort", s, &["created", "updated", "comments"]))
        .transpose()?;
    let direction = args
        .direction
        .as_deref()
        .map(|d| one_of("direction", d, &["asc", "desc"]))
        .transpose()?;
    let labels = args.labels.as_deref().map(|l| {
        l.split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(",")
    });
    let path = Query::new(format!("{}/issues", repo_path(&args.owner, &args.repo)?))
        .opt("state", state)
        .opt("labels", labels.filter(|l| !l.is_empty()))
        .opt("assignee", args.assignee.filter(|a| !a.is_empty()))
        .opt("since", args.since.filter(|s| !s.is_empty()))
        .opt("sort", sort)
        .opt("direction", direction)
        .set("per_page", per_page)
        .build();
    let include_prs = args.include_pull_requests.unwrap_or(true);
    let what = format!("repository {}/{}", args.owner, args.repo);
    let page = api::collect(http, path, limit, &what, |issue| {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    q: String,
    sort: Option<String>,
    order: Option<String>,
    per_page: Option<u32>,
    page: Option<u32>,
}

fn search_issues(http: &mut dyn Transport, args: SearchArgs) -> Result<Value, ToolError> {
    let q = non_empty("q", &args.q)?;
    let sort = args
        .sort
        .as_deref()
        .map(|s| {
            one_of(
                "sort",
                s,
                &[
                    "comments",
                    "reactions",
                    "reactions-+1",
                    "reactions--1",
                    "reactions-smile",
                    "reactions-thinking_face",
                    "reactions-heart",
                    "reactions-tada",
                    "interactions",
                    "created",
                    "updated",
                ],
            )
        })
        .transpose()?;
    let order = args
        .order
        .as_deref()
        .map(|o| one_of("order", o, &["asc", "desc"]))
        .transpose()?;
    let per_page = per_page(args.per_page, DEFAULT_LIMIT)?;
    let page = args.page.unwrap_or(1);
    if page == 0 {
        return Err(ToolError::InvalidArguments("page must be 1 or more".into()));
    }
    if u64::from(page - 1) * u64::from(per_page) >= 1000 {
        return Err(ToolError::InvalidArguments(format!(
            "GitHub search only returns the first 1000 results: page {page} at per_page {per_page} is beyond them; narrow the query instead"
        )));
    }
    let path = Query::new("/search/issues".into())
        .set("q", q)
        .opt("sort", sort)
        .opt("order", order)
        // GitHub's defaults (30 per page, page 1) stay implicit.
        .opt("per_page", (per_page != 30).then_some(per_page))
        .opt("page", (page != 1).then_some(page))
        .build();
    let response = api::get(http, &path, "the search")?;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetIssueArgs {
    owner: String,
    repo: String,
    number: u64,
    comment_limit: Option<usize>,
}

fn get_issue(http: &mut dyn Transport, args: GetIssueArgs) -> Result<Value, ToolError> {
    let number = issue_number(args.number)?;
    let comment_limit = match args.comment_limit {
        None => DEFAULT_LIMIT,
        Some(n) if n <= MAX_LIMIT => n,
        Some(n) => {
            return Err(ToolError::InvalidArguments(format!(
                "comment_limit must be between 0 and {MAX_LIMIT}, not {n}"
            )));
        }
    };
    let base = format!("{}/issues/{number}", repo_path(&args.owner, &args.repo)?);
    let what = format!("issue #{number} in {}/{}", args.owner, args.repo);
    let issue: Value = api::get(http, &base, &what)?.json()?;
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
        api::collect(http, path, comment_limit, &what, |c| {
            Some(shape::comment(c))
        })?
    };
    Ok(json!({
        "issue": shape::issue(&issue, None),
        "comments": comments.items,
        "comments_has_more": comments.more,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIssueArgs {
    owner: String,
    repo: String,
    title: String,
    body: Option<String>,
    labels: Option<Vec<String>>,
    assignees: Option<Vec<String>>,
}

fn create_issue(http: &mut dyn Transport, args: CreateIssueArgs) -> Result<Value, ToolError> {
    let title = non_empty("title", &args.title)?;
    let path = format!("{}/issues", repo_path(&args.owner, &args.repo)?);
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
    let issue: Value = api::post(http, &path, &body, &what)?.json()?;
    Ok(shape::issue(&issue, None))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentArgs {
    owner: String,
    repo: String,
    number: u64,
    body: String,
}

fn comment_on_issue(http: &mut dyn Transport, args: CommentArgs) -> Result<Value, ToolError> {
    let number = issue_number(args.number)?;
    let text = non_empty("body", &args.body)?;
    let path = format!(
        "{}/issues/{number}/comments",
        repo_path(&args.owner, &args.repo)?
    );
    let what = format!("issue #{number} in {}/{}", args.owner, args.repo);
    let comment: Value = api::post(http, &path, &json!({"body": text}), &what)?.json()?;
    Ok(shape::comment(&comment))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentsArgs {
    owner: String,
    repo: String,
    #[serde(default)]
    path: String,
    #[serde(rename = "ref")]
    reference: Option<String>,
}

fn get_file_contents(http: &mut dyn Transport, args: ContentsArgs) -> Result<Value, ToolError> {
    let file = api::file_path(&args.path)?;
    let reference = args.reference.filter(|r| !r.trim().is_empty());
    let path = Query::new(format!(
        "{}/contents/{file}",
        repo_path(&args.owner, &args.repo)?
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
    let answer: Value = api::get(http, &path, &what)?.json()?;
    Ok(shape::contents(&answer, shown, reference.as_deref()))
}
