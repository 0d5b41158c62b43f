#!/usr/bin/env bash
# Key hardening seen from outside the database (docs/security.md, findings 3 and 7):
#  - a JWKS of 256 private 4096-bit RSA JWKs, and a private JWK with a 256 kB "d", cost no
#    primality tests: verification returns (or statement_timeout cancels it) within seconds,
#    where the pairwise checks took over a minute against a 1 s statement_timeout;
#  - refused key administration and token calls whose statements carry a secret leave no
#    trace of it in the server log (no "Failing row contains", no STATEMENT line).
# Environment (from test/run.sh): PG_BIN, PGHOST, PGPORT, PGUSER, CRM_WORK (server log).
set -uo pipefail
: "${PG_BIN:?}"
DB=crm_hardening_keys
PSQL=("$PG_BIN/psql" -X -q -At -d "$DB")
LOG=${CRM_WORK:+$CRM_WORK/pg/server.log}
n=0
failed=0

check() {  # check DESCRIPTION CONDITION...
    local d=$1; shift
    n=$((n + 1))
    if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; failed=1; fi
}
lt() { [ "$1" -lt "$2" ]; }
ms() { date +%s%3N; }

echo "1..8"
"$PG_BIN/psql" -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" \
    -c "CREATE DATABASE $DB" >/dev/null
"${PSQL[@]}" -c "CREATE EXTENSION crm_security" -c "CREATE TABLE fx (name text PRIMARY KEY, v jsonb)" >/dev/null

