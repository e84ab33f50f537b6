"""`kill -9` at random points while mcpist writes: adding an account,
replacing a token, approving a module, appending to the audit log. After
every kill, the vault, `accounts.toml`, `registry.lock` and the audit chain
are readable and hold the old state or the new one, never a mix, and
`audit verify` passes (a torn last line is reported as a crash and cut off
at the next start).

MCPIST_CRASH_KILLS sets the number of kills (200 by default), spread over
the four operations; MCPIST_CRASH_SEED the random seed (printed on failure).
"""

import hashlib
import json
import os
import random
import signal
import subprocess
import threading
import time
import tomllib

from support import BINARY, env_for, mcpist
from test_lifecycle import FIXTURES

KILLS = int(os.environ.get("MCPIST_CRASH_KILLS", "200"))
SEED = int(os.environ.get("MCPIST_CRASH_SEED", str(random.randrange(1 << 30))))


def start(home, *args, stdin=b""):
    """Starts mcpist and returns at once: its input is fed from a thread, so
    that the caller's clock (and its kill) runs from the spawn, not from
    when the process has read everything."""
    process = subprocess.Popen(
        [str(BINARY), *args],
        env=env_for(home),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def feed():
        try:
            process.stdin.write(stdin)
            process.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    threading.Thread(target=feed, daemon=True).start()
    return process


def accounts(home):
    """Every listed account has its secret in the vault (the vault decrypts
    whole: a torn or mixed vault would not)."""
    listed = mcpist(home, "account", "list").stdout.splitlines()[1:]
    rows = [line.split() for line in listed]
    for row in rows:
        assert row[-1] == "ok", f"an account without its secret: {row}"
    return {row[1] for row in rows}


def pinned_sha(home):
    lock = tomllib.loads((home / "registry.lock").read_text())
    return {m["name"]: m["sha256"] for m in lock.get("module", [])}.get("weather")


def calls(count):
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "crash", "version": "1"}}}
    lines = [init, {"jsonrpc": "2.0", "method": "notifications/initialized"}]
    for i in range(1, count + 1):
        lines.append({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
            "name": "call_module_tool",
            "arguments": {"module": "text", "tool": "count", "arguments": {"text": f"call {i} " * 20}}}})
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_kill_9_at_random_points_leaves_the_old_state_or_the_new(home):
    rng = random.Random(SEED)
    builds = {name: (FIXTURES / f"{name}.wasm").read_bytes() for name in ("weather", "weather_newhost")}
    sha = {name: hashlib.sha256(b).hexdigest() for name, b in builds.items()}
    (home / "plugins" / "weather.wasm").write_bytes(builds["weather"])
    mcpist(home, "plugins", "approve", "weather", "--yes")
    mcpist(home, "account", "add", "svc", "base", stdin="token-0")
    batch = calls(400)

    def launch(operation, i):
        """Starts one run of the operation; returns the process and, for an
        approval, the build it approves (always the one not pinned now)."""
        if operation == "account add":
            return start(home, "account", "add", "svc", f"acct{i}", stdin=f"token-{i}".encode()), None
        if operation == "token replace":
            return start(home, "account", "add", "svc", "base", stdin=f"token-{i}".encode()), None
        if operation == "plugins approve":
            build = "weather" if pinned_sha(home) == sha["weather_newhost"] else "weather_newhost"
            (home / "plugins" / "weather.wasm").write_bytes(builds[build])
            return start(home, "plugins", "approve", "weather", "--yes"), build
        return start(home, "serve", stdin=batch), None

    counts = {"account add": 0, "token replace": 0, "plugins approve": 0, "audit append": 0}
    # How long each operation runs when left alone (the median of three
    # runs, from spawn to exit), so that a kill lands at a random point of
    # its life rather than after it has finished.
    lifetime = {}
    for operation in counts:
        runs = []
        for n in range(3):
            began = time.monotonic()
            process, _ = launch(operation, -1 - 4 * n)
            assert process.wait(timeout=120) == 0, operation
            runs.append(time.monotonic() - began)
        lifetime[operation] = sorted(runs)[1]
    known = accounts(home)
    # Kills that landed while the command was still running (the rest found
    # it finished): the test means something only if many of them did.
    interrupted = dict.fromkeys(counts, 0)

    for i in range(KILLS):
        operation = list(counts)[i % 4]
        counts[operation] += 1
        context = f"kill {i} during {operation} (MCPIST_CRASH_SEED={SEED})"
        before = pinned_sha(home)
        process, build = launch(operation, i)
        time.sleep(rng.uniform(0, lifetime[operation]))
        process.kill()
        if process.wait() == -signal.SIGKILL:
            interrupted[operation] += 1

        # The vault and accounts.toml: every account has its secret, and the
        # set is the old one or the old one plus the new account.
        now = accounts(home)
        assert known <= now <= known | {f"acct{i}"}, context
        known = now
        if operation == "plugins approve":
            # The lock parses and pins the old build or the new one.
            after = pinned_sha(home)
            assert after in (before, sha[build]), context
        if operation == "audit append":
            verify = mcpist(home, "audit", "verify", check=False)
            assert verify.returncode == 0, f"{context}: {verify.stdout}{verify.stderr}"
    # Every state left behind still serves: the log opens (cutting a torn
    # line), and the chain verifies.
    mcpist(home, "plugins", "list")
    process = start(home, "serve", stdin=calls(3))
    process.wait(timeout=60)
    verify = mcpist(home, "audit", "verify")
    assert "intact" in verify.stdout
    print(
        f"\n{KILLS} kills {counts}, of which while running {interrupted}, "
        f"lifetimes {({k: round(v, 3) for k, v in lifetime.items()})} s, seed {SEED}"
    )
    for operation, hits in interrupted.items():
        assert hits >= counts[operation] // 3, f"too few kills landed during {operation}: {interrupted}"
