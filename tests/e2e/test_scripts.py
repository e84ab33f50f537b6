"""`run_script` end to end with the official Python SDK: the plan workflow
(GitHub with two accounts and Notion read side by side, feeding a
`create_issue`) as a JavaScript program; calls a script starts together run
together unless the tool is not concurrency-safe; a script that loops
forever, allocates without end or calls a masked tool fails with the limit
or refusal named, and the server keeps serving. Each call a script makes is
audited as its own call, with the script's id.
"""

import shutil
import time

import anyio
import pytest
from mcp import Client

from support import REPO, install_fixture, records, serve, text_of
from test_accounts import owner, upstreams  # noqa: F401 (fixtures)
from test_plans import assert_the_workflow_was_audited

ENGINE = "engines/javascript.wasm"


def with_engine(home):
    """Put the bundled script engine (pinned by the committed lock) in `home`."""
    (home / "plugins" / "engines").mkdir(exist_ok=True)
    shutil.copy(REPO / "plugins" / ENGINE, home / "plugins" / ENGINE)
    return home


def append_config(home, text):
    config = home / "mcpist.toml"
    config.write_text((config.read_text() if config.exists() else "") + text)


async def run_script(client, script):
    return await client.call_tool("run_script", {"script": script})


def ran(result):
    assert not result.is_error, text_of(result)
    assert result.structured_content["ok"] is True
    return result.structured_content


def failed(result):
    assert result.is_error, text_of(result)
    assert result.structured_content["ok"] is False
    return result.structured_content["error"]


WORKFLOW = """
const [mine, work, pages] = await Promise.all([
  tools.github.list_my_repositories({}),
  tools.github.list_my_repositories({}, {account: "work"}),
  tools.notion.search({query: "Welcome"}, {account: "team-a"}),
]);
console.log("repositories:", mine.count, "work:", work.repositories.length);
const created = await tools.github.create_issue({
  owner: "alice",
  repo: "alice-repo-1",
  title: pages.results[0].title,
  body: work.repositories[0].full_name,
});
const check = await call("github", "get_issue", {owner: "alice", repo: "alice-repo-1", number: created.number});
return {mine: mine.count, issue: check.issue, work_first: work.repositories[0].full_name, work_count: work.repositories.length};
"""


@pytest.mark.anyio
async def test_the_plan_workflow_as_a_script(owner, upstreams):  # noqa: F811
    with_engine(owner)
    async with Client(serve(owner)) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        result = await run_script(client, WORKFLOW)
    # The catalogue in the description is typed from the schemas.
    description = listed["run_script"].description
    assert "github.get_issue({" in description and "number: integer" in description
    assert "notion.search(" in description
    out = ran(result)
    value = out["value"]
    assert isinstance(value["mine"], int) and value["mine"] > 0
    assert value["issue"]["title"] == "Welcome to workspace-a"
    assert value["issue"]["body"] == value["work_first"]
    assert out["console"] == [f"repositories: {value['mine']} work: {value['work_count']}"]
    assert [c["ok"] for c in out["calls"]] == [True] * 5
    assert_the_workflow_was_audited(owner, out["script"])


@pytest.mark.anyio
async def test_calls_started_together_run_together_unless_the_tool_is_not_concurrency_safe(home):
    with_engine(home)
    install_fixture(home, "hostile")
    together = "await Promise.all([1, 2, 3, 4].map(() => tools.hostile.nap({ms: 400}))); return 'done';"
    alone = "await Promise.all([1, 2, 3].map(() => tools.hostile.sleep({ms: 300}))); return 'done';"
    async with Client(serve(home)) as client:
        await run_script(client, "return 1;")  # the engine's first load is not measured
        started = time.monotonic()
        naps = ran(await run_script(client, together))
        naps_took = time.monotonic() - started
        started = time.monotonic()
        sleeps = ran(await run_script(client, alone))
        sleeps_took = time.monotonic() - started
    assert naps["value"] == "done" and len(naps["calls"]) == 4
    assert naps_took < 1.2, f"four concurrency-safe naps of 0.4 s took {naps_took:.2f} s"
    assert sleeps["value"] == "done"
    assert sleeps_took >= 0.9, f"three sleeps that may not overlap took {sleeps_took:.2f} s"


