-- crm_security 0.1.0: generated from sql/[0-9][0-9]_*.sql, do not edit

-- sql/00_schema.sql
\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- The schema is created by CREATE EXTENSION (crm_security.control names it).  Nothing in
-- it is for PUBLIC unless granted below, object by object.
REVOKE ALL ON SCHEMA crm_security FROM PUBLIC;
GRANT USAGE ON SCHEMA crm_security TO PUBLIC;

COMMENT ON SCHEMA crm_security IS 'crm_security: verified claim context, permissions, tenant isolation, API keys, audit';

CREATE FUNCTION crm_security.version()
RETURNS text
AS 'MODULE_PATHNAME', 'crm_security_version'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.version() IS 'version of the loaded crm_security library';

-- sql/10_crypto.sql
-- Crypto primitives (API.md section 1)

CREATE FUNCTION crm_security.hmac(data bytea, key bytea, algorithm text DEFAULT 'sha256')
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_hmac_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.hmac(bytea, bytea, text) IS
'HMAC-SHA256/384/512 of data with key (any key length); algorithm is sha256, sha384 or sha512';

CREATE FUNCTION crm_security.hmac(data text, key text, algorithm text DEFAULT 'sha256')
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_hmac_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.hmac(text, text, text) IS
'HMAC-SHA256/384/512 of the UTF-8 bytes of data with the UTF-8 bytes of key';

CREATE FUNCTION crm_security.secure_compare(a bytea, b bytea)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_secure_compare'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.secure_compare(bytea, bytea) IS
'equality in time that depends only on the lengths, for MACs and secrets';

