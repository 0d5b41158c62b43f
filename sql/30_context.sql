\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- Key store and claim context (API.md section 3).

---------------------------------------------------------------------------------------------
-- Key store
---------------------------------------------------------------------------------------------

-- Trusted verification keys.  Only the extension owner (a superuser) can read or write the
-- table; the admin functions below are SECURITY DEFINER and EXECUTE on them is granted to
-- nobody by default.  Every row is validated by parsing its key (trigger below), so a row
-- that is in the table is a key that can be used.  The trigger also checks every constraint
-- below first, with a message of its own: PostgreSQL's message for a violated constraint
-- would show the whole row, secret included.
--
-- A key is identified by (kid, issuer): identity providers reuse kids like "1" or
-- "default", and a key of one issuer never replaces or vouches for a key of another.
CREATE TABLE crm_security.jwt_keys (
    kid         text NOT NULL
                CHECK (kid <> '' AND pg_catalog.octet_length(kid) <= 256),
    algorithm   text NOT NULL,
    key         text,           -- HMAC secret or PEM (public key or certificate)
    jwk         jsonb,          -- or a JWK
    issuer      text            -- when set, tokens verified by this key must carry this iss
                CONSTRAINT jwt_keys_issuer_check CHECK (issuer <> ''),
    not_before  timestamptz,    -- validity window of the key itself
    not_after   timestamptz,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- Verification settings of this key (NULL: those of jwt_settings); see
    -- set_key_verification_settings() below.
    audience    text,
    leeway      interval,
    require_exp boolean,
    CONSTRAINT jwt_keys_kid_issuer_key UNIQUE NULLS NOT DISTINCT (kid, issuer),
    CONSTRAINT jwt_keys_one_material CHECK ((key IS NULL) <> (jwk IS NULL)),
    CONSTRAINT jwt_keys_window CHECK (not_before IS NULL OR not_after IS NULL OR not_before < not_after)
);
REVOKE ALL ON TABLE crm_security.jwt_keys FROM PUBLIC;
COMMENT ON TABLE crm_security.jwt_keys IS 'trusted JWT verification keys (not readable by PUBLIC), one per (kid, issuer)';
-- pg_dump keeps the keys with the extension, except the extension's own signing key
-- (kid crm_security.internal, issuer crm_security:internal): only the extension writes that
-- row, and a restored database creates a key of its own at its first use.
SELECT pg_catalog.pg_extension_config_dump('crm_security.jwt_keys',
    'WHERE issuer IS DISTINCT FROM ''crm_security:internal''');

CREATE FUNCTION crm_security.jwt_keys_validate()
RETURNS trigger
AS 'MODULE_PATHNAME', 'crm_jwt_keys_validate'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION crm_security.jwt_keys_validate() FROM PUBLIC;
COMMENT ON FUNCTION crm_security.jwt_keys_validate() IS 'trigger: check a jwt_keys row and parse its key, fill in its algorithm';

CREATE FUNCTION crm_security.jwt_keys_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'crm_jwt_keys_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION crm_security.jwt_keys_changed() FROM PUBLIC;
COMMENT ON FUNCTION crm_security.jwt_keys_changed() IS 'trigger: make every session reload the key store before its next verification';

CREATE TRIGGER jwt_keys_validate
    BEFORE INSERT OR UPDATE ON crm_security.jwt_keys
    FOR EACH ROW EXECUTE FUNCTION crm_security.jwt_keys_validate();
CREATE TRIGGER jwt_keys_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.jwt_keys
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security.jwt_keys_changed();

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

