\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- Permissions (API.md section 4): the grammar in C, roles and grants in tables, the
-- effective permissions of the claim context computed once per transaction.

CREATE FUNCTION crm_security.permission_valid(permission text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_permission_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm_security.permission_valid(text) IS
'whether a permission string is well-formed: colon-separated segments of printable ASCII, "*" only as a whole segment, at most 1024 bytes';

CREATE FUNCTION crm_security.permission_matches(granted text, required text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_permission_matches'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm_security.permission_matches(text, text) IS
'whether the granted permission satisfies the required one ("*" segments, "manage" as the last segment, a lone "*"); malformed permissions never match';

CREATE FUNCTION crm_security.has_permission(granted text[], required text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_has_permission'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm_security.has_permission(text[], text) IS
'whether any granted permission satisfies the required one; NULL elements never match';

CREATE FUNCTION crm_security.has_any_permission(granted text[], required text[])
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_has_any_permission'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm_security.has_any_permission(text[], text[]) IS
'whether at least one required permission is granted (false for an empty list)';

CREATE FUNCTION crm_security.has_all_permissions(granted text[], required text[])
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_has_all_permissions'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm_security.has_all_permissions(text[], text[]) IS
'whether every required permission is granted (true for an empty list; a NULL or malformed element is never granted)';

-- Every element well-formed and none NULL; for CHECK constraints.
CREATE FUNCTION crm_security._permissions_valid(permissions text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.bool_and(p IS NOT NULL AND crm_security.permission_valid(p)) IS NOT FALSE
      FROM pg_catalog.unnest(permissions) AS p
$$;
COMMENT ON FUNCTION crm_security._permissions_valid(text[]) IS
'internal: whether every element of a permission list is well-formed and not NULL';

-- Roles.  A role belongs to one tenant (custom role) or to none (system-wide).  Names are
-- unique across a tenant's roles and the system roles together, so that a name always
-- resolves to one role: a tenant cannot shadow a system role.
CREATE TABLE crm_security.roles (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text,
    name        text NOT NULL,
    permissions text[] NOT NULL DEFAULT '{}',
    inherits    text[] NOT NULL DEFAULT '{}',
    system      boolean NOT NULL DEFAULT false,
    description text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT roles_name_check CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_-]{0,62}$'),
    CONSTRAINT roles_tenant_check CHECK (tenant_id IS NULL OR pg_catalog.length(tenant_id) BETWEEN 1 AND 256),
    CONSTRAINT roles_permissions_check CHECK (crm_security._permissions_valid(permissions)),
    CONSTRAINT roles_inherits_check CHECK (pg_catalog.array_position(inherits, NULL) IS NULL),
    CONSTRAINT roles_tenant_name_key UNIQUE NULLS NOT DISTINCT (tenant_id, name)
);
COMMENT ON TABLE crm_security.roles IS
'roles with permission lists: system roles (tenant_id NULL) and custom roles per tenant; inherits names parent roles';

CREATE TABLE crm_security.role_grants (
    user_id    text NOT NULL,
    tenant_id  text NOT NULL,
    role_id    bigint NOT NULL REFERENCES crm_security.roles (id) ON DELETE CASCADE,
    expires_at timestamptz,
    granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    granted_by name NOT NULL DEFAULT SESSION_USER,
    PRIMARY KEY (tenant_id, user_id, role_id),
    CONSTRAINT role_grants_user_check CHECK (pg_catalog.length(user_id) BETWEEN 1 AND 256),
    CONSTRAINT role_grants_tenant_check CHECK (pg_catalog.length(tenant_id) BETWEEN 1 AND 256)
);
CREATE INDEX role_grants_role_idx ON crm_security.role_grants (role_id);
COMMENT ON TABLE crm_security.role_grants IS
'roles granted to users in a tenant, with optional expiry';

REVOKE ALL ON crm_security.roles, crm_security.role_grants FROM PUBLIC;

-- Custom roles and grants are data to keep: pg_dump saves them with the extension.
SELECT pg_catalog.pg_extension_config_dump('crm_security.roles', 'WHERE NOT system');
SELECT pg_catalog.pg_extension_config_dump('crm_security.role_grants', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.roles_id_seq', '');

-- Refuse inheritance cycles and names that would shadow another role, whoever writes the
-- table (the functions below, or an administrator by hand).
CREATE FUNCTION crm_security._roles_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent text;
    path text;
BEGIN
    IF NEW.name OPERATOR(pg_catalog.=) ANY (NEW.inherits) THEN
        RAISE EXCEPTION 'role "%" cannot inherit from itself', NEW.name
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM crm_security.roles r
                WHERE r.name OPERATOR(pg_catalog.=) NEW.name
                  AND r.id OPERATOR(pg_catalog.<>) NEW.id
                  AND (r.tenant_id IS NULL OR NEW.tenant_id IS NULL)) THEN
        RAISE EXCEPTION 'role "%" already exists', NEW.name
            USING ERRCODE = '42710',
                  DETAIL = 'A system role and a tenant role cannot share a name.';
    END IF;
    FOREACH parent IN ARRAY NEW.inherits LOOP
        IF NOT EXISTS (SELECT 1 FROM crm_security.roles r
                        WHERE r.name OPERATOR(pg_catalog.=) parent
                          AND r.id OPERATOR(pg_catalog.<>) NEW.id
                          AND (r.tenant_id IS NULL
                               OR r.tenant_id OPERATOR(pg_catalog.=) NEW.tenant_id)) THEN
            RAISE EXCEPTION 'role "%" does not exist', parent
                USING ERRCODE = '42704',
                      HINT = 'A role inherits from system roles and from roles of its own tenant.';
        END IF;
    END LOOP;
    -- Walk up from the new parents; reaching the role itself is a cycle.
    -- The depth bound keeps a table corrupted by hand from looping forever.
    WITH RECURSIVE up(name, path, depth) AS (
        SELECT p, NEW.name OPERATOR(pg_catalog.||) ' -> ' OPERATOR(pg_catalog.||) p, 1
          FROM pg_catalog.unnest(NEW.inherits) AS p
      UNION
        SELECT i, u.path OPERATOR(pg_catalog.||) ' -> ' OPERATOR(pg_catalog.||) i,
               u.depth OPERATOR(pg_catalog.+) 1
          FROM up u
          JOIN crm_security.roles r
            ON r.name OPERATOR(pg_catalog.=) u.name
           AND r.id OPERATOR(pg_catalog.<>) NEW.id
           AND (r.tenant_id IS NULL OR r.tenant_id OPERATOR(pg_catalog.=) NEW.tenant_id)
         CROSS JOIN LATERAL pg_catalog.unnest(r.inherits) AS i
         WHERE u.name OPERATOR(pg_catalog.<>) NEW.name AND u.depth OPERATOR(pg_catalog.<) 64
    )
    SELECT u.path INTO path FROM up u WHERE u.name OPERATOR(pg_catalog.=) NEW.name LIMIT 1;
    IF path IS NOT NULL THEN
        RAISE EXCEPTION 'role inheritance cycle'
            USING ERRCODE = '22023', DETAIL = pg_catalog.format('The cycle is %s.', path);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION crm_security._roles_check() IS
'internal: refuses role inheritance cycles, unknown parents and names shadowing another role';

CREATE TRIGGER roles_check BEFORE INSERT OR UPDATE ON crm_security.roles
    FOR EACH ROW EXECUTE FUNCTION crm_security._roles_check();

CREATE FUNCTION crm_security._role_tables_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'crm_role_tables_changed'
LANGUAGE C;
COMMENT ON FUNCTION crm_security._role_tables_changed() IS
'internal: drops the cached effective permissions of every session after a change of roles or role_grants';

CREATE TRIGGER roles_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.roles
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._role_tables_changed();
CREATE TRIGGER role_grants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.role_grants
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._role_tables_changed();

-- System roles.  See docs/authorization.md for what each is for.
INSERT INTO crm_security.roles (name, system, permissions, inherits, description) VALUES
    ('superadmin', true, '{*}', '{}',
     'operators of the platform: every permission in every tenant'),
    ('client_user', true,
     '{crm:contacts:read,crm:contacts:create,crm:contacts:update,'
      'crm:companies:read,crm:companies:create,crm:companies:update,'
      'crm:deals:read,crm:deals:create,crm:deals:update,'
      'crm:activities:manage,crm:notes:manage,crm:tasks:manage,crm:reports:read}',
     '{}', 'a member of a client''s staff: works with the CRM records, deletes nothing shared'),
    ('client_admin', true,
     '{crm:contacts:manage,crm:companies:manage,crm:deals:manage,crm:reports:manage,'
      'crm:users:manage,crm:roles:manage,crm:settings:manage,crm:audit:read,crm:data:export}',
     '{client_user}', 'a client''s administrator: everything in the tenant, users and roles included'),
    ('reviewer', true, '{crm:*:read,crm:audit:read}', '{}',
     'auditors and support staff: read-only');

-- Role administration.  SECURITY DEFINER so that callers need no privilege on the tables;
-- EXECUTE is for the database administrator to grant (see docs/authorization.md).

CREATE FUNCTION crm_security._check_permission_list(permissions text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    i int;
BEGIN
    IF permissions IS NULL THEN
        RAISE EXCEPTION 'permissions must not be NULL' USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.array_ndims(permissions) > 1 THEN
        RAISE EXCEPTION 'permissions must be a one-dimensional array' USING ERRCODE = '22023';
    END IF;
    FOR i IN 1 .. COALESCE(pg_catalog.array_length(permissions, 1), 0) LOOP
        IF permissions[i] IS NULL OR NOT crm_security.permission_valid(permissions[i]) THEN
            -- The element is not echoed: it may hold control characters.
            RAISE EXCEPTION 'malformed permission at position %', i
                USING ERRCODE = '22023',
                      DETAIL = 'A permission is one or more segments of printable ASCII separated by colons, "*" only as a whole segment, at most 1024 bytes.';
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_security._check_permission_list(text[]) IS
'internal: raises 22023 for a NULL list or a NULL or malformed element';

CREATE FUNCTION crm_security._check_role_args(name text, tenant_id text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR name OPERATOR(pg_catalog.!~) '^[a-z][a-z0-9_-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid role name'
            USING ERRCODE = '22023',
                  DETAIL = 'A role name is 1 to 63 characters: a lowercase letter, then lowercase letters, digits, "_" or "-".';
    END IF;
    IF tenant_id IS NOT NULL AND pg_catalog.length(tenant_id) NOT BETWEEN 1 AND 256 THEN
        RAISE EXCEPTION 'invalid tenant' USING ERRCODE = '22023',
            DETAIL = 'A tenant is 1 to 256 characters.';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_security._check_role_args(text, text) IS
'internal: raises 22023 for an invalid role name or tenant';

CREATE FUNCTION crm_security.create_role(name text, permissions text[], tenant_id text DEFAULT NULL,
                                         inherits text[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent text;
BEGIN
    PERFORM crm_security._check_role_args(name, tenant_id);
    PERFORM crm_security._check_permission_list(permissions);
    inherits := COALESCE(inherits, '{}');
    FOREACH parent IN ARRAY inherits LOOP
        PERFORM crm_security._check_role_args(parent, NULL);
    END LOOP;
    -- One role change at a time: the shadowing and cycle checks read other rows.
    LOCK TABLE crm_security.roles IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM crm_security.roles r
                WHERE r.name OPERATOR(pg_catalog.=) create_role.name
                  AND r.tenant_id IS NOT DISTINCT FROM create_role.tenant_id) THEN
        RAISE EXCEPTION 'role "%" already exists', name USING ERRCODE = '42710';
    END IF;
    INSERT INTO crm_security.roles (tenant_id, name, permissions, inherits)
    VALUES (tenant_id, name, permissions, inherits);
END
$$;
COMMENT ON FUNCTION crm_security.create_role(text, text[], text, text[]) IS
'create a role: system-wide when tenant_id is NULL, else custom to that tenant; inherits names existing parent roles';

CREATE FUNCTION crm_security.alter_role(name text, permissions text[], tenant_id text DEFAULT NULL,
                                        inherits text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent text;
BEGIN
    PERFORM crm_security._check_role_args(name, tenant_id);
    IF permissions IS NOT NULL THEN
        PERFORM crm_security._check_permission_list(permissions);
    END IF;
    FOREACH parent IN ARRAY COALESCE(inherits, '{}') LOOP
        PERFORM crm_security._check_role_args(parent, NULL);
    END LOOP;
    LOCK TABLE crm_security.roles IN SHARE ROW EXCLUSIVE MODE;
    UPDATE crm_security.roles r
       SET permissions = COALESCE(alter_role.permissions, r.permissions),
           inherits = COALESCE(alter_role.inherits, r.inherits)
     WHERE r.name OPERATOR(pg_catalog.=) alter_role.name
       AND r.tenant_id IS NOT DISTINCT FROM alter_role.tenant_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" does not exist', name USING ERRCODE = '42704';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_security.alter_role(text, text[], text, text[]) IS
'replace the permissions and/or the parents (NULL: unchanged) of a role; cycles are refused';

CREATE FUNCTION crm_security.drop_role(name text, tenant_id text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r crm_security.roles;
    child text;
BEGIN
    PERFORM crm_security._check_role_args(name, tenant_id);
    LOCK TABLE crm_security.roles IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO r FROM crm_security.roles x
     WHERE x.name OPERATOR(pg_catalog.=) drop_role.name
       AND x.tenant_id IS NOT DISTINCT FROM drop_role.tenant_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" does not exist', name USING ERRCODE = '42704';
    END IF;
    IF r.system THEN
        RAISE EXCEPTION 'cannot drop system role "%"', name USING ERRCODE = '42501';
    END IF;
    SELECT x.name INTO child FROM crm_security.roles x
     WHERE r.name OPERATOR(pg_catalog.=) ANY (x.inherits)
       AND (r.tenant_id IS NULL OR x.tenant_id OPERATOR(pg_catalog.=) r.tenant_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot drop role "%" because role "%" inherits from it', name, child
            USING ERRCODE = '2BP01';
    END IF;
    DELETE FROM crm_security.roles x WHERE x.id OPERATOR(pg_catalog.=) r.id;
END
$$;
COMMENT ON FUNCTION crm_security.drop_role(text, text) IS
'drop a custom role and its grants; refused for system roles and roles others inherit from';

CREATE FUNCTION crm_security.grant_role(user_id text, tenant_id text, role text,
                                        expires_at timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rid bigint;
BEGIN
    IF user_id IS NULL OR pg_catalog.length(user_id) NOT BETWEEN 1 AND 256 THEN
        RAISE EXCEPTION 'invalid user id' USING ERRCODE = '22023',
            DETAIL = 'A user id is 1 to 256 characters.';
    END IF;
    IF tenant_id IS NULL THEN
        RAISE EXCEPTION 'a role is granted in a tenant' USING ERRCODE = '22023',
            DETAIL = 'tenant_id must not be NULL.';
    END IF;
    PERFORM crm_security._check_role_args(role, tenant_id);
    IF expires_at IS NOT NULL AND expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
        RAISE EXCEPTION 'expiry is not in the future' USING ERRCODE = '22023';
    END IF;
    SELECT r.id INTO rid FROM crm_security.roles r
     WHERE r.name OPERATOR(pg_catalog.=) grant_role.role
       AND (r.tenant_id IS NULL OR r.tenant_id OPERATOR(pg_catalog.=) grant_role.tenant_id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" does not exist', role USING ERRCODE = '42704',
            DETAIL = 'A grant names a system role or a role of the same tenant.';
    END IF;
    INSERT INTO crm_security.role_grants AS g (user_id, tenant_id, role_id, expires_at)
    VALUES (user_id, tenant_id, rid, expires_at)
    ON CONFLICT ON CONSTRAINT role_grants_pkey
    DO UPDATE SET expires_at = EXCLUDED.expires_at, granted_at = pg_catalog.now(),
                  granted_by = SESSION_USER;
END
$$;
COMMENT ON FUNCTION crm_security.grant_role(text, text, text, timestamptz) IS
'grant a role to a user in a tenant, until expires_at (NULL: no expiry); granting again replaces the expiry';

CREATE FUNCTION crm_security.revoke_role(user_id text, tenant_id text, role text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF user_id IS NULL OR tenant_id IS NULL THEN
        RAISE EXCEPTION 'user id and tenant must not be NULL' USING ERRCODE = '22023';
    END IF;
    PERFORM crm_security._check_role_args(role, tenant_id);
    DELETE FROM crm_security.role_grants g
     USING crm_security.roles r
     WHERE g.role_id OPERATOR(pg_catalog.=) r.id
       AND r.name OPERATOR(pg_catalog.=) revoke_role.role
       AND g.user_id OPERATOR(pg_catalog.=) revoke_role.user_id
       AND g.tenant_id OPERATOR(pg_catalog.=) revoke_role.tenant_id;
END
$$;
COMMENT ON FUNCTION crm_security.revoke_role(text, text, text) IS
'revoke a role from a user in a tenant (nothing happens when it was not granted)';

REVOKE ALL ON FUNCTION crm_security.create_role(text, text[], text, text[]),
                       crm_security.alter_role(text, text[], text, text[]),
                       crm_security.drop_role(text, text),
                       crm_security.grant_role(text, text, text, timestamptz),
                       crm_security.revoke_role(text, text, text),
                       crm_security._roles_check(),
                       crm_security._role_tables_changed(),
                       crm_security._check_permission_list(text[]),
                       crm_security._check_role_args(text, text)
    FROM PUBLIC;

-- The permissions of a user's unexpired roles in a tenant, parents included.  Called by
-- the C code of permissions()/can() through fmgr, not from SQL: no EXECUTE for PUBLIC.
CREATE FUNCTION crm_security._granted_permissions(user_id text, tenant_id text)
RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE held(id, permissions, inherits) AS (
        SELECT r.id, r.permissions, r.inherits
          FROM crm_security.role_grants g
          JOIN crm_security.roles r ON r.id OPERATOR(pg_catalog.=) g.role_id
         WHERE g.user_id OPERATOR(pg_catalog.=) $1
           AND g.tenant_id OPERATOR(pg_catalog.=) $2
           AND (g.expires_at IS NULL OR g.expires_at OPERATOR(pg_catalog.>) pg_catalog.now())
           AND (r.tenant_id IS NULL OR r.tenant_id OPERATOR(pg_catalog.=) $2)
      UNION
        SELECT p.id, p.permissions, p.inherits
          FROM held h
          JOIN crm_security.roles p
            ON p.name OPERATOR(pg_catalog.=) ANY (h.inherits)
           AND (p.tenant_id IS NULL OR p.tenant_id OPERATOR(pg_catalog.=) $2)
    )
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT perm), '{}'::text[])
      FROM held CROSS JOIN LATERAL pg_catalog.unnest(held.permissions) AS perm
$$;
COMMENT ON FUNCTION crm_security._granted_permissions(text, text) IS
'internal: permissions of the unexpired roles granted to a user in a tenant, with inheritance';
REVOKE ALL ON FUNCTION crm_security._granted_permissions(text, text) FROM PUBLIC;

CREATE FUNCTION crm_security.permissions()
RETURNS text[]
AS 'MODULE_PATHNAME', 'crm_permissions'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.permissions() IS
'effective permissions of the claim context: the token''s permissions claim plus the user''s unexpired roles in the tenant; empty without a context';

CREATE FUNCTION crm_security.can(required text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_can'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.can(text) IS
'whether the claim context holds the required permission (false without a context, for NULL or for a malformed permission)';

CREATE FUNCTION crm_security.authorize(required text)
RETURNS void
AS 'MODULE_PATHNAME', 'crm_authorize'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.authorize(text) IS
'raise 42501 naming the permission when the claim context does not hold it (22023 for a malformed or NULL one)';
