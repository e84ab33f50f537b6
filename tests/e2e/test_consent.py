"""Consent before destructive calls, as the person at the client sees it:
an MCP form elicitation naming the module, tool, account and arguments,
sent while the call waits (MCP 2025-11-25) or as an `input_required` round
the client answers by retrying (2026-07-28); over stdio and Streamable HTTP.
The local GitHub upstream shows whether the write happened.
"""

import asyncio
import contextlib

import httpx2
import pytest
from mcp import Client, types

from support import add_client, connect, http_server, mcpist, python_upstream, records, serve, text_of

TOKEN = "ghp_consent_1111aaaa"
OWNER, REPO = "alice", "alice-repo-1"


@pytest.fixture
def github():
    with python_upstream("github", {TOKEN: OWNER}) as base:
        yield base


def set_up(home, github, consent=""):
    (home / "mcpist.toml").write_text(f'[upstreams]\n"api.github.com" = "{github}"\n{consent}')
    mcpist(home, "plugins", "host", "github", "https://api.github.com", "--allow-private")
    mcpist(home, "account", "add", "github", "personal", stdin=TOKEN + "\n")
    return home


def issue_state(github, number):
    """What the upstream holds, asked directly."""
    answer = httpx2.get(
        f"{github}/repos/{OWNER}/{REPO}/issues/{number}",
        headers={"Authorization": f"token {TOKEN}", "Accept": "application/vnd.github+json",
                 "User-Agent": "test"},
    )
    answer.raise_for_status()
    return answer.json()["state"]


class Person:
    """An elicitation callback that answers as told, and keeps what it read."""

    def __init__(self, *answers, delay=0):
        self.answers = list(answers)
        self.asked = []
        self.delay = delay

    async def __call__(self, context, params):
        self.asked.append(params.message)
        if self.delay:
            await asyncio.sleep(self.delay)
        return types.ElicitResult(action=self.answers.pop(0), content={} if self.answers else None)


def close(client, number, tool="update_issue"):
    return client.call_tool("call_module_tool", {
        "module": "github", "tool": tool,
        "arguments": {"owner": OWNER, "repo": REPO, "number": number, "state": "closed"},
    })


@contextlib.asynccontextmanager
async def client_of(home, transport, mode, **options):
    if transport == "stdio":
        async with Client(serve(home), mode=mode, **options) as client:
            yield client
    else:
        key = add_client(home, "desk")
        with http_server(home) as base:
            async with connect(base, key, mode=mode, **options) as client:
                yield client


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_destructive_call_runs_only_after_the_person_accepts(home, github, transport, mode):
    set_up(home, github)
    person = Person("decline", "accept")
    async with client_of(home, transport, mode, elicitation_callback=person) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        declined = await close(client, 4)
        assert declined.is_error
        assert "declined" in text_of(declined) and "did not run" in text_of(declined)
        assert issue_state(github, 4) == "open", "declined, yet the upstream saw the write"
        accepted = await close(client, 4)
        assert not accepted.is_error, text_of(accepted)
        assert accepted.structured_content["state"] == "closed"
    assert issue_state(github, 4) == "closed"
    # What the person read names the call in full.
    assert len(person.asked) == 2
    question = person.asked[0]
    assert question.startswith('Allow github.update_issue as account "personal"?'), question
    assert "\n  number: 4" in question and "\n  state: closed" in question, question
    client = "stdio" if transport == "stdio" else "desk"
    outcomes = [(r["client"], r["tool"], r["outcome"]) for r in records(home) if r["tool"] == "update_issue"]
    assert [r.get("consent") for r in records(home) if r["outcome"] == "ok"] == ["accepted"]
    if mode == "legacy":
        assert outcomes == [(client, "update_issue", "declined"), (client, "update_issue", "ok")]
    else:
        # Each round of 2026-07-28 is a request of its own, and recorded.
        assert outcomes == [
            (client, "update_issue", "consent_asked"), (client, "update_issue", "declined"),
            (client, "update_issue", "consent_asked"), (client, "update_issue", "ok"),
        ]


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_client_that_cannot_ask_is_refused_with_the_rule_that_would_allow_it(home, github, transport, mode):
    set_up(home, github)
    async with client_of(home, transport, mode) as client:
        refused = await close(client, 4)
    assert refused.is_error
    text = text_of(refused)
    assert "elicitation" in text and "nothing ran" in text, text
    name = "stdio" if transport == "stdio" else "desk"
    assert f'[[consent.rules]]\nclients = ["{name}"]\ntools = ["github.update_issue"]\ndecision = "allow"' in text, text
    assert issue_state(github, 4) == "open"
    assert records(home)[-1]["outcome"] == "refused"


@pytest.mark.anyio
async def test_the_owners_rules_allow_deny_and_ask_where_the_author_did_not(home, github):
    set_up(home, github, """
[[consent.rules]]
tools = ["github.update_issue"]
decision = "allow"

[[consent.rules]]
tools = ["github.create_issue"]
decision = "deny"

[[consent.rules]]
tools = ["github.comment_on_issue"]
decision = "ask"
""")
    person = Person("decline")
    async with Client(serve(home), mode="legacy", elicitation_callback=person) as client:
        allowed = await close(client, 6)
        assert not allowed.is_error, text_of(allowed)
        denied = await client.call_tool("call_module_tool", {
            "module": "github", "tool": "create_issue",
            "arguments": {"owner": OWNER, "repo": REPO, "title": "x"}})
        assert denied.is_error and "consent policy" in text_of(denied), text_of(denied)
        commented = await client.call_tool("call_module_tool", {
            "module": "github", "tool": "comment_on_issue",
            "arguments": {"owner": OWNER, "repo": REPO, "number": 6, "body": "hello"}})
        assert commented.is_error and "declined" in text_of(commented)
        # A read is never asked about.
        read = await client.call_tool("call_module_tool", {
            "module": "github", "tool": "get_issue",
            "arguments": {"owner": OWNER, "repo": REPO, "number": 6}})
        assert not read.is_error
        assert read.structured_content["comments"] == []
    assert issue_state(github, 6) == "closed"
    assert len(person.asked) == 1 and person.asked[0].startswith("Allow github.comment_on_issue")
    assert [(r["outcome"], r.get("consent")) for r in records(home)] == [
        ("ok", "allowed"), ("refused", None), ("declined", None), ("ok", None)]


