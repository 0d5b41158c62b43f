// A minimal identity provider: an ES256 signing key, its public half published as a JWKS
// over HTTP (as Supabase Auth, Auth0 or Keycloak publish theirs), and tokens for users.
import http from 'node:http';
import { generateKeyPair, exportJWK, SignJWT } from 'jose';

export async function startIdentityProvider({ issuer = 'https://idp.example.test/' } = {}) {
  const keys = [];

  async function addKey() {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = `es256-${keys.length + 1}`;
    keys.push({ kid, privateKey, jwk: { ...jwk, kid, alg: 'ES256', use: 'sig' } });
    return kid;
  }
  await addKey();

  const server = http.createServer((req, res) => {
    if (req.url === '/.well-known/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `http://127.0.0.1:${server.address().port}/.well-known/jwks.json`;

  // A token for a user; `claims` may carry tenant_id, role, permissions.  `expiresIn` takes
  // jose's forms ('15m') or a number of seconds since the epoch.
  async function issue(sub, claims = {}, { expiresIn = '15m', audience = 'crm-api' } = {}) {
    const key = keys[keys.length - 1];
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
      .setSubject(sub)
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(expiresIn)
      .sign(key.privateKey);
  }

  return {
    issuer,
    jwksUrl,
    issue,
    // A new signing key; returns its kid and the kid of the key it succeeds.
    rotate: async () => {
      const previous = keys[keys.length - 1].kid;
      return { kid: await addKey(), previous };
    },
    // Stop publishing a key (after its tokens have expired, in a real provider).
    retire: (kid) => {
      const i = keys.findIndex((k) => k.kid === kid);
      if (i >= 0 && keys.length > 1) keys.splice(i, 1);
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
