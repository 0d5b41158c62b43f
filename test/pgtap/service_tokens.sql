-- Service tokens (docs/api-keys.md, "Service tokens"): minting (who may, for which
-- services, lifetimes), set_claim_context on them (actor type service, audience, expiry,
-- the registry at every verification), tokens of outside issuers, and hostile input.
SET client_min_messages = warning;
BEGIN;
SELECT plan(45);

\ir include/err.sql

SELECT crm_security.register_service('billing', '{crm,mailer}');
SELECT crm_security.register_service('crm');
SELECT crm_security.register_service('mailer', '{}', false);
SELECT crm_security.register_service('sleeper', '{crm}', false);
CREATE ROLE regress_st_app;
CREATE ROLE regress_st_issuer;
GRANT crm_security_token_issuer TO regress_st_issuer;
CREATE ROLE regress_st_granted;
GRANT EXECUTE ON FUNCTION crm_security.issue_service_token(text, text, interval) TO regress_st_granted;

-- 1. Minting
SELECT crm_security.issue_service_token('billing', 'crm') AS tok \gset
SELECT is((crm_security.jwt_decode(:'tok')).payload->>'sub', 'billing', 'a superuser mints a token for a registered service');
SELECT is((crm_security.jwt_decode(:'tok')).payload->>'aud', 'crm', '... for its audience');
SELECT is((crm_security.jwt_decode(:'tok')).header->>'kid', 'crm_security.internal', '... signed by the extension''s key');
SELECT cmp_ok(((crm_security.jwt_decode(:'tok')).payload->>'exp')::numeric - extract(epoch FROM clock_timestamp())::numeric,
    '<=', 60::numeric, 'the default lifetime is 60 seconds');
SELECT isnt(crm_security.issue_service_token('billing', 'crm'), :'tok', 'every token is another (jti)');
SELECT ok(NOT has_function_privilege('public', 'crm_security.issue_service_token(text, text, interval)', 'EXECUTE'),
    'PUBLIC may not mint');
SET LOCAL ROLE regress_st_app;
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', 'crm')$$) LIKE '42501%', true, 'an application role is refused');
RESET ROLE;
SET LOCAL ROLE regress_st_granted;
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', 'crm')$$),
    '42501: Only superusers and members of crm_security_token_issuer may issue service tokens.',
    'EXECUTE alone is not enough: the issuer role is checked too');
RESET ROLE;
SET LOCAL ROLE regress_st_issuer;
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', 'crm')$$), 'ok', 'a member of crm_security_token_issuer mints');
RESET ROLE;
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('ghost', 'crm')$$),
    '42501: The service is not registered in service_registry.', 'not for an unregistered service');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('sleeper', 'crm')$$),
    '42501: The service is disabled in service_registry.', 'not for a disabled service');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('crm', 'billing')$$),
    '42501: The registry does not let the service call the audience.', 'not for a call the registry does not allow');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', 'mailer')$$),
    '42501: The audience is a service disabled in service_registry.', 'not for a disabled audience');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', 'ghost')$$),
    '42501: The audience is not a service registered in service_registry.', 'not for an unregistered audience');

-- 2. Bad input
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token(NULL, 'crm')$$), '22023: ', 'NULL service: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', NULL)$$), '22023: ', 'NULL audience: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', 'crm', NULL)$$), '22023: ', 'NULL ttl: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('', 'crm')$$) LIKE '22023%', true, 'empty service: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token(repeat('a', 1048576), 'crm')$$) LIKE '22023%', true, '1 MB service: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', repeat('a', 1048576))$$) LIKE '22023%', true, '1 MB audience: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('Billing', 'crm')$$) LIKE '22023%', true, 'a malformed name: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token(convert_from('\xc3'::bytea, 'LATIN1'), 'crm')$$) LIKE '22023%', true, 'non-ASCII: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', 'crm', '0 seconds')$$),
    '22023: A service token lives from 1 second to 3600 seconds.', 'a zero lifetime: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', 'crm', '-60 seconds')$$) LIKE '22023%', true, 'a negative lifetime: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', 'crm', '1 hour 1 second')$$) LIKE '22023%', true, 'over an hour: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', 'crm', '1 mon')$$) LIKE '22023%', true, 'a month: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', 'crm', '178000000 years')$$) LIKE '22023%', true, 'a huge lifetime: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.issue_service_token('billing', 'crm', '1 hour')$$), 'ok', 'one hour is allowed');

