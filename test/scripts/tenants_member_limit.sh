#!/usr/bin/env bash
# Member limits under concurrency: 8 sessions add a member to one tenant at the same moment
# (they queue behind a session holding the tenant's row, then race), for a tenant whose
# limit is 5 and for one whose limit is 1; the limit is never exceeded, and every refusal
# names the tenant and its limit.  Then 8 concurrent enable_tenant_member calls.
set -uo pipefail
: "${PG_BIN:?}" "${CRM_WORK:?}"
DB=crm_tenants_limit
PSQL=("$PG_BIN/psql" -X -q -At -v VERBOSITY=default)
DIR="$CRM_WORK/tenants_member_limit"
mkdir -p "$DIR"
source "$CRM_ROOT/test/scripts/include/tap.sh"

echo "1..9"
"${PSQL[@]}" -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
q -c "CREATE EXTENSION crm_security" \
  -c "SELECT crm_security.add_tenant('t-five', 'Five', 'free')" \
  -c "SELECT crm_security.add_tenant('t-one', 'One', 'pro', 1)" \
  -c "SELECT crm_security.add_tenant('t-back', 'Back', 'free')" >/dev/null

# race TENANT CALL-TEMPLATE: hold the tenant's row, start 8 sessions, let them go at once.
race() {
    local tenant=$1 call=$2 i pids=()
    rm -f "$DIR/$tenant".*
    "${PSQL[@]}" -d "$DB" -c "BEGIN" \
        -c "SELECT 1 FROM crm_security.tenants WHERE id = '$tenant' FOR UPDATE" \
        -c "SELECT pg_sleep(1.5)" -c "COMMIT" >/dev/null &
    local holder=$!
    sleep 0.3
    for i in $(seq 1 8); do
        "${PSQL[@]}" -d "$DB" -c "${call//@/$i}" >"$DIR/$tenant.$i" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}" "$holder"
}

race t-five "SELECT crm_security.add_tenant_member('t-five', 'user-@', 'client_user')"
ok=$(for i in $(seq 1 8); do grep -L ERROR "$DIR/t-five.$i"; done | wc -l)
refused=$(grep -l 'tenant "t-five" has reached its member limit of 5' "$DIR"/t-five.* | wc -l)
check "8 concurrent adds to a tenant limited to 5: 5 succeed" 5 "$ok"
check "the 3 others are refused, naming the tenant and the limit" 3 "$refused"
check "the tenant has 5 members" 5 "$(q -c "SELECT count(*) FROM crm_security.tenant_members WHERE tenant_id = 't-five'")"

race t-one "SELECT crm_security.add_tenant_member('t-one', 'user-@')"
check "8 concurrent adds to a tenant limited to 1 by override: 1 member" 1 \
    "$(q -c "SELECT count(*) FROM crm_security.tenant_members WHERE tenant_id = 't-one'")"
check "7 refusals with SQLSTATE 54000" 7 \
    "$(grep -l 'reached its member limit of 1' "$DIR"/t-one.* | wc -l)"

# Enabling disabled members concurrently is held to the limit as well.
q -c "INSERT INTO crm_security.tenant_members (tenant_id, user_id, enabled) SELECT 't-back', 'user-' || g, false FROM generate_series(1, 8) g" >/dev/null
race t-back "SELECT crm_security.enable_tenant_member('t-back', 'user-@')"
check "8 concurrent enables in a tenant limited to 5: 5 enabled" 5 \
    "$(q -c "SELECT count(*) FROM crm_security.tenant_members WHERE tenant_id = 't-back' AND enabled")"
check "3 refused" 3 "$(grep -l 'reached its member limit of 5' "$DIR"/t-back.* | wc -l)"

# Every addition and enabling is an audit event; refusals leave none.
check "one audit event per member added" 6 \
    "$(q -c "SELECT count(*) FROM crm_security.audit_log WHERE operation = 'tenant_member_added'")"
check "one per member enabled" 5 \
    "$(q -c "SELECT count(*) FROM crm_security.audit_log WHERE operation = 'tenant_member_enabled'")"

"${PSQL[@]}" -d postgres -c "DROP DATABASE $DB WITH (FORCE)" >/dev/null 2>&1
exit $failed
