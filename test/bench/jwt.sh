#!/usr/bin/env bash
# JWT verification and signing, against baselines measured in the same run:
# HS256 against pgcrypto's hmac() on the same signing input, the asymmetric algorithms
# against the raw verify rate of `openssl speed`.
set -uo pipefail
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At)
KEYS=$(mktemp -d)
trap 'rm -rf "$KEYS"' EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/rsa.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$KEYS/ec.pem" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$KEYS/ed.pem" 2>/dev/null
for k in rsa ec ed; do openssl pkey -in "$KEYS/$k.pem" -pubout -out "$KEYS/$k.pub" 2>/dev/null; done

# Raw OpenSSL verify rates (operations per second, machine-readable output); the best of
# two runs, as the SQL side takes the best of five.
speed=$(for i in 1 2 3; do openssl speed -seconds 2 -mr rsa2048 ecdsap256 ed25519 2>/dev/null; done)
ossl_rs=$(echo "$speed" | awk -F: '/^\+F2:/ {if ($5 > m) m = $5} END {print 1e6/m}')
ossl_es=$(echo "$speed" | awk -F: '/^\+F4:/ {if ($5 > m) m = $5} END {print 1e6/m}')
ossl_ed=$(echo "$speed" | awk -F: '/^\+F6:/ {if ($6 > m) m = $6} END {print 1e6/m}')

"${PSQL[@]}" \
  -v rsa="$(cat "$KEYS/rsa.pem")" -v rsapub="$(cat "$KEYS/rsa.pub")" \
  -v ec="$(cat "$KEYS/ec.pem")" -v ecpub="$(cat "$KEYS/ec.pub")" \
  -v ed="$(cat "$KEYS/ed.pem")" -v edpub="$(cat "$KEYS/ed.pub")" \
  -v ossl_rs="$ossl_rs" -v ossl_es="$ossl_es" -v ossl_ed="$ossl_ed" <<'SQL'
\set secret 'bench-secret-0123456789abcdef0123456789'
CREATE TEMP TABLE k(name text, priv text, pub text);
INSERT INTO k VALUES ('HS256', :'secret', :'secret'), ('HS384', :'secret', :'secret'),
  ('HS512', :'secret', :'secret'),
  ('RS256', :'rsa', :'rsapub'), ('PS256', :'rsa', :'rsapub'),
  ('ES256', :'ec', :'ecpub'), ('EdDSA', :'ed', :'edpub');

-- Best of 7 runs of a statement, in microseconds per row (the least disturbed run).
CREATE FUNCTION pg_temp.per_row(q text, n int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE t timestamptz; r numeric[] := '{}';
BEGIN
  FOR i IN 1..7 LOOP
    t := clock_timestamp();
    EXECUTE q;
    r := r || (extract(epoch FROM clock_timestamp() - t) * 1e6 / n)::numeric;
  END LOOP;
  RETURN (SELECT min(x) FROM unnest(r) x);
END $$;

-- HS256: 20,000 distinct tokens with one key.
CREATE TEMP TABLE hs AS
  SELECT tok, split_part(tok, '.', 1) || '.' || split_part(tok, '.', 2) AS si
    FROM (SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'user-' || g, 'tenant_id', 't1',
                 'exp', 4102444800, 'role', 'client_user'), :'secret', 'HS256') AS tok
            FROM generate_series(1, 20000) g) s;
SELECT pg_temp.per_row(format('SELECT count(crm_security.jwt_verify(tok, %L)) FROM hs', :'secret'), 20000) AS ours \gset
SELECT pg_temp.per_row(format('SELECT count(public.hmac(si, %L, ''sha256'')) FROM hs', :'secret'), 20000) AS base \gset
SELECT pg_temp.per_row(format('SELECT count(crm_security.hmac(si, %L)) FROM hs', :'secret'), 20000) AS ourhmac \gset
\echo '| measure | per call | baseline | ratio | target |'
\echo '| --- | --- | --- | --- | --- |'
SELECT format('| jwt_verify HS256 | %s µs | pgcrypto hmac() on the signing input: %s µs | %sx | ≤ 2x |',
              round(:ours, 2), round(:base, 2), round(:ours / :base, 2));
SELECT format('| crm_security.hmac() | %s µs | pgcrypto hmac(): %s µs | %sx | |',
              round(:ourhmac, 2), round(:base, 2), round(:ourhmac / :base, 2));

-- Asymmetric: 2,000 tokens each.
CREATE TEMP TABLE asym AS
  SELECT k.name, crm_security.jwt_sign(jsonb_build_object('sub', 'user-' || g, 'exp', 4102444800),
                                       k.priv, k.name) AS tok
    FROM k CROSS JOIN generate_series(1, 2000) g WHERE k.name IN ('RS256', 'ES256', 'EdDSA');
SELECT pg_temp.per_row(format('SELECT count(crm_security.jwt_verify(tok, %L)) FROM asym WHERE name = ''RS256''', :'rsapub'), 2000) AS rs \gset
SELECT pg_temp.per_row(format('SELECT count(crm_security.jwt_verify(tok, %L)) FROM asym WHERE name = ''ES256''', :'ecpub'), 2000) AS es \gset
SELECT pg_temp.per_row(format('SELECT count(crm_security.jwt_verify(tok, %L)) FROM asym WHERE name = ''EdDSA''', :'edpub'), 2000) AS ed \gset
SELECT format('| jwt_verify RS256 (2048) | %s µs | openssl speed rsa2048 verify: %s µs | %sx | ≤ 1.3x |',
              round(:rs, 1), round(:ossl_rs::numeric, 1), round(:rs / :ossl_rs::numeric, 2));
SELECT format('| jwt_verify ES256 | %s µs | openssl speed ecdsap256 verify: %s µs | %sx | ≤ 1.3x |',
              round(:es, 1), round(:ossl_es::numeric, 1), round(:es / :ossl_es::numeric, 2));
SELECT format('| jwt_verify EdDSA | %s µs | openssl speed ed25519 verify: %s µs | %sx | ≤ 1.3x |',
              round(:ed, 1), round(:ossl_ed::numeric, 1), round(:ed / :ossl_ed::numeric, 2));

-- Signing, 500 tokens per algorithm.
\echo
\echo '| jwt_sign | per call |'
\echo '| --- | --- |'
SELECT format('| %s | %s µs |', name,
       round(pg_temp.per_row(format('SELECT count(crm_security.jwt_sign(jsonb_build_object(''sub'', g), %L, %L)) FROM generate_series(1, 500) g',
                                    priv, name), 500), 1))
  FROM k ORDER BY name;
SQL
