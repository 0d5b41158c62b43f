-- Citus: shards whose policies differ from their table's (docs/citus.md).  Before
-- 50_isolation.sql, whose isolation_report() includes these rows.

CREATE FUNCTION crm_security._policy_signature(tbl regclass)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_build_object(
             'row_security', c.relrowsecurity,
             'force', c.relforcerowsecurity,
             'policies', (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                   'name', p.polname, 'command', p.polcmd, 'permissive', p.polpermissive,
                                   'roles', (SELECT pg_catalog.array_agg(CASE WHEN r.r OPERATOR(pg_catalog.=) 0 THEN 'public'
                                                                              ELSE pg_catalog.pg_get_userbyid(r.r)::pg_catalog.text END
                                                                         ORDER BY 1)
                                               FROM pg_catalog.unnest(p.polroles) AS r(r)),
                                   'using', pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                                   'check', pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))
                                   ORDER BY p.polname), '[]'::pg_catalog.jsonb)
                            FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid))::pg_catalog.text
      FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid
$$;
COMMENT ON FUNCTION crm_security._policy_signature(regclass) IS
'internal: row level security, forced or not, and every policy of a table (name, command, permissive, roles, expressions) as one text, to compare a Citus shard with its table';

CREATE FUNCTION crm_security._isolation_shard_report()
RETURNS TABLE (relation regclass, kind text, tenant_column name, issue text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    s record;
    want text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN;
    END IF;
    -- Every Citus table with row level security or a policy on the coordinator.
    FOR t IN EXECUTE $q$
        SELECT p.logicalrelid AS relid, i.tenant_column
          FROM pg_catalog.pg_dist_partition p
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.logicalrelid
          LEFT JOIN crm_security.isolated_tables i ON i.relation::pg_catalog.oid OPERATOR(pg_catalog.=) p.logicalrelid
         WHERE c.relrowsecurity OR EXISTS (SELECT 1 FROM pg_catalog.pg_policy o
                                            WHERE o.polrelid OPERATOR(pg_catalog.=) p.logicalrelid)
         ORDER BY 1 $q$
    LOOP
        want := crm_security._policy_signature(t.relid);
        FOR s IN EXECUTE $q$
            SELECT r.shardid, r.success, r.result,
                   (SELECT pg_catalog.string_agg(n.nodename OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) n.nodeport, ', ')
                      FROM pg_catalog.pg_dist_placement pl
                      JOIN pg_catalog.pg_dist_node n ON n.groupid OPERATOR(pg_catalog.=) pl.groupid
                     WHERE pl.shardid OPERATOR(pg_catalog.=) r.shardid) AS nodes
              FROM pg_catalog.run_command_on_shards($1,
                     'SELECT crm_security._policy_signature(''%s''::pg_catalog.regclass)') r
             ORDER BY r.shardid $q$ USING t.relid::regclass
        LOOP
            IF NOT s.success THEN
                relation := t.relid; kind := 'shard'; tenant_column := t.tenant_column;
                issue := pg_catalog.format('shard %s (on %s) could not be checked: %s', s.shardid, s.nodes, s.result);
                RETURN NEXT;
            ELSIF s.result IS DISTINCT FROM want THEN
                relation := t.relid; kind := 'shard'; tenant_column := t.tenant_column;
                issue := pg_catalog.format('shard %s (on %s) has row level security or policies that differ from its table''s (names, commands, permissive flag, roles or expressions): the workers do not enforce what the coordinator shows; drop and re-create the table''s policies, or fix the shard by hand',
                                           s.shardid, s.nodes);
                RETURN NEXT;
            END IF;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_security._isolation_shard_report() IS
'internal: with Citus, the rows of isolation_report() for shards whose row level security or policies differ from their table''s';
