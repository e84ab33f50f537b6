"""Accounts connected by OAuth, against a real authorization server: the npm
package oidc-provider (tests/e2e/service_provider.mjs) plays Google's
provider, with PKCE required, refresh tokens rotated on every use, access
tokens living a few seconds, revocation and introspection. The local Calendar
API (upstreams/google.py) accepts a token only while the provider's
introspection says it is active.

`mcpist account connect` runs as the owner would run it; the test plays the
browser: it opens the printed URL with an HTTP client and a cookie jar,
signs in and consents on the provider's development pages, and follows the
redirect to MCPist's loopback listener. Calls go through the official
Python MCP SDK."""

import re
import subprocess
from contextlib import contextmanager
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import anyio
import httpx2
import pytest
from mcp import Client

from support import (
    BINARY,
    account_rows,
    env_for,
    free_port,
    mcpist,
    node_issuer,
    python_upstream,
    serve,
    text_of,
)

RESOURCE = "https://www.googleapis.com/calendar"
CLIENT_SECRET = "calendar-app-secret"
RECONNECT = "must be connected again: mcpist account connect google work"


def authorization_server(access_token_ttl):
    """service_provider.mjs on a free port; yields its issuer."""
    return node_issuer("service_provider.mjs", free_port(), RESOURCE, access_token_ttl)


def stats(issuer):
    return httpx2.get(f"{issuer}/test/stats").json()


