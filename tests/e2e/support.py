"""What the end-to-end tests share: where the binary and the repository are,
running `mcpist` commands, and starting local upstream servers."""

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from mcp import StdioServerParameters

REPO = Path(os.environ.get("MCPIST_REPO", Path(__file__).resolve().parents[2]))
BINARY = Path(os.environ.get("MCPIST_BIN", REPO / "target" / "debug" / "mcpist"))
UPSTREAMS = Path(__file__).resolve().parent / "upstreams"


def env_for(home, **extra):
    """A minimal environment: nothing of the caller's leaks into the server."""
    env = {"MCPIST_HOME": str(home), "PATH": os.environ.get("PATH", "")}
    env.update(extra)
    return env


def mcpist(home, *args, stdin=None, check=True):
    """Run one `mcpist` command against `home` (its mcpist.toml if present)."""
    return subprocess.run(
        [str(BINARY), *args],
        env=env_for(home),
        input=stdin,
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


def serve(home, log_level="info"):
    """Parameters for an MCP client that starts `mcpist serve` on `home`."""
    return StdioServerParameters(
        command=str(BINARY),
        args=["serve"],
        env=env_for(home, MCPIST_LOG=log_level),
    )


@contextmanager
def python_upstream(name, tokens):
    """Start tests/e2e/upstreams/NAME.py on a free port; yield its base URL."""
    import json

    process = subprocess.Popen(
        [sys.executable, str(UPSTREAMS / f"{name}.py"), "--port", "0", "--tokens", json.dumps(tokens)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on "), f"{name}.py did not start: {line!r}"
        yield f"http://127.0.0.1:{int(line.split()[-1])}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def text_of(result):
    return "".join(block.text for block in result.content if block.type == "text")
