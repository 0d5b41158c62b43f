-- Claim context: a verified JWT becomes the context of one transaction, for RLS policies.
\echo
\echo '################################################################'
\echo '# Chapter 2. Keys and the claim context'
\echo '#   Northwind trusts its identity provider''s key once (the key store). Each request then'
\echo '#   runs in one transaction that starts with set_claim_context(token): the verified claims'
\echo '#   become the context that policies read, until COMMIT. A faked setting changes nothing.'
\echo '################################################################'
\set QUIET on
\pset footer off

\echo
\echo '== 1. Trust a key (administrators only; here an HS256 secret) =='
SELECT crm_security.add_jwt_key('demo-2026', 'HS256', 'demo-secret-0123456789-0123456789-abcdef');
SELECT kid, algorithm, enabled FROM crm_security.jwt_keys;

\echo
\echo '== 2. The identity provider issues a token (signed here for the demo) =='
SELECT crm_security.jwt_sign(
         jsonb_build_object('sub', 'alice', 'tenant_id', 'acme', 'role', 'manager',
                            'app_metadata', jsonb_build_object('plan', 'pro'),
                            'exp', extract(epoch FROM now())::bigint + 3600),
         'demo-secret-0123456789-0123456789-abcdef', 'HS256', '{"kid": "demo-2026"}') AS token \gset
SELECT left(:'token', 40) || '...' AS token;

\echo
\echo '== 3. A table with a tenant policy, queried by an application role =='
CREATE TABLE demo_deals (id int PRIMARY KEY, tenant_id text NOT NULL, title text);
INSERT INTO demo_deals VALUES (1, 'acme', 'Acme renewal'), (2, 'acme', 'Acme upsell'), (3, 'globex', 'Globex pilot');
ALTER TABLE demo_deals ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON demo_deals USING (tenant_id = crm_security.tenant_id());
CREATE ROLE demo_app;
GRANT SELECT ON demo_deals TO demo_app;

\echo
\echo '== 4. One request: set the context, read through the accessors and the policy =='
BEGIN;
SET LOCAL ROLE demo_app;
SELECT crm_security.set_claim_context(:'token');
SELECT crm_security.user_id(), crm_security.tenant_id(), crm_security.app_role(),
       crm_security.actor_type(), crm_security.claim('app_metadata.plan') AS plan;
SELECT * FROM demo_deals;

\echo
\echo '== 5. Spoofing: set_config on request.jwt.claims does not change tenant_id() =='
SELECT set_config('request.jwt.claims', '{"sub": "alice", "tenant_id": "globex"}', true) IS NOT NULL AS faked;
SELECT crm_security.tenant_id();
SELECT * FROM demo_deals;
COMMIT;

\echo
\echo '== 6. A forged token (signed with a guessed secret) is refused =='
SELECT demo_refused($q$
  SELECT crm_security.set_claim_context(crm_security.jwt_sign(
           jsonb_build_object('sub', 'mallory', 'tenant_id', 'globex', 'exp', extract(epoch FROM now())::bigint + 3600),
           'a-guessed-secret-0123456789-0123456789', 'HS256', '{"kid": "demo-2026"}'))$q$) AS forged_token;

\echo
\echo '== 7. The context ended with the transaction: no context, no rows =='
SET ROLE demo_app;
SELECT crm_security.tenant_id() AS tenant_id_after_commit;
SELECT count(*) AS visible_deals FROM demo_deals;
RESET ROLE;

\echo
\echo '== 8. Disable the key: its tokens stop working in every session =='
SELECT crm_security.disable_jwt_key('demo-2026');
SELECT demo_refused(format('SELECT crm_security.set_claim_context(%L)', :'token')) AS token_of_disabled_key;

DROP TABLE demo_deals;
DROP ROLE demo_app;
DELETE FROM crm_security.jwt_keys WHERE kid = 'demo-2026';
