// Independent JOSE implementation (the `jose` package) for interoperability tests.
//
//   node make_tokens.mjs generate            keys and signed JWTs for the 13 algorithms, as JSON
//   node make_tokens.mjs verify FILE KEYS    verify the tokens of FILE (made by crm_security)
//                                            with the public keys of KEYS (from `generate`);
//                                            prints one "ok - ..." / "not ok - ..." per check
//
// Keys are fresh on every run, so no key is ever committed.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import {
  SignJWT, jwtVerify, generateKeyPair, exportJWK, exportSPKI, exportPKCS8,
  importSPKI, importJWK, createLocalJWKSet, decodeProtectedHeader, base64url,
} from 'jose';

export const ALGORITHMS = [
  'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512', 'EdDSA',
];
export const AUDIENCE = 'crm-api';
export const ISSUER = 'https://issuer.example.com';

const isHmac = (alg) => alg.startsWith('HS');

async function generate() {
  const now = Math.floor(Date.now() / 1000);
  const items = [];
  const jwks = { keys: [] };
  for (const alg of ALGORITHMS) {
    const kid = `jose-${alg.toLowerCase()}`;
    const sub = `user-${alg.toLowerCase()}`;
    const item = { alg, kid, sub };
    let signingKey;
    if (isHmac(alg)) {
      // A text secret (crm_security takes its UTF-8 bytes) as long as the hash.
      const bytes = { HS256: 32, HS384: 48, HS512: 64 }[alg];
      item.secret = base64url.encode(randomBytes(bytes)).slice(0, bytes);
      signingKey = new TextEncoder().encode(item.secret);
      item.pubJwk = { kty: 'oct', k: base64url.encode(signingKey), kid, alg, use: 'sig' };
      item.privJwk = item.pubJwk;
    } else {
      const opts = { extractable: true };
      if (alg === 'EdDSA') opts.crv = 'Ed25519';
      if (alg.startsWith('RS') || alg.startsWith('PS')) opts.modulusLength = 2048;
      const { publicKey, privateKey } = await generateKeyPair(alg, opts);
      signingKey = privateKey;
      item.pubPem = await exportSPKI(publicKey);
      item.privPem = await exportPKCS8(privateKey);
      item.pubJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
      item.privJwk = { ...(await exportJWK(privateKey)), kid, alg };
    }
    jwks.keys.push(item.pubJwk);
    item.token = await new SignJWT({ sub, scope: 'read write', n: 42 })
      .setProtectedHeader({ alg, kid, typ: 'JWT' })
      .setIssuedAt(now)
      .setNotBefore(now - 60)
      .setExpirationTime(now + 3600)
      .setAudience(AUDIENCE)
      .setIssuer(ISSUER)
      .sign(signingKey);
    items.push(item);
  }
  process.stdout.write(JSON.stringify({ items, jwks }));
}

async function verify(file, keysFile) {
  const tokens = JSON.parse(readFileSync(file, 'utf8'));
  const keys = JSON.parse(readFileSync(keysFile, 'utf8'));
  const byAlg = Object.fromEntries(keys.items.map((i) => [i.alg, i]));
  const jwks = createLocalJWKSet({ keys: keys.jwks.keys.filter((k) => k.kty !== 'oct') });
  const report = (ok, what) => console.log(`${ok ? 'ok' : 'not ok'} - ${what}`);
  for (const t of tokens) {
    const item = byAlg[t.alg];
    const opts = { algorithms: [t.alg], audience: AUDIENCE, issuer: ISSUER };
    const header = decodeProtectedHeader(t.token);
    report(header.alg === t.alg, `crm_security ${t.alg} token (${t.how}) has header alg ${t.alg}`);
    const attempts = [['its public key', isHmac(t.alg)
      ? new TextEncoder().encode(item.secret)
      : await importSPKI(item.pubPem, t.alg)]];
    attempts.push(['its JWK', await importJWK(item.pubJwk, t.alg)]);
    // jose's local JWK sets hold asymmetric keys only.
    if (header.kid && !isHmac(t.alg)) attempts.push(['the JWKS', jwks]);
    for (const [name, key] of attempts) {
      try {
        const { payload } = await jwtVerify(t.token, key, opts);
        report(payload.sub === t.sub, `jose verifies the crm_security ${t.alg} token (${t.how}) with ${name}`);
      } catch (e) {
        report(false, `jose verifies the crm_security ${t.alg} token (${t.how}) with ${name}: ${e.code || e.message}`);
      }
    }
    // A changed payload must fail in jose too (the check above can fail).
    const [h, p, s] = t.token.split('.');
    const forged = [h, base64url.encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(base64url.decode(p))), sub: 'mallory' })), s].join('.');
    try {
      await jwtVerify(forged, attempts[0][1], opts);
      report(false, `jose refuses the crm_security ${t.alg} token (${t.how}) with a changed payload`);
    } catch (e) {
      report(e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
             `jose refuses the crm_security ${t.alg} token (${t.how}) with a changed payload`);
    }
  }
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'generate') {
  await generate();
} else if (cmd === 'verify') {
  await verify(args[0], args[1]);
} else {
  console.error('usage: make_tokens.mjs generate | verify FILE KEYS');
  process.exit(2);
}
