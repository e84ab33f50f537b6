"""Streamable HTTP with API keys, through the official Python MCP client.

Each test starts `mcpist serve --http` on a free loopback port with clients
registered by `mcpist client add`, and stops it afterwards.
"""

import asyncio
import json
import os
import resource
import socket
import time
from pathlib import Path

import httpx2
import pytest

from support import INITIALIZE, MCP_HEADERS, add_client, connect, http_server, http_server_process, mcpist, text_of



@pytest.mark.anyio
async def test_an_authorised_client_lists_and_calls_and_is_audited_by_name(home):
    key = add_client(home, "claude")
    assert key.startswith("mcpist_")
    assert key not in (home / "clients.toml").read_text(), "only the key's digest is stored"
    with http_server(home) as base:
        async with connect(base, key) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == {"get_module_schema", "call_module_tool", "run_plan"}
            result = await client.call_tool(
                "call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "over http"}}
            )
            assert not result.is_error, text_of(result)
            assert result.structured_content["words"] == 2
    (line,) = [json.loads(x) for x in (home / "audit.log").read_text().splitlines()]
    assert (line["client"], line["tool"], line["outcome"]) == ("claude", "count", "ok")
    assert "claude" in mcpist(home, "client", "list").stdout


def test_no_key_or_a_wrong_key_gets_401_pointing_at_the_metadata(home):
    key = add_client(home, "claude")
    with http_server(home) as base:
        missing = httpx2.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        assert missing.status_code == 401
        challenge = missing.headers["www-authenticate"]
        assert challenge == f'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'
        assert "mcpist client add NAME" in missing.json()["error_description"]

        metadata = httpx2.get(f"{base}/.well-known/oauth-protected-resource/mcp").json()
        assert metadata["resource"] == f"{base}/mcp"
        assert metadata["bearer_methods_supported"] == ["header"]

        wrong = httpx2.post(
            f"{base}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer mcpist_not-a-key"}
        )
        assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]

        good = httpx2.post(f"{base}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {key}"})
        assert good.status_code == 200

        # A revoked key is refused from the next request on, without a restart.
        mcpist(home, "client", "remove", "claude")
        revoked = httpx2.post(
            f"{base}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {key}"}
        )
        assert revoked.status_code == 401


def test_a_foreign_origin_is_forbidden_even_with_a_key(home):
    key = add_client(home, "claude")
    with http_server(home) as base:
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {key}", "Origin": "https://evil.example"}
        foreign = httpx2.post(f"{base}/mcp", json=INITIALIZE, headers=headers)
        assert foreign.status_code == 403
        # DNS rebinding: a page on another name that resolves to 127.0.0.1.
        rebound = httpx2.post(
            f"{base}/mcp", json=INITIALIZE,
            headers={**MCP_HEADERS, "Authorization": f"Bearer {key}", "Host": "attacker.example"},
        )
        assert rebound.status_code == 403


@pytest.mark.anyio
async def test_200_concurrent_calls_from_20_clients(home):
    keys = [add_client(home, f"client-{i}") for i in range(20)]
    with http_server(home) as base:

        async def ten_calls(i, key):
            async with connect(base, key) as client:
                results = await asyncio.gather(*(
                    client.call_tool(
                        "call_module_tool",
                        {"module": "text", "tool": "hash", "arguments": {"text": f"{i}-{n}"}},
                    )
                    for n in range(10)
                ))
            return results

        everything = await asyncio.gather(*(ten_calls(i, key) for i, key in enumerate(keys)))
    results = [r for batch in everything for r in batch]
    assert len(results) == 200
    assert not [text_of(r) for r in results if r.is_error]
    lines = [json.loads(x) for x in (home / "audit.log").read_text().splitlines()]
    assert len(lines) == 200
    assert {line["client"] for line in lines} == {f"client-{i}" for i in range(20)}
    assert mcpist(home, "audit", "verify").returncode == 0


