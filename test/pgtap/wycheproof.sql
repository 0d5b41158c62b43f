-- Project Wycheproof vectors through the SQL functions, inside the server.
--
-- Every vector of every file in testdata/wycheproof/ runs in its own exception block; the
-- outcome (accept, reject, or the SQLSTATE of an error) is recorded in a temporary table and
-- judged against the file's verdict:
--   valid       must be accepted;
--   invalid     must be refused: false, or an error of class 28;
--   acceptable  either, but never an error of another class;
--   contradictory  marked invalid but identical to a valid vector: either, as acceptable;
--   weakkey     (our own verdict) the key is below crm_security's minimum size: SQLSTATE 28000.
-- One assertion per run checks that every vector ran, one that every verdict holds (the
-- diagnostic lists the failing tcIds as tcId(expected:outcome SQLSTATE)).

BEGIN;
SELECT plan(50);

CREATE FUNCTION pg_temp.wp_load(file text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT pg_catalog.pg_read_file(pg_catalog.current_setting('crm_test.datadir')
                                   || '/wycheproof/' || file)::jsonb
$$;

CREATE FUNCTION pg_temp.b64url(b bytea) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.translate(pg_catalog.encode(b, 'base64'), E'+/=\n', '-_')
$$;

CREATE FUNCTION pg_temp.b64url_decode(s text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.decode(pg_catalog.rpad(pg_catalog.translate(s, '-_', '+/'),
                                             ((pg_catalog.length(s) + 3) / 4) * 4, '='), 'base64')
$$;

CREATE TEMP TABLE wp (
    run      text NOT NULL,
    tcid     int NOT NULL,
    expected text NOT NULL,   -- valid, invalid, acceptable, contradictory, weakkey
    outcome  text NOT NULL,   -- accept, reject, error, null, badpayload
    state    text             -- SQLSTATE when outcome = error
);

-- Whether an outcome contradicts the expected verdict.
CREATE FUNCTION pg_temp.wp_wrong(expected text, outcome text, state text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE expected
        WHEN 'valid' THEN outcome IS DISTINCT FROM 'accept'
        WHEN 'invalid' THEN NOT (outcome = 'reject' OR (outcome = 'error' AND state LIKE '28%'))
        WHEN 'acceptable' THEN NOT (outcome IN ('accept', 'reject')
                                    OR (outcome = 'error' AND state LIKE '28%'))
        WHEN 'contradictory' THEN NOT (outcome IN ('accept', 'reject')
                                       OR (outcome = 'error' AND state LIKE '28%'))
        WHEN 'weakkey' THEN NOT (outcome = 'error' AND state = '28000')
        ELSE true
    END
$$;

-- The failing vectors of a run, for the diagnostic ('' when none).
CREATE FUNCTION pg_temp.wp_failures(r text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(pg_catalog.string_agg(
               pg_catalog.format('%s(%s:%s%s)', tcid, expected, outcome, coalesce(' ' || state, '')),
               ', ' ORDER BY tcid), '')
    FROM wp
    WHERE run = r AND pg_temp.wp_wrong(expected, outcome, state)
$$;

CREATE FUNCTION pg_temp.wp_count(r text) RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT pg_catalog.count(*) FROM wp WHERE run = r $$;

-- Signature files: verify_signature with the group's PEM (keyform 'pem') or JWK ('jwk').
CREATE FUNCTION pg_temp.wp_sig(r text, file text, alg text, keyform text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb := pg_temp.wp_load(file);
    g jsonb;
    t jsonb;
    k jsonb;
    ok boolean;
    st text;
BEGIN
    FOR g IN SELECT value FROM pg_catalog.jsonb_array_elements(doc -> 'testGroups') LOOP
        k := coalesce(g -> 'publicKeyJwk', g -> 'keyJwk');
        IF keyform = 'jwk' AND k IS NULL THEN
            CONTINUE;
        END IF;
        FOR t IN SELECT value FROM pg_catalog.jsonb_array_elements(g -> 'tests') LOOP
            ok := NULL;
            st := NULL;
            BEGIN
                IF keyform = 'pem' THEN
                    ok := crm_security.verify_signature(alg, g ->> 'publicKeyPem',
                                                        pg_catalog.decode(t ->> 'msg', 'hex'),
                                                        pg_catalog.decode(t ->> 'sig', 'hex'));
                ELSE
                    ok := crm_security.verify_signature(alg, k,
                                                        pg_catalog.decode(t ->> 'msg', 'hex'),
                                                        pg_catalog.decode(t ->> 'sig', 'hex'));
                END IF;
            EXCEPTION WHEN others THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
            END;
            INSERT INTO wp VALUES (r, (t ->> 'tcId')::int,
                CASE WHEN coalesce((g ->> 'keySize')::int, 2048) < 2048 THEN 'weakkey'
                     ELSE t ->> 'result' END,
                CASE WHEN st IS NOT NULL THEN 'error' WHEN ok THEN 'accept'
                     WHEN NOT ok THEN 'reject' ELSE 'null' END,
                st);
        END LOOP;
    END LOOP;
END
$$;

-- HMAC files through hmac(): compare the first tagSize/8 bytes with secure_compare().
CREATE FUNCTION pg_temp.wp_hmac(r text, file text, digest text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb := pg_temp.wp_load(file);
    g jsonb;
    t jsonb;
    ok boolean;
    st text;
BEGIN
    FOR g IN SELECT value FROM pg_catalog.jsonb_array_elements(doc -> 'testGroups') LOOP
        FOR t IN SELECT value FROM pg_catalog.jsonb_array_elements(g -> 'tests') LOOP
            ok := NULL;
            st := NULL;
            BEGIN
                ok := crm_security.secure_compare(
                    substring(crm_security.hmac(pg_catalog.decode(t ->> 'msg', 'hex'),
                                                           pg_catalog.decode(t ->> 'key', 'hex'),
                                                           digest)
                                         FROM 1 FOR (g ->> 'tagSize')::int / 8),
                    pg_catalog.decode(t ->> 'tag', 'hex'));
            EXCEPTION WHEN others THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
            END;
            INSERT INTO wp VALUES (r, (t ->> 'tcId')::int, t ->> 'result',
                CASE WHEN st IS NOT NULL THEN 'error' WHEN ok THEN 'accept'
                     WHEN NOT ok THEN 'reject' ELSE 'null' END,
                st);
        END LOOP;
    END LOOP;
END
$$;

-- HMAC files through verify_signature() with an oct JWK.  JOSE never truncates a MAC, so a
-- truncated tag must be refused even where Wycheproof calls it valid; a key shorter than
-- 32 bytes is refused with 28000 whatever the tag.
CREATE FUNCTION pg_temp.wp_hs(r text, file text, alg text, fullbits int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb := pg_temp.wp_load(file);
    g jsonb;
    t jsonb;
    ok boolean;
    st text;
BEGIN
    FOR g IN SELECT value FROM pg_catalog.jsonb_array_elements(doc -> 'testGroups') LOOP
        FOR t IN SELECT value FROM pg_catalog.jsonb_array_elements(g -> 'tests') LOOP
            ok := NULL;
            st := NULL;
            BEGIN
                ok := crm_security.verify_signature(alg,
                    pg_catalog.jsonb_build_object('kty', 'oct',
                        'k', pg_temp.b64url(pg_catalog.decode(t ->> 'key', 'hex'))),
                    pg_catalog.decode(t ->> 'msg', 'hex'),
                    pg_catalog.decode(t ->> 'tag', 'hex'));
            EXCEPTION WHEN others THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
            END;
            INSERT INTO wp VALUES (r, (t ->> 'tcId')::int,
                CASE WHEN (g ->> 'keySize')::int < 256 THEN 'weakkey'
                     WHEN (g ->> 'tagSize')::int < fullbits THEN 'invalid'
                     ELSE t ->> 'result' END,
                CASE WHEN st IS NOT NULL THEN 'error' WHEN ok THEN 'accept'
                     WHEN NOT ok THEN 'reject' ELSE 'null' END,
                st);
        END LOOP;
    END LOOP;
END
$$;

-- Compact JWS through jws_verify() with the group's public JWK (the private one for HMAC).
-- An accepted token must also return its own payload.  A vector marked invalid whose token
-- is byte for byte the token of a valid vector of the same group (367 and 370, where the
-- padding that made them invalid is missing from the file) cannot be refused without
-- refusing the valid one: it is judged as acceptable.
CREATE FUNCTION pg_temp.wp_jws(r text, file text, stricter int[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb := pg_temp.wp_load(file);
    g jsonb;
    t jsonb;
    valid_tokens text[];
    payload bytea;
    outcome text;
    st text;
BEGIN
    FOR g IN SELECT value FROM pg_catalog.jsonb_array_elements(doc -> 'testGroups') LOOP
        SELECT pg_catalog.array_agg(v ->> 'jws') INTO valid_tokens
        FROM pg_catalog.jsonb_array_elements(g -> 'tests') AS e(v)
        WHERE v ->> 'result' = 'valid';
        FOR t IN SELECT value FROM pg_catalog.jsonb_array_elements(g -> 'tests') LOOP
            payload := NULL;
            st := NULL;
            BEGIN
                payload := crm_security.jws_verify(t ->> 'jws', coalesce(g -> 'public', g -> 'private'));
            EXCEPTION WHEN others THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
            END;
            IF st IS NOT NULL THEN
                outcome := 'error';
            ELSIF payload IS NULL THEN
                outcome := 'null';
            ELSIF payload = pg_temp.b64url_decode(pg_catalog.split_part(t ->> 'jws', '.', 2)) THEN
                outcome := 'accept';
            ELSE
                outcome := 'badpayload';
            END IF;
            INSERT INTO wp VALUES (r, (t ->> 'tcId')::int,
                CASE WHEN (t ->> 'tcId')::int = ANY (stricter) THEN 'acceptable'
                     WHEN t ->> 'result' = 'invalid' AND t ->> 'jws' = ANY (valid_tokens) THEN 'contradictory'
                     ELSE t ->> 'result' END,
                outcome, st);
        END LOOP;
    END LOOP;
END
$$;

-- Vectors per file, counted independently of the runners.
CREATE FUNCTION pg_temp.wp_total(file text, need_jwk boolean DEFAULT false) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(pg_catalog.sum(pg_catalog.jsonb_array_length(g -> 'tests')), 0)::bigint
    FROM pg_catalog.jsonb_array_elements(pg_temp.wp_load(file) -> 'testGroups') AS e(g)
    WHERE NOT need_jwk OR g ? 'publicKeyJwk' OR g ? 'keyJwk'
$$;

-- The runs.
SELECT pg_temp.wp_hmac('hmac_sha256', 'hmac_sha256_test.json', 'sha256');
SELECT pg_temp.wp_hmac('hmac_sha384', 'hmac_sha384_test.json', 'sha384');
SELECT pg_temp.wp_hmac('hmac_sha512', 'hmac_sha512_test.json', 'sha512');
SELECT pg_temp.wp_hs('HS256 jwk', 'hmac_sha256_test.json', 'HS256', 256);
SELECT pg_temp.wp_hs('HS384 jwk', 'hmac_sha384_test.json', 'HS384', 384);
SELECT pg_temp.wp_hs('HS512 jwk', 'hmac_sha512_test.json', 'HS512', 512);
SELECT pg_temp.wp_sig('RS256 pem', 'rsa_signature_2048_sha256_test.json', 'RS256', 'pem');
SELECT pg_temp.wp_sig('RS256 jwk', 'rsa_signature_2048_sha256_test.json', 'RS256', 'jwk');
SELECT pg_temp.wp_sig('RS384 pem', 'rsa_signature_2048_sha384_test.json', 'RS384', 'pem');
SELECT pg_temp.wp_sig('RS384 jwk', 'rsa_signature_2048_sha384_test.json', 'RS384', 'jwk');
SELECT pg_temp.wp_sig('RS512 pem', 'rsa_signature_2048_sha512_test.json', 'RS512', 'pem');
SELECT pg_temp.wp_sig('RS512 jwk', 'rsa_signature_2048_sha512_test.json', 'RS512', 'jwk');
SELECT pg_temp.wp_sig('PS256 pem', 'rsa_pss_2048_sha256_mgf1_32_test.json', 'PS256', 'pem');
SELECT pg_temp.wp_sig('PS256 jwk', 'rsa_pss_2048_sha256_mgf1_32_test.json', 'PS256', 'jwk');
SELECT pg_temp.wp_sig('ES256 pem', 'ecdsa_secp256r1_sha256_p1363_test.json', 'ES256', 'pem');
SELECT pg_temp.wp_sig('ES256 jwk', 'ecdsa_secp256r1_sha256_p1363_test.json', 'ES256', 'jwk');
SELECT pg_temp.wp_sig('ES384 pem', 'ecdsa_secp384r1_sha384_p1363_test.json', 'ES384', 'pem');
SELECT pg_temp.wp_sig('ES384 jwk', 'ecdsa_secp384r1_sha384_p1363_test.json', 'ES384', 'jwk');
SELECT pg_temp.wp_sig('ES512 pem', 'ecdsa_secp521r1_sha512_p1363_test.json', 'ES512', 'pem');
SELECT pg_temp.wp_sig('ES512 jwk', 'ecdsa_secp521r1_sha512_p1363_test.json', 'ES512', 'jwk');
SELECT pg_temp.wp_sig('EdDSA pem', 'ed25519_test.json', 'EdDSA', 'pem');
SELECT pg_temp.wp_sig('Ed25519 jwk', 'ed25519_test.json', 'Ed25519', 'jwk');
-- README: 346, 347, 350 and 351 (token alg differs from the JWK's alg) and 372, 373 (a '?'
-- inside a base64url segment) are valid in the file but refused by our stricter rules.
SELECT pg_temp.wp_jws('jws', 'json_web_signature_test.json', '{346,347,350,351,372,373}');

-- Every vector ran.
SELECT is(pg_temp.wp_count(r), pg_temp.wp_total(f, j), r || ': every vector of ' || f || ' ran')
FROM (VALUES
    (1, 'hmac_sha256', 'hmac_sha256_test.json', false),
    (2, 'hmac_sha384', 'hmac_sha384_test.json', false),
    (3, 'hmac_sha512', 'hmac_sha512_test.json', false),
    (4, 'HS256 jwk', 'hmac_sha256_test.json', false),
    (5, 'HS384 jwk', 'hmac_sha384_test.json', false),
    (6, 'HS512 jwk', 'hmac_sha512_test.json', false),
    (7, 'RS256 pem', 'rsa_signature_2048_sha256_test.json', false),
    (8, 'RS256 jwk', 'rsa_signature_2048_sha256_test.json', true),
    (9, 'RS384 pem', 'rsa_signature_2048_sha384_test.json', false),
    (10, 'RS384 jwk', 'rsa_signature_2048_sha384_test.json', true),
    (11, 'RS512 pem', 'rsa_signature_2048_sha512_test.json', false),
    (12, 'RS512 jwk', 'rsa_signature_2048_sha512_test.json', true),
    (13, 'PS256 pem', 'rsa_pss_2048_sha256_mgf1_32_test.json', false),
    (14, 'PS256 jwk', 'rsa_pss_2048_sha256_mgf1_32_test.json', true),
    (15, 'ES256 pem', 'ecdsa_secp256r1_sha256_p1363_test.json', false),
    (16, 'ES256 jwk', 'ecdsa_secp256r1_sha256_p1363_test.json', true),
    (17, 'ES384 pem', 'ecdsa_secp384r1_sha384_p1363_test.json', false),
    (18, 'ES384 jwk', 'ecdsa_secp384r1_sha384_p1363_test.json', true),
    (19, 'ES512 pem', 'ecdsa_secp521r1_sha512_p1363_test.json', false),
    (20, 'ES512 jwk', 'ecdsa_secp521r1_sha512_p1363_test.json', true),
    (21, 'EdDSA pem', 'ed25519_test.json', false),
    (22, 'Ed25519 jwk', 'ed25519_test.json', true),
    (23, 'jws', 'json_web_signature_test.json', false)
) AS v(n, r, f, j)
ORDER BY n;

-- Every verdict holds.
SELECT is(pg_temp.wp_failures(r), '',
          r || ': ' || pg_temp.wp_count(r) || ' vectors, each accepted or refused as it should be')
FROM (VALUES (1, 'hmac_sha256'), (2, 'hmac_sha384'), (3, 'hmac_sha512'),
             (4, 'HS256 jwk'), (5, 'HS384 jwk'), (6, 'HS512 jwk'),
             (7, 'RS256 pem'), (8, 'RS256 jwk'), (9, 'RS384 pem'), (10, 'RS384 jwk'),
             (11, 'RS512 pem'), (12, 'RS512 jwk'), (13, 'PS256 pem'), (14, 'PS256 jwk'),
             (15, 'ES256 pem'), (16, 'ES256 jwk'), (17, 'ES384 pem'), (18, 'ES384 jwk'),
             (19, 'ES512 pem'), (20, 'ES512 jwk'), (21, 'EdDSA pem'), (22, 'Ed25519 jwk'),
             (23, 'jws')) AS v(n, r)
ORDER BY n;

-- The checks above can fail: the files hold both verdicts, and short HMAC keys were refused.
SELECT ok((SELECT pg_catalog.count(DISTINCT outcome) FROM wp WHERE run = 'RS256 pem') >= 2,
          'RS256: both accepted and refused vectors were seen');
SELECT ok((SELECT pg_catalog.count(*) FROM wp
           WHERE run LIKE 'HS% jwk' AND expected = 'weakkey' AND state = '28000') = 12,
          'HMAC keys shorter than 32 bytes are refused with 28000 by verify_signature (12 vectors)');

-- No internal error anywhere (SQLSTATE class XX), nor a NULL answer.
SELECT is_empty($$SELECT run, tcid, state FROM wp WHERE state LIKE 'XX%' OR outcome = 'null'$$,
                'no vector raised an internal error (class XX) or returned NULL');

SELECT is((SELECT pg_catalog.string_agg(tcid::text, ',' ORDER BY tcid) FROM wp WHERE expected = 'contradictory'),
          '367,370', 'jws: only 367 and 370 repeat a valid token under an invalid verdict');

-- For the record: how the deliberate disagreements of json_web_signature_test.json came out.
SELECT diag('jws ' || tcid || ': ' || outcome || coalesce(' ' || state, ''))
FROM wp WHERE run = 'jws' AND tcid IN (346, 347, 350, 351, 367, 370, 372, 373) ORDER BY tcid;

SELECT * FROM finish();
ROLLBACK;
