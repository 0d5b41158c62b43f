#!/usr/bin/env bash
# Nonces, rate limits and lockouts with the library preloaded (docs/requests.md,
# docs/rate-limits.md): a cluster started here with shared_preload_libraries =
# 'crm_security' and small shared tables.  Asserts:
#  - a nonce accepted in one session is refused in another, also after a rollback; a full
#    nonce store refuses new nonces (53400) and still refuses the replay of an old one;
#  - rate_limit: the burst, retry_after (refused just before it, allowed at it), a steady
#    rate, 8 concurrent sessions on one key allow exactly the limit, a rollback keeps the
#    count, 1,000,000 distinct keys in a table of 1,000 evict without an error;
#  - lockout across sessions and rollbacks, clear_failed_attempts, a table full of locked
#    subjects refuses (53400) instead of unlocking one;
#  - auth_failures counts refused API keys and tokens from several sessions by reason and
#    key id, holds no key, and each refusal is one structured log line;
#  - no secret in the server log.
# Environment (from test/run.sh): PG_BIN, CRM_ROOT, CRM_WORK.
set -u
: "${PG_BIN:?}" "${CRM_ROOT:?}"
source "$CRM_ROOT/test/lib.sh"
PSQL=("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=sqlstate -v ON_ERROR_STOP=0)
DB=crm_requests_pre
source "$(dirname "$0")/include/tap.sh"
errcode() { sed -n 's/.*ERROR:  *\([0-9A-Z]\{5\}\).*/\1/p' | head -1; }
WORK=${CRM_WORK:-$(mktemp -d)}
PRE_DIR=$WORK/requests_preload
SECRET=whsec_preload_7f3a9c1e5b2d4f6a8c0e

echo "1..30"
rm -rf "$PRE_DIR"
start_cluster "$PRE_DIR" "shared_preload_libraries = 'crm_security'
crm_security.request_nonce_slots = 100
crm_security.rate_limit_slots = 1000
crm_security.lockout_slots = 100
log_min_messages = info
log_min_error_statement = error" >/dev/null
trap 'stop_cluster "$PRE_DIR"' EXIT
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" >/dev/null
q -c "CREATE EXTENSION crm_security" >/dev/null

# signed NONCE [TS]: a verify_request() call of a signed POST with that nonce
signed() {
    local ts=${2:-$(date +%s)}
    echo "SELECT crm_security.verify_request('$SECRET', crm_security.sign_request('$SECRET', 'POST', '/hooks/x?a=1', 'payload', $ts, '$1'), 'POST', '/hooks/x?a=1', 'payload', $ts, nonce => '$1')"
}
TS=$(date +%s)
check "a signed request with a nonce verifies" t "$(q -c "$(signed n-1 "$TS")")"
check "... its replay from a second session is refused" f "$(q -c "$(signed n-1 "$TS")")"
q -c "BEGIN" -c "$(signed n-2 "$TS")" -c "ROLLBACK" >/dev/null
check "a nonce seen in a transaction that rolled back is still refused" f "$(q -c "$(signed n-2 "$TS")")"
check "a wrong signature does not take a slot: the nonce is fresh afterwards" "f|t" \
    "$(q -c "SELECT crm_security.verify_request('$SECRET', 'v1=$(printf '0%.0s' $(seq 64))', 'POST', '/hooks/x?a=1', 'payload', $TS, nonce => 'n-3')" -c "$(signed n-3 "$TS")" | tr '\n' '|' | sed 's/|$//')"
for i in $(seq 4 140); do signed "n-$i" "$TS"; echo ";"; done >"$WORK/nonces.sql"
out=$(q -f "$WORK/nonces.sql")
check "a store of 100 nonces: 97 more are accepted" 97 "$(grep -c '^t$' <<<"$out")"
check "... then new nonces are refused with 53400 (never an old one forgotten)" 53400 "$(errcode <<<"$out")"
check "... and the first nonce is still refused" f "$(q -c "$(signed n-1 "$TS")")"

# Rate limits.
out=$(for i in 1 2 3 4 5 6 7; do echo "SELECT allowed FROM crm_security.rate_limit('burst', 5, '1 minute');"; done | q)
check "a burst of 5 in a fresh key: 5 of 7 allowed" 5 "$(grep -c '^t$' <<<"$out")"
check "refused, retry_after is about 12 s (60 s / 5 since the burst began)" t \
    "$(q -c "SELECT retry_after > '11 seconds' AND retry_after <= '12 seconds' FROM crm_security.rate_limit('burst', 5, '1 minute')")"
out=$(q <<'SQL'
SELECT allowed FROM crm_security.rate_limit('exact', 1, '2 seconds');
SELECT pg_sleep(extract(epoch FROM retry_after) - 0.25) FROM crm_security.rate_limit('exact', 1, '2 seconds');
SELECT allowed FROM crm_security.rate_limit('exact', 1, '2 seconds');
SELECT pg_sleep(extract(epoch FROM retry_after)) FROM crm_security.rate_limit('exact', 1, '2 seconds');
SELECT allowed FROM crm_security.rate_limit('exact', 1, '2 seconds');
SQL
)
check "retry_after is exact: refused 0.25 s before it, allowed at it" "t|f|t" "$(grep -v '^$' <<<"$out" | tr '\n' '|' | sed 's/|$//')"
check "a steady rate of 20/s without burst: allowed = 1 + elapsed / 50 ms (within one)" t "$(q <<'SQL'
DO $$
DECLARE n int := 0; t0 timestamptz; t1 timestamptz; a boolean;
BEGIN
  t0 := clock_timestamp();
  LOOP
    SELECT allowed INTO a FROM crm_security.rate_limit('steady', 20, '1 second', 1);
    IF a THEN n := n + 1; END IF;
    t1 := clock_timestamp();
    EXIT WHEN t1 - t0 > '0.6 seconds';
  END LOOP;
  CREATE TEMP TABLE steady AS SELECT n, extract(epoch FROM t1 - t0) AS secs;
END $$;
SELECT n BETWEEN floor(secs / 0.05) AND floor(secs / 0.05) + 2 FROM steady;
SQL
)"
for i in $(seq 1 50); do echo "SELECT allowed FROM crm_security.rate_limit('shared', 100, '1 hour');"; done >"$WORK/rl.sql"
cnt=$(for i in $(seq 1 8); do "${PSQL[@]}" -d "$DB" -f "$WORK/rl.sql" 2>/dev/null & done | grep -c '^t$'; wait)
check "8 concurrent sessions x 50 calls on one key with a limit of 100: exactly 100 allowed" 100 "$cnt"
q -c "BEGIN" -c "SELECT * FROM crm_security.rate_limit('rb', 3, '1 hour')" -c "SELECT * FROM crm_security.rate_limit('rb', 3, '1 hour')" \
  -c "SELECT * FROM crm_security.rate_limit('rb', 3, '1 hour')" -c "ROLLBACK" >/dev/null
