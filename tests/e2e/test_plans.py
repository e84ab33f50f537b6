"""`run_plan` end to end with the official Python SDK: a plan reading GitHub
(two accounts) and Notion side by side feeds a `create_issue` step; a plan
with problems is refused whole before anything runs; a tool that is not
concurrency-safe never runs beside itself; `on_error` both ways; a declined
consent stops only the destructive step; cancelling the plan cancels its
running steps. Every step is audited as its own call, with the plan's id.
"""

import time
from datetime import datetime

import anyio
import pytest
from mcp import Client

from support import install_fixture, records, serve, text_of
from test_accounts import owner, upstreams  # noqa: F401 (fixtures)
from test_consent import OWNER, REPO, Person, github, issue_state, set_up  # noqa: F401 (github is a fixture)


async def run_plan(client, plan):
    result = await client.call_tool("run_plan", plan)
    return result


def steps_of(result):
    assert not result.is_error, text_of(result)
    return {step["id"]: step for step in result.structured_content["steps"]}


@pytest.mark.anyio
async def test_reads_from_two_accounts_and_notion_feed_a_new_issue(owner, upstreams):  # noqa: F811
    plan = {
        "steps": [
            {"id": "mine", "module": "github", "tool": "list_my_repositories", "select": "/count"},
            {"id": "work", "module": "github", "tool": "list_my_repositories", "account": "work"},
            {"id": "pages", "module": "notion", "tool": "search", "arguments": {"query": "Welcome"}, "account": "team-a"},
            {
                "id": "file",
                "module": "github",
                "tool": "create_issue",
                "depends_on": ["work", "pages"],
                "arguments": {
                    "owner": "alice",
                    "repo": "alice-repo-1",
                    "title": {"$from": "pages", "pointer": "/results/0/title"},
                    "body": {"$from": "work", "pointer": "/repositories/0/full_name"},
                },
            },
            {"id": "check", "module": "github", "tool": "get_issue", "depends_on": ["file"],
             "arguments": {"owner": "alice", "repo": "alice-repo-1", "number": {"$from": "file", "pointer": "/number"}}},
        ]
    }
    async with Client(serve(owner)) as client:
        result = await run_plan(client, plan)
    steps = steps_of(result)
    assert result.structured_content["ok"] is True
    assert [s["status"] for s in steps.values()] == ["ok"] * 5
    assert isinstance(steps["mine"]["result"], int) and steps["mine"]["result"] > 0
    issue = steps["check"]["result"]["issue"]
    assert issue["title"] == "Welcome to workspace-a"
    assert issue["body"] == steps["work"]["result"]["repositories"][0]["full_name"]
    assert_the_workflow_was_audited(owner, result.structured_content["plan"])


def assert_the_workflow_was_audited(home, plan_id):
    """The workflow's five calls, each audited with the plan's (or script's) id."""
    calls = [r for r in records(home) if r.get("plan") == plan_id]
    assert sorted((r["tool"], r["account"]) for r in calls) == [
        ("create_issue", "personal"),
        ("get_issue", "personal"),
        ("list_my_repositories", "personal"),
        ("list_my_repositories", "work"),
        ("search", "team-a"),
    ]
    assert all(r["outcome"] == "ok" for r in calls)


@pytest.mark.anyio
async def test_a_plan_with_problems_is_refused_whole_and_nothing_runs(owner):  # noqa: F811
    (owner / "mcpist.toml").write_text((owner / "mcpist.toml").read_text() + '[masks.stdio]\nmodules = ["github", "text"]\n')
    plan = {
        "steps": [
            {"id": "a", "module": "github", "tool": "list_my_repositories", "depends_on": ["b"]},
            {"id": "b", "module": "github", "tool": "list_my_repositories", "depends_on": ["a"]},
            {"id": "hidden", "module": "notion", "tool": "search"},
            {"id": "ref", "module": "text", "tool": "count", "arguments": {"text": {"$from": "a", "pointer": "/x"}}},
            {"id": "typo", "module": "text", "tool": "count", "arguments": {"txt": "x"}},
            {"id": "typo", "module": "text", "tool": "count", "depends_on": ["nowhere"]},
        ]
    }
    async with Client(serve(owner)) as client:
        result = await run_plan(client, plan)
    assert result.is_error
    text = text_of(result)
    assert "nothing ran" in text
    for expected in [
        "steps `a`, `b` can never run",
        "step `hidden`: unknown module `notion`",
        "step `ref`: arguments at \"/text\" take step `a`'s result, so `a` must be in depends_on",
        "two steps are named `typo`",
        "depends on `nowhere`, which is not a step of the plan",
        "'txt'",
    ]:
        assert expected in text, (expected, text)
    assert records(owner) == [], "a refused plan runs nothing"


