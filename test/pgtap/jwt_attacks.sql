-- Attacks on JWT/JWS verification: algorithm confusion, alg none, the algorithms allowlist,
-- crit, keys named by the token (jwk, jku, x5u, kid), psychic ECDSA signatures, weak keys and
-- keys of the wrong kind.  Every refusal is checked with its SQLSTATE; each attack has a
-- genuine counterpart that passes, so the refusals are refusals of the defect carried.

BEGIN;
SELECT plan(105);

-- Fixed test keys, made for these tests only (never used elsewhere).
CREATE TEMP TABLE k (name text PRIMARY KEY, val text NOT NULL);
INSERT INTO k VALUES
    ('secret', '0123456789abcdef0123456789abcdef'),
    ('secret31', '0123456789abcdef0123456789abcde'),
    ('rsa_priv', $k$-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCpmvXADFzgC7sf
ROJgrqr/IJfHAKCIAEzg2fX0EqTTl/QMvIHP89NO3uJBp8aDk3zeZhXhdBkNPkcy
t6ZqQWXespXKpMlzZV6ufW+kriugnusHQi7eQ530x94XkPX+cP0OYIaFl+cUNbhy
5yGc0GCPk2vZ+jyvM+wzuAUY+mjqBt3X3hjOTT7DlKeJkFWnUB56YtrsDwUfTR1F
lbgpTph35e42E9950rEpVWaz27fDSgof3XFjjkC6Q62JIu7vkbke18wV9ks/QRMN
9gVXsyItP35mVsd/dq0iEOW5KGaZpz3Z8wNuCf1KYc/4oFjPTKb41JB2AclFFOFV
IJ9iLe+lAgMBAAECggEAANp7NaX2uMnki5n1Ioy+dN3ArOCRQ4+1tuFFc5CEc8+t
RHwHPPkW5jpBx2127AmvSdZQx6YXr4Mm760QdN3BKCPxd68h7UOdUejKV+qvj0ro
F2lCSjpAbo9WdsKPiIyuVb+9tKkOIYIgI3r9X2u+yYhjfFKlJGrGeCpgcYX0m9xp
HAOOCDmWnMp317fAf3EdRbeDp1w6tJTypn18Lsk5Ioroh3N+iQF2EO0EkXfCjrLu
33WK8GaAlWYlyLw2mpY1oVzGfqlcnjSYfzbU11CU+G0RPJwfrCo8yK4d5/yJyuv+
ZEzb08bujqjvcSnx6T5VYSO1adxbGGkrL+Cm4rkdIQKBgQDThp8DLAHn8o+MnUjC
3u9Yw09eWz3x1AKaypY8pQ08M481PTTxam3TkgqllnugtaPJkxmzHzw9gdpQQ/kL
3Egr0QDV5CUkp/wSchoyETezhraKHX/Jzzym2LrQ32U9RHcitJ/j/gTUWSaLX1bM
LesgJWVdps/R4Iy8Nz6jhrAfEwKBgQDNQ/cdDNpjHXbQFU5OZ+ceQYGEVvH5Iiia
uP7Jn8zOpfGqB7Aw8xsQLhV/W5FoSvCXBClitb72iA9CiU5ID40Bj5hHtbk2zCZE
uVx48NlmRxwE7FrpdBd6BCbggDs5n1vwIs0omrrlHnonXj+Sb4JWPjvhM/IWMZwf
eW+1nWO1ZwKBgBlSAxTZHr1KLt7RMRWKpDIG5yhPWcHp9AndeFB4HXZ4YYso8X54
k/8Ae1/I/LGHLL0Da88iTQ67zYtQJ67Axq7gDO6NqdiSdz0qBXK61uUZmh48W8Cn
mwYJ6Yr5QuArous3nfAnxyI4LcH/Pp+gW4X0lAa64iOocpBROKFQjSKbAoGBAMeX
5Pv8eYaTKergLMqUwelrrPLwUE3+Zxk79ZQ8rLvsJHc/DpYqbhBnn0O92EBfTl6q
D0wKievTFXOPa+0qIeR4qoxgKf8ct8FvtHltSRfo4VfwM955ojJlQyBd0DkRuiZg
0LlA66bK4eDSBmLvxv7xeOxcxHPMPZFlVbh1mHTVAoGAUfxUCuD+lKKP8aVeLJkb
ZcWgbPmR+/6gmjgXPtf3yiZsBhwbcQe8texIVcM7ywqjQxS2YrQjL/0Odd3S3T+l
D31Uoi/R7cQy4CojRJfGoRLD+19TbwXjZsEeoyDLUZsFsmAlmOiVIZ+wgDTZmxTt
6MtNZOwMdWz4ebWx6CaW2DA=
-----END PRIVATE KEY-----$k$),
    ('rsa_pub', $k$-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqZr1wAxc4Au7H0TiYK6q
/yCXxwCgiABM4Nn19BKk05f0DLyBz/PTTt7iQafGg5N83mYV4XQZDT5HMremakFl
3rKVyqTJc2Vern1vpK4roJ7rB0Iu3kOd9MfeF5D1/nD9DmCGhZfnFDW4cuchnNBg
j5Nr2fo8rzPsM7gFGPpo6gbd194Yzk0+w5SniZBVp1AeemLa7A8FH00dRZW4KU6Y
d+XuNhPfedKxKVVms9u3w0oKH91xY45AukOtiSLu75G5HtfMFfZLP0ETDfYFV7Mi
LT9+ZlbHf3atIhDluShmmac92fMDbgn9SmHP+KBYz0ym+NSQdgHJRRThVSCfYi3v
pQIDAQAB
-----END PUBLIC KEY-----$k$),
    ('rsa_jwk', $k${"kty": "RSA", "n": "qZr1wAxc4Au7H0TiYK6q_yCXxwCgiABM4Nn19BKk05f0DLyBz_PTTt7iQafGg5N83mYV4XQZDT5HMremakFl3rKVyqTJc2Vern1vpK4roJ7rB0Iu3kOd9MfeF5D1_nD9DmCGhZfnFDW4cuchnNBgj5Nr2fo8rzPsM7gFGPpo6gbd194Yzk0-w5SniZBVp1AeemLa7A8FH00dRZW4KU6Yd-XuNhPfedKxKVVms9u3w0oKH91xY45AukOtiSLu75G5HtfMFfZLP0ETDfYFV7MiLT9-ZlbHf3atIhDluShmmac92fMDbgn9SmHP-KBYz0ym-NSQdgHJRRThVSCfYi3vpQ", "e": "AQAB"}$k$),
    ('rsa1024_priv', $k$-----BEGIN PRIVATE KEY-----
MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBAL4F94hs0+tx6q+5
3Lu4KQClBRmVLBjaWBTtkssu3x+jtCvmweT7VOWknLMZEy61l47t23XONVrLuip0
qf5QiI1rBsWmQuzfG8zZ1P6vGd05vpQhVrdnc6n9GO8bTRVNoXn1beIOzXZ+8UVI
T29hyVNBBQW9TX0ANAhe/h3FVSUDAgMBAAECgYEAse90ctM1PetWD2bDQySXgHsF
44bD3CHZCP/NzWT+men49IMIXRrbzI3wDeUVCVARs00Xi6CkZXkPwmGsLO/MbMF7
E3PPZozNabeDPbPHg1Xul5L71bwznbeUaQqbnS1sekDZ2+ju6DKt5Z9w8Z8fT0Si
3Rvtsr1sWXTG/86kJEECQQDw0NEwYORqJ53Y+Rs9S6ssAJ2B9Rod/IaOEibxdFsy
hfqrPebTZjLyQY2OJs9wS8JEjPRHUWNAKXQXorHNkPLVAkEAygFFyzRR00f87JTI
jOpdlP4VDTqqb4Eb2EY4ZiofjcSp2c4lmng+53emlbjSmje5e+BIdrUOY/h2cGc/
9Z00dwJAegPz2iVd1oOYMPWW3anXYwY0yEIeJ49pxdZgsPqZsrG73sQQjpA7xA9+
38W+WVGpbv5UT0ZnmXzne4pNuLB2uQJBAK1oSES3RiLMYmepFTw6mFklgGbZ3KNZ
vtB6/0Fcmbe2gmQx3f/rh3xmLz/J6Chw+65Gi44zwQW6rdmyGKq85+MCQHCALmyY
NCpGboXwCHdKqKwnZ0fUn67nnEFqIKQMVE0msx/CF2DYbf671Muol7tGLe9UPrX4
V3C8ykYZpKiDYMw=
-----END PRIVATE KEY-----$k$),
    ('rsa1024_pub', $k$-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+BfeIbNPrceqvudy7uCkApQUZ
lSwY2lgU7ZLLLt8fo7Qr5sHk+1TlpJyzGRMutZeO7dt1zjVay7oqdKn+UIiNawbF
pkLs3xvM2dT+rxndOb6UIVa3Z3Op/RjvG00VTaF59W3iDs12fvFFSE9vYclTQQUF
vU19ADQIXv4dxVUlAwIDAQAB
-----END PUBLIC KEY-----$k$),
    ('rsa1024_jwk', $k${"kty": "RSA", "n": "vgX3iGzT63Hqr7ncu7gpAKUFGZUsGNpYFO2Syy7fH6O0K-bB5PtU5aScsxkTLrWXju3bdc41Wsu6KnSp_lCIjWsGxaZC7N8bzNnU_q8Z3Tm-lCFWt2dzqf0Y7xtNFU2hefVt4g7Ndn7xRUhPb2HJU0EFBb1NfQA0CF7-HcVVJQM", "e": "AQAB"}$k$),
    ('rsa1024_token', $k$eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.cul5QkQMD3fcNVuoMwR7ea-8JXkrHmv-j4g1OCGthW5_qu6Y2KwueIkENgObsajAi0mjrQq8zjh47SFzX-8mGQ1xXPrBIHRaRQJwULcaLIFNCviNElDD6ra8yEQ6ZvCNz_j1lbz8U0euanFY4_mCW9ohTMuIip-MVyd7lIVGDpA$k$),
    ('ec_priv', $k$-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiK+qTOTrtMv7ZWUb
KKRPbsBAky5yvrCKb83PU6y5ESuhRANCAATnM7ZbpkMwVCVA1/SNxLrKSrWfgybF
5UlTHcYaWUZ0oj4UfkI/q8im6h3nuC0bC0ZXc6BkIzAzcyw2mOyVWwOP
-----END PRIVATE KEY-----$k$),
    ('ec_pub', $k$-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE5zO2W6ZDMFQlQNf0jcS6ykq1n4Mm
xeVJUx3GGllGdKI+FH5CP6vIpuod57gtGwtGV3OgZCMwM3MsNpjslVsDjw==
-----END PUBLIC KEY-----$k$),
    ('ec_jwk', $k${"kty": "EC", "crv": "P-256", "x": "5zO2W6ZDMFQlQNf0jcS6ykq1n4MmxeVJUx3GGllGdKI", "y": "PhR-Qj-ryKbqHee4LRsLRldzoGQjMDNzLDaY7JVbA48"}$k$),
    ('att_priv', $k$-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAhOF2eQnzc/ukm2N
vriu9iJPCpxp1J8jnH5Mb9fVB6ihRANCAASVUiD3iw02+lkp/pWTaT31Xye63iJ+
KPrIzZ1GkQHl5uToABnsrTLJ8jFIPHx9jO5Z7yDV5PbUCuo9ihFIK0Ex
-----END PRIVATE KEY-----$k$),
    ('att_jwk', $k${"kty": "EC", "crv": "P-256", "x": "lVIg94sNNvpZKf6Vk2k99V8nut4ifij6yM2dRpEB5eY", "y": "5OgAGeytMsnyMUg8fH2M7lnvINXk9tQK6j2KEUgrQTE"}$k$),
    ('ed_priv', $k$-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEID2p6dLH/hSqGYFha6nCqduYvXrWwH9wm+CSceAO0Sse
-----END PRIVATE KEY-----$k$),
    ('ed_pub', $k$-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAcTzp3lZ0qm+CP7u/cdvp4cvoROYq8tOkuS0okUtCLbo=
-----END PUBLIC KEY-----$k$),
    ('ed_jwk', $k${"kty": "OKP", "crv": "Ed25519", "x": "cTzp3lZ0qm-CP7u_cdvp4cvoROYq8tOkuS0okUtCLbo"}$k$),
    ('ec384_pub', $k$-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEa8lSLvT+qOfZCnIBXh7QARwvBoI+/qQZ
dL1QYwRLleYlyDXEy0ACHEo1mTbF20HEPVPU2LQMWawJ0XguEB7ig9ALilCpu5ZB
W7/RUrA00tvDUHLGojYAqh6xm/aWbGXH
-----END PUBLIC KEY-----$k$);

