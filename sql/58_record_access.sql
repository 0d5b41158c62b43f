\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- Record-level access inside a tenant (API.md section 7, docs/record-access.md): the
-- manager hierarchy, teams, sharing rules, shared records and companies, and the
-- conditions enable_record_access AND-s into the tenant isolation policies of a table.
-- Every table is keyed by its tenant and is itself under tenant isolation; they are
-- written only by the SECURITY DEFINER management functions below (no privileges for
-- PUBLIC) and read by them and by the C functions of src/record_access.c.

CREATE TABLE crm_security.reports_to (
    tenant_id  text NOT NULL,
    user_id    text NOT NULL,
    manager_id text NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT reports_to_not_self CHECK (user_id <> manager_id)
);
CREATE INDEX reports_to_manager ON crm_security.reports_to (tenant_id, manager_id);
COMMENT ON TABLE crm_security.reports_to IS
'the manager hierarchy of each tenant: user_id reports to manager_id (one manager per user, no cycles)';

CREATE TABLE crm_security.teams (
    tenant_id text NOT NULL,
    team      text NOT NULL,
    PRIMARY KEY (tenant_id, team)
);
COMMENT ON TABLE crm_security.teams IS
'the teams of each tenant (created by add_team_member)';

CREATE TABLE crm_security.team_members (
    tenant_id text NOT NULL,
    team      text NOT NULL,
    user_id   text NOT NULL,
    PRIMARY KEY (tenant_id, team, user_id),
    FOREIGN KEY (tenant_id, team) REFERENCES crm_security.teams ON DELETE CASCADE
);
CREATE INDEX team_members_user ON crm_security.team_members (tenant_id, user_id);
COMMENT ON TABLE crm_security.team_members IS
'members of the teams of each tenant';

CREATE TABLE crm_security.sharing_rules (
    tenant_id  text NOT NULL,
    owner_team text NOT NULL,
    with_team  text NOT NULL,
    access     text NOT NULL CHECK (access IN ('read', 'write')),
    PRIMARY KEY (tenant_id, owner_team, with_team),
    FOREIGN KEY (tenant_id, owner_team) REFERENCES crm_security.teams ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, with_team) REFERENCES crm_security.teams ON DELETE CASCADE
);
COMMENT ON TABLE crm_security.sharing_rules IS
'the records owned by the members of owner_team are shared with the members of with_team, for reading or writing';

CREATE TABLE crm_security.shared_records (
    tenant_id  text NOT NULL,
    relation   regclass NOT NULL,
    record_id  text NOT NULL,
    with_user  text,
    with_team  text,
    access     text NOT NULL CHECK (access IN ('read', 'write')),
    expires_at timestamptz,
    CONSTRAINT shared_records_one_grantee CHECK ((with_user IS NULL) <> (with_team IS NULL)),
    FOREIGN KEY (tenant_id, with_team) REFERENCES crm_security.teams ON DELETE CASCADE
);
CREATE UNIQUE INDEX shared_records_user ON crm_security.shared_records (tenant_id, with_user, relation, record_id)
    WHERE with_user IS NOT NULL;
CREATE UNIQUE INDEX shared_records_team ON crm_security.shared_records (tenant_id, with_team, relation, record_id)
    WHERE with_team IS NOT NULL;
COMMENT ON TABLE crm_security.shared_records IS
'one record (its primary key as text) of one table shared with one user or team of a tenant, for reading or writing, until expires_at';

CREATE TABLE crm_security.user_companies (
    tenant_id text NOT NULL,
    user_id   text NOT NULL,
    company   text NOT NULL,
    PRIMARY KEY (tenant_id, user_id, company)
);
COMMENT ON TABLE crm_security.user_companies IS
'the companies each user of a tenant may act for';

-- The tables under record access: owner and company columns, the primary key column that
-- shares name, and the permission whose holders bypass the record rules.
CREATE TABLE crm_security.record_access_tables (
    relation       regclass PRIMARY KEY,
    owner_column   name NOT NULL,
    company_column name,
    id_column      name,
    permission     text NOT NULL
);
COMMENT ON TABLE crm_security.record_access_tables IS
'tables under record access (enable_record_access): owner, company and primary key columns, and the permission that bypasses the record rules';

