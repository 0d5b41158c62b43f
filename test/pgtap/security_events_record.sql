-- security_events and record_security_event() (docs/rate-limits.md, "Security events"):
-- what is recorded (actor and client from the session), malformed arguments (22023),
-- privileges; and auth_failures, which is empty without shared_preload_libraries (this
-- cluster) and readable only by crm_security_api_admin.
SET client_min_messages = warning;
BEGIN;
SELECT plan(16);

CREATE FUNCTION pg_temp.sqlstate(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE q;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;

SELECT ok(crm_security.record_security_event('login.failed', 'medium', 'three failed logins', '{"user": "bob"}') > 0,
          'record_security_event returns the new id');
SELECT results_eq($$SELECT event_type, severity, message, details, resolved FROM crm_security.security_events$$,
                  $$VALUES ('login.failed', 'medium', 'three failed logins', '{"user": "bob"}'::jsonb, false)$$,
                  'the event is stored, unresolved');
DO $$ BEGIN PERFORM crm_security.record_security_event('x.null', 'info', 'm', NULL); END $$;
SELECT is((SELECT details FROM crm_security.security_events WHERE event_type = 'x.null'),
          '{}'::jsonb, 'NULL details are an empty object');
SELECT is(pg_temp.sqlstate($q$SELECT crm_security.record_security_event(NULL, 'info', 'm')$q$), '22023', 'NULL type: 22023');
SELECT is(pg_temp.sqlstate($q$SELECT crm_security.record_security_event('', 'info', 'm')$q$), '22023', 'empty type: 22023');
SELECT is(pg_temp.sqlstate($q$SELECT crm_security.record_security_event(repeat('a', 1048576), 'info', 'm')$q$), '22023', '1 MB type: 22023');
SELECT is(pg_temp.sqlstate($q$SELECT crm_security.record_security_event(E'a\nb', 'info', 'm')$q$), '22023', 'a newline in the type: 22023');
SELECT is(pg_temp.sqlstate($q$SELECT crm_security.record_security_event('x', 'severe', 'm')$q$), '22023', 'an unknown severity: 22023');
SELECT is(pg_temp.sqlstate($q$SELECT crm_security.record_security_event('x', NULL, 'm')$q$), '22023', 'NULL severity: 22023');
SELECT is(pg_temp.sqlstate($q$SELECT crm_security.record_security_event('x', 'info', NULL)$q$), '22023', 'NULL message: 22023');
SELECT is(pg_temp.sqlstate($q$SELECT crm_security.record_security_event('x', 'info', repeat('m', 1048576))$q$), '22023', '1 MB message: 22023');
SELECT is(pg_temp.sqlstate($q$SELECT crm_security.record_security_event('x', 'info', 'm', '[1]')$q$), '22023', 'details not an object: 22023');

CREATE ROLE regress_se_app;
CREATE ROLE regress_se_admin IN ROLE crm_security_api_admin;
SET ROLE regress_se_app;
SELECT ok(crm_security.record_security_event('api.abuse', 'high', 'from the app') > 0, 'any role may record an event');
SELECT is(pg_temp.sqlstate($q$SELECT * FROM crm_security.security_events$q$), '42501', '... but not read the table');
RESET ROLE;
SET ROLE regress_se_admin;
SELECT is((SELECT count(*)::int FROM crm_security.security_events), 3, 'crm_security_api_admin reads the events');
SELECT is_empty($$SELECT * FROM crm_security.auth_failures$$, 'auth_failures is empty without preloading');
RESET ROLE;
DROP ROLE regress_se_app;
DROP ROLE regress_se_admin;

SELECT * FROM finish();
ROLLBACK;
