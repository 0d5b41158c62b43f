-- A small multi-tenant CRM: roles and permissions, tenant isolation, a reviewer, a denied
-- write and a spoofing attempt.
\echo
\echo '################################################################'
\echo '# Chapter 4. The CRM tables: isolation and permissions'
\echo '#   One call per table forces row-level security: every query of the application role sees'
\echo '#   its tenant only. Roles per tenant grant permissions; authorize() refuses with 42501.'
\echo '################################################################'
\set QUIET on
\pset footer off

\echo
\echo '== 1. Two tenants share the tables; the application connects as crm_app =='
SELECT crm_security.add_jwt_key('crm-demo', 'HS256', 'crm-demo-secret-0123456789-0123456789-xyz');
CREATE SCHEMA crm;
CREATE TABLE crm.contacts (
    id serial PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    email text
);
CREATE TABLE crm.deals (
    id serial PRIMARY KEY,
    tenant_id uuid NOT NULL,
    title text NOT NULL,
    amount numeric NOT NULL
);
CREATE INDEX ON crm.contacts (tenant_id);
CREATE INDEX ON crm.deals (tenant_id);
\set acme   '''aaaaaaaa-0000-4000-8000-000000000001'''
\set globex '''bbbbbbbb-0000-4000-8000-000000000002'''
INSERT INTO crm.contacts (tenant_id, name, email) VALUES
    (:acme, 'Ada Lovelace', 'ada@acme.test'), (:acme, 'Alan Turing', 'alan@acme.test'),
    (:globex, 'Grace Hopper', 'grace@globex.test');
INSERT INTO crm.deals (tenant_id, title, amount) VALUES
    (:acme, 'Acme renewal', 12000), (:acme, 'Acme upsell', 3000), (:globex, 'Globex pilot', 8000);
CREATE ROLE crm_app;
GRANT USAGE ON SCHEMA crm TO crm_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA crm TO crm_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA crm TO crm_app;
-- Back-office staff connect as crm_staff: the database role crm_security_reviewer lets a
-- reviewer's token read every tenant there, and nowhere else.
CREATE ROLE crm_staff;
GRANT crm_app TO crm_staff;
GRANT crm_security_reviewer TO crm_staff;

\echo
\echo '== 2. Tenant isolation: forced RLS and policies on both tables =='
SELECT crm_security.enable_tenant_isolation('crm.contacts');
SELECT crm_security.enable_tenant_isolation('crm.deals');
SELECT polname, polcmd, polpermissive, pg_get_expr(polqual, polrelid) AS using_expr
  FROM pg_policy WHERE polrelid = 'crm.deals'::regclass ORDER BY polname;

\echo
\echo '== 3. Roles: system roles, a custom role of Acme, grants per tenant =='
SELECT name, cardinality(permissions) AS permissions, inherits, description FROM crm_security.roles WHERE system ORDER BY name;
SELECT crm_security.create_role('sales_rep', '{crm:deals:manage}', 'aaaaaaaa-0000-4000-8000-000000000001', '{client_user}');
SELECT crm_security.grant_role('alice', 'aaaaaaaa-0000-4000-8000-000000000001', 'sales_rep');
SELECT crm_security.grant_role('bob', 'bbbbbbbb-0000-4000-8000-000000000002', 'client_user',
                               now() + interval '90 days');

-- The identity provider issues the tokens; here they are signed in place and kept in a
-- table, so that the statements below stay short.
CREATE TABLE crm.demo_tokens (who text PRIMARY KEY, token text NOT NULL);
INSERT INTO crm.demo_tokens
SELECT who, crm_security.jwt_sign(claims || jsonb_build_object('exp', extract(epoch FROM now())::bigint + 3600),
                                  'crm-demo-secret-0123456789-0123456789-xyz', 'HS256')
  FROM (VALUES ('alice', '{"sub": "alice", "tenant_id": "aaaaaaaa-0000-4000-8000-000000000001"}'::jsonb),
               ('bob',   '{"sub": "bob", "tenant_id": "bbbbbbbb-0000-4000-8000-000000000002"}'),
               ('rita',  '{"sub": "rita", "role": "reviewer", "permissions": ["crm:*:read"]}')) AS t(who, claims);
GRANT SELECT ON crm.demo_tokens TO crm_app;
SELECT who, left(token, 24) || '...' AS token FROM crm.demo_tokens;

