"""End to end over stdio with the official MCP Python SDK client.

`cargo xtask test` runs these against the built `mcpist` binary (MCPIST_BIN)
with the bundled modules from the repository (MCPIST_REPO). Each test starts
its own server on a private copy of the plugins folder and lock.
"""

import hashlib
import json
import os
import subprocess

import pytest
from mcp import Client

from support import BINARY, RawStdio, install_fixture, serve as server, text_of

BUNDLED = ["github", "google_calendar", "notion", "text", "time"]

# "auto" negotiates the newest revision the server offers; "legacy" uses the
# initialize handshake (2025-11-25). The server must serve both.
MODES = ["auto", "legacy"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_lists_the_meta_tools(home, mode):
    async with Client(server(home), mode=mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"get_module_schema", "call_module_tool", "run_plan"}
    call = tools["call_module_tool"]
    assert call.input_schema["required"] == ["module", "tool"]
    assert set(call.input_schema["properties"]) == {"module", "tool", "arguments", "account"}
    assert tools["get_module_schema"].annotations.read_only_hint is True


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_catalog_and_module_schema(home, mode):
    async with Client(server(home), mode=mode) as client:
        catalog = await client.call_tool("get_module_schema", {})
        assert not catalog.is_error, text_of(catalog)
        modules = {m["name"]: m for m in catalog.structured_content["modules"]}
        assert sorted(modules) == BUNDLED
        assert "hash" in modules["text"]["tools"]
        assert modules["time"]["version"] == "0.1.0"
        assert json.loads(text_of(catalog)) == catalog.structured_content

        schema = await client.call_tool("get_module_schema", {"module": "text"})
        (text,) = schema.structured_content["modules"]
        tools = {t["name"]: t for t in text["tools"]}
        hash_tool = tools["hash"]
        assert hash_tool["inputSchema"]["required"] == ["text"]
        # The host closes object schemas, and shows the closed schema.
        assert hash_tool["inputSchema"]["additionalProperties"] is False
        assert hash_tool["annotations"] == {
            "readOnlyHint": True,
            "destructiveHint": False,
            "idempotentHint": True,
            "openWorldHint": False,
        }
        assert "outputSchema" in hash_tool

        both = await client.call_tool("get_module_schema", {"module": ["text", "time"]})
        assert [m["name"] for m in both.structured_content["modules"]] == ["text", "time"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_calls_bundled_tools(home, mode):
    async with Client(server(home), mode=mode) as client:
        result = await client.call_tool(
            "call_module_tool", {"module": "text", "tool": "hash", "arguments": {"text": "abc"}}
        )
        assert not result.is_error, text_of(result)
        assert result.structured_content == {
            "algorithm": "sha256",
            "digest": hashlib.sha256(b"abc").hexdigest(),
        }

        result = await client.call_tool(
            "call_module_tool",
            {
                "module": "time",
                "tool": "convert",
                "arguments": {"datetime": "2026-03-08T07:30:00Z", "to_zone": "America/New_York"},
            },
        )
        assert not result.is_error, text_of(result)
        # Daylight saving time began at 02:00 that morning in New York.
        assert result.structured_content["datetime"] == "2026-03-08T03:30:00-04:00[America/New_York]"
        assert result.structured_content["weekday"] == "Sunday"


@pytest.mark.anyio
async def test_unknown_argument_is_refused(home):
    async with Client(server(home)) as client:
        result = await client.call_tool(
            "call_module_tool",
            {"module": "text", "tool": "count", "arguments": {"text": "a b", "system_prompt": "obey me"}},
        )
    assert result.is_error
    assert "unknown argument 'system_prompt' (this tool accepts: text)" in text_of(result)


@pytest.mark.anyio
async def test_invalid_argument_type_is_refused(home):
    async with Client(server(home)) as client:
        result = await client.call_tool(
            "call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": 42}}
        )
    assert result.is_error
    assert "arguments/text" in text_of(result)


@pytest.mark.anyio
async def test_unknown_module_and_tool_name_the_valid_ones(home):
    async with Client(server(home)) as client:
        module = await client.call_tool("call_module_tool", {"module": "nope", "tool": "x"})
        tool = await client.call_tool("call_module_tool", {"module": "text", "tool": "nope"})
        schema = await client.call_tool("get_module_schema", {"module": "nope"})
    assert module.is_error
    assert "unknown module `nope`; available modules: github, google_calendar, notion, text, time" in text_of(module)
    assert tool.is_error
    assert "module `text` has no tool `nope`; its tools: hash, base64_encode" in text_of(tool)
    assert schema.is_error and "available modules: github, google_calendar, notion, text, time" in text_of(schema)


@pytest.mark.anyio
async def test_module_errors_come_back_as_tool_errors(home):
    async with Client(server(home)) as client:
        result = await client.call_tool(
            "call_module_tool",
            {"module": "text", "tool": "regex_match", "arguments": {"text": "x", "pattern": "("}},
        )
    assert result.is_error
    assert "text.regex_match failed: invalid arguments: pattern is not a valid regex" in text_of(result)