CREATE FUNCTION pg_temp.k(n text) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT val FROM k WHERE name = n $$;
CREATE FUNCTION pg_temp.kj(n text) RETURNS jsonb
LANGUAGE sql STABLE AS $$ SELECT val::jsonb FROM k WHERE name = n $$;

CREATE FUNCTION pg_temp.b64u(b bytea) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.translate(pg_catalog.encode(b, 'base64'), E'+/=\n', '-_')
$$;
CREATE FUNCTION pg_temp.b64u(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT pg_temp.b64u(pg_catalog.convert_to(t, 'UTF8')) $$;

-- A token over the exact segments given, signed by crm_security.sign_message.
CREATE FUNCTION pg_temp.signed(hseg text, pseg text, alg text, key text) RETURNS text
LANGUAGE sql AS $$
    SELECT hseg || '.' || pseg || '.' || pg_temp.b64u(crm_security.sign_message(alg, key,
               pg_catalog.convert_to(hseg || '.' || pseg, 'UTF8')))
$$;
-- A token from header and payload JSON texts.
CREATE FUNCTION pg_temp.tok(header text, payload text, alg text DEFAULT 'HS256',
                            key text DEFAULT '0123456789abcdef0123456789abcdef') RETURNS text
LANGUAGE sql AS $$ SELECT pg_temp.signed(pg_temp.b64u(header), pg_temp.b64u(payload), alg, key) $$;
-- An HS256 token whose MAC is made by hmac() with any secret, whatever its length or form.
CREATE FUNCTION pg_temp.hs_tok(header text, payload text, secret text) RETURNS text
LANGUAGE sql AS $$
    SELECT pg_temp.b64u(header) || '.' || pg_temp.b64u(payload) || '.'
           || pg_temp.b64u(crm_security.hmac(pg_catalog.convert_to(pg_temp.b64u(header) || '.'
                                                                   || pg_temp.b64u(payload), 'UTF8'),
                                             pg_catalog.convert_to(secret, 'UTF8'), 'sha256'))
$$;
-- Seconds since the epoch, `d` seconds from now.
CREATE FUNCTION pg_temp.t(d numeric) RETURNS numeric
LANGUAGE sql STABLE AS $$ SELECT pg_catalog.floor(extract(epoch FROM pg_catalog.now())) + d $$;
-- Claims that pass: a subject and an expiry an hour away.
CREATE FUNCTION pg_temp.claims() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT pg_catalog.format('{"sub":"alice","exp":%s}', pg_temp.t(3600)) $$;


-- Sanity: good tokens pass, so the refusals below are refusals of the defect they carry.
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"HS256","typ":"JWT"}', pg_temp.claims()),
                                  pg_temp.k('secret')) ->> 'sub', 'alice', 'HS256 token accepted');
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                                  pg_temp.k('rsa_pub')) ->> 'sub', 'alice', 'RS256 token accepted with the PEM');
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                                  pg_temp.kj('rsa_jwk')) ->> 'sub', 'alice', 'RS256 token accepted with the JWK');
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"ES256"}', pg_temp.claims(), 'ES256', pg_temp.k('ec_priv')),
                                  pg_temp.k('ec_pub')) ->> 'sub', 'alice', 'ES256 token accepted');
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"EdDSA"}', pg_temp.claims(), 'EdDSA', pg_temp.k('ed_priv')),
                                  pg_temp.kj('ed_jwk')) ->> 'sub', 'alice', 'EdDSA token accepted');