-- 3. The context of a service token
SELECT is(crm_security.set_claim_context(:'tok')->>'sub', 'billing', 'set_claim_context accepts the token');
SELECT is(crm_security.actor_type(), 'service', 'actor_type() is service');
SELECT ok(crm_security.user_id() = 'billing' AND crm_security.tenant_id() IS NULL AND crm_security.permissions() = '{}',
    'user_id() is the service; no tenant, no permissions');
SET LOCAL ROLE regress_st_app;
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)', :'tok')), 'ok', 'any role holding the token may use it');
RESET ROLE;
SET LOCAL crm_security.service_audience = 'crm';
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)', :'tok')), 'ok', 'service_audience crm: accepted');
SET LOCAL crm_security.service_audience = 'mailer';
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)', :'tok')),
    '28000: The service token''s audience is not crm_security.service_audience.', 'another audience: refused');
RESET crm_security.service_audience;

-- The registry at every verification
SELECT crm_security.set_service_enabled('billing', false);
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)', :'tok')),
    '28000: The service is disabled in service_registry.', 'a service disabled after minting is refused');
SELECT crm_security.set_service_enabled('billing', true);
SELECT crm_security.deny_service_call('billing', 'crm');
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)', :'tok')),
    '28000: The registry does not let the service call the audience.', 'a call denied after minting is refused');
SELECT crm_security.allow_service_call('billing', 'crm');
SELECT crm_security.set_service_enabled('crm', false);
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)', :'tok')),
    '28000: The audience is a service disabled in service_registry.', 'a disabled audience is refused');
SELECT crm_security.set_service_enabled('crm', true);
SELECT crm_security.unregister_service('billing');
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)', :'tok')),
    '28000: The service is not registered in service_registry.', 'an unregistered service is refused');
SELECT crm_security.register_service('billing', '{crm}');
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)', :'tok')), 'ok', 'registered again: accepted');

-- In parallel workers: the same context, the registry read there with the query's snapshot
CREATE TABLE st_rows AS SELECT g AS id FROM generate_series(1, 200000) g;
ANALYZE st_rows;
\ir include/explain.sql
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
SELECT crm_security.set_claim_context(:'tok');
SELECT ok((jsonb_path_query_first(pg_temp.explain($$SELECT count(*) FILTER (WHERE crm_security.actor_type() = 'service') FROM st_rows$$),
                                  'strict $.**."Workers Launched"'))::int >= 1, 'the query runs in parallel workers');
SELECT is((SELECT count(*) FILTER (WHERE crm_security.actor_type() = 'service' AND crm_security.user_id() = 'billing') FROM st_rows),
    200000::bigint, 'the workers see the service context');
SET LOCAL max_parallel_workers_per_gather = 0;

-- Expiry
SELECT crm_security.issue_service_token('billing', 'crm', '1 second') AS short \gset
SELECT pg_sleep(1.1);
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)', :'short')) LIKE '28000: The token expired at%', true,
    'an expired service token is refused');

-- 4. Outside tokens that look like service tokens are users' (or refused)
SELECT crm_security.add_jwt_key('outside', 'HS256', 'an-outside-secret-0123456789-0123456789');
SELECT crm_security.set_claim_context(crm_security.jwt_sign(
    jsonb_build_object('sub', 'billing', 'aud', 'crm', 'crm_actor_type', 'service', 'exp', extract(epoch FROM now())::bigint + 60),
    'an-outside-secret-0123456789-0123456789', 'HS256', '{"kid": "outside"}'));
SELECT is(crm_security.actor_type(), 'user', 'an outside token with service claims is a user''s');
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)', crm_security.jwt_sign(
    (crm_security.jwt_decode(:'tok')).payload, 'an-outside-secret-0123456789-0123456789', 'HS256', '{"kid": "outside"}'))),
    '28000: The token claims the extension''s own issuer, and was not signed by the extension''s key.',
    'a service token''s claims re-signed by another key are refused');
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)',
    regexp_replace(:'tok', '\.[^.]*$', '.' || repeat('A', 43)))) LIKE '28000%', true, 'a service token with another signature is refused');

SELECT * FROM finish();
ROLLBACK;
