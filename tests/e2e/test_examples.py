"""The example module of plugins/examples/, built in every language by
`cargo xtask build-examples`, passes the same assertions over MCP: approved
and served, a tool computing from its input, a tool fetching a page title
from an approved host through `[upstreams]` (a local server), a refused host,
and an uncaught error reported with its message."""

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mcp import Client

from support import REPO, mcpist, records, serve, text_of

# Every language with an example; `cargo xtask build-examples` builds each.
LANGUAGES = ["rust", "python", "js", "c", "go"]
PAGE = b"<!doctype html><html><head><title>\n  Example Domain &amp; Friends </title></head><body>hi</body></html>"


@pytest.fixture
def pages():
    """A local stand-in for https://example.com: every GET answers PAGE; the
    paths asked for are kept."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def install_example(home, language, base):
    wasm = REPO / "target" / "examples" / f"example-{language}.wasm"
    if not wasm.is_file():
        pytest.fail(f"{wasm} is missing: run `cargo xtask build-examples`")
    shutil.copy(wasm, home / "plugins" / wasm.name)
    (home / "mcpist.toml").write_text(f'[upstreams]\n"https://example.com" = "{base}"\n')
    name = f"example-{language}"
    mcpist(home, "plugins", "approve", name, "--yes")
    # The local stand-in is on loopback, which the owner allows for this host.
    mcpist(home, "plugins", "host", name, "https://example.com", "--allow-private")
    return name


async def call(client, module, tool, arguments):
    return await client.call_tool("call_module_tool", {"module": module, "tool": tool, "arguments": arguments})


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.anyio
async def test_the_example_module_behaves_the_same_in_every_language(home, pages, language):
    base, seen = pages
    module = install_example(home, language, base)
    async with Client(serve(home)) as client:
        schema = await client.call_tool("get_module_schema", {"module": module})
        (described,) = schema.structured_content["modules"]
        assert {t["name"] for t in described["tools"]} == {"word_stats", "page_title"}

        stats = await call(client, module, "word_stats", {"text": "Sandboxes keep modules honest; honest modules keep sandboxes."})
        assert not stats.is_error, text_of(stats)
        assert stats.structured_content == {"words": 8, "unique_words": 4, "longest": "Sandboxes"}

        title = await call(client, module, "page_title", {"url": "https://example.com/start"})
        assert not title.is_error, text_of(title)
        assert title.structured_content == {"status": 200, "title": "Example Domain & Friends"}
        assert seen == ["/start"]

        refused = await call(client, module, "page_title", {"url": "https://unapproved.example.org/"})
        assert refused.is_error
        assert "is not an approved host" in text_of(refused), text_of(refused)
        assert seen == ["/start"], "nothing left for the unapproved host"

        crashed = await call(client, module, "word_stats", {"text": "crash"})
        assert crashed.is_error
        assert "the example crashed on purpose" in text_of(crashed), text_of(crashed)

        # The server still serves after the failure.
        again = await call(client, module, "word_stats", {"text": "still here"})
        assert again.structured_content["words"] == 2

    # Every call is audited; the crash is a trap in Rust (a panic), C (abort)
    # and Go (a panic), and a `failed` tool error from the Python and
    # JavaScript SDKs, which catch the exception.
    outcomes = [r["outcome"] for r in records(home) if r.get("module") == module]
    assert outcomes[:3] == ["ok", "ok", "tool_error"] and outcomes[4:] == ["ok"], outcomes
    assert outcomes[3] == ("tool_error" if language in ("python", "js") else "failed"), outcomes
