"""Tasks: a long call of a client that declares the `io.modelcontextprotocol/tasks`
extension (SEP-2663, the form rmcp implements) becomes a task once it has run
`[tasks] after_ms`: the client gets a handle, polls `tasks/get` to the
result, or cancels it with `tasks/cancel`, which stops the sandbox and drops
the module's request in flight (the hanging upstream sees its connection
close); another client cannot see or cancel it. Driven by the official Python
SDK through its extension mechanism (its own client has no task API), over
stdio and Streamable HTTP at 2026-07-28, and raw JSON-RPC at 2025-11-25.
"""

import time
from typing import Any, Literal

import anyio
import mcp_types as types
import pytest
from mcp import Client, MCPError
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim

from support import (
    RawStdio,
    add_client,
    connect,
    hanging_upstream,
    http_server,
    install_fixture,
    mcpist,
    records,
    serve,
    text_of,
)

TOKEN = "ghp_tasks_7777eeee"
SLEEP = {"module": "hostile", "tool": "sleep", "arguments": {"ms": 1500}}
GET_ISSUE = {"module": "github", "tool": "get_issue", "arguments": {"owner": "alice", "repo": "notes", "number": 1}}
TASKS_CONFIG = "[tasks]\nafter_ms = 300\npoll_interval_ms = 50\n"


class CreateTaskResult(types.Result):
    result_type: Literal["task"]
    task_id: str
    status: str
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int | None = None
    status_message: str | None = None


class GetTaskResult(types.Result):
    task_id: str
    status: Literal["working", "input_required", "completed", "failed", "cancelled"]
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int | None = None
    status_message: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class Ack(types.Result):
    result_type: str | None = None


class TaskIdParams(types.RequestParams):
    task_id: str


class GetTask(types.Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"


class CancelTask(types.Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskIdParams
    name_param = "taskId"


async def get_task(session, task_id):
    return await session.send_request(GetTask(params=TaskIdParams(task_id=task_id)), GetTaskResult)


async def cancel_task(session, task_id):
    return await session.send_request(CancelTask(params=TaskIdParams(task_id=task_id)), Ack)


async def poll(session, task_id, until=("completed", "failed", "cancelled"), within=20):
    with anyio.fail_after(within):
        while True:
            task = await get_task(session, task_id)
            if task.status in until:
                return task
            await anyio.sleep((task.poll_interval_ms or 100) / 1000)


async def resolve(created, context: ClaimContext):
    task = await poll(context.session, created.task_id)
    assert task.status == "completed", task
    return types.CallToolResult.model_validate(task.result)


class Tasks(ClientExtension):
    """Declares the extension and resolves task handles by polling."""

    identifier = "io.modelcontextprotocol/tasks"

    def claims(self):
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=resolve)]


async def start_task(client, arguments):
    handle = await client.session.call_tool("call_module_tool", arguments, allow_claimed=True)
    assert isinstance(handle, CreateTaskResult), handle
    return handle


@pytest.fixture
def hostile(home):
    install_fixture(home, "hostile")
    (home / "mcpist.toml").write_text(TASKS_CONFIG)
    return home


@pytest.mark.anyio
async def test_a_long_call_becomes_a_task_polled_to_its_result(hostile):
    async with Client(serve(hostile), extensions=[Tasks()]) as client:
        # A quick call is answered at once.
        quick = await client.session.call_tool(
            "call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "a b"}}, allow_claimed=True
        )
        assert isinstance(quick, types.CallToolResult) and not quick.is_error
        # A long one: a handle first, working, then its result.
        handle = await start_task(client, SLEEP)
        assert handle.status == "working" and handle.ttl_ms >= 300_000 and handle.poll_interval_ms == 50
        assert (await get_task(client.session, handle.task_id)).status == "working"
        done = await poll(client.session, handle.task_id)
        assert done.status == "completed", done
        assert types.CallToolResult.model_validate(done.result).content[0].text == "slept"
        # The SDK's own call_tool resolves a task through the extension.
        resolved = await client.call_tool("call_module_tool", SLEEP)
        assert text_of(resolved) == "slept"
    outcomes = [(r["tool"], r["outcome"]) for r in records(hostile)]
    assert outcomes.count(("sleep", "ok")) == 2


