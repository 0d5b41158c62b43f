-- crm_security 0.1.0 -> 0.2.0, branch pol15: isolation policies without RESTRICTIVE ones
-- (API.md section 4, DESIGN.md "Policies that mean the same on every node").
--
-- * Cross-tenant access needs a database role (crm_security_reviewer, crm_security_superadmin,
--   created here when absent) and the context's role together, through policies TO those
--   roles; members' policies are the tenant equality alone.
-- * The extension's own isolated tables (tenant_members and the record access tables) are
--   moved to the new form here; tenant_members' restrictive policy crm_members_own_or_admin
--   becomes a condition inside its permissive policies.
-- * Tables of the application isolated by 0.1.0 are NOT changed by the upgrade: moving them
--   takes cross-tenant access away from tokens whose role claim says reviewer or superadmin
--   until the administrator grants the new database roles, which is the administrator's
--   decision.  isolation_report() names each of them, and enable_tenant_isolation() on a
--   table moves it (a WARNING below says how many there are).

-- The roles (cluster-wide: left as they are when they exist).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'crm_security_reviewer') THEN
        BEGIN
            CREATE ROLE crm_security_reviewer NOLOGIN;
            COMMENT ON ROLE crm_security_reviewer IS
                'crm_security: a connection in this role whose claim context has app_role() = ''reviewer'' reads every tenant of tables under tenant isolation, and writes none';
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by another database's CREATE EXTENSION
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'crm_security_superadmin') THEN
        BEGIN
            CREATE ROLE crm_security_superadmin NOLOGIN;
            COMMENT ON ROLE crm_security_superadmin IS
                'crm_security: a connection in this role whose claim context has app_role() = ''superadmin'' reads and writes every tenant of tables under tenant isolation';
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION crm_security._isolation_policy_names()
RETURNS name[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '{crm_tenant_select,crm_tenant_insert,crm_tenant_update,crm_tenant_delete,crm_tenant_reviewer_select,crm_tenant_superadmin}'::name[]
$$;
COMMENT ON FUNCTION crm_security._isolation_policy_names() IS
'internal: names of the policies created by enable_tenant_isolation';

CREATE OR REPLACE FUNCTION crm_security._isolation_legacy_policy_names()
RETURNS name[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '{crm_tenant_reviewer_no_insert,crm_tenant_reviewer_no_update,crm_tenant_reviewer_no_delete}'::name[]
$$;
COMMENT ON FUNCTION crm_security._isolation_legacy_policy_names() IS
'internal: names of the restrictive policies that enable_tenant_isolation created in crm_security 0.1.0 and drops now';

CREATE OR REPLACE FUNCTION crm_security._isolation_row_condition(tbl regclass)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN tbl::oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('crm_security.tenant_members')::oid
                THEN '(user_id OPERATOR(pg_catalog.=) crm_security.user_id() OR crm_security.can(''crm:users:read''))'
           END
$$;
COMMENT ON FUNCTION crm_security._isolation_row_condition(regclass) IS
'internal: the read condition that the isolation policies of one of the extension''s own tables AND with the tenant (NULL: none)';

CREATE OR REPLACE FUNCTION crm_security._isolation_statements(tbl regclass, tenant_column name, cross_tenant boolean)
RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ oid;
    coll oid;
    val text;
    wval text;
    nondet boolean;
    col text;
    reader text;
    writer text;
    rowcond text;
    narrow text := '';
    stmts text[];
    eq_read text;
    eq_write text;
    alt_read text;
    alt_write text;
    rec_read text[];
    rec_write text[];
BEGIN
    IF tbl IS NULL OR tenant_column IS NULL OR cross_tenant IS NULL THEN
        RAISE EXCEPTION 'table, tenant column and cross_tenant must not be NULL' USING ERRCODE = '22023';
    END IF;
    SELECT a.atttypid, a.attcollation INTO typ, coll FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = tbl AND a.attname = tenant_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION 'column "%" of "%" does not exist', tenant_column, tbl USING ERRCODE = '42703';
    END IF;
    -- A domain compares as its base type.
    WHILE (SELECT t.typtype FROM pg_catalog.pg_type t WHERE t.oid = typ) = 'd' LOOP
        typ := (SELECT t.typbasetype FROM pg_catalog.pg_type t WHERE t.oid = typ);
    END LOOP;
    CASE typ
        WHEN 'pg_catalog.uuid'::regtype THEN
            val := 'crm_security.tenant_id_uuid()';
        WHEN 'pg_catalog.int8'::regtype THEN
            val := 'crm_security.tenant_id_bigint()';
        WHEN 'pg_catalog.int4'::regtype, 'pg_catalog.int2'::regtype THEN
            val := 'crm_security.tenant_id_int()';
        WHEN 'pg_catalog.text'::regtype, 'pg_catalog.varchar'::regtype THEN
            val := 'crm_security.tenant_id_text()';
        ELSE
            RAISE EXCEPTION 'unsupported tenant column type %', pg_catalog.format_type(typ, NULL)
                USING ERRCODE = '22023',
                      HINT = 'Tenant columns are uuid, bigint, integer, smallint, text or varchar.';
    END CASE;
    IF cross_tenant AND (NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = 'crm_security_reviewer')
                         OR NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = 'crm_security_superadmin')) THEN
        RAISE EXCEPTION 'role "crm_security_reviewer" or "crm_security_superadmin" does not exist'
            USING ERRCODE = '42704',
                  DETAIL = 'The cross-tenant policies of enable_tenant_isolation are TO these roles; CREATE EXTENSION creates them.',
                  HINT = 'Create them with CREATE ROLE ... NOLOGIN, or pass cross_tenant => false.';
    END IF;
    -- A reviewer's context writes nothing: its value is NULL in the write policies.
    wval := pg_catalog.format('CASE WHEN crm_security.app_role() IS DISTINCT FROM %L THEN %s END', 'reviewer', val);
    col := pg_catalog.quote_ident(tenant_column);
    -- Equality under a nondeterministic collation (case- or accent-insensitive ICU) holds
    -- for tenants that differ ('T1' = 't1'): the tenant is then also compared bytewise.  The
    -- comparison in the column's collation stays, so that the tenant index is still used;
    -- the bytewise one filters what it finds.  Deterministic collations compare bytewise
    -- already.  (A policy keeps the column's type and collation from being altered.)
    nondet := coll <> 0 AND NOT (SELECT c.collisdeterministic FROM pg_catalog.pg_collation c WHERE c.oid = coll);
    IF nondet THEN
        eq_read := pg_catalog.format('(%s = %s AND (%s)::text COLLATE pg_catalog."C" = %s)', col, val, col, val);
        eq_write := pg_catalog.format('(%s = %s AND (%s)::text COLLATE pg_catalog."C" = %s)', col, wval, col, wval);
        alt_read := pg_catalog.format('(%s = COALESCE(%s, %s) AND (%s)::text COLLATE pg_catalog."C" = %s)', col, val, val, col, val);
        alt_write := pg_catalog.format('(%s = COALESCE(%s, %s) AND (%s)::text COLLATE pg_catalog."C" = %s)', col, wval, wval, col, wval);
    ELSE
        eq_read := pg_catalog.format('%s = %s', col, val);
        eq_write := pg_catalog.format('%s = %s', col, wval);
        alt_read := pg_catalog.format('%s = COALESCE(%s, %s)', col, val, val);
        alt_write := pg_catalog.format('%s = COALESCE(%s, %s)', col, wval, wval);
    END IF;
    reader := eq_read;
    writer := eq_write;
    -- Record-level access (sql/58_record_access.sql, enable_record_access): its conditions
    -- are AND-ed with the tenant equality inside these permissive policies.  Each arm is
    -- AND-ed with the equality and the results OR-ed, so that every arm can be an index
    -- condition together with the tenant.  The last arm compares the tenant with
    -- COALESCE(val, val), the same value written differently: were the equality the same
    -- expression in every arm, the planner would factor it out of the OR
    -- (tenant AND (arm OR arm ...)) and then check the arms again on every row the index
    -- scans return, comparing each owner and key with whole arrays.
    IF pg_catalog.to_regprocedure('crm_security._record_access_conditions(pg_catalog.regclass)') IS NOT NULL THEN
        EXECUTE 'SELECT readers, writers FROM crm_security._record_access_conditions($1)' INTO rec_read, rec_write USING tbl;
        IF rec_read IS NOT NULL THEN
            reader := (SELECT pg_catalog.string_agg(pg_catalog.format('(%s AND %s)',
                                                                      CASE WHEN n = pg_catalog.cardinality(rec_read) THEN alt_read ELSE eq_read END, a),
                                                    ' OR ' ORDER BY n)
                         FROM pg_catalog.unnest(rec_read) WITH ORDINALITY AS x(a, n));
            writer := (SELECT pg_catalog.string_agg(pg_catalog.format('(%s AND %s)',
                                                                      CASE WHEN n = pg_catalog.cardinality(rec_write) THEN alt_write ELSE eq_write END, a),
                                                    ' OR ' ORDER BY n)
                         FROM pg_catalog.unnest(rec_write) WITH ORDINALITY AS x(a, n));
        END IF;
    END IF;
    -- The extension's own tables may narrow what is read (tenant_members): AND-ed into
    -- every USING clause, the cross-tenant ones included.
    rowcond := crm_security._isolation_row_condition(tbl);
    IF rowcond IS NOT NULL THEN
        narrow := ' AND ' || rowcond;
    END IF;

    stmts := ARRAY[pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl),
                   pg_catalog.format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl)];
    -- The policies of this form, and those of the form of 0.1.0, which this one replaces.
    stmts := stmts || ARRAY(SELECT pg_catalog.format('DROP POLICY %I ON %s', p.polname, tbl)
                              FROM pg_catalog.pg_policy p
                             WHERE p.polrelid = tbl
                               AND p.polname = ANY (crm_security._isolation_policy_names()
                                                    || crm_security._isolation_legacy_policy_names())
                             ORDER BY p.polname);
    stmts := stmts || ARRAY[
        pg_catalog.format('CREATE POLICY crm_tenant_select ON %s AS PERMISSIVE FOR SELECT TO PUBLIC USING ((%s)%s)',
                          tbl, reader, narrow),
        pg_catalog.format('CREATE POLICY crm_tenant_insert ON %s AS PERMISSIVE FOR INSERT TO PUBLIC WITH CHECK (%s)',
                          tbl, writer),
        pg_catalog.format('CREATE POLICY crm_tenant_update ON %s AS PERMISSIVE FOR UPDATE TO PUBLIC USING ((%s)%s) WITH CHECK (%s)',
                          tbl, writer, narrow, writer),
        pg_catalog.format('CREATE POLICY crm_tenant_delete ON %s AS PERMISSIVE FOR DELETE TO PUBLIC USING ((%s)%s)',
                          tbl, writer, narrow)];
    IF cross_tenant THEN
        stmts := stmts || ARRAY[
            pg_catalog.format('CREATE POLICY crm_tenant_reviewer_select ON %s AS PERMISSIVE FOR SELECT TO crm_security_reviewer USING (crm_security.app_role() = %L%s)',
                              tbl, 'reviewer', narrow),
            pg_catalog.format('CREATE POLICY crm_tenant_superadmin ON %s AS PERMISSIVE FOR ALL TO crm_security_superadmin USING (crm_security.app_role() = %L%s) WITH CHECK (crm_security.app_role() = %L)',
                              tbl, 'superadmin', narrow, 'superadmin')];
    END IF;
    RETURN stmts;
