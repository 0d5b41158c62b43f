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
