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