-- A change of a key (added, updated, disabled): one line in the server log and one security
-- event, jwt.key_<action>, in the transaction of the change.  The details name the key (kid,
-- algorithm, issuer, validity window) and the function that changed it, never its material.
CREATE FUNCTION crm_security._jwt_key_changed(action text, details jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE LOG 'crm_security jwt_key_changed action=% by=% key=%', action, session_user, details::text;
    PERFORM crm_security.record_security_event('jwt.key_' || action, 'medium',
        'JWT verification key ' || action || ' by ' || coalesce(details ->> 'via', 'an update'), details);
END
$$;
REVOKE ALL ON FUNCTION crm_security._jwt_key_changed(text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION crm_security._jwt_key_changed(text, jsonb) IS
    'internal: log and record a change of a key of the key store (kid, algorithm, issuer; never its material)';

-- The functions that take keys are in C: every error they raise keeps the statement (which
-- carries the key) out of the server log, and no error shows the key.
CREATE FUNCTION crm_security.add_jwt_key(kid text, algorithm text, key text, issuer text DEFAULT NULL,
                                         not_before timestamptz DEFAULT NULL,
                                         not_after timestamptz DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'crm_add_jwt_key_text'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION crm_security.add_jwt_key(text, text, text, text, timestamptz, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.add_jwt_key(text, text, text, text, timestamptz, timestamptz) IS
    'add a trusted verification key (HMAC secret or PEM) for one algorithm; 23505 when (kid, issuer) exists';

CREATE FUNCTION crm_security.add_jwt_key(kid text, jwk jsonb, issuer text DEFAULT NULL,
                                         not_before timestamptz DEFAULT NULL,
                                         not_after timestamptz DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'crm_add_jwt_key_jwk'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION crm_security.add_jwt_key(text, jsonb, text, timestamptz, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.add_jwt_key(text, jsonb, text, timestamptz, timestamptz) IS
    'add a trusted verification key given as a public JWK (algorithm from its alg, kty and crv)';

CREATE FUNCTION crm_security.import_jwks(jwks jsonb, issuer text DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'crm_import_jwks'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION crm_security.import_jwks(jsonb, text) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.import_jwks(jsonb, text) IS
    'add or update every signature key of a JWKS as keys of issuer (keys need a kid; a key is identified by kid and issuer); returns how many keys it holds';

-- The same, and with disable_missing the enabled keys of the issuer that the JWKS no longer
-- holds are disabled (a key rotated out by the identity provider).  No defaults, so that
-- import_jwks(jwks) and import_jwks(jwks, issuer) stay import_jwks(jsonb, text).
CREATE FUNCTION crm_security.import_jwks(jwks jsonb, issuer text, disable_missing boolean,
                                         OUT imported integer, OUT disabled integer,
                                         OUT disabled_kids text[])
RETURNS record
AS 'MODULE_PATHNAME', 'crm_import_jwks_sync'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION crm_security.import_jwks(jsonb, text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.import_jwks(jsonb, text, boolean) IS
    'import a JWKS as keys of issuer; with disable_missing, disable (not delete) the enabled keys of issuer that it does not hold (22023 without an issuer or without signature keys); returns the number imported, the number disabled and their kids';

CREATE FUNCTION crm_security.disable_jwt_key(kid text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF kid IS NULL THEN
        RAISE EXCEPTION 'kid must not be null' USING ERRCODE = '22023';
    END IF;
    SELECT count(*) INTO n FROM crm_security.jwt_keys AS k WHERE k.kid OPERATOR(pg_catalog.=) disable_jwt_key.kid;
    IF n = 0 THEN
        RAISE EXCEPTION 'key "%" does not exist', kid USING ERRCODE = '42704';
    ELSIF n > 1 THEN
        RAISE EXCEPTION 'key ID "%" names keys of % issuers', kid, n USING ERRCODE = '22023',
            HINT = 'Name the issuer: crm_security.disable_jwt_key(kid, issuer).';
    END IF;
    UPDATE crm_security.jwt_keys AS k SET enabled = false WHERE k.kid OPERATOR(pg_catalog.=) disable_jwt_key.kid;
    PERFORM crm_security._jwt_key_changed('disabled', pg_catalog.jsonb_build_object(
                'kid', k.kid, 'algorithm', k.algorithm, 'issuer', k.issuer, 'not_before', k.not_before,
                'not_after', k.not_after, 'via', 'disable_jwt_key'))
       FROM crm_security.jwt_keys AS k WHERE k.kid OPERATOR(pg_catalog.=) disable_jwt_key.kid;
END
$$;
REVOKE ALL ON FUNCTION crm_security.disable_jwt_key(text) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.disable_jwt_key(text) IS
    'stop trusting the key of this kid (when only one issuer uses the kid), in every session at once; logged and recorded as a security event';

CREATE FUNCTION crm_security.disable_jwt_key(kid text, issuer text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF kid IS NULL THEN
        RAISE EXCEPTION 'kid must not be null' USING ERRCODE = '22023';
    END IF;
    UPDATE crm_security.jwt_keys AS k SET enabled = false
     WHERE k.kid OPERATOR(pg_catalog.=) disable_jwt_key.kid AND k.issuer IS NOT DISTINCT FROM disable_jwt_key.issuer;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'key "%" of issuer % does not exist', kid, coalesce('"' || issuer || '"', 'NULL')
            USING ERRCODE = '42704';
    END IF;
    PERFORM crm_security._jwt_key_changed('disabled', pg_catalog.jsonb_build_object(
                'kid', k.kid, 'algorithm', k.algorithm, 'issuer', k.issuer, 'not_before', k.not_before,
                'not_after', k.not_after, 'via', 'disable_jwt_key'))
       FROM crm_security.jwt_keys AS k
      WHERE k.kid OPERATOR(pg_catalog.=) disable_jwt_key.kid AND k.issuer IS NOT DISTINCT FROM disable_jwt_key.issuer;
END
$$;
REVOKE ALL ON FUNCTION crm_security.disable_jwt_key(text, text) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.disable_jwt_key(text, text) IS
    'stop trusting the key (kid, issuer), issuer NULL for the key without issuer, in every session at once; logged and recorded as a security event';

---------------------------------------------------------------------------------------------
-- Claim context
---------------------------------------------------------------------------------------------

-- tenant_id picks the tenant of a user who belongs to several (tenant_members, in
-- sql/55_tenants.sql); request_id is what the audit records for the transaction.
CREATE FUNCTION crm_security.set_claim_context(token text, tenant_id text DEFAULT NULL,
                                               request_id text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_set_claim_context'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.set_claim_context(text, text, text) IS
    'verify a JWT against the key store, resolve its tenant (the tenant claim, else the user''s membership in tenant_id or only membership) and make it the context of this transaction; request_id goes to the audit';

CREATE FUNCTION crm_security.clear_claim_context()
RETURNS void
AS 'MODULE_PATHNAME', 'crm_clear_claim_context'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.clear_claim_context() IS 'drop the claim context of this transaction now';

CREATE FUNCTION crm_security.claims()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_claims'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.claims() IS 'the verified claims of this transaction, NULL without a context';

CREATE FUNCTION crm_security.claim(path text)
RETURNS text
AS 'MODULE_PATHNAME', 'crm_claim'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.claim(text) IS
    'one verified claim as text; a dotted path reaches nested objects (''app_metadata.tenant_id''), the longest member name matching first (''https://crm.example.com/tenant'')';

CREATE FUNCTION crm_security.user_id()
RETURNS text
AS 'MODULE_PATHNAME', 'crm_user_id'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.user_id() IS 'the verified sub claim, NULL without a context';

CREATE FUNCTION crm_security.tenant_id()
RETURNS text
AS 'MODULE_PATHNAME', 'crm_tenant_id'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.tenant_id() IS
    'the context''s tenant: the verified tenant claim (setting crm_security.tenant_claim), else the tenant resolved from tenant_members; NULL without either';

CREATE FUNCTION crm_security.app_role()
RETURNS text
AS 'MODULE_PATHNAME', 'crm_app_role'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.app_role() IS
    'the context''s application role: the membership''s role or the verified role claim (settings crm_security.role_source, crm_security.role_claim), NULL without a context';

CREATE FUNCTION crm_security.actor_type()
RETURNS text
AS 'MODULE_PATHNAME', 'crm_actor_type'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.actor_type() IS
    'user (a token of the key store), api_key (set_api_key_context) or service (a service token): decided by the key that signed, never by a claim; NULL without a context';

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