CREATE FUNCTION crm_security.secure_compare(a text, b text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_secure_compare'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.secure_compare(text, text) IS
'byte equality of two texts in time that depends only on their lengths';

CREATE FUNCTION crm_security.random_bytes(n integer)
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_random_bytes'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.random_bytes(integer) IS
'n bytes (1 to 1048576) from the OpenSSL CSPRNG';

CREATE FUNCTION crm_security.verify_signature(algorithm text, key text, message bytea, signature bytea)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_verify_signature_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.verify_signature(text, text, bytea, bytea) IS
'raw JOSE signature check with an HMAC secret or a PEM key; false for a wrong signature';

CREATE FUNCTION crm_security.verify_signature(algorithm text, key jsonb, message bytea, signature bytea)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_verify_signature_jsonb'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.verify_signature(text, jsonb, bytea, bytea) IS
'raw JOSE signature check with a JWK or JWKS; false for a wrong signature';

CREATE FUNCTION crm_security.sign_message(algorithm text, key text, message bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_sign_message_text'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.sign_message(text, text, bytea) IS
'raw JOSE signature (ECDSA as r||s) with an HMAC secret or a PEM private key';

CREATE FUNCTION crm_security.sign_message(algorithm text, key jsonb, message bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_sign_message_jsonb'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.sign_message(text, jsonb, bytea) IS
'raw JOSE signature (ECDSA as r||s) with a private JWK';

-- Keys as JWK (additions to API.md section 1: making and publishing keys in SQL)

CREATE FUNCTION crm_security.generate_jwk(algorithm text, kid text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_generate_jwk'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.generate_jwk(text, text) IS
'a new private JWK for algorithm (RSA 2048, EC P-256/384/521, Ed25519, or an HMAC secret as long as the hash), bound to it with "alg"';

CREATE FUNCTION crm_security.jwk_public(jwk jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_jwk_public'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jwk_public(jsonb) IS
'the public JWK of a private JWK (kid and alg kept), for publishing in a JWKS';

CREATE FUNCTION crm_security.pem_to_jwk(pem text, kid text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_pem_to_jwk'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.pem_to_jwk(text, text) IS
'the public JWK of a PEM key (SPKI, PKCS#8, traditional or X.509 certificate)';

-- sql/20_jwt.sql
-- JWT and JWS (API.md section 2)

CREATE FUNCTION crm_security.jwt_verify(token text, key text, algorithms text[] DEFAULT NULL,
                                        audience text DEFAULT NULL, issuer text DEFAULT NULL,
                                        leeway interval DEFAULT '0 seconds')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_jwt_verify_text'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jwt_verify(text, text, text[], text, text, interval) IS
'verify a compact JWT with an HMAC secret or PEM key and check its claims; returns the claims or raises 28000';

CREATE FUNCTION crm_security.jwt_verify(token text, key jsonb, algorithms text[] DEFAULT NULL,
                                        audience text DEFAULT NULL, issuer text DEFAULT NULL,
                                        leeway interval DEFAULT '0 seconds')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_jwt_verify_jsonb'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jwt_verify(text, jsonb, text[], text, text, interval) IS
'verify a compact JWT with a JWK or a JWKS (key picked by kid) and check its claims';

CREATE FUNCTION crm_security.jwt_sign(claims jsonb, key text, algorithm text DEFAULT 'HS256',
                                      header jsonb DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'crm_jwt_sign_text'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jwt_sign(jsonb, text, text, jsonb) IS
'sign claims into a compact JWT with an HMAC secret or a PEM private key';

CREATE FUNCTION crm_security.jwt_sign(claims jsonb, key jsonb, algorithm text DEFAULT 'HS256',
                                      header jsonb DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'crm_jwt_sign_jsonb'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jwt_sign(jsonb, jsonb, text, jsonb) IS
'sign claims into a compact JWT with a private JWK (its kid goes into the header)';

CREATE FUNCTION crm_security.jwt_decode(token text,
                                        OUT header jsonb, OUT payload jsonb, OUT signature bytea)
RETURNS record
AS 'MODULE_PATHNAME', 'crm_jwt_decode'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jwt_decode(text) IS
'split and decode a compact JWT WITHOUT verifying it, for inspection only';

CREATE FUNCTION crm_security.jws_verify(jws text, key jsonb)
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_jws_verify_jsonb'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jws_verify(text, jsonb) IS
'verify a compact JWS with a JWK or JWKS and return its payload; no claim checks';

CREATE FUNCTION crm_security.jws_verify(jws text, key text)
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_jws_verify_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.jws_verify(text, text) IS
'verify a compact JWS with an HMAC secret or PEM key and return its payload';

-- sql/30_context.sql
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
END
$$;
REVOKE ALL ON FUNCTION crm_security.disable_jwt_key(text) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.disable_jwt_key(text) IS
    'stop trusting the key of this kid (when only one issuer uses the kid), in every session at once';

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
END
$$;
REVOKE ALL ON FUNCTION crm_security.disable_jwt_key(text, text) FROM PUBLIC;
COMMENT ON FUNCTION crm_security.disable_jwt_key(text, text) IS
    'stop trusting the key (kid, issuer), issuer NULL for the key without issuer, in every session at once';

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

-- sql/40_permissions.sql
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

-- sql/50_isolation.sql
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

-- The registry of isolated tables: what enable_tenant_isolation (and the event trigger
-- below, for partitions and inheritance children) put under isolation, and the policies it
-- created there as pg_get_expr prints them, so that isolation_report can tell a policy
-- added or rewritten later from the extension's own.  Written only by the functions below
-- (src/isolation_registry.c), which check that the caller owns the table.  `relation` is a
-- regclass so that pg_dump saves it by name and a restore resolves it again.
CREATE TABLE crm_security.isolated_tables (
    relation      regclass PRIMARY KEY,
    tenant_column name NOT NULL,
    cross_tenant  boolean NOT NULL,
    policies      jsonb,
    system        boolean NOT NULL DEFAULT false,
    CONSTRAINT isolated_tables_policies_array CHECK (policies IS NULL OR pg_catalog.jsonb_typeof(policies) = 'array')
);
COMMENT ON TABLE crm_security.isolated_tables IS
'tables under tenant isolation: tenant column, options, and the policies enable_tenant_isolation created (NULL: not yet created); system rows come from the extension''s install script';
REVOKE ALL ON crm_security.isolated_tables FROM PUBLIC;
GRANT SELECT ON crm_security.isolated_tables TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_security.isolated_tables', 'WHERE NOT system');

-- The policies of a table as the registry records them and isolation_report compares them:
-- name, command, roles (sorted; "public" for PUBLIC), permissive flag, USING and WITH CHECK
-- as pg_get_expr prints them under this function's search_path.
CREATE FUNCTION crm_security._isolation_policies(tbl oid, ours_only boolean)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'name', p.polname,
               'command', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                        WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
               'roles', (SELECT pg_catalog.array_agg(CASE WHEN r.r OPERATOR(pg_catalog.=) 0 THEN 'public'
                                                          ELSE pg_catalog.pg_get_userbyid(r.r)::text END
                                                     ORDER BY 1)
                           FROM pg_catalog.unnest(p.polroles) AS r(r)),
               'permissive', p.polpermissive,
               'using', pg_catalog.pg_get_expr(p.polqual, p.polrelid),
               'check', pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)) ORDER BY p.polname), '[]')
      FROM pg_catalog.pg_policy p
     WHERE p.polrelid OPERATOR(pg_catalog.=) tbl
       AND (NOT ours_only OR p.polname OPERATOR(pg_catalog.=) ANY (crm_security._isolation_policy_names()))
$$;
COMMENT ON FUNCTION crm_security._isolation_policies(oid, boolean) IS
'internal: the policies of a table (or only those named as the isolation policies) as the registry records them';

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
-- The statements that put one table (not its partitions) under isolation.
CREATE FUNCTION crm_security._isolation_statements(tbl regclass, tenant_column name, cross_tenant boolean)
RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ oid;
    coll oid;
    val text;
    eq text;
    floor text;
    col text;
    reader text;
    writer text;
    checker text;
    stmts text[];
    eq_read text;
    eq_write text;
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
    -- Record-level access (sql/58_record_access.sql, enable_record_access): its conditions
    -- are AND-ed with the tenant equality inside these permissive policies (not added as
    -- restrictive policies, which Citus makes permissive on its shards).
    eq_read := eq;
    eq_write := eq;
    -- Each arm is AND-ed with the equality and the results OR-ed, so that every arm can be
    -- an index condition together with the tenant.
    IF pg_catalog.to_regprocedure('crm_security._record_access_conditions(pg_catalog.regclass)') IS NOT NULL THEN
        EXECUTE 'SELECT readers, writers FROM crm_security._record_access_conditions($1)' INTO rec_read, rec_write USING tbl;
        IF rec_read IS NOT NULL THEN
            eq_read := (SELECT pg_catalog.string_agg(pg_catalog.format('(%s AND %s)', eq, a), ' OR ' ORDER BY n)
                          FROM pg_catalog.unnest(rec_read) WITH ORDINALITY AS x(a, n));
            eq_write := (SELECT pg_catalog.string_agg(pg_catalog.format('(%s AND %s)', eq, a), ' OR ' ORDER BY n)
                           FROM pg_catalog.unnest(rec_write) WITH ORDINALITY AS x(a, n));
        END IF;
    END IF;
    IF cross_tenant THEN
        reader := pg_catalog.format('%s OR %s >= CASE WHEN crm_security.app_role() = ANY (''{reviewer,superadmin}''::text[]) THEN %s END',
                                    eq_read, col, floor);
        writer := pg_catalog.format('%s OR %s >= CASE WHEN crm_security.app_role() = ''superadmin'' THEN %s END',
                                    eq_write, col, floor);
        checker := pg_catalog.format('%s OR crm_security.app_role() = ''superadmin''', eq_write);
    ELSE
        -- One equality and nothing else: the plans of a table without RLS and an explicit
        -- WHERE, ordered index scans included.
        reader := eq_read;
        writer := eq_write;
        checker := eq_write;
    END IF;

    stmts := ARRAY[pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl),
                   pg_catalog.format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl)];
    stmts := stmts || ARRAY(SELECT pg_catalog.format('DROP POLICY %I ON %s', p.polname, tbl)
                              FROM pg_catalog.pg_policy p
                             WHERE p.polrelid = tbl AND p.polname = ANY (crm_security._isolation_policy_names())
                             ORDER BY p.polname);
    RETURN stmts || ARRAY[
        pg_catalog.format('CREATE POLICY crm_tenant_select ON %s AS PERMISSIVE FOR SELECT TO PUBLIC USING (%s)',
                          tbl, reader),
        pg_catalog.format('CREATE POLICY crm_tenant_insert ON %s AS PERMISSIVE FOR INSERT TO PUBLIC WITH CHECK (%s)',
                          tbl, checker),
        pg_catalog.format('CREATE POLICY crm_tenant_update ON %s AS PERMISSIVE FOR UPDATE TO PUBLIC USING (%s) WITH CHECK (%s)',
                          tbl, writer, checker),
        pg_catalog.format('CREATE POLICY crm_tenant_delete ON %s AS PERMISSIVE FOR DELETE TO PUBLIC USING (%s)',
                          tbl, writer),
        pg_catalog.format('CREATE POLICY crm_tenant_reviewer_no_insert ON %s AS RESTRICTIVE FOR INSERT TO PUBLIC WITH CHECK (crm_security.app_role() IS DISTINCT FROM ''reviewer'')',
                          tbl),
        pg_catalog.format('CREATE POLICY crm_tenant_reviewer_no_update ON %s AS RESTRICTIVE FOR UPDATE TO PUBLIC USING (crm_security.app_role() IS DISTINCT FROM ''reviewer'')',
                          tbl),
        pg_catalog.format('CREATE POLICY crm_tenant_reviewer_no_delete ON %s AS RESTRICTIVE FOR DELETE TO PUBLIC USING (crm_security.app_role() IS DISTINCT FROM ''reviewer'')',
                          tbl)];
END
$$;
COMMENT ON FUNCTION crm_security._isolation_statements(regclass, name, boolean) IS
'internal: the statements that put one table under tenant isolation (row level security enabled and forced, the isolation policies replaced)';

CREATE FUNCTION crm_security._isolation_register(tbl regclass, tenant_column name, cross_tenant boolean)
RETURNS void
AS 'MODULE_PATHNAME', 'crm_isolation_register'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm_security._isolation_register(regclass, name, boolean) IS
'internal: record a table the caller owns in the registry with its tenant column and options, its policies not yet created';

CREATE FUNCTION crm_security._isolation_apply(tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'crm_isolation_apply'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm_security._isolation_apply(regclass) IS
'internal: create the isolation policies of a registered table the caller owns, as its registry row says, and record them';

CREATE FUNCTION crm_security._isolation_unregister(tbl oid)
RETURNS void
AS 'MODULE_PATHNAME', 'crm_isolation_unregister'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm_security._isolation_unregister(oid) IS
'internal: remove the registry row of a table the caller owns, or of a table that no longer exists';

-- A table and its partitions and inheritance children at any depth, parents first.
CREATE FUNCTION crm_security._isolation_tree(tbl regclass)
RETURNS TABLE (relid regclass, relkind "char", depth integer)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE t(relid, depth) AS (
        SELECT tbl::oid, 0
      UNION
        SELECT i.inhrelid, t.depth OPERATOR(pg_catalog.+) 1
          FROM t JOIN pg_catalog.pg_inherits i ON i.inhparent OPERATOR(pg_catalog.=) t.relid
         WHERE t.depth OPERATOR(pg_catalog.<) 1000
    )
    SELECT t.relid::regclass, c.relkind, pg_catalog.min(t.depth)
      FROM t JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
     WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,f}'::"char"[])
     GROUP BY t.relid, c.relkind
     ORDER BY 3, 1
$$;
COMMENT ON FUNCTION crm_security._isolation_tree(regclass) IS
'internal: a table and its partitions and inheritance children (tables and foreign tables), parents first';

-- The registered ancestors of a table (not the table itself), nearest first.
CREATE FUNCTION crm_security._isolation_ancestors(tbl regclass)
RETURNS TABLE (relid regclass, tenant_column name, cross_tenant boolean, depth integer)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE u(relid, depth) AS (
        SELECT i.inhparent, 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) tbl::oid
      UNION
        SELECT i.inhparent, u.depth OPERATOR(pg_catalog.+) 1
          FROM u JOIN pg_catalog.pg_inherits i ON i.inhrelid OPERATOR(pg_catalog.=) u.relid
         WHERE u.depth OPERATOR(pg_catalog.<) 1000
    )
    SELECT r.relation, r.tenant_column, r.cross_tenant, pg_catalog.min(u.depth)
      FROM u JOIN crm_security.isolated_tables r ON r.relation::oid OPERATOR(pg_catalog.=) u.relid
     GROUP BY r.relation, r.tenant_column, r.cross_tenant
     ORDER BY 4, 1
$$;
COMMENT ON FUNCTION crm_security._isolation_ancestors(regclass) IS
'internal: the ancestors of a table that are under tenant isolation, nearest first';

CREATE FUNCTION crm_security.enable_tenant_isolation(tbl regclass, tenant_column name DEFAULT 'tenant_id',
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
'enable and force row level security on a table (and its partitions and inheritance children) with policies confining every context to its tenant; with cross_tenant, reviewer reads all and superadmin does all; idempotent';

CREATE FUNCTION crm_security.disable_tenant_isolation(tbl regclass)
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
                    WHERE p.polrelid = part.relid AND p.polname = ANY (crm_security._isolation_policy_names()) LOOP
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

-- Event trigger: a partition or inheritance child that a CREATE TABLE or ALTER TABLE
-- (PARTITION OF, ATTACH PARTITION, INHERITS, INHERIT) puts under an isolated table is
-- isolated as that table is, at any depth; a foreign table there, or a child of isolated
-- tables with different settings, is refused.  A renamed tenant column of an isolated table
-- is followed.  It runs with the rights of the role running the command, which owns the
-- new child (ALTER TABLE and CREATE TABLE ... INHERITS require it).
CREATE FUNCTION crm_security._isolation_on_ddl()
RETURNS event_trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    anc record;
    inherits boolean;
    columns boolean;
    to_protect regclass[] := '{}';
    t regclass;
BEGIN
    -- Most commands touch no partition, child or parent, and rename no column: they are
    -- let through on the catalog alone (also for roles that may not use this schema).
    SELECT pg_catalog.bool_or(EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                                       WHERE i.inhrelid = c.objid OR i.inhparent = c.objid)),
           pg_catalog.bool_or(c.objsubid > 0)
      INTO inherits, columns
      FROM pg_catalog.pg_event_trigger_ddl_commands() c
     WHERE c.classid = 'pg_catalog.pg_class'::regclass;
    IF NOT COALESCE(inherits, false) AND NOT COALESCE(columns, false) THEN
        RETURN;
    END IF;
    -- A role that may not use this schema renames its columns unhindered (a renamed tenant
    -- column is then reported by isolation_report); partitions and children are checked.
    IF NOT inherits AND NOT pg_catalog.has_schema_privilege('crm_security', 'USAGE') THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM crm_security.isolated_tables) THEN
        RETURN;
    END IF;
    -- A renamed tenant column (RENAME COLUMN names the column it renamed, and renames it in
    -- the children too): the table and its children are isolated again on the new name.
    FOR rel IN
        SELECT DISTINCT r.relation, r.cross_tenant, n.attname AS newcol
          FROM pg_catalog.pg_event_trigger_ddl_commands() c
          JOIN pg_catalog.pg_attribute n ON n.attrelid = c.objid AND n.attnum = c.objsubid
         CROSS JOIN LATERAL crm_security._isolation_tree(c.objid::regclass) tr
          JOIN crm_security.isolated_tables r ON r.relation = tr.relid
         WHERE c.classid = 'pg_catalog.pg_class'::regclass AND c.objsubid > 0
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                            WHERE a.attrelid = r.relation AND a.attname = r.tenant_column
                              AND a.attnum > 0 AND NOT a.attisdropped)
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid = r.relation AND a.attname = n.attname AND a.attnum > 0 AND NOT a.attisdropped)
    LOOP
        PERFORM crm_security._isolation_register(rel.relation, rel.newcol, rel.cross_tenant);
        to_protect := to_protect || rel.relation;
    END LOOP;
    -- Every table the command touched, and their partitions and children.
    FOR rel IN
        SELECT DISTINCT tr.relid, tr.relkind, tr.depth, r.tenant_column, r.cross_tenant,
               r.relation IS NOT NULL AS registered
          FROM (SELECT DISTINCT c.objid FROM pg_catalog.pg_event_trigger_ddl_commands() c
                 WHERE c.classid = 'pg_catalog.pg_class'::regclass) o,
               crm_security._isolation_tree(o.objid::regclass) tr
          LEFT JOIN crm_security.isolated_tables r ON r.relation = tr.relid
         ORDER BY tr.depth
    LOOP
        IF (SELECT pg_catalog.count(DISTINCT (a.tenant_column, a.cross_tenant))
              FROM crm_security._isolation_ancestors(rel.relid) a) > 1 THEN
            RAISE EXCEPTION '"%" cannot inherit from isolated tables with different tenant isolation settings', rel.relid
                USING ERRCODE = '42P16',
                      DETAIL = 'Its isolated ancestors are isolated by different tenant columns or cross_tenant options.';
        END IF;
        SELECT * INTO anc FROM crm_security._isolation_ancestors(rel.relid) a LIMIT 1;
        IF NOT FOUND THEN
            CONTINUE;
        END IF;
        IF rel.relkind = 'f' THEN
            RAISE EXCEPTION 'foreign table "%" cannot be a partition or child of the isolated table "%"', rel.relid, anc.relid
                USING ERRCODE = '42P16',
                      DETAIL = 'Row level security does not apply to foreign tables: queried directly, it would show every tenant''s rows.';
        END IF;
        IF rel.registered AND rel.tenant_column = anc.tenant_column AND rel.cross_tenant = anc.cross_tenant THEN
            CONTINUE;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid = rel.relid AND a.attname = anc.tenant_column AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION '"%" cannot be a partition or child of the isolated table "%": it has no column "%"',
                            rel.relid, anc.relid, anc.tenant_column
                USING ERRCODE = '42P16';
        END IF;
        -- Registered before its policies are made, so that the ALTER TABLEs of
        -- _isolation_apply, which fire this trigger again, find it done.
        PERFORM crm_security._isolation_register(rel.relid, anc.tenant_column, anc.cross_tenant);
        to_protect := to_protect || rel.relid;
    END LOOP;
    FOREACH t IN ARRAY to_protect LOOP
        PERFORM crm_security._isolation_apply(t);
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_security._isolation_on_ddl() IS
'event trigger: isolate new and attached partitions and inheritance children of isolated tables as their parent, refuse those that cannot be, follow a renamed tenant column';

