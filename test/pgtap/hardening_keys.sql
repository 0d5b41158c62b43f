-- Hardening of the key store and of key parsing (docs/security.md, findings 3, 7, 8, 9):
--  3. every JWK member, the number of JWKS members and the JWKS itself are bounded before
--     anything is decoded; a private JWK given to verify is used for its public part only,
--     without the primality tests of a pairwise check; statement_timeout is served.
--  7. no refusal of add_jwt_key / import_jwks shows the secret (message, detail, hint,
--     context), whichever constraint it violates.
--  8. a key is identified by (kid, issuer): a JWKS of another issuer sharing a kid adds a key
--     and never replaces one; a token of issuer B's key that claims issuer A is refused.
--  9. exp/nbf and key windows are checked against the current time, and a key disabled and
--     committed by another session is refused at once, inside a long transaction.
-- Test server log is checked for the secrets by test/scripts/hardening_keys_log.sh.

BEGIN;
SELECT plan(105);

-- The error a statement raises, as "SQLSTATE | message | detail | hint | context"; the
-- statement gets the secret as $1, so that its own text never holds it.
CREATE FUNCTION pg_temp.hk_err(sql text, secret text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text; m text; d text; h text; c text;
BEGIN
    BEGIN
        EXECUTE sql USING secret;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
                                h = PG_EXCEPTION_HINT, c = PG_EXCEPTION_CONTEXT;
        RETURN st || ' | ' || m || ' | ' || coalesce(d, '') || ' | ' || coalesce(h, '') || ' | ' || coalesce(c, '');
    END;
    RETURN 'no error';
END
$$;
-- The time a statement takes.
CREATE FUNCTION pg_temp.hk_time(sql text) RETURNS interval
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    EXECUTE sql;
    RETURN clock_timestamp() - t0;
END
$$;
CREATE FUNCTION pg_temp.hk_b64u(t text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT rtrim(translate(encode(convert_to(t, 'UTF8'), 'base64'), E'+/\n', '-_'), '=') $$;
-- An HS256 token of kid, issuer and expiry (seconds from the current time), made with secret.
CREATE FUNCTION pg_temp.hk_tok(secret text, kid text, iss text, ttl numeric DEFAULT 600) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT crm_security.jwt_sign(jsonb_strip_nulls(jsonb_build_object('sub', 'hk-user', 'iss', iss,
               'exp', round(extract(epoch FROM clock_timestamp()) + ttl, 3))),
           secret, 'HS256', jsonb_build_object('kid', kid))
$$;
CREATE FUNCTION pg_temp.hk_unb64u(t text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT convert_from(decode(rpad(translate(t, '-_', '+/'), (length(t) + 3) / 4 * 4, '='), 'base64'), 'UTF8')
$$;
CREATE FUNCTION pg_temp.hk_oct(secret text, kid text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('kty', 'oct', 'kid', kid, 'alg', 'HS256', 'k', pg_temp.hk_b64u(secret))
$$;

---------------------------------------------------------------------------------------------
-- Finding 7: no secret in any message of a refusal
---------------------------------------------------------------------------------------------
CREATE TEMP TABLE hk7(label text, sqlstate text, sql text, secret text);
INSERT INTO hk7 VALUES
 ('text key, window ending before it starts', '23514',
  $$SELECT crm_security.add_jwt_key('hk7_a', 'HS256', $1, NULL, now(), now() - interval '1 day')$$, 'SECRET-CANARY-HK7-text-0123456789abcdef'),
 ('text key, kid of 257 bytes', '23514',
  $$SELECT crm_security.add_jwt_key(repeat('k', 257), 'HS256', $1)$$, 'SECRET-CANARY-HK7-text-0123456789abcdef'),
 ('text key, empty kid', '23514',
  $$SELECT crm_security.add_jwt_key('', 'HS256', $1)$$, 'SECRET-CANARY-HK7-text-0123456789abcdef'),
 ('text key, empty issuer', '23514',
  $$SELECT crm_security.add_jwt_key('hk7_a', 'HS256', $1, '')$$, 'SECRET-CANARY-HK7-text-0123456789abcdef'),
 ('text key, (kid, issuer) exists', '23505',
  $$SELECT crm_security.add_jwt_key('hk7_dup', 'HS256', $1)$$, 'SECRET-CANARY-HK7-text-0123456789abcdef'),
 ('text key, NULL algorithm', '22023',
  $$SELECT crm_security.add_jwt_key('hk7_a', NULL, $1)$$, 'SECRET-CANARY-HK7-text-0123456789abcdef'),
 ('text key, short secret', '28000',
  $$SELECT crm_security.add_jwt_key('hk7_a', 'HS256', $1)$$, 'SECRET-CANARY-HK7-short'),
 ('text key, a PEM whose label is the secret', '28000',
  $$SELECT crm_security.add_jwt_key('hk7_a', 'RS256', '-----BEGIN ' || $1 || '-----' || E'\nAAAA\n-----END X-----')$$, 'SECRET-CANARY-HK7-label'),
 ('direct INSERT, enabled NULL', '23502',
  $$INSERT INTO crm_security.jwt_keys (kid, algorithm, key, enabled) VALUES ('hk7_a', 'HS256', $1, NULL)$$, 'SECRET-CANARY-HK7-text-0123456789abcdef'),
 ('direct INSERT, created_at NULL', '23502',
  $$INSERT INTO crm_security.jwt_keys (kid, algorithm, key, created_at) VALUES ('hk7_a', 'HS256', $1, NULL)$$, 'SECRET-CANARY-HK7-text-0123456789abcdef'),
 ('direct INSERT, window ending before it starts', '23514',
  $$INSERT INTO crm_security.jwt_keys (kid, algorithm, key, not_before, not_after) VALUES ('hk7_a', 'HS256', $1, now(), now())$$, 'SECRET-CANARY-HK7-text-0123456789abcdef'),
 ('direct INSERT, key and JWK', '22023',
  $$INSERT INTO crm_security.jwt_keys (kid, algorithm, key, jwk) VALUES ('hk7_a', 'HS256', $1, '{}')$$, 'SECRET-CANARY-HK7-text-0123456789abcdef'),
 ('direct INSERT of a duplicate', '23505',
  $$INSERT INTO crm_security.jwt_keys (kid, algorithm, key) VALUES ('hk7_dup', 'HS256', $1)$$, 'SECRET-CANARY-HK7-text-0123456789abcdef'),
 ('oct JWK, window ending before it starts', '23514',
  $$SELECT crm_security.add_jwt_key('hk7_j', jsonb_build_object('kty', 'oct', 'k', $1), NULL, now(), now() - interval '1 day')$$, 'SECRET-CANARY-HK7-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
 ('oct JWK, kid of 257 bytes', '23514',
  $$SELECT crm_security.add_jwt_key(repeat('j', 257), jsonb_build_object('kty', 'oct', 'k', $1))$$, 'SECRET-CANARY-HK7-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
 ('oct JWK, (kid, issuer) exists', '23505',
  $$SELECT crm_security.add_jwt_key('hk7_dup', jsonb_build_object('kty', 'oct', 'k', $1))$$, 'SECRET-CANARY-HK7-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
 ('oct JWK, kid that differs from the JWK', '22023',
  $$SELECT crm_security.add_jwt_key('hk7_j', jsonb_build_object('kty', 'oct', 'kid', 'other', 'k', $1))$$, 'SECRET-CANARY-HK7-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
 ('oct JWK, secret too short', '28000',
  $$SELECT crm_security.add_jwt_key('hk7_j', jsonb_build_object('kty', 'oct', 'k', $1))$$, 'SECRET-CANARY-HK7-AA'),
 ('import_jwks, kid of 257 bytes', '23514',
  $$SELECT crm_security.import_jwks(jsonb_build_object('keys', jsonb_build_array(jsonb_build_object('kty', 'oct', 'kid', repeat('i', 257), 'k', $1))))$$, 'SECRET-CANARY-HK7-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
 ('import_jwks, empty issuer', '23514',
  $$SELECT crm_security.import_jwks(jsonb_build_object('keys', jsonb_build_array(jsonb_build_object('kty', 'oct', 'kid', 'hk7_i', 'k', $1))), '')$$, 'SECRET-CANARY-HK7-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
 ('import_jwks, two members with one kid', '22023',
  $$SELECT crm_security.import_jwks(jsonb_build_object('keys', jsonb_build_array(jsonb_build_object('kty', 'oct', 'kid', 'hk7_i', 'k', $1), jsonb_build_object('kty', 'oct', 'kid', 'hk7_i', 'k', $1))))$$, 'SECRET-CANARY-HK7-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
 ('import_jwks, a member of the wrong kind', '28000',
  $$SELECT crm_security.import_jwks(jsonb_build_object('keys', jsonb_build_array(jsonb_build_object('kty', 'oct', 'kid', 'hk7_i', 'alg', 'RS256', 'k', $1))))$$, 'SECRET-CANARY-HK7-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
 ('jwt_verify, a secret that is too short', '28000',
  $$SELECT crm_security.jwt_verify('eyJhbGciOiJIUzI1NiJ9.e30.AAAA', $1)$$, 'SECRET-CANARY-HK7-short');
SELECT FROM crm_security.add_jwt_key('hk7_dup', 'HS256', repeat('d', 32));

SELECT is(split_part(pg_temp.hk_err(sql, secret), ' | ', 1), sqlstate, 'finding 7: ' || label || ': refused with ' || sqlstate)
  FROM hk7 ORDER BY label;
SELECT unalike(pg_temp.hk_err(sql, secret), '%CANARY%'::text, 'finding 7: ' || label || ': no secret in message, detail, hint or context')
  FROM hk7 ORDER BY label;
SELECT is((SELECT count(*) FROM crm_security.jwt_keys WHERE kid LIKE 'hk7%' OR kid LIKE 'kkkk%' OR kid LIKE 'jjjj%'
               OR kid LIKE 'iiii%' OR kid = ''), 1::bigint, 'finding 7: none of the refused keys was stored');

---------------------------------------------------------------------------------------------
-- Finding 8: key identity is (kid, issuer)
---------------------------------------------------------------------------------------------
SELECT is(crm_security.import_jwks(jsonb_build_object('keys', jsonb_build_array(
              pg_temp.hk_oct('hk8-secret-of-provider-a-0123456789', 'hk8_1'))), 'https://a.example'),
          1, 'finding 8: provider A''s JWKS imported');
SELECT is(crm_security.import_jwks(jsonb_build_object('keys', jsonb_build_array(
              pg_temp.hk_oct('hk8-secret-of-provider-b-0123456789', 'hk8_1'))), 'https://b.example'),
          1, 'finding 8: provider B''s JWKS with the same kid imported');
SELECT results_eq($$SELECT issuer, pg_temp.hk_unb64u(jwk->>'k')
                     FROM crm_security.jwt_keys WHERE kid = 'hk8_1' ORDER BY issuer$$,
                  $$VALUES ('https://a.example'::text, 'hk8-secret-of-provider-a-0123456789'::text),
                           ('https://b.example', 'hk8-secret-of-provider-b-0123456789')$$,
                  'finding 8: both keys are kept, each with its issuer and its own material');
SELECT throws_ok(format('SELECT crm_security.set_claim_context(%L)',
                     pg_temp.hk_tok('hk8-secret-of-provider-b-0123456789', 'hk8_1', 'https://a.example')),
                 '28000', 'invalid token', 'finding 8: a token of B''s key claiming A''s issuer is refused');
SELECT is(crm_security.set_claim_context(pg_temp.hk_tok('hk8-secret-of-provider-a-0123456789', 'hk8_1', 'https://a.example'))->>'iss',
          'https://a.example', 'finding 8: a token of A''s key claiming A''s issuer is accepted');
SELECT is(crm_security.set_claim_context(pg_temp.hk_tok('hk8-secret-of-provider-b-0123456789', 'hk8_1', 'https://b.example'))->>'iss',
          'https://b.example', 'finding 8: a token of B''s key claiming B''s issuer is accepted');
SELECT throws_ok(format('SELECT crm_security.set_claim_context(%L)',
                     pg_temp.hk_tok('hk8-secret-of-provider-a-0123456789', 'hk8_1', NULL)),
                 '28000', 'invalid token', 'finding 8: a token of A''s key without iss is refused');
-- Re-importing B's JWKS with new material updates B's key only.
SELECT is(crm_security.import_jwks(jsonb_build_object('keys', jsonb_build_array(
              pg_temp.hk_oct('hk8-new-secret-of-provider-b-012345', 'hk8_1'))), 'https://b.example'),
          1, 'finding 8: provider B''s rotated JWKS imported');
SELECT results_eq($$SELECT issuer, pg_temp.hk_unb64u(jwk->>'k')
                     FROM crm_security.jwt_keys WHERE kid = 'hk8_1' ORDER BY issuer$$,
                  $$VALUES ('https://a.example'::text, 'hk8-secret-of-provider-a-0123456789'::text),
                           ('https://b.example', 'hk8-new-secret-of-provider-b-012345')$$,
                  'finding 8: the rotation replaced B''s key and left A''s alone');
-- A key without issuer, sharing the kid: it verifies tokens of any issuer but A and B.
SELECT is(crm_security.import_jwks(jsonb_build_object('keys', jsonb_build_array(
              pg_temp.hk_oct('hk8-secret-without-issuer-0123456789', 'hk8_1')))),
          1, 'finding 8: a JWKS without issuer with the same kid imported');
SELECT is((SELECT count(*) FROM crm_security.jwt_keys WHERE kid = 'hk8_1'), 3::bigint,
          'finding 8: three keys share the kid');
SELECT throws_ok(format('SELECT crm_security.set_claim_context(%L)',
                     pg_temp.hk_tok('hk8-secret-without-issuer-0123456789', 'hk8_1', 'https://a.example')),
                 '28000', 'invalid token', 'finding 8: a key without issuer cannot make a token of an issuer that has keys of its own');
SELECT is(crm_security.set_claim_context(pg_temp.hk_tok('hk8-secret-without-issuer-0123456789', 'hk8_1', 'https://c.example'))->>'iss',
          'https://c.example', 'finding 8: a key without issuer verifies tokens of other issuers');
SELECT is(crm_security.set_claim_context(pg_temp.hk_tok('hk8-secret-without-issuer-0123456789', 'hk8_1', NULL))->>'sub',
          'hk-user', 'finding 8: ... and tokens without iss');
-- add_jwt_key, disable_jwt_key and the identity
SELECT throws_ok($$SELECT crm_security.add_jwt_key('hk8_1', 'HS256', repeat('x', 32), 'https://a.example')$$,
                 '23505', 'key "hk8_1" of issuer "https://a.example" already exists', 'finding 8: add_jwt_key refuses an existing (kid, issuer)');
SELECT lives_ok($$SELECT crm_security.add_jwt_key('hk8_2', 'HS256', repeat('x', 32), 'https://a.example')$$,
                'finding 8: ... and takes a new kid of the same issuer');
SELECT throws_ok($$SELECT crm_security.disable_jwt_key('hk8_1')$$, '22023', NULL,
                 'finding 8: disable_jwt_key(kid) refuses a kid that names keys of several issuers');
SELECT lives_ok($$SELECT crm_security.disable_jwt_key('hk8_1', 'https://b.example')$$,
                'finding 8: disable_jwt_key(kid, issuer) disables one key');
SELECT results_eq($$SELECT issuer, enabled FROM crm_security.jwt_keys WHERE kid = 'hk8_1' ORDER BY issuer$$,
                  $$VALUES ('https://a.example'::text, true), ('https://b.example', false), (NULL, true)$$,
                  'finding 8: only B''s key is disabled');
SELECT throws_ok(format('SELECT crm_security.set_claim_context(%L)',
                     pg_temp.hk_tok('hk8-new-secret-of-provider-b-012345', 'hk8_1', 'https://b.example')),
                 '28000', 'invalid token', 'finding 8: B''s disabled key is refused');
SELECT is(crm_security.set_claim_context(pg_temp.hk_tok('hk8-secret-of-provider-a-0123456789', 'hk8_1', 'https://a.example'))->>'iss',
          'https://a.example', 'finding 8: A''s key still works');
SELECT throws_ok($$SELECT crm_security.disable_jwt_key('hk8_1', 'https://nobody.example')$$, '42704', NULL,
                 'finding 8: disabling a key of an unknown issuer raises');
SELECT lives_ok($$SELECT crm_security.disable_jwt_key('hk8_2')$$, 'finding 8: disable_jwt_key(kid) works when one issuer uses the kid');

---------------------------------------------------------------------------------------------
-- Finding 9: the current time, and a key disabled by another session, inside one transaction
---------------------------------------------------------------------------------------------
SELECT FROM crm_security.add_jwt_key('hk9_k', 'HS256', 'hk9-secret-0123456789-0123456789-0');
SELECT FROM crm_security.add_jwt_key('hk9_w', 'HS256', 'hk9-window-0123456789-0123456789-0', NULL,
                                NULL, clock_timestamp() + interval '1.5 s');
CREATE TEMP TABLE hk9(name text PRIMARY KEY, tok text);
INSERT INTO hk9 VALUES ('short', pg_temp.hk_tok('hk9-secret-0123456789-0123456789-0', 'hk9_k', NULL, 1.5)),
                       ('window', pg_temp.hk_tok('hk9-window-0123456789-0123456789-0', 'hk9_w', NULL, 600));
SELECT is(crm_security.set_claim_context((SELECT tok FROM hk9 WHERE name = 'short'))->>'sub', 'hk-user',
          'finding 9: a token that expires in 1.5 s is accepted');
SELECT is(crm_security.jwt_verify((SELECT tok FROM hk9 WHERE name = 'short'), 'hk9-secret-0123456789-0123456789-0')->>'sub',
          'hk-user', 'finding 9: ... by jwt_verify too');
SELECT is(crm_security.set_claim_context((SELECT tok FROM hk9 WHERE name = 'window'))->>'sub', 'hk-user',
          'finding 9: a key whose window ends in 1.5 s is accepted');
SELECT FROM pg_sleep(2);
SELECT throws_like(format('SELECT crm_security.set_claim_context(%L)', (SELECT tok FROM hk9 WHERE name = 'short')),
                   '%invalid token%', 'finding 9: 2 s later, in the same transaction, set_claim_context refuses the expired token');
SELECT is(pg_temp.hk_err(format('SELECT crm_security.jwt_verify(%L, $1)', (SELECT tok FROM hk9 WHERE name = 'short')),
                         'hk9-secret-0123456789-0123456789-0') LIKE '28000 | invalid token | The token expired at%', true,
          'finding 9: ... and so does jwt_verify');
SELECT throws_ok(format('SELECT crm_security.set_claim_context(%L)', (SELECT tok FROM hk9 WHERE name = 'window')),
                 '28000', 'invalid token', 'finding 9: the key whose window ended meanwhile is refused');
-- The same tokens put back into the setting directly: verified again, not taken from the
-- verifications made while they were valid.
SELECT set_config('crm_security.token', (SELECT tok FROM hk9 WHERE name = 'short'), true) IS NOT NULL AS hk9_set \gset
SELECT throws_ok('SELECT crm_security.user_id()', '28000', 'invalid token',
                 'finding 9: an expired token put back into the setting is refused, not served from the cache');
SELECT set_config('crm_security.token', (SELECT tok FROM hk9 WHERE name = 'window'), true) IS NOT NULL AS hk9_set \gset
SELECT throws_ok('SELECT crm_security.user_id()', '28000', 'invalid token',
                 'finding 9: a token of a key whose window ended, put back into the setting, is refused');
SELECT set_config('crm_security.token', '', true) IS NOT NULL AS hk9_set \gset

-- Another session (dblink) adds a key, then disables it; this transaction sees both at once.
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT FROM dblink_connect('hk9', format('dbname=%s port=%s host=%s user=%s', current_database(),
                      current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1),
                      current_user));
SELECT FROM dblink('hk9', $$DELETE FROM crm_security.jwt_keys WHERE kid = 'hk9_remote' RETURNING ''$$) AS t(r text);
-- One step: a statement in the other session (committed there), then, at once and with no
-- other statement in between, set_claim_context here; the subject, or the SQLSTATE.
CREATE FUNCTION pg_temp.hk9_step(remote_sql text, tok text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM dblink('hk9', remote_sql) AS t(r text);
    BEGIN
        RETURN crm_security.set_claim_context(tok)->>'sub';
    EXCEPTION WHEN OTHERS THEN
        RETURN SQLSTATE;
    END;
END
$$;
-- The same, with the token put into the setting instead (the context cache of the
-- transaction has it verified already): the setting's token is verified again.
CREATE FUNCTION pg_temp.hk9_step_setting(remote_sql text, tok text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM dblink('hk9', remote_sql) AS t(r text);
    BEGIN
        PERFORM set_config('crm_security.token', tok, true);
        RETURN crm_security.user_id();
    EXCEPTION WHEN OTHERS THEN
        RETURN SQLSTATE;
    END;
END
$$;
INSERT INTO hk9 VALUES ('remote', pg_temp.hk_tok('hk9-remote-0123456789-0123456789', 'hk9_remote', NULL));
-- Both step functions run once first, so that nothing in the steps below is done for the
-- first time in this transaction (a first lock or plan would accept invalidations by itself).
SELECT FROM pg_temp.hk9_step($$SELECT ''$$, (SELECT tok FROM hk9 WHERE name = 'remote'));
SELECT FROM pg_temp.hk9_step_setting($$SELECT ''$$, (SELECT tok FROM hk9 WHERE name = 'remote'));
SELECT FROM crm_security.clear_claim_context();
SELECT is(pg_temp.hk9_step($$SELECT crm_security.add_jwt_key('hk9_remote', 'HS256', 'hk9-remote-0123456789-0123456789')::text$$,
                           (SELECT tok FROM hk9 WHERE name = 'remote')),
          'hk-user', 'finding 9: a key added and committed by another session is used at once');
SELECT FROM crm_security.clear_claim_context();
SELECT is(pg_temp.hk9_step_setting($$SELECT crm_security.disable_jwt_key('hk9_remote')::text$$,
                                   (SELECT tok FROM hk9 WHERE name = 'remote')),
          '28000', 'finding 9: once another session disabled it and committed, the token put into the setting is refused at once');
SELECT is(pg_temp.hk9_step($$UPDATE crm_security.jwt_keys SET enabled = true WHERE kid = 'hk9_remote' RETURNING ''$$,
                           (SELECT tok FROM hk9 WHERE name = 'remote')),
          'hk-user', 'finding 9: enabled again by the other session, it is accepted at once');
SELECT is(pg_temp.hk9_step($$SELECT crm_security.disable_jwt_key('hk9_remote')::text$$,
                           (SELECT tok FROM hk9 WHERE name = 'remote')),
          '28000', 'finding 9: disabled again, set_claim_context refuses it at once');
SELECT FROM dblink('hk9', $$DELETE FROM crm_security.jwt_keys WHERE kid = 'hk9_remote' RETURNING ''$$) AS t(r text);
SELECT FROM dblink_disconnect('hk9');

---------------------------------------------------------------------------------------------
-- Finding 3: bounded sizes, no needless checks, interruptible
---------------------------------------------------------------------------------------------
SET LOCAL statement_timeout = '20s';
CREATE TEMP TABLE hk3(name text PRIMARY KEY, v jsonb);
INSERT INTO hk3 VALUES ('rsa', crm_security.generate_jwk('RS256', 'hk3'));
INSERT INTO hk3 SELECT 'rsa_pub', crm_security.jwk_public(v) FROM hk3 WHERE name = 'rsa';
INSERT INTO hk3 SELECT 'jwks256', jsonb_build_object('keys', jsonb_agg(v || jsonb_build_object('kid', 'hk3_' || g)))
  FROM hk3, generate_series(1, 256) g WHERE name = 'rsa';
CREATE FUNCTION pg_temp.hk3(n text) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT v FROM hk3 WHERE name = n $$;
CREATE TEMP TABLE hk3_msg AS SELECT 'hk3 message'::bytea AS m,
    crm_security.sign_message('RS256', (SELECT v FROM hk3 WHERE name = 'rsa'), 'hk3 message') AS sig;

-- 256 private RSA JWKs used to verify: their public parts only, fast (minutes before).
SELECT cmp_ok(pg_temp.hk_time($$SELECT crm_security.verify_signature('RS256', pg_temp.hk3('jwks256'), 'x', 'y')$$),
              '<', interval '3 s', 'finding 3: a JWKS of 256 private RSA JWKs is parsed for verification in well under 3 s');
SELECT is(crm_security.verify_signature('RS256', pg_temp.hk3('jwks256'), (SELECT m FROM hk3_msg), (SELECT sig FROM hk3_msg)),
          true, 'finding 3: ... and verifies with their public parts');
SELECT cmp_ok(pg_temp.hk_time($$SELECT crm_security.jwt_sign('{"sub":"x"}', pg_temp.hk3('rsa'), 'RS256')$$),
              '<', interval '3 s', 'finding 3: a private RSA JWK still signs');
SELECT is(array_to_string((string_to_array(pg_temp.hk_err($$SELECT crm_security.jwt_sign('{"sub":"x"}', $1::jsonb, 'RS256')$$,
                                                          pg_temp.hk3('jwks256')::text), ' | '))[1:3], ' | '),
          '28000 | invalid key | More than one key of the key set can sign with algorithm "RS256"; pass a single JWK.',
          'finding 3: signing with the JWKS of 256 private keys is refused quickly, without pairwise checks');
-- A private JWK whose CRT values do not match: refused to sign, its public part verifies.
INSERT INTO hk3 SELECT 'rsa_bad', v || jsonb_build_object('qi', v->'dp') FROM hk3 WHERE name = 'rsa';
SELECT is(split_part(pg_temp.hk_err($$SELECT crm_security.sign_message('RS256', $1::jsonb, 'x')$$, pg_temp.hk3('rsa_bad')::text), ' | ', 3),
          'The RSA private key does not match its public key.', 'finding 3: an inconsistent private RSA JWK cannot sign');
SELECT is(crm_security.verify_signature('RS256', pg_temp.hk3('rsa_bad'), (SELECT m FROM hk3_msg), (SELECT sig FROM hk3_msg)),
          true, 'finding 3: ... its public part verifies (the private members are not read for verification)');
SELECT is(crm_security.jwk_public(pg_temp.hk3('rsa')), pg_temp.hk3('rsa_pub'), 'finding 3: jwk_public still works');

-- Sizes, refused before anything is decoded.
CREATE TEMP TABLE hk3_size(label text, jwk jsonb, detail text);
INSERT INTO hk3_size VALUES
 ('a private RSA JWK with a d of 256 kB', (SELECT v || jsonb_build_object('d', repeat('A', 262144)) FROM hk3 WHERE name = 'rsa'),
  'The JWK member "d" is longer than a key of this type can have.'),
 ('a public RSA JWK with an n of 20000 bits', (SELECT v || jsonb_build_object('n', repeat('A', 3334)) FROM hk3 WHERE name = 'rsa_pub'),
  'The JWK member "n" is longer than a key of this type can have.'),
 ('a public RSA JWK with an e of 1 kB', (SELECT v || jsonb_build_object('e', repeat('A', 1366)) FROM hk3 WHERE name = 'rsa_pub'),
  'The JWK member "e" is longer than a key of this type can have.'),
 ('an RSA JWK with a p of 64 kB', (SELECT v || jsonb_build_object('p', repeat('A', 65536)) FROM hk3 WHERE name = 'rsa'),
  'The JWK member "p" is longer than a key of this type can have.'),
 ('an EC JWK with an x of 100 kB', jsonb_build_object('kty', 'EC', 'crv', 'P-256', 'x', repeat('A', 100000), 'y', repeat('A', 43)),
  'The JWK member "x" is longer than a key of this type can have.'),
 ('an EC JWK with a d of 100 kB', jsonb_build_object('kty', 'EC', 'crv', 'P-521', 'x', repeat('A', 88), 'y', repeat('A', 88), 'd', repeat('A', 100000)),
  'The JWK member "d" is longer than a key of this type can have.'),
 ('an OKP JWK with an x of 100 kB', jsonb_build_object('kty', 'OKP', 'crv', 'Ed25519', 'x', repeat('A', 100000)),
  'The JWK member "x" is longer than a key of this type can have.'),
 ('an oct JWK of 100 kB', jsonb_build_object('kty', 'oct', 'k', repeat('A', 100000)),
  'The JWK member "k" is longer than a key of this type can have.'),
 ('a JWKS of 1.1 MB', jsonb_build_object('keys', jsonb_build_array(jsonb_build_object('kty', 'oct', 'x5c', repeat('A', 1100000)))),
  'A JWK or JWKS may be at most 1048576 bytes long.'),
 ('a JWKS of 257 HMAC keys', (SELECT jsonb_build_object('keys', jsonb_agg(pg_temp.hk_oct(repeat('s', 32), 'hk3_' || g))) FROM generate_series(1, 257) g),
  'A JWKS may hold at most 256 keys.');
SELECT is(split_part(pg_temp.hk_err($$SELECT crm_security.jwt_verify('eyJhbGciOiJSUzI1NiJ9.e30.AAAA', $1::jsonb)$$, jwk::text), ' | ', 3),
          detail, 'finding 3: ' || label || ': refused by its size')
  FROM hk3_size WHERE jwk ? 'kty' ORDER BY label;
SELECT is(split_part(pg_temp.hk_err($$SELECT crm_security.jwt_verify('eyJhbGciOiJSUzI1NiJ9.e30.AAAA', $1::jsonb)$$, jwk::text), ' | ', 1)
          || ' ' || split_part(pg_temp.hk_err($$SELECT crm_security.jwt_verify('eyJhbGciOiJSUzI1NiJ9.e30.AAAA', $1::jsonb)$$, jwk::text), ' | ', 3),
          '28000 ' || detail, 'finding 3: ' || label || ': refused by its size')
  FROM hk3_size WHERE NOT jwk ? 'kty' ORDER BY label;
SELECT cmp_ok(pg_temp.hk_time($$SELECT count(*) FROM hk3_size, LATERAL (SELECT pg_temp.hk_err('SELECT crm_security.jwk_public($1::jsonb)', jwk::text)) e$$),
              '<', interval '3 s', 'finding 3: every oversized key is refused quickly');
-- Deep nesting in a member nobody reads costs nothing.
SELECT is(crm_security.jwt_verify(pg_temp.hk_tok(repeat('n', 32), 'hk3_n', NULL),
              pg_temp.hk_oct(repeat('n', 32), 'hk3_n') || jsonb_build_object('x5c', (repeat('[', 1000) || repeat(']', 1000))::jsonb))->>'sub',
          'hk-user', 'finding 3: a JWK with a deeply nested extra member works');
-- The key store refuses private JWKs before decoding them.
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L)', pg_temp.hk3('jwks256')),
                 '22023', 'the key store holds public keys only', 'finding 3: import_jwks refuses a JWKS of private keys');
SELECT cmp_ok(pg_temp.hk_time($$SELECT pg_temp.hk_err('SELECT crm_security.import_jwks($1::jsonb)', pg_temp.hk3('jwks256')::text)$$),
              '<', interval '1 s', 'finding 3: ... at once');
SELECT throws_ok(format('SELECT crm_security.add_jwt_key(%L, %L::jsonb)', 'hk3', pg_temp.hk3('rsa')),
                 '22023', 'the key store holds public keys only', 'finding 3: add_jwt_key refuses a private RSA JWK');
SELECT throws_ok(format('SELECT crm_security.import_jwks(%L)', jsonb_build_object('keys', jsonb_build_array(pg_temp.hk3('rsa_pub') || '{"d": 1}'))),
                 '22023', 'the key store holds public keys only', 'finding 3: ... also when its d is not even a string');

SELECT * FROM finish();
ROLLBACK;
