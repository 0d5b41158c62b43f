-- The service registry: register_service() & co. and authorize_service_call() (42501).
SET client_min_messages = warning;
BEGIN;
SELECT plan(24);

\ir include/err.sql

SELECT crm_security.register_service('web', '{billing}');
SELECT crm_security.register_service('billing', '{mailer}', description => 'invoices');
SELECT crm_security.register_service('mailer');

SELECT is(pg_temp.err($$SELECT crm_security.authorize_service_call('web', 'billing')$$), 'ok', 'a registered call is authorized');
SELECT is(pg_temp.err($$SELECT crm_security.authorize_service_call('billing', 'web')$$),
          '42501: The registry does not let service "billing" call service "web".', 'the reverse direction is not');
SELECT is(pg_temp.err($$SELECT crm_security.authorize_service_call('web', 'mailer')$$),
          '42501: The registry does not let service "web" call service "mailer".', 'calls are not transitive');
SELECT is(pg_temp.err($$SELECT crm_security.authorize_service_call('ghost', 'billing')$$),
          '42501: Service "ghost" is not registered.', 'an unregistered caller');
SELECT is(pg_temp.err($$SELECT crm_security.authorize_service_call('web', 'ghost')$$),
          '42501: Service "ghost" is not registered.', 'an unregistered callee');
SELECT throws_ok($$SELECT crm_security.authorize_service_call('web', 'ghost')$$, '42501',
                 'service "web" may not call service "ghost"', 'the message names both services');
SELECT crm_security.set_service_enabled('billing', false);
SELECT is(pg_temp.err($$SELECT crm_security.authorize_service_call('web', 'billing')$$),
          '42501: Service "billing" is disabled.', 'a disabled callee');
SELECT is(pg_temp.err($$SELECT crm_security.authorize_service_call('billing', 'mailer')$$),
          '42501: Service "billing" is disabled.', 'a disabled caller');
SELECT crm_security.set_service_enabled('billing', true);
SELECT crm_security.allow_service_call('web', 'mailer');
SELECT is(pg_temp.err($$SELECT crm_security.authorize_service_call('web', 'mailer')$$), 'ok', 'allow_service_call adds a callee');
SELECT crm_security.allow_service_call('web', 'mailer');
SELECT is((SELECT may_call FROM crm_security.service_registry WHERE service = 'web'), '{billing,mailer}', '... once');
SELECT crm_security.deny_service_call('web', 'billing');
SELECT is(pg_temp.err($$SELECT crm_security.authorize_service_call('web', 'billing')$$),
          '42501: The registry does not let service "web" call service "billing".', 'deny_service_call removes one');
SELECT crm_security.unregister_service('mailer');
SELECT is(pg_temp.err($$SELECT crm_security.authorize_service_call('web', 'mailer')$$),
          '42501: Service "mailer" is not registered.', 'an unregistered service can no longer be called');
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE resource_type = 'service'), 9::bigint,
          'every change of the registry is an audit event');

-- Bad input
SELECT is(pg_temp.err($$SELECT crm_security.authorize_service_call(NULL, 'web')$$), '22023: A service name is a lowercase letter or digit, then lowercase letters, digits, ".", "_" or "-", at most 63 bytes.', 'NULL caller: 22023');
SELECT throws_ok($$SELECT crm_security.authorize_service_call('web', NULL)$$, '22023', NULL, 'NULL callee: 22023');
SELECT throws_ok($$SELECT crm_security.authorize_service_call('', 'web')$$, '22023', NULL, 'empty: 22023');
SELECT throws_ok($$SELECT crm_security.authorize_service_call(repeat('a', 1048576), 'web')$$, '22023', NULL, '1 MB: 22023, not quoted');
SELECT throws_ok($$SELECT crm_security.authorize_service_call(E'web\n', 'web')$$, '22023', NULL, 'a control character: 22023');
SELECT throws_ok($$SELECT crm_security.register_service('Web')$$, '22023', NULL, 'an uppercase name is refused');
SELECT throws_ok($$SELECT crm_security.register_service('x', array_fill('a'::text, ARRAY[5000]))$$, '22023', NULL, '5,000 callees are refused');
SELECT throws_ok($$SELECT crm_security.allow_service_call('ghost', 'web')$$, '42704', NULL, 'allowing a call of an unregistered caller');

-- Privileges
CREATE ROLE regress_svc_app;
SET LOCAL ROLE regress_svc_app;
SELECT is(pg_temp.err($$SELECT crm_security.authorize_service_call('web', 'mailer')$$),
          '42501: Service "mailer" is not registered.', 'any role may ask authorize_service_call');
SELECT is(pg_temp.err($$SELECT crm_security.register_service('evil', '{web}')$$), '42501: ', 'PUBLIC cannot register services');
SELECT is(pg_temp.err($$SELECT count(*) FROM crm_security.service_registry$$), '42501: ', '... nor read the registry');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