@pytest.mark.anyio
async def test_without_the_extension_a_long_call_is_just_answered(hostile):
    async with Client(serve(hostile), mode="legacy") as client:
        result = await client.call_tool("call_module_tool", SLEEP)
    assert text_of(result) == "slept"


@pytest.fixture
def hanging(home):
    with hanging_upstream() as (base, events):
        (home / "mcpist.toml").write_text(f'{TASKS_CONFIG}\n[upstreams]\n"api.github.com" = "{base}"\n')
        mcpist(home, "plugins", "host", "github", "https://api.github.com", "--allow-private")
        mcpist(home, "account", "add", "github", "personal", stdin=TOKEN + "\n")
        yield home, events


@pytest.mark.anyio
async def test_a_task_is_its_clients_alone_and_cancelling_it_drops_the_upstream_request(hanging):
    home, events = hanging
    owner, other = add_client(home, "owner"), add_client(home, "other")
    with http_server(home) as base:
        async with connect(base, owner, extensions=[Tasks()]) as mine, connect(base, other, extensions=[Tasks()]) as theirs:
            handle = await start_task(mine, GET_ISSUE)
            kind, _, line = events.get(timeout=5)
            assert (kind, line) == ("request", "GET /repos/alice/notes/issues/1 HTTP/1.1")
            # To another client the task does not exist, exactly like an id
            # that never was.
            with pytest.raises(MCPError) as unseen:
                await get_task(theirs.session, handle.task_id)
            with pytest.raises(MCPError) as never:
                await get_task(theirs.session, "00000000-0000-4000-8000-000000000000")
            assert unseen.value.error.code == never.value.error.code == -32602
            assert unseen.value.error.message.replace(handle.task_id, "ID") == never.value.error.message.replace(
                "00000000-0000-4000-8000-000000000000", "ID"
            )
            with pytest.raises(MCPError):
                await cancel_task(theirs.session, handle.task_id)
            assert (await get_task(mine.session, handle.task_id)).status == "working"
            # Its owner cancels it: the request in flight is dropped.
            cancelled_at = time.monotonic()
            await cancel_task(mine.session, handle.task_id)
            kind, closed_at, _ = events.get(timeout=10)
            assert kind == "closed" and closed_at - cancelled_at < 3
            assert (await poll(mine.session, handle.task_id)).status == "cancelled"
    record = next(r for r in records(home) if r["tool"] == "get_issue")
    assert (record["client"], record["outcome"]) == ("owner", "cancelled")
    assert TOKEN not in (home / "audit.log").read_text()


def test_at_2025_11_25_a_client_declaring_the_extension_gets_tasks_too(hostile):
    """Raw JSON-RPC over stdio: the extension declared at initialize."""
    with RawStdio(hostile) as raw:
        ask = raw.ask
        capabilities = {"extensions": {"io.modelcontextprotocol/tasks": {}}}
        started = ask(1, "initialize", {
            "protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": {"name": "raw", "version": "1"}})
        assert started["result"]["protocolVersion"] == "2025-11-25"
        assert "io.modelcontextprotocol/tasks" in started["result"]["capabilities"]["extensions"]
        raw.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        created = ask(2, "tools/call", {"name": "call_module_tool", "arguments": SLEEP})["result"]
        assert created["resultType"] == "task" and created["status"] == "working", created
        deadline = time.monotonic() + 20
        while True:
            task = ask(3, "tasks/get", {"taskId": created["taskId"]})["result"]
            if task["status"] != "working" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert task["status"] == "completed", task
        assert task["result"]["content"][0]["text"] == "slept"
        unknown = ask(4, "tasks/get", {"taskId": "nope"})
        assert unknown["error"]["code"] == -32602