-- Algorithm confusion: the public key's PEM text used as an HMAC secret.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('rsa_pub')), pg_temp.k('rsa_pub')),
                 '28000', NULL, 'HS256 token MACed with the RSA public PEM, verified with that PEM: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, algorithms => ARRAY[''HS256''])',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('rsa_pub')), pg_temp.k('rsa_pub')),
                 '28000', NULL, 'same, with HS256 explicitly allowed: still refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('ec_pub')), pg_temp.k('ec_pub')),
                 '28000', NULL, 'HS256 token MACed with the EC public PEM, verified with that PEM: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('ed_pub')), pg_temp.k('ed_pub')),
                 '28000', NULL, 'HS256 token MACed with the Ed25519 public PEM: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('rsa_jwk')), pg_temp.k('rsa_jwk')),
                 '28000', NULL, 'HS256 token MACed with the RSA JWK text, verified with that JWK: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.verify_signature('HS256', %L, '\x61'::bytea, crm_security.hmac('\x61'::bytea, pg_catalog.convert_to(%L, 'UTF8'), 'sha256'))$$,
                     pg_temp.k('rsa_pub'), pg_temp.k('rsa_pub')),
                 '28000', NULL, 'verify_signature: an RSA public PEM is never an HMAC secret');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')), pg_temp.k('ec_pub')),
                 '28000', NULL, 'RS256 token verified with an EC key: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.signed(pg_temp.b64u('{"alg":"PS256"}'), pg_temp.b64u(pg_temp.claims()), 'RS256', pg_temp.k('rsa_priv')),
                     pg_temp.k('rsa_pub')),
                 '28000', NULL, 'PKCS#1 v1.5 signature presented as PS256: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.signed(pg_temp.b64u('{"alg":"ES384"}'), pg_temp.b64u(pg_temp.claims()), 'ES256', pg_temp.k('ec_priv')),
                     pg_temp.k('ec_pub')),
                 '28000', NULL, 'P-256 signature presented as ES384: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok('{"alg":"ES384"}', pg_temp.claims(), 'ES256', pg_temp.k('ec_priv')),
                     pg_temp.k('ec384_pub')),
                 '28000', NULL, 'ES256 signature verified with a P-384 key: refused');