CREATE FUNCTION crm_security._isolation_on_drop()
RETURNS event_trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o oid;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0)
       -- for a role that may not use this schema, the row stays behind: it names an oid
       -- that no longer exists, which isolation_report ignores
       OR NOT pg_catalog.has_schema_privilege('crm_security', 'USAGE') THEN
        RETURN;
    END IF;
    FOR o IN SELECT d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d
              WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
                AND EXISTS (SELECT 1 FROM crm_security.isolated_tables r WHERE r.relation::oid = d.objid) LOOP
        PERFORM crm_security._isolation_unregister(o);
    END LOOP;
END
$$;
COMMENT ON FUNCTION crm_security._isolation_on_drop() IS
'event trigger: forget the registry rows of dropped tables';

CREATE EVENT TRIGGER crm_security_isolation_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE')
    EXECUTE FUNCTION crm_security._isolation_on_ddl();
-- ALWAYS: also under session_replication_role = replica.
ALTER EVENT TRIGGER crm_security_isolation_ddl ENABLE ALWAYS;
CREATE EVENT TRIGGER crm_security_isolation_drop ON sql_drop
    EXECUTE FUNCTION crm_security._isolation_on_drop();
ALTER EVENT TRIGGER crm_security_isolation_drop ENABLE ALWAYS;

CREATE FUNCTION crm_security.isolation_report(tenant_columns name[] DEFAULT '{tenant_id}')
RETURNS TABLE (relation regclass, kind text, tenant_column name, issue text)
LANGUAGE sql STABLE PARALLEL SAFE
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
    ORDER BY 1, 2, 4
$$;
COMMENT ON FUNCTION crm_security.isolation_report(name[]) IS
'every table under tenant isolation, every partition or child of one, and every table with a tenant column (or isolation policies), with what its protection lacks (policies added, missing or changed since enable_tenant_isolation included), and every view or materialized view over one that bypasses it; empty when all is well';

-- sql/55_tenants.sql
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
-- their own row unless they hold crm:users:read (client_admin holds crm:users:manage).
-- Reviewers and superadmins read across tenants as the isolation policies allow.
GRANT SELECT ON crm_security.tenant_members TO PUBLIC;
SELECT crm_security.enable_tenant_isolation('crm_security.tenant_members', 'tenant_id');
CREATE POLICY crm_members_own_or_admin ON crm_security.tenant_members AS RESTRICTIVE FOR SELECT TO PUBLIC
    USING (user_id OPERATOR(pg_catalog.=) crm_security.user_id() OR crm_security.can('crm:users:read'));
-- The registry row of this table (a system row, made by enable_tenant_isolation above) records
-- the whole policy set, this policy included, so that isolation_report compares against it.
UPDATE crm_security.isolated_tables
   SET policies = crm_security._isolation_policies('crm_security.tenant_members'::regclass, false)
 WHERE relation OPERATOR(pg_catalog.=) 'crm_security.tenant_members'::regclass;

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

-- sql/58_record_access.sql
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

-- sql/60_audit.sql
-- Audit log (API.md section 6; the model and hash formats are in docs/audit.md).
--
-- Entries are written by a C trigger and by log_event(); each carries the HMAC-SHA256 of its
-- canonical form under the entry key (a file of the data directory that no SQL function
-- returns) from the moment it is inserted.  seal_audit_log() later links committed
-- entries into hash-chained blocks.  Nobody may UPDATE, DELETE or TRUNCATE the three tables
-- below through SQL: the protecting triggers are ENABLE ALWAYS, so they fire under
-- session_replication_role = replica too; whatever goes around them is reported by
-- verify_audit_log().

-- Ids need only be unique (entries are ordered by transaction, then id); a cache spares
-- concurrent writers a shared sequence update per entry.
CREATE SEQUENCE crm_security.audit_log_id_seq AS bigint CACHE 32;

CREATE TABLE crm_security.audit_log (
    id              bigint NOT NULL DEFAULT pg_catalog.nextval('crm_security.audit_log_id_seq'),
    txid            bigint NOT NULL,
    logged_at       timestamptz NOT NULL,
    kind            text NOT NULL,
    table_name      text,
    operation       text NOT NULL,
    record_key      jsonb,
    old_row         jsonb,
    new_row         jsonb,
    changed_columns text[],
    resource_type   text,
    resource_id     text,
    result          text,
    metadata        jsonb,
    actor_type      text NOT NULL,
    actor_id        text,
    tenant_id       text,
    db_user         text NOT NULL,
    request_id      text,
    client_addr     inet,
    entry_hash      bytea NOT NULL,
    CONSTRAINT audit_log_kind_check CHECK (kind IN ('row', 'event'))
);
ALTER SEQUENCE crm_security.audit_log_id_seq OWNED BY crm_security.audit_log.id;
-- No B-tree primary key: measured, it was a third of the cost of every audited row.  Ids
-- come from the sequence alone and are unique as long as nobody goes around the
-- protection, which verify_audit_log() reports.  txid and id grow with the physical order
-- of the table, which is what BRIN needs, at almost no cost per insert; sealing,
-- verification and lookups by id use it.  Add B-tree indexes for the queries you run (by
-- tenant, table, actor): the writer keeps them up to date.
CREATE INDEX audit_log_txid_id_brin ON crm_security.audit_log USING brin (txid, id);

COMMENT ON TABLE crm_security.audit_log IS 'append-only audit log: row changes of audited tables and application events, each with the HMAC-SHA256 of its canonical form under the entry key';

CREATE TABLE crm_security.audit_blocks (
    block_id      bigint PRIMARY KEY,
    prev_hash     bytea NOT NULL,
    txid_lo       bigint NOT NULL,
    txid_hi       bigint NOT NULL,
    entry_count   bigint NOT NULL,
    entries_hash  bytea NOT NULL,
    sealed_at     timestamptz NOT NULL,
    block_hash    bytea NOT NULL,
    CONSTRAINT audit_blocks_range_check CHECK (txid_lo < txid_hi)
);
COMMENT ON TABLE crm_security.audit_blocks IS 'hash-chained blocks of sealed audit entries; block N holds the entries whose txid lies in [txid_lo, txid_hi)';

CREATE TABLE crm_security.audit_purges (
    purged_through_block bigint PRIMARY KEY,
    purged_at            timestamptz NOT NULL,
    entries_deleted      bigint NOT NULL,
    purged_by            text NOT NULL
);
COMMENT ON TABLE crm_security.audit_purges IS 'list of purges for convenience, never trusted by verification: a purge is proven by its audit.purge entry in the chain';

REVOKE ALL ON crm_security.audit_log, crm_security.audit_blocks, crm_security.audit_purges,
    crm_security.audit_log_id_seq FROM PUBLIC;

-- The log is data to keep: pg_dump saves the entries, blocks, purge records and the id
-- sequence with the extension, and a restore loads them with COPY (which fires no UPDATE,
-- DELETE or TRUNCATE trigger) after CREATE EXTENSION has made the tables and their
-- protection.  See "Dump and restore" in docs/audit.md.
SELECT pg_catalog.pg_extension_config_dump('crm_security.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.audit_blocks', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.audit_purges', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.audit_log_id_seq', '');

-- Append-only protection.
CREATE FUNCTION crm_security.audit_protect()
RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_protect'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.audit_protect() IS 'trigger: refuses UPDATE, DELETE and TRUNCATE of the audit tables (purge_audit_log() is the only way to delete entries), an entry whose keyed hash does not verify, and a block that ends beyond the cluster''s transaction counter';
REVOKE ALL ON FUNCTION crm_security.audit_protect() FROM PUBLIC;

-- A statement trigger refuses every UPDATE, DELETE and TRUNCATE, even of no rows; a row
-- trigger also catches changes that fire only row triggers (logical replication apply).
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crm_security.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security.audit_protect();
-- On audit_log the row trigger also refuses every inserted row whose keyed hash does not
-- verify under the entry key: entries come from the extension's writer (which goes around
-- it on its fast path, and passes it otherwise), or from a restore of entries made under
-- the same key.
CREATE TRIGGER audit_log_append_only_rows BEFORE INSERT OR UPDATE OR DELETE ON crm_security.audit_log
    FOR EACH ROW EXECUTE FUNCTION crm_security.audit_protect();
ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only_rows;
CREATE TRIGGER audit_blocks_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crm_security.audit_blocks
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security.audit_protect();
-- On audit_blocks the row trigger also checks that an inserted block ends at a transaction
-- this cluster has reached (a restore into a cluster whose transaction counter is behind).
CREATE TRIGGER audit_blocks_append_only_rows BEFORE INSERT OR UPDATE OR DELETE ON crm_security.audit_blocks
    FOR EACH ROW EXECUTE FUNCTION crm_security.audit_protect();
