\set VERBOSITY terse
CREATE EXTENSION crm_security;
SELECT crm_security.version() = extversion AS version_matches
  FROM pg_extension WHERE extname = 'crm_security';
SELECT nspname FROM pg_namespace n JOIN pg_extension e ON e.extnamespace = n.oid
 WHERE e.extname = 'crm_security';
-- the extension is not relocatable
ALTER EXTENSION crm_security SET SCHEMA public;
-- every function of the extension is documented in the catalog
SELECT p.oid::regprocedure AS undocumented
  FROM pg_proc p
 WHERE p.pronamespace = 'crm_security'::regnamespace
   AND obj_description(p.oid, 'pg_proc') IS NULL;
-- every SECURITY DEFINER function pins its search_path
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc p
 WHERE p.pronamespace = 'crm_security'::regnamespace AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');