# A private RSA JWK of 4096 bits, made for this test only.
JWK=$(cat <<'JWK'
{"kty": "RSA", "n": "-FG8a6gQpSFLzPJUHdtJPDajU6Yyj1GQfX95-X0m2JZtOUxaafz7JI9N-N9vOJV1cggJdXAEl1-T7W0v3tv1MXcmvjmDWnTcy880vzYD3NRBINmTz84Te2XiUhC0OQ3ppWm58iV1lLG-obM7J0Q-6IvHBpoinQFllufyzcpxqnIC0hYm_j6_Lnn0khcANKf6aASvTasL0XLuC8XMQM3Kvb_APg4yR3WjB-BomIFn5UEXj_YTjpA0WF4M9RiNiXeANgdBISwWpetZd51JLX3DkAo5BPZb7es2A_D1RsME6zWABRjZGfDnKfsVGuyxMgwbL5cyjgK9P-LNd9JM-fBuX0FASTUYuZzXPTgf9AdNy4pXIuU-ZSY6xikaO2GMXfp_N9n_riMbIBgM0BhiWCFyht6bK_tpvgveC4ZwkKTOdPihbZqAmBwv1ng1HKaqBVXdUtrD1mBfRXeHg9GvE7YsenKPhC9KnkfiRIskJv7g7hJxEswxs1FeSpwBXzvS2Gy90yJSPWfYdTtUzhlqXbx1eQ_7xeAwrFH6uCa3MuV84wjHq_7OOidQ4x1shR2FOfbBRawqULv8pNoxWTWBSU7ugbcXUO8S3ODfhyv7zsKMtySDvbej-PrkkdfZj5Vy_pu5B_GYZrMRuLPByhjt7X1pBiAVuDqDl52-taINEn_RaJc", "e": "AQAB", "d": "T1EgW8zfoDdN9IVVDAJe1q5nJhF4peG6QvPkfKYWsej-s2YpnSAzAh8KG1wXNR48WPOrPclNliJv6E9PkqJ0o9u40tshE1QvsKQbZ5YzzqY3tWv6NE7RV0GYdHkkb_L7Nhxayjdf4uKRjynmU6kPZQ08weWa98aZ8gVdv5ESFIz9TKjJxL07KPfIgJ97L9aV_AK_EhJ4IGtTEQyZrPtu7oQgvlGfisbPD_WEw23WR1qu0Yua_JcgOTe1cNZqY0X5_If9rEBebZoKxlPFq5O30zsIsoaUn57ZbpHZbsRdPlok7bvdoNUbqYOrXqHLCb7nMiDcA5Npas4hrkvMzasYPZDQoZKxIwvRtKNHgcGQ5uC4Lp0ddlzDJ7jEdferOZIogl5TlwH3HeUuoNUhMFhe6A6sV-lVmiYYCiSzPj20n2SBl2vh20aBbt8lrFSDGU2XDbxgH5kq0MpO8urNas9nET8_cDWmGc2ndQ_hZmtHFJSlj3d-j2CC8mk9Ci5peyYt6YSX30UbH2iadXDdCTGpAXEaqx3omlw61p4dP74YDGpnqlimbGIvUfIZqEKB9KceyznPxKlP3zgOu08NsUpK-pH1Na4YSca_3-8KGcgpjSGvYBbikPEIv_9WftnSXcGteqMK5kmgv1Ue6Ty8ugzFKfjthQ3ibqY9Zahn8hxGfJU", "p": "_oRz9RfGIZyR5YW6iwYqwBvd1vMAaJTosS3dGFkdMsFT9kDDbzwxmSqvLduVEtXhvgK4ylitRFGF8zVIO60xqoXtWq3EW5WWkfkmC0WzZSzb6LmzGDFiMWzTtoY3w6Hx7p5uJM5WKk0OT23UbWFnylmbN-tSiIWD9FMdSUO0yjGO2eXoDTK8-T5v8nbYIXNY3-yPjJZMa8L_dFwc_C9ReHGcL2atCjuOSjf38eIfTV6KIJU8mYviabap8U_JUGIdKOFCU51in509shIN7IC--Kukrucz5f_XjRzK81gNde05HxBk7ppaVlBA_W3OkH4xr5fMQQQYNHD1yjaDBrcSow", "q": "-cQKSLuYrIjD89SZp693iIRldBbmYs2V8_lfBjM-dtg4Jp2U_-w22Jcgb59ncoibvY1rDpxYGQkwgYAoj3IYw6YKVe43-OvsgFcIbcWOhXcmA3MYY2cKnqpK7LozrQHlAdIdvPkWYFOfvh_3icHO_NAmsD-2-A9NA9WeR0_HaZ7Hgh80nFTqRdfmhaw-SEss9bTZEmTscHdjeNM9P5z3ciQrbpz5XXxlwE9Vydscp3Kv_lQ6PvCx6AbCccP1dLv3UBVZLu5lNtA3hlmK5vGFKjrTr2z1RQHFjD_R7bjLqiM-K0QTZT_RZP33GeYdbWtM_mffbCjBbCcNI-PojdFlfQ", "dp": "rx4rOqOU62Ny7t1IMIeZunxx8odX7J0oTWAlE6-c62MhhfmhflOIPL6lsYO32jHXFImC45aIAM2mwGQUwxqzZYSofw-4XttZsi4fAvp-KErpNAMxOqAf06nxMVC_5Zbzgx724dQmbQx_oB8NXgT7CLsGlT8QlmZnGCBnshUnu0bF5x7Mvuf-Je_Tzpv-sWVP7SIy0qRHCI4ufb0zJEDaaWih8etPfA7mJCLGMmNG7lDx8OE9xNf-fIX1_9bJyMj5DzuOC0Hqra_e1zqc4fDjdO2EbeMeTk3t3WXGLhCTkmQaPUlmaNVC-shVLwnyanCpdwuWudU7Yjmmo-9Fz8T-yQ", "dq": "tFAcIJAWU5DU7mXwnAdoI015tMqHfpLvC9hfCqnaEZBdUTt4gx40Jj9McmlBFIWc8cZzoHOsgj6JHyS3o396c1yen5TAIduovKqYci8qih4PenQQCkssdol4V9jBT8hLXPok7_VfeyFD9M09Nt2NIiTfmWQWIpVhQ0Bn6RGmZBD19XGz2JzRGKUaTiygNi7XgXcTM11a-IKodGUEFbWrSmLkXBHFUQFqr-BWjci6sgRxHAoQlrnLpjejDuCqhqDglZcj8Ga4-U5ul3ZzefCo82jOxBnEJBJ4XJ0CYD2GAwk4a6HU4sak0-UpDDB91C2fwxaYTIxLv1md-egiTqf6PQ", "qi": "O3-4XkKbM17Z3ZWaUsGTk4OsmnWcH7nVD_r2kz5UNqTJ0p6FH-3t-wjsfyVFf9R8SoPJJIuvUxGIRPlxSRNuT9R1u9j1V4Xuor7UsVFtluriRANbwYfFs7JWwyfZHfyM3Mv1qLf0tny4o7oLIPoVXpngPxnWUavdvYNXnFiItyUbr2ujKsi0bUm9MW1FASr4_NdPZ-BeZuzf3AV79ptfY7dXiNH-yxjbUlGj6C0Q9kDBTlWpI9K3wpBEi9WRBlKjEMUeKBsWzL_OrchcIKnLYToN9iarbR0veHaAycLjmqsNwm3OclgcHcri85kBbZuQTeiHDRrVMZhMcVmYaKIaCg"}
JWK
)
"${PSQL[@]}" -v jwk="$JWK" >/dev/null <<'SQL'
INSERT INTO fx VALUES ('rsa', :'jwk');
INSERT INTO fx SELECT 'jwks', jsonb_build_object('keys', jsonb_agg(v || jsonb_build_object('kid', 'k' || g)))
  FROM fx, generate_series(1, 256) g WHERE name = 'rsa';
INSERT INTO fx SELECT 'big_d', v || jsonb_build_object('d', repeat('A', 262144)) FROM fx WHERE name = 'rsa';
SQL

# Finding 3: bounded time, whatever the answer (a fresh session each: no cached key).
t0=$(ms)
out=$("${PSQL[@]}" -c "SET statement_timeout = '1s'" \
      -c "SELECT crm_security.verify_signature('RS256', (SELECT v FROM fx WHERE name = 'jwks'), 'x', 'y')" 2>&1)
