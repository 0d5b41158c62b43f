-- The API-key context (docs/api-keys.md, "The API-key context"): set_api_key_context under
-- tenant isolation, permissions from scopes, the audit's actor, parallel workers, refusals
-- (no context), the extension's own signing key (reserved, not readable, not replaceable),
-- and tokens of outside issuers that pretend to be API keys or services.
SET client_min_messages = warning;
BEGIN;
SELECT plan(62);

-- 'SQLSTATE: detail' of a statement's error, or 'ok'.
\ir include/err.sql

SELECT crm_security.add_tenant('acme', 'Acme');
SELECT crm_security.add_tenant('globex', 'Globex');
CREATE TEMP TABLE keys (label text PRIMARY KEY, id uuid, key text);
GRANT SELECT ON keys TO PUBLIC;
INSERT INTO keys SELECT 'acme', * FROM crm_security.create_api_key('acme sync', 'acme', '{crm:deals:write}');
INSERT INTO keys SELECT 'globex', * FROM crm_security.create_api_key('globex sync', 'globex', '{admin}');
INSERT INTO keys SELECT 'nets', * FROM crm_security.create_api_key('nets', 'acme', '{read}',
    allowed_ips => '{10.0.0.0/8}', allowed_services => '{billing}');
INSERT INTO keys SELECT 'revoked', * FROM crm_security.create_api_key('revoked', 'acme', '{read}');
INSERT INTO keys SELECT 'limited', * FROM crm_security.create_api_key('limited', 'acme', '{read}', rate_limit_per_minute => 1);
INSERT INTO keys SELECT 'soon', * FROM crm_security.create_api_key('soon', 'acme', '{read}', expires_at => now() + interval '20 seconds');
INSERT INTO keys SELECT 'notenant', * FROM crm_security.create_api_key('no tenant', NULL, '{read}');
SELECT crm_security.revoke_api_key((SELECT id FROM keys WHERE label = 'revoked'));
SELECT key AS acme, id AS acme_id FROM keys WHERE label = 'acme' \gset

CREATE TABLE deals (id int PRIMARY KEY, tenant_id text NOT NULL, title text);
INSERT INTO deals SELECT g, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, 'deal ' || g FROM generate_series(1, 10) g;
SELECT crm_security.enable_tenant_isolation('deals');
SELECT crm_security.enable_audit('deals');
CREATE ROLE regress_akc_app;
GRANT SELECT, INSERT, UPDATE ON deals TO regress_akc_app;

-- 1. The context
SELECT is((SELECT crm_security.set_api_key_context(:'acme')->>'sub'), :'acme_id'::text,
    'set_api_key_context returns the claims: sub is the key''s id');
SELECT is(crm_security.actor_type(), 'api_key', 'actor_type() is api_key');
SELECT is(crm_security.user_id(), :'acme_id'::text, 'user_id() is the key''s id');
SELECT is(crm_security.tenant_id(), 'acme', 'tenant_id() is the key''s tenant');
SELECT is(crm_security.permissions(), '{crm:deals:read,crm:deals:write}', 'permissions() are the effective scopes (write implies read)');
SELECT ok(crm_security.can('crm:deals:read') AND NOT crm_security.can('crm:contacts:read'), 'can() follows the scopes');
SELECT is(pg_temp.err($$SELECT crm_security.authorize('crm:contacts:read')$$) LIKE '42501%', true, 'authorize() refuses what the scopes lack');
SELECT is(crm_security.app_role(), NULL, 'an API key has no application role');
SELECT is(crm_security.claims()->>'iss', 'crm_security:internal', 'the claims are the extension''s own (issuer)');
SELECT cmp_ok((crm_security.claims()->>'exp')::numeric, '<=', extract(epoch FROM clock_timestamp())::numeric + 300,
    'the token lives at most 5 minutes');
SELECT is(current_setting('request.jwt.claim.sub'), :'acme_id'::text, 'request.jwt.claim.sub is set for compatibility');