@pytest.mark.anyio
async def test_a_tool_that_is_not_concurrency_safe_never_runs_beside_itself(home):
    install_fixture(home, "hostile")
    sleep = lambda i: {"id": f"s{i}", "module": "hostile", "tool": "sleep", "arguments": {"ms": 300}}  # noqa: E731
    count = lambda i: {"id": f"c{i}", "module": "text", "tool": "count", "arguments": {"text": "a b"}}  # noqa: E731
    plan = {"steps": [sleep(1), sleep(2), sleep(3), count(1), count(2)], "max_parallel": 5}
    async with Client(serve(home)) as client:
        started = time.monotonic()
        result = await run_plan(client, plan)
        took = time.monotonic() - started
    steps = steps_of(result)
    assert all(s["status"] == "ok" for s in steps.values())
    assert took >= 0.9, "three sleeps of 0.3 s that may not overlap took less than 0.9 s"
    # From the audit: the sleeps ended at least 0.3 s apart, so no two overlapped.
    ends = []
    for record in records(home):
        if record["tool"] == "sleep":
            end = datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()
            ends.append(end)
    assert len(ends) == 3
    # The duration counts the wait for the module's turn too (all three are
    # queued at once), so compare the sandbox runs, each sleep's last 0.3 s,
    # in the order they ended.
    runs = [(end - 0.3, end) for end in sorted(ends)]
    assert all(a[1] <= b[0] + 0.02 for a, b in zip(runs, runs[1:])), runs


@pytest.mark.anyio
async def test_on_error_continue_skips_dependents_and_stop_cancels_the_rest(home):
    bad = {"id": "bad", "module": "text", "tool": "regex_match", "arguments": {"pattern": "(", "text": "x"}}
    after_bad = {"id": "after", "module": "text", "tool": "count", "depends_on": ["bad"], "arguments": {"text": "x"}}
    beside = {"id": "beside", "module": "text", "tool": "count", "arguments": {"text": "a b c"}}
    async with Client(serve(home)) as client:
        going_on = steps_of(await run_plan(client, {"steps": [bad, after_bad, beside]}))
        stopped = steps_of(await run_plan(client, {"steps": [bad, after_bad, beside], "on_error": "stop", "max_parallel": 1}))
    assert going_on["bad"]["status"] == "failed" and "regex" in going_on["bad"]["error"].lower()
    assert going_on["after"]["status"] == "skipped" and "`bad`" in going_on["after"]["error"]
    assert going_on["beside"]["status"] == "ok" and going_on["beside"]["result"]["words"] == 3
    assert stopped["bad"]["status"] == "failed"
    assert stopped["beside"]["status"] == "not_run" and stopped["after"]["status"] in ("skipped", "not_run")


@pytest.mark.anyio
async def test_a_declined_consent_stops_only_the_destructive_step(home, github):  # noqa: F811
    set_up(home, github)
    person = Person("decline")
    plan = {
        "steps": [
            {"id": "close", "module": "github", "tool": "update_issue",
             "arguments": {"owner": OWNER, "repo": REPO, "number": 12, "state": "closed"}},
            {"id": "read", "module": "github", "tool": "get_issue", "arguments": {"owner": OWNER, "repo": REPO, "number": 12}},
        ]
    }
    async with Client(serve(home), mode="legacy", elicitation_callback=person) as client:
        steps = steps_of(await run_plan(client, plan))
    assert len(person.asked) == 1, "one question for the plan"
    assert person.asked[0].startswith("Allow 1 step of this plan to run?"), person.asked[0]
    assert "step `close`: github.update_issue" in person.asked[0]
    assert steps["close"]["status"] == "declined"
    assert steps["read"]["status"] == "ok"
    assert issue_state(github, 12) == "open", "the upstream saw no write"
    declined = [r for r in records(home) if r["tool"] == "update_issue"]
    assert [r["outcome"] for r in declined] == ["declined"]


@pytest.mark.anyio
async def test_cancelling_a_plan_cancels_its_running_steps(home):
    install_fixture(home, "hostile")
    plan = {
        "steps": [
            {"id": "long", "module": "hostile", "tool": "sleep", "arguments": {"ms": 20000}},
            {"id": "next", "module": "text", "tool": "count", "depends_on": ["long"], "arguments": {"text": "x"}},
        ]
    }
    async with Client(serve(home)) as client:
        with anyio.move_on_after(1.0):
            await run_plan(client, plan)
        # The session goes on.
        after = await client.call_tool("call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "a"}})
        assert not after.is_error
    with anyio.fail_after(10):
        while not any(r["tool"] == "sleep" for r in records(home)):
            await anyio.sleep(0.1)
    (record,) = [r for r in records(home) if r["tool"] == "sleep"]
    assert record["outcome"] == "cancelled" and record["plan"].startswith("plan-")
    assert record["duration_us"] < 10e6
    assert not any(r["tool"] == "count" and r.get("plan") == record["plan"] for r in records(home))
