"""Load over Streamable HTTP, through the official Python MCP client:
1,000 concurrent calls from 50 clients, and a soak of many sequential
calls. Memory and descriptors are read from /proc; the figures are printed
(`pytest -s`) and bounded, never timed.

MCPIST_SOAK_CALLS sets the soak's length (5,000 by default; the figures in
docs/security.md are from 100,000).
"""

import asyncio
import os
from pathlib import Path

import pytest

from support import add_client, connect, http_server_process, records

SOAK_CALLS = int(os.environ.get("MCPIST_SOAK_CALLS", "5000"))


def status_kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def count(client, text):
    return client.call_tool(
        "call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": text}}
    )


@pytest.mark.anyio
async def test_1000_concurrent_calls_from_50_clients_complete_with_bounded_memory(home):
    keys = [add_client(home, f"load{i}") for i in range(50)]
    with http_server_process(home) as (base, process):
        idle_kib = status_kib(process.pid, "VmRSS")

        async def client_calls(i, key):
            async with connect(base, key) as client:
                return await asyncio.gather(*(count(client, f"client {i} call {j} " * 8) for j in range(20)))

        results = await asyncio.gather(*(client_calls(i, key) for i, key in enumerate(keys)))
        peak_kib = status_kib(process.pid, "VmHWM")
        failed = [r for batch in results for r in batch if r.is_error]
        assert not failed, failed[:3]
        assert all(r.structured_content["words"] == 32 for batch in results for r in batch)
        print(f"\n1,000 calls from 50 clients: idle RSS {idle_kib} KiB, peak RSS {peak_kib} KiB")
        assert peak_kib < 512 * 1024, f"peak RSS {peak_kib} KiB"
    outcomes = [r["outcome"] for r in records(home)]
    assert len(outcomes) == 1000 and set(outcomes) == {"ok"}


@pytest.mark.anyio
async def test_a_soak_of_sequential_calls_grows_neither_memory_nor_descriptors(home):
    (home / "mcpist.toml").write_text('[audit]\nfsync = "never"\n')
    key = add_client(home, "soak")
    with http_server_process(home) as (base, process):
        async with connect(base, key) as client:
            warm_up = max(SOAK_CALLS // 10, 200)
            for i in range(warm_up):
                await count(client, f"warm {i}")
            rss_before = status_kib(process.pid, "VmRSS")
            fds_before = descriptors(process.pid)
            concurrent = 8
            for start in range(0, SOAK_CALLS, concurrent):
                batch = await asyncio.gather(*(count(client, f"soak {start + j}") for j in range(concurrent)))
                assert not any(r.is_error for r in batch)
            rss_after = status_kib(process.pid, "VmRSS")
            fds_after = descriptors(process.pid)
    print(
        f"\nsoak of {SOAK_CALLS} calls after {warm_up}: RSS {rss_before} -> {rss_after} KiB, "
        f"descriptors {fds_before} -> {fds_after}"
    )
    assert rss_after - rss_before < 16 * 1024, (rss_before, rss_after)
    assert fds_after <= fds_before + 2, (fds_before, fds_after)