-- 2. Tenant isolation for the integration
SET LOCAL ROLE regress_akc_app;
SELECT is((SELECT array_agg(DISTINCT tenant_id) FROM deals), '{acme}', 'the integration sees only its tenant''s rows');
SELECT is((SELECT count(*) FROM deals), 5::bigint, '... all of them');
SELECT is(pg_temp.err($$INSERT INTO deals VALUES (100, 'globex', 'x')$$) LIKE '42501%', true, 'it cannot write into another tenant');
INSERT INTO deals VALUES (11, 'acme', 'from the integration');
RESET ROLE;
SELECT results_eq($$SELECT actor_type, actor_id, tenant_id FROM crm_security.audit_log WHERE record_key->>'id' = '11'$$,
    $$VALUES ('api_key'::text, '$$ || :'acme_id' || $$'::text, 'acme'::text)$$,
    'the audit records actor type api_key, the key''s id and its tenant');

-- The key's tenant is authoritative: memberships are not consulted.
SELECT crm_security.add_tenant_member('globex', :'acme_id', 'client_admin');
SET LOCAL crm_security.require_membership = on;
SELECT crm_security.set_api_key_context(:'acme');
SELECT is(crm_security.tenant_id(), 'acme', 'a membership of the key''s id elsewhere changes nothing (require_membership on too)');
RESET crm_security.require_membership;
SELECT is(pg_temp.err($$SET LOCAL crm_security.requested_tenant = 'globex'; SELECT crm_security.tenant_id()$$),
    '42501: An API key or service context is valid for its own tenant only.', 'a requested tenant cannot move it elsewhere');
SELECT crm_security.clear_claim_context();
SELECT crm_security.disable_tenant('acme');
SELECT is(pg_temp.err(format('SELECT crm_security.set_api_key_context(%L)', :'acme')),
    '42501: A disabled tenant gives no claim context.', 'a disabled tenant gives no context');
SELECT crm_security.enable_tenant('acme');
SELECT crm_security.set_api_key_context((SELECT key FROM keys WHERE label = 'notenant'));
SELECT ok(crm_security.actor_type() = 'api_key' AND crm_security.tenant_id() IS NULL, 'a key of no tenant: a context without tenant');
SET LOCAL ROLE regress_akc_app;
SELECT is((SELECT count(*) FROM deals), 0::bigint, '... which sees no isolated row');
RESET ROLE;
SELECT crm_security.set_api_key_context((SELECT key FROM keys WHERE label = 'globex'));
SELECT ok(crm_security.tenant_id() = 'globex' AND crm_security.can('anything:at:all'), 'another key: its tenant, admin implies everything');

-- 3. Refusals give no context
SELECT crm_security.clear_claim_context();
SELECT is(pg_temp.err($$SELECT crm_security.set_api_key_context(NULL)$$), '28000: No API key was given.', 'NULL key: 28000');
SELECT is(pg_temp.err($$SELECT crm_security.set_api_key_context('')$$) LIKE '28000: The API key is not well-formed%', true, 'empty key: 28000');
SELECT is(pg_temp.err($$SELECT crm_security.set_api_key_context(repeat('a', 1048576))$$) LIKE '28000: The API key is not well-formed%', true, '1 MB key: 28000');
SELECT is(pg_temp.err($$SELECT crm_security.set_api_key_context(crm_security.generate_api_key())$$), '28000: The API key is unknown.', 'unknown key: 28000');
SELECT is(pg_temp.err(format('SELECT crm_security.set_api_key_context(%L)', (SELECT key FROM keys WHERE label = 'revoked'))),
    '28000: The API key was revoked.', 'revoked key: 28000');
SELECT is(pg_temp.err(format('SELECT crm_security.set_api_key_context(%L, %L, %L)', (SELECT key FROM keys WHERE label = 'nets'), 'billing', '192.168.1.1')),
    '28000: The API key may not be used from this address.', 'wrong network: 28000');