@pytest.mark.anyio
async def test_an_endless_loop_hits_the_cpu_limit_and_the_server_keeps_serving(home):
    with_engine(home)
    append_config(home, "[limits]\ncpu_ms = 500\n")
    async with Client(serve(home)) as client:
        looped = await run_script(client, "console.log('looping'); while (true) {}")
        result = await run_script(client, "return (await tools.text.count({text: 'a b'})).words;")
        after = await client.call_tool("call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "x"}})
    error = failed(looped)
    assert "CPU" in error and "500" in error, error
    assert looped.structured_content["console"] == ["looping"], "what it wrote before the limit is kept"
    assert ran(result)["value"] == 2
    assert not after.is_error


@pytest.mark.anyio
async def test_endless_allocation_hits_the_memory_limit(home):
    with_engine(home)
    append_config(home, "[limits]\nmemory_mib = 48\n")
    async with Client(serve(home)) as client:
        error = failed(await run_script(client, "const kept = []; while (true) kept.push('x'.repeat(1 << 20) + kept.length);"))
        again = await run_script(client, "return 'still here';")
    assert "memory" in error.lower() and "48" in error, error
    assert ran(again)["value"] == "still here"


@pytest.mark.anyio
async def test_a_masked_tool_is_refused_like_an_unknown_one_and_runs_nothing(owner, upstreams):  # noqa: F811
    with_engine(owner)
    append_config(owner, '[masks.stdio]\nmodules = ["text"]\n')
    async with Client(serve(owner)) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        uncaught = await run_script(client, "return await tools.github.list_my_repositories({});")
        caught = await run_script(
            client,
            "try { await tools.github.list_my_repositories({}); } catch (e) { return 'refused: ' + e.message; }",
        )
    catalogue = listed["run_script"].description.split("The tools (arguments")[1]
    assert "text.count(" in catalogue
    assert "github." not in catalogue, "a masked module is not in the catalogue"
    error = failed(uncaught)
    assert "unknown module `github`" in error, error
    assert ran(caught)["value"].startswith("refused: unknown module `github`")
    refused = [r for r in records(owner) if r["tool"] == "list_my_repositories"]
    assert len(refused) == 2 and all(r["outcome"] == "refused" for r in refused)


@pytest.mark.anyio
async def test_errors_name_what_was_wrong(home):
    with_engine(home)
    async with Client(serve(home)) as client:
        syntax = failed(await run_script(client, "return (;"))
        thrown = failed(await run_script(client, "throw new TypeError('no such thing');"))
        bad_arguments = failed(await run_script(client, "return await tools.text.count({txt: 'x'});"))
        waits = failed(await run_script(client, "await new Promise(() => {}); return 1;"))
        logged = await run_script(client, "console.log('a', {b: 1}, [2]); console.error('c'); return null;")
    assert "SyntaxError" in syntax, syntax
    assert "TypeError: no such thing" in thrown, thrown
    assert "invalid arguments for text.count" in bad_arguments, bad_arguments
    assert "waiting for something that never comes" in waits, waits
    out = ran(logged)
    assert out["console"] == ['a {"b":1} [2]', "error: c"]
    assert out["value"] is None


@pytest.mark.anyio
async def test_cancelling_a_script_cancels_its_calls(home):
    with_engine(home)
    install_fixture(home, "hostile")
    async with Client(serve(home)) as client:
        await run_script(client, "return 1;")
        with anyio.move_on_after(1.5):
            await run_script(client, "await tools.hostile.sleep({ms: 20000}); return 'late';")
        after = await client.call_tool("call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "a"}})
        assert not after.is_error
    with anyio.fail_after(10):
        while not any(r["tool"] == "sleep" for r in records(home)):
            await anyio.sleep(0.1)
    (record,) = [r for r in records(home) if r["tool"] == "sleep"]
    assert record["outcome"] == "cancelled" and record["plan"].startswith("script-")
    assert record["duration_us"] < 10e6


@pytest.mark.anyio
async def test_without_an_approved_engine_run_script_is_not_offered(home):
    async with Client(serve(home)) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
    assert "run_script" not in names
