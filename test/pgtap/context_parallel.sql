-- The claim context inside parallel workers: the leader does not scan (so every row below
-- is filtered by a worker), and the accessors must give the leader's results there.
BEGIN;
SELECT plan(14);

CREATE TABLE cxp_rows AS
    SELECT g AS id, 'tenant-' || (g % 4) AS tenant FROM generate_series(1, 200000) AS g;
ANALYZE cxp_rows;

SELECT crm_security.add_jwt_key('cxp_hs', 'HS256', 'cxp-secret-0123456789-0123456789-abcdef');
CREATE TEMP TABLE cxp_tok AS SELECT
    crm_security.jwt_sign(jsonb_build_object('sub', 'u-par', 'tenant_id', 'tenant-1', 'role', 'agent',
                                             'app_metadata', jsonb_build_object('region', 'eu'),
                                             'exp', extract(epoch FROM now())::bigint + 600),
                          'cxp-secret-0123456789-0123456789-abcdef', 'HS256', '{"kid": "cxp_hs"}') AS ok,
    crm_security.jwt_sign(jsonb_build_object('sub', 'u-evil', 'tenant_id', 'tenant-2',
                                             'exp', extract(epoch FROM now())::bigint + 600),
                          'another-secret-0123456789-0123456789-abc', 'HS256', '{"kid": "cxp_hs"}') AS forged;

SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;

-- What the workers compute: one row of filtered counts (partial aggregates in workers).
CREATE FUNCTION pg_temp.q() RETURNS text LANGUAGE sql AS $$
    SELECT $q$SELECT count(*) FILTER (WHERE tenant = crm_security.tenant_id()) AS tenant_rows,
                   count(*) FILTER (WHERE crm_security.user_id() = 'u-par') AS user_rows,
                   count(*) FILTER (WHERE crm_security.app_role() = 'agent') AS role_rows,
                   count(*) FILTER (WHERE crm_security.claim('app_metadata.region') = 'eu') AS claim_rows,
                   count(*) FILTER (WHERE crm_security.actor_type() = 'user') AS actor_rows,
                   count(*) FILTER (WHERE crm_security.claims()->>'sub' = 'u-par') AS claims_rows,
                   count(*) FILTER (WHERE crm_security.claims() IS NULL) AS null_rows
              FROM cxp_rows$q$
$$;
\ir include/explain.sql
CREATE FUNCTION pg_temp.counts() RETURNS TABLE (tenant_rows bigint, user_rows bigint, role_rows bigint,
    claim_rows bigint, actor_rows bigint, claims_rows bigint, null_rows bigint) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE pg_temp.q();
END $$;

DO $$ BEGIN PERFORM crm_security.set_claim_context((SELECT ok FROM cxp_tok)); END $$;

SELECT ok(jsonb_path_exists(pg_temp.explain(pg_temp.q()), 'strict $.**."Node Type" ? (@ == "Gather")'),
    'the plan has a Gather node');
SELECT cmp_ok((jsonb_path_query_first(pg_temp.explain(pg_temp.q()), 'strict $.**."Workers Launched"'))::int, '>=', 1,
    'workers are launched');
SELECT ok(jsonb_path_exists(pg_temp.explain(pg_temp.q()), 'strict $.**."Parent Relationship" ? (@ == "Outer")')
          AND NOT jsonb_path_exists(pg_temp.explain('SELECT 1'), 'strict $.**."Node Type" ? (@ == "Gather")'),
    'EXPLAIN is read correctly');
SELECT results_eq('SELECT * FROM pg_temp.counts()',
    $$VALUES (50000::bigint, 200000::bigint, 200000::bigint, 200000::bigint, 200000::bigint, 200000::bigint, 0::bigint)$$,
    'the accessors give the leader''s context in the workers');

-- Without a context the workers see none.
DO $$ BEGIN PERFORM crm_security.clear_claim_context(); END $$;
SELECT results_eq('SELECT * FROM pg_temp.counts()',
    $$VALUES (0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 200000::bigint)$$,
    'after clear_claim_context the workers see no context');

-- A forged token put into the setting is refused in the workers too.
DO $$ BEGIN EXECUTE format('SET LOCAL crm_security.token = %L', (SELECT forged FROM cxp_tok)); END $$;
SELECT throws_ok('SELECT count(*) FROM cxp_rows WHERE tenant = crm_security.tenant_id()', '28000', 'invalid token',
    'a forged token in the setting is refused by the workers');
RESET crm_security.token;

-- Faking request.jwt.claims reaches the workers, and they ignore it.
DO $$ BEGIN PERFORM set_config('request.jwt.claims', '{"sub": "u-par", "tenant_id": "tenant-1"}', true); END $$;
SELECT results_eq('SELECT tenant_rows, null_rows FROM pg_temp.counts()',
    $$VALUES (0::bigint, 200000::bigint)$$, 'the workers never read request.jwt.claims by default');
SET LOCAL crm_security.trust_request_jwt_claims = on;
SELECT results_eq('SELECT tenant_rows, user_rows, null_rows FROM pg_temp.counts()',
    $$VALUES (50000::bigint, 200000::bigint, 0::bigint)$$, 'with trust_request_jwt_claims the workers read it');
RESET crm_security.trust_request_jwt_claims;

-- A second context in the same transaction reaches new workers.
DO $$ BEGIN PERFORM crm_security.set_claim_context((SELECT ok FROM cxp_tok)); END $$;
SELECT is((SELECT tenant_rows FROM pg_temp.counts()), 50000::bigint, 'the context is back in the workers');

-- An RLS policy evaluated in the workers, for a role that is not the owner.
CREATE ROLE regress_cxp_reader;
GRANT SELECT ON cxp_rows TO regress_cxp_reader;
ALTER TABLE cxp_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY cxp_tenant ON cxp_rows USING (tenant = crm_security.tenant_id());
SET LOCAL ROLE regress_cxp_reader;
SELECT ok(jsonb_path_exists(pg_temp.explain('SELECT count(*) FROM cxp_rows'), 'strict $.**."Node Type" ? (@ == "Gather")'),
    'the policy query runs in parallel');
SELECT is((SELECT count(*) FROM cxp_rows), 50000::bigint, 'the policy admits the context tenant''s rows, in workers');
SELECT is((SELECT count(DISTINCT tenant) FROM cxp_rows), 1::bigint, '... and no other tenant''s');
RESET ROLE;
DO $$ BEGIN PERFORM crm_security.clear_claim_context(); END $$;
SET LOCAL ROLE regress_cxp_reader;
SELECT is((SELECT count(*) FROM cxp_rows), 0::bigint, 'without a context the policy hides every row');
RESET ROLE;
SELECT is((SELECT count(*) FROM cxp_rows WHERE crm_security.tenant_id() IS NULL), 200000::bigint,
    'the owner (no FORCE) still sees all rows, and no context is NULL in the workers');

SELECT * FROM finish();
ROLLBACK;