check "3 requests in a transaction that rolled back stay counted: the 4th is refused" f \
    "$(q -c "SELECT allowed FROM crm_security.rate_limit('rb', 3, '1 hour')")"
check "1,000,000 distinct keys in a table of 1,000: every new key allowed, no error" 1000000 \
    "$(q -c "SELECT count(*) FILTER (WHERE allowed) FROM generate_series(1, 1000000) g, crm_security.rate_limit('k' || g, 1, '1 hour')")"
check "... the server still answers and a new key is allowed" t "$(q -c "SELECT allowed FROM crm_security.rate_limit('after', 1, '1 hour')")"

# Lockout.
check "two failed attempts of 3 in two sessions: not locked" "f|f" \
    "$(q -c "SELECT crm_security.register_failed_attempt('alice', 3)" | tr '\n' '|')$(q -c "SELECT crm_security.register_failed_attempt('alice', 3)")"
out=$(q -c "BEGIN" -c "SELECT crm_security.register_failed_attempt('alice', 3)" -c "ROLLBACK")
check "the third, in a transaction that rolls back, locks" t "$(grep -v '^$' <<<"$out")"
check "... another session sees the lockout" t "$(q -c "SELECT crm_security.is_locked_out('alice')")"
check "clear_failed_attempts ends it" "|f" \
    "$(q -c "SELECT crm_security.clear_failed_attempts('alice')" -c "SELECT crm_security.is_locked_out('alice')" | tr '\n' '|' | sed 's/|$//')"