-- A JWK binds its key: alg, use, key_ops.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                     pg_temp.kj('rsa_jwk') || '{"alg":"PS256"}'),
                 '28000', NULL, 'RS256 token, JWK with alg PS256: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()),
                     pg_catalog.jsonb_build_object('kty', 'oct', 'alg', 'HS512', 'k', pg_temp.b64u(pg_temp.k('secret')))),
                 '28000', NULL, 'HS256 token, oct JWK with alg HS512: refused');
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()),
              pg_catalog.jsonb_build_object('kty', 'oct', 'alg', 'HS256', 'use', 'sig', 'k', pg_temp.b64u(pg_temp.k('secret')))) ->> 'sub',
          'alice', 'HS256 token, oct JWK with alg HS256 and use sig: accepted');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                     pg_temp.kj('rsa_jwk') || '{"use":"enc"}'),
                 '28000', NULL, 'JWK with use enc: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                     pg_temp.kj('rsa_jwk') || '{"key_ops":["sign"]}'),
                 '28000', NULL, 'JWK with key_ops [sign] used to verify: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                     pg_temp.kj('rsa_jwk') || '{"alg":"none"}'),
                 '28000', NULL, 'JWK with alg none: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('HS256', %L::jsonb, '\x61')$$,
                     pg_catalog.jsonb_build_object('kty', 'oct', 'key_ops', pg_catalog.jsonb_build_array('verify'),
                                                   'k', pg_temp.b64u(pg_temp.k('secret')))),
                 '28000', NULL, 'sign_message with a JWK whose key_ops lack sign: refused');

