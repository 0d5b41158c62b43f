-- Verified tokens kept across transactions (token_cache.c): a token verified in one
-- transaction is taken up again in the next only while its key, the key store's
-- verification settings and the session's settings are unchanged, and never after its exp;
-- the cache is bounded (many distinct tokens do not grow the memory).
-- Not wrapped in one transaction, on purpose; the keys are deleted at the end.
DELETE FROM crm_security.jwt_keys WHERE kid LIKE 'tc\_%';
DELETE FROM crm_security.jwt_settings;
SELECT plan(16);

\set secret '''tc-secret-0123456789-0123456789-abcdef'''
SELECT crm_security.add_jwt_key('tc_hs', 'HS256', :secret) IS NULL AS added \gset
SELECT crm_security.add_jwt_key('tc_es', (SELECT crm_security.jwk_public(k) FROM (SELECT crm_security.generate_jwk('ES256') AS k) g)) IS NULL AS added \gset
CREATE FUNCTION pg_temp.tok(claims jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT crm_security.jwt_sign(claims, 'tc-secret-0123456789-0123456789-abcdef', 'HS256', '{"kid": "tc_hs"}')
$$;
CREATE FUNCTION pg_temp.ctx(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; d text;
BEGIN
    RETURN crm_security.set_claim_context(tok)->>'sub';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, d = PG_EXCEPTION_DETAIL;
    RETURN s || ': ' || coalesce(d, '');
END $$;
SELECT pg_temp.tok(jsonb_build_object('sub', 'u1', 'tenant_id', 't1', 'aud', 'app-a',
                                      'exp', extract(epoch FROM now())::bigint + 600)) AS tok \gset
SELECT pg_temp.tok(jsonb_build_object('sub', 'u-short', 'tenant_id', 't1',
                                      'exp', extract(epoch FROM now())::bigint + 2)) AS short \gset
SELECT pg_temp.tok(jsonb_build_object('sub', 'u-nbf', 'tenant_id', 't1', 'nbf', extract(epoch FROM now())::bigint + 2,
                                      'exp', extract(epoch FROM now())::bigint + 600)) AS nbf \gset

-- The same token in one transaction after another.
BEGIN;
SELECT is(pg_temp.ctx(:'tok'), 'u1', 'a token verifies');
COMMIT;
BEGIN;
SELECT is(pg_temp.ctx(:'tok'), 'u1', 'the same token in the next transaction');
SELECT is(crm_security.tenant_id(), 't1', '... with its tenant');
COMMIT;
SELECT is(crm_security.claims(), NULL, 'no context outside the transactions (the cache is not a context)');

-- A session setting changed: verified again with it.
BEGIN;
SET LOCAL crm_security.jwt_audience = 'app-b';
SELECT is(pg_temp.ctx(:'tok'), '28000: The token''s audience does not include "app-b".',
          'a cached token is checked again when crm_security.jwt_audience changes');
COMMIT;
BEGIN;
SELECT is(pg_temp.ctx(:'tok'), 'u1', '... and accepted again when it changes back');
COMMIT;

-- The key store's settings changed.
SELECT crm_security.set_verification_settings(audience => 'app-b') IS NULL AS set \gset
BEGIN;
SELECT is(pg_temp.ctx(:'tok'), '28000: The token''s audience does not include "app-b".',
          'a cached token is refused at the next transaction after set_verification_settings');
COMMIT;
SELECT crm_security.set_key_verification_settings('tc_hs', NULL, 'app-a') IS NULL AS set \gset
BEGIN;
SELECT is(pg_temp.ctx(:'tok'), 'u1', 'a key''s own audience takes precedence over the default');
COMMIT;
DELETE FROM crm_security.jwt_settings;
SELECT crm_security.set_key_verification_settings('tc_hs') IS NULL AS reset \gset

-- exp: never kept beyond it.
BEGIN;
SELECT is(pg_temp.ctx(:'short'), 'u-short', 'a token that expires in 2 seconds verifies');
COMMIT;
SELECT pg_sleep(2.5) IS NOT NULL AS slept \gset
BEGIN;
SELECT ok(pg_temp.ctx(:'short') LIKE '28000: The token expired at %', '... and is refused after its exp, cached or not');
COMMIT;

-- nbf: a token not yet valid is refused, and is not remembered as refused either.
SELECT pg_temp.tok(jsonb_build_object('sub', 'u-nbf', 'tenant_id', 't1', 'nbf', extract(epoch FROM now())::bigint + 2,
                                      'exp', extract(epoch FROM now())::bigint + 600)) AS nbf \gset
BEGIN;
SELECT ok(pg_temp.ctx(:'nbf') LIKE '28000: The token is not valid before %', 'a token before its nbf is refused');
COMMIT;
SELECT pg_sleep(2.5) IS NOT NULL AS slept \gset
BEGIN;
SELECT is(pg_temp.ctx(:'nbf'), 'u-nbf', '... and accepted once its nbf has come');
COMMIT;

-- A disabled key: the cached token is refused at the next transaction.
SELECT crm_security.disable_jwt_key('tc_hs') IS NULL AS disabled \gset
BEGIN;
SELECT is(pg_temp.ctx(:'tok'), '28000: The token''s key is disabled.',
          'after disable_jwt_key, a cached token is refused at the next transaction');
COMMIT;
UPDATE crm_security.jwt_keys SET enabled = true WHERE kid = 'tc_hs';

-- Many distinct tokens: the cache stays bounded.
CREATE FUNCTION pg_temp.cache_bytes() RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts WHERE name = 'crm_security token cache'
$$;
BEGIN;
DO $$
BEGIN
    FOR i IN 1..300 LOOP
        PERFORM crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('sub', 'many-' || i, 'tenant_id', 't1',
            'pad', repeat('x', 1000), 'exp', extract(epoch FROM now())::bigint + 600)));
    END LOOP;
END $$;
SELECT pg_temp.cache_bytes() AS after300 \gset
DO $$
BEGIN
    FOR i IN 301..2300 LOOP
        PERFORM crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('sub', 'many-' || i, 'tenant_id', 't1',
            'pad', repeat('x', 1000), 'exp', extract(epoch FROM now())::bigint + 600)));
    END LOOP;
END $$;
COMMIT;
SELECT cmp_ok(pg_temp.cache_bytes(), '<', 1024 * 1024::bigint,
              '2,300 distinct tokens of 1 kB: the token cache holds less than 1 MB');
SELECT cmp_ok(pg_temp.cache_bytes(), '<=', (:after300 + 64 * 1024)::bigint,
              '... and no more than after 300 (no leak: evicted entries are freed)');
BEGIN;
SELECT is(pg_temp.ctx(:'tok'), 'u1', 'the first token still verifies after its entry was evicted');
COMMIT;

SELECT * FROM finish();

DELETE FROM crm_security.jwt_keys WHERE kid LIKE 'tc\_%';
DELETE FROM crm_security.jwt_settings;
