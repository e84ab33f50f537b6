"""A call the client cancels really stops, through the official Python MCP SDK.

The SDK cancels a request when the caller's scope is cancelled: it sends
`notifications/cancelled` over stdio and over Streamable HTTP at 2025-11-25,
and at 2026-07-28 it closes the request's response stream instead. Each way,
the server must stop the call where it is: the github module is waiting on an
upstream that never answers, so the upstream must see its connection go away;
no answer may come; the audit log records the call as cancelled after the
time it really ran; and the next call is served normally.
"""

import time

import anyio
import pytest
from mcp import Client

from support import add_client, connect, hanging_upstream, http_server, mcpist, records, serve, text_of

TOKEN = "ghp_cancel_5555cccc"
GET_ISSUE = {"module": "github", "tool": "get_issue", "arguments": {"owner": "alice", "repo": "notes", "number": 1}}
COUNT = {"module": "text", "tool": "count", "arguments": {"text": "served after the cancel"}}
CANCEL_AFTER = 1.0


@pytest.fixture
def upstream():
    with hanging_upstream() as found:
        yield found


@pytest.fixture
def owner(home, upstream):
    """A home whose github account's API is the hanging upstream."""
    base, _ = upstream
    (home / "mcpist.toml").write_text(f'[upstreams]\n"api.github.com" = "{base}"\n')
    mcpist(home, "plugins", "host", "github", "https://api.github.com", "--allow-private")
    mcpist(home, "account", "add", "github", "personal", stdin=TOKEN + "\n")
    return home


async def cancel_a_waiting_call(client, events):
    """Start get_issue, cancel it once the upstream has the request; return
    when the cancel was made and whether any answer came."""
    answered = None
    with anyio.move_on_after(CANCEL_AFTER):
        answered = await client.call_tool("call_module_tool", GET_ISSUE)
    cancelled_at = time.monotonic()
    kind, _, line = events.get(timeout=5)
    assert (kind, line) == ("request", "GET /repos/alice/notes/issues/1 HTTP/1.1")
    return cancelled_at, answered


def assert_stopped(home, events, cancelled_at, answered, client_name):
    assert answered is None, f"an answer came for a cancelled call: {answered}"
    kind, closed_at, _ = events.get(timeout=10)
    assert kind == "closed", "the upstream's connection stayed open"
    assert closed_at - cancelled_at < 3, "the request in flight was not dropped promptly"
    lines = records(home)
    cancelled = next(r for r in lines if r["tool"] == "get_issue")
    assert (cancelled["client"], cancelled["outcome"]) == (client_name, "cancelled")
    assert "cancelled by the client" in cancelled["reason"]
    # The time it really ran: about until the cancel, not a full timeout.
    assert CANCEL_AFTER * 0.8e6 < cancelled["duration_us"] < 10e6, cancelled["duration_us"]
    assert cancelled["outbound"] == [{"method": "GET", "origin": "https://api.github.com", "status": None}]
    # The next call was served; its record may come before the cancelled
    # one's, which is written once the call has stopped.
    assert [r["outcome"] for r in lines if r["tool"] == "count"] == ["ok"]
    assert TOKEN not in (home / "audit.log").read_text()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_cancelled_call_over_stdio_stops_and_the_next_is_served(owner, upstream, mode):
    _, events = upstream
    async with Client(serve(owner), mode=mode) as client:
        cancelled_at, answered = await cancel_a_waiting_call(client, events)
        after = await client.call_tool("call_module_tool", COUNT)
        assert not after.is_error, text_of(after)
        assert after.structured_content["words"] == 4
    assert_stopped(owner, events, cancelled_at, answered, "stdio")


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_cancelled_call_over_http_stops_and_the_next_is_served(owner, upstream, mode):
    # auto negotiates 2026-07-28, where cancelling closes the request's
    # stream; legacy is 2025-11-25, where it sends notifications/cancelled.
    _, events = upstream
    key = add_client(owner, "phone")
    with http_server(owner) as base:
        async with connect(base, key, mode=mode) as client:
            cancelled_at, answered = await cancel_a_waiting_call(client, events)
            after = await client.call_tool("call_module_tool", COUNT)
            assert not after.is_error, text_of(after)
        assert_stopped(owner, events, cancelled_at, answered, "phone")
