"""The github and notion modules end to end: tokens added through the CLI,
calls through the official MCP client, upstreams served locally.

Each test gets a home with the bundled modules, the committed lock, and an
mcpist.toml whose `[upstreams]` send api.github.com and api.notion.com to the
local servers in tests/e2e/upstreams (which tell accounts apart by token).
The owner allows those two hosts to resolve to 127.0.0.1 with
`mcpist plugins host ... --allow-private`, as anyone pointing a module at a
server on their own network would.
"""

import json
import os
import stat

import pytest
from mcp import Client

from support import mcpist, python_upstream, serve, text_of

GITHUB_TOKENS = {"ghp_personal_1111aaaa": "alice", "ghp_work_2222bbbb": "alice-work"}
NOTION_TOKENS = {"secret_notion_a_3333": "workspace-a", "secret_notion_b_4444": "workspace-b"}
SECRETS = [*GITHUB_TOKENS, *NOTION_TOKENS]


@pytest.fixture
def upstreams():
    with python_upstream("github", GITHUB_TOKENS) as github, python_upstream("notion", NOTION_TOKENS) as notion:
        yield {"github": github, "notion": notion}


@pytest.fixture
def owner(home, upstreams):
    """A home set up as its owner would: upstreams, host rules, accounts."""
    (home / "mcpist.toml").write_text(
        "[log]\n"
        'file = "mcpist.log"\n'
        "[upstreams]\n"
        f'"api.github.com" = "{upstreams["github"]}"\n'
        f'"api.notion.com" = "{upstreams["notion"]}"\n'
    )
    for module, host in [("github", "https://api.github.com"), ("notion", "https://api.notion.com")]:
        out = mcpist(home, "plugins", "host", module, host, "--allow-private").stdout
        assert "private addresses allowed" in out
    add = lambda *args, token: mcpist(home, "account", "add", *args, stdin=token + "\n")  # noqa: E731
    assert "default github account" in add("github", "personal", token="ghp_personal_1111aaaa").stdout
    add("github", "work", token="ghp_work_2222bbbb")
    add("notion", "team-a", token="secret_notion_a_3333")
    add("notion", "team-b", "--default", token="secret_notion_b_4444")
    return home


def call(client, module, tool, arguments=None, account=None):
    params = {"module": module, "tool": tool, "arguments": arguments or {}}
    if account is not None:
        params["account"] = account
    return client.call_tool("call_module_tool", params)


async def ok(client, module, tool, arguments=None, account=None):
    result = await call(client, module, tool, arguments, account)
    assert not result.is_error, text_of(result)
    return result.structured_content


def assert_no_secret(home, *texts):
    """No token anywhere: not in answers, the log, or the files on disk."""
    files = [p for p in home.iterdir() if p.is_file() and p.suffix in (".toml", ".log", ".lock", ".enc")]
    haystack = "\n".join([*texts, *(p.read_bytes().decode("utf-8", "replace") for p in files)])
    for secret in SECRETS:
        assert secret not in haystack


def test_account_cli_keeps_tokens_out_of_sight(owner):
    listing = mcpist(owner, "account", "list").stdout
    lines = [line.split() for line in listing.splitlines()]
    assert lines[0] == ["SERVICE", "ACCOUNT", "DEFAULT", "KIND", "VAULT", "REFERENCE", "EXPIRES", "SECRET"]
    rows = {(row[0], row[1]): row for row in lines[1:]}
    assert set(rows) == {("github", "personal"), ("github", "work"), ("notion", "team-a"), ("notion", "team-b")}
    assert rows[("github", "personal")][2] == "yes" and rows[("notion", "team-b")][2] == "yes"
    assert all(row[-1] == "ok" for row in rows.values())
    # The vault is encrypted, its key file private to the owner.
    assert stat.S_IMODE(os.stat(owner / "vault.key").st_mode) == 0o600
    assert_no_secret(owner, listing)
    # A token is never taken from the command line.
    refused = mcpist(owner, "account", "add", "github", "cli", "ghp_on_the_command_line", check=False)
    assert refused.returncode != 0 and "unexpected argument" in refused.stderr
    empty = mcpist(owner, "account", "add", "github", "blank", stdin="\n", check=False)
    assert empty.returncode != 0 and "no token was given" in empty.stderr
    # The default moves, and removal forgets the account and its secret.
    mcpist(owner, "account", "default", "github", "work")
    assert "yes" in [line for line in mcpist(owner, "account", "list", "github").stdout.splitlines() if " work " in line][0]
    removed = mcpist(owner, "account", "remove", "github", "personal").stdout
    assert "Removed github account `personal`" in removed
    assert ("github", "personal") not in {
        tuple(line.split()[:2]) for line in mcpist(owner, "account", "list").stdout.splitlines()
    }