-- alg none, in every spelling, with and without a signature.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.b64u(pg_catalog.format('{"alg":"%s"}', a)) || '.' || pg_temp.b64u(pg_temp.claims()) || '.',
                     pg_temp.k('secret')),
                 '28000', NULL, 'alg ' || a || ' without a signature: refused')
FROM pg_catalog.unnest(ARRAY['none', 'None', 'NONE', 'nOnE']) AS a;
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.hs_tok(pg_catalog.format('{"alg":"%s"}', a), pg_temp.claims(), pg_temp.k('secret')),
                     pg_temp.k('secret')),
                 '28000', NULL, 'alg ' || a || ' with a valid HMAC as signature: refused')
FROM pg_catalog.unnest(ARRAY['none', 'None', 'NONE', 'nOnE']) AS a;
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.b64u('{"alg":"none"}') || '.' || pg_temp.b64u(pg_temp.claims()) || '.', pg_temp.kj('rsa_jwk')),
                 '28000', NULL, 'alg none with a JWK: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jws_verify(%L, %L::jsonb)',
                     pg_temp.b64u('{"alg":"none"}') || '.' || pg_temp.b64u('hello') || '.', pg_temp.kj('rsa_jwk')),
                 '28000', NULL, 'jws_verify: alg none refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.b64u('{"alg":"HS256"}') || '.' || pg_temp.b64u(pg_temp.claims()) || '.', pg_temp.k('secret')),
                 '28000', NULL, 'HS256 token with the signature stripped: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, algorithms => ARRAY[''none''])',
                     pg_temp.b64u('{"alg":"none"}') || '.' || pg_temp.b64u(pg_temp.claims()) || '.', pg_temp.k('secret')),
                 '22023', NULL, 'none in the algorithms argument: 22023');
SELECT throws_ok($$SELECT crm_security.verify_signature('none', '0123456789abcdef0123456789abcdef', '\x61', '\x')$$,
                 '22023', NULL, 'verify_signature with algorithm none: 22023');
