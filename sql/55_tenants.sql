\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- Tenants, tiers and memberships (API.md section 3): where the context's tenant comes from
-- when the token carries none (docs/context.md, "Where the tenant comes from").  The
-- resolution itself is C (src/context_tenant.c, src/tenants.c), reading tenant_members
-- and tenants by index; this file holds the tables and their administration.

-- Subscription tiers: a default member limit (NULL: none) and default feature flags.
CREATE TABLE crm_security.tenant_tiers (
    name         text COLLATE "C" PRIMARY KEY,
    member_limit integer,
    features     jsonb NOT NULL DEFAULT '{}',
    system       boolean NOT NULL DEFAULT false,
    description  text,
    CONSTRAINT tenant_tiers_name_check CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_-]{0,62}$'),
    CONSTRAINT tenant_tiers_limit_check CHECK (member_limit IS NULL OR member_limit OPERATOR(pg_catalog.>=) 0)
);
COMMENT ON TABLE crm_security.tenant_tiers IS
'subscription tiers: default member limit (NULL: unlimited) and default feature flags of their tenants';

-- Feature flags: a JSON object of booleans.
CREATE FUNCTION crm_security._features_valid(features jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_typeof(features) OPERATOR(pg_catalog.=) 'object'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(features) AS f
                        WHERE pg_catalog.jsonb_typeof(f.value) OPERATOR(pg_catalog.<>) 'boolean'
                           OR pg_catalog.length(f.key) NOT BETWEEN 1 AND 128)
$$;
COMMENT ON FUNCTION crm_security._features_valid(jsonb) IS
'internal: whether feature flags are a JSON object of booleans with names of 1 to 128 characters';
ALTER TABLE crm_security.tenant_tiers ADD CONSTRAINT tenant_tiers_features_check
    CHECK (crm_security._features_valid(features));

CREATE TABLE crm_security.tenants (
    id           text COLLATE "C" PRIMARY KEY,
    name         text NOT NULL,
    tier         text COLLATE "C" NOT NULL DEFAULT 'standard'
                 REFERENCES crm_security.tenant_tiers (name) ON UPDATE CASCADE,
    enabled      boolean NOT NULL DEFAULT true,
    member_limit integer,           -- overrides the tier's (NULL: the tier's)
    features     jsonb NOT NULL DEFAULT '{}',   -- override the tier's, flag by flag
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT tenants_id_check CHECK (pg_catalog.octet_length(id) BETWEEN 1 AND 256),
    CONSTRAINT tenants_name_check CHECK (pg_catalog.length(name) BETWEEN 1 AND 256),
    CONSTRAINT tenants_limit_check CHECK (member_limit IS NULL OR member_limit OPERATOR(pg_catalog.>=) 0),
    CONSTRAINT tenants_features_check CHECK (crm_security._features_valid(features))
);
CREATE INDEX tenants_tier_idx ON crm_security.tenants (tier);
COMMENT ON TABLE crm_security.tenants IS
'tenants: a tier, an enabled flag (a disabled tenant gives no claim context), and overrides of the tier''s member limit and features';

-- Memberships.  The primary key (user_id, tenant_id) is the index the resolver probes: one
-- probe for (user, tenant), one range for the user's memberships.  Compared bytewise.
CREATE TABLE crm_security.tenant_members (
    tenant_id  text COLLATE "C" NOT NULL REFERENCES crm_security.tenants (id) ON DELETE CASCADE,
    user_id    text COLLATE "C" NOT NULL,
    role       text COLLATE "C",
    enabled    boolean NOT NULL DEFAULT true,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT tenant_members_pkey PRIMARY KEY (user_id, tenant_id),
    CONSTRAINT tenant_members_user_check CHECK (pg_catalog.octet_length(user_id) BETWEEN 1 AND 256),
    CONSTRAINT tenant_members_role_check CHECK (role IS NULL OR role OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_-]{0,62}$')
);
CREATE INDEX tenant_members_tenant_idx ON crm_security.tenant_members (tenant_id);
COMMENT ON TABLE crm_security.tenant_members IS
'memberships of users in tenants, with a role, an enabled flag and an expiry; read by set_claim_context for tokens without a tenant claim. Readable under tenant isolation, written only by the administration functions';

