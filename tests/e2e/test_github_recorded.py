"""The github module against recorded real GitHub API traffic.

`@octokit/fixtures-server` (npm) replays scenarios recorded from
api.github.com and answers 404 to any request that differs from the
recording in method, path, query, the Accept and Authorization headers, or
the JSON body. Each scenario gets its own mcpist, whose `[upstreams]` entry
points api.github.com at the scenario's replay URL, and an account holding
the token the recordings were made with.

`cargo xtask test` installs the package (pinned in tests/e2e/package.json)
into target/e2e-npm and passes its binary as OCTOKIT_FIXTURES_SERVER.
"""

import json
import os
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from mcp import Client

from support import REPO, free_port, mcpist, serve, text_of

SERVER = Path(
    os.environ.get(
        "OCTOKIT_FIXTURES_SERVER",
        REPO / "target" / "e2e-npm" / "node_modules" / ".bin" / "octokit-fixtures-server",
    )
)
# The token in every recorded request.
RECORDED_TOKEN = "0000000000000000000000000000000000000001"


@pytest.fixture(scope="module")
def replay():
    """A running fixtures server; yields a function that loads a scenario and
    returns its base URL."""
    if not SERVER.exists():
        pytest.fail(f"{SERVER} is missing: run `cargo xtask test`, which installs @octokit/fixtures-server")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(SERVER), "--port", str(port), "--fixtures-url", base, "--log-level", "silent"],
        cwd=SERVER.parent.parent.parent,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/ping", timeout=1).read()
                break
            except OSError:
                assert process.poll() is None, "octokit-fixtures-server exited"
                assert time.monotonic() < deadline, "octokit-fixtures-server did not start"
                time.sleep(0.2)

        def load(scenario):
            request = urllib.request.Request(
                f"{base}/fixtures",
                data=json.dumps({"scenario": scenario}).encode(),
                headers={"Content-Type": "application/json"},
            )
            return json.load(urllib.request.urlopen(request, timeout=10))["url"]

        yield load
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def github_against(home, replay_url):
    (home / "mcpist.toml").write_text(f'[upstreams]\n"api.github.com" = "{replay_url}"\n')
    mcpist(home, "plugins", "host", "github", "https://api.github.com", "--allow-private")
    mcpist(home, "account", "add", "github", "octokit", stdin=RECORDED_TOKEN)
    yield serve(home)


async def run(client, tool, arguments):
    result = await client.call_tool("call_module_tool", {"module": "github", "tool": tool, "arguments": arguments})
    assert not result.is_error, text_of(result)
    assert RECORDED_TOKEN not in text_of(result)
    return result.structured_content


@pytest.mark.anyio
async def test_get_repository(home, replay):
    with github_against(home, replay("get-repository")) as server:
        async with Client(server) as client:
            repo = await run(client, "get_repository", {"owner": "octokit-fixture-org", "repo": "hello-world"})
    assert repo["full_name"] == "octokit-fixture-org/hello-world"
    assert repo["default_branch"] == "master"
    assert repo["private"] is False


@pytest.mark.anyio
async def test_search_issues(home, replay):
    with github_against(home, replay("search-issues")) as server:
        async with Client(server) as client:
            found = await run(client, "search_issues", {"q": "sesame repo:octokit-fixture-org/search-issues"})
    assert found["total_count"] == 2
    assert [i["number"] for i in found["items"]] == [2, 1]
    assert found["items"][0]["title"] == "Sesame seeds split without a pop!"
    assert found["has_more"] is False


@pytest.mark.anyio
async def test_list_issues_follows_recorded_link_pagination(home, replay):
    # Five recorded pages (3+3+3+3+1); the Link headers name api.github.com
    # URLs under /repositories/1000/, which the host maps to the replay.
    with github_against(home, replay("paginate-issues")) as server:
        async with Client(server) as client:
            issues = await run(
                client, "list_issues",
                {"owner": "octokit-fixture-org", "repo": "paginate-issues", "per_page": 3, "limit": 100},
            )
    assert issues["count"] == 13
    assert issues["has_more"] is False
    assert len({i["number"] for i in issues["issues"]}) == 13


@pytest.mark.anyio
async def test_create_issue(home, replay):
    with github_against(home, replay("add-labels-to-issue")) as server:
        async with Client(server) as client:
            created = await run(
                client, "create_issue",
                {"owner": "octokit-fixture-org", "repo": "add-labels-to-issue", "title": "Issue without a label"},
            )
    assert created["number"] == 1
    assert created["title"] == "Issue without a label"
    assert created["state"] == "open"


@pytest.mark.anyio
async def test_a_request_the_recording_does_not_have_is_an_error(home, replay):
    """The replay is strict: the module's requests above matched the recorded
    ones exactly, or they would have failed like this one."""
    with github_against(home, replay("get-repository")) as server:
        async with Client(server) as client:
            result = await client.call_tool(
                "call_module_tool",
                {"module": "github", "tool": "get_repository", "arguments": {"owner": "octokit-fixture-org", "repo": "other"}},
            )
    assert result.is_error
    assert "HTTP 404" in text_of(result)