def test_a_wrong_vault_key_is_reported_and_damages_nothing(owner):
    before = (owner / "vault.enc").read_bytes()
    env_key = {"MCPIST_VAULT_KEY": "11" * 32}
    import subprocess

    from support import BINARY, env_for

    listing = subprocess.run(
        [str(BINARY), "account", "list"], env=env_for(owner, **env_key), capture_output=True, text=True
    )
    assert "unavailable" in listing.stdout
    added = subprocess.run(
        [str(BINARY), "account", "add", "github", "third"],
        env=env_for(owner, **env_key), input="ghp_third_5555\n", capture_output=True, text=True,
    )
    assert added.returncode != 0
    assert "vault `local` is unavailable" in added.stderr
    assert (owner / "vault.enc").read_bytes() == before
    assert "ghp_third_5555" not in added.stderr


@pytest.mark.anyio
async def test_github_through_the_mcp_client(owner):
    async with Client(serve(owner, log_level="trace")) as client:
        schema = await client.call_tool("get_module_schema", {"module": "github"})
        (github,) = schema.structured_content["modules"]
        assert github["accounts"] == [{"service": "github", "accounts": ["personal", "work"], "default": "personal"}]

        # The default account, then the other one: each reaches the upstream
        # with its own token, so each sees its own repositories.
        mine = await ok(client, "github", "list_my_repositories")
        names = {r["full_name"] for r in mine["repositories"]}
        assert "alice/alice-repo-1" in names and "acme/handbook" in names
        assert not any(n.startswith("alice-work/") for n in names)
        work = await ok(client, "github", "list_my_repositories", account="work")
        assert "alice-work/notes" in {r["full_name"] for r in work["repositories"]}

        repo = await ok(client, "github", "get_repository", {"owner": "alice", "repo": "alice-repo-1"})
        assert repo["full_name"] == "alice/alice-repo-1" and repo["language"] == "Rust"

        # Link pagination, followed through the host (which maps the local
        # server's links back to api.github.com).
        issues = await ok(client, "github", "list_issues",
                          {"owner": "alice", "repo": "alice-repo-1", "state": "all", "per_page": 4, "limit": 12})
        assert issues["count"] == 12 and issues["has_more"] is True

        found = await ok(client, "github", "search_issues", {"q": "repo:alice/alice-repo-1 is:pr crash"})
        assert [i["number"] for i in found["items"]] == [3]

        created = await ok(client, "github", "create_issue",
                           {"owner": "alice", "repo": "notes", "title": "Filed over MCP", "body": "From the e2e test."})
        number = created["number"]
        comment = await ok(client, "github", "comment_on_issue",
                           {"owner": "alice", "repo": "notes", "number": number, "body": "A first comment."})
        assert comment["user"] == "alice"
        issue = await ok(client, "github", "get_issue", {"owner": "alice", "repo": "notes", "number": number})
        assert issue["issue"]["title"] == "Filed over MCP"
        assert [c["body"] for c in issue["comments"]] == ["A first comment."]

        readme = await ok(client, "github", "get_file_contents",
                          {"owner": "alice", "repo": "notes", "path": "README.md"})
        assert "These notes belong to alice." in json.dumps(readme)

        # A private repository of the other account is invisible to this one.
        hidden = await call(client, "github", "get_repository", {"owner": "alice-work", "repo": "notes"})
        assert hidden.is_error and "HTTP 404" in text_of(hidden)
        texts = [json.dumps(x) for x in (mine, work, repo, issues, found, created, issue, readme)]
    assert_no_secret(owner, *texts)
    log = (owner / "mcpist.log").read_text()
    assert "outbound request" in log, "the trace log shows each request, without its credential"


