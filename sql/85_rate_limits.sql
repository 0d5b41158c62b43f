\echo Use "CREATE EXTENSION crm_security" to load this file. \quit

-- Rate limits and lockouts shared by all sessions (API.md section 5; docs/rate-limits.md).
-- Both keep their state in shared memory and need shared_preload_libraries; without it they
-- raise 55000 with a hint.
--
-- The lockout state decides who may log in, so only the login path may change it:
-- register_failed_attempt() and clear_failed_attempts() are revoked from PUBLIC and granted
-- to crm_security_lockout_admin (the role of the service that checks passwords; superusers
-- may too).  Any role could otherwise lock a victim out with five calls, or clear an
-- attacker's own lockout.  is_locked_out() stays PUBLIC: it changes nothing, and a login
-- form tells whether an account is locked anyway.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'crm_security_lockout_admin') THEN
        CREATE ROLE crm_security_lockout_admin NOLOGIN;
    END IF;
END
$$;

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
REVOKE ALL ON FUNCTION crm_security.register_failed_attempt(text, int, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.register_failed_attempt(text, int, interval) TO crm_security_lockout_admin;
COMMENT ON FUNCTION crm_security.register_failed_attempt(text, int, interval) IS
    'count a failed attempt of subject (shared by all sessions, kept through a rollback); true when the subject is now locked out: max_attempts failures within window lock it for window; for crm_security_lockout_admin';

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
REVOKE ALL ON FUNCTION crm_security.clear_failed_attempts(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_security.clear_failed_attempts(text) TO crm_security_lockout_admin;
COMMENT ON FUNCTION crm_security.clear_failed_attempts(text) IS
    'forget the failed attempts and any lockout of subject (after a successful login); for crm_security_lockout_admin';
