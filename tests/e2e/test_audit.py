"""The audit log, end to end: every call through the MCP client leaves one
line; `mcpist audit verify` and `mcpist audit tail` read it."""

import hashlib
import json
import resource
import sys
from pathlib import Path

import pytest
from mcp import Client

from support import mcpist, records, serve, text_of


@pytest.mark.anyio
async def test_every_call_and_refusal_leaves_one_chained_line(home):
    async with Client(serve(home)) as client:
        ok = await client.call_tool(
            "call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "one two"}}
        )
        bad = await client.call_tool(
            "call_module_tool", {"module": "text", "tool": "count", "arguments": {"txt": "x"}}
        )
        unknown = await client.call_tool("call_module_tool", {"module": "nope", "tool": "x"})
        malformed = await client.call_tool("call_module_tool", {"module": "text"})
        tool_error = await client.call_tool(
            "call_module_tool", {"module": "text", "tool": "regex_match", "arguments": {"text": "x", "pattern": "("}}
        )
        schema = await client.call_tool("get_module_schema", {})
    assert not ok.is_error and bad.is_error and unknown.is_error and malformed.is_error and tool_error.is_error
    assert not schema.is_error

    lines = records(home)
    assert [(r["module"], r["tool"], r["outcome"]) for r in lines] == [
        ("text", "count", "ok"),
        ("text", "count", "refused"),
        ("nope", "x", "refused"),
        ("text", "", "refused"),
        ("text", "regex_match", "tool_error"),
    ], "one line per call_module_tool, none for get_module_schema"
    first = lines[0]
    assert first["client"] == "stdio"
    assert first["seq"] == 1 and first["prev"] == "0" * 64
    text_sha = hashlib.sha256((home / "plugins" / "text.wasm").read_bytes()).hexdigest()
    assert first["module_sha256"] == text_sha
    assert first["arguments_sha256"] == hashlib.sha256(b'{"text":"one two"}').hexdigest()
    assert "arguments" not in first, "only the digest, unless configured"
    assert first["duration_us"] > 0
    assert "txt" in lines[1]["reason"]
    assert "unknown module `nope`" in lines[2]["reason"]
    assert all(b["prev"] == a["hash"] for a, b in zip(lines, lines[1:]))

    verified = mcpist(home, "audit", "verify")
    assert "ok: 5 records" in verified.stdout and f"Last hash: {lines[-1]['hash']}" in verified.stdout

    tail = mcpist(home, "audit", "tail", "-n", "2").stdout.splitlines()
    assert len(tail) == 2
    assert "stdio  text.  refused" in tail[0] and "text.regex_match  tool_error" in tail[1]
    only_nope = mcpist(home, "audit", "tail", "--module", "nope", "--json").stdout.splitlines()
    assert [json.loads(line)["module"] for line in only_nope] == ["nope"]


@pytest.mark.anyio
async def test_verify_names_an_edited_line(home):
    async with Client(serve(home)) as client:
        for word in ["a", "b", "c"]:
            await client.call_tool("call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": word}})
    log = home / "audit.log"
    data = bytearray(log.read_bytes())
    second = data.index(b"\n") + 1
    at = data.index(b'"outcome":"ok"', second) + len('"outcome":"')
    data[at:at + 2] = b"OK"  # one record's outcome rewritten, two bytes
    log.write_bytes(bytes(data))
    verified = mcpist(home, "audit", "verify", check=False)
    assert verified.returncode == 1
    assert "line 2: " in verified.stdout and "the log was altered" in verified.stdout
    data[at:at + 2] = b"ok"
    log.write_bytes(bytes(data))
    assert mcpist(home, "audit", "verify").returncode == 0

    # One digit of a value changed: the line no longer matches its hash.
    digit = data.index(b'"duration_us":', second) + len('"duration_us":')
    data[digit] = ord("1") if data[digit] != ord("1") else ord("2")
    log.write_bytes(bytes(data))
    verified = mcpist(home, "audit", "verify", check=False)
    assert verified.returncode == 1
    assert "line 2: edited (its content does not match its hash)" in verified.stdout


@pytest.mark.anyio
async def test_arguments_are_recorded_only_when_configured(home):
    (home / "mcpist.toml").write_text("[audit]\narguments = true\nfsync = \"never\"\n")
    async with Client(serve(home)) as client:
        result = await client.call_tool(
            "call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "hello"}}
        )
    assert not result.is_error, text_of(result)
    (line,) = records(home)
    assert line["arguments"] == {"text": "hello"}


