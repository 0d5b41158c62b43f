\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- Tenant isolation (API.md section 4): row level security policies that compare the tenant
-- column with the context's tenant, typed like the column so that the tenant index is used.

CREATE FUNCTION crm_security.tenant_id_uuid()
RETURNS uuid
AS 'MODULE_PATHNAME', 'crm_tenant_id_uuid'
LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm_security.tenant_id_uuid() IS
'the context''s tenant as uuid; NULL without a context or when the claim is not a uuid (8-4-4-4-12 or 32 hex digits)';

CREATE FUNCTION crm_security.tenant_id_bigint()
RETURNS bigint
AS 'MODULE_PATHNAME', 'crm_tenant_id_bigint'
LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm_security.tenant_id_bigint() IS
'the context''s tenant as bigint; NULL without a context or when the claim is not a decimal bigint';

CREATE FUNCTION crm_security.tenant_id_text()
RETURNS text
AS 'MODULE_PATHNAME', 'crm_tenant_id_text'
LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm_security.tenant_id_text() IS
'the context''s tenant as text for text columns; NULL without a context or when the claim is empty';

CREATE FUNCTION crm_security.tenant_id_int()
RETURNS integer
AS 'MODULE_PATHNAME', 'crm_tenant_id_int'
LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm_security.tenant_id_int() IS
'the context''s tenant as integer; NULL without a context or when the claim is not a decimal integer';

