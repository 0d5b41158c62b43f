-- crm_security 0.1.0 -> 0.2.0, branch ctx15 (issue 15, items 1, 3, 4, 5): verification
-- settings in the key store, context_status().  Plain SQL, run inside
-- ALTER EXTENSION crm_security UPDATE.

-- Per-key verification settings (appended, as a fresh install has them last).
ALTER TABLE crm_security.jwt_keys
    ADD COLUMN audience text,
    ADD COLUMN leeway interval,
    ADD COLUMN require_exp boolean;

-- Verification settings for every key (one row at most): kept in the key store, not in
-- settings of the session, so that a change reaches every connection (pooled ones too) at
-- its next verification.  The per-key columns of jwt_keys take precedence.  NULL: not set
-- (no audience or issuer required; leeway and require_exp from the session settings).
CREATE TABLE crm_security.jwt_settings (
    id          boolean PRIMARY KEY DEFAULT true CONSTRAINT jwt_settings_one_row CHECK (id),
    audience    text,
    issuer      text,
    leeway      interval,
    require_exp boolean,
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by  name NOT NULL DEFAULT SESSION_USER
);
REVOKE ALL ON TABLE crm_security.jwt_settings FROM PUBLIC;
COMMENT ON TABLE crm_security.jwt_settings IS
    'verification settings for every key of the key store (audience, issuer, leeway, require_exp), one row at most; seen by every session at its next verification';
SELECT pg_catalog.pg_extension_config_dump('crm_security.jwt_settings', '');

CREATE FUNCTION crm_security.jwt_settings_validate()
RETURNS trigger
AS 'MODULE_PATHNAME', 'crm_jwt_settings_validate'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION crm_security.jwt_settings_validate() FROM PUBLIC;
COMMENT ON FUNCTION crm_security.jwt_settings_validate() IS 'trigger: check a jwt_settings row (non-empty audience and issuer, leeway between 0 and 1 day)';

CREATE TRIGGER jwt_settings_validate
    BEFORE INSERT OR UPDATE ON crm_security.jwt_settings
    FOR EACH ROW EXECUTE FUNCTION crm_security.jwt_settings_validate();
CREATE TRIGGER jwt_settings_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.jwt_settings
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security.jwt_keys_changed();