@pytest.mark.anyio
async def test_in_flat_mode_the_module_tool_itself_asks_first(home, github):
    set_up(home, github, '[serve]\ntools = "flat"\n')
    person = Person("decline", "accept")
    async with Client(serve(home), elicitation_callback=person) as client:
        arguments = {"owner": OWNER, "repo": REPO, "number": 10, "state": "closed"}
        declined = await client.call_tool("github.update_issue", arguments)
        assert declined.is_error and "declined" in text_of(declined)
        assert issue_state(github, 10) == "open"
        accepted = await client.call_tool("github.update_issue", arguments)
        assert not accepted.is_error, text_of(accepted)
    assert issue_state(github, 10) == "closed"
    assert all(q.startswith("Allow github.update_issue") for q in person.asked) and len(person.asked) == 2


@pytest.mark.anyio
async def test_no_answer_in_time_is_a_refusal(home, github):
    set_up(home, github, "[consent]\ntimeout_secs = 1\n")
    person = Person("accept", delay=4)
    async with Client(serve(home), mode="legacy", elicitation_callback=person) as client:
        late = await close(client, 7)
    assert late.is_error and "within 1 s" in text_of(late), text_of(late)
    assert issue_state(github, 7) == "open"
    assert records(home)[-1]["outcome"] == "declined"


@pytest.mark.anyio
async def test_an_answer_is_spent_once_on_the_call_it_was_given_for(home, github):
    """At 2026-07-28 the client carries the answer back: it cannot carry it
    to another call, replay it, or make one up."""
    set_up(home, github)
    arguments = lambda n: {"module": "github", "tool": "update_issue",  # noqa: E731
                           "arguments": {"owner": OWNER, "repo": REPO, "number": n, "state": "closed"}}
    accept = lambda key: {key: {"action": "accept", "content": {}}}  # noqa: E731

    def asked(result):
        assert isinstance(result, types.InputRequiredResult), result
        (key, request), = result.input_requests.items()
        assert request.method == "elicitation/create"
        return key, result.request_state

    async with Client(serve(home), elicitation_callback=Person()) as client:
        assert client.protocol_version == "2026-07-28"
        session = client.session
        call = lambda args, **kw: session.call_tool("call_module_tool", args, allow_input_required=True, **kw)  # noqa: E731
        key, state = asked(await call(arguments(8)))
        # Spent on issue 9 instead: asked again, nothing run.
        asked(await call(arguments(9), input_responses=accept(key), request_state=state))
        # The state was spent by that try: replaying it for 8 asks again.
        asked(await call(arguments(8), input_responses=accept(key), request_state=state))
        # A made-up state asks again.
        asked(await call(arguments(8), input_responses=accept(key), request_state="0" * 64))
        assert issue_state(github, 8) == "open" and issue_state(github, 9) == "open"
        # Asked and answered as the protocol says: it runs.
        key, state = asked(await call(arguments(8)))
        done = await call(arguments(8), input_responses=accept(key), request_state=state)
        assert isinstance(done, types.CallToolResult) and not done.is_error, done
    assert issue_state(github, 8) == "closed" and issue_state(github, 9) == "open"


def test_the_typescript_sdk_is_asked_and_hears_log_lines_and_progress(home, github):
    """The official TypeScript SDK (2025-11-25) as a second client: it is
    asked before the destructive call (declined, then accepted), and hears
    the module's log lines at its level and the progress of a paginated
    listing."""
    import json
    import os
    import subprocess
    from pathlib import Path

    from support import REPO, install_fixture

    modules = Path(os.environ.get("MCPIST_NPM", REPO / "target" / "e2e-npm")) / "node_modules"
    if not (modules / "@modelcontextprotocol" / "sdk").is_dir():
        pytest.fail(f"{modules}/@modelcontextprotocol/sdk is missing: run `cargo xtask test`, which installs it")
    set_up(home, github)
    install_fixture(home, "hostile")
    key = add_client(home, "ts")
    with http_server(home) as base:
        run = subprocess.run(
            ["node", str(Path(__file__).parent / "ts_updates.cjs"), f"{base}/mcp", key, "decline", "accept"],
            env={**os.environ, "NODE_PATH": str(modules)},
            capture_output=True, text=True, timeout=120,
        )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["logs"] == [["error", "hostile", "error detail"], ["info", "hostile", "info line 0"]]
    # The host counts the first request; then the module's own count of the
    # items it gathered takes over, page by page, always growing.
    first, *pages = seen["progress"]
    assert first == [1, "request 1: GET https://api.github.com: HTTP 200"], seen["progress"]
    assert len(pages) >= 2, seen["progress"]
    for n, (done, message) in enumerate(pages, start=1):
        assert message == f"page {n}: {done} of up to 300 items", seen["progress"]
    assert [done for done, _ in seen["progress"]] == sorted({done for done, _ in seen["progress"]})
    assert len(seen["questions"]) == 2
    assert seen["questions"][0].startswith('Allow github.update_issue as account "personal"?')
    declined, accepted = seen["updates"]
    assert declined["isError"] and "declined" in declined["text"], declined
    assert not accepted["isError"], accepted
    assert issue_state(github, 4) == "closed"
