-- A tenant resolved from tenant_members inside parallel workers: the leader does not scan
-- (so every row below is filtered by a worker), and each worker derives the tenant and role
-- again from the verified token and crm_security.requested_tenant, never from a value it
-- is handed.
BEGIN;
SELECT plan(13);

CREATE TABLE tp_rows AS
    SELECT g AS id, 'tenant-' || (g % 4) AS tenant FROM generate_series(1, 200000) AS g;
ANALYZE tp_rows;

SELECT crm_security.add_jwt_key('tp_hs', 'HS256', 'tenants-parallel-secret-0123456789-abcde');
CREATE TEMP TABLE tp_tok AS SELECT
    crm_security.jwt_sign(jsonb_build_object('sub', 'consultant', 'role', 'authenticated',
                                             'exp', extract(epoch FROM now())::bigint + 600),
                          'tenants-parallel-secret-0123456789-abcde', 'HS256', '{"kid": "tp_hs"}') AS tok;
SELECT crm_security.add_tenant('tenant-1', 'One', 'pro');
SELECT crm_security.add_tenant('tenant-2', 'Two', 'free');
SELECT crm_security.add_tenant('tenant-3', 'Three');
SELECT crm_security.add_tenant_member('tenant-1', 'consultant', 'client_admin');
SELECT crm_security.add_tenant_member('tenant-2', 'consultant', 'client_user');

SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;

CREATE FUNCTION pg_temp.q() RETURNS text LANGUAGE sql AS $$
    SELECT $q$SELECT count(*) FILTER (WHERE tenant = crm_security.tenant_id()) AS tenant_rows,
                   count(*) FILTER (WHERE crm_security.app_role() = 'client_admin') AS admin_rows,
                   count(*) FILTER (WHERE crm_security.can('crm:users:manage')) AS can_rows,
                   count(*) FILTER (WHERE crm_security.tenant_feature('api_access')) AS feature_rows
              FROM tp_rows$q$
$$;
\ir include/explain.sql
CREATE FUNCTION pg_temp.counts() RETURNS TABLE (tenant_rows bigint, admin_rows bigint, can_rows bigint, feature_rows bigint)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE pg_temp.q();
END $$;

DO $$ BEGIN PERFORM crm_security.set_claim_context((SELECT tok FROM tp_tok), 'tenant-1'); END $$;
SELECT ok(jsonb_path_exists(pg_temp.explain(pg_temp.q()), 'strict $.**."Node Type" ? (@ == "Gather")'), 'the plan has a Gather node');
SELECT cmp_ok((jsonb_path_query_first(pg_temp.explain(pg_temp.q()), 'strict $.**."Workers Launched"'))::int, '>=', 1, 'workers are launched');
SELECT results_eq('SELECT * FROM pg_temp.counts()',
    $$VALUES (50000::bigint, 200000::bigint, 200000::bigint, 200000::bigint)$$,
    'tenant-1: the workers resolve the membership''s tenant, role, permissions and features');

-- Switching tenants in the same transaction reaches new workers.
DO $$ BEGIN PERFORM crm_security.set_claim_context((SELECT tok FROM tp_tok), 'tenant-2'); END $$;
SELECT results_eq('SELECT * FROM pg_temp.counts()', $$VALUES (50000::bigint, 0::bigint, 0::bigint, 0::bigint)$$,
    'tenant-2: its rows, and its role, permissions and features');
SELECT is((SELECT count(DISTINCT tenant) FROM tp_rows WHERE tenant = crm_security.tenant_id()), 1::bigint, 'one tenant only');

-- The only membership, resolved by the leader, is carried as the requested tenant.
SELECT crm_security.remove_tenant_member('tenant-2', 'consultant');
DO $$ BEGIN PERFORM crm_security.set_claim_context((SELECT tok FROM tp_tok)); END $$;
SELECT is(current_setting('crm_security.requested_tenant'), 'tenant-1', 'the resolved tenant is the input of the workers');
SELECT results_eq('SELECT tenant_rows, admin_rows FROM pg_temp.counts()', $$VALUES (50000::bigint, 200000::bigint)$$,
    'the only membership: the same tenant in the workers');

-- The setting is only an input: the workers check it against the memberships.
SET LOCAL crm_security.requested_tenant = 'tenant-3';
SELECT throws_ok('SELECT * FROM pg_temp.counts()', '42501', 'not a member of the requested tenant',
    'a tenant the user is not a member of, put into the setting: the workers refuse it');
SET LOCAL crm_security.requested_tenant = 'tenant-1';
SELECT results_eq('SELECT tenant_rows FROM pg_temp.counts()', $$VALUES (50000::bigint)$$, 'one they are a member of: as set_claim_context gives');

-- A membership removed after the context was set: the transaction keeps its context, but
-- a worker started later derives it again and refuses (it fails closed).
DO $$ BEGIN PERFORM crm_security.set_claim_context((SELECT tok FROM tp_tok), 'tenant-1'); END $$;
SELECT is(crm_security.tenant_id(), 'tenant-1', 'the context');
SELECT crm_security.disable_tenant_member('tenant-1', 'consultant');
SELECT is(crm_security.tenant_id(), 'tenant-1', 'the transaction keeps its context after the membership is disabled');
SELECT throws_ok('SELECT * FROM pg_temp.counts()', '42501', NULL, 'a parallel query started since fails closed');
SELECT throws_ok($$SELECT crm_security.set_claim_context((SELECT tok FROM tp_tok), 'tenant-1')$$, '42501', NULL,
    'the next set_claim_context refuses the membership');

SELECT * FROM finish();
ROLLBACK;
