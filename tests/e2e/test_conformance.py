"""The official MCP conformance suite (`@modelcontextprotocol/conformance`,
its server scenarios) against `mcpist serve --http`, with the bundled
modules. The scenarios MCPist fails are listed, with the reason, in
conformance-baseline.yml; the suite fails the run on any other failure, and
on a listed scenario that passes.

The suite cannot send a header of its own, so it reaches the server through
a local proxy that adds the client's key. Its DNS-rebinding scenario sends
the origin of the URL it was given as `Origin`: the owner allows that one
origin, as for any browser client (MCPist refuses every browser origin
unless `[serve] allowed_origins` names it).
"""

import os
import subprocess
from pathlib import Path

import pytest

from support import NODE, NPM, add_client, free_port, http_server, key_proxy

SUITE = NPM / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
BASELINE = Path(__file__).parent / "conformance-baseline.yml"
PASSING = [
    "server-initialize",
    "logging-set-level",
    "ping",
    "completion-complete",
    "tools-list",
    "server-sse-multiple-streams",
    "resources-list",
    "prompts-list",
    "dns-rebinding-protection",
]


def test_the_official_conformance_suite_passes_all_but_the_listed_scenarios(home, tmp_path):
    if not SUITE.is_file():
        pytest.fail(f"{SUITE} is missing: run `cargo xtask test`, which installs it")
    key = add_client(home, "conformance")
    port = free_port()
    with key_proxy(f"http://127.0.0.1:{port}", key) as proxy:
        (home / "mcpist.toml").write_text(f'[serve]\nallowed_origins = ["{proxy}"]\n')
        with http_server(home, port):
            run = subprocess.run(
                [str(NODE), str(SUITE), "server", "--url", f"{proxy}/mcp",
                 "--expected-failures", str(BASELINE), "-o", str(tmp_path / "results")],
                env={**os.environ, "NO_COLOR": "1"},
                capture_output=True, text=True, timeout=600,
            )
    summary = [line for line in run.stdout.splitlines() if line.startswith(("✓", "✗"))]
    assert run.returncode == 0, "\n".join(summary) + "\n" + run.stdout[-3000:] + run.stderr[-2000:]
    for scenario in PASSING:
        assert any(line.startswith(f"✓ {scenario}:") for line in summary), (scenario, summary)
