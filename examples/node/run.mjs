// A two-tenant CRM application on crm_security, end to end, printing TAP.
//
//   PGHOST, PGPORT: the server; PGUSER: a role that may create roles and tables (the
//   set-up); CRM_EXAMPLE_DB: the database (created beforehand, with crm_security installed).
//
// The application connects as crm_example_app, a role without superuser and without
// BYPASSRLS: row-level security does not apply to either, so an application must never
// connect as one.
import { randomUUID } from 'node:crypto';
import { startIdentityProvider } from './idp.mjs';
import {
  createPool, withContext, httpStatus, httpError, refusalReason as refusalReasonOf,
  SPECIFIC_ERROR_CODES,
} from './db.mjs';

const database = process.env.CRM_EXAMPLE_DB || 'crm_example';
const APP_ROLE = 'crm_example_app';

let n = 0;
let failed = 0;
function check(cond, name, diag) {
  n += 1;
  if (cond) {
    console.log(`ok ${n} - ${name}`);
  } else {
    failed += 1;
    console.log(`not ok ${n} - ${name}`);
    if (diag !== undefined) console.log(`# ${JSON.stringify(diag)}`);
  }
}

// The status an API would answer for a request that runs fn under token.
async function statusOf(pool, token, fn) {
  try {
    await withContext(pool, token, fn);
    return 200;
  } catch (err) {
    return httpStatus(err);
  }
}

// The whole answer: status, refusal reason, headers, and the SQLSTATE it came from.
async function answerOf(pool, token, fn) {
  try {
    await withContext(pool, token, fn);
    return { status: 200, reason: null, headers: {}, code: null };
  } catch (err) {
    return { ...httpError(err), code: err.code };
  }
}

const idp = await startIdentityProvider();
const admin = createPool({ database, max: 1 });
let app;