REVOKE ALL ON crm_security.reports_to, crm_security.teams, crm_security.team_members,
              crm_security.sharing_rules, crm_security.shared_records, crm_security.user_companies
    FROM PUBLIC;
REVOKE ALL ON crm_security.record_access_tables FROM PUBLIC;
GRANT SELECT ON crm_security.record_access_tables TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_security.reports_to', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.teams', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.team_members', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.sharing_rules', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.shared_records', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.user_companies', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.record_access_tables', '');

-- Cached per transaction in C; every change drops the caches (in other sessions a new
-- transaction computes them again anyway).
CREATE FUNCTION crm_security._record_tables_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'crm_record_tables_changed'
LANGUAGE C;
COMMENT ON FUNCTION crm_security._record_tables_changed() IS
'internal: drops the cached record access sets of this session after a change of the record access tables';
REVOKE ALL ON FUNCTION crm_security._record_tables_changed() FROM PUBLIC;

CREATE TRIGGER reports_to_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.reports_to
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._record_tables_changed();
CREATE TRIGGER teams_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.teams
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._record_tables_changed();
CREATE TRIGGER team_members_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.team_members
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._record_tables_changed();
CREATE TRIGGER sharing_rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.sharing_rules
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._record_tables_changed();
CREATE TRIGGER shared_records_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.shared_records
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._record_tables_changed();
CREATE TRIGGER user_companies_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.user_companies
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._record_tables_changed();

-- The record access tables are themselves under tenant isolation (registered as system).
SELECT crm_security.enable_tenant_isolation(t, 'tenant_id', true)
  FROM pg_catalog.unnest('{crm_security.reports_to,crm_security.teams,crm_security.team_members,crm_security.sharing_rules,crm_security.shared_records,crm_security.user_companies}'::regclass[]) AS t;

-- What one user of one tenant may reach, computed once per transaction by the C code
-- (through fmgr: no EXECUTE for PUBLIC).  read/write: the user, everyone below them at any
-- depth, and the members of the teams whose records sharing rules share with a team of the
-- user (write: rules with write access).
CREATE FUNCTION crm_security._record_access_sets(tenant_id text, user_id text,
                                                 OUT read_owners text[], OUT write_owners text[], OUT companies text[])
RETURNS record
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE below(u) AS (
        SELECT $2
      UNION
        SELECT r.user_id FROM crm_security.reports_to r JOIN below b ON r.manager_id OPERATOR(pg_catalog.=) b.u
         WHERE r.tenant_id OPERATOR(pg_catalog.=) $1
    ),
    mine AS (
        SELECT m.team FROM crm_security.team_members m
         WHERE m.tenant_id OPERATOR(pg_catalog.=) $1 AND m.user_id OPERATOR(pg_catalog.=) $2
    ),
    ruled AS (
        SELECT o.user_id AS u, ru.access
          FROM crm_security.sharing_rules ru
          JOIN crm_security.team_members o
            ON o.tenant_id OPERATOR(pg_catalog.=) $1 AND o.team OPERATOR(pg_catalog.=) ru.owner_team
         WHERE ru.tenant_id OPERATOR(pg_catalog.=) $1 AND ru.with_team IN (SELECT team FROM mine)
    )
    SELECT (SELECT pg_catalog.array_agg(DISTINCT x.u ORDER BY x.u)
              FROM (SELECT u FROM below UNION SELECT u FROM ruled) x),
           (SELECT pg_catalog.array_agg(DISTINCT x.u ORDER BY x.u)
              FROM (SELECT u FROM below UNION SELECT u FROM ruled WHERE access OPERATOR(pg_catalog.=) 'write') x),
           (SELECT COALESCE(pg_catalog.array_agg(c.company ORDER BY c.company), '{}')
              FROM crm_security.user_companies c
             WHERE c.tenant_id OPERATOR(pg_catalog.=) $1 AND c.user_id OPERATOR(pg_catalog.=) $2)
