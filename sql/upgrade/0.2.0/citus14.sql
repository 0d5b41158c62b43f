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

-- isolation_report(): the shard rows, and its labels.
CREATE OR REPLACE FUNCTION crm_security.isolation_report(tenant_columns name[] DEFAULT '{tenant_id}')
RETURNS TABLE (relation regclass, kind text, tenant_column name, issue text)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH reg AS (
        -- the registered tables that exist (a row of a table dropped with the event trigger
        -- disabled names an oid that no longer does)
        SELECT r.relation::oid AS relid, r.tenant_column AS col, r.policies
          FROM crm_security.isolated_tables r
          JOIN pg_catalog.pg_class c ON c.oid = r.relation::oid
    ),
    descendants AS (
        -- every partition or inheritance child of a registered table, at any depth, that is
        -- not registered itself, with its nearest registered ancestor and that one's column
        SELECT DISTINCT ON (d.relid) d.relid, d.ancestor, d.col, c.relkind, c.relispartition
          FROM (WITH RECURSIVE d(relid, ancestor, col, depth) AS (
                    SELECT i.inhrelid, g.relid, g.col, 1
                      FROM reg g JOIN pg_catalog.pg_inherits i ON i.inhparent = g.relid
                  UNION
                    SELECT i.inhrelid, d.ancestor, d.col, d.depth + 1
                      FROM d JOIN pg_catalog.pg_inherits i ON i.inhparent = d.relid
                     WHERE d.depth < 1000
                ) SELECT * FROM d) d
          JOIN pg_catalog.pg_class c ON c.oid = d.relid
         WHERE c.relkind IN ('r', 'p', 'f')
           AND NOT EXISTS (SELECT 1 FROM reg g WHERE g.relid = d.relid)
         ORDER BY d.relid, d.depth
    ),
    ours AS (
        -- the column an isolation policy compares (policies depend on the columns they use)
        SELECT DISTINCT ON (pol.polrelid) pol.polrelid AS relid, a.attname AS col
          FROM pg_catalog.pg_policy pol
          JOIN pg_catalog.pg_depend d
            ON d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = pol.oid
           AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
          JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE pol.polname = 'crm_tenant_select'
    ),
    others AS (
        -- tables that are neither registered nor descendants of registered tables, with a
        -- tenant column or isolation policies
        SELECT DISTINCT ON (c.oid) c.oid AS relid, COALESCE(o.col, a.attname) AS col
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN ours o ON o.relid = c.oid
          LEFT JOIN pg_catalog.pg_attribute a
            ON a.attrelid = c.oid AND a.attname = ANY (tenant_columns) AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relkind IN ('r', 'p')
           AND (o.relid IS NOT NULL OR a.attname IS NOT NULL)
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\_toast%'
           AND NOT EXISTS (SELECT 1 FROM reg g WHERE g.relid = c.oid)
           AND NOT EXISTS (SELECT 1 FROM descendants g WHERE g.relid = c.oid)
           -- the extension's own tables are protected by privileges, not by RLS (unless
           -- the extension isolates them, and so registers them)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                            WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid
                              AND e.deptype = 'e')
         ORDER BY c.oid, a.attnum
    ),
    cand AS (
        SELECT g.relid, g.col, true AS registered FROM reg g
        UNION ALL
        SELECT d.relid, d.col, false FROM descendants d WHERE d.relkind IN ('r', 'p')
        UNION ALL
        SELECT o.relid, o.col, false FROM others o
    ),
    expected AS (
        SELECT g.relid, g.col, x.value->>'name' AS name, x.value AS pol
          FROM reg g CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(g.policies) AS x
         WHERE g.policies IS NOT NULL
    ),
    actual AS (
        SELECT g.relid, g.col, x.value->>'name' AS name, x.value AS pol
          FROM reg g CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(crm_security._isolation_policies(g.relid, false)) AS x
         WHERE g.policies IS NOT NULL
    ),
    tables AS (
        SELECT k.relid, k.col, k.registered, c.relrowsecurity, c.relforcerowsecurity, c.relowner, c.relacl,
               (SELECT pg_catalog.array_agg(p.polname) FROM pg_catalog.pg_policy p
                 WHERE p.polrelid = k.relid) AS policies,
               (SELECT a.attnotnull FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = k.relid AND a.attname = k.col) AS notnull,
               (SELECT a.attnum FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = k.relid AND a.attname = k.col) AS attnum,
               -- a nondeterministic collation of the tenant column (NULL: none)
               (SELECT co.collname FROM pg_catalog.pg_attribute a
                  JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
                 WHERE a.attrelid = k.relid AND a.attname = k.col AND NOT co.collisdeterministic) AS ndcoll,
               -- whether every permissive policy (there is one at least) also compares bytewise
               (SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0
                       AND pg_catalog.bool_and(
                           (p.polqual IS NULL
                            OR pg_catalog.strpos(pg_catalog.pg_get_expr(p.polqual, p.polrelid), 'COLLATE "C"') OPERATOR(pg_catalog.>) 0)
                           AND (p.polwithcheck IS NULL
                            OR pg_catalog.strpos(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), 'COLLATE "C"') OPERATOR(pg_catalog.>) 0))
                  FROM pg_catalog.pg_policy p
                 WHERE p.polrelid = k.relid AND p.polpermissive) AS bytewise
          FROM cand k JOIN pg_catalog.pg_class c ON c.oid = k.relid
    ),
    views AS (
        SELECT DISTINCT v.relid AS viewid, v.baseid
          FROM (WITH RECURSIVE dep(relid, baseid) AS (
                    SELECT rw.ev_class, d.refobjid
                      FROM pg_catalog.pg_depend d
                      JOIN pg_catalog.pg_rewrite rw
                        ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = rw.oid
                     WHERE d.refclassid = 'pg_catalog.pg_class'::regclass
                       AND d.refobjid IN (SELECT relid FROM tables) AND rw.ev_class <> d.refobjid
                  UNION
                    SELECT rw.ev_class, dep.baseid
                      FROM dep
                      JOIN pg_catalog.pg_depend d
                        ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = dep.relid
                       AND d.classid = 'pg_catalog.pg_rewrite'::regclass
                      JOIN pg_catalog.pg_rewrite rw ON rw.oid = d.objid
                     WHERE rw.ev_class <> dep.relid
                ) SELECT * FROM dep) v
    )
    SELECT t.relid::regclass, 'table', t.col, 'row level security is disabled'
      FROM tables t WHERE NOT t.relrowsecurity
    UNION ALL
    SELECT t.relid::regclass, 'table', t.col, 'row level security is not forced: the owner bypasses it'
      FROM tables t WHERE NOT t.relforcerowsecurity
    UNION ALL
    SELECT t.relid::regclass, 'table', t.col, 'no row level security policy'
      FROM tables t WHERE t.policies IS NULL
    UNION ALL
    -- registered tables: the policies against what enable_tenant_isolation created
    SELECT e.relid::regclass, 'table', e.col, pg_catalog.format('tenant isolation policy %s is missing', e.name)
      FROM expected e
     WHERE NOT EXISTS (SELECT 1 FROM actual a WHERE a.relid = e.relid AND a.name = e.name)
    UNION ALL
    SELECT e.relid::regclass, 'table', e.col,
           pg_catalog.format('tenant isolation policy %s differs from what enable_tenant_isolation created (%s): run enable_tenant_isolation again',
                             e.name,
                             pg_catalog.array_to_string(ARRAY[
                                 CASE WHEN e.pol->'command' IS DISTINCT FROM a.pol->'command' THEN 'command' END,
                                 CASE WHEN e.pol->'roles' IS DISTINCT FROM a.pol->'roles' THEN 'roles' END,
                                 CASE WHEN e.pol->'permissive' IS DISTINCT FROM a.pol->'permissive' THEN 'permissive or restrictive' END,
                                 CASE WHEN e.pol->'using' IS DISTINCT FROM a.pol->'using' THEN 'USING expression' END,
                                 CASE WHEN e.pol->'check' IS DISTINCT FROM a.pol->'check' THEN 'WITH CHECK expression' END],
                                 ', '))
      FROM expected e JOIN actual a ON a.relid = e.relid AND a.name = e.name
     WHERE e.pol IS DISTINCT FROM a.pol
    UNION ALL
    SELECT a.relid::regclass, 'table', a.col,
           CASE WHEN (a.pol->>'permissive')::boolean
                THEN pg_catalog.format('permissive policy %s was not created by enable_tenant_isolation: it is OR-ed with the isolation policies and widens what %s may read or write',
                                       a.name, pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.jsonb_array_elements_text(a.pol->'roles')), ', '))
                ELSE pg_catalog.format('restrictive policy %s was not created by enable_tenant_isolation: it can only narrow what the isolation policies allow; check it',
                                       a.name)
           END
      FROM actual a
     WHERE NOT EXISTS (SELECT 1 FROM expected e WHERE e.relid = a.relid AND e.name = a.name)
    UNION ALL
    SELECT g.relid::regclass, 'table', g.col,
           'tenant isolation was registered but its policies were not created: run enable_tenant_isolation again'
      FROM reg g WHERE g.policies IS NULL
    UNION ALL
    SELECT t.relid::regclass, 'table', t.col, 'the tenant column no longer exists'
      FROM tables t WHERE t.registered AND t.attnum IS NULL
    UNION ALL
    -- partitions and children of registered tables that are not isolated
    SELECT d.relid::regclass, CASE WHEN d.relkind = 'f' THEN 'foreign table' ELSE 'table' END, d.col,
           CASE WHEN d.relkind = 'f'
                THEN pg_catalog.format('foreign table is a %s of the isolated table %s: row level security cannot protect it when it is queried directly',
                                       CASE WHEN d.relispartition THEN 'partition' ELSE 'child' END, d.ancestor::regclass)
                ELSE pg_catalog.format('%s of the isolated table %s is not under tenant isolation: run enable_tenant_isolation on %s again',
                                       CASE WHEN d.relispartition THEN 'partition' ELSE 'inheritance child' END,
                                       d.ancestor::regclass, d.ancestor::regclass)
           END
      FROM descendants d
    UNION ALL
    -- tables outside the registry
    SELECT t.relid::regclass, 'table', t.col,
           pg_catalog.format('tenant isolation policy %s is missing', m.name)
      FROM tables t CROSS JOIN LATERAL pg_catalog.unnest(crm_security._isolation_policy_names()) AS m(name)
     WHERE NOT t.registered AND t.policies IS NOT NULL AND 'crm_tenant_select' = ANY (t.policies) AND NOT m.name = ANY (t.policies)
    UNION ALL
    SELECT t.relid::regclass, 'table', t.col,
           'policies named as the tenant isolation policies, but enable_tenant_isolation did not record them: check them by hand, or run enable_tenant_isolation again'
      FROM tables t WHERE NOT t.registered AND t.policies IS NOT NULL AND 'crm_tenant_select' = ANY (t.policies)
    UNION ALL
    SELECT t.relid::regclass, 'table', t.col,
           'policies are not the tenant isolation policies of enable_tenant_isolation: check them by hand'
      FROM tables t WHERE NOT t.registered AND t.policies IS NOT NULL AND NOT 'crm_tenant_select' = ANY (t.policies)
    UNION ALL
    SELECT t.relid::regclass, 'table', t.col,
           CASE WHEN t.bytewise
                THEN pg_catalog.format('tenant column has the nondeterministic collation "%s": the policies compare bytewise, but unique keys, foreign keys and joins on it treat tenants that differ only in case or accents as equal',
                                       t.ndcoll)
                ELSE pg_catalog.format('tenant column has the nondeterministic collation "%s": its policies compare tenants that differ only in case or accents as equal (''T1'' = ''t1''), so each reads the other''s rows; run enable_tenant_isolation again or use a deterministic collation',
                                       t.ndcoll)
           END
      FROM tables t WHERE t.ndcoll IS NOT NULL
    UNION ALL
    SELECT t.relid::regclass, 'table', t.col, 'tenant column allows NULL'
      FROM tables t WHERE NOT t.notnull
    UNION ALL
    SELECT t.relid::regclass, 'table', t.col, 'no index leads with the tenant column'
      FROM tables t
     WHERE t.attnum IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                        WHERE i.indrelid = t.relid AND i.indkey[0] = t.attnum)
    UNION ALL
    SELECT t.relid::regclass, 'table', t.col,
           pg_catalog.format('TRUNCATE is granted to %s: TRUNCATE ignores row level security',
                             CASE WHEN acl.grantee = 0 THEN 'PUBLIC'
                                  ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(acl.grantee)) END)
      FROM tables t CROSS JOIN LATERAL pg_catalog.aclexplode(t.relacl) AS acl
     WHERE acl.privilege_type = 'TRUNCATE' AND acl.grantee <> t.relowner
    UNION ALL
    SELECT v.viewid::regclass, 'view', t.col,
           pg_catalog.format('view over %s without security_invoker: it reads with the rights of its owner %s',
                             t.relid::regclass, pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(c.relowner)))
      FROM views v JOIN tables t ON t.relid = v.baseid
      JOIN pg_catalog.pg_class c ON c.oid = v.viewid
     WHERE c.relkind = 'v'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(c.reloptions) AS o
                        WHERE pg_catalog.lower(o) IN ('security_invoker=true', 'security_invoker=on',
                                                      'security_invoker=1', 'security_invoker=yes',
                                                      'security_invoker=t', 'security_invoker=y'))
    UNION ALL
    SELECT v.viewid::regclass, 'materialized view', t.col,
           pg_catalog.format('materialized view over %s: it stores rows of every tenant without row level security',
                             t.relid::regclass)
      FROM views v JOIN tables t ON t.relid = v.baseid
      JOIN pg_catalog.pg_class c ON c.oid = v.viewid
     WHERE c.relkind = 'm'
    UNION ALL
    SELECT * FROM crm_security._isolation_shard_report()  -- Citus shards (49_citus_shards.sql)
    ORDER BY 1, 2, 4
$$;

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