try {
  // --- set-up, as the database owner --------------------------------------------------------
  const jwks = await (await fetch(idp.jwksUrl)).json();
  const { rows: [{ imported }] } = await admin.query(
    'SELECT crm_security.import_jwks($1::jsonb, $2) AS imported', [jwks, idp.issuer]);
  check(imported === 1, 'the identity provider\'s JWKS is imported into the key store', imported);

  await admin.query(`
    DROP TABLE IF EXISTS deals;
    DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN
        CREATE ROLE ${APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;
      END IF;
    END $$;
    CREATE TABLE deals (
      id        bigserial PRIMARY KEY,
      tenant_id uuid NOT NULL,
      owner_id  text NOT NULL DEFAULT crm_security.user_id(),
      title     text NOT NULL,
      amount    numeric(12, 2) NOT NULL
    );
    CREATE INDEX ON deals (tenant_id, id);
    GRANT SELECT, INSERT, UPDATE, DELETE ON deals TO ${APP_ROLE};
    GRANT USAGE ON SEQUENCE deals_id_seq TO ${APP_ROLE};
    GRANT USAGE ON SCHEMA crm_security TO ${APP_ROLE};
    SELECT crm_security.enable_tenant_isolation('deals');
    SELECT crm_security.enable_audit('deals');
  `);

  // Every connection of the pool asks for specific error codes in its startup options, so a
  // refused token says why (expired, bad_signature, ...) in a way code can branch on.
  app = createPool({ database, user: APP_ROLE, max: 10, options: SPECIFIC_ERROR_CODES });
  const { rows: [role] } = await app.query(
    `SELECT rolsuper, rolbypassrls, current_setting('crm_security.error_codes') AS error_codes
       FROM pg_roles WHERE rolname = current_user`);
  check(!role.rolsuper && !role.rolbypassrls,
    'the application connects as a role that row-level security applies to', role);
  check(role.error_codes === 'specific',
    'the pool\'s connections ask for specific error codes (connection options)', role);

  // --- two tenants, many concurrent requests ------------------------------------------------
  const tenants = { acme: randomUUID(), globex: randomUUID() };
  const users = [
    { sub: 'alice', tenant: tenants.acme },
    { sub: 'bob', tenant: tenants.acme },
    { sub: 'carol', tenant: tenants.globex },
  ];
  for (const u of users) {
    u.token = await idp.issue(u.sub, { tenant_id: u.tenant, role: 'client_user' });
  }

  const created = new Map(users.map((u) => [u.sub, 0]));
  const requests = [];
  let expectedReads = 0;
  for (let i = 0; i < 300; i++) {
    const u = users[i % users.length];
    if (Math.floor(i / users.length) % 3 !== 2) {
      requests.push(withContext(app, u.token, async (c) => {
        await c.query('INSERT INTO deals (tenant_id, title, amount) VALUES ($1, $2, $3)',
          [u.tenant, `deal ${i}`, 100 + i]);
        created.set(u.sub, created.get(u.sub) + 1);
        return null;
      }, { requestId: `req-${i}` }));
    } else {
      expectedReads += 1;
      requests.push(withContext(app, u.token, async (c) => {
        const { rows } = await c.query('SELECT DISTINCT tenant_id FROM deals');
        return { user: u, tenants: rows.map((r) => r.tenant_id) };
      }, { requestId: `req-${i}` }));
    }
  }
  const results = await Promise.allSettled(requests);
  const rejected = results.filter((r) => r.status === 'rejected');
  check(rejected.length === 0, '300 concurrent requests on a pool of 10 connections succeed',
    rejected.slice(0, 3).map((r) => String(r.reason)));
  const reads = results.filter((r) => r.status === 'fulfilled' && r.value);
  const leaks = reads.filter((r) => r.value.tenants.some((t) => t !== r.value.user.tenant));
  check(reads.length === expectedReads && leaks.length === 0,
    'every read sees only the rows of its own tenant', { reads: reads.length, leaks: leaks.length });

  for (const u of users) {
    const count = await withContext(app, u.token, async (c) => {
      const { rows } = await c.query('SELECT count(*)::int AS n FROM deals');
      return rows[0].n;
    });
    const expected = users.filter((v) => v.tenant === u.tenant)
      .reduce((s, v) => s + created.get(v.sub), 0);
    check(count === expected, `${u.sub} counts the deals of their tenant only`, { count, expected });
  }

  // --- refusals, as an API would answer them -------------------------------------------------
  const alice = users[0];
  const listDeals = (c) => c.query('SELECT * FROM deals');
  const expired = await idp.issue('alice', { tenant_id: alice.tenant },
    { expiresIn: Math.floor(Date.now() / 1000) - 3600 });
  const expiredAnswer = await answerOf(app, expired, listDeals);
  check(expiredAnswer.status === 401 && expiredAnswer.reason === 'expired' && expiredAnswer.code === '28P16',
    'an expired token gets 401 with the reason expired (SQLSTATE 28P16)', expiredAnswer);
  check(expiredAnswer.headers['WWW-Authenticate']
      === 'Bearer error="invalid_token", error_description="expired"',
  '... and a WWW-Authenticate header that tells the client to refresh it', expiredAnswer.headers);

  const [h, p, s] = alice.token.split('.');
  const forgedPayload = Buffer.from(JSON.stringify({
    ...JSON.parse(Buffer.from(p, 'base64url')), tenant_id: tenants.globex,
  })).toString('base64url');
  const edited = await answerOf(app, `${h}.${forgedPayload}.${s}`, listDeals);
  check(edited.status === 401 && edited.reason === 'bad_signature',
    'a token whose tenant was edited gets 401, reason bad_signature', edited);

  const otherIdp = await startIdentityProvider({ issuer: idp.issuer });
  const unknownKey = await otherIdp.issue('alice', { tenant_id: alice.tenant });
  await otherIdp.close();
  const unknown = await answerOf(app, unknownKey, listDeals);
  // The other provider's first key has the kid of ours: the store's key of that kid says no.
  check(unknown.status === 401 && unknown.reason === 'bad_signature',
    'a token signed by a key the key store does not hold (under a known kid) gets 401, reason bad_signature', unknown);

  const garbage = await answerOf(app, 'not a token', listDeals);
  check(garbage.status === 401 && garbage.reason === 'malformed',
    'garbage in place of a token gets 401, reason malformed', garbage);

  // Without the option (the admin pool), the same refusal is 28000, as API.md says.
  let standard;
  try {
    await admin.query('SELECT crm_security.jwt_verify($1, $2)', [expired, 'x'.repeat(32)]);
  } catch (err) {
    standard = { code: err.code, reason: refusalReasonOf(err) };
  }
  check(standard && standard.code === '28000' && standard.reason === null,
    'a connection without the option gets 28000 and no reason prefix', standard);

  check(await statusOf(app, alice.token, (c) => c.query(
    'INSERT INTO deals (tenant_id, title, amount) VALUES ($1, $2, $3)',
    [tenants.globex, 'planted', 1])) === 403,
  'writing a row into another tenant gets 403');

  const noContext = await withContext(app, undefined, async (c) =>
    (await c.query('SELECT count(*)::int AS n FROM deals')).rows[0].n);
  check(noContext === 0, 'a request without a token sees no rows', noContext);

  const handSet = await statusOf(app, undefined, (c) => c.query(
    "SELECT set_config('crm_security.token', $1, true)", [unknownKey]));
  // Refused before any query runs: 42501, the setting is not the application's to write.
  check(handSet === 401 || handSet === 403,
    'setting crm_security.token by hand to a token that does not verify is refused', handSet);
  const forged = await withContext(app, undefined, async (c) => {
    await c.query("SELECT set_config('request.jwt.claims', $1, true)",
      [JSON.stringify({ sub: 'mallory', tenant_id: tenants.acme })]);
    return (await c.query('SELECT count(*)::int AS n FROM deals')).rows[0].n;
  });
  check(forged === 0, 'claims forged in request.jwt.claims are not a context', forged);

  // The pool is healthy after all those errors: every connection still serves requests.
  const again = await Promise.all(Array.from({ length: 20 }, () =>
    withContext(app, alice.token, async (c) => (await c.query('SELECT 1 AS one')).rows[0].one)));
  check(again.every((v) => v === 1) && app.totalCount <= 10,
    'the pool keeps serving after refused requests', { total: app.totalCount });

  // --- key rotation: the provider adds a key, then stops publishing the old one ------------
  const syncKeys = async () => {
    const current = await (await fetch(idp.jwksUrl)).json();
    const { rows: [r] } = await admin.query(
      'SELECT * FROM crm_security.import_jwks($1::jsonb, $2, disable_missing => true)',
      [current, idp.issuer]);
    return r;
  };
  const oldKid = await idp.rotate();
  const fresh = await idp.issue('alice', { tenant_id: alice.tenant });
  const both = await syncKeys();
  check(both.imported === 2 && both.disabled === 0, 'the JWKS with the new key is imported', both);
  check(await statusOf(app, fresh, listDeals) === 200, 'a token of the new key is accepted');
  check(await statusOf(app, alice.token, listDeals) === 200, '... and one of the old key still is');
  idp.retire(oldKid.previous);
  const rotated = await syncKeys();
  check(rotated.imported === 1 && rotated.disabled === 1
      && JSON.stringify(rotated.disabled_kids) === JSON.stringify([oldKid.previous]),
  'the key the provider no longer publishes is disabled by the next import', rotated);
  const retired = await answerOf(app, alice.token, listDeals);
  check(retired.status === 401 && retired.reason === 'disabled_key',
    'a token of the retired key gets 401, reason disabled_key, on every pooled connection', retired);
  check(await statusOf(app, fresh, listDeals) === 200, 'a token of the new key is still accepted');
  const { rows: [event] } = await admin.query(
    `SELECT details FROM crm_security.security_events
      WHERE event_type = 'jwt.key_disabled' ORDER BY id DESC LIMIT 1`);
  check(event && event.details.kid === oldKid.previous && event.details.via === 'import_jwks',
    'the disabled key is a security event', event);

  // --- the audit log: who did what, provably ------------------------------------------------
  const { rows: perActor } = await admin.query(`
    SELECT actor_id, tenant_id, count(*)::int AS n,
           count(*) FILTER (WHERE request_id LIKE 'req-%')::int AS with_request
      FROM crm_security.audit_log
     WHERE table_name = 'public.deals' AND operation = 'INSERT'
     GROUP BY 1, 2 ORDER BY 1`);
  const attributed = users.every((u) => {
    const row = perActor.find((r) => r.actor_id === u.sub);
    return row && row.n === created.get(u.sub) && row.tenant_id === u.tenant
      && row.with_request === row.n;
  });
  check(attributed && perActor.length === users.length,
    'each insert is audited with the verified user, tenant and request id', perActor);

  await admin.query('SELECT crm_security.seal_audit_log()');
  const { rows: [{ d }] } = await admin.query('SELECT crm_security.audit_digest() AS d');
  const { rows: [v] } = await admin.query(
    'SELECT ok, entries_checked FROM crm_security.verify_audit_log($1)', [d]);
  check(v.ok && Number(v.entries_checked) >= 200,
    'the audit log verifies against the digest', v);
} catch (err) {
  check(false, 'the example ran to its end', String(err && err.stack || err));
} finally {
  if (app) await app.end();
  await admin.end();
  await idp.close();
  console.log(`1..${n}`);
  process.exitCode = failed ? 1 : 0;
}
