#!/usr/bin/env bash
# Key rotation through import_jwks(jwks, issuer, disable_missing), seen from a second,
# already running session: the key the identity provider dropped is refused there from its
# next transaction (a cached token included), the new key verifies.  Key changes write one
# LOG line each that names the key and never its material, not even with
# log_min_error_statement = log (the statement carries the key).
# Environment (from test/run.sh): PG_BIN, PGHOST, PGPORT, PGUSER, CRM_WORK (server log).
set -u
PSQL=("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=sqlstate)
DB=crm_keystore_rotation
LOG=${CRM_WORK:+$CRM_WORK/pg/server.log}
IA=https://idp-rot.example
CANARY=SECRET-CANARY-KROT
SA=$CANARY-a-0123456789-0123456789
SB=$CANARY-b-0123456789-0123456789
source "$(dirname "$0")/include/tap.sh"
source "$(dirname "$0")/include/session.sh"
errcode() { sed -n 's/.*ERROR:  *\([0-9A-Z]\{5\}\).*/\1/p' | head -1; }
a_err() { local out; out=$(a "$1"); errcode <<<"$out"; }
b64url() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }
KA=$(b64url "$SA")
KB=$(b64url "$SB")
jwks() {  # jwks KID SECRET_B64URL
    printf '{"keys": [{"kty": "oct", "alg": "HS256", "use": "sig", "kid": "%s", "k": "%s"}]}' "$1" "$2"
}

echo "1..12"
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
q -c "CREATE EXTENSION crm_security" >/dev/null
# The administrator's session logs its LOG lines and, on purpose, the statement of each.
ADMIN=(-c "SET log_min_messages = log" -c "SET log_min_error_statement = log")
check "key A imported for the issuer" "1" \
    "$(q "${ADMIN[@]}" -c "SELECT crm_security.import_jwks('$(jwks k-rot-a "$KA")', '$IA')")"
sign() {  # sign KID SECRET
    q -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'u-$1', 'iss', '$IA', 'exp', extract(epoch FROM now())::bigint + 600), '$2', 'HS256', '{\"kid\": \"$1\"}')"
}
TA=$(sign k-rot-a "$SA")
TB=$(sign k-rot-b "$SB")

PGOPTIONS="-c client_min_messages=error" session_a_start

check "session A: a token of key A verifies (and is cached)" "u-k-rot-a" \
    "$(a "BEGIN; SELECT crm_security.set_claim_context('$TA')->>'sub'; COMMIT;")"
a "BEGIN;" >/dev/null
check "session A: a transaction with key A's context is open" "u-k-rot-a" \
    "$(a "SELECT crm_security.set_claim_context('$TA')->>'sub';")"
check "session B: the provider now publishes {B}: B imported, A disabled" "1|1|{k-rot-a}" \
    "$(q "${ADMIN[@]}" -c "SELECT imported, disabled, disabled_kids FROM crm_security.import_jwks('$(jwks k-rot-b "$KB")', '$IA', true)")"
check "session A keeps the context of its running transaction" "u-k-rot-a" "$(a "SELECT crm_security.user_id();")"
a "COMMIT;" >/dev/null
check "session A: key A's token is refused at its next transaction (28000)" "28000" \
    "$(a_err "BEGIN; SELECT crm_security.set_claim_context('$TA'); ROLLBACK;")"
a "ROLLBACK;" >/dev/null
check "... as disabled_key (28P13) with specific error codes" "28P13" \
    "$(a_err "BEGIN; SET LOCAL crm_security.error_codes = 'specific'; SELECT crm_security.set_claim_context('$TA'); ROLLBACK;")"
a "ROLLBACK;" >/dev/null
check "session A: key B's token verifies" "u-k-rot-b" \
    "$(a "BEGIN; SELECT crm_security.set_claim_context('$TB')->>'sub'; COMMIT;")"
session_a_end

q "${ADMIN[@]}" -c "SELECT crm_security.add_jwt_key('k-rot-c', 'HS256', '$CANARY-c-0123456789-0123456789', '$IA')" \
    -c "SELECT crm_security.disable_jwt_key('k-rot-c', '$IA')" >/dev/null
check "the key changes are security events" "k-rot-a:added k-rot-a:disabled k-rot-b:added k-rot-c:added k-rot-c:disabled" \
    "$(q -c "SELECT string_agg(details->>'kid' || ':' || substr(event_type, 9), ' ' ORDER BY details->>'kid', id) FROM crm_security.security_events WHERE event_type LIKE 'jwt.key_%'")"

if [ -n "$LOG" ] && [ -r "$LOG" ]; then
    check "the server log has a line for each key change, naming kid, algorithm and issuer" "5" \
        "$(grep -c 'crm_security jwt_key_changed action=[a-z]* by=[^ ]* key={"kid": "k-rot-[abc]", "via": "[a-z_]*", "issuer": "https://idp-rot.example", "algorithm": "HS256"' "$LOG")"
    check "the line of the key import_jwks disabled says so" "1" \
        "$(grep -c 'crm_security jwt_key_changed action=disabled .*"kid": "k-rot-a".*"via": "import_jwks"' "$LOG")"
    check "no key material in the server log (secret, JWK k, statement)" "0" \
        "$(grep -c -e "$CANARY" -e "$KA" -e "$KB" "$LOG")"
    if [ "$failed" -ne 0 ]; then grep -e "$CANARY" -e "$KA" -e "$KB" -e jwt_key_changed "$LOG" | head -8 | sed 's/^/# /'; fi
else
    for d in "the server log has a line for each key change" "the line of the key import_jwks disabled" "no key material in the server log"; do
        n=$((n + 1)); echo "ok $n # SKIP $d: no server log (CRM_WORK not set)"
    done
fi

"${PSQL[@]}" -d postgres -c "DROP DATABASE $DB" >/dev/null 2>&1
exit $failed
