#!/usr/bin/env bash
# Memberships across sessions: a membership removed, disabled or added, a tenant disabled or
# enabled in one session takes effect in another, already running session at its next
# set_claim_context (its per-process cache is emptied by the invalidation), while a
# transaction that has its context keeps it.
set -u
PSQL=("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=sqlstate)
DB=crm_ctx_tenants_sessions
SECRET=tenant-sessions-secret-0123456789-0123
source "$(dirname "$0")/include/tap.sh"
source "$(dirname "$0")/include/session.sh"
errcode() { sed -n 's/.*ERROR:  *\([0-9A-Z]\{5\}\).*/\1/p' | head -1; }
a_err() { local out; out=$(a "$1"); errcode <<<"$out"; }

echo "1..13"
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
q -c "CREATE EXTENSION crm_security" \
  -c "SELECT crm_security.add_jwt_key('ts', 'HS256', '$SECRET')" \
  -c "SELECT crm_security.add_tenant('t1', 'One')" -c "SELECT crm_security.add_tenant('t2', 'Two')" \
  -c "SELECT crm_security.add_tenant_member('t1', 'u', 'client_admin')" >/dev/null
TOK=$(q -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'u', 'exp', extract(epoch FROM now())::bigint + 600), '$SECRET', 'HS256', '{\"kid\": \"ts\"}')")

# Session A: one connection kept open for the whole test (as in context_sessions.sh).
# Warnings (set_claim_context outside a transaction block, by a superuser) are not the
# subject here: only errors are shown.
PGOPTIONS="-c client_min_messages=error" session_a_start
ctx() { a "SELECT crm_security.tenant_id() || '/' || crm_security.app_role() FROM crm_security.set_claim_context('$TOK'${1:+, '$1'});"; }

check "session A: the only membership" "t1/client_admin" "$(ctx)"
check "session A: the membership named" "t1/client_admin" "$(ctx t1)"
a "BEGIN;" >/dev/null
check "session A sets a context in an open transaction" "t1/client_admin" "$(ctx t1)"
check "session B removes the membership" "" "$(q -c "SELECT crm_security.remove_tenant_member('t1', 'u')")"
check "session A keeps the context of its running transaction" "t1" "$(a "SELECT crm_security.tenant_id();")"
check "session A: the next set_claim_context, in the same transaction, refuses it" "42501" \
    "$(a_err "SELECT crm_security.set_claim_context('$TOK', 't1');")"
a "ROLLBACK;" >/dev/null
check "session A: refused in the next transaction too" "42501" "$(a_err "SELECT crm_security.set_claim_context('$TOK', 't1');")"
check "session A: without a tenant, no membership: a context without a tenant" "u/" \
    "$(a "SELECT crm_security.user_id() || '/' || coalesce(crm_security.tenant_id(), '') FROM crm_security.set_claim_context('$TOK');")"
q -c "SELECT crm_security.add_tenant_member('t1', 'u', 'client_user')" >/dev/null
check "session B adds it again, with another role: session A sees both" "t1/client_user" "$(ctx t1)"
q -c "UPDATE crm_security.tenants SET enabled = false WHERE id = 't1'" >/dev/null
check "session B disables the tenant by hand: session A gets no context" "42501" \
    "$(a_err "SELECT crm_security.set_claim_context('$TOK', 't1');")"
q -c "SELECT crm_security.enable_tenant('t1')" >/dev/null
check "session B enables it again: session A works" "t1/client_user" "$(ctx t1)"
q -c "SELECT crm_security.add_tenant_member('t2', 'u')" >/dev/null
check "session B adds a second membership: session A must name the tenant" "22023" \
    "$(a_err "SELECT crm_security.set_claim_context('$TOK');")"
q -c "UPDATE crm_security.tenant_members SET enabled = false WHERE tenant_id = 't2'" >/dev/null
check "session B disables it by hand: the only membership again" "t1/client_user" "$(ctx)"

session_a_end
"${PSQL[@]}" -d postgres -c "DROP DATABASE $DB WITH (FORCE)" >/dev/null 2>&1
exit $failed
