#!/usr/bin/env bash
# Credentials out of the server log (docs/security.md, "Secrets in error messages and logs"):
# with log_statement = 'all', log_min_duration_statement = 0 and the extended protocol's
# bind parameters logged, a JWT, an API key or a crm_security.token assignment in a
# statement, its parameters, a STATEMENT line or a message reaches the log as a placeholder;
# text that only looks alike is left as it is.
# Environment (from test/run.sh): PG_BIN, PGHOST, PGPORT, PGUSER, CRM_WORK (server log).
set -u
PSQL=("$PG_BIN/psql" -X -q -A -t)
DB=crm_log_redact
SECRET=log-redact-secret-0123456789-0123456789-ab
LOG=${CRM_WORK:?}/pg/server.log
source "$(dirname "$0")/include/tap.sh"

echo "1..18"
"${PSQL[@]}" -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" \
    -c "CREATE DATABASE $DB" >/dev/null
"${PSQL[@]}" -d "$DB" -c "SET client_min_messages = warning" -c "CREATE EXTENSION crm_security" \
    -c "SELECT crm_security.add_jwt_key('logr', 'HS256', '$SECRET')" >/dev/null
tok() {
    "${PSQL[@]}" -d "$DB" -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', '$1', 'tenant_id', 't1', 'exp', extract(epoch FROM now())::bigint + 600), '$SECRET', 'HS256', '{\"kid\": \"logr\"}')"
}
TOK=$(tok u-log-1); TOK2=$(tok u-log-2); TOK3=$(tok u-log-3)
KEY=$("${PSQL[@]}" -d "$DB" -c "SELECT api_key FROM crm_security.create_api_key('log client', 't1', '{items:read}')")
# What each check reads: the log written since the mark.
mark() { MARK=$(stat -c %s "$LOG"); }
since() { tail -c +"$((MARK + 1))" "$LOG"; }
has() { since | grep -cF -e "$1"; }
secrets() { since | grep -cF -e "${TOK##*.}" -e "${TOK2##*.}" -e "${TOK3##*.}" -e "$KEY" -e "$SECRET"; }

# Every statement logged, the library loaded by every connection of the database.
"${PSQL[@]}" -d postgres -c "ALTER DATABASE $DB SET log_statement = 'all'" \
    -c "ALTER DATABASE $DB SET session_preload_libraries = 'crm_security'" >/dev/null
mark
q -c "BEGIN" -c "SELECT crm_security.set_claim_context('$TOK') IS NOT NULL" -c "COMMIT" >/dev/null
check "log_statement = 'all': the token in the first statement of a connection reads (token)" 1 \
    "$(has "statement: SELECT crm_security.set_claim_context('(token)') IS NOT NULL")"
q -c "BEGIN" -c "SELECT crm_security.set_api_key_context('$KEY') IS NOT NULL" -c "COMMIT" >/dev/null
check "... an API key reads (api key)" 1 \
    "$(has "statement: SELECT crm_security.set_api_key_context('(api key)') IS NOT NULL")"
q -c "BEGIN" -c "SET LOCAL crm_security.token = '$TOK2'" -c "SELECT crm_security.user_id()" -c "COMMIT" >/dev/null
check "... a SET LOCAL crm_security.token reads '(token)'" 1 \
    "$(has "statement: SET LOCAL crm_security.token = '(token)'")"
q -c "SELECT 'eyJhbGciOi' AS header_only, 'items_read' AS word, 'a.b.c' AS dots" >/dev/null
check "... text that only looks alike is logged as it is" 1 \
    "$(has "statement: SELECT 'eyJhbGciOi' AS header_only, 'items_read' AS word, 'a.b.c' AS dots")"
check "... and no token, API key or secret is in the log" 0 "$(secrets)"

# The extended protocol: bind parameters are logged in a DETAIL line.
mark
printf 'SELECT crm_security.set_claim_context(:tok) IS NOT NULL;\nSELECT crm_security.verify_api_key(:key) IS NOT NULL;\n' >"$CRM_WORK/log_redact.pgb"
out=$("$PG_BIN/pgbench" -n -M extended -t 1 -f "$CRM_WORK/log_redact.pgb" -D tok="$TOK3" -D key="$KEY" "$DB" 2>&1)
check "the extended protocol: both statements ran" 1 "$(grep -c 'number of failed transactions: 0' <<<"$out")"
check "... the token parameter reads (token)" 1 "$(has "parameters: \$1 = '(token)'")"
check "... the API key parameter reads (api key)" 1 "$(has "parameters: \$1 = '(api key)'")"
check "... and neither is in the log" 0 "$(secrets)"

# Errors: the caller's own statement fails before the function runs; a message carries one.
mark
q -c "SELECT crm_security.set_claim_context('$TOK'), 'not json'::jsonb" >/dev/null
check "an error in a statement holding a token: the ERROR is logged" 1 \
    "$(has 'ERROR:  invalid input syntax for type json')"
check "... without a STATEMENT line" 0 "$(since | grep -c 'STATEMENT:  SELECT crm_security.set_claim_context')"
q -c "DO \$\$ BEGIN RAISE LOG 'caller logs %', '$TOK2'; END \$\$" >/dev/null
check "a message that carries a token: RAISE LOG writes (token)" 1 "$(has 'LOG:  caller logs (token)')"
check "... and no token is in the log" 0 "$(secrets)"

# Hostile messages: 1 MB of fragments that begin like a token or a key, and one run of 1 MB
# that is a token; each logged in time, the second as one placeholder.
mark
out=$(q -c "SET statement_timeout = '20s'" \
        -c "DO \$\$ BEGIN RAISE LOG 'frag %', repeat('eyJa-x_', 150000) || repeat('eyJ.', 1) || repeat('crm_live_ab ', 80000); END \$\$" \
        -c "DO \$\$ BEGIN RAISE LOG 'run %', 'eyJ' || repeat('a.', 500000); END \$\$" -c "SELECT 'alive'")
check "1 MB messages of look-alike fragments are logged, in time" "alive" "$(tail -1 <<<"$out")"
check "... a 1 MB token is one placeholder" 1 "$(has 'LOG:  run (token)')"

# Durations instead of statements.
"${PSQL[@]}" -d postgres -c "ALTER DATABASE $DB SET log_statement = 'none'" \
    -c "ALTER DATABASE $DB SET log_min_duration_statement = 0" >/dev/null
mark
q -c "BEGIN" -c "SELECT crm_security.set_claim_context('$TOK') IS NOT NULL" -c "COMMIT" >/dev/null
check "log_min_duration_statement = 0: the duration line reads (token)" 1 \
    "$(since | grep -c "duration: .* statement: SELECT crm_security.set_claim_context('(token)') IS NOT NULL")"
check "... and no token is in the log" 0 "$(secrets)"

# Without preloading: redacted from the first call of a function of the extension on.
"${PSQL[@]}" -d postgres -c "ALTER DATABASE $DB RESET session_preload_libraries" \
    -c "ALTER DATABASE $DB RESET log_min_duration_statement" \
    -c "ALTER DATABASE $DB SET log_statement = 'all'" >/dev/null
mark
q -c "SELECT crm_security.context_status() IS NOT NULL" \
  -c "BEGIN" -c "SELECT crm_security.set_claim_context('$TOK3') IS NOT NULL" -c "COMMIT" >/dev/null
check "not preloaded: once the library is loaded, the token reads (token)" 1 \
    "$(has "statement: SELECT crm_security.set_claim_context('(token)') IS NOT NULL")"

"${PSQL[@]}" -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" >/dev/null
rm -f "$CRM_WORK/log_redact.pgb"
exit $failed
