-- Claim checks of jwt_verify: exp and nbf with leeway on both sides, their types, aud as a
-- string and as an array, iss compared exactly.

BEGIN;
SELECT plan(47);

\ir include/jwt_fixtures.sql


-- Verify an HS256 token with claims `c` (JSON text) and options; the outcome as text:
-- 'ok' or the SQLSTATE of the error.
CREATE FUNCTION pg_temp.v(c text, audience text DEFAULT NULL, issuer text DEFAULT NULL,
                          leeway interval DEFAULT '0 seconds') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text;
BEGIN
    PERFORM crm_security.jwt_verify(pg_temp.tok('{"alg":"HS256","typ":"JWT"}', c), pg_temp.k('secret'),
                                    audience => audience, issuer => issuer, leeway => leeway);
    RETURN 'ok';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
    RETURN st;
END
$$;

-- The margins (30 s around now, leeways of 10 s and 60 s) keep these exact whether the
-- implementation reads the transaction's time or the clock.
SELECT is(pg_temp.v(pg_catalog.format('{"exp":%s}', pg_temp.t(30))), 'ok', 'exp 30 s ahead: accepted');
SELECT is(pg_temp.v(pg_catalog.format('{"exp":%s}', pg_temp.t(-30))), '28000', 'exp 30 s ago: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"exp":%s}', pg_temp.t(-30)), leeway => '60 seconds'), 'ok',
          'exp 30 s ago, leeway 60 s: accepted (just inside)');
SELECT is(pg_temp.v(pg_catalog.format('{"exp":%s}', pg_temp.t(-30)), leeway => '10 seconds'), '28000',
          'exp 30 s ago, leeway 10 s: refused (just outside)');
SELECT is(pg_temp.v(pg_catalog.format('{"exp":%s}', pg_temp.t(-3600))), '28000', 'exp an hour ago: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"exp":%s.5}', pg_temp.t(30))), 'ok', 'exp with a fraction: accepted');
SELECT is(pg_temp.v('{"exp":0}'), '28000', 'exp 0 (1970): refused');
SELECT is(pg_temp.v('{"exp":-1}'), '28000', 'exp negative: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"nbf":%s}', pg_temp.t(-30))), 'ok', 'nbf 30 s ago: accepted');
SELECT is(pg_temp.v(pg_catalog.format('{"nbf":%s}', pg_temp.t(30))), '28000', 'nbf 30 s ahead: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"nbf":%s}', pg_temp.t(30)), leeway => '60 seconds'), 'ok',
          'nbf 30 s ahead, leeway 60 s: accepted (just inside)');
SELECT is(pg_temp.v(pg_catalog.format('{"nbf":%s}', pg_temp.t(30)), leeway => '10 seconds'), '28000',
          'nbf 30 s ahead, leeway 10 s: refused (just outside)');
SELECT is(pg_temp.v(pg_catalog.format('{"nbf":%s,"exp":%s}', pg_temp.t(-30), pg_temp.t(30))), 'ok',
          'nbf in the past and exp in the future: accepted');
SELECT is(pg_temp.v(pg_catalog.format('{"nbf":%s,"exp":%s}', pg_temp.t(30), pg_temp.t(60))), '28000',
          'nbf and exp both in the future: refused');
SELECT is(pg_temp.v(c), '28000', 'claim of the wrong type refused: ' || c)
FROM pg_catalog.unnest(ARRAY[
    pg_catalog.format('{"exp":"%s"}', pg_temp.t(3600)),
    pg_catalog.format('{"nbf":"%s"}', pg_temp.t(-3600)),
    '{"exp":true}', '{"exp":null}', '{"exp":[9999999999]}', '{"exp":{"t":9999999999}}',
    '{"nbf":false}', '{"nbf":null}']) AS c;
SELECT is(pg_temp.v('{"sub":"alice"}'), 'ok', 'no exp and no nbf: accepted (they are checked when present)');
SELECT is(pg_temp.v(pg_catalog.format('{"exp":%s}', pg_temp.t(30)), leeway => '-1 minute'), '22023',
          'a negative leeway is a malformed argument: 22023');

-- aud
SELECT is(pg_temp.v(pg_catalog.format('{"aud":"api","exp":%s}', pg_temp.t(3600)), audience => 'api'), 'ok',
          'aud string equal to the audience: accepted');
