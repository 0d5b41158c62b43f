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
import { createPool, withContext, httpStatus } from './db.mjs';

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

  app = createPool({ database, user: APP_ROLE, max: 10 });
  const { rows: [role] } = await app.query(
    'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user');
  check(!role.rolsuper && !role.rolbypassrls,
    'the application connects as a role that row-level security applies to', role);

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
  check(await statusOf(app, expired, listDeals) === 401, 'an expired token gets 401');

  const [h, p, s] = alice.token.split('.');
  const forgedPayload = Buffer.from(JSON.stringify({
    ...JSON.parse(Buffer.from(p, 'base64url')), tenant_id: tenants.globex,
  })).toString('base64url');
  check(await statusOf(app, `${h}.${forgedPayload}.${s}`, listDeals) === 401,
    'a token whose tenant was edited gets 401');

  const otherIdp = await startIdentityProvider({ issuer: idp.issuer });
  const unknownKey = await otherIdp.issue('alice', { tenant_id: alice.tenant });
  await otherIdp.close();
  check(await statusOf(app, unknownKey, listDeals) === 401,
    'a token signed by a key the key store does not hold gets 401');

  check(await statusOf(app, 'not a token', listDeals) === 401, 'garbage in place of a token gets 401');

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
