"""Per-client tool masks: what a client may not see is absent from its
catalog, and calling it is answered exactly as for a name that does not
exist. Masks are set in mcpist.toml per client name (`stdio` included)."""

import pytest
from mcp import Client

from support import add_client, connect, http_server, mcpist, serve, text_of

MASKS = """
[masks.reader]
modules = ["github", "text"]
read_only = true
accounts = { github = ["personal"] }

[masks.stdio]
deny_tools = ["text.base64_*", "time.*"]
"""


@pytest.fixture
def masked(home):
    (home / "mcpist.toml").write_text(MASKS)
    for name, token in [("personal", "ghp_personal_1"), ("work", "ghp_work_2")]:
        mcpist(home, "account", "add", "github", name, stdin=token)
    return home


async def catalog(client):
    result = await client.call_tool("get_module_schema", {})
    return {m["name"]: m["tools"] for m in result.structured_content["modules"]}


async def call(client, module, tool, arguments=None, account=None):
    params = {"module": module, "tool": tool, "arguments": arguments or {}}
    if account:
        params["account"] = account
    return await client.call_tool("call_module_tool", params)


@pytest.mark.anyio
async def test_two_clients_with_different_masks_see_different_catalogs(masked):
    reader_key = add_client(masked, "reader")
    admin_key = add_client(masked, "admin")  # no mask: everything
    with http_server(masked) as base:
        async with connect(base, reader_key) as reader, connect(base, admin_key) as admin:
            seen = await catalog(reader)
            assert sorted(seen) == ["github", "text"]
            assert "create_issue" not in seen["github"] and "comment_on_issue" not in seen["github"]
            assert "get_issue" in seen["github"]
            everything = await catalog(admin)
            assert sorted(everything) == ["github", "google_calendar", "notion", "text", "time"]
            assert "create_issue" in everything["github"]

            # A masked tool answers exactly like a tool that does not exist.
            masked_tool = await call(reader, "github", "create_issue", {"owner": "o", "repo": "r", "title": "t"})
            missing_tool = await call(reader, "github", "no_such_tool")
            assert masked_tool.is_error and missing_tool.is_error
            assert text_of(masked_tool).replace("create_issue", "X") == text_of(missing_tool).replace("no_such_tool", "X")
            assert "create_issue" not in text_of(missing_tool), "the list of tools leaves masked ones out"

            # So does a masked module.
            masked_module = await call(reader, "notion", "search")
            missing_module = await call(reader, "nowhere", "search")
            assert text_of(masked_module).replace("notion", "X") == text_of(missing_module).replace("nowhere", "X")
            schema = await reader.call_tool("get_module_schema", {"module": "notion"})
            assert schema.is_error and "unknown module `notion`; available modules: github, text" in text_of(schema)

            # Accounts are masked too: `work` does not exist for this client.
            (github,) = (await reader.call_tool("get_module_schema", {"module": "github"})).structured_content["modules"]
            assert github["accounts"] == [{"service": "github", "accounts": ["personal"], "default": "personal"}]
            work = await call(reader, "github", "get_repository", {"owner": "o", "repo": "r"}, account="work")
            assert work.is_error
            assert "there is no `github` account named `work`; github accounts: personal" in text_of(work)

            # The admin, unmasked, is refused nothing of this.
            (github,) = (await admin.call_tool("get_module_schema", {"module": "github"})).structured_content["modules"]
            assert github["accounts"][0]["accounts"] == ["personal", "work"]


@pytest.mark.anyio
async def test_the_local_owner_has_a_mask_too(masked):
    async with Client(serve(masked)) as client:
        seen = await catalog(client)
        assert "time" not in seen
        assert "base64_encode" not in seen["text"] and "hash" in seen["text"]
        refused = await call(client, "text", "base64_encode", {"text": "x"})
        assert refused.is_error and "has no tool `base64_encode`" in text_of(refused)


def test_a_bad_mask_is_reported_with_its_line(home):
    (home / "mcpist.toml").write_text('[log]\nlevel = "info"\n\n[masks.reader]\nmodules = ["["]\n')
    result = mcpist(home, "plugins", "list", check=False)
    assert result.returncode != 0
    assert "mcpist.toml:4: [masks.reader] modules: \"[\" is not a valid glob" in result.stderr


@pytest.mark.anyio
async def test_an_account_mask_limits_what_may_act_for_that_account(home):
    (home / "mcpist.toml").write_text(
        """
[account_masks.github.work]
read_only = true

[account_masks.github.personal]
clients = ["reader"]
deny_tools = ["github.create_*"]
"""
    )
    for name, token in [("personal", "ghp_personal_1"), ("work", "ghp_work_2")]:
        mcpist(home, "account", "add", "github", name, stdin=token)
    issue = {"owner": "o", "repo": "r", "title": "t"}
    async with Client(serve(home)) as owner:
        # The tool stays visible: another account may run it.
        assert "create_issue" in (await catalog(owner))["github"]
        refused = await call(owner, "github", "create_issue", issue, account="work")
        assert refused.is_error
        assert "the github account `work` is masked for `github.create_issue`: only read-only tools" in text_of(refused)
        # Not masked: these get as far as the network (no upstream here).
        for tool, args, account in [("get_repository", {"owner": "o", "repo": "r"}, "work"), ("create_issue", issue, "personal")]:
            result = await call(owner, "github", tool, args, account=account)
            assert "masked" not in text_of(result), text_of(result)

    reader_key = add_client(home, "reader")
    with http_server(home) as base:
        async with connect(base, reader_key) as reader:
            refused = await call(reader, "github", "create_issue", issue, account="personal")
            assert "the github account `personal` is masked for `github.create_issue`: the tool is denied" in text_of(refused)
    import json

    lines = [json.loads(x) for x in (home / "audit.log").read_text().splitlines()]
    refusals = [(x["client"], x["account"], x["outcome"]) for x in lines if "masked" in x.get("reason", "")]
    assert refusals == [("stdio", "work", "refused"), ("reader", "personal", "refused")], lines
