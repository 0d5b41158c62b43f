-- 0.1.0 -> 0.2.0, branch citus14: Citus support (docs/citus.md).
-- New: _policy_signature(), _isolation_shard_report() (sql/49_citus_shards.sql);
-- isolation_report() also reports Citus shards, VOLATILE PARALLEL UNSAFE (it may ask the
-- workers); _citus_replicate() and its triggers, _citus_apply(), citus_sync(),
-- seal_cluster_audit(), verify_cluster_audit() (sql/90_citus.sql).

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

-- isolation_report() calls _isolation_shard_report(): its new body is in pol15.sql, which
-- also changes it.

-- The coordinator sends every change of these tables to every worker (src/citus_sync.c).
CREATE FUNCTION crm_security._citus_replicate()
RETURNS trigger
AS 'MODULE_PATHNAME', 'crm_citus_replicate'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION crm_security._citus_replicate() FROM PUBLIC;
COMMENT ON FUNCTION crm_security._citus_replicate() IS
'trigger: on a Citus coordinator, send the table''s rows to every worker in the same distributed transaction; nothing without Citus';

CREATE FUNCTION crm_security._citus_apply(tbl text, rows jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'crm_citus_apply'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION crm_security._citus_apply(text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION crm_security._citus_apply(text, jsonb) IS
'internal: on a Citus worker, replace the rows of a key store table with the coordinator''s (superuser only)';

CREATE FUNCTION crm_security.citus_sync()
RETURNS integer
AS 'MODULE_PATHNAME', 'crm_citus_sync'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION crm_security.citus_sync() FROM PUBLIC;
COMMENT ON FUNCTION crm_security.citus_sync() IS
'on a Citus coordinator: send the key store, roles, grants, tenants, members, API keys, isolation registry and record-access tables to every worker (after citus_add_node); the number of tables sent';

CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.jwt_keys
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.roles
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.role_grants
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.tenant_tiers
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.tenant_members
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.isolated_tables
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.reports_to
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.teams
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.team_members
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.sharing_rules
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.shared_records
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.user_companies
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.record_access_tables
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.service_registry
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();
CREATE TRIGGER citus_replicate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.api_key_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._citus_replicate();

-- Audit: every node keeps, seals and verifies its own log (the changes of the shards it
-- holds); these run the same function on every node and return one row per node.
CREATE FUNCTION crm_security.seal_cluster_audit()
RETURNS TABLE (node text, ok boolean, sealed bigint, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'Citus is not installed in this database' USING ERRCODE = '55000';
    END IF;
    FOR r IN EXECUTE $q$
        SELECT n.nodename OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) n.nodeport AS node, c.success, c.result
          FROM pg_catalog.run_command_on_all_nodes('SELECT crm_security.seal_audit_log()') c
          JOIN pg_catalog.pg_dist_node n ON n.nodeid OPERATOR(pg_catalog.=) c.nodeid
         ORDER BY n.groupid, n.nodeid $q$
    LOOP
        node := r.node; ok := r.success;
        sealed := CASE WHEN r.success THEN r.result::pg_catalog.int8 END;
        detail := CASE WHEN NOT r.success THEN r.result END;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION crm_security.seal_cluster_audit() FROM PUBLIC;
COMMENT ON FUNCTION crm_security.seal_cluster_audit() IS
'on a Citus coordinator: seal_audit_log() on every node (coordinator included), one row per node';

CREATE FUNCTION crm_security.verify_cluster_audit()
RETURNS TABLE (node text, ok boolean, blocks_checked bigint, entries_checked bigint, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    v jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'Citus is not installed in this database' USING ERRCODE = '55000';
    END IF;
    FOR r IN EXECUTE $q$
        SELECT n.nodename OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) n.nodeport AS node, c.success, c.result
          FROM pg_catalog.run_command_on_all_nodes(
                 'SELECT pg_catalog.to_jsonb(v) FROM crm_security.verify_audit_log() v') c
          JOIN pg_catalog.pg_dist_node n ON n.nodeid OPERATOR(pg_catalog.=) c.nodeid
         ORDER BY n.groupid, n.nodeid $q$
    LOOP
        node := r.node;
        IF r.success THEN
            v := r.result::pg_catalog.jsonb;
            ok := (v OPERATOR(pg_catalog.->>) 'ok')::boolean;
            blocks_checked := (v OPERATOR(pg_catalog.->>) 'blocks_checked')::pg_catalog.int8;
            entries_checked := (v OPERATOR(pg_catalog.->>) 'entries_checked')::pg_catalog.int8;
            detail := v OPERATOR(pg_catalog.->>) 'detail';
        ELSE
            ok := false; blocks_checked := NULL; entries_checked := NULL;
            detail := 'the node could not be checked: ' OPERATOR(pg_catalog.||) r.result;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION crm_security.verify_cluster_audit() FROM PUBLIC;
COMMENT ON FUNCTION crm_security.verify_cluster_audit() IS
'on a Citus coordinator: verify_audit_log() on every node (coordinator included), one row per node; every row ok when the whole cluster verifies';