REVOKE ALL ON crm_security.tenant_tiers, crm_security.tenants, crm_security.tenant_members FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_security.tenant_tiers', 'WHERE NOT system');
SELECT pg_catalog.pg_extension_config_dump('crm_security.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.tenant_members', '');

-- Every backend caches what it read of tenants and tenant_members (src/tenants.c); a change
-- of either table makes every backend empty its cache before its next set_claim_context.
CREATE FUNCTION crm_security._tenants_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'crm_tenants_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION crm_security._tenants_changed() FROM PUBLIC;
COMMENT ON FUNCTION crm_security._tenants_changed() IS
'internal: makes every session drop its cached memberships and tenant states after a change of tenants or tenant_members';
CREATE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._tenants_changed();
CREATE TRIGGER tenant_members_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.tenant_members
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security._tenants_changed();

INSERT INTO crm_security.tenant_tiers (name, member_limit, features, system, description) VALUES
    ('standard', NULL, '{}', true, 'no member limit and no feature: the tier of tenants added without one'),
    ('free', 5, '{"api_access": false, "audit_export": false, "sso": false}', true, 'up to 5 members'),
    ('pro', 50, '{"api_access": true, "audit_export": true, "sso": false}', true, 'up to 50 members, API access and audit export'),
    ('enterprise', NULL, '{"api_access": true, "audit_export": true, "sso": true}', true, 'no member limit, every feature');

