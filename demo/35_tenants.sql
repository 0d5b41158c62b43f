-- Tenants from the database: a consultant who belongs to two client tenants switches
-- between them, with a token that names no tenant (as Supabase Auth issues them).
\echo
\echo '################################################################'
\echo '# Chapter 3. Tenants and members'
\echo '#   Northwind''s customers are tenants (Acme, Globex). A consultant works for both: her token'
\echo '#   names no tenant, the database''s membership table decides, and she picks one per request.'
\echo '################################################################'
\set QUIET on
\pset footer off

\echo
\echo '== 1. Two client tenants of different tiers, and a consultant who belongs to both =='
SELECT crm_security.add_jwt_key('demo-tenants', 'HS256', 'demo-tenants-secret-0123456789-0123456789');
SELECT crm_security.add_tenant('acme', 'Acme Corp', 'pro');
SELECT crm_security.add_tenant('globex', 'Globex', 'free', NULL, '{"api_access": true}');
SELECT crm_security.add_tenant_member('acme', 'connie', 'client_admin');
SELECT crm_security.add_tenant_member('globex', 'connie', 'client_user');
SELECT crm_security.add_tenant_member('acme', 'arthur', 'client_user');
SELECT id, name, tier, member_limit, features FROM crm_security.tenants ORDER BY id;
SELECT tenant_id, user_id, role FROM crm_security.tenant_members ORDER BY 1, 2;

\echo
\echo '== 2. Her token carries her id and nothing about tenants or roles =='
SELECT crm_security.jwt_sign(
         jsonb_build_object('sub', 'connie', 'role', 'authenticated', 'email', 'connie@consulting.example',
                            'exp', extract(epoch FROM now())::bigint + 3600),
         'demo-tenants-secret-0123456789-0123456789', 'HS256', '{"kid": "demo-tenants"}') AS token \gset
SELECT payload FROM crm_security.jwt_decode(:'token');

CREATE TABLE demo_projects (id int PRIMARY KEY, tenant_id text NOT NULL, title text);
CREATE INDEX ON demo_projects (tenant_id);
INSERT INTO demo_projects VALUES (1, 'acme', 'Acme ERP rollout'), (2, 'acme', 'Acme audit'),
                                 (3, 'globex', 'Globex data migration');
SELECT crm_security.enable_tenant_isolation('demo_projects');
CREATE ROLE demo_tenants_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON demo_projects TO demo_tenants_app;

\echo
\echo '== 3. Without naming a tenant: she belongs to two, so she must pick =='
SELECT demo_refused(format('SELECT crm_security.set_claim_context(%L)', :'token')) AS no_tenant_named;

\echo
\echo '== 4. Morning at Acme: administrator there =='
BEGIN;
SET LOCAL ROLE demo_tenants_app;
SELECT crm_security.set_claim_context(:'token', 'acme', 'req-morning') IS NOT NULL AS context_set;
SELECT crm_security.tenant_id(), crm_security.app_role(), crm_security.can('crm:users:manage') AS manages_users,
       crm_security.tenant_feature('api_access') AS api_access;
SELECT * FROM demo_projects;
SELECT tenant_id, user_id, role FROM crm_security.tenant_members ORDER BY user_id;
COMMIT;

\echo
\echo '== 5. Afternoon at Globex: a plain user there, and Acme is out of sight =='
BEGIN;
SET LOCAL ROLE demo_tenants_app;
SELECT crm_security.set_claim_context(:'token', 'globex', 'req-afternoon') IS NOT NULL AS context_set;
SELECT crm_security.tenant_id(), crm_security.app_role(), crm_security.can('crm:users:manage') AS manages_users,
       crm_security.tenant_feature('api_access') AS api_access;
SELECT * FROM demo_projects;
SELECT tenant_id, user_id, role FROM crm_security.tenant_members ORDER BY user_id;
INSERT INTO demo_projects VALUES (4, 'globex', 'Globex reporting');
SELECT demo_refused($q$INSERT INTO demo_projects VALUES (5, 'acme', 'slipped into Acme')$q$) AS write_into_acme;
COMMIT;

\echo
\echo '== 6. A tenant she does not belong to, and one that does not exist: the same answer =='
SELECT demo_refused(format('SELECT crm_security.set_claim_context(%L, %L)', :'token', 'initech')) AS initech;
SELECT demo_refused(format('SELECT crm_security.set_claim_context(%L, %L)', :'token', 'no-such-tenant')) AS unknown;

\echo
\echo '== 7. Her Globex engagement ends: from the next request on, in every session =='
SELECT crm_security.remove_tenant_member('globex', 'connie');
SELECT demo_refused(format('SELECT crm_security.set_claim_context(%L, %L)', :'token', 'globex')) AS globex_now;
BEGIN;
SELECT crm_security.set_claim_context(:'token') IS NOT NULL AS context_set;
SELECT crm_security.tenant_id() AS her_only_tenant_now, crm_security.app_role();
COMMIT;

\echo
\echo '== 8. Every membership change is an audit event =='
SELECT operation, resource_id, metadata->>'tenant_id' AS tenant FROM crm_security.audit_log
 WHERE resource_type = 'tenant_member' ORDER BY id;

DROP TABLE demo_projects;
DROP ROLE demo_tenants_app;
DELETE FROM crm_security.tenants WHERE id IN ('acme', 'globex');
DELETE FROM crm_security.jwt_keys WHERE kid = 'demo-tenants';