SELECT is(pg_temp.err(format('SELECT crm_security.set_api_key_context(%L, %L, %L)', (SELECT key FROM keys WHERE label = 'nets'), 'mailer', '10.1.2.3')),
    '28000: The API key may not be used for this service.', 'wrong service: 28000');
SELECT is(pg_temp.err(format('SELECT crm_security.set_api_key_context(%L, %L, %L)', (SELECT key FROM keys WHERE label = 'nets'), 'billing', '10.0.0.0/8')) LIKE '22023%',
    true, 'a network as client address: 22023');
SELECT is(pg_temp.err($$SELECT crm_security.set_api_key_context('k', NULL, 'fe80::1%eth0')$$) LIKE '22P02%', true, 'an IPv6 zone: 22P02');
SELECT is(crm_security.actor_type(), NULL, 'after the refusals there is no context');
SELECT crm_security.set_api_key_context(:'acme');
SELECT is(pg_temp.err(format('SELECT crm_security.set_api_key_context(%L)', (SELECT key FROM keys WHERE label = 'revoked'))) LIKE '28000%', true,
    'a refused key while a context is set ...');
SELECT is(crm_security.user_id(), :'acme_id'::text, '... leaves the context as it was');
SELECT crm_security.clear_claim_context();
SELECT is(pg_temp.err(format('SELECT crm_security.set_api_key_context(%L, %L, %L)', (SELECT key FROM keys WHERE label = 'nets'), 'billing', '::ffff:10.9.9.9')),
    'ok', 'an IPv4-mapped client address in the allowed network: a context');
SELECT is(pg_temp.err(format('SELECT crm_security.set_api_key_context(%L)', (SELECT key FROM keys WHERE label = 'limited'))), 'ok', 'a limited key: first use');
SELECT ok(pg_temp.err(format('SELECT crm_security.set_api_key_context(%L)', (SELECT key FROM keys WHERE label = 'limited'))) LIKE '53400: The key''s limit of 1 uses per minute is reached%',
    'over its limit: 53400');
SELECT crm_security.set_api_key_context((SELECT key FROM keys WHERE label = 'soon'));
SELECT cmp_ok((crm_security.claims()->>'exp')::numeric, '<=',
    (SELECT extract(epoch FROM expires_at) FROM crm_security.api_keys WHERE name = 'soon'),
    'the token''s exp is capped by the key''s expiry');

-- 4. The count: once per call
CREATE TEMP TABLE uses AS SELECT use_count FROM crm_security.api_key_usage(:'acme_id');
SELECT crm_security.set_api_key_context(:'acme');
SELECT crm_security.set_api_key_context(:'acme');
SELECT is((SELECT use_count FROM crm_security.api_key_usage(:'acme_id')) - (SELECT use_count FROM uses), 2::bigint,
    'each set_api_key_context counts one use');

-- 5. Parallel workers: the same context, no lookup or count there
CREATE TABLE akc_rows AS SELECT g AS id, CASE WHEN g % 4 = 0 THEN 'acme' ELSE 'other' END AS tenant FROM generate_series(1, 200000) g;
ANALYZE akc_rows;
\ir include/explain.sql
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
CREATE FUNCTION pg_temp.q() RETURNS text LANGUAGE sql AS $$
    SELECT $q$SELECT count(*) FILTER (WHERE tenant = crm_security.tenant_id()) AS t,
                   count(*) FILTER (WHERE crm_security.actor_type() = 'api_key') AS a,
                   count(*) FILTER (WHERE crm_security.user_id() = (SELECT id::text FROM keys WHERE label = 'acme')) AS u,
                   count(*) FILTER (WHERE crm_security.can('crm:deals:read')) AS c
              FROM akc_rows$q$
$$;
DELETE FROM uses; INSERT INTO uses SELECT use_count FROM crm_security.api_key_usage(:'acme_id');
SELECT ok(jsonb_path_exists(pg_temp.explain(pg_temp.q()), 'strict $.**."Node Type" ? (@ == "Gather")')
          AND (jsonb_path_query_first(pg_temp.explain(pg_temp.q()), 'strict $.**."Workers Launched"'))::int >= 1,
    'the query runs in parallel workers');