q -c "CREATE ROLE regress_rl_plain" >/dev/null 2>&1
out=$(q -c "SET ROLE regress_rl_plain" -c "SELECT crm_security.register_failed_attempt('carol', 1)" \
        -c "SELECT crm_security.clear_failed_attempts('alice')" 2>&1)
check "a role without crm_security_lockout_admin can neither lock out nor clear (42501 twice)" 2 "$(grep -c '42501' <<<"$out")"
check "... carol is not locked out" f "$(q -c "SELECT crm_security.is_locked_out('carol')")"
q -c "DROP ROLE regress_rl_plain" >/dev/null 2>&1
out=$(q -c "SELECT count(*) FILTER (WHERE crm_security.register_failed_attempt('user' || g, 1)) FROM generate_series(1, 100) g" \
        -c "SELECT crm_security.register_failed_attempt('user101', 1)")
check "a table of 100 full of locked subjects refuses a new one (53400) rather than unlock" "100 53400" \
    "$(head -1 <<<"$out") $(errcode <<<"$out")"

# Refused API keys and tokens, from several sessions.
read -r K_ID K <<<"$(q -F ' ' -c "SELECT id, api_key FROM crm_security.create_api_key('af', 'acme', '{read}')")"
q -c "SELECT crm_security.revoke_api_key('$K_ID')" >/dev/null
for i in 1 2 3; do q -c "SELECT * FROM crm_security.verify_api_key('$K')" >/dev/null; done
q -c "SELECT * FROM crm_security.verify_api_key('crm_live_notakey')" >/dev/null
TOKEN=$(q -c "SELECT crm_security.jwt_sign('{\"sub\": \"u1\", \"exp\": 4102444800}', 'right-secret-0123456789abcdef0123456789', 'HS256')")
for i in 1 2; do q -c "SELECT crm_security.jwt_verify('$TOKEN', 'wrong-secret-0123456789abcdef0123456789')" >/dev/null; done
q -c "SELECT crm_security.jwt_verify(repeat('a', 70000), 'right-secret-0123456789abcdef0123456789')" >/dev/null
ES_TOKEN=$(q -c "SELECT crm_security.jwt_sign('{\"sub\": \"u1\", \"exp\": 4102444800}', crm_security.generate_jwk('ES256'), 'ES256')")
q -c "SELECT crm_security.jwt_verify('$ES_TOKEN', '{\"keys\": [{\"kty\": \"oct\", \"k\": \"cmlnaHQtc2VjcmV0LTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5\"}]}'::jsonb)" >/dev/null
check "auth_failures: 3 refusals of the revoked key, by its id" 3 \
    "$(q -c "SELECT failures FROM crm_security.auth_failures WHERE kind = 'api_key' AND reason = 'revoked' AND key_id = '$K_ID'")"
check "auth_failures: a malformed key, without a key id" 1 \
    "$(q -c "SELECT failures FROM crm_security.auth_failures WHERE kind = 'api_key' AND reason = 'malformed' AND key_id IS NULL")"
check "auth_failures: 2 tokens with a wrong signature from 2 sessions" 2 \
    "$(q -c "SELECT failures FROM crm_security.auth_failures WHERE kind = 'token' AND reason = 'bad_signature'")"
check "auth_failures: a token over crm_security.max_token_length, as malformed" 1 \
    "$(q -c "SELECT failures FROM crm_security.auth_failures WHERE kind = 'token' AND reason = 'malformed'")"
check "auth_failures: a token of an algorithm no key of the store can verify" 1 \
    "$(q -c "SELECT sum(failures) FROM crm_security.auth_failures WHERE kind = 'token' AND reason IN ('algorithm', 'unknown_key')")"
check "auth_failures holds neither the key nor the token" 0 \
    "$(q -c "SELECT count(*) FROM crm_security.auth_failures a WHERE a::text LIKE '%' || '${K: -30}' || '%' OR a::text LIKE '%' || '${TOKEN: -20}' || '%'")"
check "each refusal is one structured log line" 3 \
    "$(grep -c "auth_failure kind=api_key reason=revoked key_id=$K_ID client=" "$PRE_DIR/server.log")"
check "no secret, key or token in the server log" 0 \
    "$(grep -cF -e "$SECRET" -e "${K: -30}" -e "${TOKEN: -20}" -e right-secret -e wrong-secret "$PRE_DIR/server.log")"
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
exit $failed
