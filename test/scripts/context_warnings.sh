#!/usr/bin/env bash
# set_claim_context warns where a mistake would otherwise pass in silence: outside a
# transaction block (the context ends with the statement), and, once per role and
# connection, for a role that bypasses row-level security (superuser or BYPASSRLS).  An
# application role inside BEGIN gets no warning.
set -u
PSQL=("$PG_BIN/psql" -X -q -A -t)
DB=crm_ctx_warnings
APP=regress_warn_app
SECRET=warnings-secret-0123456789-0123456789-ab
source "$(dirname "$0")/include/tap.sh"

echo "1..9"
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
"${PSQL[@]}" -d "$DB" -c "CREATE EXTENSION crm_security" \
    -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP') THEN CREATE ROLE $APP LOGIN; END IF; END \$\$" \
    -c "SELECT crm_security.add_jwt_key('warn', 'HS256', '$SECRET')" >/dev/null
TOK=$("${PSQL[@]}" -d "$DB" -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'u1', 'tenant_id', 't1', 'exp', extract(epoch FROM now())::bigint + 600), '$SECRET', 'HS256', '{\"kid\": \"warn\"}')")

out=$(q -U "$APP" -c "SELECT crm_security.set_claim_context('$TOK') IS NOT NULL")
check "outside a transaction block: a warning" 1 "$(grep -c 'WARNING:  claim context set outside a transaction block' <<<"$out")"
check "... with a hint to call it after BEGIN" 1 "$(grep -c 'HINT:  Call crm_security.set_claim_context() after BEGIN' <<<"$out")"

out=$(q -U "$APP" -c "BEGIN" -c "SELECT crm_security.set_claim_context('$TOK') IS NOT NULL" -c "COMMIT")
check "an application role inside BEGIN: no warning" 0 "$(grep -c 'WARNING' <<<"$out")"

out=$(q -c "BEGIN" -c "SELECT crm_security.set_claim_context('$TOK') IS NOT NULL" -c "COMMIT" \
        -c "BEGIN" -c "SELECT crm_security.set_claim_context('$TOK') IS NOT NULL" -c "COMMIT")
check "a superuser: warned that row-level security does not apply, once per connection" 1 \
    "$(grep -c 'WARNING:  row-level security does not apply to the current role' <<<"$out")"

# set_config of the token by a role that is not superuser: PostgreSQL would say "must be
# superuser ... to examine"; the client gets a message that says what to do instead.
out=$(q -U "$APP" -v VERBOSITY=default -c "SELECT crm_security.claims()" -c "BEGIN" -c "SELECT set_config('crm_security.token', '$TOK', true)" -c "ROLLBACK")
check "set_config of crm_security.token by an application role: a clear message" 1 \
    "$(grep -c 'ERROR:  crm_security.token is readable by superusers only, and set_config() reads back what it sets' <<<"$out")"
check "... with a hint to use set_claim_context" 1 "$(grep -c 'HINT:  Call crm_security.set_claim_context(token)' <<<"$out")"
check "... and not PostgreSQL's 'must be superuser ... to examine'" 0 "$(grep -c 'to examine' <<<"$out")"

"${PSQL[@]}" -d "$DB" -c "ALTER ROLE $APP BYPASSRLS" >/dev/null
out=$(q -U "$APP" -c "BEGIN" -c "SELECT crm_security.set_claim_context('$TOK') IS NOT NULL" -c "COMMIT")
check "a role with BYPASSRLS: warned too" 1 "$(grep -c 'WARNING:  row-level security does not apply to the current role' <<<"$out")"
check "no warning shows the token" 0 "$(grep -cF -e "${TOK: -20}" <<<"$out")"

"${PSQL[@]}" -d postgres -c "DROP DATABASE $DB WITH (FORCE)" >/dev/null 2>&1
"${PSQL[@]}" -d postgres -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
exit $failed