t1=$(ms)
check "a JWKS of 256 private 4096-bit RSA JWKs: verify_signature returns in under 10 s ($((t1 - t0)) ms)" lt $((t1 - t0)) 10000
check "... and answers false (its public parts were parsed, no timeout)" [ "$out" = "f" ]
t0=$(ms)
out=$("${PSQL[@]}" -c "SET statement_timeout = '1s'" \
      -c "SELECT crm_security.jwt_sign('{}', (SELECT v FROM fx WHERE name = 'jwks'), 'RS256')" 2>&1)
t1=$(ms)
check "signing with it (private members read and checked) ends in under 10 s ($((t1 - t0)) ms)" lt $((t1 - t0)) 10000
t0=$(ms)
out=$("${PSQL[@]}" -v VERBOSITY=verbose -c "SET statement_timeout = '1s'" \
      -c "SELECT crm_security.jwt_sign('{}', (SELECT v FROM fx WHERE name = 'big_d'), 'RS256')" 2>&1)
t1=$(ms)
check "a private JWK with a 256 kB d is refused for its size, at once ($((t1 - t0)) ms)" \
    grep -q 'The JWK member "d" is longer than a key of this type can have' <<<"$out"

# Finding 7: refusals whose statements carry a secret.
CANARY=SECRET-CANARY-HK7LOG
"${PSQL[@]}" -c "SELECT crm_security.add_jwt_key('hk7log_ok', 'HS256', repeat('s', 32))" >/dev/null
TOKEN_BAD_KID=$("${PSQL[@]}" -c "SELECT crm_security.jwt_sign('{\"sub\": \"$CANARY-token\"}', repeat('t', 32), 'HS256', '{\"kid\": \"hk7log_none\"}')")
for sql in \
    "SELECT crm_security.add_jwt_key('hk7log_w', 'HS256', '$CANARY-0123456789abcdef', NULL, now(), now() - interval '1 day')" \
    "SELECT crm_security.add_jwt_key(repeat('k', 257), 'HS256', '$CANARY-0123456789abcdef')" \
    "SELECT crm_security.add_jwt_key('hk7log_ok', 'HS256', '$CANARY-0123456789abcdef')" \
    "INSERT INTO crm_security.jwt_keys (kid, algorithm, key, enabled) VALUES ('hk7log_n', 'HS256', '$CANARY-0123456789abcdef', NULL)" \
    "SELECT crm_security.add_jwt_key(repeat('j', 257), '{\"kty\": \"oct\", \"k\": \"$CANARY-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}')" \
    "SELECT crm_security.import_jwks('{\"keys\": [{\"kty\": \"oct\", \"kid\": \"hk7log_i\", \"k\": \"$CANARY-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}', '')" \
    "SELECT crm_security.jwt_verify('e30.e30.AAAA', '$CANARY-0123456789abcdef')" \
    "SELECT crm_security.sign_message('HS999', '$CANARY-0123456789abcdef', 'x')" \
    "SELECT crm_security.hmac('x', '$CANARY-0123456789abcdef', 'md5')" \
    "SELECT crm_security.pem_to_jwk('-----BEGIN $CANARY-----')" \
    "SELECT crm_security.set_claim_context('$TOKEN_BAD_KID')" \
    "SELECT crm_security.set_claim_context('$CANARY' || repeat('x', 70000))" \
    "SELECT crm_security.hmac('x', 'md5', '$CANARY-0123456789abcdef')" \
    "SELECT crm_security.sign_message('$CANARY-0123456789abcdef', 'HS256', 'x')" \
    "SELECT crm_security.jwt_sign('{}', 'k', '$CANARY-0123456789abcdef')"; do
    "${PSQL[@]}" -c "$sql" >/dev/null 2>&1
done
if [ -n "$LOG" ] && [ -r "$LOG" ]; then
    check "the server log holds the refusals (the check below is meaningful)" \
        grep -q 'the validity window of key "hk7log_w" ends before it starts' "$LOG"
    check "no secret in the server log" bash -c "! grep -q -e '$CANARY' -e '$TOKEN_BAD_KID' '$LOG'"
    check "no row image in the server log" bash -c "! grep -q 'Failing row contains.*hk7log' '$LOG'"
    if [ "$failed" -ne 0 ]; then grep -e "$CANARY" -e 'Failing row' "$LOG" | head -5 | sed 's/^/# /'; fi
else
    for d in "the server log holds the refusals" "no secret in the server log" "no row image in the server log"; do
        n=$((n + 1)); echo "ok $n # SKIP $d: no server log (CRM_WORK not set)"
    done
fi
check "none of the refused keys was stored" \
    [ "$("${PSQL[@]}" -c "SELECT count(*) FROM crm_security.jwt_keys WHERE kid <> 'hk7log_ok'")" = 0 ]

"$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE $DB" >/dev/null 2>&1
exit $failed