SELECT throws_ok($$SELECT crm_security.sign_message('none', '0123456789abcdef0123456789abcdef', '\x61')$$,
                 '22023', NULL, 'sign_message with algorithm none: 22023');
SELECT throws_ok($$SELECT crm_security.jwt_sign('{"sub":"a"}', '0123456789abcdef0123456789abcdef', 'none')$$,
                 '22023', NULL, 'jwt_sign with algorithm none: 22023');

-- The algorithms allowlist.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, algorithms => ARRAY[''HS512''])',
                     pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()), pg_temp.k('secret')),
                 '28000', NULL, 'HS256 token, algorithms {HS512}: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, algorithms => ARRAY[''PS256'',''ES256''])',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')), pg_temp.k('rsa_pub')),
                 '28000', NULL, 'RS256 token, algorithms {PS256,ES256}: refused');
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')),
                                  pg_temp.k('rsa_pub'), algorithms => ARRAY['PS256', 'RS256']) ->> 'sub',
          'alice', 'RS256 token, algorithms {PS256,RS256}: accepted');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, algorithms => ARRAY[''XS256''])',
                     pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()), pg_temp.k('secret')),
                 '22023', NULL, 'unknown algorithm name in algorithms: 22023');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L, algorithms => ARRAY[''hs256''])',
                     pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()), pg_temp.k('secret')),
                 '22023', NULL, 'algorithm names are case-sensitive (hs256): 22023');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok('{"alg":"hs256"}', pg_temp.claims(), 'HS256'), pg_temp.k('secret')),
                 '28000', NULL, 'token alg hs256 (wrong case): refused');

-- crit is always refused.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok(h, pg_temp.claims()), pg_temp.k('secret')),
                 '28000', NULL, 'crit refused: ' || h)
FROM pg_catalog.unnest(ARRAY['{"alg":"HS256","crit":["x-custom"],"x-custom":1}',
                             '{"alg":"HS256","crit":["exp"]}',
                             '{"alg":"HS256","crit":[]}',
                             '{"alg":"HS256","crit":"b64","b64":false}']) AS h;
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jws_verify(%L, %L)',
                     pg_temp.tok('{"alg":"HS256","crit":["b64"],"b64":false}', 'payload'), pg_temp.k('secret')),
                 '28000', NULL, 'jws_verify: crit b64 refused');

-- Keys named by the token are never used: embedded jwk, jku, x5u; kid only selects.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok(pg_catalog.format('{"alg":"ES256","jwk":%s}', pg_temp.k('att_jwk')), pg_temp.claims(),
                                 'ES256', pg_temp.k('att_priv')), pg_temp.k('ec_pub')),
                 '28000', NULL, 'attacker key embedded as header jwk: refused');
SELECT is(crm_security.jwt_verify(pg_temp.tok(pg_catalog.format('{"alg":"ES256","jwk":%s}', pg_temp.k('att_jwk')),
                                              pg_temp.claims(), 'ES256', pg_temp.k('ec_priv')),
                                  pg_temp.k('ec_pub')) ->> 'sub',
          'alice', 'header jwk is ignored: a token signed by the real key still passes');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok('{"alg":"ES256","jku":"https://attacker.example/jwks.json","x5u":"https://attacker.example/c.pem"}',
                                 pg_temp.claims(), 'ES256', pg_temp.k('att_priv')), pg_temp.k('ec_pub')),
                 '28000', NULL, 'jku/x5u pointing elsewhere: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok(pg_catalog.format('{"alg":"HS256","kid":%s}', pg_catalog.to_json(kid)), pg_temp.claims()),
                     pg_catalog.jsonb_build_object('keys', pg_catalog.jsonb_build_array(
                         pg_catalog.jsonb_build_object('kty', 'oct', 'kid', 'k1', 'k', pg_temp.b64u(pg_temp.k('secret')))))),
                 '28000', NULL, 'kid injection refused: ' || pg_catalog.to_json(kid)::text)
