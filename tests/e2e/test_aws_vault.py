"""The AWS Secrets Manager vault, against a real server: moto (PyPI
`moto[server]`) on a free port, reached through `endpoint_url`. moto does not
check signatures but routes each request by the credential scope of its
`Authorization` header (an unsigned request lands in its S3 mock), and keeps
each region apart: a secret found where the test looks for it was signed for
Secrets Manager in the configured region. Accounts are added, listed, used
through the official MCP client and removed; the secrets are looked at with
boto3; then what a missing key, a missing secret and an outage do.
"""

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx2 as httpx
import pytest
from botocore.exceptions import ClientError
from mcp import Client, StdioServerParameters

from support import BINARY, env_for, free_port, mcpist, text_of
# `upstreams`: the local GitHub and Notion servers, as the account tests use them.
from test_accounts import call, upstreams  # noqa: F401
from test_vaults import configure as configure_vault

MOTO = Path(sys.executable).parent / "moto_server"
REGION = "eu-west-3"


class Moto:
    """`moto_server`: in memory, every AWS service on one port."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [str(MOTO), "-H", "127.0.0.1", "-p", str(self.port)],
            env={"PATH": os.environ.get("PATH", "")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/moto-api/", timeout=1)
                return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, "moto_server exited"
            time.sleep(0.1)
        raise AssertionError("moto_server did not become ready")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def client(self, region=REGION):
        """boto3, as the owner would look at the secrets (moto takes any keys)."""
        return boto3.client("secretsmanager", endpoint_url=self.url, region_name=region,
                            aws_access_key_id="AKIDBOTO3", aws_secret_access_key="boto3")

    def secret(self, name, region=REGION):
        """The SecretString of `name`, or None when there is no such secret."""
        try:
            return self.client(region).get_secret_value(SecretId=name)["SecretString"]
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ResourceNotFoundException", e
            return None


@pytest.fixture
def moto():
    server = Moto()
    server.start()
    yield server
    server.stop()


def aws_keys():
    """Keys unlike anything else in the test, so that a leak is seen."""
    return {
        "AWS_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(8).upper(),
        "AWS_SECRET_ACCESS_KEY": "awssecret-" + secrets.token_hex(16),
        "AWS_SESSION_TOKEN": "awssession-" + secrets.token_hex(24),
    }


def run(home, env, *args, stdin=None, check=True):
    """`mcpist ...` with `env` added to the minimal environment."""
    return subprocess.run([str(BINARY), *args], env=env_for(home, **env), input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, check=check, timeout=60)


def serve(home, env):
    return StdioServerParameters(command=str(BINARY), args=["serve"],
                                 env=env_for(home, MCPIST_LOG="trace", **env))


def configure(home, upstreams, vault_table):
    """GitHub on the local encrypted vault, Notion on the vault `sm`."""
    configure_vault(home, upstreams, f'kind = "aws"\n{vault_table}', vault="sm")


def assert_nothing_leaked(home, *texts, secrets_):
    """No secret in any answer, nor in any file under the home but the
    local encrypted vault (which holds GitHub's token, encrypted)."""
    files = [p for p in home.rglob("*") if p.is_file() and p.suffix != ".wasm" and p.name != "vault.enc"]
    assert any(p.name == "mcpist.log" for p in files)
    haystack = "\n".join([*texts, *(p.read_bytes().decode("utf-8", "replace") for p in files)])
    for secret in secrets_:
        assert secret not in haystack, secret


def account_rows(listing):
    """`account list` as {(service, account): {column: value}}; a column
    may hold two words (`secret missing`), so cells are split on runs of
    two spaces or more."""
    lines = listing.splitlines()
    header = lines[0].split()
    rows = [dict(zip(header, re.split(r"\s{2,}", line.strip()))) for line in lines[1:]]
    return {(row["SERVICE"], row["ACCOUNT"]): row for row in rows}


def search_titles(result):
    assert not result.is_error, text_of(result)
    return [r["title"] for r in result.structured_content["results"]]


@pytest.mark.anyio
async def test_accounts_round_trip_through_secrets_manager_signed_for_its_region(home, moto, upstreams):
    keys = aws_keys()
    configure(home, upstreams, f'region = "{REGION}"\nendpoint_url = "{moto.url}"\ntimeout_ms = 5000')
    mcpist(home, "account", "add", "github", "personal", stdin="ghp_personal_1111aaaa\n")
    # Without keys in its environment (nor HOME, for ~/.aws/credentials),
    # mcpist says which to set.
    no_keys = run(home, {}, "account", "add", "notion", "team-a", stdin="secret_notion_b_4444\n", check=False)
    assert no_keys.returncode != 0
    assert "vault `sm` is unavailable: no AWS credentials" in no_keys.stderr, no_keys.stderr
    assert "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in no_keys.stderr, no_keys.stderr
    added = run(home, keys, "account", "add", "notion", "team-a", stdin="secret_notion_b_4444\n")
    assert "stored in vault `sm`" in added.stdout, added.stdout
    # Created under PREFIX + SERVICE/ACCOUNT, in the configured region only.
    assert moto.secret("mcpist/notion/team-a") == "secret_notion_b_4444"
    assert moto.secret("mcpist/notion/team-a", region="us-east-1") is None
    # Added again: the existing secret gets a new value.
    run(home, keys, "account", "add", "notion", "team-a", stdin="secret_notion_a_3333\n")
    assert moto.secret("mcpist/notion/team-a") == "secret_notion_a_3333"
    described = moto.client().describe_secret(SecretId="mcpist/notion/team-a")
    assert described["Description"] == "MCPist: the token of notion account team-a"

    listed = run(home, keys, "account", "list").stdout
    rows = account_rows(listed)
    team_a = rows[("notion", "team-a")]
    assert (team_a["VAULT"], team_a["REFERENCE"], team_a["SECRET"]) == ("sm", "notion/team-a", "ok"), listed
    assert rows[("github", "personal")]["SECRET"] == "ok", listed

    async with Client(serve(home, keys)) as client:
        # The token the upstream sees is the one read from Secrets Manager.
        notion = await call(client, "notion", "search", {"query": "Welcome"})
        assert search_titles(notion) == ["Welcome to workspace-a"]
        github = await call(client, "github", "list_my_repositories")
        assert not github.is_error, text_of(github)

    removed = run(home, keys, "account", "remove", "notion", "team-a")
    assert "from vault `sm`" in removed.stdout
    # Deleted at once, not scheduled for deletion in 30 days.
    assert moto.secret("mcpist/notion/team-a") is None
    assert moto.client().list_secrets(IncludePlannedDeletion=True)["SecretList"] == []
    # The session token went out as a header and nowhere else; the signer's
    # trace log (which prints the access key id) stays muted.
    assert "aws_sigv4" not in (home / "mcpist.log").read_text()
    assert_nothing_leaked(home, added.stdout, added.stderr, listed, text_of(notion), removed.stdout,
                          secrets_=["secret_notion_a_3333", "secret_notion_b_4444", "ghp_personal_1111aaaa",
                                    *keys.values()])


@pytest.mark.anyio
async def test_keys_from_a_named_profile_and_what_missing_keys_and_secrets_say(home, moto, upstreams, tmp_path_factory):
    aws = tmp_path_factory.mktemp("aws")
    key, secret_key = "AKIA" + secrets.token_hex(8).upper(), "filesecret-" + secrets.token_hex(16)
    (aws / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDNOTTHISONE\naws_secret_access_key = not-this-one\n"
        f"# MCPist's own\n[mcpist-sm]\naws_access_key_id = {key}\naws_secret_access_key = {secret_key}\n")
    file_env = {"AWS_SHARED_CREDENTIALS_FILE": str(aws / "credentials")}
    configure(home, upstreams, f'region = "{REGION}"\nendpoint_url = "{moto.url}"\nprofile = "mcpist-sm"\n'
                               'prefix = "apps/mcpist-"')

    # No keys at all: the command fails, says what to set, and records nothing.
    no_keys = run(home, {}, "account", "add", "notion", "team-a", stdin="secret_notion_a_3333\n", check=False)
    assert no_keys.returncode != 0
    assert "vault `sm` is unavailable: no AWS credentials: set AWS_SHARED_CREDENTIALS_FILE" in no_keys.stderr, no_keys.stderr
    assert "profile `mcpist-sm`" in no_keys.stderr, no_keys.stderr
    assert "No accounts yet" in run(home, {}, "account", "list").stdout
    # The profile is not in the file named.
    (aws / "other").write_text("[default]\naws_access_key_id = A\naws_secret_access_key = B\n")
    wrong = run(home, {"AWS_SHARED_CREDENTIALS_FILE": str(aws / "other")},
                "account", "add", "notion", "team-a", stdin="secret_notion_a_3333\n", check=False)
    assert f"{aws / 'other'} has no profile `mcpist-sm`" in wrong.stderr, wrong.stderr

    run(home, file_env, "account", "add", "notion", "team-a", stdin="secret_notion_a_3333\n")
    assert moto.secret("apps/mcpist-notion/team-a") == "secret_notion_a_3333"

    async with Client(serve(home, file_env)) as client:
        notion = await call(client, "notion", "search", {"query": "Welcome"})
        assert search_titles(notion) == ["Welcome to workspace-a"]
        # The secret is deleted behind MCPist's back: the call says where it
        # looked and how to put it back.
        moto.client().delete_secret(SecretId="apps/mcpist-notion/team-a", ForceDeleteWithoutRecovery=True)
        missing = await call(client, "notion", "search", {"query": "Welcome"})
        assert missing.is_error
        assert ("vault `sm` has no secret `notion/team-a`; there is no AWS secret `apps/mcpist-notion/team-a` "
                f"in {REGION}: add it with `mcpist account add notion team-a`") in text_of(missing), text_of(missing)
    listed = run(home, file_env, "account", "list").stdout
    assert account_rows(listed)[("notion", "team-a")]["SECRET"] == "secret missing", listed
    assert_nothing_leaked(home, no_keys.stderr, wrong.stderr, text_of(notion), text_of(missing), listed,
                          secrets_=["secret_notion_a_3333", key, secret_key])


@pytest.mark.anyio
async def test_an_outage_of_secrets_manager_touches_only_its_services(home, moto, upstreams):
    keys = aws_keys()
    configure(home, upstreams, f'region = "{REGION}"\nendpoint_url = "{moto.url}"\ntimeout_ms = 1500')
    mcpist(home, "account", "add", "github", "personal", stdin="ghp_personal_1111aaaa\n")
    run(home, keys, "account", "add", "notion", "team-a", stdin="secret_notion_a_3333\n")

    async def timed(client, module, tool, arguments):
        began = time.monotonic()
        result = await call(client, module, tool, arguments)
        return result, time.monotonic() - began

    async with Client(serve(home, keys)) as client:
        notion, _ = await timed(client, "notion", "search", {"query": "Welcome"})
        assert search_titles(notion) == ["Welcome to workspace-a"]

        # moto hangs: connections are accepted by the kernel, never answered.
        os.kill(moto.process.pid, signal.SIGSTOP)
        try:
            notion, waited = await timed(client, "notion", "search", {"query": "Welcome"})
            assert notion.is_error
            assert "vault `sm` is unavailable" in text_of(notion), text_of(notion)
            assert "1500 ms" in text_of(notion), text_of(notion)
            assert waited < 5, waited
            github, took = await timed(client, "github", "list_my_repositories", {})
            assert not github.is_error, text_of(github)
            assert took < 1.5, took
        finally:
            os.kill(moto.process.pid, signal.SIGCONT)
        notion, _ = await timed(client, "notion", "search", {"query": "Welcome"})
        assert search_titles(notion) == ["Welcome to workspace-a"]

        # moto dies: connection refused, said with the vault's name.
        moto.stop()
        notion, waited = await timed(client, "notion", "search", {"query": "Welcome"})
        assert notion.is_error
        assert f"vault `sm` is unavailable: cannot connect to {moto.url}/" in text_of(notion), text_of(notion)
        assert waited < 5, waited
        github, _ = await timed(client, "github", "list_my_repositories", {})
        assert not github.is_error, text_of(github)
        # A new moto on the same port (in memory: the owner puts the secret
        # back) serves again, with no restart of mcpist.
        moto.start()
        moto.client().create_secret(Name="mcpist/notion/team-a", SecretString="secret_notion_a_3333")
        notion, _ = await timed(client, "notion", "search", {"query": "Welcome"})
        assert search_titles(notion) == ["Welcome to workspace-a"]
    assert_nothing_leaked(home, secrets_=["secret_notion_a_3333", "ghp_personal_1111aaaa", *keys.values()])