@pytest.mark.anyio
async def test_tail_follow_shows_calls_as_they_are_recorded(home):
    import subprocess
    import threading

    from support import BINARY, env_for

    follower = subprocess.Popen(
        [str(BINARY), "audit", "tail", "--follow", "--json"],
        env=env_for(home), stdout=subprocess.PIPE, text=True,
    )
    seen = []
    reader = threading.Thread(target=lambda: seen.append(follower.stdout.readline()), daemon=True)
    reader.start()
    try:
        async with Client(serve(home)) as client:
            await client.call_tool("call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "x"}})
        reader.join(timeout=10)
    finally:
        follower.terminate()
        follower.wait(timeout=10)
    assert seen and json.loads(seen[0])["tool"] == "count"


def server_pid(home):
    """The pid of the `mcpist serve` the MCP client started on `home`."""
    from support import BINARY

    for proc in Path("/proc").iterdir():
        try:
            if str(BINARY).encode() in (proc / "cmdline").read_bytes() and (
                f"MCPIST_HOME={home}".encode() in (proc / "environ").read_bytes().split(b"\0")
            ):
                return int(proc.name)
        except (OSError, ValueError):
            continue
    raise AssertionError("no mcpist serve process found")


@pytest.mark.anyio
async def test_calls_are_refused_while_the_audit_log_cannot_be_written(home):
    # Once started, the server may not grow files past a few more lines
    # (RLIMIT_FSIZE; SIGXFSZ is ignored, so that the write fails with EFBIG).
    # Its log goes to /dev/null: a regular file (as pytest's capture is)
    # would hit the limit too.
    wrapper = (
        "import os, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "os.dup2(os.open(os.devnull, os.O_WRONLY), 2); os.execv(sys.argv[1], sys.argv[1:])"
    )
    params = serve(home)
    params = params.model_copy(update={"command": sys.executable, "args": ["-c", wrapper, params.command, *params.args]})
    count = {"module": "text", "tool": "count", "arguments": {"text": "recorded or refused"}}
    async with Client(params) as client:
        assert not (await client.call_tool("call_module_tool", count)).is_error
        limit = (home / "audit.log").stat().st_size + 1500
        resource.prlimit(server_pid(home), resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        answers = [await client.call_tool("call_module_tool", count) for _ in range(8)]
        refused = [i for i, a in enumerate(answers) if a.is_error]
        assert refused, "the log never filled up"
        first = refused[0]
        # The call whose line failed was answered (it had run); every later one
        # is refused, saying why, and nothing ran.
        assert not answers[first - 1].is_error and refused == list(range(first, 8))
        assert "the audit log cannot be written" in text_of(answers[first])
        lines = records(home)
        assert len(lines) == first and (home / "audit.log").stat().st_size <= limit
        assert mcpist(home, "audit", "verify", check=False).returncode == 0, "no torn line was left behind"

        # Space again: the refusal is recorded, and calls run again.
        resource.prlimit(server_pid(home), resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        again = await client.call_tool("call_module_tool", count)
        assert again.is_error and "the audit log cannot be written" in text_of(again)
        assert not (await client.call_tool("call_module_tool", count)).is_error
    tail = [(r["outcome"], "audit log cannot be written" in r.get("reason", "")) for r in records(home)[-2:]]
    assert tail == [("refused", True), ("ok", False)]
    assert mcpist(home, "audit", "verify", check=False).returncode == 0


@pytest.mark.anyio
async def test_a_hostile_name_cannot_break_the_log_or_the_owners_terminal(home):
    """A client sends a 300 KB module name, and names with terminal escapes,
    forged newlines and bidi controls: the log stays small and opens at the
    next start, and `audit tail` shows the characters instead of obeying
    them."""
    huge = "m" * (300 * 1024)
    forged = "x\x1b[2J\x1b]0;pwned\x07\n2026-01-01  stdio  text.count  ok\u202etxt"
    async with Client(serve(home)) as client:
        for module in (huge, forged):
            refused = await client.call_tool("call_module_tool", {"module": module, "tool": forged})
            assert refused.is_error
    log = (home / "audit.log").read_text()
    assert len(log) < 8_000, len(log)
    assert hashlib.sha256(huge.encode()).hexdigest() in records(home)[0]["module"]
    # The next start opens the log and the chain goes on.
    async with Client(serve(home)) as client:
        ok = await client.call_tool("call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "a"}})
        assert not ok.is_error
    assert "intact" in mcpist(home, "audit", "verify").stdout
    for args in (["audit", "tail"], ["audit", "tail", "--json"]):
        out = mcpist(home, *args).stdout
        assert len(out.splitlines()) == 3, out
        assert all(ch not in out for ch in "\x1b\x07\u202e"), repr(out)
    plain = mcpist(home, "audit", "tail").stdout
    assert "\\u{1b}[2J" in plain and "\\u{202e}" in plain
    as_json = mcpist(home, "audit", "tail", "--json").stdout.splitlines()
    assert json.loads(as_json[1])["module"] == forged
    # The owner's audit trail and data folder are theirs alone.
    assert (home / "audit.log").stat().st_mode & 0o777 == 0o600