def test_the_typescript_sdk_client_over_http(home):
    """The official TypeScript SDK, as a second client implementation."""
    import os
    import subprocess

    from support import REPO

    modules = Path(os.environ.get("MCPIST_NPM", REPO / "target" / "e2e-npm")) / "node_modules"
    if not (modules / "@modelcontextprotocol" / "sdk").is_dir():
        pytest.fail(f"{modules}/@modelcontextprotocol/sdk is missing: run `cargo xtask test`, which installs it")
    key = add_client(home, "ts")
    with http_server(home) as base:
        run = subprocess.run(
            ["node", str(Path(__file__).parent / "ts_client.cjs"), f"{base}/mcp", key],
            env={**os.environ, "NODE_PATH": str(modules)},
            capture_output=True, text=True, timeout=60,
        )
        assert run.returncode == 0, run.stderr
        seen = json.loads(run.stdout)
        assert seen["tools"] == ["call_module_tool", "get_module_schema", "run_plan"]
        assert seen["count"] == {"bytes": 15, "chars": 15, "words": 2, "lines": 1}
        assert seen["missing"]["isError"] is True
        assert "module `text` has no tool `no_such_tool`" in seen["missing"]["text"]
        refused = subprocess.run(
            ["node", str(Path(__file__).parent / "ts_client.cjs"), f"{base}/mcp", "mcpist_wrong"],
            env={**os.environ, "NODE_PATH": str(modules)},
            capture_output=True, text=True, timeout=60,
        )
        assert refused.returncode != 0 and "401" in refused.stderr
    lines = [json.loads(x) for x in (home / "audit.log").read_text().splitlines()]
    assert {line["client"] for line in lines} == {"ts"}


def test_a_session_belongs_to_the_client_that_opened_it(home):
    alice = add_client(home, "alice")
    mallory = add_client(home, "mallory")

    def headers(key, session=None):
        extra = {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-06-18"} if session else {}
        return {**MCP_HEADERS, "Authorization": f"Bearer {key}", **extra}

    tools_list = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    with http_server(home) as base:
        opened = httpx2.post(f"{base}/mcp", json=INITIALIZE, headers=headers(alice))
        session = opened.headers["mcp-session-id"]
        assert httpx2.post(f"{base}/mcp", json=initialized, headers=headers(alice, session)).status_code == 202
        # Another valid key can neither use nor end Alice's session.
        stolen = httpx2.post(f"{base}/mcp", json=tools_list, headers=headers(mallory, session))
        assert stolen.status_code == 404
        ended = httpx2.delete(f"{base}/mcp", headers=headers(mallory, session))
        assert ended.status_code == 404
        assert httpx2.post(f"{base}/mcp", json=tools_list, headers=headers(alice, session)).status_code == 200
        # Alice ends it herself; then it is gone, for every method.
        assert httpx2.delete(f"{base}/mcp", headers=headers(alice, session)).status_code == 204
        assert httpx2.post(f"{base}/mcp", json=tools_list, headers=headers(alice, session)).status_code == 404
        assert httpx2.delete(f"{base}/mcp", headers=headers(alice, session)).status_code == 404
        # As is a session that never was.
        assert httpx2.delete(f"{base}/mcp", headers=headers(alice, "no-such-session")).status_code == 404
    assert "another client's MCP session" in (home / "serve.log").read_text()


def test_idle_and_half_sent_connections_are_cut_and_cannot_lock_clients_out(home):
    """1,100 unauthenticated connections, half of them idle and half with a
    request cut off mid-headers: the server holds at most its cap, closes
    the rest, cuts the held ones at the header timeout, and then serves a
    real client."""
    (home / "mcpist.toml").write_text("[serve]\nheader_timeout_secs = 2\nmax_connections = 200\n")
    key = add_client(home, "claude")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    sockets = []
    try:
        with http_server_process(home) as (base, process):
            # The server raised its soft descriptor limit to the hard one.
            limits = Path(f"/proc/{process.pid}/limits").read_text()
            (line,) = [l for l in limits.splitlines() if l.startswith("Max open files")]
            server_soft, server_hard = line.split()[3:5]
            assert server_soft == server_hard, line
            port = int(base.rsplit(":", 1)[1])
            for i in range(1100):
                s = socket.create_connection(("127.0.0.1", port))
                if i % 2:
                    s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
                sockets.append(s)
            time.sleep(0.5)
            held = len(os.listdir(f"/proc/{process.pid}/fd"))
            assert held < 200 + 64, f"the server holds {held} descriptors"
            time.sleep(3)
            for s in sockets:
                s.settimeout(5)
                try:
                    assert s.recv(4096) is not None  # b"" (closed) or a 408 before the close
                    assert s.recv(4096) == b""
                except ConnectionResetError:
                    pass
            good = httpx2.post(f"{base}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {key}"})
            assert good.status_code == 200
    finally:
        for s in sockets:
            s.close()