\echo
\echo '== 4. Alice (Acme, sales_rep): her permissions, her tenant''s rows =='
BEGIN;
SET LOCAL ROLE crm_app;
SELECT crm_security.set_claim_context(token) IS NOT NULL AS verified FROM crm.demo_tokens WHERE who = 'alice';
SELECT crm_security.permissions();
SELECT crm_security.can('crm:deals:delete') AS may_delete_deals, crm_security.can('crm:users:manage') AS may_manage_users;
SELECT * FROM crm.contacts;
SELECT crm_security.authorize('crm:deals:delete');
DELETE FROM crm.deals WHERE title = 'Acme upsell' RETURNING *;
COMMIT;

\echo
\echo '== 5. Bob (Globex, client_user) sees other rows and may not delete =='
BEGIN;
SET LOCAL ROLE crm_app;
SELECT crm_security.set_claim_context(token) IS NOT NULL AS verified FROM crm.demo_tokens WHERE who = 'bob';
SELECT * FROM crm.contacts;
SELECT * FROM crm.deals;
-- his own tenant, but client_user has no crm:deals:delete: the application checks first
SELECT demo_refused($q$SELECT crm_security.authorize('crm:deals:delete')$q$) AS authorize_delete;
ROLLBACK;

\echo
\echo '== 6. Bob tries to reach Acme: invisible, and nothing can be written there =='
BEGIN;
SET LOCAL ROLE crm_app;
SELECT crm_security.set_claim_context(token) IS NOT NULL AS verified FROM crm.demo_tokens WHERE who = 'bob';
UPDATE crm.deals SET amount = 1 WHERE title LIKE 'Acme%' RETURNING *;
SELECT demo_refused($q$
  INSERT INTO crm.contacts (tenant_id, name) VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'planted by bob')$q$) AS plant_in_acme;
ROLLBACK;

\echo
\echo '== 7. Spoofing: Bob writes the claims PostgREST would set; nothing changes =='
BEGIN;
SET LOCAL ROLE crm_app;
SELECT crm_security.set_claim_context(token) IS NOT NULL AS verified FROM crm.demo_tokens WHERE who = 'bob';
SELECT set_config('request.jwt.claims',
                  '{"sub": "bob", "tenant_id": "aaaaaaaa-0000-4000-8000-000000000001", "role": "superadmin"}', true) IS NOT NULL AS faked;
SELECT set_config('request.jwt.claim.tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true) IS NOT NULL AS faked;
SELECT crm_security.tenant_id(), crm_security.app_role();
SELECT * FROM crm.contacts;
ROLLBACK;

\echo
\echo '== 8. Rita (reviewer): her token alone opens nothing; on the staff connection she reads every tenant and writes nothing =='
\echo '   Cross-tenant access needs both the database role crm_security_reviewer and the token role.'
BEGIN;
SET LOCAL ROLE crm_app;
SELECT crm_security.set_claim_context(token) IS NOT NULL AS verified FROM crm.demo_tokens WHERE who = 'rita';
SELECT count(*) AS deals_seen_as_crm_app FROM crm.deals;
ROLLBACK;
BEGIN;
SET LOCAL ROLE crm_staff;
SELECT crm_security.set_claim_context(token) IS NOT NULL AS verified FROM crm.demo_tokens WHERE who = 'rita';
SELECT crm_security.permissions(), crm_security.can('crm:deals:read') AS may_read_deals;
SELECT tenant_id, title, amount FROM crm.deals ORDER BY id;
UPDATE crm.deals SET amount = 0 RETURNING *;
SELECT demo_refused($q$
  INSERT INTO crm.deals (tenant_id, title, amount) VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'by the reviewer', 1)$q$) AS reviewer_insert;
ROLLBACK;

\echo
\echo '== 9. The policy is an index condition on the tenant column =='
INSERT INTO crm.contacts (tenant_id, name)
SELECT ('aaaaaaaa-0000-4000-8000-' || lpad((i % 500)::text, 12, '0'))::uuid, 'contact ' || i
  FROM generate_series(1, 50000) i;
ANALYZE crm.contacts;
BEGIN;
SET LOCAL ROLE crm_app;
SELECT crm_security.set_claim_context(token) IS NOT NULL AS verified FROM crm.demo_tokens WHERE who = 'alice';
EXPLAIN (COSTS OFF) SELECT * FROM crm.contacts;
ROLLBACK;

\echo
\echo '== 10. isolation_report: what is still unprotected =='
CREATE TABLE crm.notes (id serial PRIMARY KEY, tenant_id uuid, body text);
CREATE VIEW crm.deal_overview AS SELECT tenant_id, count(*) AS deals, sum(amount) AS total FROM crm.deals GROUP BY tenant_id;
SELECT * FROM crm_security.isolation_report();