$$;
COMMENT ON FUNCTION crm_security._record_access_sets(text, text) IS
'internal: the owners whose records a user of a tenant may read and write (self, subordinates, sharing rules) and the user''s companies';
REVOKE ALL ON FUNCTION crm_security._record_access_sets(text, text) FROM PUBLIC;

-- The records of one table shared with a user (directly or through a team), unexpired.
CREATE FUNCTION crm_security._record_shared_sets(tenant_id text, user_id text, tbl regclass,
                                                 OUT read_ids text[], OUT write_ids text[], OUT permission text)
RETURNS record
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH s AS (
        SELECT s.record_id, s.access FROM crm_security.shared_records s
         WHERE s.tenant_id OPERATOR(pg_catalog.=) $1 AND s.relation OPERATOR(pg_catalog.=) $3
           AND (s.with_user OPERATOR(pg_catalog.=) $2
                OR s.with_team IN (SELECT m.team FROM crm_security.team_members m
                                    WHERE m.tenant_id OPERATOR(pg_catalog.=) $1 AND m.user_id OPERATOR(pg_catalog.=) $2))
           AND (s.expires_at IS NULL OR s.expires_at OPERATOR(pg_catalog.>) pg_catalog.now())
    )
    SELECT (SELECT COALESCE(pg_catalog.array_agg(DISTINCT record_id ORDER BY record_id), '{}') FROM s),
           (SELECT COALESCE(pg_catalog.array_agg(DISTINCT record_id ORDER BY record_id), '{}') FROM s
             WHERE access OPERATOR(pg_catalog.=) 'write'),
           (SELECT t.permission FROM crm_security.record_access_tables t WHERE t.relation OPERATOR(pg_catalog.=) $3)
$$;
COMMENT ON FUNCTION crm_security._record_shared_sets(text, text, regclass) IS
'internal: the records of a table shared, unexpired, with a user of a tenant or one of their teams, for reading and for writing, and the table''s bypass permission (NULL: not under record access)';
REVOKE ALL ON FUNCTION crm_security._record_shared_sets(text, text, regclass) FROM PUBLIC;

CREATE FUNCTION crm_security.accessible_owner_ids(access text DEFAULT 'read')
RETURNS text[]
AS 'MODULE_PATHNAME', 'crm_accessible_owner_ids'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.accessible_owner_ids(text) IS
'the owners whose records the context''s user may read or write: the user, everyone below them, and the owners shared with them by sharing rules; computed once per transaction; empty without a user and tenant';

CREATE FUNCTION crm_security.shared_record_ids(tbl regclass, access text DEFAULT 'read')
RETURNS text[]
AS 'MODULE_PATHNAME', 'crm_shared_record_ids'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.shared_record_ids(regclass, text) IS
'the records (primary keys as text) of a table shared, unexpired, with the context''s user or their teams, for reading or writing; computed once per transaction';

CREATE FUNCTION crm_security.companies()
RETURNS text[]
AS 'MODULE_PATHNAME', 'crm_record_companies'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.companies() IS
'the companies the context''s user may act for; computed once per transaction; empty without a user and tenant';

CREATE FUNCTION crm_security.can_access_record(tbl regclass, record_id text, owner_id text, access text DEFAULT 'read')
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_can_access_record'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.can_access_record(regclass, text, text, text) IS
'whether the context''s user may read or write one record of a table under record access, by its owner, a share, or the table''s manage permission (companies are checked by the policies); false for NULL arguments';

-- The column types record access supports, and the smallest value of each (see the bypass
-- arm in _record_access_conditions).
CREATE FUNCTION crm_security._record_column(tbl regclass, col name, what text)
RETURNS regtype
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ oid;
BEGIN
    SELECT a.atttypid INTO typ FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION 'column "%" of "%" does not exist', col, tbl USING ERRCODE = '42703';
    END IF;
    WHILE (SELECT t.typtype FROM pg_catalog.pg_type t WHERE t.oid = typ) = 'd' LOOP
        typ := (SELECT t.typbasetype FROM pg_catalog.pg_type t WHERE t.oid = typ);
    END LOOP;
    IF what <> 'id' AND typ NOT IN ('pg_catalog.text'::regtype, 'pg_catalog.varchar'::regtype) THEN
        RAISE EXCEPTION 'unsupported % column type %', what, pg_catalog.format_type(typ, NULL)
            USING ERRCODE = '22023', HINT = 'Owner and company columns are text or varchar, as user ids and company ids are.';
    END IF;
    RETURN typ;
