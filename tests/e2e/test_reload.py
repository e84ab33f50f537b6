"""Hot reload: modules dropped into, changed in or removed from plugins/, and
approvals, take effect while a client is connected, without a restart. In
flat mode the client is told (`notifications/tools/list_changed`)."""

import asyncio
import json
import shutil
import time

import pytest
from mcp import Client

from support import mcpist, records, serve, text_of
from test_lifecycle import install

BUNDLED = ["github", "google_calendar", "notion", "text", "time"]


async def eventually(check, what, timeout=15):
    """Poll `check` (async, returning a truthy value) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def modules(client):
    result = await client.call_tool("get_module_schema", {})
    return sorted(m["name"] for m in result.structured_content["modules"])


@pytest.mark.anyio
async def test_modules_are_added_changed_and_removed_while_a_client_is_connected(home):
    async with Client(serve(home)) as client:
        assert await modules(client) == BUNDLED

        # A new file is pending: seen, not served.
        install(home, "weather")
        await asyncio.sleep(1.5)
        assert await modules(client) == BUNDLED
        # Approved (the lock changes): served at once.
        mcpist(home, "plugins", "approve", "weather", "--yes")
        await eventually(lambda: _has(client, "weather"), "weather to be served")
        units = await client.call_tool("call_module_tool", {"module": "weather", "tool": "units"})
        assert text_of(units) == "metric, imperial"

        # A rug pull: the changed file stops serving until approved.
        install(home, "weather_rugpull")
        await eventually(lambda: _lacks(client, "weather"), "the changed weather to stop being served")
        refused = await client.call_tool("call_module_tool", {"module": "weather", "tool": "units"})
        assert refused.is_error and "unknown module `weather`" in text_of(refused)
        mcpist(home, "plugins", "approve", "weather", "--yes")
        await eventually(lambda: _has(client, "weather"), "the approved new build to be served")
        schema = await client.call_tool("get_module_schema", {"module": "weather"})
        (weather,) = schema.structured_content["modules"]
        forecast = next(t for t in weather["tools"] if t["name"] == "forecast")
        assert "last three messages" in forecast["description"]

        # Removed: unloaded.
        (home / "plugins" / "weather.wasm").unlink()
        await eventually(lambda: _lacks(client, "weather"), "weather to be unloaded")
        assert await modules(client) == BUNDLED


async def _has(client, name):
    return name in await modules(client)


async def _lacks(client, name):
    return name not in await modules(client)


async def _flat_client_sees(home, client, wait_for_change):
    names = {t.name for t in (await client.list_tools()).tools}
    assert "text.count" in names and "get_module_schema" not in names
    assert not any(n.startswith(("github.", "time.")) for n in names), "the mask holds in flat mode"
    result = await client.call_tool("text.count", {"text": "flat and direct"})
    assert not result.is_error and result.structured_content["words"] == 3

    install(home, "weather")
    mcpist(home, "plugins", "approve", "weather", "--yes")
    await asyncio.wait_for(wait_for_change(), 15)
    names = {t.name for t in (await client.list_tools()).tools}
    assert {"weather.forecast", "weather.units"} <= names
    units = await client.call_tool("weather.units", {})
    assert text_of(units) == "metric, imperial"


FLAT = '[serve]\ntools = "flat"\n\n[masks.stdio]\nmodules = ["text", "weather"]\n'


@pytest.mark.anyio
async def test_flat_mode_tells_a_listening_client_when_tools_change(home):
    """MCP 2026-07-28: changes arrive on a `subscriptions/listen` stream."""
    (home / "mcpist.toml").write_text(FLAT)
    async with Client(serve(home)) as client:
        async with client.listen(tools_list_changed=True) as subscription:
            events = aiter(subscription)
            await _flat_client_sees(home, client, lambda: anext(events))


@pytest.mark.anyio
async def test_flat_mode_notifies_a_2025_client_when_tools_change(home):
    """MCP 2025-11-25: `notifications/tools/list_changed` on the session."""
    (home / "mcpist.toml").write_text(FLAT)
    changed = asyncio.Event()

    async def on_message(message):
        if type(getattr(message, "root", message)).__name__ == "ToolListChangedNotification":
            changed.set()

    async with Client(serve(home), mode="legacy", message_handler=on_message) as client:
        await _flat_client_sees(home, client, changed.wait)


@pytest.mark.anyio
async def test_flat_tools_of_account_modules_take_an_account(home):
    (home / "mcpist.toml").write_text('[serve]\ntools = "flat"\n')
    mcpist(home, "account", "add", "github", "personal", stdin="ghp_personal_1")
    async with Client(serve(home)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "account" in tools["github.get_repository"].input_schema["properties"]
        assert "account" not in tools["text.count"].input_schema["properties"]
        assert tools["github.get_repository"].annotations.read_only_hint is True
        wrong = await client.call_tool("github.get_repository", {"owner": "o", "repo": "r", "account": "work"})
        assert wrong.is_error and "there is no `github` account named `work`; github accounts: personal" in text_of(wrong)
        # A selector that is not a string is refused, never read as "the default".
        for odd in (5, None, ["personal"], {"name": "personal"}):
            refused = await client.call_tool("github.get_repository", {"owner": "o", "repo": "r", "account": odd})
            assert refused.is_error and "`account` must be a string" in text_of(refused), text_of(refused)
    assert [r["outcome"] for r in records(home)][-4:] == ["refused"] * 4


@pytest.mark.anyio
async def test_a_flat_tool_keeps_its_own_account_parameter(home):
    """A tool whose schema has an `account` of its own keeps it; the account
    selector is then `mcpist_account`."""
    from test_lifecycle import FIXTURES

    (home / "mcpist.toml").write_text('[serve]\ntools = "flat"\n')
    shutil.copy(FIXTURES / "prober.wasm", home / "plugins" / "prober.wasm")
    mcpist(home, "plugins", "approve", "prober", "--yes")
    mcpist(home, "account", "add", "svc", "personal", stdin="tok-personal")
    mcpist(home, "account", "add", "svc", "work", stdin="tok-work")
    async with Client(serve(home)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        properties = tools["prober.fetch"].input_schema["properties"]
        assert properties["account"]["description"].startswith("A parameter of the tool's own")
        assert "mcpist_account" in properties
        result = await client.call_tool("prober.fetch", {"url": "", "account": "mine", "mcpist_account": "work"})
        assert not result.is_error, text_of(result)
        report = json.loads(text_of(result))
        assert report["arguments"]["account"] == "mine" and report["account"] == "work"


@pytest.mark.anyio
async def test_two_versions_side_by_side_switch_and_roll_back(home):
    from test_lifecycle import FIXTURES

    install(home, "weather")
    mcpist(home, "plugins", "approve", "weather", "--yes")
    shutil.copy(FIXTURES / "weather_newhost.wasm", home / "plugins" / "weather2.wasm")

    async def version():
        result = await client.call_tool("get_module_schema", {})
        return next(m["version"] for m in result.structured_content["modules"] if m["name"] == "weather")

    async def serving(expected):
        return await version() == expected

    async with Client(serve(home)) as client:
        assert await version() == "1.0.0"
        # The new version is approved beside the old one, with its own hosts,
        # and served at once; the old one stands by.
        approve = mcpist(home, "plugins", "approve", "weather2", "--yes").stdout
        assert "version  1.0.0 -> 2.0.0" in approve and "+ host https://collect.evil.example" in approve
        await eventually(lambda: serving("2.0.0"), "version 2.0.0 to be served")
        listing = mcpist(home, "plugins", "list").stdout
        assert "standing by: weather2.wasm is the version served" in listing

        # Roll back, and forward again, while the client stays connected.
        assert "Serving weather@1.0.0" in mcpist(home, "plugins", "use", "weather@1.0.0").stdout
        await eventually(lambda: serving("1.0.0"), "the rollback to 1.0.0")
        mcpist(home, "plugins", "use", "weather@2")  # a version given in part
        await eventually(lambda: serving("2.0.0"), "2.0.0 again")
    lock = (home / "registry.lock").read_text()
    assert lock.count('name = "weather"') == 2 and 'weather = "weather2.wasm"' in lock
    unknown = mcpist(home, "plugins", "use", "weather@9.9.9", check=False)
    assert unknown.returncode != 0 and "pinned versions: weather@1.0.0 (weather.wasm), weather@2.0.0 (weather2.wasm)" in unknown.stderr
