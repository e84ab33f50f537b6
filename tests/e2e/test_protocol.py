"""The protocol's error rules, as the official Python client and raw
JSON-RPC see them: unknown and masked tools in flat mode, bodies that are
not one JSON-RPC message, and the meta-tools' own schemas.

(Sessions that ended or never were: test_http.py; lines over stdio that
are not JSON: test_stdio.py.)
"""

import httpx2
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from support import INITIALIZE, MCP_HEADERS, add_client, connect, http_server, records, serve

FLAT_MASKED = '[serve]\ntools = "flat"\n\n[masks.stdio]\nmodules = ["text"]\n\n[masks.reader]\nmodules = ["text"]\n'


async def unknown_tool_error(client, name, arguments):
    with pytest.raises(MCPError) as refused:
        await client.call_tool(name, arguments)
    return refused.value


@pytest.mark.anyio
async def test_flat_mode_answers_unknown_and_masked_tools_alike_with_invalid_params(home):
    (home / "mcpist.toml").write_text(FLAT_MASKED)
    async with Client(serve(home)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "text.count" in names and "time.now" not in names
        masked = await unknown_tool_error(client, "time.now", {})
        absent = await unknown_tool_error(client, "time.no_such_tool", {})
        no_module = await unknown_tool_error(client, "nowhere.x", {})
        no_dot = await unknown_tool_error(client, "count", {})
        for error in (masked, absent, no_module, no_dot):
            assert error.code == -32602, error
        # Nothing tells a masked tool from one that is not there.
        assert masked.message.replace("time.now", "X") == absent.message.replace("time.no_such_tool", "X")
        # A tool that is there still answers.
        counted = await client.call_tool("text.count", {"text": "a b"})
        assert not counted.is_error
    # The refused lookups are audited like any refusal (the one without a
    # module.tool name never reached a module's name).
    outcomes = [(r["module"], r["tool"], r["outcome"]) for r in records(home)]
    assert ("time", "now", "refused") in outcomes and ("nowhere", "x", "refused") in outcomes


@pytest.mark.anyio
async def test_flat_mode_over_http_too(home):
    (home / "mcpist.toml").write_text(FLAT_MASKED)
    reader = add_client(home, "reader")
    with http_server(home) as base:
        async with connect(base, reader) as client:
            masked = await unknown_tool_error(client, "time.now", {})
            assert masked.code == -32602


def test_a_body_that_is_not_one_json_rpc_message_gets_400_with_a_json_rpc_error(home):
    key = add_client(home, "alice")
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {key}"}
    with http_server(home) as base:
        broken = httpx2.post(f"{base}/mcp", content=b'{"jsonrpc":"2.0","id":1,', headers=headers)
        assert broken.status_code == 400
        body = broken.json()
        assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["code"] == -32700, body
        batch = httpx2.post(f"{base}/mcp", json=[INITIALIZE], headers=headers)
        assert batch.status_code == 400 and batch.json()["error"]["code"] == -32600, batch.text
        assert "batch" in batch.json()["error"]["message"]
        # Without a key, nothing is parsed: the answer is 401.
        anonymous = httpx2.post(f"{base}/mcp", content=b"{", headers=MCP_HEADERS)
        assert anonymous.status_code == 401
        # A well-formed message still opens a session.
        opened = httpx2.post(f"{base}/mcp", json=INITIALIZE, headers=headers)
        assert opened.status_code == 200 and "mcp-session-id" in opened.headers


@pytest.mark.anyio
async def test_get_module_schema_takes_one_name_or_a_list_as_any_of(home):
    async with Client(serve(home)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        module = tools["get_module_schema"].input_schema["properties"]["module"]
        assert "type" not in module
        assert module["anyOf"] == [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
        one = await client.call_tool("get_module_schema", {"module": "text"})
        several = await client.call_tool("get_module_schema", {"module": ["text", "time"]})
        assert [m["name"] for m in one.structured_content["modules"]] == ["text"]
        assert [m["name"] for m in several.structured_content["modules"]] == ["text", "time"]