def introspect(issuer, token):
    answer = httpx2.post(
        f"{issuer}/token/introspection", data={"token": token}, auth=("calendar-api", "calendar-api-secret")
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["active"]


@contextmanager
def owner_home(home, access_token_ttl, client="calendar-app", extra=""):
    """A home whose `google` service connects at the provider: yields the
    provider's issuer and the Calendar API's base URL."""
    with authorization_server(access_token_ttl) as issuer:
        introspection = ["--introspect", f"{issuer}/token/introspection"]
        credentials = ["--client-id", "calendar-api", "--client-secret", "calendar-api-secret"]
        with python_upstream("google", args=[*introspection, *credentials]) as api:
            auth = "none" if client == "calendar-public" else "client_secret_basic"
            (home / "mcpist.toml").write_text(
                f"""
[log]
file = "mcpist.log"
level = "trace"
[upstreams]
"www.googleapis.com" = "{api}"
[oauth.google]
client_id = "{client}"
issuer = "{issuer}"
scopes = ["calendar"]
authorization_params = {{}}
token_endpoint_auth_method = "{auth}"
refresh_skew_secs = 1
{extra}
"""
            )
            mcpist(home, "plugins", "host", "google_calendar", "https://www.googleapis.com", "--allow-private")
            if client == "calendar-app":
                stored = mcpist(home, "oauth", "secret", "google", stdin=CLIENT_SECRET + "\n").stdout
                assert "Stored the client secret" in stored
            yield issuer, api


def start_connect(home, *args, name="work"):
    """`mcpist account connect google NAME`: the process and the URL it printed."""
    process = subprocess.Popen(
        [str(BINARY), "account", "connect", "google", name, "--no-browser", *args],
        env=env_for(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stderr:
        if line.startswith("http"):
            return process, line.strip()
    process.wait(timeout=10)
    raise AssertionError(f"connect printed no URL: {process.stdout.read()}")


def finished(process):
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def browse(browser, response, until=lambda url: False):
    """Follow redirects and the provider's login and consent pages until the
    next hop is one `until` accepts, and return that URL, not visited; or
    until a page that is neither, and return that page."""
    for _ in range(20):
        if response.status_code in (302, 303):
            location = urljoin(str(response.url), response.headers["location"])
            if until(location):
                return location
            response = browser.get(location)
            continue
        assert response.status_code == 200, response.text
        prompt = re.search(r'name="prompt" value="(\w+)"', response.text)
        if not prompt:
            return response
        form = {"prompt": prompt.group(1)}
        if prompt.group(1) == "login":
            form.update(login="alice", password="any")
        response = browser.post(str(response.url), data=form)
    raise AssertionError("the sign-in did not come back")


def sign_in(url):
    """Sign in at the provider; return the redirect to MCPist, not visited."""
    browser = httpx2.Client(follow_redirects=False)
    callback = browse(browser, browser.get(url), lambda u: urlsplit(u).path == "/callback")
    return browser, callback


def with_query(url, **changes):
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def connect_account(home, *args, name="work"):
    process, url = start_connect(home, *args, name=name)
    browser, callback = sign_in(url)
    page = browser.get(callback).text
    code, out, err = finished(process)
    assert code == 0, err
    assert "Connected." in page
    return out


def list_rows(home):
    return account_rows(mcpist(home, "account", "list").stdout)


async def calendars(client, account=None):
    arguments = {"module": "google_calendar", "tool": "list_calendars", "arguments": {}}
    if account:
        arguments["account"] = account
    return await client.call_tool("call_module_tool", arguments)


def issued_tokens(issuer):
    seen = stats(issuer)
    return [*seen["access_tokens"], *seen["refresh_tokens"]]


def assert_nothing_leaked(home, issuer, *texts):
    """No token the provider issued, and not the client secret, anywhere:
    answers, command output, the trace-level log, the audit log, any file
    but the encrypted vault."""
    files = [p for p in home.rglob("*") if p.is_file() and p.name != "vault.enc" and p.suffix != ".wasm"]
    haystack = "\n".join([*texts, *(p.read_bytes().decode("utf-8", "replace") for p in files)])
    secrets = [*issued_tokens(issuer), CLIENT_SECRET]
    assert len(secrets) > 2
    for secret in secrets:
        assert secret not in haystack


@pytest.mark.anyio
async def test_connect_call_refresh_once_for_twenty_calls_then_revoke(home):
    with owner_home(home, access_token_ttl=4) as (issuer, _):
        out = connect_account(home)
        assert "Connected google account `work`" in out and "Granted: calendar" in out
        row = list_rows(home)[("google", "work")]
        assert (row["DEFAULT"], row["KIND"], row["VAULT"], row["SECRET"]) == ("yes", "oauth", "local", "ok"), row
        assert re.fullmatch(r"in \ds", row["EXPIRES"]), row
        assert stats(issuer)["refresh_requests"] == 0

        texts = [out]
        async with Client(serve(home, log_level="trace")) as client:
            first = await calendars(client)
            assert not first.is_error, text_of(first)
            texts.append(text_of(first))
            # The server's start may have taken longer than the token lives.
            renewals = stats(issuer)["refresh_requests"]
            assert renewals <= 1
            # Past expiry: the next call renews the token first.
            await anyio.sleep(4.5)
            second = await calendars(client)
            assert not second.is_error, text_of(second)
            assert stats(issuer)["refresh_requests"] == renewals + 1

            # Twenty calls past expiry at once: one renewal, all succeed.
            await anyio.sleep(4.5)
            results = []

            async def one():
                results.append(await calendars(client))

            async with anyio.create_task_group() as group:
                for _ in range(20):
                    group.start_soon(one)
            assert [r.is_error for r in results] == [False] * 20, [text_of(r) for r in results if r.is_error]
            texts.extend(text_of(r) for r in results)
            seen = stats(issuer)
            assert seen["refresh_requests"] == renewals + 2 and seen["refresh_failures"] == 0

        tokens = stats(issuer)
        assert introspect(issuer, tokens["refresh_tokens"][-1])
        removed = mcpist(home, "account", "remove", "google", "work").stdout
        assert "Revoked 2 token(s)" in removed
        assert not introspect(issuer, tokens["refresh_tokens"][-1])
        assert not introspect(issuer, tokens["access_tokens"][-1])
        assert "No accounts yet" in mcpist(home, "account", "list").stdout
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert_nothing_leaked(home, issuer, removed, ps, *texts)


@pytest.mark.anyio
async def test_a_refused_access_token_is_renewed_once_and_the_request_sent_again(home):
    # Tokens live ten minutes: only the service's 401 can trigger a renewal.
    with owner_home(home, access_token_ttl=600) as (issuer, api):
        connect_account(home)
        async with Client(serve(home)) as client:
            assert not (await calendars(client)).is_error
            # The service stops accepting the token it has seen (as after
            # the owner ended all sessions); the provider still knows it.
            httpx2.post(f"{api}/_test/distrust").raise_for_status()
            again = await calendars(client)
            assert not again.is_error, text_of(again)
            assert stats(issuer)["refresh_requests"] == 1
            assert httpx2.get(f"{api}/_test/requests").json()["unauthorized"] == 1
            # The renewed token is used from then on: no further 401.
            assert not (await calendars(client)).is_error
            assert httpx2.get(f"{api}/_test/requests").json()["unauthorized"] == 1
            assert stats(issuer)["refresh_requests"] == 1
        # Connecting the account again revokes the grant it replaces.
        replaced = stats(issuer)["refresh_tokens"][-1]
        assert introspect(issuer, replaced)
        assert "The tokens it replaced were revoked" in connect_account(home)
        assert not introspect(issuer, replaced)


@pytest.mark.anyio
async def test_a_reused_rotated_refresh_token_means_connect_again(home):
    with owner_home(home, access_token_ttl=3) as (issuer, _):
        connect_account(home)
        # The vault as it was before the first renewal: restoring it later
        # replays a refresh token the provider has already rotated.
        before = (home / "vault.enc").read_bytes()
        async with Client(serve(home)) as client:
            await anyio.sleep(3.5)
            assert not (await calendars(client)).is_error
            assert stats(issuer)["refresh_requests"] == 1
        (home / "vault.enc").write_bytes(before)
        async with Client(serve(home)) as client:
            await anyio.sleep(3.5)
            refused = await calendars(client)
            assert refused.is_error and RECONNECT in text_of(refused), text_of(refused)
            # Marked: no more requests to the provider until a new connect.
            again = await calendars(client)
            assert RECONNECT in text_of(again)
        assert stats(issuer)["refresh_requests"] == 2
        assert list_rows(home)[("google", "work")]["SECRET"] == "connect again"
        # Connecting again mends it.
        connect_account(home)
        async with Client(serve(home)) as client:
            assert not (await calendars(client)).is_error


def test_a_wrong_state_a_stolen_code_and_a_replayed_code_are_refused(home):
    port = free_port()
    with owner_home(home, access_token_ttl=60, extra=f"redirect_port = {port}") as (issuer, _):
        # A redirect with another state (a forged link, a stale tab).
        process, url = start_connect(home)
        browser, callback = sign_in(url)
        browser.get(with_query(callback, state="forged"))
        code, _, err = finished(process)
        assert code != 0 and "did not carry this sign-in's `state`" in err

        # A code issued to another sign-in (intercepted): this sign-in's
        # PKCE verifier does not match the challenge it was issued for.
        process, url = start_connect(home, "--timeout", "2")
        _, stolen = sign_in(url)
        assert finished(process)[0] != 0
        process, url = start_connect(home)
        state = parse_qs(urlsplit(url).query)["state"][0]
        httpx2.get(with_query(stolen, state=state))
        code, _, err = finished(process)
        assert code != 0 and "invalid_grant" in err, err

        # A code used once already.
        process, url = start_connect(home)
        browser, callback = sign_in(url)
        browser.get(callback)
        assert finished(process)[0] == 0
        process, url = start_connect(home, name="second")
        state = parse_qs(urlsplit(url).query)["state"][0]
        httpx2.get(with_query(callback, state=state))
        code, _, err = finished(process)
        assert code != 0 and "invalid_grant" in err, err
        rows = list_rows(home)
        assert ("google", "second") not in rows
        assert stats(issuer)["refresh_requests"] == 0


def test_a_declined_sign_in_says_what_happened(home):
    with owner_home(home, access_token_ttl=60):
        process, url = start_connect(home)
        browser = httpx2.Client(follow_redirects=False)
        interaction = urljoin(url, browser.get(url).headers["location"])
        callback = browse(browser, browser.get(f"{interaction}/abort"), lambda u: urlsplit(u).path == "/callback")
        browser.get(callback)
        code, _, err = finished(process)
        assert code != 0
        assert "the provider answered access_denied" in err
        assert "run `mcpist account connect google work` again" in err


@pytest.mark.anyio
async def test_the_device_flow_connects_a_public_client(home):
    with owner_home(home, access_token_ttl=60, client="calendar-public") as (issuer, _):
        process = subprocess.Popen(
            [str(BINARY), "account", "connect", "google", "work", "--device"],
            env=env_for(home),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = process.stderr.readline()
        found = re.search(r"open (\S+) and enter the code (\S+) ", line)
        assert found, line
        page, user_code = found.groups()
        browser = httpx2.Client(follow_redirects=False)
        form = browser.get(page)
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', form.text).group(1)
        confirmed = browser.post(page, data={"xsrf": xsrf, "user_code": user_code, "confirm": "yes"})
        done = browse(browser, confirmed)
        assert "Sign-in Success" in done.text, done.text
        code, out, err = finished(process)
        assert code == 0, err
        assert "Connected google account `work`" in out
        async with Client(serve(home)) as client:
            result = await calendars(client)
            assert not result.is_error, text_of(result)
        assert_nothing_leaked(home, issuer, out, err, text_of(result))


def test_connect_explains_what_is_missing(home):
    plain = mcpist(home, "account", "connect", "google", "work", "--no-browser", check=False)
    assert plain.returncode != 0 and "add `[oauth.google]`" in plain.stderr
    (home / "mcpist.toml").write_text('[oauth.google]\nclient_id = "my-app.apps.googleusercontent.com"\n')
    no_secret = mcpist(home, "account", "connect", "google", "work", "--no-browser", check=False)
    assert no_secret.returncode != 0 and "run `mcpist oauth secret google`" in no_secret.stderr
    bad_name = mcpist(home, "account", "connect", "google", "bad name", check=False)
    assert bad_name.returncode != 0 and "is not valid" in bad_name.stderr
    (home / "mcpist.toml").write_text('[oauth.acme]\nclient_id = "x"\n')
    unknown = mcpist(home, "account", "list", check=False)
    assert unknown.returncode != 0 and "knows no endpoints for `acme`" in unknown.stderr
