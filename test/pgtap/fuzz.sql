-- Fuzzing (fixed seed, so a failure repeats): more than 20,000 mutated tokens, claim sets,
-- JWKs, PEM keys and raw signatures through jwt_verify, jws_verify, jwt_decode,
-- verify_signature and sign_message, each call in its own exception block.  Asserts that only
-- SQLSTATE classes 28, 22 and 54 occur (and class 28 only for tokens and keys), never an
-- internal error (XX), that no mutant verifies, and that what verifies obeys the rules.  A
-- crashed backend ends the session and so fails the plan; run.sh also checks the server log.

BEGIN;
SELECT plan(23);

\ir include/jwt_fixtures.sql


SELECT pg_catalog.setseed(0.20261122);

-- Random helpers, all driven by random() so that a run repeats with the seed above.
CREATE FUNCTION pg_temp.rint(n int) RETURNS int
LANGUAGE sql VOLATILE AS $$ SELECT pg_catalog.floor(pg_catalog.random() * n)::int $$;
CREATE FUNCTION pg_temp.pick(a text[]) RETURNS text
LANGUAGE sql VOLATILE AS $$ SELECT a[1 + pg_temp.rint(pg_catalog.cardinality(a))] $$;
CREATE FUNCTION pg_temp.rb64(n int) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(pg_catalog.string_agg(pg_catalog.substr(
        'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', 1 + pg_temp.rint(64), 1), ''), '')
    FROM pg_catalog.generate_series(1, n)
$$;
CREATE FUNCTION pg_temp.rbytes(n int) RETURNS bytea
LANGUAGE sql VOLATILE AS $$
    SELECT pg_catalog.decode(coalesce(pg_catalog.string_agg(pg_catalog.lpad(pg_catalog.to_hex(pg_temp.rint(256)), 2, '0'), ''), ''), 'hex')
    FROM pg_catalog.generate_series(1, n)