@pytest.mark.anyio
async def test_stdout_carries_only_mcp_even_at_trace_level(home):
    # Any log line on stdout would break the client's JSON-RPC parsing.
    async with Client(server(home, log_level="trace")) as client:
        result = await client.call_tool(
            "call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "one two"}}
        )
    assert result.structured_content == {"bytes": 7, "chars": 7, "words": 2, "lines": 1}


@pytest.mark.anyio
async def test_pending_module_is_not_served(home):
    install_fixture(home, "hostile", approve=False)
    async with Client(server(home)) as client:
        catalog = await client.call_tool("get_module_schema", {})
        call = await client.call_tool("call_module_tool", {"module": "hostile", "tool": "echo"})
    assert [m["name"] for m in catalog.structured_content["modules"]] == BUNDLED
    assert call.is_error and "unknown module `hostile`" in text_of(call)


@pytest.mark.anyio
async def test_a_hostile_module_cannot_break_the_session(home):
    """Guest stdout/stderr never reach the protocol stream; a crash or a CPU
    hog fails only its call."""
    install_fixture(home, "hostile", approve=False)
    host_log = home / "host.log"
    (home / "mcpist.toml").write_text(f"[limits]\ncpu_ms = 300\n[log]\nfile = {json.dumps(str(host_log))}\n")
    approve = subprocess.run(
        [str(BINARY), "--plugins-dir", str(home / "plugins"), "--lock", str(home / "registry.lock"),
         "plugins", "approve", "hostile", "--yes"],
        env={"MCPIST_HOME": str(home), "PATH": os.environ.get("PATH", "")},
        capture_output=True, text=True, check=True,
    )
    assert "Pinned hostile 0.1.0" in approve.stdout

    def call(tool, arguments=None):
        return client.call_tool("call_module_tool", {"module": "hostile", "tool": tool, "arguments": arguments or {}})

    async with Client(server(home, log_level="trace")) as client:
        shout = await call("shout")
        assert not shout.is_error and text_of(shout) == "shouted"
        trap = await call("trap")
        assert trap.is_error and "module `hostile` crashed" in text_of(trap)
        spin = await call("spin")
        assert spin.is_error and "ran out of CPU time" in text_of(spin)
        # A 30 MiB error comes back cut; forged log lines stay inside the
        # module's own line, escaped.
        forge = await call("forge", {"mib": 30})
        assert forge.is_error and "[cut: the module's error was 31457280 bytes]" in text_of(forge)
        assert len(text_of(forge)) < 20_000
        echo = await call("echo", {"text": "still here"})
        assert not echo.is_error and text_of(echo) == "still here"
    log = host_log.read_text()
    assert "FORGED" in log
    for line in log.splitlines():
        assert "FORGED" not in line or "mcpist::guest" in line, line
        assert "\x1b" not in line and "\u202e" not in line, line
    assert "\\u{1b}[2J" in log and "\\u{202e}" in log
    # The host's log is the owner's alone.
    assert host_log.stat().st_mode & 0o777 == 0o600


def test_a_message_not_json_too_deep_or_too_large_is_answered_with_an_error(home):
    """The MCP library drops such lines silently; the client would wait for
    an answer forever. They are answered under their own id instead."""
    with RawStdio(home) as raw:
        send, answer = raw.send, raw.receive
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
        assert answer()["id"] == 1
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        deep = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_module_schema","arguments":{"x":' + "[" * 5000 + "]" * 5000 + "}}}\n"
        send(deep.encode())
        refused = answer()
        assert refused["id"] == 7 and refused["error"]["code"] == -32700
        assert "nested deeper than" in refused["error"]["message"]
        large = b'{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{"name":"x","arguments":{"t":"' + b"x" * (17 << 20) + b'"}}}\n'
        send(large)
        refused = answer()
        assert refused["id"] == "big" and "larger than 16777216 bytes" in refused["error"]["message"]
        # No id to be found: answered anyway, with no id.
        send(b"[" * 300 + b"]" * 300 + b"\n")
        reply = answer()
        assert reply["error"]["code"] == -32700 and "id" not in reply, reply
        # A line that is not JSON: JSON-RPC's parse error, under its id
        # when one can be read, else with none.
        send(b'{"jsonrpc":"2.0","id":8,"method":tools/list}\n')
        reply = answer()
        assert reply["id"] == 8 and reply["error"]["code"] == -32700, reply
        assert reply["error"]["message"].startswith("Parse error: the message is not JSON"), reply
        send(b"hello?\n")
        reply = answer()
        assert reply == {"jsonrpc": "2.0", "error": reply["error"]} and reply["error"]["code"] == -32700, reply
        # And the session goes on.
        send({"jsonrpc": "2.0", "id": 9, "method": "ping"})
        assert answer() == {"jsonrpc": "2.0", "id": 9, "result": {}}
