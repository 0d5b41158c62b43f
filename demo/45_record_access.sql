-- Record-level access inside one tenant: a sales rep, their manager and a colleague with a
-- shared deal each see different rows of the same table (docs/record-access.md).
\echo
\echo '################################################################'
\echo '# Chapter 5. Record access inside a tenant'
\echo '#   Inside Acme, a sales rep sees his deals, his manager sees her team''s, a colleague only'
\echo '#   what is shared with him.'
\echo '################################################################'
\set QUIET on
\pset footer off

\echo
\echo '== 1. One tenant, one deals table under tenant isolation and record access =='
SELECT crm_security.add_jwt_key('sales-demo', 'HS256', 'sales-demo-secret-0123456789-0123456789-xyz');
CREATE SCHEMA sales;
CREATE TABLE sales.deals (
    tenant_id text NOT NULL,
    id int NOT NULL,
    owner_id text NOT NULL,
    title text NOT NULL,
    amount numeric NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ON sales.deals (tenant_id, owner_id);
INSERT INTO sales.deals VALUES
    ('acme', 1, 'maria', 'Maria: regional framework deal', 50000),
    ('acme', 2, 'sam',   'Sam: Initech renewal', 12000),
    ('acme', 3, 'sam',   'Sam: Initech upsell', 3000),
    ('acme', 4, 'lee',   'Lee: Umbrella pilot', 8000),
    ('acme', 5, 'lee',   'Lee: Umbrella expansion', 21000),
    ('globex', 6, 'sam', 'another tenant''s Sam: not ours', 999);
GRANT USAGE ON SCHEMA sales TO crm_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON sales.deals TO crm_app;
SELECT crm_security.enable_tenant_isolation('sales.deals');
SELECT crm_security.enable_record_access('sales.deals', 'owner_id');

\echo
\echo '== 2. The org chart: Sam and Lee report to Maria; Lee shares one deal with Sam =='
SELECT crm_security.set_manager('acme', 'sam', 'maria');
SELECT crm_security.set_manager('acme', 'lee', 'maria');
SELECT crm_security.share_record('sales.deals', '4', 'acme', 'sam', 'read');
CREATE TABLE sales.demo_tokens (who text PRIMARY KEY, token text NOT NULL);
INSERT INTO sales.demo_tokens
SELECT who, crm_security.jwt_sign(jsonb_build_object('sub', who, 'tenant_id', 'acme',
                                                     'exp', extract(epoch FROM now())::bigint + 3600),
                                  'sales-demo-secret-0123456789-0123456789-xyz', 'HS256')
  FROM unnest('{sam,maria,lee}'::text[]) AS who;
GRANT SELECT ON sales.demo_tokens TO crm_app;

\echo
\echo '== 3. Sam (a sales rep): his own deals and the one Lee shared with him =='
BEGIN;
SET LOCAL ROLE crm_app;
SELECT crm_security.set_claim_context(token) IS NOT NULL AS verified FROM sales.demo_tokens WHERE who = 'sam';
SELECT crm_security.accessible_owner_ids() AS owners, crm_security.shared_record_ids('sales.deals') AS shared;
SELECT id, owner_id, title FROM sales.deals ORDER BY id;
\echo 'Sam may read the shared deal but not change it (0 rows updated):'
UPDATE sales.deals SET amount = 1 WHERE id = 4;
SELECT amount AS "deal 4 amount, unchanged" FROM sales.deals WHERE id = 4;
COMMIT;

\echo
\echo '== 4. Maria (their manager): her deals and everything below her =='
BEGIN;
SET LOCAL ROLE crm_app;
SELECT crm_security.set_claim_context(token) IS NOT NULL AS verified FROM sales.demo_tokens WHERE who = 'maria';
SELECT crm_security.accessible_owner_ids() AS owners;
SELECT id, owner_id, title FROM sales.deals ORDER BY id;
COMMIT;

\echo
\echo '== 5. Lee (a colleague): only his own deals, not Sam''s and not Maria''s =='
BEGIN;
SET LOCAL ROLE crm_app;
SELECT crm_security.set_claim_context(token) IS NOT NULL AS verified FROM sales.demo_tokens WHERE who = 'lee';
SELECT id, owner_id, title FROM sales.deals ORDER BY id;
COMMIT;

\echo
\echo '== 6. The share is revoked: from the next transaction Sam no longer sees deal 4 =='
SELECT crm_security.unshare_record('sales.deals', '4', 'acme', 'sam');
BEGIN;
SET LOCAL ROLE crm_app;
SELECT crm_security.set_claim_context(token) IS NOT NULL AS verified FROM sales.demo_tokens WHERE who = 'sam';
SELECT id, owner_id, title FROM sales.deals ORDER BY id;
COMMIT;

\echo
\echo '== 7. The policies stay the extension''s own: isolation_report has nothing to say =='
SELECT count(*) AS issues FROM crm_security.isolation_report() WHERE relation = 'sales.deals'::regclass;
