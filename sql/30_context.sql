\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- Key store and claim context (API.md section 3).

---------------------------------------------------------------------------------------------
-- Key store
---------------------------------------------------------------------------------------------

-- Trusted verification keys.  Only the extension owner (a superuser) can read or write the
-- table; the admin functions below are SECURITY DEFINER and EXECUTE on them is granted to
-- nobody by default.  Every row is validated by parsing its key (trigger below), so a row
-- that is in the table is a key that can be used.
CREATE TABLE crm_security.jwt_keys (
    kid         text PRIMARY KEY
                CHECK (kid <> '' AND pg_catalog.octet_length(kid) <= 256),
    algorithm   text NOT NULL,
    key         text,           -- HMAC secret or PEM (public key or certificate)
    jwk         jsonb,          -- or a JWK
    issuer      text,           -- when set, tokens verified by this key must carry this iss
    not_before  timestamptz,    -- validity window of the key itself
    not_after   timestamptz,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT jwt_keys_one_material CHECK ((key IS NULL) <> (jwk IS NULL)),
    CONSTRAINT jwt_keys_window CHECK (not_before IS NULL OR not_after IS NULL OR not_before < not_after)
);
REVOKE ALL ON TABLE crm_security.jwt_keys FROM PUBLIC;
COMMENT ON TABLE crm_security.jwt_keys IS 'trusted JWT verification keys (not readable by PUBLIC)';
-- pg_dump keeps the keys with the extension.
SELECT pg_catalog.pg_extension_config_dump('crm_security.jwt_keys', '');

CREATE FUNCTION crm_security.jwt_keys_validate()
RETURNS trigger
AS 'MODULE_PATHNAME', 'crm_jwt_keys_validate'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION crm_security.jwt_keys_validate() FROM PUBLIC;
COMMENT ON FUNCTION crm_security.jwt_keys_validate() IS 'trigger: parse and check the key of a jwt_keys row, fill in its algorithm';

CREATE FUNCTION crm_security.jwt_keys_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'crm_jwt_keys_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION crm_security.jwt_keys_changed() FROM PUBLIC;
COMMENT ON FUNCTION crm_security.jwt_keys_changed() IS 'trigger: make every session reload the key store at its next transaction';

CREATE TRIGGER jwt_keys_validate
    BEFORE INSERT OR UPDATE ON crm_security.jwt_keys
    FOR EACH ROW EXECUTE FUNCTION crm_security.jwt_keys_validate();
CREATE TRIGGER jwt_keys_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm_security.jwt_keys
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security.jwt_keys_changed();

