-- crm_security 0.1.0 -> 0.2.0, branch ctx15b (issue 15): key changes logged and recorded as
-- security events, import_jwks(jwks, issuer, disable_missing).  Plain SQL, run inside
-- ALTER EXTENSION crm_security UPDATE.  add_jwt_key() and import_jwks(jsonb, text) keep their
-- SQL definitions (the logging is in their C functions).

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

-- disable_jwt_key: the change is logged and recorded.
CREATE OR REPLACE FUNCTION crm_security.disable_jwt_key(kid text)
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

CREATE OR REPLACE FUNCTION crm_security.disable_jwt_key(kid text, issuer text)
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