FROM pg_catalog.unnest(ARRAY['../../../../dev/null', $$' OR '1'='1$$, 'k1'' --', 'k1' || pg_catalog.chr(10)]) AS kid;
SELECT is(crm_security.jwt_verify(pg_temp.tok('{"alg":"HS256","kid":"k2"}', pg_temp.claims()),
              pg_catalog.jsonb_build_object('keys', pg_catalog.jsonb_build_array(
                  pg_catalog.jsonb_build_object('kty', 'oct', 'kid', 'k1', 'k', pg_temp.b64u('another secret of 32 bytes......')),
                  pg_catalog.jsonb_build_object('kty', 'oct', 'kid', 'k2', 'k', pg_temp.b64u(pg_temp.k('secret')))))) ->> 'sub',
          'alice', 'JWKS: kid picks the matching key');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"HS256","kid":"k1"}', pg_temp.claims()),
                     pg_catalog.jsonb_build_object('keys', pg_catalog.jsonb_build_array(
                         pg_catalog.jsonb_build_object('kty', 'oct', 'kid', 'k1', 'k', pg_temp.b64u('another secret of 32 bytes......')),
                         pg_catalog.jsonb_build_object('kty', 'oct', 'kid', 'k2', 'k', pg_temp.b64u(pg_temp.k('secret')))))),
                 '28000', NULL, 'JWKS: the key named by kid does not verify: refused (no fallback to another key)');

-- ECDSA: psychic signatures (CVE-2022-21449) and out-of-range r, s.
CREATE TEMP TABLE es AS
SELECT si, crm_security.sign_message('ES256', pg_temp.k('ec_priv'), pg_catalog.convert_to(si, 'UTF8')) AS sig
FROM (SELECT pg_temp.b64u('{"alg":"ES256"}') || '.' || pg_temp.b64u(pg_temp.claims()) AS si) s;
SELECT is(pg_catalog.length(sig), 64, 'ES256 signatures are raw r||s, 64 bytes') FROM es;
SELECT ok(crm_security.verify_signature('ES256', pg_temp.k('ec_pub'), pg_catalog.convert_to(si, 'UTF8'), sig),
          'ES256: the genuine signature verifies') FROM es;
SELECT ok(NOT crm_security.verify_signature('ES256', pg_temp.k('ec_pub'), pg_catalog.convert_to(si, 'UTF8'), bad),
          'ES256 verify_signature false: ' || what)
FROM es, LATERAL (VALUES
    ('all-zero signature (psychic signature)', pg_catalog.decode(pg_catalog.repeat('00', 64), 'hex')),
    ('r = 0', pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex') || substring(sig FROM 33)),
    ('s = 0', substring(sig FOR 32) || pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex')),
    ('r = n', '\xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'::bytea || substring(sig FROM 33)),
    ('s = n', substring(sig FOR 32) || '\xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'::bytea),
    ('r = s = n', '\xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'::bytea),
    ('63 bytes', substring(sig FOR 63)),
    ('65 bytes', sig || '\x00'::bytea),
    ('empty', '\x'::bytea),
    ('r and s swapped', substring(sig FROM 33) || substring(sig FOR 32))
) AS v(what, bad);
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)', si || '.' || pg_temp.b64u(bad), pg_temp.k('ec_pub')),
                 '28000', NULL, 'ES256 token refused: ' || what)
FROM es, LATERAL (VALUES
    ('all-zero signature (psychic signature)', pg_catalog.decode(pg_catalog.repeat('00', 64), 'hex')),
    ('r = 0, s = 0 as a 2-byte signature', '\x0000'::bytea),
    ('DER-encoded signature', '\x3006020101020101'::bytea),
    ('r = n, s = n', '\xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'::bytea)
) AS v(what, bad);

-- Minimum key sizes.
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.hs_tok('{"alg":"HS256"}', pg_temp.claims(), pg_temp.k('secret31')), pg_temp.k('secret31')),
                 '28000', NULL, 'HMAC secret of 31 bytes: jwt_verify refuses');
SELECT throws_ok($$SELECT crm_security.jwt_sign('{"sub":"a"}', '0123456789abcdef0123456789abcde', 'HS256')$$,
                 '28000', NULL, 'HMAC secret of 31 bytes: jwt_sign refuses');
SELECT throws_ok($$SELECT crm_security.sign_message('HS256', '0123456789abcdef0123456789abcde', '\x61')$$,
                 '28000', NULL, 'HMAC secret of 31 bytes: sign_message refuses');
SELECT throws_ok($$SELECT crm_security.verify_signature('HS256', '0123456789abcdef0123456789abcde', '\x61',
                       crm_security.hmac('\x61'::bytea, '0123456789abcdef0123456789abcde'::bytea, 'sha256'))$$,
                 '28000', NULL, 'HMAC secret of 31 bytes: verify_signature refuses even a correct MAC');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.verify_signature('HS256', %L::jsonb, '\x61', '\x00')$$,
                     pg_catalog.jsonb_build_object('kty', 'oct', 'k', pg_temp.b64u(pg_temp.k('secret31')))),
                 '28000', NULL, 'oct JWK of 31 bytes: refused');