CREATE FUNCTION pg_temp.counts() RETURNS TABLE (t bigint, a bigint, u bigint, c bigint) LANGUAGE plpgsql AS $$
BEGIN RETURN QUERY EXECUTE pg_temp.q(); END $$;
SELECT results_eq('SELECT * FROM pg_temp.counts()', $$VALUES (50000::bigint, 200000::bigint, 200000::bigint, 200000::bigint)$$,
    'the workers see the API-key context: tenant, actor type, user, permissions');
SELECT is((SELECT use_count FROM crm_security.api_key_usage(:'acme_id')), (SELECT use_count FROM uses),
    'the workers neither look the key up nor count it');
GRANT SELECT ON akc_rows TO regress_akc_app;
ALTER TABLE akc_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY akc_tenant ON akc_rows USING (tenant = crm_security.tenant_id());
SET LOCAL ROLE regress_akc_app;
SELECT is((SELECT count(*) FROM akc_rows), 50000::bigint, 'a tenant policy evaluated in workers admits the key''s tenant only');
RESET ROLE;
SET LOCAL max_parallel_workers_per_gather = 0;

-- 6. The extension's own signing key
SELECT is((SELECT count(*) FROM crm_security.jwt_keys WHERE kid = 'crm_security.internal' AND issuer = 'crm_security:internal'), 1::bigint,
    'the signing key was created on first use, in the key store');
SELECT ok(NOT has_table_privilege('public', 'crm_security.jwt_keys', 'SELECT')
          AND NOT has_table_privilege('regress_akc_app', 'crm_security.jwt_keys', 'SELECT'), 'the key store is not readable by PUBLIC');
SET LOCAL ROLE regress_akc_app;
SELECT is(pg_temp.err($$SELECT key FROM crm_security.jwt_keys$$) LIKE '42501%', true, 'an application role cannot read it');
SELECT is(pg_temp.err($$SHOW crm_security.token$$) LIKE '42501%', true, '... nor the token that carries the context');
RESET ROLE;
SELECT is(pg_temp.err($$SELECT crm_security.disable_jwt_key('crm_security.internal')$$),
    '42501: They belong to the extension''s own signing key, which only the extension writes.', 'disable_jwt_key cannot disable it');
SELECT is(pg_temp.err($$UPDATE crm_security.jwt_keys SET enabled = false WHERE kid = 'crm_security.internal'$$) LIKE '42501%', true,
    'nor a plain UPDATE');
SELECT is(pg_temp.err($$SELECT crm_security.add_jwt_key('crm_security.internal', 'HS256', 'an-outside-secret-0123456789-0123456789')$$) LIKE '42501%', true,
    'add_jwt_key cannot add a key of its kid');
SELECT is(pg_temp.err($$SELECT crm_security.add_jwt_key('other', 'HS256', 'an-outside-secret-0123456789-0123456789', 'crm_security:internal')$$) LIKE '42501%', true,
    'nor a key of its issuer');
SELECT is(pg_temp.err($$SELECT crm_security.import_jwks('{"keys": [{"kty": "oct", "kid": "crm_security.internal", "k": "b3V0c2lkZS1zZWNyZXQtMDEyMzQ1Njc4OS0wMTIzNDU2Nzg5", "alg": "HS256"}]}', 'crm_security:internal')$$) LIKE '42501%', true,
    'import_jwks cannot overwrite it');
SELECT is(pg_temp.err($$SELECT crm_security.import_jwks('{"keys": [{"kty": "oct", "kid": "crm_security.internal", "k": "b3V0c2lkZS1zZWNyZXQtMDEyMzQ1Njc4OS0wMTIzNDU2Nzg5", "alg": "HS256"}]}')$$) LIKE '42501%', true,
    '... nor add its kid under no issuer');