END
$$;
COMMENT ON FUNCTION crm_security._isolation_statements(regclass, name, boolean) IS
'internal: the statements that put one table under tenant isolation (row level security enabled and forced, the isolation policies replaced)';

CREATE OR REPLACE FUNCTION crm_security.enable_tenant_isolation(tbl regclass, tenant_column name DEFAULT 'tenant_id',
                                                     cross_tenant boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind "char";
    anc record;
    part record;
BEGIN
    IF tbl IS NULL OR tenant_column IS NULL OR cross_tenant IS NULL THEN
        RAISE EXCEPTION 'table, tenant column and cross_tenant must not be NULL' USING ERRCODE = '22023';
    END IF;
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    IF kind IS NULL OR kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '22023';
    END IF;
    -- Checks the column and its type before anything changes.
    PERFORM crm_security._isolation_statements(tbl, tenant_column, cross_tenant);
    -- A partition or child of an isolated table is isolated as its parent is.
    SELECT * INTO anc FROM crm_security._isolation_ancestors(tbl) a LIMIT 1;
    IF FOUND AND (anc.tenant_column <> tenant_column OR anc.cross_tenant <> cross_tenant) THEN
        RAISE EXCEPTION '"%" is a partition or child of "%", isolated with other settings', tbl, anc.relid
            USING ERRCODE = '42P16',
                  DETAIL = pg_catalog.format('"%s" is isolated by column "%s" with cross_tenant %s.',
                                             anc.relid, anc.tenant_column, anc.cross_tenant),
                  HINT = 'Call enable_tenant_isolation on the isolated parent; its partitions and children follow.';
    END IF;
    -- Row level security cannot protect a foreign table queried directly.
    FOR part IN SELECT t.relid FROM crm_security._isolation_tree(tbl) t WHERE t.relkind = 'f' LOOP
        RAISE EXCEPTION 'foreign table "%" cannot be put under tenant isolation', part.relid
            USING ERRCODE = '42P16',
                  DETAIL = pg_catalog.format('It is a partition or child of "%s"; row level security does not apply to foreign tables.', tbl),
                  HINT = 'Detach it, or protect it on the foreign server.';
    END LOOP;
    -- The table and every partition and child: registered first, so that the event trigger
    -- finds them isolated as they should be while their policies are made.
    FOR part IN SELECT t.relid FROM crm_security._isolation_tree(tbl) t LOOP
        PERFORM crm_security._isolation_register(part.relid, tenant_column, cross_tenant);
    END LOOP;
    FOR part IN SELECT t.relid FROM crm_security._isolation_tree(tbl) t LOOP
        PERFORM crm_security._isolation_apply(part.relid);
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_security.enable_tenant_isolation(regclass, name, boolean) IS
'enable and force row level security on a table (and its partitions and inheritance children) with permissive policies confining every context to its tenant; with cross_tenant, connections in crm_security_reviewer whose context''s role is reviewer read every tenant, and in crm_security_superadmin with role superadmin do everything; idempotent, and moves a table isolated by 0.1.0 to this form';

CREATE OR REPLACE FUNCTION crm_security.disable_tenant_isolation(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part record;
    anc record;
    pol name;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = '22023';
    END IF;
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = tbl) IS DISTINCT FROM 'r'
       AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = tbl) IS DISTINCT FROM 'p' THEN
        RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '22023';
    END IF;
    SELECT * INTO anc FROM crm_security._isolation_ancestors(tbl) a LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot disable tenant isolation of "%": it is a partition or child of the isolated table "%"',
                        tbl, anc.relid
            USING ERRCODE = '42P16',
                  HINT = 'Detach it first, or disable the isolation of the parent.';
    END IF;
    FOR part IN SELECT t.relid FROM crm_security._isolation_tree(tbl) t WHERE t.relkind IN ('r', 'p') LOOP
        FOR pol IN SELECT p.polname FROM pg_catalog.pg_policy p
                    WHERE p.polrelid = part.relid
                      AND p.polname = ANY (crm_security._isolation_policy_names()
                                           || crm_security._isolation_legacy_policy_names()) LOOP
            EXECUTE pg_catalog.format('DROP POLICY %I ON %s', pol, part.relid);
        END LOOP;
        -- Other policies keep row level security on; the table stays as closed as they make it.
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = part.relid) THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', part.relid);
            EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', part.relid);
        END IF;
    END LOOP;
    -- Forgotten last: until then the event trigger sees the tables as isolated and leaves them.
    FOR part IN SELECT t.relid FROM crm_security._isolation_tree(tbl) t LOOP
        PERFORM crm_security._isolation_unregister(part.relid);
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_security.disable_tenant_isolation(regclass) IS
'drop the tenant isolation policies of a table (and its partitions and inheritance children); row level security is turned off only when no other policy remains';

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
               -- whether every permissive policy that compares the tenant (there is one at
               -- least; the cross-tenant ones compare the role) also compares bytewise
               (SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0
                       AND pg_catalog.bool_and(
                           (p.polqual IS NULL
                            OR pg_catalog.strpos(pg_catalog.pg_get_expr(p.polqual, p.polrelid), 'COLLATE "C"') OPERATOR(pg_catalog.>) 0)
                           AND (p.polwithcheck IS NULL
                            OR pg_catalog.strpos(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), 'COLLATE "C"') OPERATOR(pg_catalog.>) 0))
                  FROM pg_catalog.pg_policy p
                 WHERE p.polrelid = k.relid AND p.polpermissive
                   AND NOT (k.registered AND p.polname = ANY ('{crm_tenant_reviewer_select,crm_tenant_superadmin}'::name[]))) AS bytewise
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
           pg_catalog.format('permissive policy %s was not created by enable_tenant_isolation: it is OR-ed with the isolation policies and widens what %s may read or write',
                             a.name, pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.jsonb_array_elements_text(a.pol->'roles')), ', '))
      FROM actual a
     WHERE NOT EXISTS (SELECT 1 FROM expected e WHERE e.relid = a.relid AND e.name = a.name)
       AND (a.pol->>'permissive')::boolean
    UNION ALL
    -- every restrictive policy, the extension's own of 0.1.0 included: Citus makes it
    -- permissive on the shards
    SELECT a.relid::regclass, 'table', a.col,
           pg_catalog.format('restrictive policy %s: Citus propagates restrictive policies to its shards as permissive, where it widens what the isolation policies allow instead of narrowing it; compose its condition into permissive policies',
                             a.name)
      FROM actual a
     WHERE NOT (a.pol->>'permissive')::boolean
    UNION ALL
    -- tables still isolated in the form of 0.1.0
    SELECT g.relid::regclass, 'table', g.col,
           'tenant isolation is in the form of crm_security 0.1.0 (cross-tenant access by a token''s role claim alone, and restrictive policies, which Citus makes permissive): run enable_tenant_isolation again to move it to the current form'
      FROM reg g
     WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                    WHERE p.polrelid = g.relid AND p.polname = ANY (crm_security._isolation_legacy_policy_names()))
        OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(g.policies) x
                    WHERE (x.value->>'name')::name = ANY (crm_security._isolation_legacy_policy_names()))
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
      FROM tables t CROSS JOIN LATERAL pg_catalog.unnest('{crm_tenant_select,crm_tenant_insert,crm_tenant_update,crm_tenant_delete}'::name[]) AS m(name)
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
COMMENT ON FUNCTION crm_security.isolation_report(name[]) IS
'every table under tenant isolation, every partition or child of one, and every table with a tenant column (or isolation policies), with what its protection lacks (policies added, missing or changed since enable_tenant_isolation included, restrictive policies, and isolation still in the form of 0.1.0), and every view or materialized view over one that bypasses it; empty when all is well';

