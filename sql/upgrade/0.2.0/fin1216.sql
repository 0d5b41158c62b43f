-- 0.1.0 -> 0.2.0, branch fin1216 (issue 12 lockout privileges; see docs/rate-limits.md).

-- Only the login path may change the lockout state.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'crm_security_lockout_admin') THEN
        CREATE ROLE crm_security_lockout_admin NOLOGIN;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION crm_security.register_failed_attempt(text, int, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.register_failed_attempt(text, int, interval) TO crm_security_lockout_admin;
COMMENT ON FUNCTION crm_security.register_failed_attempt(text, int, interval) IS
    'count a failed attempt of subject (shared by all sessions, kept through a rollback); true when the subject is now locked out: max_attempts failures within window lock it for window; for crm_security_lockout_admin';
REVOKE ALL ON FUNCTION crm_security.clear_failed_attempts(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.clear_failed_attempts(text) TO crm_security_lockout_admin;
COMMENT ON FUNCTION crm_security.clear_failed_attempts(text) IS
    'forget the failed attempts and any lockout of subject (after a successful login); for crm_security_lockout_admin';
