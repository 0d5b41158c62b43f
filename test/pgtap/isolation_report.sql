-- isolation_report(), disable_tenant_isolation(), and isolation inside parallel queries.
BEGIN;
SELECT plan(26);

CREATE SCHEMA regress_rep;
CREATE TABLE regress_rep.open_t (id int, tenant_id text);
CREATE TABLE regress_rep.isolated (id int, tenant_id text NOT NULL);
CREATE INDEX ON regress_rep.isolated (tenant_id);
CREATE TABLE regress_rep.no_tenant (id int);
CREATE VIEW regress_rep.leaky_view AS SELECT * FROM regress_rep.isolated;
CREATE VIEW regress_rep.leaky_view2 AS SELECT id FROM regress_rep.leaky_view;
CREATE VIEW regress_rep.safe_view WITH (security_invoker = on) AS SELECT * FROM regress_rep.isolated;
CREATE MATERIALIZED VIEW regress_rep.mat AS SELECT * FROM regress_rep.isolated;
SELECT crm_security.enable_tenant_isolation('regress_rep.isolated');
CREATE ROLE regress_app;
-- a connection that also serves reviewers (the database role for cross-tenant reading)
GRANT crm_security_reviewer TO regress_app;
GRANT TRUNCATE ON regress_rep.isolated TO regress_app;

CREATE TEMP TABLE rep AS
SELECT relation::text AS rel, kind, tenant_column::text AS col, issue FROM crm_security.isolation_report()
 WHERE relation::text LIKE 'regress_rep.%';

SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_rep.open_t' AND issue = 'row level security is disabled'),
          'a table with a tenant column and no RLS is flagged');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_rep.open_t' AND issue LIKE 'row level security is not forced%'),
          'and as not forced');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_rep.open_t' AND issue = 'no row level security policy'),
          'and as without policy');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_rep.open_t' AND issue = 'tenant column allows NULL'),
          'a nullable tenant column is flagged');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_rep.open_t' AND issue = 'no index leads with the tenant column'),
          'a tenant column without index is flagged');
SELECT is((SELECT array_agg(issue) FROM rep WHERE rel = 'regress_rep.isolated'),
          ARRAY['TRUNCATE is granted to regress_app: TRUNCATE ignores row level security'],
          'the isolated table: only the TRUNCATE grant is flagged');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_rep.leaky_view' AND kind = 'view'
                   AND issue LIKE 'view over regress_rep.isolated without security_invoker%'),
          'a view without security_invoker is flagged');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_rep.leaky_view2' AND kind = 'view'),
          'a view over that view is flagged too');
SELECT ok(NOT EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_rep.safe_view'), 'a security_invoker view is not flagged');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_rep.mat' AND kind = 'materialized view'),
          'a materialized view is flagged');
SELECT ok(NOT EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_rep.no_tenant'), 'a table without tenant column is not listed');
SELECT ok(NOT EXISTS (SELECT 1 FROM crm_security.isolation_report() WHERE relation::text LIKE 'crm_security.%'),
          'the extension''s own tables are not listed');
SELECT ok(EXISTS (SELECT 1 FROM crm_security.isolation_report('{id}') WHERE relation::text = 'regress_rep.no_tenant'),
          'other tenant column names can be given');

-- a policy dropped by hand is reported
DROP POLICY crm_tenant_delete ON regress_rep.isolated;
SELECT ok(EXISTS (SELECT 1 FROM crm_security.isolation_report()
                   WHERE relation = 'regress_rep.isolated'::regclass
                     AND issue = 'tenant isolation policy crm_tenant_delete is missing'),
          'a missing isolation policy is flagged');

-- disable: policies gone, RLS off when no other policy remains; other policies keep it on
SELECT lives_ok($$SELECT crm_security.disable_tenant_isolation('regress_rep.isolated')$$, 'disable_tenant_isolation');
SELECT ok((SELECT NOT relrowsecurity AND NOT relforcerowsecurity FROM pg_class WHERE oid = 'regress_rep.isolated'::regclass)
          AND NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = 'regress_rep.isolated'::regclass),
          'no policies, RLS off');
SELECT crm_security.enable_tenant_isolation('regress_rep.isolated');
CREATE POLICY other ON regress_rep.isolated USING (id > 0);
SELECT crm_security.disable_tenant_isolation('regress_rep.isolated');
SELECT ok((SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 'regress_rep.isolated'::regclass),
          'another policy keeps RLS on and forced');
SELECT throws_ok($$SELECT crm_security.disable_tenant_isolation('regress_rep.leaky_view')$$, '22023', NULL,
                 'disable on a view is refused');

-- parallel workers apply the same context
SELECT crm_security.add_jwt_key('regress_rep', 'HS256', 'regress-report-secret-0123456789abcdef012');
CREATE TABLE regress_rep.par (id int, tenant_id text NOT NULL);
INSERT INTO regress_rep.par SELECT i, 't' || (i % 10) FROM generate_series(1, 50000) i;
ANALYZE regress_rep.par;
SELECT crm_security.enable_tenant_isolation('regress_rep.par');
GRANT USAGE ON SCHEMA regress_rep TO regress_app;
GRANT SELECT ON regress_rep.par TO regress_app;
\ir include/tap_state.sql
SELECT pg_temp.grant_tap_state('regress_app');
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
-- only the workers scan: a context they do not see would give no rows
SET LOCAL parallel_leader_participation = off;
SET ROLE regress_app;
SELECT ok(crm_security.set_claim_context(crm_security.jwt_sign(
    jsonb_build_object('sub', 'u', 'tenant_id', 't3', 'exp', extract(epoch FROM now())::bigint + 600),
    'regress-report-secret-0123456789abcdef012', 'HS256')) IS NOT NULL, 'context of tenant t3');
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; result text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ' || q LOOP result := result || line || E'\n'; END LOOP;
    RETURN result;
END $$;
SELECT matches(pg_temp.plan_of('SELECT count(*) FROM regress_rep.par'), 'Workers Launched: [1-9]',
               'the count runs in parallel workers');
SELECT is((SELECT count(*)::int FROM regress_rep.par), 5000, 'a parallel scan counts the tenant''s rows');
SELECT ok(crm_security.set_claim_context(crm_security.jwt_sign(
    jsonb_build_object('sub', 'u', 'role', 'reviewer', 'exp', extract(epoch FROM now())::bigint + 600),
    'regress-report-secret-0123456789abcdef012', 'HS256')) IS NOT NULL, 'reviewer context');
SELECT is((SELECT count(*)::int FROM regress_rep.par), 50000, 'a parallel scan counts every row for the reviewer');
-- the same with the leader scanning too (the default)
RESET ROLE;
SET LOCAL parallel_leader_participation = on;
SET ROLE regress_app;
SELECT is((SELECT count(*)::int FROM regress_rep.par), 50000, 'leader and workers count every row for the reviewer');
SELECT ok(crm_security.set_claim_context(crm_security.jwt_sign(
    jsonb_build_object('sub', 'u', 'tenant_id', 't3', 'exp', extract(epoch FROM now())::bigint + 600),
    'regress-report-secret-0123456789abcdef012', 'HS256')) IS NOT NULL, 'context of tenant t3 again');
SELECT is((SELECT count(*)::int FROM regress_rep.par), 5000, 'leader and workers count the tenant''s rows');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