-- tenant_members: the restrictive policy goes, its condition is inside the isolation policies.
DROP POLICY IF EXISTS crm_members_own_or_admin ON crm_security.tenant_members;

-- The extension's own isolated tables move to the new form (policies made again and recorded).
SELECT crm_security._isolation_apply(r.relation)
  FROM crm_security.isolated_tables r
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.relation::pg_catalog.oid
 WHERE r.system
 ORDER BY r.relation::pg_catalog.oid;

-- The application's tables are left in the form of 0.1.0: say so.
DO $$
DECLARE
    n bigint;
BEGIN
    SELECT pg_catalog.count(*) INTO n
      FROM crm_security.isolated_tables r
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.relation::pg_catalog.oid
     WHERE NOT r.system
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                    WHERE p.polrelid OPERATOR(pg_catalog.=) r.relation::pg_catalog.oid
                      AND p.polname OPERATOR(pg_catalog.=) ANY (crm_security._isolation_legacy_policy_names()));
    IF n OPERATOR(pg_catalog.>) 0 THEN
        RAISE WARNING '% tables are still isolated in the form of crm_security 0.1.0', n
            USING DETAIL = 'Their cross-tenant policies follow the token''s role claim alone, and their restrictive policies are made permissive by Citus.',
                  HINT = 'Grant crm_security_reviewer and crm_security_superadmin to the roles of cross-tenant staff, then run enable_tenant_isolation on each table that isolation_report() names.';
    END IF;
END
$$;
