#!/usr/bin/env bash
# Record access across sessions: a manager change, a team change, a revoked share and a
# revoked company made in one session take effect in another, already running session
# from its next transaction (and not in the middle of its running one).
set -u
PSQL=("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=sqlstate)
DB=crm_record_sessions
SECRET=record-sessions-secret-0123456789-0123
source "$(dirname "$0")/include/tap.sh"
source "$(dirname "$0")/include/session.sh"

echo "1..9"
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
"${PSQL[@]}" -d postgres -c "DROP ROLE IF EXISTS regress_rec_sess" >/dev/null 2>&1
q -c "CREATE EXTENSION crm_security" \
  -c "CREATE ROLE regress_rec_sess LOGIN" \
  -c "SELECT crm_security.add_jwt_key('rs', 'HS256', '$SECRET')" \
  -c "CREATE TABLE deals (id int PRIMARY KEY, tenant_id text NOT NULL, owner_id text NOT NULL)" \
  -c "CREATE INDEX ON deals (tenant_id, owner_id)" \
  -c "INSERT INTO deals VALUES (1, 't', 'mgr'), (2, 't', 'rep'), (3, 't', 'peer'), (4, 'u', 'rep')" \
  -c "GRANT SELECT ON deals TO regress_rec_sess" \
  -c "SELECT crm_security.enable_tenant_isolation('deals')" \
  -c "SELECT crm_security.enable_record_access('deals', 'owner_id')" \
  -c "SELECT crm_security.set_manager('t', 'rep', 'mgr')" >/dev/null
TOK=$(q -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'mgr', 'tenant_id', 't', 'exp', extract(epoch FROM now())::bigint + 600), '$SECRET', 'HS256')")

session_a_start -U regress_rec_sess
# (no pipe: the coprocess descriptors do not reach a pipeline's subshells)
ids() { local out; out=$(a "BEGIN; SELECT crm_security.set_claim_context('$TOK') IS NULL; SELECT string_agg(id::text, ',' ORDER BY id) FROM deals; COMMIT;"); printf '%s' "${out##*$'\n'}"; }

check "session A: the manager sees their own and their report's records" "1,2" "$(ids)"
a "BEGIN; SELECT crm_security.set_claim_context('$TOK') IS NULL;" >/dev/null
check "session A: inside a transaction" "1,2" "$(a "SELECT string_agg(id::text, ',' ORDER BY id) FROM deals;")"
q -c "SELECT crm_security.set_manager('t', 'peer', 'mgr')" >/dev/null
check "session A: a manager change does not reach a running transaction" "1,2" \
    "$(a "SELECT string_agg(id::text, ',' ORDER BY id) FROM deals;")"
a "COMMIT;" >/dev/null
check "session A: the manager change is seen from the next transaction" "1,2,3" "$(ids)"
q -c "SELECT crm_security.set_manager('t', 'rep', NULL)" >/dev/null
check "session A: a removed manager is seen from the next transaction" "1,3" "$(ids)"
q -c "SELECT crm_security.add_team_member('t', 'blue', 'rep')" -c "SELECT crm_security.add_team_member('t', 'red', 'mgr')" \
  -c "SELECT crm_security.add_sharing_rule('t', 'blue', 'red')" >/dev/null
check "session A: a team and a sharing rule are seen from the next transaction" "1,2,3" "$(ids)"
q -c "SELECT crm_security.remove_team_member('t', 'blue', 'rep')" >/dev/null
check "session A: a team change is seen from the next transaction" "1,3" "$(ids)"
q -c "SELECT crm_security.share_record('deals', '2', 't', 'mgr')" >/dev/null
check "session A: a share is seen from the next transaction" "1,2,3" "$(ids)"
q -c "SELECT crm_security.unshare_record('deals', '2', 't', 'mgr')" >/dev/null
check "session A: a revoked share is gone from the next transaction" "1,3" "$(ids)"

session_a_end
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "DROP ROLE IF EXISTS regress_rec_sess" >/dev/null 2>&1
exit $failed