-- The policies enable_tenant_isolation creates, by name.
CREATE FUNCTION crm_security._isolation_policy_names()
RETURNS name[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '{crm_tenant_select,crm_tenant_insert,crm_tenant_update,crm_tenant_delete,crm_tenant_reviewer_no_insert,crm_tenant_reviewer_no_update,crm_tenant_reviewer_no_delete}'::name[]
$$;
COMMENT ON FUNCTION crm_security._isolation_policy_names() IS
'internal: names of the policies created by enable_tenant_isolation';

-- Policies, for a tenant column compared with `val` and the smallest value `floor` of its type:
--   crm_tenant_select  reads:   col = val OR col >= (floor if role is reviewer or superadmin)
--   crm_tenant_insert  inserts: col = val OR role is superadmin
--   crm_tenant_update  updates: USING as select but superadmin only, WITH CHECK as insert
--   crm_tenant_delete  deletes: USING as update
--   crm_tenant_reviewer_no_*   restrictive: the reviewer role writes nothing
-- The second arm of the USING clauses is written as a comparison with the column (and not
-- as "app_role() = 'reviewer'") so that both arms are index conditions: the planner can
-- then use a BitmapOr of two index scans; an arm without the column would force a
-- sequential scan of every tenant's rows.  For everyone but reviewers and superadmins it
-- compares with NULL, which matches nothing and costs nothing.
CREATE FUNCTION crm_security.enable_tenant_isolation(tbl regclass, tenant_column name DEFAULT 'tenant_id',
                                                     cross_tenant boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind "char";
    typ oid;
    coll oid;
    val text;
    eq text;
    floor text;
    col text;
    part regclass;
    reader text;
    writer text;
    checker text;
    pol name;
BEGIN
    IF tbl IS NULL OR tenant_column IS NULL OR cross_tenant IS NULL THEN
        RAISE EXCEPTION 'table, tenant column and cross_tenant must not be NULL' USING ERRCODE = '22023';
    END IF;
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    IF kind IS NULL OR kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '22023';
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
            floor := '''00000000-0000-0000-0000-000000000000''::uuid';
        WHEN 'pg_catalog.int8'::regtype THEN
            val := 'crm_security.tenant_id_bigint()';
            floor := '(-9223372036854775808)::bigint';
        WHEN 'pg_catalog.int4'::regtype THEN
            val := 'crm_security.tenant_id_int()';
            floor := '(-2147483648)::integer';
        WHEN 'pg_catalog.int2'::regtype THEN
            val := 'crm_security.tenant_id_int()';
            floor := '(-32768)::smallint';
        WHEN 'pg_catalog.text'::regtype, 'pg_catalog.varchar'::regtype THEN
            val := 'crm_security.tenant_id_text()';
            floor := '''''::text';
        ELSE
            RAISE EXCEPTION 'unsupported tenant column type %', pg_catalog.format_type(typ, NULL)
                USING ERRCODE = '22023',
                      HINT = 'Tenant columns are uuid, bigint, integer, smallint, text or varchar.';
    END CASE;
    col := pg_catalog.quote_ident(tenant_column);
    -- Equality under a nondeterministic collation (case- or accent-insensitive ICU) holds
    -- for tenants that differ ('T1' = 't1'): the tenant is then also compared bytewise.  The
    -- comparison in the column's collation stays, so that the tenant index is still used;
    -- the bytewise one filters what it finds.  Deterministic collations compare bytewise
    -- already.  (A policy keeps the column's type and collation from being altered.)
    IF coll <> 0 AND NOT (SELECT c.collisdeterministic FROM pg_catalog.pg_collation c WHERE c.oid = coll) THEN
        eq := pg_catalog.format('(%s = %s AND (%s)::text COLLATE pg_catalog."C" = %s)', col, val, col, val);
    ELSE
        eq := pg_catalog.format('%s = %s', col, val);
    END IF;
    IF cross_tenant THEN
        reader := pg_catalog.format('%s OR %s >= CASE WHEN crm_security.app_role() = ANY (''{reviewer,superadmin}''::text[]) THEN %s END',
                                    eq, col, floor);
        writer := pg_catalog.format('%s OR %s >= CASE WHEN crm_security.app_role() = ''superadmin'' THEN %s END',
                                    eq, col, floor);
        checker := pg_catalog.format('%s OR crm_security.app_role() = ''superadmin''', eq);
    ELSE
        -- One equality and nothing else: the plans of a table without RLS and an explicit
        -- WHERE, ordered index scans included.
        reader := eq;
        writer := reader;
        checker := reader;
    END IF;

    -- A partition queried directly is not protected by its parent's policies.
    FOR part IN SELECT tbl
                 UNION
                SELECT t.relid FROM pg_catalog.pg_partition_tree(tbl) t
                  JOIN pg_catalog.pg_class c ON c.oid = t.relid
                 WHERE c.relkind IN ('r', 'p') LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', part);
        EXECUTE pg_catalog.format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', part);
        FOR pol IN SELECT p.polname FROM pg_catalog.pg_policy p
                    WHERE p.polrelid = part AND p.polname = ANY (crm_security._isolation_policy_names()) LOOP
            EXECUTE pg_catalog.format('DROP POLICY %I ON %s', pol, part);
        END LOOP;
        EXECUTE pg_catalog.format('CREATE POLICY crm_tenant_select ON %s AS PERMISSIVE FOR SELECT TO PUBLIC USING (%s)',
                                  part, reader);
        EXECUTE pg_catalog.format('CREATE POLICY crm_tenant_insert ON %s AS PERMISSIVE FOR INSERT TO PUBLIC WITH CHECK (%s)',
                                  part, checker);
        EXECUTE pg_catalog.format('CREATE POLICY crm_tenant_update ON %s AS PERMISSIVE FOR UPDATE TO PUBLIC USING (%s) WITH CHECK (%s)',
                                  part, writer, checker);
        EXECUTE pg_catalog.format('CREATE POLICY crm_tenant_delete ON %s AS PERMISSIVE FOR DELETE TO PUBLIC USING (%s)',
                                  part, writer);
        EXECUTE pg_catalog.format('CREATE POLICY crm_tenant_reviewer_no_insert ON %s AS RESTRICTIVE FOR INSERT TO PUBLIC WITH CHECK (crm_security.app_role() IS DISTINCT FROM ''reviewer'')',
                                  part);
        EXECUTE pg_catalog.format('CREATE POLICY crm_tenant_reviewer_no_update ON %s AS RESTRICTIVE FOR UPDATE TO PUBLIC USING (crm_security.app_role() IS DISTINCT FROM ''reviewer'')',
                                  part);
        EXECUTE pg_catalog.format('CREATE POLICY crm_tenant_reviewer_no_delete ON %s AS RESTRICTIVE FOR DELETE TO PUBLIC USING (crm_security.app_role() IS DISTINCT FROM ''reviewer'')',
                                  part);
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_security.enable_tenant_isolation(regclass, name, boolean) IS
'enable and force row level security on a table (and its partitions) with policies confining every context to its tenant; with cross_tenant, reviewer reads all and superadmin does all; idempotent';

CREATE FUNCTION crm_security.disable_tenant_isolation(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part regclass;
    pol name;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = '22023';
    END IF;
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = tbl) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '22023';
    END IF;
    FOR part IN SELECT tbl
                 UNION
                SELECT t.relid FROM pg_catalog.pg_partition_tree(tbl) t
                  JOIN pg_catalog.pg_class c ON c.oid = t.relid
                 WHERE c.relkind IN ('r', 'p') LOOP
        FOR pol IN SELECT p.polname FROM pg_catalog.pg_policy p
                    WHERE p.polrelid = part AND p.polname = ANY (crm_security._isolation_policy_names()) LOOP
            EXECUTE pg_catalog.format('DROP POLICY %I ON %s', pol, part);
        END LOOP;
        -- Other policies keep row level security on; the table stays as closed as they make it.
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = part) THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', part);
            EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', part);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_security.disable_tenant_isolation(regclass) IS
'drop the tenant isolation policies of a table (and its partitions); row level security is turned off only when no other policy remains';

CREATE FUNCTION crm_security.isolation_report(tenant_columns name[] DEFAULT '{tenant_id}')
RETURNS TABLE (relation regclass, kind text, tenant_column name, issue text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ours AS (
        -- the column an isolation policy compares (policies depend on the columns they use)
        SELECT DISTINCT ON (pol.polrelid) pol.polrelid AS relid, a.attname AS col
          FROM pg_catalog.pg_policy pol
          JOIN pg_catalog.pg_depend d
            ON d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = pol.oid
           AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
          JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE pol.polname = 'crm_tenant_select'
    ),
    cand AS (
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
           -- the extension's own tables are protected by privileges, not by RLS
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                            WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid
                              AND e.deptype = 'e')
         ORDER BY c.oid, a.attnum
    ),
    tables AS (
        SELECT k.relid, k.col, c.relrowsecurity, c.relforcerowsecurity, c.relowner, c.relacl,
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
    SELECT t.relid::regclass, 'table', t.col,
           pg_catalog.format('tenant isolation policy %s is missing', m.name)
      FROM tables t CROSS JOIN LATERAL pg_catalog.unnest(crm_security._isolation_policy_names()) AS m(name)
     WHERE t.policies IS NOT NULL AND 'crm_tenant_select' = ANY (t.policies) AND NOT m.name = ANY (t.policies)
    UNION ALL
    SELECT t.relid::regclass, 'table', t.col,
           'policies are not the tenant isolation policies of enable_tenant_isolation: check them by hand'
      FROM tables t WHERE t.policies IS NOT NULL AND NOT 'crm_tenant_select' = ANY (t.policies)
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
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
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
    ORDER BY 1, 2, 4
$$;
COMMENT ON FUNCTION crm_security.isolation_report(name[]) IS
'every table with a tenant column (or isolation policies) and what its protection lacks, and every view or materialized view over one that bypasses it; empty when all is well';