ALTER TABLE crm_security.audit_blocks ENABLE ALWAYS TRIGGER audit_blocks_append_only;
ALTER TABLE crm_security.audit_blocks ENABLE ALWAYS TRIGGER audit_blocks_append_only_rows;
CREATE TRIGGER audit_purges_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crm_security.audit_purges
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security.audit_protect();
CREATE TRIGGER audit_purges_append_only_rows BEFORE UPDATE OR DELETE ON crm_security.audit_purges
    FOR EACH ROW EXECUTE FUNCTION crm_security.audit_protect();
ALTER TABLE crm_security.audit_purges ENABLE ALWAYS TRIGGER audit_purges_append_only;
ALTER TABLE crm_security.audit_purges ENABLE ALWAYS TRIGGER audit_purges_append_only_rows;

-- The row trigger of audited tables.  Anyone may use it: it only records changes that
-- really happen to a table the caller may put triggers on.
CREATE FUNCTION crm_security.audit_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_trigger'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.audit_trigger() IS 'trigger: records INSERT, UPDATE, DELETE (per row) and TRUNCATE (per statement) of an audited table; arguments are the excluded columns';

CREATE FUNCTION crm_security.enable_audit(tbl regclass, exclude_columns text[] DEFAULT NULL,
    personal_columns text[] DEFAULT NULL, subject_column name DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'audit_enable'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.enable_audit(regclass, text[], text[], name) IS 'audit every INSERT, UPDATE, DELETE and TRUNCATE of a table with a primary key, never storing the excluded columns, and storing the personal columns encrypted under the data key of their subject (subject_column, else the primary key); idempotent';

CREATE FUNCTION crm_security.disable_audit(tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'audit_disable'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.disable_audit(regclass) IS 'stop auditing a table (recorded in the audit log); idempotent';

-- log_event has the signature of API.md section 6, and a second form that names a data
-- subject (docs/privacy.md).  The subject has no default, so that a call with up to five
-- arguments can only mean the first form: pass the first five positionally, then
-- subject => ... and personal_keys => ....
CREATE FUNCTION crm_security.log_event(action text, resource_type text DEFAULT NULL,
    resource_id text DEFAULT NULL, result text DEFAULT 'success', metadata jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_log_event'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.log_event(text, text, text, text, jsonb) IS 'record an application event (login, export, denied, ...) in the audit log; returns its id';

CREATE FUNCTION crm_security.log_event(action text, resource_type text, resource_id text,
    result text, metadata jsonb, subject text, personal_keys text[] DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_log_event'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.log_event(text, text, text, text, jsonb, text, text[]) IS 'record an application event in the audit log with personal metadata of a data subject: the metadata members named in personal_keys (all when NULL) are stored encrypted under the subject''s data key; returns its id';

CREATE FUNCTION crm_security.seal_audit_log()
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_seal'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm_security.seal_audit_log() IS 'link committed, unsealed audit entries into hash-chained blocks; returns the number of entries sealed';
REVOKE ALL ON FUNCTION crm_security.seal_audit_log() FROM PUBLIC;

CREATE FUNCTION crm_security.audit_digest()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'audit_digest'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.audit_digest() IS 'the newest block''s id and hash, to keep outside the database and pass to verify_audit_log()';

CREATE FUNCTION crm_security.verify_audit_log(digest jsonb DEFAULT NULL,
    OUT ok boolean, OUT blocks_checked bigint, OUT entries_checked bigint,
    OUT first_bad_block bigint, OUT detail text)
RETURNS record
AS 'MODULE_PATHNAME', 'audit_verify'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.verify_audit_log(jsonb) IS 'recompute every entry hash, block hash and link of the audit log; with a digest, also prove that the chain still reaches it';

CREATE FUNCTION crm_security.audit_log_problems(digest jsonb DEFAULT NULL)
RETURNS TABLE (block_id bigint, entry_id bigint, problem text)
AS 'MODULE_PATHNAME', 'audit_log_problems'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION crm_security.audit_log_problems(jsonb) IS 'every problem verify_audit_log() finds, one row each: the block, the entry, what is wrong';

CREATE FUNCTION crm_security.audit_key_fingerprint()
RETURNS text
AS 'MODULE_PATHNAME', 'audit_key_fingerprint'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.audit_key_fingerprint() IS 'names the entry key of this cluster (SHA-256 of a value derived from it) without revealing it';
REVOKE ALL ON FUNCTION crm_security.audit_key_fingerprint() FROM PUBLIC;

CREATE FUNCTION crm_security.purge_audit_log(older_than interval)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_purge'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm_security.purge_audit_log(interval) IS 'delete the entries of whole sealed blocks sealed before now() - older_than, keeping the block headers as a verifiable anchor, and record the purge in the chain; returns the number of entries deleted';
REVOKE ALL ON FUNCTION crm_security.purge_audit_log(interval) FROM PUBLIC;

CREATE FUNCTION crm_security.audit_canonical_entry(entry_id bigint)
RETURNS bytea
AS 'MODULE_PATHNAME', 'audit_canonical_entry'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.audit_canonical_entry(bigint) IS 'the exact bytes whose HMAC-SHA256 under the entry key is the entry_hash of an audit entry, for outside verifiers';

-- Compliance views.  security_invoker: reading them needs SELECT on audit_log.
CREATE VIEW crm_security.audit_changes WITH (security_invoker = true) AS
SELECT id, logged_at, tenant_id, table_name, record_key, operation, changed_columns,
       old_row, new_row, actor_type, actor_id, db_user, request_id, client_addr, txid
  FROM crm_security.audit_log
 WHERE kind = 'row';
COMMENT ON VIEW crm_security.audit_changes IS 'change tracking: every audited row change, filterable by tenant_id, table_name and record_key';

CREATE VIEW crm_security.audit_access_events WITH (security_invoker = true) AS
SELECT id, logged_at, tenant_id, actor_type, actor_id, db_user, operation AS action,
       resource_type, resource_id, result,
       result IN ('denied', 'failure', 'error') AS denied,
       metadata, request_id, client_addr
  FROM crm_security.audit_log
 WHERE kind = 'event';
COMMENT ON VIEW crm_security.audit_access_events IS 'access and denial events recorded by log_event(), filterable by tenant_id and actor';

CREATE VIEW crm_security.audit_actor_summary WITH (security_invoker = true) AS
SELECT tenant_id, actor_type, actor_id,
       pg_catalog.count(*) AS events,
       pg_catalog.count(*) FILTER (WHERE denied) AS denials,
       pg_catalog.min(logged_at) AS first_seen,
       pg_catalog.max(logged_at) AS last_seen
  FROM crm_security.audit_access_events
 GROUP BY tenant_id, actor_type, actor_id;
COMMENT ON VIEW crm_security.audit_actor_summary IS 'access and denial events per tenant and actor';

-- tgargs holds each argument followed by a zero byte: the excluded columns, and with
-- personal columns, these and the subject column ('' for the primary key).
CREATE VIEW crm_security.audited_tables WITH (security_invoker = true) AS
SELECT t.tgrelid::pg_catalog.regclass AS table_name,
       CASE WHEN t.tgnargs OPERATOR(pg_catalog.=) ANY ('{1,3}'::pg_catalog.int2[]) THEN
           pg_catalog.convert_from(pg_catalog.substring(t.tgargs, 1, a1.z OPERATOR(pg_catalog.-) 1),
                                   pg_catalog.getdatabaseencoding())::text[]
       END AS exclude_columns,
       CASE WHEN t.tgnargs OPERATOR(pg_catalog.=) 3 THEN
           pg_catalog.convert_from(pg_catalog.substring(a1.rest, 1, a2.z OPERATOR(pg_catalog.-) 1),
                                   pg_catalog.getdatabaseencoding())::text[]
       END AS personal_columns,
       CASE WHEN t.tgnargs OPERATOR(pg_catalog.=) 3 THEN
           NULLIF(pg_catalog.convert_from(pg_catalog.substring(a2.rest, 1, pg_catalog.length(a2.rest) OPERATOR(pg_catalog.-) 1),
                                          pg_catalog.getdatabaseencoding()), '')::name
       END AS subject_column
  FROM pg_catalog.pg_trigger t,
       LATERAL (SELECT pg_catalog.position(t.tgargs, '\x00'::bytea) AS z) p1,
       LATERAL (SELECT p1.z, pg_catalog.substring(t.tgargs, p1.z OPERATOR(pg_catalog.+) 1) AS rest) a1,
       LATERAL (SELECT pg_catalog.position(a1.rest, '\x00'::bytea) AS z,
                       pg_catalog.substring(a1.rest, pg_catalog.position(a1.rest, '\x00'::bytea) OPERATOR(pg_catalog.+) 1) AS rest) a2
 WHERE t.tgname = 'crm_audit_row'
   AND t.tgfoid = 'crm_security.audit_trigger()'::pg_catalog.regprocedure;
COMMENT ON VIEW crm_security.audited_tables IS 'tables audited by enable_audit(), their excluded columns, and their personal columns and subject column (NULL: the primary key)';

-- Monitoring: the tables audit was enabled on (by the newest audit.enable or audit.disable
-- event of each, so that a table whose triggers were dropped is still listed) and the
-- tables that have audit triggers, with the state of both triggers.  A table whose owner
-- dropped or disabled a trigger shows audited = false.
CREATE VIEW crm_security.audit_table_status WITH (security_invoker = true) AS
WITH events AS (
    SELECT DISTINCT ON (resource_id) resource_id, operation, logged_at
      FROM crm_security.audit_log
     WHERE kind OPERATOR(pg_catalog.=) 'event' AND resource_type OPERATOR(pg_catalog.=) 'table'
       AND operation OPERATOR(pg_catalog.=) ANY (ARRAY['audit.enable', 'audit.disable'])
     ORDER BY resource_id, txid DESC, id DESC
), tables AS (
    SELECT e.resource_id AS table_name, pg_catalog.to_regclass(e.resource_id) AS relid,
           e.logged_at AS enabled_at
      FROM events e
     WHERE e.operation OPERATOR(pg_catalog.=) 'audit.enable'
    UNION
    SELECT t.tgrelid::pg_catalog.regclass::pg_catalog.text, t.tgrelid::pg_catalog.regclass, NULL
      FROM pg_catalog.pg_trigger t
     WHERE t.tgname OPERATOR(pg_catalog.=) ANY (ARRAY['crm_audit_row', 'crm_audit_truncate']::pg_catalog.name[])
       AND t.tgfoid OPERATOR(pg_catalog.=) 'crm_security.audit_trigger()'::pg_catalog.regprocedure
       AND NOT EXISTS (SELECT FROM events e
                        WHERE e.operation OPERATOR(pg_catalog.=) 'audit.enable'
                          AND pg_catalog.to_regclass(e.resource_id) OPERATOR(pg_catalog.=) t.tgrelid)
)
SELECT s.table_name, s.relid, s.enabled_at, s.row_trigger, s.truncate_trigger,
       s.row_trigger OPERATOR(pg_catalog.=) ANY (ARRAY['enabled', 'always'])
         AND s.truncate_trigger OPERATOR(pg_catalog.=) ANY (ARRAY['enabled', 'always']) AS audited
  FROM (SELECT t.table_name, t.relid, pg_catalog.max(t.enabled_at) AS enabled_at,
               COALESCE((SELECT CASE g.tgenabled WHEN 'O' THEN 'enabled' WHEN 'A' THEN 'always'
                                     WHEN 'R' THEN 'replica only' ELSE 'disabled' END
                           FROM pg_catalog.pg_trigger g
                          WHERE g.tgrelid OPERATOR(pg_catalog.=) t.relid
                            AND g.tgname OPERATOR(pg_catalog.=) 'crm_audit_row'
                            AND g.tgfoid OPERATOR(pg_catalog.=) 'crm_security.audit_trigger()'::pg_catalog.regprocedure),
                        'missing') AS row_trigger,
               COALESCE((SELECT CASE g.tgenabled WHEN 'O' THEN 'enabled' WHEN 'A' THEN 'always'
                                     WHEN 'R' THEN 'replica only' ELSE 'disabled' END
                           FROM pg_catalog.pg_trigger g
                          WHERE g.tgrelid OPERATOR(pg_catalog.=) t.relid
                            AND g.tgname OPERATOR(pg_catalog.=) 'crm_audit_truncate'
                            AND g.tgfoid OPERATOR(pg_catalog.=) 'crm_security.audit_trigger()'::pg_catalog.regprocedure),
                        'missing') AS truncate_trigger
          FROM tables t
         GROUP BY t.table_name, t.relid) s;
COMMENT ON VIEW crm_security.audit_table_status IS 'monitoring: every table audit was enabled on or that has audit triggers, whether both triggers exist and are enabled (audited), and when auditing was enabled';

REVOKE ALL ON crm_security.audit_changes, crm_security.audit_access_events,
    crm_security.audit_actor_summary, crm_security.audit_table_status FROM PUBLIC;
GRANT SELECT ON crm_security.audited_tables TO PUBLIC;

-- sql/65_privacy.sql
-- Personal data in the audit log (API.md section 8; the model is in docs/privacy.md).
--
-- The values of a table's personal columns (enable_audit(personal_columns => ...)) and
-- chosen metadata members of log_event(subject => ...) are stored in audit entries as
-- AES-256-GCM ciphertext under a data key of their data subject, before the entry is
-- hashed.  forget_subject() destroys the key: the values become unreadable everywhere,
-- the entries stay, and the chain verifies, since it never needs the data keys.

-- Auditors read personal values in clear through audit_personal_data(); nobody else can.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'crm_security_auditor') THEN
        CREATE ROLE crm_security_auditor NOLOGIN;
    END IF;
END
$$;

-- Key ids are never reused: a ciphertext names its key, and a key made for the same
-- subject after forget_subject() must not read what was erased.
CREATE SEQUENCE crm_security.audit_subject_keys_id_seq AS bigint;

-- One row per (tenant, subject): the data key, wrapped (AES-256-GCM, with the tenant and
-- subject as associated data) under a key-encryption key derived from the entry key file,
-- which is not in the database: the rows of this table, in a dump or a backup of the
-- table, do not decrypt anything without that file.
CREATE TABLE crm_security.audit_subject_keys (
    key_id      bigint PRIMARY KEY DEFAULT pg_catalog.nextval('crm_security.audit_subject_keys_id_seq'),
    tenant_id   text,
    subject     text NOT NULL,
    wrapped_key bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT audit_subject_keys_subject_key UNIQUE NULLS NOT DISTINCT (tenant_id, subject)
);
ALTER SEQUENCE crm_security.audit_subject_keys_id_seq OWNED BY crm_security.audit_subject_keys.key_id;
COMMENT ON TABLE crm_security.audit_subject_keys IS 'data keys of data subjects, wrapped under a key derived from the entry key file; deleting a row (forget_subject()) erases the subject''s personal values from the audit log';
REVOKE ALL ON crm_security.audit_subject_keys, crm_security.audit_subject_keys_id_seq FROM PUBLIC;
-- A dump keeps the wrapped keys (what was not erased stays readable after a restore into a
-- cluster with the same entry key file) and never the erased ones (their rows are gone).
SELECT pg_catalog.pg_extension_config_dump('crm_security.audit_subject_keys', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.audit_subject_keys_id_seq', '');

CREATE FUNCTION crm_security.audit_personal_data(entry_id bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'audit_personal_data'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION crm_security.audit_personal_data(bigint) IS 'an audit entry''s old_row, new_row and metadata with personal values decrypted, erased ones as {"erased": true}; for roles granted crm_security_auditor (42501 for others)';
GRANT EXECUTE ON FUNCTION crm_security.audit_personal_data(bigint) TO PUBLIC;

CREATE FUNCTION crm_security.forget_subject(tenant_id text, subject text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_forget_subject'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.forget_subject(text, text) IS 'crypto-shredding: destroy the data key of a data subject (tenant_id NULL: no tenant), so that their personal values in the audit log become unreadable while the entries and the chain stay verifiable; recorded as an audit.forget event; returns how many entries held their values';
REVOKE ALL ON FUNCTION crm_security.forget_subject(text, text) FROM PUBLIC;

-- Auditors may read the log and its compliance views (personal values there are
-- ciphertext; audit_personal_data() decrypts them).
GRANT SELECT ON crm_security.audit_log, crm_security.audit_changes,
    crm_security.audit_access_events, crm_security.audit_actor_summary TO crm_security_auditor;

-- sql/70_api_keys.sql
\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- API keys (API.md section 5; docs/api-keys.md).
--
-- A key is identified by its id and held by an integration; its secrets (the key strings it
-- has had: one current, and the ones a rotation replaced, each valid until the end of its
-- grace period) are stored only as hashes.  Nobody but the extension owner reads the hashes;
-- verify_api_key() (granted to PUBLIC; it runs its lookup as the tables' owner) is how an
-- application checks a key.
-- Keys are managed by superusers and members of crm_security_api_admin: the management
-- functions run with the caller's rights, which that role holds on the tables, so that the
-- creator recorded is the role that really called.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'crm_security_api_admin') THEN
        CREATE ROLE crm_security_api_admin NOLOGIN;
    END IF;
END
$$;

CREATE TABLE crm_security.api_keys (
    id                    uuid PRIMARY KEY,
    name                  text NOT NULL
                          CHECK (name <> '' AND pg_catalog.octet_length(name) <= 256),
    tenant_id             text
                          CHECK (tenant_id <> '' AND pg_catalog.octet_length(tenant_id) <= 256),
    display_prefix        text NOT NULL,  -- of the current secret, for people to recognise it
    scopes                text[] NOT NULL,
    allowed_services      text[],         -- NULL: any service
    allowed_ips           cidr[],         -- NULL: any address
    expires_at            timestamptz,    -- NULL: never
    revoked_at            timestamptz,
    revoked_by            text,
    rate_limit_per_minute integer CHECK (rate_limit_per_minute > 0),
    rate_limit_per_day    integer CHECK (rate_limit_per_day > 0),
    created_by            text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT pg_catalog.now(),
    rotated_at            timestamptz
);
COMMENT ON TABLE crm_security.api_keys IS 'API keys of integrations: holder, tenant, scopes, restrictions, limits, lifecycle (the secrets are in api_key_secrets)';

CREATE TABLE crm_security.api_key_secrets (
    key_hash        bytea PRIMARY KEY CHECK (pg_catalog.octet_length(key_hash) = 32),
    key_id          uuid NOT NULL REFERENCES crm_security.api_keys (id) ON DELETE CASCADE,
    hash_scheme     text NOT NULL CHECK (hash_scheme IN ('sha256', 'hmac-sha256')),
    display_prefix  text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    valid_until     timestamptz     -- NULL: the current secret; else replaced by a rotation
);
CREATE INDEX api_key_secrets_key_id ON crm_security.api_key_secrets (key_id);
COMMENT ON TABLE crm_security.api_key_secrets IS 'hashes of the key strings of each API key (never the keys): the current one and those a rotation replaced, with the end of their grace period';

CREATE TABLE crm_security.api_key_usage (
    key_id        uuid PRIMARY KEY REFERENCES crm_security.api_keys (id) ON DELETE CASCADE,
    use_count     bigint NOT NULL DEFAULT 0,
    last_used_at  timestamptz,
    last_used_ip  inet,
    minute_start  timestamptz NOT NULL DEFAULT '-infinity',
    minute_count  integer NOT NULL DEFAULT 0,
    day_start     timestamptz NOT NULL DEFAULT '-infinity',
    day_count     integer NOT NULL DEFAULT 0
);
COMMENT ON TABLE crm_security.api_key_usage IS 'use counters of API keys; with shared_preload_libraries the live counters are in shared memory and written here every crm_security.api_key_usage_flush_interval (read them with api_key_usage())';

REVOKE ALL ON crm_security.api_keys, crm_security.api_key_secrets, crm_security.api_key_usage FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON crm_security.api_keys TO crm_security_api_admin;
-- The hashes stay unreadable even to the administrators.
GRANT SELECT (key_id, hash_scheme, display_prefix, created_at, valid_until),
      INSERT, UPDATE (valid_until) ON crm_security.api_key_secrets TO crm_security_api_admin;
-- UPDATE: flush_api_key_usage() writes the shared counters with its caller's rights.
GRANT SELECT, INSERT, UPDATE ON crm_security.api_key_usage TO crm_security_api_admin;

SELECT pg_catalog.pg_extension_config_dump('crm_security.api_keys', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.api_key_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.api_key_usage', '');

---------------------------------------------------------------------------------------------
-- Format and hashing
---------------------------------------------------------------------------------------------

CREATE FUNCTION crm_security.generate_api_key(prefix text DEFAULT 'crm_live')
RETURNS text
AS 'MODULE_PATHNAME', 'crm_generate_api_key'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.generate_api_key(text) IS
    'a new key <prefix>_<30 base62 characters from the CSPRNG><6 base62 characters of CRC32>; stores nothing';

CREATE FUNCTION crm_security.api_key_format_valid(api_key text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_api_key_format_valid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.api_key_format_valid(text) IS
    'whether a string has the form of an API key (prefix grammar, length, CRC32 checksum), without a table lookup; false for NULL';

CREATE FUNCTION crm_security.hash_api_key(api_key text)
RETURNS bytea
AS 'MODULE_PATHNAME', 'crm_hash_api_key'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.hash_api_key(text) IS
    'the hash a key is stored under now: HMAC-SHA256 with crm_security.api_key_pepper when set, else SHA-256';

CREATE FUNCTION crm_security._api_key_new(prefix text, OUT api_key text, OUT key_hash bytea,
                                          OUT hash_scheme text, OUT display_prefix text)
RETURNS record
AS 'MODULE_PATHNAME', 'crm_api_key_new'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION crm_security._api_key_new(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security._api_key_new(text) TO crm_security_api_admin;
COMMENT ON FUNCTION crm_security._api_key_new(text) IS
    'internal: a new key and what is stored of it (hash, scheme, display prefix)';

---------------------------------------------------------------------------------------------
-- Verification and usage
---------------------------------------------------------------------------------------------

CREATE FUNCTION crm_security.verify_api_key(api_key text, service text DEFAULT NULL,
                                            client_ip inet DEFAULT NULL)
RETURNS TABLE (id uuid, tenant_id text, scopes text[], name text)
AS 'MODULE_PATHNAME', 'crm_verify_api_key'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;
-- Not SECURITY DEFINER: the C function switches to the tables' owner itself, around
-- statements qualified throughout (apikey_verify.c says why).
GRANT EXECUTE ON FUNCTION crm_security.verify_api_key(text, text, inet) TO PUBLIC;
COMMENT ON FUNCTION crm_security.verify_api_key(text, text, inet) IS
    'verify an API key for a service and client address and count the use; 28000 for an unknown, revoked, expired, wrong-service or wrong-network key, 53400 over its rate limit';

CREATE FUNCTION crm_security.api_key_usage(id uuid,
    OUT use_count bigint, OUT last_used_at timestamptz, OUT last_used_ip inet)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'crm_api_key_usage'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE ROWS 1;
REVOKE ALL ON FUNCTION crm_security.api_key_usage(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.api_key_usage(uuid) TO crm_security_api_admin;
COMMENT ON FUNCTION crm_security.api_key_usage(uuid) IS
    'use count, last use and last client address of an API key (live shared counters when preloaded); no row for an unknown key';

CREATE FUNCTION crm_security.flush_api_key_usage()
RETURNS bigint
AS 'MODULE_PATHNAME', 'crm_flush_api_key_usage'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION crm_security.flush_api_key_usage() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.flush_api_key_usage() TO crm_security_api_admin;
COMMENT ON FUNCTION crm_security.flush_api_key_usage() IS
    'write the shared use counters of this database''s API keys to api_key_usage now; the number of rows written (0 without shared_preload_libraries)';

---------------------------------------------------------------------------------------------
-- Lifecycle: create, rotate, revoke (audited with the key id and display prefix only)
---------------------------------------------------------------------------------------------

-- Service names, here and in the service registry: a lowercase letter or digit, then up to
-- 62 lowercase letters, digits, '.', '_' or '-'.
CREATE FUNCTION crm_security._service_name_valid(service text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.octet_length(service) OPERATOR(pg_catalog.<=) 63
         AND service OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9._-]*$' $$;
COMMENT ON FUNCTION crm_security._service_name_valid(text) IS
    'internal: whether a service name is well-formed (lowercase letters, digits, ".", "_", "-"; at most 63 bytes)';

CREATE FUNCTION crm_security._api_key_check(name text, tenant_id text, scopes text[],
    expires_at timestamptz, allowed_services text[], allowed_ips cidr[],
    rate_limit_per_minute integer, rate_limit_per_day integer)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    i integer;
BEGIN
    IF name IS NULL OR name = '' OR octet_length(name) > 256 THEN
        RAISE EXCEPTION 'invalid API key name' USING ERRCODE = '22023',
            DETAIL = 'A name has 1 to 256 bytes.';
    END IF;
    IF tenant_id = '' OR octet_length(tenant_id) > 256 THEN
        RAISE EXCEPTION 'invalid tenant' USING ERRCODE = '22023',
            DETAIL = 'A tenant has 1 to 256 bytes (NULL: a key of no tenant).';
    END IF;
    IF scopes IS NULL OR array_ndims(scopes) > 1 OR cardinality(scopes) > 256 THEN
        RAISE EXCEPTION 'invalid scopes' USING ERRCODE = '22023',
            DETAIL = 'Scopes are a one-dimensional array of at most 256 permissions.';
    END IF;
    FOR i IN 1 .. cardinality(scopes) LOOP
        IF scopes[i] IS NULL OR NOT crm_security.permission_valid(scopes[i]) THEN
            RAISE EXCEPTION 'invalid scope' USING ERRCODE = '22023',
                DETAIL = format('Scope %s is not a well-formed permission.', i),
                HINT = 'Scopes follow the permission grammar, e.g. read, write, admin or crm:contacts:read.';
        END IF;
    END LOOP;
    IF expires_at IS NOT NULL AND expires_at <= now() THEN
        RAISE EXCEPTION 'expiry of an API key must be in the future' USING ERRCODE = '22023';
    END IF;
    IF allowed_services IS NOT NULL THEN
        IF array_ndims(allowed_services) IS DISTINCT FROM 1 OR cardinality(allowed_services) > 256 THEN
            RAISE EXCEPTION 'invalid allowed services' USING ERRCODE = '22023',
                DETAIL = 'Allowed services are a one-dimensional array of 1 to 256 names (NULL: any service).';
        END IF;
        FOR i IN 1 .. cardinality(allowed_services) LOOP
            IF allowed_services[i] IS NULL OR NOT crm_security._service_name_valid(allowed_services[i]) THEN
                RAISE EXCEPTION 'invalid allowed service' USING ERRCODE = '22023',
                    DETAIL = format('Service %s is not a well-formed service name: lowercase letters, digits, ".", "_" or "-", at most 63 bytes.', i);
            END IF;
        END LOOP;
    END IF;
    IF allowed_ips IS NOT NULL THEN
        IF array_ndims(allowed_ips) IS DISTINCT FROM 1 OR cardinality(allowed_ips) > 1024
           OR array_position(allowed_ips, NULL) IS NOT NULL THEN
            RAISE EXCEPTION 'invalid allowed networks' USING ERRCODE = '22023',
                DETAIL = 'Allowed networks are a one-dimensional array of 1 to 1024 networks without NULL (NULL: any address).';
        END IF;
    END IF;
    IF rate_limit_per_minute <= 0 OR rate_limit_per_day <= 0 THEN
        RAISE EXCEPTION 'rate limits of an API key must be positive' USING ERRCODE = '22023',
            DETAIL = 'NULL means no limit.';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_security._api_key_check(text, text, text[], timestamptz, text[], cidr[], integer, integer) IS
    'internal: check the attributes of a new API key (22023)';

CREATE FUNCTION crm_security.create_api_key(name text, tenant_id text, scopes text[],
    prefix text DEFAULT 'crm_live', expires_at timestamptz DEFAULT NULL,
    allowed_services text[] DEFAULT NULL, allowed_ips cidr[] DEFAULT NULL,
    rate_limit_per_minute integer DEFAULT NULL, rate_limit_per_day integer DEFAULT NULL)
RETURNS TABLE (id uuid, api_key text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k record;
    new_id uuid := gen_random_uuid();
BEGIN
    PERFORM crm_security._api_key_check(name, tenant_id, scopes, expires_at, allowed_services,
                                        allowed_ips, rate_limit_per_minute, rate_limit_per_day);
    IF prefix IS NULL THEN
        RAISE EXCEPTION 'invalid API key prefix' USING ERRCODE = '22023', DETAIL = 'The prefix is NULL.';
    END IF;
    SELECT * INTO k FROM crm_security._api_key_new(prefix);
    INSERT INTO crm_security.api_keys (id, name, tenant_id, display_prefix, scopes, allowed_services,
                                       allowed_ips, expires_at, rate_limit_per_minute,
                                       rate_limit_per_day, created_by)
    VALUES (new_id, create_api_key.name, create_api_key.tenant_id, k.display_prefix,
            create_api_key.scopes, create_api_key.allowed_services, create_api_key.allowed_ips,
            create_api_key.expires_at, create_api_key.rate_limit_per_minute,
            create_api_key.rate_limit_per_day, current_user);
    INSERT INTO crm_security.api_key_secrets (key_hash, key_id, hash_scheme, display_prefix)
    VALUES (k.key_hash, new_id, k.hash_scheme, k.display_prefix);
    INSERT INTO crm_security.api_key_usage (key_id) VALUES (new_id);
    PERFORM crm_security.log_event('api_key.create', 'api_key', new_id::text, 'success',
        jsonb_build_object('display_prefix', k.display_prefix, 'name', create_api_key.name,
                           'tenant_id', create_api_key.tenant_id));
    id := new_id;
    api_key := k.api_key;
    RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION crm_security.create_api_key(text, text, text[], text, timestamptz, text[], cidr[], integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.create_api_key(text, text, text[], text, timestamptz, text[], cidr[], integer, integer) TO crm_security_api_admin;
COMMENT ON FUNCTION crm_security.create_api_key(text, text, text[], text, timestamptz, text[], cidr[], integer, integer) IS
    'create an API key; returns its id and the key, once (only its hash is stored); superusers and crm_security_api_admin';

CREATE FUNCTION crm_security.rotate_api_key(id uuid, grace interval DEFAULT '0 seconds')
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key_row crm_security.api_keys%ROWTYPE;
    k record;
    grace_end timestamptz;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'API key id must not be null' USING ERRCODE = '22023';
    END IF;
    IF grace IS NULL OR grace < '0 seconds' OR grace > '366 days' THEN
        RAISE EXCEPTION 'invalid grace period' USING ERRCODE = '22023',
            DETAIL = 'A grace period lies between 0 seconds and 366 days.';
    END IF;
    SELECT * INTO key_row FROM crm_security.api_keys AS a
     WHERE a.id OPERATOR(pg_catalog.=) rotate_api_key.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'API key % does not exist', id USING ERRCODE = '42704';
    END IF;
    IF key_row.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'cannot rotate a revoked API key' USING ERRCODE = '55000';
    END IF;
    grace_end := now() + grace;
    UPDATE crm_security.api_key_secrets AS s
       SET valid_until = LEAST(coalesce(s.valid_until, 'infinity'), grace_end)
     WHERE s.key_id OPERATOR(pg_catalog.=) rotate_api_key.id
       AND (s.valid_until IS NULL OR s.valid_until > now());
    -- the same prefix: the display prefix without its last '_' and the body characters
    SELECT * INTO k FROM crm_security._api_key_new(regexp_replace(key_row.display_prefix, '_[^_]*$', ''));
    INSERT INTO crm_security.api_key_secrets (key_hash, key_id, hash_scheme, display_prefix)
    VALUES (k.key_hash, rotate_api_key.id, k.hash_scheme, k.display_prefix);
    UPDATE crm_security.api_keys AS a SET display_prefix = k.display_prefix, rotated_at = now()
     WHERE a.id OPERATOR(pg_catalog.=) rotate_api_key.id;
    PERFORM crm_security.log_event('api_key.rotate', 'api_key', rotate_api_key.id::text, 'success',
        jsonb_build_object('display_prefix', k.display_prefix,
                           'previous_display_prefix', key_row.display_prefix,
                           'previous_valid_until', grace_end));
    RETURN k.api_key;
END
$$;
REVOKE ALL ON FUNCTION crm_security.rotate_api_key(uuid, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.rotate_api_key(uuid, interval) TO crm_security_api_admin;
COMMENT ON FUNCTION crm_security.rotate_api_key(uuid, interval) IS
    'a new key for the same holder, scopes and limits, returned once; the replaced key keeps working until now() + grace';

CREATE FUNCTION crm_security.revoke_api_key(id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    prefix text;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'API key id must not be null' USING ERRCODE = '22023';
    END IF;
    UPDATE crm_security.api_keys AS a SET revoked_at = now(), revoked_by = current_user
     WHERE a.id OPERATOR(pg_catalog.=) revoke_api_key.id AND a.revoked_at IS NULL
    RETURNING a.display_prefix INTO prefix;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM crm_security.api_keys AS a WHERE a.id OPERATOR(pg_catalog.=) revoke_api_key.id) THEN
            RAISE EXCEPTION 'API key % does not exist', id USING ERRCODE = '42704';
        END IF;
        RETURN;     -- already revoked
    END IF;
    PERFORM crm_security.log_event('api_key.revoke', 'api_key', revoke_api_key.id::text, 'success',
        jsonb_build_object('display_prefix', prefix));
END
$$;
REVOKE ALL ON FUNCTION crm_security.revoke_api_key(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.revoke_api_key(uuid) TO crm_security_api_admin;
COMMENT ON FUNCTION crm_security.revoke_api_key(uuid) IS
    'revoke an API key (all its key strings) from the next verification on, in every session; idempotent';

-- The claim context of an API key's holder (API.md section 3; docs/api-keys.md): verified
-- and counted as by verify_api_key (the lookup runs as the tables' owner, switched to in C),
-- then carried as a short-lived token signed by the extension's own key, through the same
-- setting as set_claim_context.
CREATE FUNCTION crm_security.set_api_key_context(api_key text, service text DEFAULT NULL,
                                                 client_ip inet DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'crm_set_api_key_context'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
GRANT EXECUTE ON FUNCTION crm_security.set_api_key_context(text, text, inet) TO PUBLIC;
COMMENT ON FUNCTION crm_security.set_api_key_context(text, text, inet) IS
    'verify an API key (as verify_api_key, counting the use) and make its holder the context of this transaction: actor_type api_key, user_id the key id, tenant_id its tenant, permissions its scopes';

-- sql/75_services.sql
\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- The service registry (API.md section 5; docs/api-keys.md): which service may call which.
-- Managed by superusers and crm_security_api_admin (the functions run with the caller's
-- rights, which that role holds on the table); authorize_service_call() is for everyone.

CREATE TABLE crm_security.service_registry (
    service     text PRIMARY KEY CHECK (crm_security._service_name_valid(service)),
    may_call    text[] NOT NULL DEFAULT '{}',   -- the services it may call
    enabled     boolean NOT NULL DEFAULT true,
    description text CHECK (pg_catalog.octet_length(description) <= 1024),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm_security.service_registry IS 'registered services, the services each may call, and whether it is enabled';
REVOKE ALL ON crm_security.service_registry FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON crm_security.service_registry TO crm_security_api_admin;
SELECT pg_catalog.pg_extension_config_dump('crm_security.service_registry', '');

CREATE FUNCTION crm_security._service_name_check(service text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF service IS NULL OR NOT crm_security._service_name_valid(service) THEN
        RAISE EXCEPTION 'invalid service name' USING ERRCODE = '22023',
            DETAIL = 'A service name is a lowercase letter or digit, then lowercase letters, digits, ".", "_" or "-", at most 63 bytes.';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_security._service_name_check(text) IS 'internal: raise 22023 for a malformed service name';

CREATE FUNCTION crm_security.register_service(service text, may_call text[] DEFAULT '{}',
                                              enabled boolean DEFAULT true,
                                              description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    callee text;
BEGIN
    PERFORM crm_security._service_name_check(service);
    IF may_call IS NULL OR array_ndims(may_call) > 1 OR cardinality(may_call) > 1024 THEN
        RAISE EXCEPTION 'invalid list of callees' USING ERRCODE = '22023',
            DETAIL = 'The services a service may call are a one-dimensional array of at most 1024 names.';
    END IF;
    FOREACH callee IN ARRAY may_call LOOP
        PERFORM crm_security._service_name_check(callee);
    END LOOP;
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'enabled must not be null' USING ERRCODE = '22023';
    END IF;
    INSERT INTO crm_security.service_registry AS r (service, may_call, enabled, description)
    VALUES (register_service.service,
            ARRAY(SELECT DISTINCT c FROM unnest(register_service.may_call) AS c ORDER BY c),
            register_service.enabled, register_service.description)
    ON CONFLICT ON CONSTRAINT service_registry_pkey DO UPDATE
       SET may_call = excluded.may_call, enabled = excluded.enabled,
           description = excluded.description, updated_at = now();
    PERFORM crm_security.log_event('service.register', 'service', service, 'success',
        jsonb_build_object('may_call', may_call, 'enabled', enabled));
END
$$;
REVOKE ALL ON FUNCTION crm_security.register_service(text, text[], boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.register_service(text, text[], boolean, text) TO crm_security_api_admin;
COMMENT ON FUNCTION crm_security.register_service(text, text[], boolean, text) IS
    'register a service, or replace its entry: the services it may call, whether it is enabled';

CREATE FUNCTION crm_security.allow_service_call(caller text, callee text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._service_name_check(caller);
    PERFORM crm_security._service_name_check(callee);
    UPDATE crm_security.service_registry AS r
       SET may_call = ARRAY(SELECT DISTINCT c FROM unnest(r.may_call || callee) AS c ORDER BY c),
           updated_at = now()
     WHERE r.service = caller;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'service "%" is not registered', caller USING ERRCODE = '42704';
    END IF;
    PERFORM crm_security.log_event('service.allow_call', 'service', caller, 'success',
        jsonb_build_object('callee', callee));
END
$$;
REVOKE ALL ON FUNCTION crm_security.allow_service_call(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.allow_service_call(text, text) TO crm_security_api_admin;
COMMENT ON FUNCTION crm_security.allow_service_call(text, text) IS 'let a registered service call another; idempotent';

CREATE FUNCTION crm_security.deny_service_call(caller text, callee text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._service_name_check(caller);
    PERFORM crm_security._service_name_check(callee);
    UPDATE crm_security.service_registry AS r
       SET may_call = array_remove(r.may_call, callee), updated_at = now()
     WHERE r.service = caller;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'service "%" is not registered', caller USING ERRCODE = '42704';
    END IF;
    PERFORM crm_security.log_event('service.deny_call', 'service', caller, 'success',
        jsonb_build_object('callee', callee));
END
$$;
REVOKE ALL ON FUNCTION crm_security.deny_service_call(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.deny_service_call(text, text) TO crm_security_api_admin;
COMMENT ON FUNCTION crm_security.deny_service_call(text, text) IS 'stop a service from calling another; idempotent';

CREATE FUNCTION crm_security.set_service_enabled(service text, enabled boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._service_name_check(service);
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'enabled must not be null' USING ERRCODE = '22023';
    END IF;
    UPDATE crm_security.service_registry AS r SET enabled = set_service_enabled.enabled, updated_at = now()
     WHERE r.service = set_service_enabled.service;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'service "%" is not registered', service USING ERRCODE = '42704';
    END IF;
    PERFORM crm_security.log_event(CASE WHEN enabled THEN 'service.enable' ELSE 'service.disable' END,
        'service', service, 'success', NULL);
END
$$;
REVOKE ALL ON FUNCTION crm_security.set_service_enabled(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.set_service_enabled(text, boolean) TO crm_security_api_admin;
COMMENT ON FUNCTION crm_security.set_service_enabled(text, boolean) IS
    'enable or disable a registered service: a disabled service may neither call nor be called';

CREATE FUNCTION crm_security.unregister_service(service text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_security._service_name_check(service);
    DELETE FROM crm_security.service_registry AS r WHERE r.service = unregister_service.service;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'service "%" is not registered', service USING ERRCODE = '42704';
    END IF;
    PERFORM crm_security.log_event('service.unregister', 'service', service, 'success', NULL);
END
$$;
REVOKE ALL ON FUNCTION crm_security.unregister_service(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.unregister_service(text) TO crm_security_api_admin;
COMMENT ON FUNCTION crm_security.unregister_service(text) IS 'remove a service from the registry';

CREATE FUNCTION crm_security.authorize_service_call(caller text, callee text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c crm_security.service_registry%ROWTYPE;
    e boolean;
BEGIN
    PERFORM crm_security._service_name_check(caller);
    PERFORM crm_security._service_name_check(callee);
    SELECT * INTO c FROM crm_security.service_registry AS r WHERE r.service = caller;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'service "%" may not call service "%"', caller, callee USING ERRCODE = '42501',
            DETAIL = format('Service "%s" is not registered.', caller);
    END IF;
    IF NOT c.enabled THEN
        RAISE EXCEPTION 'service "%" may not call service "%"', caller, callee USING ERRCODE = '42501',
            DETAIL = format('Service "%s" is disabled.', caller);
    END IF;
    SELECT r.enabled INTO e FROM crm_security.service_registry AS r WHERE r.service = callee;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'service "%" may not call service "%"', caller, callee USING ERRCODE = '42501',
            DETAIL = format('Service "%s" is not registered.', callee);
    END IF;
    IF NOT e THEN
        RAISE EXCEPTION 'service "%" may not call service "%"', caller, callee USING ERRCODE = '42501',
            DETAIL = format('Service "%s" is disabled.', callee);
    END IF;
    IF NOT callee = ANY (c.may_call) THEN
        RAISE EXCEPTION 'service "%" may not call service "%"', caller, callee USING ERRCODE = '42501',
            DETAIL = format('The registry does not let service "%s" call service "%s".', caller, callee);
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION crm_security.authorize_service_call(text, text) TO PUBLIC;
COMMENT ON FUNCTION crm_security.authorize_service_call(text, text) IS
    'raise 42501 unless both services are registered and enabled and the registry lets caller call callee';

-- Service tokens: minting one is impersonating the service, so only superusers and members
-- of crm_security_token_issuer may (EXECUTE is revoked from PUBLIC; the function checks the
-- membership again).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'crm_security_token_issuer') THEN
        CREATE ROLE crm_security_token_issuer NOLOGIN;
    END IF;
END
$$;

CREATE FUNCTION crm_security.issue_service_token(service text, audience text,
                                                 ttl interval DEFAULT '60 seconds')
RETURNS text
AS 'MODULE_PATHNAME', 'crm_issue_service_token'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION crm_security.issue_service_token(text, text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.issue_service_token(text, text, interval) TO crm_security_token_issuer;
COMMENT ON FUNCTION crm_security.issue_service_token(text, text, interval) IS
    'a token (1 second to 1 hour) with which service calls audience, signed by the extension''s key; set_claim_context gives actor_type service; superusers and crm_security_token_issuer only, for services the registry lets call audience';

-- sql/80_requests.sql
\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- Signed requests (API.md section 5; docs/requests.md): HMAC-SHA256 over a canonical form
-- of method, path with query, timestamp, nonce and the SHA-256 of the body.

CREATE FUNCTION crm_security.sign_request(secret text, method text, path text, body bytea,
                                          ts bigint, nonce text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'crm_sign_request'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.sign_request(text, text, text, bytea, bigint, text) IS
    'signature "v1=<hex>" of a request: HMAC-SHA256 over the canonical form of docs/requests.md; a NULL body is the empty body; 22023 for malformed arguments';

CREATE FUNCTION crm_security.verify_request(secret text, signature text, method text, path text,
                                            body bytea, ts bigint,
                                            max_skew interval DEFAULT '5 minutes',
                                            nonce text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_verify_request'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION crm_security.verify_request(text, text, text, text, bytea, bigint, interval, text) IS
    'whether a request signature is authentic (constant-time), its timestamp within max_skew of now either way, and its nonce (if any) not seen in that window by any session; 22023 for malformed arguments, 55000 for a nonce without shared_preload_libraries';

-- sql/85_rate_limits.sql
\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- Rate limits and lockouts shared by all sessions (API.md section 5; docs/rate-limits.md).
-- Both keep their state in shared memory and need shared_preload_libraries; without it they
-- raise 55000 with a hint.

CREATE FUNCTION crm_security.rate_limit(key text, max_requests int, per interval,
                                        burst int DEFAULT NULL,
                                        OUT allowed boolean, OUT remaining int,
                                        OUT retry_after interval)
RETURNS record
AS 'MODULE_PATHNAME', 'crm_rate_limit'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION crm_security.rate_limit(text, int, interval, int) IS
    'GCRA rate limit across all sessions: max_requests per interval with bursts of up to burst (default max_requests); an allowed request counts at once and stays counted through a rollback; 22023 for malformed arguments, 55000 without shared_preload_libraries';

CREATE FUNCTION crm_security.register_failed_attempt(subject text, max_attempts int DEFAULT 5,
                                                     "window" interval DEFAULT '15 minutes')
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_register_failed_attempt'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION crm_security.register_failed_attempt(text, int, interval) IS
    'count a failed attempt of subject (shared by all sessions, kept through a rollback); true when the subject is now locked out: max_attempts failures within window lock it for window';

CREATE FUNCTION crm_security.is_locked_out(subject text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'crm_is_locked_out'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION crm_security.is_locked_out(text) IS
    'whether subject is locked out now (register_failed_attempt)';

CREATE FUNCTION crm_security.clear_failed_attempts(subject text)
RETURNS void
AS 'MODULE_PATHNAME', 'crm_clear_failed_attempts'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION crm_security.clear_failed_attempts(text) IS
    'forget the failed attempts and any lockout of subject (after a successful login)';

-- sql/88_security_events.sql
\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- Security events and refused authentications (API.md section 5; docs/rate-limits.md,
-- "Security events").  security_events is what the application records in its own
-- transaction; auth_failures counts refusals, which roll back, in shared memory.

CREATE TABLE crm_security.security_events (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    event_type       text NOT NULL,
    severity         text NOT NULL,
    actor_type       text,
    actor_id         text,
    tenant_id        text,
    client_addr      inet,
    message          text NOT NULL,
    details          jsonb NOT NULL DEFAULT '{}',
    resolved         boolean NOT NULL DEFAULT false,
    resolved_at      timestamptz,
    resolved_by      text,
    resolution_notes text,
    CONSTRAINT security_events_type CHECK (pg_catalog.octet_length(event_type) OPERATOR(pg_catalog.<=) 128
                                           AND event_type OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_.:-]*$'),
    CONSTRAINT security_events_severity CHECK (severity OPERATOR(pg_catalog.=) ANY (ARRAY['info', 'low', 'medium', 'high', 'critical'])),
    CONSTRAINT security_events_message CHECK (pg_catalog.octet_length(message) OPERATOR(pg_catalog.<=) 4096),
    CONSTRAINT security_events_details CHECK (pg_catalog.jsonb_typeof(details) OPERATOR(pg_catalog.=) 'object'
                                              AND pg_catalog.octet_length(details::text) OPERATOR(pg_catalog.<=) 65536)
);
CREATE INDEX security_events_open ON crm_security.security_events (occurred_at) WHERE NOT resolved;
COMMENT ON TABLE crm_security.security_events IS
    'security events recorded by record_security_event(); members of crm_security_api_admin read them and mark them resolved';
SELECT pg_catalog.pg_extension_config_dump('crm_security.security_events', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.security_events_id_seq', '');
REVOKE ALL ON crm_security.security_events FROM PUBLIC;
GRANT SELECT, UPDATE (resolved, resolved_at, resolved_by, resolution_notes)
    ON crm_security.security_events TO crm_security_api_admin;

CREATE FUNCTION crm_security.record_security_event(event_type text, severity text, message text,
                                                   details jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id bigint;
BEGIN
    IF event_type IS NULL OR event_type OPERATOR(pg_catalog.=) '' OR octet_length(event_type) OPERATOR(pg_catalog.>) 128
       OR event_type OPERATOR(pg_catalog.!~) '^[a-z][a-z0-9_.:-]*$' THEN
        RAISE EXCEPTION 'invalid security event type'
            USING ERRCODE = '22023',
                  DETAIL = 'An event type is 1 to 128 bytes: a lowercase letter, then lowercase letters, digits, ".", "_", ":" or "-".';
    END IF;
    IF severity IS NULL OR NOT (severity OPERATOR(pg_catalog.=) ANY (ARRAY['info', 'low', 'medium', 'high', 'critical'])) THEN
        RAISE EXCEPTION 'invalid security event severity'
            USING ERRCODE = '22023', DETAIL = 'The severity is one of info, low, medium, high, critical.';
    END IF;
    IF message IS NULL OR octet_length(message) OPERATOR(pg_catalog.>) 4096 THEN
        RAISE EXCEPTION 'invalid security event message'
            USING ERRCODE = '22023', DETAIL = 'The message is required and at most 4096 bytes.';
    END IF;
    details := coalesce(details, '{}');
    IF jsonb_typeof(details) OPERATOR(pg_catalog.<>) 'object' OR octet_length(details::text) OPERATOR(pg_catalog.>) 65536 THEN
        RAISE EXCEPTION 'invalid security event details'
            USING ERRCODE = '22023', DETAIL = 'The details are a JSON object of at most 64 kB.';
    END IF;
    INSERT INTO crm_security.security_events
        (event_type, severity, actor_type, actor_id, tenant_id, client_addr, message, details)
    VALUES (event_type, severity, crm_security.actor_type(), crm_security.user_id(),
            crm_security.tenant_id(), inet_client_addr(), message, details)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
GRANT EXECUTE ON FUNCTION crm_security.record_security_event(text, text, text, jsonb) TO PUBLIC;
COMMENT ON FUNCTION crm_security.record_security_event(text, text, text, jsonb) IS
    'record a security event (type, severity info/low/medium/high/critical, message, details object) with the actor, tenant and client address of the current context; its id. 22023 for malformed arguments';

CREATE FUNCTION crm_security._auth_failures(OUT kind text, OUT reason text, OUT key_id text,
                                            OUT failures bigint, OUT last_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'crm_auth_failures'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION crm_security._auth_failures() IS
    'the shared counters of refused tokens and API keys of the current database (view auth_failures)';
REVOKE ALL ON FUNCTION crm_security._auth_failures() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security._auth_failures() TO crm_security_api_admin;

CREATE VIEW crm_security.auth_failures AS
    SELECT kind, reason, key_id, failures, last_at FROM crm_security._auth_failures();
COMMENT ON VIEW crm_security.auth_failures IS
    'refused tokens and API keys since server start, by kind, reason and key id (never the secret), from every session of this database; empty without shared_preload_libraries';
REVOKE ALL ON crm_security.auth_failures FROM PUBLIC;
GRANT SELECT ON crm_security.auth_failures TO crm_security_api_admin;
