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
