"""Access tokens from the owner's identity provider: a real OpenID provider
(the npm package oidc-provider, on Node 22) runs on 127.0.0.1 and issues JWT
access tokens by the client credentials grant; the official Python MCP
client presents them to `mcpist serve --http`.

The provider's client_id names the client (as `jwt:CLIENT_ID`), so masks and
the audit log treat it like a client with an API key, in a namespace of its
own."""

import json
import subprocess
import time

import httpx2
import pytest

from support import (
    INITIALIZE,
    MCP_HEADERS,
    NODE,
    add_client,
    connect,
    free_port,
    http_server,
    node_issuer,
    node_script,
    text_of,
)


def provider_script():
    return node_script("oidc_provider.mjs")


def node(*args):
    result = subprocess.run(
        [str(NODE), str(provider_script()), *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def new_key(kid):
    return json.loads(node("genkey", kid))


def openid_provider(tmp_path, port, keys, resources):
    """Run oidc-provider on `port`, signing with keys[0]; yields its issuer."""
    keys_file = tmp_path / f"provider-keys-{time.monotonic_ns()}.json"
    keys_file.write_text(json.dumps({"keys": keys}))
    return node_issuer("oidc_provider.mjs", "serve", port, keys_file, *resources)


def access_token(issuer, resource, client="desk-agent"):
    response = httpx2.post(
        f"{issuer}/token",
        data={"grant_type": "client_credentials", "resource": resource, "scope": "mcp"},
        auth=(client, f"{client}-secret"),
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def configure(home, issuer, extra=""):
    (home / "mcpist.toml").write_text(
        f"""
[serve.jwt]
issuer = "{issuer}"
jwks_min_refresh_secs = 1
{extra}
"""
    )


def post_initialize(base, token):
    return httpx2.post(f"{base}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"})


def audit_lines(home):
    return [json.loads(line) for line in (home / "audit.log").read_text().splitlines()]


@pytest.mark.anyio
async def test_provider_tokens_list_and_call_under_their_clients_masks(home, tmp_path):
    port, op_port = free_port(), free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    with openid_provider(tmp_path, op_port, [new_key("k1")], [resource]) as issuer:
        configure(home, issuer, '[masks."jwt:phone-agent"]\nmodules = ["text"]\n')
        api_key = add_client(home, "laptop")
        with http_server(home, port) as base:
            metadata = httpx2.get(f"{base}/.well-known/oauth-protected-resource/mcp").json()
            assert metadata["authorization_servers"] == [issuer]
            assert metadata["resource"] == resource
            missing = httpx2.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            assert missing.status_code == 401
            assert "resource_metadata=" in missing.headers["www-authenticate"]
            assert issuer in missing.json()["error_description"]

            desk = access_token(issuer, resource, "desk-agent")
            phone = access_token(issuer, resource, "phone-agent")
            async with connect(base, desk) as desk_client, connect(base, phone) as phone_client:
                everything = (await desk_client.call_tool("get_module_schema", {})).structured_content
                assert sorted(m["name"] for m in everything["modules"]) == ["github", "google_calendar", "notion", "text", "time"]
                masked = (await phone_client.call_tool("get_module_schema", {})).structured_content
                assert [m["name"] for m in masked["modules"]] == ["text"]
                for client in (desk_client, phone_client):
                    result = await client.call_tool(
                        "call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "a b c"}}
                    )
                    assert not result.is_error, text_of(result)
                    assert result.structured_content["words"] == 3
                hidden = await phone_client.call_tool(
                    "call_module_tool", {"module": "time", "tool": "now", "arguments": {}}
                )
                assert hidden.is_error
            # API keys keep working beside the provider's tokens.
            assert post_initialize(base, api_key).status_code == 200
    lines = audit_lines(home)
    assert [(line["client"], line["outcome"]) for line in lines][:2] == [("jwt:desk-agent", "ok"), ("jwt:phone-agent", "ok")]
    assert lines[2]["client"] == "jwt:phone-agent" and lines[2]["outcome"] == "refused"
    assert not any(desk in line for line in (home / "audit.log").read_text().splitlines())


def test_tokens_for_another_audience_from_another_issuer_expired_or_forged_are_refused(home, tmp_path):
    port, op_port = free_port(), free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    other_resource = "https://calendar.example/api"
    real_key = new_key("k1")
    with openid_provider(tmp_path, op_port, [real_key], [resource, other_resource]) as issuer:
        configure(home, issuer)
        with http_server(home, port) as base:
            genuine = access_token(issuer, resource)
            assert post_initialize(base, genuine).status_code == 200
            header, claims = (json.loads(_b64(part)) for part in genuine.split(".")[:2])

            def forged(key, **changes):
                return node("sign", json.dumps(key), json.dumps(header), json.dumps({**claims, **changes}))

            attacker = {**new_key("k1"), "kid": "k1"}
            public = {k: real_key[k] for k in ("kty", "n", "e", "kid", "alg", "use")}
            cases = {
                "for another resource": (access_token(issuer, other_resource), "not meant for this server"),
                "signed by another key under the real kid": (forged(attacker), "signature does not verify"),
                "HS256 with the public key as secret": (
                    node("sign", json.dumps({"secret": json.dumps(public)}), json.dumps({**header, "alg": "HS256"}), json.dumps(claims)),
                    "HS256 are not accepted",
                ),
                "expired, by the real key": (forged(real_key, exp=int(time.time()) - 120), "expired"),
                "from another issuer, by the real key": (forged(real_key, iss="https://evil.example"), "issued by someone else"),
                "unsigned": (_unsigned(header, claims), "not accepted"),
                "typed as a plain JWT, by the real key": (
                    node("sign", json.dumps(real_key), json.dumps({**header, "typ": "JWT"}), json.dumps(claims)),
                    "not an access token",
                ),
                "a century long, by the real key": (
                    forged(real_key, exp=int(time.time()) + 100 * 365 * 86400),
                    "longer than",
                ),
                "an unknown API key": ("mcpist_not-a-key", "API key is not valid"),
            }
            for case, (token, reason) in cases.items():
                refused = post_initialize(base, token)
                assert refused.status_code == 401, case
                assert 'error="invalid_token"' in refused.headers["www-authenticate"], case
                assert reason in refused.json()["error_description"], (case, refused.json())
            log = (home / "serve.log").read_text()
            assert genuine not in log and genuine.split(".")[2] not in log, "tokens never reach the log"


@pytest.mark.anyio
async def test_a_key_rotation_is_picked_up_and_a_down_provider_keeps_known_keys(home, tmp_path):
    port, op_port = free_port(), free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    k1, k2 = new_key("k1"), new_key("k2")
    issuer = f"http://127.0.0.1:{op_port}"
    configure(home, issuer)
    with http_server(home, port) as base:
        # The provider is not up yet: the server cannot check tokens, and
        # says so, instead of calling them invalid.
        down = post_initialize(base, "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.e30.c2ln")
        assert down.status_code == 503, down.text
        assert "cannot get the identity provider's signing keys" in down.json()["error"]

        with openid_provider(tmp_path, op_port, [k1], [resource]):
            old = access_token(issuer, resource)
            time.sleep(1.1)  # jwks_min_refresh_secs after the failed attempt
            assert post_initialize(base, old).status_code == 200
        # The provider rotates: k2 signs, k1 is still published.
        with openid_provider(tmp_path, op_port, [k2, k1], [resource]):
            new = access_token(issuer, resource)
            assert json.loads(_b64(new.split(".")[0]))["kid"] == "k2"
            time.sleep(1.1)
            assert post_initialize(base, new).status_code == 200
            assert post_initialize(base, old).status_code == 200
        # The provider is down: the keys already fetched still verify.
        async with connect(base, new) as client:
            result = await client.call_tool(
                "call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "still here"}}
            )
            assert not result.is_error, text_of(result)


def _b64(part):
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _unsigned(header, claims):
    import base64

    enc = lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({**header, 'alg': 'none'})}.{enc(claims)}."


class MemoryTokenStorage:
    """Where the SDK keeps its registration and tokens, for one test."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


def sign_in(authorization_url, redirect_uri):
    """What a person does in the browser: the provider's development login
    page (any name), then its consent page; returns the redirect's query."""
    from urllib.parse import parse_qs, urljoin, urlsplit

    with httpx2.Client() as browser:  # keeps the provider's cookies
        url, prompts = authorization_url, iter(["login", "consent"])
        for _ in range(10):
            response = browser.get(url)
            assert response.status_code in (302, 303), (url, response.status_code, response.text[:300])
            url = urljoin(url, response.headers["location"])
            if url.startswith(redirect_uri):
                return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
            if "/interaction/" in url:
                prompt = next(prompts)
                answer = browser.post(url, data={"prompt": prompt, "login": "owner", "password": "any"})
                assert answer.status_code in (302, 303), (prompt, answer.text[:300])
                # Back to the provider's authorization endpoint.
                url = urljoin(url, answer.headers["location"])
        raise AssertionError("the sign-in did not reach the redirect URI")


@pytest.mark.anyio
async def test_an_mcp_client_finds_the_provider_and_signs_in_with_pkce(home, tmp_path):
    """The official client's OAuth support, end to end: a 401 points at the
    metadata, which names the provider; the client registers, sends the
    user through login and consent with PKCE, and calls with the token."""
    import anyio
    from mcp import Client
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

    port, op_port = free_port(), free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    redirect_uri = "http://127.0.0.1:9/callback"  # never reached: sign_in stops at the redirect
    with openid_provider(tmp_path, op_port, [new_key("k1")], [resource]) as issuer:
        configure(home, issuer)
        with http_server(home, port) as base:
            authorization = {}

            async def redirect_handler(url):
                authorization["url"] = url

            async def callback_handler():
                query = await anyio.to_thread.run_sync(sign_in, authorization["url"], redirect_uri)
                return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

            storage = MemoryTokenStorage()
            oauth = OAuthClientProvider(
                server_url=f"{base}/mcp",
                client_metadata=OAuthClientMetadata(
                    client_name="mcpist e2e", redirect_uris=[redirect_uri], scope="mcp",
                    grant_types=["authorization_code"], token_endpoint_auth_method="none",
                ),
                storage=storage,
                redirect_handler=redirect_handler,
                callback_handler=callback_handler,
            )
            http = create_mcp_http_client(auth=oauth)
            async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
                result = await client.call_tool(
                    "call_module_tool", {"module": "text", "tool": "count", "arguments": {"text": "signed in"}}
                )
                assert not result.is_error, text_of(result)
            query = dict(part.split("=", 1) for part in authorization["url"].split("?", 1)[1].split("&"))
            assert query["code_challenge_method"] == "S256" and query["code_challenge"]
            client_id = storage.client_info.client_id
    (line,) = audit_lines(home)
    assert (line["client"], line["tool"], line["outcome"]) == (f"jwt:{client_id}", "count", "ok")
