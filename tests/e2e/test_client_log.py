"""A module's log lines reach the client that made the call, as MCP
`notifications/message`, at the level the client chose and not below it,
over stdio and Streamable HTTP, at MCP 2025-11-25 (`logging/setLevel`) and
2026-07-28 (the level in each request's `_meta`).
"""

import warnings

import pytest
from mcp import Client

from support import add_client, connect, http_server, install_fixture, serve, text_of

MAX_LINES_PER_CALL = 100


@pytest.fixture
def noisy(home):
    install_fixture(home, "hostile")
    return home


class Heard:
    """The log notifications a client received."""

    def __init__(self):
        self.messages = []

    async def __call__(self, params):
        self.messages.append(params)

    def take(self):
        taken, self.messages = self.messages, []
        return [(m.level, m.logger, m.data) for m in taken]


async def call(client, tool, arguments=None):
    result = await client.call_tool("call_module_tool", {"module": "hostile", "tool": tool, "arguments": arguments or {}})
    assert not result.is_error, text_of(result)
    return result


async def set_level(client, level):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in 2026-07-28, current in 2025-11-25
        await client.set_logging_level(level)


@pytest.mark.anyio
async def test_a_2025_client_hears_module_lines_at_its_level_and_above(noisy):
    heard = Heard()
    async with Client(serve(noisy), mode="legacy", logging_callback=heard) as client:
        assert client.protocol_version == "2025-11-25"
        assert client.server_capabilities.logging is not None
        # Nothing asked for, nothing sent.
        await call(client, "shout")
        assert heard.take() == []
        await set_level(client, "warning")
        await call(client, "shout")
        assert heard.take() == [("warning", "hostile", "to the log")]
        await set_level(client, "info")
        await call(client, "shout")
        lines = heard.take()
        assert ("warning", "hostile", "to the log") in lines
        assert ("info", "hostile", "stdout: to stdout") in lines and ("info", "hostile", "stderr: to stderr") in lines
        await call(client, "chatter", {"lines": 2})
        assert heard.take() == [
            ("error", "hostile", "error detail"),
            ("info", "hostile", "info line 0"),
            ("info", "hostile", "info line 1"),
        ]


@pytest.mark.anyio
async def test_a_flood_is_cut_and_says_so(noisy):
    heard = Heard()
    async with Client(serve(noisy), mode="legacy", logging_callback=heard) as client:
        await set_level(client, "debug")
        await call(client, "chatter", {"lines": 500})
        lines = heard.take()
    assert len(lines) == MAX_LINES_PER_CALL + 1
    assert lines[0] == ("debug", "hostile", "debug detail")
    assert lines[-1][0] == "warning" and "not sent here" in lines[-1][2]
    # The host's log keeps them all.


@pytest.mark.anyio
async def test_a_2026_client_sets_the_level_per_request(noisy):
    heard = Heard()
    async with Client(serve(noisy), log_level="error", logging_callback=heard) as client:
        assert client.protocol_version == "2026-07-28"
        await call(client, "chatter", {"lines": 3})
        assert heard.take() == [("error", "hostile", "error detail")]


@pytest.mark.anyio
async def test_over_http_the_lines_reach_only_the_calling_client(noisy):
    alice, bob = add_client(noisy, "alice"), add_client(noisy, "bob")
    heard_alice, heard_bob = Heard(), Heard()
    with http_server(noisy) as base:
        async with connect(base, alice, mode="legacy", logging_callback=heard_alice) as a, \
                connect(base, bob, mode="legacy", logging_callback=heard_bob) as b:
            await set_level(a, "info")
            await set_level(b, "info")
            await call(a, "chatter", {"lines": 1})
            assert heard_alice.take() == [("error", "hostile", "error detail"), ("info", "hostile", "info line 0")]
            assert heard_bob.take() == []
