"""Progress: a client that sends a progressToken with a call hears, as
`notifications/progress`, each request the call has had answered (method,
origin and status, never a path), counting up, until the module reports
progress of its own (`progress` of mcpist:plugin@0.2.0: the GitHub module
counts the items of each page it gathers), which then takes over; at MCP
2025-11-25 and 2026-07-28, over stdio and Streamable HTTP.
"""


import pytest
from mcp import Client

from support import add_client, connect, http_server, install_fixture, mcpist, python_upstream, records, serve, text_of

TOKEN = "ghp_progress_1111aaaa"


class Heard:
    def __init__(self):
        self.updates = []

    async def __call__(self, progress, total, message):
        self.updates.append((progress, total, message))


@pytest.fixture
def github(home):
    with python_upstream("github", {TOKEN: "alice"}) as base:
        (home / "mcpist.toml").write_text(f'[upstreams]\n"api.github.com" = "{base}"\n')
        mcpist(home, "plugins", "host", "github", "https://api.github.com", "--allow-private")
        mcpist(home, "account", "add", "github", "personal", stdin=TOKEN + "\n")
        yield home


async def list_repositories(client, heard):
    result = await client.call_tool(
        "call_module_tool",
        {"module": "github", "tool": "list_my_repositories", "arguments": {"per_page": 2, "limit": 300}},
        progress_callback=heard,
    )
    assert not result.is_error, text_of(result)
    return result


def expected_updates(home, result):
    """The first page's request, counted by the host before the module said
    anything; then the module's own count after each page (2 per page here),
    as long as it grows."""
    pages = len(records(home)[-1]["outbound"])
    assert pages >= 3, "the listing should take several pages"
    kept = result.structured_content["count"]
    updates = [(1.0, None, "request 1: GET https://api.github.com: HTTP 200")]
    for page in range(1, pages + 1):
        done = min(2 * page, kept)
        if done > updates[-1][0]:
            updates.append((float(done), 300.0, f"page {page}: {done} of up to 300 items"))
    return updates


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_each_answered_request_is_a_step_of_progress(github, mode):
    heard = Heard()
    async with Client(serve(github), mode=mode) as client:
        result = await list_repositories(client, heard)
    assert heard.updates == expected_updates(github, result)


@pytest.mark.anyio
async def test_over_http_too(github):
    key = add_client(github, "desk")
    heard = Heard()
    with http_server(github) as base:
        async with connect(base, key) as client:
            result = await list_repositories(client, heard)
    assert heard.updates == expected_updates(github, result)


@pytest.mark.anyio
async def test_progress_names_the_origin_never_the_path_or_query(home):
    install_fixture(home, "hostile")
    heard = Heard()
    url = "http://169.254.169.254/latest/meta-data/iam/security-credentials/admin?token=s3cr3t"
    async with Client(serve(home)) as client:
        await client.call_tool(
            "call_module_tool",
            {"module": "hostile", "tool": "fetch", "arguments": {"url": url}},
            progress_callback=heard,
        )
    assert heard.updates == [(1.0, None, "request 1: GET http://169.254.169.254: refused by the host's rules")]
