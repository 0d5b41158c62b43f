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
