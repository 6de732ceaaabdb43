// A real OpenID provider for Rampart's OIDC tests: panva's `oidc-provider` (OpenID Certified),
// installed by scripts/setup-test-deps.sh. Started by the test:
//
//   node provider.mjs KEY_ID [PORT]
//
// Two clients: `rampart` (the server under test: its redirect URI is
// https://127.0.0.1:ANY-PORT/api/v1/oidc/callback (or localhost), as the server's port is chosen when it
// starts) and `other` (a second relying party, whose tokens Rampart must refuse). Accounts and their groups are fixed below.
// Logins need no form: the interaction logs in the account last named at /test/login-as and
// grants what the client asked for, so a test drives the authorization-code flow with plain
// HTTP redirects. The signing key is a fresh P-256 key named KEY_ID: restarting with another
// id is a key rotation. It listens on PORT, or on a port of its own choosing (0), and prints
// "ready PORT" when it does.
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

// Where setup-test-deps.sh installed it (ES modules do not search NODE_PATH).
const { default: Provider } = await import(
  pathToFileURL(process.env.OIDC_PROVIDER_MODULE ?? '/opt/rampart-test/oidc/node_modules/oidc-provider/lib/index.js').href
);

const [keyId, wantedPort] = process.argv.slice(2);
const server = createServer();
await new Promise((resolve) => server.listen(Number(wantedPort ?? 0), '127.0.0.1', resolve));
const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = 'https://127.0.0.1/api/v1/oidc/callback';

const accounts = {
  alice: { groups: ['rampart-admins', 'everyone'] },
  bob: { groups: ['web-ops', 'everyone'] },
  carol: { groups: ['contractors'] },
};
let loginAs = 'alice';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: keyId, alg: 'ES256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'rampart',
      client_secret: 'rampart-test-secret',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'ES256',
    },
    {
      client_id: 'other',
      client_secret: 'other-test-secret',
      redirect_uris: ['https://127.0.0.1/other'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  // Claims in the ID token itself (Rampart reads no userinfo).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    if (!accounts[id]) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          name: id[0].toUpperCase() + id.slice(1),
          email: `${id}@example.test`,
          groups: accounts[id].groups,
        };
      },
    };
  },
});

provider.use(async (ctx, next) => {
  if (ctx.path === '/test/login-as') {
    loginAs = ctx.query.user;
    ctx.body = 'ok';
    return;
  }
  if (ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const grant = new provider.Grant({ accountId: loginAs, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    await provider.interactionFinished(
      ctx.req,
      ctx.res,
      { login: { accountId: loginAs }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  await next();
});

// Rampart's port is only known once it runs: any port of 127.0.0.1, the path exact.
const allowed = provider.Client.prototype.redirectUriAllowed;
provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
  if (this.clientId === 'rampart') {
    const u = new URL(value);
    return u.protocol === 'https:' && ['127.0.0.1', 'localhost'].includes(u.hostname) && u.pathname === '/api/v1/oidc/callback' && !u.search && !u.hash;
  }
  return allowed.call(this, value);
};

server.on('request', provider.callback());
console.log(`ready ${port}`);