$$;
CREATE FUNCTION pg_temp.rchar() RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT CASE pg_temp.rint(10)
        WHEN 0 THEN pg_temp.pick(ARRAY['.', '=', '+', '/', ' ', E'\n', E'\t', '%', '?', '#'])
        WHEN 1 THEN pg_catalog.chr(1 + pg_temp.rint(127))
        WHEN 2 THEN pg_temp.pick(ARRAY['é', '€', '😀', '"', '\', '{', '}', '[', ']', ',', ':', 'ÿ'])
        WHEN 3 THEN pg_catalog.chr(128 + pg_temp.rint(4000))
        ELSE pg_temp.rb64(1)
    END
$$;

-- A mutation of any text: byte flips, insertions, deletions, truncation, duplication,
-- segment swaps, random base64url garbage.
CREATE FUNCTION pg_temp.mutate(s text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    len int := pg_catalog.length(s);
    p int := 1 + pg_temp.rint(greatest(len, 1));
    parts text[];
    i int;
    j int;
    tmp text;
BEGIN
    CASE pg_temp.rint(10)
    WHEN 0 THEN
        RETURN overlay(s placing pg_temp.rchar() from p for 1);
    WHEN 1 THEN
        RETURN overlay(s placing pg_temp.rchar() from p for 0);
    WHEN 2 THEN
        RETURN overlay(s placing '' from p for 1 + pg_temp.rint(3));
    WHEN 3 THEN
        RETURN pg_catalog.left(s, pg_temp.rint(len));
    WHEN 4 THEN
        RETURN pg_catalog.left(s, p) || pg_catalog.substr(s, p, 1 + pg_temp.rint(40)) || pg_catalog.substr(s, p + 1);
    WHEN 5 THEN
        parts := pg_catalog.string_to_array(s, '.');
        i := 1 + pg_temp.rint(pg_catalog.cardinality(parts));
        j := 1 + pg_temp.rint(pg_catalog.cardinality(parts));
        CASE pg_temp.rint(4)
        WHEN 0 THEN tmp := parts[i]; parts[i] := parts[j]; parts[j] := tmp;
        WHEN 1 THEN parts := parts[1:i - 1] || parts[i + 1:];
        WHEN 2 THEN parts := parts[1:i] || parts[i:];
        ELSE parts[i] := '';
        END CASE;
        RETURN pg_catalog.array_to_string(parts, '.');
    WHEN 6 THEN
        RETURN pg_temp.rb64(pg_temp.rint(200)) || pg_catalog.repeat('.' || pg_temp.rb64(pg_temp.rint(100)), pg_temp.rint(4));
    WHEN 7 THEN
        tmp := s;
        FOR i IN 1 .. 2 + pg_temp.rint(5) LOOP
            tmp := overlay(tmp placing pg_temp.rchar() from 1 + pg_temp.rint(greatest(pg_catalog.length(tmp), 1)) for 1);
        END LOOP;
        RETURN tmp;
    WHEN 8 THEN
        RETURN CASE WHEN pg_temp.rint(2) = 0 THEN pg_temp.rchar() || s ELSE s || pg_temp.rchar() END;
    ELSE
        -- A flipped bit in the decoded signature, re-encoded canonically.
        parts := pg_catalog.string_to_array(s, '.');
        IF pg_catalog.cardinality(parts) <> 3 OR parts[3] = '' THEN
            RETURN s || '.';
        END IF;
        tmp := pg_catalog.translate(parts[3], '-_', '+/');
        tmp := tmp || pg_catalog.repeat('=', (4 - pg_catalog.length(tmp) % 4) % 4);
        DECLARE
            b bytea;
            k int;
        BEGIN
            b := pg_catalog.decode(tmp, 'base64');
            k := pg_temp.rint(pg_catalog.length(b));
            b := pg_catalog.set_byte(b, k, pg_catalog.get_byte(b, k) # (1 << pg_temp.rint(8)));
            parts[3] := pg_temp.b64u(b);
        EXCEPTION WHEN others THEN
            RETURN s || '.';   -- an earlier mutation left no decodable signature
        END;
        RETURN pg_catalog.array_to_string(parts, '.');
    END CASE;
END
$$;

-- One call, in its own subtransaction: 'ok', 'true'/'false' (verify_signature) or the SQLSTATE.
CREATE FUNCTION pg_temp.call(fn text, alg text, tok text, kt text, kj jsonb, msg bytea, sig bytea) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    st text;
    r text;
BEGIN
    CASE fn
    WHEN 'jwt_verify/text' THEN PERFORM crm_security.jwt_verify(tok, kt);
    WHEN 'jwt_verify/jsonb' THEN PERFORM crm_security.jwt_verify(tok, kj);
    WHEN 'jws_verify/text' THEN PERFORM crm_security.jws_verify(tok, kt);
    WHEN 'jws_verify/jsonb' THEN PERFORM crm_security.jws_verify(tok, kj);
    WHEN 'jwt_decode' THEN PERFORM * FROM crm_security.jwt_decode(tok);
    WHEN 'verify_signature/text' THEN r := crm_security.verify_signature(alg, kt, msg, sig)::text;
    WHEN 'verify_signature/jsonb' THEN r := crm_security.verify_signature(alg, kj, msg, sig)::text;
    WHEN 'sign_message/text' THEN PERFORM crm_security.sign_message(alg, kt, msg);
    WHEN 'sign_message/jsonb' THEN PERFORM crm_security.sign_message(alg, kj, msg);
    END CASE;
    RETURN coalesce(r, 'ok');
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
    RETURN st;
END
$$;

CREATE TEMP TABLE fz (
    n      int NOT NULL,      -- input number
    kind   text NOT NULL,     -- token, claims, jwk, pem, signature
    fn     text NOT NULL,
    state  text NOT NULL,     -- ok, true, false, a SQLSTATE, or FORGED / CLAIMS
    input  text               -- kept only for an unexpected outcome
);

-- The seeds: a token, its keys and a raw signature for each family.
CREATE TEMP TABLE seed AS
SELECT s.*, pg_temp.tok(pg_catalog.format('{"alg":"%s","typ":"JWT"}', s.alg), pg_temp.claims(), s.alg, s.signer) AS token,
       crm_security.sign_message(s.alg, s.signer, '\x6d657373616765') AS sig
FROM (VALUES
    (1, 'HS256', pg_temp.k('secret'), pg_temp.k('secret'),
        pg_catalog.jsonb_build_object('kty', 'oct', 'k', pg_temp.b64u(pg_temp.k('secret'))),
        pg_catalog.jsonb_build_object('kty', 'oct', 'k', pg_temp.b64u(pg_temp.k('secret')))),
    (2, 'RS256', pg_temp.k('rsa_priv'), pg_temp.k('rsa_pub'), pg_temp.kj('rsa_jwk'), pg_temp.kj('rsa_priv_jwk')),
    (3, 'PS256', pg_temp.k('rsa_priv'), pg_temp.k('rsa_pub'), pg_temp.kj('rsa_jwk'), pg_temp.kj('rsa_priv_jwk')),
    (4, 'ES256', pg_temp.k('ec_priv'), pg_temp.k('ec_pub'), pg_temp.kj('ec_jwk'), pg_temp.kj('ec_priv_jwk')),
    (5, 'EdDSA', pg_temp.k('ed_priv'), pg_temp.k('ed_pub'), pg_temp.kj('ed_jwk'), pg_temp.kj('ed_priv_jwk'))
) AS s(id, alg, signer, pub, pub_jwk, priv_jwk);

-- 1. Mutated tokens (12,000): a mutant that differs from its seed must never verify.
CREATE FUNCTION pg_temp.fuzz_tokens(per_seed int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    n int := 0;
    m text;
    st text;
    f text;
BEGIN
    FOR s IN SELECT * FROM seed ORDER BY id LOOP
        FOR i IN 1 .. per_seed LOOP
            n := n + 1;
            m := pg_temp.mutate(s.token);
            IF pg_temp.rint(4) = 0 THEN
                m := pg_temp.mutate(m);
            END IF;
            FOREACH f IN ARRAY ARRAY[CASE WHEN i % 2 = 0 THEN 'jwt_verify/text' ELSE 'jwt_verify/jsonb' END,
                                     CASE WHEN i % 2 = 0 THEN 'jws_verify/jsonb' ELSE 'jws_verify/text' END,
                                     'jwt_decode'] LOOP
                st := pg_temp.call(f, s.alg, m, s.pub, s.pub_jwk, NULL, NULL);
                IF st = 'ok' AND f <> 'jwt_decode' AND m <> s.token THEN
                    st := 'FORGED';
                END IF;
                INSERT INTO fz VALUES (s.id * 100000 + n, 'token', f, st,
                                       CASE WHEN st NOT LIKE '28%' AND st <> 'ok' THEN pg_catalog.left(m, 2000) END);
            END LOOP;
        END LOOP;
    END LOOP;
END
$$;

-- 2. JSON mutations, signed with the real secret (2,500): what verifies must obey the rules.
CREATE FUNCTION pg_temp.fuzz_claims(count int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    h text;
    p text;
    m text;
    st text;
    d int;
    hj jsonb;
    pj jsonb;
BEGIN
    FOR i IN 1 .. count LOOP
        h := '{"alg":' || pg_catalog.to_json(pg_temp.pick(ARRAY['HS256', 'HS256', 'HS256', 'HS256', 'none', 'None', 'nOnE',
                 'RS256', 'HS384', 'ES256', 'EdDSA', '', 'hs256', 'HS256 ', 'HS2560', 'HS25'])) ;
        FOR j IN 1 .. pg_temp.rint(3) LOOP
            d := pg_temp.rint(120);
            h := h || pg_temp.pick(ARRAY[',"typ":"JWT"', ',"kid":' || pg_catalog.to_json(pg_temp.rb64(pg_temp.rint(60))),
                     ',"crit":["exp"]', ',"crit":[]', ',"crit":"x"', ',"jwk":{"kty":"oct","k":"AAAA"}', ',"alg":"none"',
                     ',"alg":"HS256"', ',"b64":false', ',"x":' || pg_catalog.repeat('[', d) || pg_catalog.repeat(']', d),
                     ',"kid":42', ',"kid":{"a":1}', ',"jku":"https://evil.example"', ',"x5c":["AAAA"]', ',"zip":"DEF"']);
        END LOOP;
        h := h || '}';
        p := '{"sub":"fuzz"';
        FOR j IN 1 .. pg_temp.rint(4) LOOP
            d := pg_temp.rint(120);
            p := p || pg_temp.pick(ARRAY[
                ',"exp":' || pg_temp.t(3600), ',"exp":' || pg_temp.t(-3600), ',"exp":"' || pg_temp.t(3600) || '"',
                ',"exp":1e308', ',"exp":-1e308', ',"exp":1e-400', ',"exp":99999999999999999999999999999', ',"exp":null',
                ',"exp":true', ',"exp":[1]', ',"exp":{"a":1}', ',"exp":1.5', ',"exp":-0', ',"exp":1E3',
                ',"nbf":' || pg_temp.t(3600), ',"nbf":' || pg_temp.t(-3600), ',"nbf":"0"', ',"nbf":1e308', ',"nbf":-1e308',
                ',"aud":"api"', ',"aud":["api"]', ',"aud":[1,2]', ',"aud":{"a":"api"}', ',"aud":[[[]]]',
                ',"iss":"x"', ',"iss":7', ',"sub":"dup"', ',"n":' || pg_catalog.repeat('[', d) || pg_catalog.repeat(']', d),
                ',"s":"' || pg_catalog.repeat('x', pg_temp.rint(70000)) || '"', ',"u":"\ud83d\ude00"', ',"u":"\ud800"',
                ',"u":"\u0000"', ',"f":1e400000', ',"g":-', ',"h":01', ',"i":NaN', ',"j":"\x"']);
        END LOOP;
        p := p || '}';
        IF pg_temp.rint(5) = 0 THEN h := pg_temp.mutate(h); END IF;
        IF pg_temp.rint(5) = 0 THEN p := pg_temp.mutate(p); END IF;
        m := pg_temp.signed(pg_temp.b64u(h), pg_temp.b64u(p), 'HS256', pg_temp.k('secret'));
        st := pg_temp.call('jwt_verify/text', NULL, m, pg_temp.k('secret'), NULL, NULL, NULL);
        IF st = 'ok' THEN
            -- Accepted: the header must say HS256 without crit, exp/nbf must be numbers that hold.
            BEGIN
                hj := h::jsonb;
                pj := p::jsonb;
                IF hj ->> 'alg' IS DISTINCT FROM 'HS256' OR hj ? 'crit'
                   OR (pj ? 'exp' AND (pg_catalog.jsonb_typeof(pj -> 'exp') <> 'number'
                                       OR (pj ->> 'exp')::numeric <= extract(epoch FROM pg_catalog.now())))
                   OR (pj ? 'nbf' AND (pg_catalog.jsonb_typeof(pj -> 'nbf') <> 'number'
                                       OR (pj ->> 'nbf')::numeric > extract(epoch FROM pg_catalog.now()))) THEN
                    st := 'CLAIMS';
                END IF;
            EXCEPTION WHEN others THEN
                st := 'CLAIMS';   -- accepted although PostgreSQL itself cannot read it as JSON
            END;
        END IF;
        INSERT INTO fz VALUES (600000 + i, 'claims', 'jwt_verify/text', st,
                               CASE WHEN st NOT LIKE '28%' AND st <> 'ok' THEN pg_catalog.left(h || ' ' || p, 2000) END);
        st := pg_temp.call('jwt_decode', NULL, m, NULL, NULL, NULL, NULL);
        INSERT INTO fz VALUES (600000 + i, 'claims', 'jwt_decode', st,
                               CASE WHEN st NOT LIKE '28%' AND st <> 'ok' THEN pg_catalog.left(h || ' ' || p, 2000) END);
    END LOOP;
END
$$;

-- A mutated JWK: members given wrong types, huge numbers, empty or huge strings, wrong
-- lengths, points off the curve, other curves and key types, JWKS wrappings.
CREATE FUNCTION pg_temp.mutate_jwk(j jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    m text;
    v text;
    keys text[];
BEGIN
    FOR i IN 1 .. 1 + pg_temp.rint(3) LOOP
        SELECT pg_catalog.array_agg(k) INTO keys FROM pg_catalog.jsonb_object_keys(j) AS k;
        IF keys IS NULL OR pg_temp.rint(10) < 3 THEN
            m := pg_temp.pick(ARRAY['kty', 'crv', 'x', 'y', 'd', 'n', 'e', 'k', 'alg', 'use', 'key_ops', 'kid',
                                    'p', 'q', 'dp', 'dq', 'qi', 'keys', 'oth']);
        ELSE
            m := pg_temp.pick(keys);
        END IF;
        v := j ->> m;
        CASE pg_temp.rint(22)
        WHEN 0 THEN j := j || pg_catalog.jsonb_build_object(m, 42);
        WHEN 1 THEN j := j || pg_catalog.jsonb_build_object(m, '1e308'::jsonb);
        WHEN 2 THEN j := j || pg_catalog.jsonb_build_object(m, '-1'::jsonb);
        WHEN 3 THEN j := j || pg_catalog.jsonb_build_object(m, '');
        WHEN 4 THEN j := j || pg_catalog.jsonb_build_object(m, '[]'::jsonb);
        WHEN 5 THEN j := j || pg_catalog.jsonb_build_object(m, '{}'::jsonb);
        WHEN 6 THEN j := j || pg_catalog.jsonb_build_object(m, 'null'::jsonb);
        WHEN 7 THEN j := j || pg_catalog.jsonb_build_object(m, true);
        WHEN 8 THEN j := j || pg_catalog.jsonb_build_object(m, pg_temp.rb64(pg_temp.rint(700)));
        WHEN 9 THEN j := j || pg_catalog.jsonb_build_object(m, pg_temp.rb64(3000 + pg_temp.rint(20000)));
        WHEN 10 THEN j := j || pg_catalog.jsonb_build_object(m, pg_temp.mutate(coalesce(v, 'AQAB')));
        WHEN 11 THEN j := j - m;
        WHEN 12 THEN j := j || pg_catalog.jsonb_build_object(m, pg_temp.pick(ARRAY['AA', 'AQ', 'Aw', 'Ag', 'AAEAAQ', 'AQAA', '_w', 'AAAAAAAAAAAAAAAAAQAB']));
        WHEN 13 THEN j := j || pg_catalog.jsonb_build_object(m, coalesce(pg_catalog.left(v, -1), '') );
        WHEN 14 THEN j := j || pg_catalog.jsonb_build_object(m, coalesce(v, '') || pg_temp.pick(ARRAY['A', 'AA', 'AAA', 'AAAA']));
        WHEN 15 THEN
            -- Off the curve: change the last character of y (or x).
            m := pg_temp.pick(ARRAY['x', 'y']);
            v := coalesce(j ->> m, 'AAAA');
            j := j || pg_catalog.jsonb_build_object(m, pg_catalog.left(v, -1)
                      || CASE WHEN pg_catalog.right(v, 1) = 'A' THEN 'E' ELSE 'A' END);
        WHEN 16 THEN j := j || pg_catalog.jsonb_build_object('crv', pg_temp.pick(ARRAY['P-256', 'P-384', 'P-521', 'secp256k1', 'Ed448', 'X25519', 'Ed25519', '', 'p-256']));
        WHEN 17 THEN j := j || pg_catalog.jsonb_build_object('kty', pg_temp.pick(ARRAY['RSA', 'EC', 'OKP', 'oct', '', 'rsa', 'RSA-PSS']));
        WHEN 18 THEN j := j || pg_catalog.jsonb_build_object('alg', pg_temp.pick(ARRAY['RS256', 'PS256', 'ES256', 'ES512', 'EdDSA', 'Ed25519', 'HS256', 'none', 'RSA-OAEP', '', 'ES521']));
        WHEN 19 THEN j := j || pg_catalog.jsonb_build_object('key_ops', pg_temp.pick(ARRAY['["verify"]', '["sign"]', '"verify"', '[1]', '[]', '["verify","verify"]', '["sign, verify"]'])::jsonb);
        WHEN 20 THEN j := j || pg_catalog.jsonb_build_object('use', pg_temp.pick(ARRAY['sig', 'enc', '', 'SIG']));
        ELSE
            j := pg_catalog.jsonb_build_object('keys', CASE pg_temp.rint(3)
                     WHEN 0 THEN pg_catalog.jsonb_build_array(j)
                     WHEN 1 THEN pg_catalog.jsonb_build_array(j, j || '{"kid":"other"}')
                     ELSE j END);
        END CASE;
    END LOOP;
    RETURN j;
END
$$;

-- Whether a JWK's alg, use and key_ops allow `alg` for `op` (verify or sign).  A JWKS is not
-- judged here (the key that matched is not known).
CREATE FUNCTION pg_temp.jwk_allows(j jsonb, alg text, op text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT j ? 'keys'
        OR ((NOT j ? 'alg' OR j ->> 'alg' = alg
             OR (j ->> 'alg' IN ('EdDSA', 'Ed25519') AND alg IN ('EdDSA', 'Ed25519')))
            AND (NOT j ? 'use' OR j ->> 'use' = 'sig')
            AND (NOT j ? 'key_ops' OR (pg_catalog.jsonb_typeof(j -> 'key_ops') = 'array'
                                       AND j -> 'key_ops' ? op)))
$$;

-- 3. Mutated JWKs (3,500) through verify_signature, jwt_verify and sign_message; a key used
-- against its own alg, use or key_ops is a failure (BINDING).

CREATE FUNCTION pg_temp.fuzz_jwks(count int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    j jsonb;
    alg text;
    st text;
    f text;
    priv boolean;
BEGIN
    FOR i IN 1 .. count LOOP
        SELECT * INTO s FROM seed WHERE id = 1 + (i % 5);
        priv := pg_temp.rint(2) = 0;
        j := pg_temp.mutate_jwk(CASE WHEN priv THEN s.priv_jwk ELSE s.pub_jwk END);
        alg := CASE WHEN pg_temp.rint(5) = 0
                    THEN pg_temp.pick(ARRAY['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384',
                                            'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'])
                    ELSE s.alg END;
        FOREACH f IN ARRAY ARRAY['verify_signature/jsonb', 'jwt_verify/jsonb', 'sign_message/jsonb'] LOOP
            CONTINUE WHEN f = 'sign_message/jsonb' AND NOT priv;
            st := pg_temp.call(f, alg, s.token, NULL, j, '\x6d657373616765', s.sig);
            IF st IN ('ok', 'true') AND NOT pg_temp.jwk_allows(j, CASE WHEN f = 'jwt_verify/jsonb' THEN s.alg ELSE alg END,
                                                               CASE WHEN f = 'sign_message/jsonb' THEN 'sign' ELSE 'verify' END) THEN
                st := 'BINDING';
            END IF;
            INSERT INTO fz VALUES (700000 + i, 'jwk', f, st,
                                   CASE WHEN st NOT LIKE '28%' AND st NOT IN ('ok', 'true', 'false')
                                        THEN pg_catalog.left(j::text, 2000) END);
        END LOOP;
    END LOOP;
END
$$;

-- A mutated PEM block.
CREATE FUNCTION pg_temp.mutate_pem(p text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    lines text[] := pg_catalog.string_to_array(pg_catalog.rtrim(p, E'\n'), E'\n');
    n int := pg_catalog.cardinality(lines);
    i int := 2 + pg_temp.rint(greatest(n - 2, 1));
BEGIN
    CASE pg_temp.rint(9)
    WHEN 0 THEN lines[i] := pg_temp.mutate(lines[i]);
    WHEN 1 THEN lines := lines[1:i - 1] || lines[i + 1:];
    WHEN 2 THEN lines := lines[1:i] || lines[i:];
    WHEN 3 THEN
        RETURN pg_catalog.replace(p, substring(lines[1] FROM '-----BEGIN (.*)-----'),
                                  pg_temp.pick(ARRAY['PRIVATE KEY', 'PUBLIC KEY', 'RSA PUBLIC KEY', 'RSA PRIVATE KEY',
                                                     'EC PRIVATE KEY', 'CERTIFICATE', 'ENCRYPTED PRIVATE KEY', 'X509 CRL', '']));
    WHEN 4 THEN RETURN pg_catalog.left(p, pg_temp.rint(pg_catalog.length(p)));
    WHEN 5 THEN i := 2 + pg_temp.rint(4); RETURN p || (SELECT signer FROM seed WHERE id = i);
    WHEN 6 THEN
        RETURN lines[1] || E'\n' || pg_catalog.encode(pg_temp.rbytes(pg_temp.rint(2000)), 'base64') || E'\n' || lines[n] || E'\n';
    WHEN 7 THEN
        RETURN lines[1] || E'\n' || pg_catalog.encode(pg_temp.pick(ARRAY['\x3084ffffffff', '\x308180', '\x3000', '\x30820122300d06092a864886f70d01010105000382010f00', '\x02020000'])::bytea
                                                      || pg_temp.rbytes(pg_temp.rint(300)), 'base64') || E'\n' || lines[n] || E'\n';
    ELSE RETURN pg_temp.mutate(p);
    END CASE;
    RETURN pg_catalog.array_to_string(lines, E'\n') || E'\n';
END
$$;

-- 4. Mutated PEM keys (2,000) through verify_signature, jwt_verify and sign_message.
CREATE FUNCTION pg_temp.fuzz_pems(count int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    k text;
    st text;
    f text;
    priv boolean;
BEGIN
    FOR i IN 1 .. count LOOP
        SELECT * INTO s FROM seed WHERE id = 2 + (i % 4);
        priv := pg_temp.rint(2) = 0;
        k := pg_temp.mutate_pem(CASE WHEN priv THEN s.signer ELSE s.pub END);
        FOREACH f IN ARRAY ARRAY['verify_signature/text', 'jwt_verify/text', 'sign_message/text'] LOOP
            CONTINUE WHEN f = 'sign_message/text' AND NOT priv;
            st := pg_temp.call(f, s.alg, s.token, k, NULL, '\x6d657373616765', s.sig);
            INSERT INTO fz VALUES (800000 + i, 'pem', f, st,
                                   CASE WHEN st NOT LIKE '28%' AND st NOT IN ('ok', 'true', 'false')
                                        THEN pg_catalog.left(k, 2000) END);
        END LOOP;
    END LOOP;
END
$$;

-- 5. Raw signatures (1,500): random bytes, flipped bits, special ECDSA and RSA values.
CREATE FUNCTION pg_temp.fuzz_signatures(count int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    sig bytea;
    st text;
    n256 bytea := '\xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551';
    specials bytea[] := ARRAY['\x0000000000000000000000000000000000000000000000000000000000000000',
                              '\x0000000000000000000000000000000000000000000000000000000000000001',
                              '\xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550',
                              '\xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551',
                              '\xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632552',
                              '\xffffffff00000001000000000000000000000000ffffffffffffffffffffffff',
                              '\xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff']::bytea[];
    k int;
BEGIN
    FOR i IN 1 .. count LOOP
        SELECT * INTO s FROM seed WHERE id = 1 + (i % 5);
        CASE pg_temp.rint(5)
        WHEN 0 THEN sig := pg_temp.rbytes(pg_temp.rint(600));
        WHEN 1 THEN
            k := pg_temp.rint(pg_catalog.length(s.sig));
            sig := pg_catalog.set_byte(s.sig, k, pg_catalog.get_byte(s.sig, k) # (1 << pg_temp.rint(8)));
        WHEN 2 THEN sig := specials[1 + pg_temp.rint(7)] || specials[1 + pg_temp.rint(7)];
        WHEN 3 THEN sig := substring(s.sig FROM 1 FOR pg_temp.rint(pg_catalog.length(s.sig)))
                           || pg_temp.rbytes(pg_temp.rint(3));
        ELSE
            -- ECDSA (r, n - s) and friends: a valid signature's s replaced by n - s is a valid
            -- signature too, so only arithmetic on r is used here.
            sig := n256 || substring(s.sig FROM 33);
        END CASE;
        st := pg_temp.call('verify_signature/text', s.alg, NULL, s.pub, NULL, '\x6d657373616765', sig);
        IF st = 'true' AND sig <> s.sig THEN
            st := 'FORGED';
        END IF;
        INSERT INTO fz VALUES (900000 + i, 'signature', 'verify_signature/text', st,
                               CASE WHEN st NOT IN ('true', 'false') THEN s.alg || ' ' || pg_catalog.encode(sig, 'hex') END);
    END LOOP;
END
$$;

SELECT ok(crm_security.verify_signature(alg, pub, '\x6d657373616765', sig), 'seed signature verifies: ' || alg)
FROM seed ORDER BY id;
SELECT is(crm_security.jwt_verify(token, pub) ->> 'sub', 'alice', 'seed token verifies: ' || alg)
FROM seed ORDER BY id;

SELECT pg_temp.fuzz_tokens(2400);
SELECT pg_temp.fuzz_claims(2500);
SELECT pg_temp.fuzz_jwks(3500);
SELECT pg_temp.fuzz_pems(2000);
SELECT pg_temp.fuzz_signatures(1500);

SELECT cmp_ok((SELECT pg_catalog.count(DISTINCT n) FROM fz), '>=', 20000::bigint, 'at least 20,000 mutated inputs ran');
SELECT diag(pg_catalog.format('%s inputs, %s calls', (SELECT pg_catalog.count(DISTINCT n) FROM fz), (SELECT pg_catalog.count(*) FROM fz)));
SELECT diag(pg_catalog.format('%-10s %-24s %-8s %s', kind, fn, state, c))
FROM (SELECT kind, fn, state, pg_catalog.count(*) AS c FROM fz GROUP BY 1, 2, 3 ORDER BY 1, 2, 3) s;

SELECT is_empty($$SELECT kind, fn, state, n, input FROM fz WHERE state LIKE 'XX%'$$,
                'no internal error (SQLSTATE class XX)');
SELECT is_empty($$SELECT kind, fn, state, n, input FROM fz
                  WHERE state NOT IN ('ok', 'true', 'false', 'FORGED', 'CLAIMS', 'BINDING')
                    AND pg_catalog.left(state, 2) NOT IN ('28', '22', '54')$$,
                'only SQLSTATE classes 28, 22 and 54 occur');
SELECT is_empty($$SELECT kind, fn, state, n, input FROM fz WHERE state = 'FORGED'$$,
                'no mutated token or signature verifies');
SELECT is_empty($$SELECT kind, fn, state, n, input FROM fz WHERE state = 'BINDING'$$,
                'no mutated JWK is used against its alg, use or key_ops');
SELECT is_empty($$SELECT kind, fn, state, n, input FROM fz WHERE state = 'CLAIMS'$$,
                'every accepted mutated claim set has alg HS256, no crit, and numeric exp/nbf that hold');
SELECT is_empty($$SELECT kind, fn, state, n, input FROM fz
                  WHERE kind IN ('token', 'claims') AND state IN ('ok', 'FORGED', 'CLAIMS') IS NOT TRUE
                    AND state NOT LIKE '28%'$$,
                'invalid tokens are refused with class 28 only');
SELECT is_empty($$SELECT kind, fn, state, n, input FROM fz
                  WHERE kind IN ('jwk', 'pem') AND state NOT IN ('ok', 'true', 'false', 'BINDING')
                    AND state NOT LIKE '28%'$$,
                'invalid keys are refused with class 28 only');
SELECT ok((SELECT pg_catalog.count(*) FILTER (WHERE state = 'ok') > 0 AND pg_catalog.count(*) FILTER (WHERE state = '28000') > 0
           FROM fz WHERE kind = k),
          k || ': some mutants were accepted and some refused (the fuzzer reaches both paths)')
FROM pg_catalog.unnest(ARRAY['token', 'claims', 'jwk', 'pem']) AS k;
SELECT ok((SELECT pg_catalog.count(*) FILTER (WHERE state = 'false') > 0 FROM fz WHERE kind = 'signature'),
          'signature: wrong signatures answer false');

SELECT * FROM finish();
ROLLBACK;