SELECT ok(crm_security.verify_signature('HS256', pg_temp.k('secret'), '\x61',
              crm_security.hmac('\x61'::bytea, pg_catalog.convert_to(pg_temp.k('secret'), 'UTF8'), 'sha256')),
          'HMAC secret of 32 bytes: verify_signature accepts');
SELECT is(crm_security.jwt_verify(crm_security.jwt_sign(pg_temp.claims()::jsonb, pg_temp.k('secret'), 'HS256'),
                                  pg_temp.k('secret')) ->> 'sub', 'alice', 'HMAC secret of 32 bytes: jwt_sign/jwt_verify round trip');
SELECT is(pg_catalog.length(crm_security.hmac('\x61'::bytea, '\x01'::bytea, 'sha256')), 32, 'hmac() takes a 1-byte key');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)', pg_temp.k('rsa1024_token'), pg_temp.k('rsa1024_pub')),
                 '28000', NULL, 'RSA 1024-bit key (PEM): jwt_verify refuses a correctly signed token');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)', pg_temp.k('rsa1024_token'), pg_temp.k('rsa1024_jwk')),
                 '28000', NULL, 'RSA 1024-bit key (JWK): jwt_verify refuses');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('RS256', %L, '\x61')$$, pg_temp.k('rsa1024_priv')),
                 '28000', NULL, 'RSA 1024-bit private key: sign_message refuses');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.jwt_sign('{"sub":"a"}', %L, 'RS256')$$, pg_temp.k('rsa1024_priv')),
                 '28000', NULL, 'RSA 1024-bit private key: jwt_sign refuses');

-- Wrong kinds of key.
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('RS256', %L, '\x61')$$, pg_temp.k('rsa_pub')),
                 '28000', NULL, 'sign_message with a public PEM: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('ES256', %L::jsonb, '\x61')$$, pg_temp.k('ec_jwk')),
                 '28000', NULL, 'sign_message with a public JWK: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.jwt_sign('{"sub":"a"}', %L, 'RS256')$$, pg_temp.k('rsa_pub')),
                 '28000', NULL, 'jwt_sign with a public PEM: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.jwt_sign('{"sub":"a"}', %L::jsonb, 'RS256')$$,
                     pg_catalog.jsonb_build_object('keys', pg_catalog.jsonb_build_array(pg_temp.kj('rsa_jwk')))),
                 '28000', NULL, 'jwt_sign with a JWKS: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.jwt_sign('{"sub":"a"}', %L, 'HS256')$$, pg_temp.k('rsa_priv')),
                 '28000', NULL, 'jwt_sign HS256 with an RSA private PEM as secret: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('ES256', %L, '\x61')$$, pg_temp.k('ed_priv')),
                 '28000', NULL, 'sign_message ES256 with an Ed25519 key: refused');
SELECT throws_ok(pg_catalog.format($$SELECT crm_security.sign_message('PS256', %L, '\x61')$$, pg_temp.k('ec_priv')),
                 '28000', NULL, 'sign_message PS256 with an EC key: refused');
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L::jsonb)',
                     pg_temp.tok('{"alg":"HS256"}', pg_temp.claims()), k),
                 '28000', NULL, 'key jsonb that is no JWK: ' || k)
FROM pg_catalog.unnest(ARRAY['[]', '"secret"', '42', '{}', '{"keys":[]}', '{"keys":{}}', '{"kty":"oct"}',
                             '{"kty":"oct","k":42}', '{"kty":"XYZ","k":"AAAA"}']) AS k;
SELECT throws_ok(pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L)',
                     pg_temp.tok('{"alg":"RS256"}', pg_temp.claims(), 'RS256', pg_temp.k('rsa_priv')), k),
                 '28000', NULL, 'broken PEM: ' || d)
FROM (VALUES ('truncated', pg_catalog.left(pg_temp.k('rsa_pub'), 200)),
             ('no end line', pg_catalog.replace(pg_temp.k('rsa_pub'), '-----END PUBLIC KEY-----', '')),
             ('garbage body', E'-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'),
             ('wrong label', pg_catalog.replace(pg_temp.k('rsa_pub'), 'PUBLIC KEY', 'CERTIFICATE'))) AS v(d, k);

SELECT * FROM finish();
ROLLBACK;
