-- pg_temp.explain(query): the plan of query as EXPLAIN (ANALYZE, FORMAT JSON) gives it, for
-- checks on parallel workers and plan shapes.  Included with \ir.
CREATE FUNCTION pg_temp.explain(q text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE j jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, FORMAT JSON) ' || q INTO j;
    RETURN j;
END $$;