CREATE FUNCTION crm_security.add_jwt_key(kid text, algorithm text, key text, issuer text DEFAULT NULL,
                                         not_before timestamptz DEFAULT NULL,
                                         not_after timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF kid IS NULL OR algorithm IS NULL OR key IS NULL THEN
        RAISE EXCEPTION 'kid, algorithm and key must not be null' USING ERRCODE = '22023';
    END IF;
    INSERT INTO crm_security.jwt_keys AS k (kid, algorithm, key, issuer, not_before, not_after)
    VALUES (add_jwt_key.kid, add_jwt_key.algorithm, add_jwt_key.key, add_jwt_key.issuer,
            add_jwt_key.not_before, add_jwt_key.not_after);
END
$$;
REVOKE ALL ON FUNCTION crm_security.add_jwt_key(text, text, text, text, timestamptz, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.add_jwt_key(text, text, text, text, timestamptz, timestamptz) IS
    'add a trusted verification key (HMAC secret or PEM) for one algorithm';

CREATE FUNCTION crm_security.add_jwt_key(kid text, jwk jsonb, issuer text DEFAULT NULL,
                                         not_before timestamptz DEFAULT NULL,
                                         not_after timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF kid IS NULL OR jwk IS NULL THEN
        RAISE EXCEPTION 'kid and jwk must not be null' USING ERRCODE = '22023';
    END IF;
    IF jwk ? 'kid' AND jwk->>'kid' IS DISTINCT FROM kid THEN
        RAISE EXCEPTION 'kid "%" does not match the JWK', kid USING ERRCODE = '22023',
            DETAIL = 'The JWK names a different key ID.';
    END IF;
    INSERT INTO crm_security.jwt_keys AS k (kid, algorithm, jwk, issuer, not_before, not_after)
    VALUES (add_jwt_key.kid, NULL, add_jwt_key.jwk, add_jwt_key.issuer,
            add_jwt_key.not_before, add_jwt_key.not_after);
END
$$;
REVOKE ALL ON FUNCTION crm_security.add_jwt_key(text, jsonb, text, timestamptz, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.add_jwt_key(text, jsonb, text, timestamptz, timestamptz) IS
    'add a trusted verification key given as a public JWK (algorithm from its alg, kty and crv)';

CREATE FUNCTION crm_security.import_jwks(jwks jsonb, issuer text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    member jsonb;
    n integer := 0;
BEGIN
    IF jwks IS NULL THEN
        RAISE EXCEPTION 'jwks must not be null' USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.jsonb_typeof(jwks) <> 'object' OR pg_catalog.jsonb_typeof(jwks->'keys') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'invalid JWKS' USING ERRCODE = '22023',
            DETAIL = 'A JWKS is a JSON object with a "keys" array.';
    END IF;
    FOR member IN SELECT e FROM pg_catalog.jsonb_array_elements(jwks->'keys') AS e LOOP
        IF pg_catalog.jsonb_typeof(member) <> 'object' THEN
            RAISE EXCEPTION 'invalid JWKS' USING ERRCODE = '22023',
                DETAIL = 'Every member of "keys" must be a JSON object.';
        END IF;
        -- Encryption keys are not for signatures: leave them out.
        CONTINUE WHEN member->>'use' = 'enc';
        IF pg_catalog.jsonb_typeof(member->'kid') IS DISTINCT FROM 'string' OR member->>'kid' = '' THEN
            RAISE EXCEPTION 'invalid JWKS' USING ERRCODE = '22023',
                DETAIL = 'Every key of the JWKS needs a "kid" to be imported.';
        END IF;
        -- A key that is already there gets the new material; a disabled key stays disabled.
        INSERT INTO crm_security.jwt_keys AS k (kid, algorithm, jwk, issuer)
        VALUES (member->>'kid', NULL, member, import_jwks.issuer)
        ON CONFLICT ON CONSTRAINT jwt_keys_pkey DO UPDATE
            SET algorithm = excluded.algorithm, key = NULL, jwk = excluded.jwk, issuer = excluded.issuer
            WHERE (k.algorithm, k.key, k.jwk, k.issuer)
                  IS DISTINCT FROM (excluded.algorithm, NULL::text, excluded.jwk, excluded.issuer);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION crm_security.import_jwks(jsonb, text) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.import_jwks(jsonb, text) IS
    'add or update every signature key of a JWKS (keys need a kid); returns how many keys it holds';

CREATE FUNCTION crm_security.disable_jwt_key(kid text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF kid IS NULL THEN
        RAISE EXCEPTION 'kid must not be null' USING ERRCODE = '22023';
    END IF;
    UPDATE crm_security.jwt_keys AS k SET enabled = false WHERE k.kid = disable_jwt_key.kid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'key "%" does not exist', kid USING ERRCODE = '42704';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION crm_security.disable_jwt_key(text) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.disable_jwt_key(text) IS
    'stop trusting a key, in every session from its next transaction';

---------------------------------------------------------------------------------------------
-- Claim context
---------------------------------------------------------------------------------------------

CREATE FUNCTION crm_security.set_claim_context(token text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_set_claim_context'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.set_claim_context(text) IS
    'verify a JWT against the key store and make its claims the context of this transaction';

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
    'the verified tenant claim (setting crm_security.tenant_claim), NULL without a context';

CREATE FUNCTION crm_security.app_role()
RETURNS text
AS 'MODULE_PATHNAME', 'crm_app_role'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.app_role() IS
    'the verified application role claim (setting crm_security.role_claim), NULL without a context';

CREATE FUNCTION crm_security.actor_type()
RETURNS text
AS 'MODULE_PATHNAME', 'crm_actor_type'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.actor_type() IS 'user, service or api_key; NULL without a context';