-- Members read the members of their tenant (the isolation policies), and among them only
-- their own row unless they hold crm:users:read (client_admin holds crm:users:manage): that
-- condition (_isolation_row_condition, sql/50_isolation.sql) is AND-ed into the permissive
-- isolation policies of this table, cross-tenant ones included, rather than added as a
-- restrictive policy, which Citus would make permissive on its shards.  Reviewers and
-- superadmins read across tenants as the isolation policies allow (the database role and
-- the context's role together).
GRANT SELECT ON crm_security.tenant_members TO PUBLIC;
SELECT crm_security.enable_tenant_isolation('crm_security.tenant_members', 'tenant_id');

---------------------------------------------------------------------------------------------
-- Administration: SECURITY DEFINER, EXECUTE for the database administrator to grant.
-- Every change of a membership or of a tenant's state is an audit event (log_event).
---------------------------------------------------------------------------------------------

CREATE FUNCTION crm_security._check_tenant_args(tenant_id text, user_id text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tenant_id IS NULL OR pg_catalog.octet_length(tenant_id) NOT BETWEEN 1 AND 256 THEN
        RAISE EXCEPTION 'invalid tenant id' USING ERRCODE = '22023',
            DETAIL = 'A tenant id is 1 to 256 bytes.';
    END IF;
    IF user_id IS NOT NULL AND pg_catalog.octet_length(user_id) NOT BETWEEN 1 AND 256 THEN
        RAISE EXCEPTION 'invalid user id' USING ERRCODE = '22023',
            DETAIL = 'A user id is 1 to 256 bytes.';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_security._check_tenant_args(text, text) IS
'internal: raises 22023 for a NULL, empty or too long tenant id or an empty or too long user id';

CREATE FUNCTION crm_security.add_tenant(id text, name text, tier text DEFAULT 'standard',
                                        member_limit integer DEFAULT NULL, features jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._check_tenant_args(id, NULL);
    IF name IS NULL OR pg_catalog.length(name) NOT BETWEEN 1 AND 256 THEN
        RAISE EXCEPTION 'invalid tenant name' USING ERRCODE = '22023',
            DETAIL = 'A tenant name is 1 to 256 characters.';
    END IF;
    IF member_limit IS NOT NULL AND member_limit OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'member limit must not be negative' USING ERRCODE = '22023';
    END IF;
    IF features IS NULL OR NOT crm_security._features_valid(features) THEN
        RAISE EXCEPTION 'invalid features' USING ERRCODE = '22023',
            DETAIL = 'Features are a JSON object of booleans.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM crm_security.tenant_tiers t WHERE t.name OPERATOR(pg_catalog.=) add_tenant.tier) THEN
        RAISE EXCEPTION 'tier "%" does not exist', tier USING ERRCODE = '42704';
    END IF;
    INSERT INTO crm_security.tenants (id, name, tier, member_limit, features)
    VALUES (id, name, tier, member_limit, features);
    PERFORM crm_security.log_event('tenant_added', 'tenant', id, 'success',
        pg_catalog.jsonb_build_object('tenant_id', id, 'tier', tier));
END
$$;
COMMENT ON FUNCTION crm_security.add_tenant(text, text, text, integer, jsonb) IS
'add a tenant of a tier, optionally overriding its member limit and features; an audit event';

CREATE FUNCTION crm_security._set_tenant_enabled(id text, enabled boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._check_tenant_args(id, NULL);
    UPDATE crm_security.tenants t SET enabled = _set_tenant_enabled.enabled
     WHERE t.id OPERATOR(pg_catalog.=) _set_tenant_enabled.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant "%" does not exist', id USING ERRCODE = '42704';
    END IF;
    PERFORM crm_security.log_event(CASE WHEN enabled THEN 'tenant_enabled' ELSE 'tenant_disabled' END,
        'tenant', id, 'success', pg_catalog.jsonb_build_object('tenant_id', id));
END
$$;
COMMENT ON FUNCTION crm_security._set_tenant_enabled(text, boolean) IS
'internal: enable or disable a tenant, an audit event';

CREATE FUNCTION crm_security.enable_tenant(id text)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT crm_security._set_tenant_enabled(id, true) $$;
COMMENT ON FUNCTION crm_security.enable_tenant(text) IS 'enable a tenant again; an audit event';

CREATE FUNCTION crm_security.disable_tenant(id text)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT crm_security._set_tenant_enabled(id, false) $$;
COMMENT ON FUNCTION crm_security.disable_tenant(text) IS
'disable a tenant: from the next set_claim_context on, in every session, it gives no claim context; an audit event';

-- Whether a membership counts now (and towards the limit).
CREATE FUNCTION crm_security._member_active(enabled boolean, expires_at timestamptz)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT enabled AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) pg_catalog.now()) $$;
COMMENT ON FUNCTION crm_security._member_active(boolean, timestamptz) IS
'internal: an enabled, unexpired membership';

-- Refuse one more active member beyond the tenant's limit.  The caller holds the lock on
-- the tenant's row, so concurrent additions to one tenant are counted one after the other.
CREATE FUNCTION crm_security._check_member_limit(tenant_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lim integer;
    n bigint;
BEGIN
    SELECT COALESCE(t.member_limit, r.member_limit) INTO lim
      FROM crm_security.tenants t JOIN crm_security.tenant_tiers r ON r.name OPERATOR(pg_catalog.=) t.tier
     WHERE t.id OPERATOR(pg_catalog.=) _check_member_limit.tenant_id;
    IF lim IS NULL THEN
        RETURN;
    END IF;
    SELECT pg_catalog.count(*) INTO n FROM crm_security.tenant_members m
     WHERE m.tenant_id OPERATOR(pg_catalog.=) _check_member_limit.tenant_id
       AND crm_security._member_active(m.enabled, m.expires_at);
    IF n OPERATOR(pg_catalog.>=) lim THEN
        RAISE EXCEPTION 'tenant "%" has reached its member limit of %', tenant_id, lim
            USING ERRCODE = '54000',
                  DETAIL = pg_catalog.format('The tenant has %s enabled, unexpired members.', n),
                  HINT = 'Remove or disable a member, or raise the limit of the tenant or of its tier.';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_security._check_member_limit(text) IS
'internal: raises 54000 naming the tenant and its limit when it has as many active members as its limit';

CREATE FUNCTION crm_security.add_tenant_member(tenant_id text, user_id text, role text DEFAULT NULL,
                                               expires_at timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cur crm_security.tenant_members;
BEGIN
    PERFORM crm_security._check_tenant_args(tenant_id, user_id);
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'invalid user id' USING ERRCODE = '22023', DETAIL = 'user_id must not be NULL.';
    END IF;
    IF role IS NOT NULL THEN
        PERFORM crm_security._check_role_args(role, tenant_id);
    END IF;
    IF expires_at IS NOT NULL AND expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
        RAISE EXCEPTION 'expiry is not in the future' USING ERRCODE = '22023';
    END IF;
    -- The tenant's row lock orders concurrent additions; the count below then sees them.
    PERFORM 1 FROM crm_security.tenants t WHERE t.id OPERATOR(pg_catalog.=) add_tenant_member.tenant_id
        FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant "%" does not exist', tenant_id USING ERRCODE = '42704',
            HINT = 'Add it with crm_security.add_tenant().';
    END IF;
    SELECT * INTO cur FROM crm_security.tenant_members m
     WHERE m.tenant_id OPERATOR(pg_catalog.=) add_tenant_member.tenant_id
       AND m.user_id OPERATOR(pg_catalog.=) add_tenant_member.user_id;
    IF NOT FOUND OR NOT crm_security._member_active(cur.enabled, cur.expires_at) THEN
        PERFORM crm_security._check_member_limit(tenant_id);
    END IF;
    INSERT INTO crm_security.tenant_members AS m (tenant_id, user_id, role, expires_at)
    VALUES (tenant_id, user_id, role, expires_at)
    ON CONFLICT ON CONSTRAINT tenant_members_pkey
    DO UPDATE SET role = EXCLUDED.role, expires_at = EXCLUDED.expires_at, enabled = true;
    PERFORM crm_security.log_event('tenant_member_added', 'tenant_member', user_id, 'success',
        pg_catalog.jsonb_build_object('tenant_id', tenant_id, 'user_id', user_id, 'role', role,
                                      'expires_at', expires_at));
END
$$;
COMMENT ON FUNCTION crm_security.add_tenant_member(text, text, text, timestamptz) IS
'make a user an enabled member of a tenant with a role, until expires_at (adding again replaces role and expiry); 54000 beyond the tenant''s member limit; an audit event';

CREATE FUNCTION crm_security.remove_tenant_member(tenant_id text, user_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._check_tenant_args(tenant_id, user_id);
    DELETE FROM crm_security.tenant_members m
     WHERE m.tenant_id OPERATOR(pg_catalog.=) remove_tenant_member.tenant_id
       AND m.user_id OPERATOR(pg_catalog.=) remove_tenant_member.user_id;
    IF FOUND THEN
        PERFORM crm_security.log_event('tenant_member_removed', 'tenant_member', user_id, 'success',
            pg_catalog.jsonb_build_object('tenant_id', tenant_id, 'user_id', user_id));
    END IF;
END
$$;
COMMENT ON FUNCTION crm_security.remove_tenant_member(text, text) IS
'remove a membership (nothing happens when there is none); from the next set_claim_context on, in every session; an audit event';

CREATE FUNCTION crm_security._set_member_enabled(tenant_id text, user_id text, enabled boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cur crm_security.tenant_members;
BEGIN
    PERFORM crm_security._check_tenant_args(tenant_id, user_id);
    IF user_id IS NULL OR enabled IS NULL THEN
        RAISE EXCEPTION 'user id must not be NULL' USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM crm_security.tenants t WHERE t.id OPERATOR(pg_catalog.=) _set_member_enabled.tenant_id
        FOR UPDATE;
    SELECT * INTO cur FROM crm_security.tenant_members m
     WHERE m.tenant_id OPERATOR(pg_catalog.=) _set_member_enabled.tenant_id
       AND m.user_id OPERATOR(pg_catalog.=) _set_member_enabled.user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user "%" is not a member of tenant "%"', user_id, tenant_id USING ERRCODE = '42704';
    END IF;
    IF enabled AND NOT crm_security._member_active(cur.enabled, cur.expires_at) THEN
        PERFORM crm_security._check_member_limit(tenant_id);
    END IF;
    UPDATE crm_security.tenant_members m SET enabled = _set_member_enabled.enabled
     WHERE m.tenant_id OPERATOR(pg_catalog.=) _set_member_enabled.tenant_id
       AND m.user_id OPERATOR(pg_catalog.=) _set_member_enabled.user_id;
    PERFORM crm_security.log_event(CASE WHEN enabled THEN 'tenant_member_enabled' ELSE 'tenant_member_disabled' END,
        'tenant_member', user_id, 'success',
        pg_catalog.jsonb_build_object('tenant_id', tenant_id, 'user_id', user_id));
END
$$;
COMMENT ON FUNCTION crm_security._set_member_enabled(text, text, boolean) IS
'internal: enable or disable a membership, an audit event';

CREATE FUNCTION crm_security.enable_tenant_member(tenant_id text, user_id text)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT crm_security._set_member_enabled(tenant_id, user_id, true) $$;
COMMENT ON FUNCTION crm_security.enable_tenant_member(text, text) IS
'enable a membership again (within the member limit); an audit event';

CREATE FUNCTION crm_security.disable_tenant_member(tenant_id text, user_id text)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT crm_security._set_member_enabled(tenant_id, user_id, false) $$;
COMMENT ON FUNCTION crm_security.disable_tenant_member(text, text) IS
'disable a membership: from the next set_claim_context on, in every session, it gives no tenant; an audit event';

REVOKE ALL ON FUNCTION crm_security.add_tenant(text, text, text, integer, jsonb),
                       crm_security._set_tenant_enabled(text, boolean),
                       crm_security.enable_tenant(text),
                       crm_security.disable_tenant(text),
                       crm_security._check_member_limit(text),
                       crm_security.add_tenant_member(text, text, text, timestamptz),
                       crm_security.remove_tenant_member(text, text),
                       crm_security._set_member_enabled(text, text, boolean),
                       crm_security.enable_tenant_member(text, text),
                       crm_security.disable_tenant_member(text, text)
    FROM PUBLIC;

---------------------------------------------------------------------------------------------
-- The context's tenant: features, and the permissions of a membership's role
---------------------------------------------------------------------------------------------

-- The tenant's override of the flag, else its tier's, else false; false without a tenant
-- in the context, for a tenant not in the table, and for NULL.
CREATE FUNCTION crm_security.tenant_feature(name text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((SELECT COALESCE((t.features OPERATOR(pg_catalog.->) $1)::boolean,
                                     (r.features OPERATOR(pg_catalog.->) $1)::boolean)
                       FROM crm_security.tenants t
                       JOIN crm_security.tenant_tiers r ON r.name OPERATOR(pg_catalog.=) t.tier
                      WHERE t.id OPERATOR(pg_catalog.=) crm_security.tenant_id()), false)
$$;
COMMENT ON FUNCTION crm_security.tenant_feature(text) IS
'whether the context''s tenant has a feature: the tenant''s override, else its tier''s flag; false without a tenant or for an unknown feature';

-- The permissions of one role by name in a tenant (a system role or one of the tenant's),
-- parents included: what a membership's role grants.  Called by the C code of
-- permissions()/can() through fmgr, not from SQL.
CREATE FUNCTION crm_security._role_permissions(role text, tenant_id text)
RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE held(id, permissions, inherits) AS (
        SELECT r.id, r.permissions, r.inherits
          FROM crm_security.roles r
         WHERE r.name OPERATOR(pg_catalog.=) $1
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
COMMENT ON FUNCTION crm_security._role_permissions(text, text) IS
'internal: permissions of a role by name in a tenant, with inheritance (a membership''s role)';
REVOKE ALL ON FUNCTION crm_security._role_permissions(text, text) FROM PUBLIC;