END
$$;
COMMENT ON FUNCTION crm_security._record_column(regclass, name, text) IS
'internal: the base type of an owner, company or primary key column of a table under record access';

-- The record conditions of a table (or of its nearest ancestor under record access), which
-- _isolation_statements (sql/50_isolation.sql) composes into the permissive isolation
-- policies as (tenant equality AND arm) OR (tenant equality AND arm) ...; no row when the
-- table is not under record access.  Each arm compares a column with a value computed once
-- per transaction, so that every arm is an index condition and the planner can combine
-- them in a BitmapOr: the owner in accessible_owner_ids(), the primary key in
-- shared_record_ids() (both with the company in companies() when there is a company
-- column), and for holders of the table's permission (can() is cached too) "owner >= ''",
-- which every owner satisfies and which compares with NULL, and so matches nothing at no
-- cost, for everyone else.
CREATE FUNCTION crm_security._record_access_conditions(tbl regclass,
                                                       OUT readers text[], OUT writers text[])
RETURNS record
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    own text;
    company text := '';
    idtyp regtype;
    acc text;
    arms text[];
BEGIN
    WITH RECURSIVE up(relid, depth) AS (
        SELECT tbl::oid, 0
      UNION
        SELECT i.inhparent, up.depth + 1 FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.relid
         WHERE up.depth < 1000
    )
    SELECT t.* INTO r FROM up JOIN crm_security.record_access_tables t ON t.relation::oid = up.relid
     ORDER BY up.depth LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    own := pg_catalog.quote_ident(r.owner_column);
    IF r.company_column IS NOT NULL THEN
        company := pg_catalog.format(' AND %I = ANY (crm_security.companies())', r.company_column);
    END IF;
    IF r.id_column IS NOT NULL THEN
        idtyp := crm_security._record_column(tbl, r.id_column, 'id');
    END IF;
    FOREACH acc IN ARRAY '{read,write}'::text[] LOOP
        arms := ARRAY[pg_catalog.format('%s = ANY (crm_security.accessible_owner_ids(%L))%s', own, acc, company),
                      pg_catalog.format('%s >= CASE WHEN crm_security.can(%L) THEN ''''::text END', own, r.permission)];
        IF r.id_column IS NOT NULL THEN
            arms := arms || pg_catalog.format('%I = ANY (crm_security.shared_record_ids(%L::regclass, %L)%s)%s',
                                              r.id_column, r.relation::oid::regclass::text, acc,
                                              CASE WHEN idtyp IN ('pg_catalog.text'::regtype, 'pg_catalog.varchar'::regtype) THEN ''
                                                   ELSE '::' || pg_catalog.format_type(idtyp, NULL) || '[]' END,
                                              company);
        END IF;
        IF acc = 'read' THEN
            readers := arms;
        ELSE
            writers := arms;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_security._record_access_conditions(regclass) IS
'internal: the record conditions (read arms, write arms) that the isolation policies of a table under record access AND with the tenant equality';

CREATE FUNCTION crm_security._record_access_register(tbl regclass, owner_column name, company_column name,
                                                     id_column name, permission text)
RETURNS void
AS 'MODULE_PATHNAME', 'crm_record_access_register'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm_security._record_access_register(regclass, name, name, name, text) IS
'internal: record (or, with a NULL owner column, forget) a table the caller owns in record_access_tables';

CREATE FUNCTION crm_security.enable_record_access(tbl regclass, owner_column name, company_column name DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    iso record;
    idcol name;
    part record;
BEGIN
    IF tbl IS NULL OR owner_column IS NULL THEN
        RAISE EXCEPTION 'table and owner column must not be NULL' USING ERRCODE = '22023';
    END IF;
    SELECT r.* INTO iso FROM crm_security.isolated_tables r WHERE r.relation = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" is not under tenant isolation', tbl
            USING ERRCODE = '55000', HINT = 'Call enable_tenant_isolation on it first; record rules are AND-ed with its policies.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = tbl) THEN
        RAISE EXCEPTION 'table "%" is a partition or child', tbl
            USING ERRCODE = '42P16', HINT = 'Enable record access on the parent; its partitions and children follow.';
    END IF;
    PERFORM crm_security._record_column(tbl, owner_column, 'owner');
    IF company_column IS NOT NULL THEN
        PERFORM crm_security._record_column(tbl, company_column, 'company');
    END IF;
    -- The primary key names records for share_record: a single column, or the second of
    -- (tenant column, id), the layout Citus requires and the one whose index serves the
    -- share arm of the policies whole (none: no shares).
    SELECT a.attname INTO idcol
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_attribute a
        ON a.attrelid = i.indrelid AND a.attnum = CASE WHEN i.indnkeyatts = 1 THEN i.indkey[0] ELSE i.indkey[1] END
     WHERE i.indrelid = tbl AND i.indisprimary
       AND (i.indnkeyatts = 1
            OR (i.indnkeyatts = 2 AND i.indkey[0] = (SELECT t.attnum FROM pg_catalog.pg_attribute t
                                                      WHERE t.attrelid = tbl AND t.attname = iso.tenant_column)));
    PERFORM crm_security._record_access_register(tbl, owner_column, company_column, idcol,
        'crm:' || (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = tbl) || ':manage');
    FOR part IN SELECT t.relid FROM crm_security._isolation_tree(tbl) t WHERE t.relkind IN ('r', 'p') LOOP
        PERFORM crm_security._isolation_apply(part.relid);
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_security.enable_record_access(regclass, name, name) IS
'AND the record rules (owner accessible, record shared, company allowed, or the table''s manage permission) into the tenant isolation policies of a table and its partitions; idempotent';

CREATE FUNCTION crm_security.disable_record_access(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part record;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM crm_security.record_access_tables r WHERE r.relation = tbl) THEN
        RAISE EXCEPTION 'table "%" is not under record access', tbl USING ERRCODE = '55000';
    END IF;
    PERFORM crm_security._record_access_register(tbl, NULL, NULL, NULL, NULL);
    FOR part IN SELECT t.relid FROM crm_security._isolation_tree(tbl) t WHERE t.relkind IN ('r', 'p') LOOP
        IF EXISTS (SELECT 1 FROM crm_security.isolated_tables r WHERE r.relation = part.relid) THEN
            PERFORM crm_security._isolation_apply(part.relid);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_security.disable_record_access(regclass) IS
'remove the record rules from the tenant isolation policies of a table and its partitions (tenant isolation stays)';

-- Management.  SECURITY DEFINER so that callers need no privilege on the tables; EXECUTE
-- is for the database administrator to grant, as for the role functions (see
-- docs/authorization.md, "Who may administer"): they do not look at the claim context.
CREATE FUNCTION crm_security._record_check_args(tenant_id text, names text[], what text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tenant_id IS NULL OR tenant_id = '' THEN
        RAISE EXCEPTION 'tenant must not be NULL or empty' USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.array_position(names, NULL) IS NOT NULL OR '' = ANY (names) THEN
        RAISE EXCEPTION '% must not be NULL or empty', what USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.octet_length(tenant_id) > 256
       OR EXISTS (SELECT 1 FROM pg_catalog.unnest(names) n WHERE pg_catalog.octet_length(n) > 256) THEN
        RAISE EXCEPTION 'identifiers are at most 256 bytes' USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_security._record_check_args(text, text[], text) IS
'internal: refuses NULL, empty and oversized tenants, users, teams and companies';

CREATE FUNCTION crm_security._record_check_access(access text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF access IS NULL OR access NOT IN ('read', 'write') THEN
        RAISE EXCEPTION 'unknown access level' USING ERRCODE = '22023',
            DETAIL = 'The access level is "read" or "write".';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_security._record_check_access(text) IS
'internal: refuses access levels other than read and write';

CREATE FUNCTION crm_security.set_manager(tenant_id text, user_id text, manager_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._record_check_args(tenant_id, ARRAY[user_id], 'user');
    IF manager_id IS NULL THEN
        DELETE FROM crm_security.reports_to r WHERE r.tenant_id = $1 AND r.user_id = $2;
        RETURN;
    END IF;
    PERFORM crm_security._record_check_args(tenant_id, ARRAY[manager_id], 'manager');
    -- One hierarchy change at a time per tenant, so that two changes cannot make a cycle
    -- that neither sees.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('crm_security.reports_to'), pg_catalog.hashtext($1));
    IF manager_id = user_id OR EXISTS (
        WITH RECURSIVE up(u) AS (
            SELECT $3
          UNION
            SELECT r.manager_id FROM crm_security.reports_to r JOIN up ON r.user_id = up.u
             WHERE r.tenant_id = $1
        ) SELECT 1 FROM up WHERE up.u = $2) THEN
        RAISE EXCEPTION 'manager change would make a cycle in the hierarchy' USING ERRCODE = '23514',
            DETAIL = pg_catalog.format('"%s" is "%s" or reports to them, directly or indirectly.', manager_id, user_id);
    END IF;
    INSERT INTO crm_security.reports_to AS r (tenant_id, user_id, manager_id) VALUES ($1, $2, $3)
        ON CONFLICT ON CONSTRAINT reports_to_pkey DO UPDATE SET manager_id = EXCLUDED.manager_id;
END
$$;
COMMENT ON FUNCTION crm_security.set_manager(text, text, text) IS
'make manager_id the manager of user_id in a tenant (NULL removes the manager); cycles are refused (23514)';

CREATE FUNCTION crm_security.add_team_member(tenant_id text, team text, user_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._record_check_args(tenant_id, ARRAY[team, user_id], 'team and user');
    INSERT INTO crm_security.teams AS t (tenant_id, team) VALUES ($1, $2) ON CONFLICT DO NOTHING;
    INSERT INTO crm_security.team_members AS m (tenant_id, team, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION crm_security.add_team_member(text, text, text) IS
'add a user to a team of a tenant (the team is created when it does not exist)';

CREATE FUNCTION crm_security.remove_team_member(tenant_id text, team text, user_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._record_check_args(tenant_id, ARRAY[team, user_id], 'team and user');
    IF NOT EXISTS (SELECT 1 FROM crm_security.teams t WHERE t.tenant_id = $1 AND t.team = $2) THEN
        RAISE EXCEPTION 'team "%" does not exist in this tenant', team USING ERRCODE = '42704';
    END IF;
    DELETE FROM crm_security.team_members m WHERE m.tenant_id = $1 AND m.team = $2 AND m.user_id = $3;
END
$$;
COMMENT ON FUNCTION crm_security.remove_team_member(text, text, text) IS
'remove a user from a team of a tenant (42704 for an unknown team)';

CREATE FUNCTION crm_security.add_sharing_rule(tenant_id text, owner_team text, with_team text, access text DEFAULT 'read')
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._record_check_args(tenant_id, ARRAY[owner_team, with_team], 'teams');
    PERFORM crm_security._record_check_access(access);
    IF NOT EXISTS (SELECT 1 FROM crm_security.teams t WHERE t.tenant_id = $1 AND t.team = $2) THEN
        RAISE EXCEPTION 'team "%" does not exist in this tenant', owner_team USING ERRCODE = '42704';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM crm_security.teams t WHERE t.tenant_id = $1 AND t.team = $3) THEN
        RAISE EXCEPTION 'team "%" does not exist in this tenant', with_team USING ERRCODE = '42704';
    END IF;
    INSERT INTO crm_security.sharing_rules AS s (tenant_id, owner_team, with_team, access) VALUES ($1, $2, $3, $4)
        ON CONFLICT ON CONSTRAINT sharing_rules_pkey DO UPDATE SET access = EXCLUDED.access;
END
$$;
COMMENT ON FUNCTION crm_security.add_sharing_rule(text, text, text, text) IS
'share the records owned by the members of owner_team with the members of with_team, for reading or writing (both teams must exist)';

CREATE FUNCTION crm_security.remove_sharing_rule(tenant_id text, owner_team text, with_team text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._record_check_args(tenant_id, ARRAY[owner_team, with_team], 'teams');
    DELETE FROM crm_security.sharing_rules s WHERE s.tenant_id = $1 AND s.owner_team = $2 AND s.with_team = $3;
END
$$;
COMMENT ON FUNCTION crm_security.remove_sharing_rule(text, text, text) IS
'remove a sharing rule';

-- A record may be shared when its table is under record access with a single-column primary
-- key and the record exists in that tenant.
CREATE FUNCTION crm_security._record_check_share(tbl regclass, record_id text, tenant_id text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    tcol name;
    idtyp regtype;
    found boolean;
BEGIN
    IF tbl IS NULL OR record_id IS NULL THEN
        RAISE EXCEPTION 'table and record must not be NULL' USING ERRCODE = '22023';
    END IF;
    SELECT t.* INTO r FROM crm_security.record_access_tables t WHERE t.relation = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" is not under record access', tbl USING ERRCODE = '55000',
            HINT = 'Records of a table are shared once enable_record_access has been called on it.';
    END IF;
    IF r.id_column IS NULL THEN
        RAISE EXCEPTION 'table "%" has no primary key to name its records', tbl USING ERRCODE = '55000',
            DETAIL = 'Records are named by a single-column primary key or by the second column of a primary key (tenant column, id).';
    END IF;
    SELECT i.tenant_column INTO tcol FROM crm_security.isolated_tables i WHERE i.relation = tbl;
    idtyp := crm_security._record_column(tbl, r.id_column, 'id');
    BEGIN
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I = $1::%s AND (%I)::text = $2)',
                                  tbl, r.id_column, pg_catalog.format_type(idtyp, NULL), tcol)
            INTO found USING record_id, tenant_id;
    EXCEPTION WHEN data_exception THEN
        found := false;
    END;
    IF NOT found THEN
        RAISE EXCEPTION 'record does not exist in this tenant' USING ERRCODE = '42704',
            DETAIL = pg_catalog.format('No row of "%s" has the key given and the tenant given.', tbl);
    END IF;
END
$$;
COMMENT ON FUNCTION crm_security._record_check_share(regclass, text, text) IS
'internal: refuses shares of tables without record access and of records that do not exist in the tenant';
REVOKE ALL ON FUNCTION crm_security._record_check_share(regclass, text, text) FROM PUBLIC;

CREATE FUNCTION crm_security.share_record(tbl regclass, record_id text, tenant_id text, with_user text,
                                          access text DEFAULT 'read', expires_at timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    PERFORM crm_security._record_check_args(tenant_id, ARRAY[with_user], 'user');
    PERFORM crm_security._record_check_access(access);
    IF expires_at IS NOT NULL AND expires_at <= pg_catalog.now() THEN
        RAISE EXCEPTION 'expiry is in the past' USING ERRCODE = '22023';
    END IF;
    PERFORM crm_security._record_check_share(tbl, record_id, tenant_id);
    INSERT INTO crm_security.shared_records AS s (tenant_id, relation, record_id, with_user, access, expires_at)
         VALUES ($3, $1, $2, $4, $5, $6)
        ON CONFLICT (tenant_id, with_user, relation, record_id) WHERE with_user IS NOT NULL
        DO UPDATE SET access = EXCLUDED.access, expires_at = EXCLUDED.expires_at;
END
$$;
COMMENT ON FUNCTION crm_security.share_record(regclass, text, text, text, text, timestamptz) IS
'share one record (primary key as text) of a table under record access with one user of the record''s tenant, for reading or writing, until expires_at';

CREATE FUNCTION crm_security.share_record_with_team(tbl regclass, record_id text, tenant_id text, with_team text,
                                                    access text DEFAULT 'read', expires_at timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    PERFORM crm_security._record_check_args(tenant_id, ARRAY[with_team], 'team');
    PERFORM crm_security._record_check_access(access);
    IF expires_at IS NOT NULL AND expires_at <= pg_catalog.now() THEN
        RAISE EXCEPTION 'expiry is in the past' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM crm_security.teams t WHERE t.tenant_id = $3 AND t.team = $4) THEN
        RAISE EXCEPTION 'team "%" does not exist in this tenant', with_team USING ERRCODE = '42704';
    END IF;
    PERFORM crm_security._record_check_share(tbl, record_id, tenant_id);
    INSERT INTO crm_security.shared_records AS s (tenant_id, relation, record_id, with_team, access, expires_at)
         VALUES ($3, $1, $2, $4, $5, $6)
        ON CONFLICT (tenant_id, with_team, relation, record_id) WHERE with_team IS NOT NULL
        DO UPDATE SET access = EXCLUDED.access, expires_at = EXCLUDED.expires_at;
END
$$;
COMMENT ON FUNCTION crm_security.share_record_with_team(regclass, text, text, text, text, timestamptz) IS
'share one record of a table under record access with the members of one team of the record''s tenant';

CREATE FUNCTION crm_security.unshare_record(tbl regclass, record_id text, tenant_id text, with_user text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._record_check_args(tenant_id, ARRAY[with_user, record_id], 'user and record');
    DELETE FROM crm_security.shared_records s
     WHERE s.tenant_id = $3 AND s.relation = $1 AND s.record_id = $2 AND s.with_user = $4;
END
$$;
COMMENT ON FUNCTION crm_security.unshare_record(regclass, text, text, text) IS
'revoke the share of one record with one user';

CREATE FUNCTION crm_security.grant_company(tenant_id text, user_id text, company text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._record_check_args(tenant_id, ARRAY[user_id, company], 'user and company');
    INSERT INTO crm_security.user_companies AS c (tenant_id, user_id, company) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION crm_security.grant_company(text, text, text) IS
'let a user of a tenant act for a company';

CREATE FUNCTION crm_security.revoke_company(tenant_id text, user_id text, company text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._record_check_args(tenant_id, ARRAY[user_id, company], 'user and company');
    DELETE FROM crm_security.user_companies c WHERE c.tenant_id = $1 AND c.user_id = $2 AND c.company = $3;
END
$$;
COMMENT ON FUNCTION crm_security.revoke_company(text, text, text) IS
'no longer let a user of a tenant act for a company';

REVOKE ALL ON FUNCTION crm_security.set_manager(text, text, text),
                       crm_security.add_team_member(text, text, text),
                       crm_security.remove_team_member(text, text, text),
                       crm_security.add_sharing_rule(text, text, text, text),
                       crm_security.remove_sharing_rule(text, text, text),
                       crm_security.share_record(regclass, text, text, text, text, timestamptz),
                       crm_security.share_record_with_team(regclass, text, text, text, text, timestamptz),
                       crm_security.unshare_record(regclass, text, text, text),
                       crm_security.grant_company(text, text, text),
                       crm_security.revoke_company(text, text, text)
    FROM PUBLIC;

-- A dropped table leaves no row behind (its oid could be reused by another table).
CREATE FUNCTION crm_security._record_access_forget_dropped()
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM crm_security.record_access_tables r
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) r.relation::pg_catalog.oid)
$$;
COMMENT ON FUNCTION crm_security._record_access_forget_dropped() IS
'internal: remove the record_access_tables rows of tables that no longer exist';

CREATE FUNCTION crm_security._record_access_on_drop()
RETURNS event_trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() d
                WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0)
       AND pg_catalog.has_schema_privilege('crm_security', 'USAGE') THEN
        PERFORM crm_security._record_access_forget_dropped();
    END IF;
END
$$;
COMMENT ON FUNCTION crm_security._record_access_on_drop() IS
'event trigger: forget the record_access_tables rows of dropped tables';
CREATE EVENT TRIGGER crm_security_record_access_drop ON sql_drop
    EXECUTE FUNCTION crm_security._record_access_on_drop();
ALTER EVENT TRIGGER crm_security_record_access_drop ENABLE ALWAYS;