SELECT is(pg_temp.v(pg_catalog.format('{"aud":"api","exp":%s}', pg_temp.t(3600)), audience => 'other'), '28000',
          'aud string different from the audience: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"aud":"API","exp":%s}', pg_temp.t(3600)), audience => 'api'), '28000',
          'aud compared case-sensitively: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"aud":"api ","exp":%s}', pg_temp.t(3600)), audience => 'api'), '28000',
          'aud with a trailing space: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"aud":["web","api"],"exp":%s}', pg_temp.t(3600)), audience => 'api'), 'ok',
          'aud array containing the audience: accepted');
SELECT is(pg_temp.v(pg_catalog.format('{"aud":["web","mobile"],"exp":%s}', pg_temp.t(3600)), audience => 'api'), '28000',
          'aud array without the audience: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"aud":[],"exp":%s}', pg_temp.t(3600)), audience => 'api'), '28000',
          'aud empty array: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"aud":["apix"],"exp":%s}', pg_temp.t(3600)), audience => 'api'), '28000',
          'aud array with a longer string only: refused (no prefix match)');
SELECT is(pg_temp.v(pg_catalog.format('{"aud":"web,api","exp":%s}', pg_temp.t(3600)), audience => 'api'), '28000',
          'aud string holding a list: refused (no substring match)');
SELECT is(pg_temp.v(pg_catalog.format('{"exp":%s}', pg_temp.t(3600)), audience => 'api'), '28000',
          'audience required but no aud claim: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"aud":null,"exp":%s}', pg_temp.t(3600)), audience => 'api'), '28000',
          'aud null: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"aud":[["api"]],"exp":%s}', pg_temp.t(3600)), audience => 'api'), '28000',
          'aud nested array: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"aud":"api","exp":%s}', pg_temp.t(3600))), 'ok',
          'aud present but no audience asked: accepted');

-- iss
SELECT is(pg_temp.v(pg_catalog.format('{"iss":"https://id.example.com","exp":%s}', pg_temp.t(3600)),
                    issuer => 'https://id.example.com'), 'ok', 'iss equal: accepted');
SELECT is(pg_temp.v(pg_catalog.format('{"iss":"https://ID.example.com","exp":%s}', pg_temp.t(3600)),
                    issuer => 'https://id.example.com'), '28000', 'iss differing in case: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"iss":"https://id.example.com/","exp":%s}', pg_temp.t(3600)),
                    issuer => 'https://id.example.com'), '28000', 'iss with a trailing slash: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"iss":"https://id.example.com","exp":%s}', pg_temp.t(3600)),
                    issuer => 'https://id.example.com/'), '28000', 'issuer with a trailing slash, iss without: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"iss":"https://id.example.com.evil","exp":%s}', pg_temp.t(3600)),
                    issuer => 'https://id.example.com'), '28000', 'iss with a suffix: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"exp":%s}', pg_temp.t(3600)), issuer => 'https://id.example.com'), '28000',
          'issuer required but no iss claim: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"iss":["https://id.example.com"],"exp":%s}', pg_temp.t(3600)),
                    issuer => 'https://id.example.com'), '28000', 'iss as an array: refused');
SELECT is(pg_temp.v(pg_catalog.format('{"iss":"https://id.example.com","aud":"api","exp":%s}', pg_temp.t(3600)),
                    audience => 'api', issuer => 'https://id.example.com', leeway => '5 seconds'), 'ok',
          'iss, aud and exp all checked together: accepted');

-- The claims come back as they were signed.
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"HS256"}', c), pg_temp.k('secret')), c::jsonb,
          'jwt_verify returns the claims')
FROM (SELECT pg_catalog.format('{"sub":"alice","roles":["a","b"],"n":1.5,"u":"\u00e9\u20ac","exp":%s}', pg_temp.t(3600)) AS c) s;

-- RFC 7515 A.1 is a JWT whose exp (1300819380) is long past.
SELECT throws_ok($$SELECT crm_security.jwt_verify('eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
                       '{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}'::jsonb)$$,
                 '28000', NULL, 'an expired token is refused');

SELECT * FROM finish();
ROLLBACK;
