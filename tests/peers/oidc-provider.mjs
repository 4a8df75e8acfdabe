// A real OpenID provider (the `oidc-provider` library) for the end-to-end tests, on 127.0.0.1.
//
// Environment:
//   PORT              port to listen on; 0 (the default) picks a free one
//   CLIENT_ID         the one registered client (confidential, client_secret_basic)
//   CLIENT_SECRET
//   REDIRECT_URIS     comma-separated redirect URIs of that client
//   ACCESS_TOKEN_TTL  access token lifetime in seconds (default 5)
//
// Once listening it prints exactly one line to stdout,
//   {"issuer":"http://127.0.0.1:PORT","port":PORT}
// and nothing after it: everything else the library or this script says goes to stderr.
//
// Besides the provider's own endpoints it answers GET /__stats with how many token requests it
// received, by grant_type, so a test can tell how often a client refreshed.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import { Provider } from 'oidc-provider';

// Keep stdout for the start-up line alone.
console.log = console.error;
console.info = console.error;

const env = (name, fallback) => {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback === undefined) {
      console.error(`oidc-provider.mjs: ${name} must be set`);
      process.exit(2);
    }
    return fallback;
  }
  return value;
};

const port = Number(env('PORT', '0'));
const clientId = env('CLIENT_ID');
const clientSecret = env('CLIENT_SECRET');
const redirectUris = env('REDIRECT_URIS').split(',').map((uri) => uri.trim()).filter(Boolean);
const accessTokenTtl = Number(env('ACCESS_TOKEN_TTL', '5'));

const tokenRequests = { authorization_code: 0, refresh_token: 0 };

const server = createServer();
server.listen(port, '127.0.0.1', () => {
  const { port: bound } = server.address();
  const issuer = `http://127.0.0.1:${bound}`;
  const provider = new Provider(issuer, configuration());
  provider.use(statistics);
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, port: bound })}\n`);
});

function configuration() {
  return {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    claims: {
      openid: ['sub'],
      email: ['email'],
      profile: ['name'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    // PKCE for every authorization request; the library only knows S256.
    pkce: { required: () => true },
    // An expired access token is expired at once, not 15 s later.
    clockTolerance: 0,
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      RefreshToken: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
      Session: 24 * 60 * 60,
      Interaction: 60 * 60,
      IdToken: 60 * 60,
    },
    // Refresh tokens for every code exchange, whether or not `offline_access` was asked for or
    // consented to: the library would otherwise drop the scope unless consent is prompted, and
    // the tests want a refresh token every time. They outlive the login session too.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    // Rotate on every use. The library's default rotates only public clients (and confidential
    // ones late in the token's life); presenting a rotated token revokes the whole grant.
    rotateRefreshToken: true,
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, email: `${sub}@example.test`, name: `Test User ${sub}` }),
    }),
  };
}

// Runs before the provider's own routes: serves /__stats and counts token requests by the
// grant_type the provider parsed from the body (failed requests count too).
async function statistics(ctx, next) {
  if (ctx.method === 'GET' && ctx.path === '/__stats') {
    ctx.type = 'json';
    ctx.body = { token_requests: tokenRequests };
    return;
  }
  try {
    await next();
  } finally {
    if (ctx.method === 'POST' && ctx.path === '/token') {
      const grantType = ctx.oidc?.body?.grant_type;
      if (Object.hasOwn(tokenRequests, grantType)) {
        tokenRequests[grantType] += 1;
      }
    }
  }
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
