-- Record access at size: a 20-level hierarchy, a cycle through 20 managers, 100,000 shares
-- for one user, 10,000 users below a VP; and a forced parallel plan, where the workers
-- compute the same sets from the leader's context.
BEGIN;
SELECT plan(13);

CREATE ROLE regress_rec_scale NOSUPERUSER NOBYPASSRLS;
\ir include/tap_state.sql
SELECT pg_temp.grant_tap_state('regress_rec_scale');
SELECT crm_security.add_jwt_key('regress_rec_scale', 'HS256', 'regress-scale-secret-0123456789abcdef0123');
CREATE FUNCTION pg_temp.ctx(sub text, tenant text) RETURNS boolean LANGUAGE sql AS $$
    SELECT crm_security.set_claim_context(crm_security.jwt_sign(
        jsonb_build_object('sub', sub, 'tenant_id', tenant, 'exp', extract(epoch FROM now())::bigint + 600),
        'regress-scale-secret-0123456789abcdef0123', 'HS256')) IS NOT NULL
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;

CREATE TABLE public.recs (id bigint PRIMARY KEY, tenant_id text NOT NULL, owner_id text NOT NULL);
CREATE INDEX ON public.recs (tenant_id, owner_id);
-- every arm of the policies an index condition: no per-row recheck (docs/record-access.md)
CREATE INDEX ON public.recs (tenant_id, id);
INSERT INTO public.recs SELECT g, CASE WHEN g % 10 = 0 THEN 'other' ELSE 's' END, 'u' || (g % 11111)
  FROM generate_series(1, 200000) g;
ANALYZE public.recs;
GRANT SELECT ON public.recs TO regress_rec_scale;
SELECT crm_security.enable_tenant_isolation('public.recs');
SELECT crm_security.enable_record_access('public.recs', 'owner_id');

-- a chain of 20 managers: c1 <- c2 <- ... <- c20
SELECT crm_security.set_manager('s', 'c' || g, 'c' || (g - 1)) FROM generate_series(2, 20) g;
SELECT throws_ok($$SELECT crm_security.set_manager('s', 'c1', 'c20')$$, '23514', NULL,
    'a cycle through 20 managers is refused');
-- 5 levels, branching 10: u0 <- u1..u10 <- ...  (11,111 users)
SELECT crm_security.set_manager('s', 'u' || g, 'u' || ((g - 1) / 10)) FROM generate_series(1, 11110) g;

SET ROLE regress_rec_scale;
SELECT ok(pg_temp.ctx('c1', 's'), 'the top of the chain');
SELECT is(array_length(crm_security.accessible_owner_ids(), 1), 20, 'the top of a 20-level chain reaches all 20');
SELECT ok(pg_temp.ctx('u0', 's'), 'the VP');
SELECT is(array_length(crm_security.accessible_owner_ids(), 1), 11111, 'a VP over 11,111 users reaches them all');
SELECT is((SELECT count(*) FROM public.recs), 180000::bigint, 'the VP sees every record of the tenant and no other');
SELECT ok(pg_temp.ctx('u1', 's'), 'a level-2 manager');
SELECT is((SELECT count(*) FROM public.recs),
          (SELECT count(*) FROM public.recs r WHERE r.owner_id = ANY (crm_security.accessible_owner_ids())),
    'the policy agrees with an explicit WHERE');

-- a forced parallel plan: the workers compute the sets themselves
SELECT ok(pg_temp.ctx('u11', 's'), 'a level-3 manager');
SELECT count(*) AS serial_count FROM public.recs \gset
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL min_parallel_index_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = off;
\ir include/explain.sql
SELECT cmp_ok((jsonb_path_query_first(pg_temp.explain('SELECT count(*) FROM public.recs'), 'strict $.**."Workers Launched"'))::int, '>=', 1,
    'a parallel plan with workers');
SELECT is((SELECT count(*) FROM public.recs), :serial_count::bigint,
    'the workers count what a serial plan counts');
RESET enable_indexscan; RESET enable_bitmapscan;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET max_parallel_workers_per_gather; RESET parallel_leader_participation;
RESET ROLE;

-- 100,000 shares for one user (written in bulk by the administrator)
INSERT INTO crm_security.shared_records (tenant_id, relation, record_id, with_user, access)
SELECT 's', 'public.recs'::regclass, g::text, 'lonely', 'read' FROM generate_series(1, 200000) g WHERE g % 2 = 0;
SET ROLE regress_rec_scale;
SELECT ok(pg_temp.ctx('lonely', 's'), 'a user with 100,000 shares');
SELECT is((SELECT count(*) FROM public.recs), 80000::bigint, 'the user sees the shared records of their tenant and no other');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
