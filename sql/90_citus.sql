-- Citus (docs/citus.md): one key store for the cluster, audit verified on every node.

-- The coordinator sends every change of these tables to every worker (src/citus_sync.c).
-- The workers that have had every table: a worker added later gets them at the next change.
CREATE TABLE crm_security.citus_synced_nodes (
    nodeid integer PRIMARY KEY,
    synced_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON crm_security.citus_synced_nodes FROM PUBLIC;
COMMENT ON TABLE crm_security.citus_synced_nodes IS
'on a Citus coordinator: the workers (pg_dist_node.nodeid) that have had every replicated table; the next change of a replicated table sends every table when an active worker is missing here';

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
'on a Citus coordinator: send the key store, roles, grants, tenants, members, API keys, isolation registry and record-access tables to every worker now (a worker added later gets them at the next change of one of them otherwise); the number of tables sent';

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
