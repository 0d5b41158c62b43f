\set VERBOSITY terse
CREATE EXTENSION crm_security;
SELECT crm_security.version() = extversion AS version_matches
  FROM pg_extension WHERE extname = 'crm_security';
SELECT nspname FROM pg_namespace n JOIN pg_extension e ON e.extnamespace = n.oid
 WHERE e.extname = 'crm_security';
-- the extension is not relocatable
ALTER EXTENSION crm_security SET SCHEMA public;
