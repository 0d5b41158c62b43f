#!/usr/bin/env bash
# Claim context across sessions: a key disabled (or changed) in one session stops working
# in another, already running session from its next transaction; and the token setting
# cannot be planted for later transactions (ALTER ROLE ... SET, connection options, a SET
# made before the library was loaded).
set -u
PSQL=("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=sqlstate)
DB=crm_ctx_sessions
SECRET=sessions-secret-0123456789-0123456789
SECRET2=sessions-second-0123456789-0123456789
source "$(dirname "$0")/include/tap.sh"
source "$(dirname "$0")/include/session.sh"
errcode() { sed -n 's/.*ERROR:  *\([0-9A-Z]\{5\}\).*/\1/p' | head -1; }
# a_err SQL: the SQLSTATE of the error that SQL raises in session A (no pipe: the coprocess
# descriptors do not reach a pipeline's subshells).
a_err() { local out; out=$(a "$1"); errcode <<<"$out"; }

echo "1..22"
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
q -c "CREATE EXTENSION crm_security" \
  -c "CREATE ROLE regress_sess_user LOGIN" \
  -c "SELECT crm_security.add_jwt_key('s1', 'HS256', '$SECRET')" \
  -c "CREATE TABLE par AS SELECT g FROM generate_series(1, 100000) AS g" -c "ANALYZE par" >/dev/null
sign() {  # sign SUB KID SECRET
    q -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', '$1', 'exp', extract(epoch FROM now())::bigint + 600), '$3', 'HS256', '{\"kid\": \"$2\"}')"
}
TOK=$(sign u-s s1 "$SECRET")
TOK2=$(sign u-s2 s2 "$SECRET2")

# Session A: one connection kept open for the whole test (include/session.sh).
# Warnings (set_claim_context outside a transaction block, by a superuser) are not the
# subject here: only errors are shown.
PGOPTIONS="-c client_min_messages=error" session_a_start

check "session A verifies a token" "u-s" "$(a "SELECT crm_security.set_claim_context('$TOK')->>'sub';")"
a "BEGIN;" >/dev/null
check "session A sets a context in an open transaction" "u-s" "$(a "SELECT crm_security.set_claim_context('$TOK')->>'sub';")"
check "session B disables the key" "" "$(q -c "SELECT crm_security.disable_jwt_key('s1')")"
check "session A keeps the context of its running transaction" "u-s" "$(a "SELECT crm_security.user_id();")"
a "COMMIT;" >/dev/null
check "session A: the disabled key is refused from the next transaction" "28000" \
    "$(a_err "SELECT crm_security.set_claim_context('$TOK');")"
check "session A: the token in the setting is refused too" "28000" \
    "$(a_err "BEGIN; SET LOCAL crm_security.token = '$TOK'; SELECT crm_security.user_id(); ROLLBACK;")"
check "session B enables the key again (UPDATE of the table)" "UPDATE 1" \
    "$("$PG_BIN/psql" -X -d "$DB" -c "UPDATE crm_security.jwt_keys SET enabled = true WHERE kid = 's1'" 2>&1)"
check "session A: the key works again" "u-s" "$(a "SELECT crm_security.set_claim_context('$TOK')->>'sub';")"
q -c "UPDATE crm_security.jwt_keys SET not_after = now() - interval '1 second' WHERE kid = 's1'" >/dev/null
check "session A: a key whose validity window ended is refused" "28000" \
    "$(a_err "SELECT crm_security.set_claim_context('$TOK');")"
q -c "UPDATE crm_security.jwt_keys SET not_after = NULL WHERE kid = 's1'" >/dev/null
check "session A: ... and accepted when the window is open again" "u-s" "$(a "SELECT crm_security.set_claim_context('$TOK')->>'sub';")"
check "session A: an unknown kid is refused" "28000" "$(a_err "SELECT crm_security.set_claim_context('$TOK2');")"
q -c "SELECT crm_security.add_jwt_key('s2', 'HS256', '$SECRET2')" >/dev/null
check "session A: a key added by session B is used" "u-s2" "$(a "SELECT crm_security.set_claim_context('$TOK2')->>'sub';")"
q -c "DELETE FROM crm_security.jwt_keys WHERE kid = 's2'" >/dev/null
check "session A: a key deleted by session B is refused" "28000" "$(a_err "SELECT crm_security.set_claim_context('$TOK2');")"

# Parallel workers verify the token afresh: after a key is disabled, a parallel query of a
# transaction that verified its token before fails closed.
a "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
   SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;" >/dev/null
a "BEGIN;" >/dev/null
a "SELECT crm_security.set_claim_context('$TOK') IS NOT NULL;" >/dev/null
check "session A: parallel workers see the context" "100000" \
    "$(a "SELECT count(*) FROM par WHERE crm_security.user_id() = 'u-s';")"
q -c "SELECT crm_security.disable_jwt_key('s1')" >/dev/null
check "session A: after the key is disabled, new parallel workers refuse the token" "28000" \
    "$(a_err "SELECT count(*) FROM par WHERE crm_security.user_id() = 'u-s';")"
a "ROLLBACK;" >/dev/null
q -c "UPDATE crm_security.jwt_keys SET enabled = true WHERE kid = 's1'" >/dev/null
session_a_end

# Planting the token for later transactions.  Each psql -c below is a transaction of its
# own in a new session that has not loaded the library yet.
out=$(q -c "ALTER ROLE regress_sess_user SET crm_security.token = '$TOK'")
check "ALTER ROLE ... SET crm_security.token by a superuser (library not loaded: stored unchecked)" "" "$out"
check "... the stored token is not a context at the role's next login" "none" \
    "$(q -U regress_sess_user -c "SELECT coalesce(crm_security.user_id(), 'none')" | grep -v WARNING | tail -1)"
q -c "ALTER ROLE regress_sess_user RESET crm_security.token" >/dev/null
check "ALTER ROLE CURRENT_USER SET crm_security.token by a non-superuser is refused" "42501" \
    "$(q -U regress_sess_user -c "ALTER ROLE CURRENT_USER SET crm_security.token = '$TOK'" | errcode)"
check "a token sent as a connection option is not a context" "none" \
    "$(PGOPTIONS="-c crm_security.token=$TOK" q -c "SELECT coalesce(crm_security.user_id(), 'none')" | grep -v WARNING | tail -1)"
check "a SET made before the library was loaded does not reach a later transaction" "none" \
    "$(q -U regress_sess_user -c "SET crm_security.token = '$TOK'" -c "SELECT coalesce(crm_security.user_id(), 'none')" | tail -1)"
out=$(q -U regress_sess_user -c "BEGIN" -c "SET LOCAL crm_security.token = '$TOK'" \
        -c "SELECT crm_security.user_id()" -c "COMMIT" -c "SELECT coalesce(crm_security.user_id(), 'none')")
check "a SET LOCAL made before the library was loaded holds in its transaction (as Citus propagates it)" \
    "u-s" "$(echo "$out" | head -1)"
check "... and ends with it" "none" "$(echo "$out" | tail -1)"

"${PSQL[@]}" -d postgres -c "DROP DATABASE $DB" -c "DROP ROLE regress_sess_user" >/dev/null 2>&1
exit $failed