SET LOCAL crm_security.jwt_issuer = 'https://idp.example.com';
SET LOCAL crm_security.jwt_audience = 'authenticated';
SELECT is(pg_temp.err(format('SELECT crm_security.set_api_key_context(%L)', :'acme')), 'ok',
    'the settings for outside tokens (jwt_issuer, jwt_audience) do not apply to the extension''s own');
RESET crm_security.jwt_issuer;
RESET crm_security.jwt_audience;

-- 7. Outside tokens never become API keys or services
SELECT crm_security.add_jwt_key('outside', 'HS256', 'an-outside-secret-0123456789-0123456789');
SELECT crm_security.jwt_sign(jsonb_build_object('sub', :'acme_id', 'tenant_id', 'globex', 'crm_actor_type', 'api_key',
           'actor_type', 'api_key', 'exp', extract(epoch FROM now())::bigint + 600),
       'an-outside-secret-0123456789-0123456789', 'HS256', '{"kid": "outside"}') AS looks_like_key \gset
SELECT crm_security.set_claim_context(:'looks_like_key');
SELECT is(crm_security.actor_type(), 'user', 'an outside token with API-key claims is a user''s');
SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'billing', 'aud', 'crm', 'crm_actor_type', 'service', 'exp', extract(epoch FROM now())::bigint + 600),
       'an-outside-secret-0123456789-0123456789', 'HS256', NULL) AS looks_like_service \gset
SELECT crm_security.set_claim_context(:'looks_like_service');
SELECT is(crm_security.actor_type(), 'user', 'an outside token with service claims (no kid) is a user''s');
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)',
    crm_security.jwt_sign(jsonb_build_object('iss', 'crm_security:internal', 'sub', :'acme_id', 'crm_actor_type', 'api_key', 'exp', extract(epoch FROM now())::bigint + 600),
       'an-outside-secret-0123456789-0123456789', 'HS256', '{"kid": "outside"}'))),
    '28000: The token claims the extension''s own issuer, and was not signed by the extension''s key.', 'an outside token that claims the extension''s issuer is refused');
SELECT is(pg_temp.err(format('SELECT crm_security.set_claim_context(%L)',
    crm_security.jwt_sign(jsonb_build_object('iss', 'crm_security:internal', 'sub', :'acme_id', 'crm_actor_type', 'api_key', 'exp', extract(epoch FROM now())::bigint + 600),
       'an-outside-secret-0123456789-0123456789', 'HS256', '{"kid": "crm_security.internal"}'))) LIKE '28000%', true,
    'a token with the internal kid and another key''s signature is refused');
SELECT is(pg_temp.err(format('SET LOCAL crm_security.token = %L; SELECT crm_security.actor_type()',
    crm_security.jwt_sign(jsonb_build_object('sub', 'x', 'crm_actor_type', 'service', 'exp', extract(epoch FROM now())::bigint + 600),
       'an-outside-secret-0123456789-0123456789', 'HS256', '{"kid": "crm_security.internal"}'))) LIKE '28000%', true,
    '... also when put into the setting by hand');

-- 8. Deleting the signing key (by its owner) ends its tokens; the next use makes a new one.
SELECT crm_security.set_api_key_context(:'acme');
SELECT key AS old_key FROM crm_security.jwt_keys WHERE kid = 'crm_security.internal' \gset
DELETE FROM crm_security.jwt_keys WHERE kid = 'crm_security.internal';
-- a verification setting changed: the token in the setting is verified again
SET LOCAL crm_security.clock_skew = '1';
SELECT is(pg_temp.err($$SELECT crm_security.tenant_id()$$), '28000: No key of the key store has the token''s key ID.',
    'after the key is deleted its tokens are refused (the context fails closed)');
SELECT is(pg_temp.err(format('SELECT crm_security.set_api_key_context(%L)', :'acme')), 'ok', 'the next context creates a new key');
SELECT is(crm_security.tenant_id(), 'acme', '... whose token verifies');
SELECT ok((SELECT key FROM crm_security.jwt_keys WHERE kid = 'crm_security.internal') <> :'old_key', '... a new secret');

SELECT * FROM finish();
ROLLBACK;