@pytest.mark.anyio
async def test_notion_through_the_mcp_client(owner):
    async with Client(serve(owner, log_level="trace")) as client:
        schema = await client.call_tool("get_module_schema", {"module": "notion"})
        (notion,) = schema.structured_content["modules"]
        assert notion["accounts"] == [{"service": "notion", "accounts": ["team-a", "team-b"], "default": "team-b"}]

        b = await ok(client, "notion", "search", {"query": "Welcome"})
        assert [r["title"] for r in b["results"]] == ["Welcome to workspace-b"]
        a = await ok(client, "notion", "search", {"query": "Welcome"}, account="team-a")
        assert [r["title"] for r in a["results"]] == ["Welcome to workspace-a"]

        page = await call(client, "notion", "get_page", {"page_id": a["results"][0]["id"]}, account="team-a")
        assert not page.is_error, text_of(page)
        assert "This is the workspace-a workspace." in text_of(page)

        databases = await ok(client, "notion", "search", {"kind": "database"}, account="team-a")
        tasks = next(d for d in databases["results"] if d["title"] == "Tasks")
        rows = await ok(client, "notion", "query_database", {"database_id": tasks["id"]}, account="team-a")
        assert rows["results"] and all("properties" in r for r in rows["results"])

        created = await ok(client, "notion", "create_page",
                           {"parent_page_id": a["results"][0]["id"], "title": "Written over MCP",
                            "content": "First paragraph.\n\nSecond paragraph."}, account="team-a")
        assert created["paragraph_blocks"] == 2
        again = await ok(client, "notion", "search", {"query": "Written over MCP"}, account="team-a")
        assert [r["title"] for r in again["results"]] == ["Written over MCP"]
        # Written with team-a's token, so team-b's workspace does not have it.
        other = await ok(client, "notion", "search", {"query": "Written over MCP"})
        assert other["results"] == []
    assert_no_secret(owner, text_of(page))


@pytest.mark.anyio
async def test_account_errors_say_what_to_do(owner):
    async with Client(serve(owner)) as client:
        unknown = await call(client, "github", "list_my_repositories", account="nobody")
        assert unknown.is_error
        assert "there is no `github` account named `nobody`; github accounts: personal, work" in text_of(unknown)
        # An account of another service is not an account of this one.
        crossed = await call(client, "github", "list_my_repositories", account="team-a")
        assert crossed.is_error and "no `github` account named `team-a`" in text_of(crossed)
        # Modules without credentials take no account.
        text = await call(client, "text", "count", {"text": "x"}, account="personal")
        assert text.is_error and "uses no accounts" in text_of(text)
        # The server keeps serving.
        await ok(client, "github", "get_repository", {"owner": "alice", "repo": "alice-repo-1"})

    mcpist(owner, "account", "remove", "notion", "team-a")
    mcpist(owner, "account", "remove", "notion", "team-b")
    async with Client(serve(owner)) as client:
        none = await call(client, "notion", "search", {})
        assert none.is_error
        assert "no `notion` account is set up: add one with `mcpist account add notion NAME`" in text_of(none)
        schema = await client.call_tool("get_module_schema", {"module": "notion"})
        (notion,) = schema.structured_content["modules"]
        assert notion["accounts"][0]["accounts"] == []
        assert "mcpist account add notion NAME" in notion["accounts"][0]["hint"]


@pytest.mark.anyio
async def test_accounts_added_while_serving_are_usable_at_once(owner):
    mcpist(owner, "account", "remove", "github", "work")
    async with Client(serve(owner)) as client:
        missing = await call(client, "github", "list_my_repositories", account="work")
        assert missing.is_error
        mcpist(owner, "account", "add", "github", "work", stdin="ghp_work_2222bbbb\n")
        work = await ok(client, "github", "list_my_repositories", account="work")
        assert "alice-work/notes" in {r["full_name"] for r in work["repositories"]}


@pytest.mark.anyio
async def test_an_upstream_that_is_not_allowed_private_is_refused(owner):
    assert "https://api.github.com  (private addresses allowed)" in mcpist(owner, "plugins", "list").stdout
    # Without the owner's allow-private, api.github.com -> 127.0.0.1 is refused.
    mcpist(owner, "plugins", "host", "github", "https://api.github.com")
    listing = mcpist(owner, "plugins", "list").stdout
    assert "https://api.github.com  (any method and path; public addresses only)" in listing
    async with Client(serve(owner)) as client:
        refused = await call(client, "github", "list_my_repositories")
    assert refused.is_error
    assert "--allow-private" in text_of(refused)