-- A change of the verification settings: one line in the server log and one security event.
CREATE FUNCTION crm_security._verification_settings_changed(scope text, details jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE LOG 'crm_security verification_settings_changed scope=% by=% settings=%',
        scope, session_user, details::text;
    PERFORM crm_security.record_security_event('jwt.verification_settings_changed', 'medium',
        'verification settings changed (' || scope || ')', details);
END
$$;
REVOKE ALL ON FUNCTION crm_security._verification_settings_changed(text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION crm_security._verification_settings_changed(text, jsonb) IS
    'internal: log and record a change of the verification settings';

CREATE FUNCTION crm_security.set_verification_settings(audience text DEFAULT NULL, issuer text DEFAULT NULL,
                                                       leeway interval DEFAULT NULL,
                                                       require_exp boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO crm_security.jwt_settings AS s (id, audience, issuer, leeway, require_exp)
    VALUES (true, set_verification_settings.audience, set_verification_settings.issuer,
            set_verification_settings.leeway, set_verification_settings.require_exp)
    ON CONFLICT (id) DO UPDATE
       SET audience = EXCLUDED.audience, issuer = EXCLUDED.issuer, leeway = EXCLUDED.leeway,
           require_exp = EXCLUDED.require_exp, updated_at = pg_catalog.now(),
           updated_by = SESSION_USER;
    PERFORM crm_security._verification_settings_changed('default',
        pg_catalog.jsonb_build_object('audience', audience, 'issuer', issuer,
                                      'leeway', leeway::text, 'require_exp', require_exp));
END
$$;
REVOKE ALL ON FUNCTION crm_security.set_verification_settings(text, text, interval, boolean) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.set_verification_settings(text, text, interval, boolean) IS
    'set the verification settings for every key (NULL: not set); every session uses them from its next verification on';

CREATE FUNCTION crm_security.set_key_verification_settings(kid text, key_issuer text DEFAULT NULL,
                                                           audience text DEFAULT NULL,
                                                           leeway interval DEFAULT NULL,
                                                           require_exp boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF kid IS NULL THEN
        RAISE EXCEPTION 'kid must not be null' USING ERRCODE = '22023';
    END IF;
    UPDATE crm_security.jwt_keys AS k
       SET audience = set_key_verification_settings.audience,
           leeway = set_key_verification_settings.leeway,
           require_exp = set_key_verification_settings.require_exp
     WHERE k.kid OPERATOR(pg_catalog.=) set_key_verification_settings.kid
       AND k.issuer IS NOT DISTINCT FROM set_key_verification_settings.key_issuer;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'key "%" of issuer % does not exist', kid, coalesce('"' || key_issuer || '"', 'NULL')
            USING ERRCODE = '42704';
    END IF;
    PERFORM crm_security._verification_settings_changed('key',
        pg_catalog.jsonb_build_object('kid', kid, 'key_issuer', key_issuer, 'audience', audience,
                                      'leeway', leeway::text, 'require_exp', require_exp));
END
$$;
REVOKE ALL ON FUNCTION crm_security.set_key_verification_settings(text, text, text, interval, boolean) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.set_key_verification_settings(text, text, text, interval, boolean) IS
    'set the verification settings of one key (kid, key_issuer; NULL: those of set_verification_settings); every session uses them from its next verification on';

CREATE FUNCTION crm_security.verification_settings()
RETURNS TABLE (scope text, kid text, key_issuer text, audience text, issuer text,
               leeway interval, require_exp boolean)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'default', NULL::text, NULL::text, s.audience, s.issuer, s.leeway, s.require_exp
      FROM crm_security.jwt_settings AS s
    UNION ALL
    SELECT 'key', k.kid, k.issuer, k.audience, NULL::text, k.leeway, k.require_exp
      FROM crm_security.jwt_keys AS k
     WHERE k.issuer IS DISTINCT FROM 'crm_security:internal'
    UNION ALL
    SELECT 'session', NULL, NULL,
           NULLIF(pg_catalog.current_setting('crm_security.jwt_audience', true), ''),
           NULLIF(pg_catalog.current_setting('crm_security.jwt_issuer', true), ''),
           pg_catalog.current_setting('crm_security.clock_skew', true)::interval,
           pg_catalog.current_setting('crm_security.require_exp', true)::boolean
$$;
REVOKE ALL ON FUNCTION crm_security.verification_settings() FROM PUBLIC;
COMMENT ON FUNCTION crm_security.verification_settings() IS
    'the verification settings: the default row, each key''s own (NULL: the default''s), and this session''s settings (deprecated, checked in addition)';

-- The types of the tenant columns of isolated tables (isolated_tables is created by
-- sql/50_isolation.sql and is not readable by PUBLIC; the types are no secret).
CREATE FUNCTION crm_security._isolated_tenant_types()
RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT coalesce(pg_catalog.array_agg(DISTINCT pg_catalog.format_type(a.atttypid, NULL)), '{}')
              FROM crm_security.isolated_tables AS i
              JOIN pg_catalog.pg_attribute AS a
                ON a.attrelid OPERATOR(pg_catalog.=) i.relation
               AND a.attname OPERATOR(pg_catalog.=) i.tenant_column
               AND NOT a.attisdropped);
END
$$;
REVOKE ALL ON FUNCTION crm_security._isolated_tenant_types() FROM PUBLIC;
COMMENT ON FUNCTION crm_security._isolated_tenant_types() IS
    'internal: the types of the tenant columns of isolated tables, for context_status()';

-- Why tenant_id() is what it is (docs/context.md: "context_status()").
CREATE FUNCTION crm_security.context_status()
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    claims jsonb := crm_security.claims();
    path text := pg_catalog.current_setting('crm_security.tenant_claim');
    tenant text;
    raw text;
    types text[];
    bad text[] := '{}';
    status text;
    detail text;
    bypass boolean;
BEGIN
    SELECT r.rolsuper OR r.rolbypassrls INTO bypass FROM pg_catalog.pg_roles AS r
     WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER;
    IF claims IS NULL THEN
        status := 'no_context';
        detail := 'There is no claim context in this transaction: call crm_security.set_claim_context(token) after BEGIN, in the transaction of the queries.';
    ELSE
        tenant := crm_security.tenant_id();
        raw := crm_security.claim(path);
        IF tenant IS NULL AND raw IS NULL THEN
            status := 'tenant_claim_missing';
            detail := pg_catalog.format('The token has no claim "%s" (setting crm_security.tenant_claim), and no membership in tenant_members gave a tenant.', path);
        ELSIF tenant IS NULL THEN
            status := 'tenant_claim_unusable';
            detail := pg_catalog.format('The claim "%s" is not a string or number that names a tenant.', path);
        ELSE
            types := crm_security._isolated_tenant_types();
            IF 'uuid' OPERATOR(pg_catalog.=) ANY (types) AND crm_security.tenant_id_uuid() IS NULL THEN
                bad := bad || 'uuid'::text;
            END IF;
            IF 'bigint' OPERATOR(pg_catalog.=) ANY (types) AND crm_security.tenant_id_bigint() IS NULL THEN
                bad := bad || 'bigint'::text;
            END IF;
            IF 'integer' OPERATOR(pg_catalog.=) ANY (types) AND crm_security.tenant_id_int() IS NULL THEN
                bad := bad || 'integer'::text;
            END IF;
            IF pg_catalog.cardinality(bad) OPERATOR(pg_catalog.>) 0 THEN
                status := 'tenant_not_castable';
                detail := pg_catalog.format('The tenant "%s" is not a valid %s, the type of the tenant column of isolated tables: their policies give no rows and refuse every write.',
                                            tenant, pg_catalog.array_to_string(bad, ' or '));
            ELSE
                status := 'ok';
                detail := NULL;
            END IF;
        END IF;
    END IF;
    RETURN pg_catalog.jsonb_build_object(
        'status', status,
        'detail', detail,
        'context', claims IS NOT NULL,
        'actor_type', crm_security.actor_type(),
        'user_id', crm_security.user_id(),
        'tenant_id', tenant,
        'tenant_claim', path,
        'tenant_column_types', coalesce(types, crm_security._isolated_tenant_types()),
        'not_castable_to', bad,
        'bypasses_rls', coalesce(bypass, false));
END
$$;
COMMENT ON FUNCTION crm_security.context_status() IS
    'why tenant_id() is what it is: status ok, no_context, tenant_claim_missing, tenant_claim_unusable or tenant_not_castable, with a detail and the values involved';
