#!/usr/bin/env bash
# Trust mode across the life of a server connection, as a pooler reuses it: a
# request.jwt.claims (or a token) left by one client is never the next client's context,
# even when it was set before the library was loaded, when the transaction that loaded the
# library (and erased it) rolled back, or when it came as a connection option; parallel
# workers never receive it.  (docs/security.md, finding 10.)
set -u
PSQL=("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=sqlstate)
DB=crm_hardening_trust
SECRET=hardening-trust-secret-0123456789-0123456789
source "$(dirname "$0")/include/tap.sh"

echo "1..12"
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
q -c "CREATE EXTENSION crm_security" \
  -c "DROP ROLE IF EXISTS regress_trust_pgrst" -c "CREATE ROLE regress_trust_pgrst LOGIN" \
  -c "ALTER ROLE regress_trust_pgrst SET crm_security.trust_request_jwt_claims = on" \
  -c "SELECT crm_security.add_jwt_key('ht1', 'HS256', '$SECRET')" \
  -c "CREATE TABLE rows AS SELECT g FROM generate_series(1, 100000) AS g" -c "ANALYZE rows" \
  -c "GRANT SELECT ON rows TO regress_trust_pgrst" >/dev/null
TOK=$(q -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'u-tok', 'tenant_id', 't-tok', 'exp', extract(epoch FROM now())::bigint + 600), '$SECRET', 'HS256', '{\"kid\": \"ht1\"}')")
CLAIMS='{"sub": "u-prev", "tenant_id": "t-prev"}'
PAR="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
     SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;"
# count of rows whose filter, evaluated in parallel workers only, sees the tenant
PARQ="SELECT count(*) FROM rows WHERE crm_security.tenant_id() IS NOT NULL"

# Each q below is a new session that has not loaded the library: a pooled server
# connection's first client, then the next one.
out=$(q -U regress_trust_pgrst -c "SET request.jwt.claims = '$CLAIMS'" \
        -c "SELECT coalesce(crm_security.tenant_id(), 'none')" -c "SELECT '[' || current_setting('request.jwt.claims', true) || ']'")
check "a SET of request.jwt.claims before the library loaded is not the next transaction's context" "none" "$(echo "$out" | head -1)"
check "... and is erased when the library loads" "[]" "$(echo "$out" | tail -1)"

out=$(q -U regress_trust_pgrst -c "SET request.jwt.claims = '$CLAIMS'" \
        -c "BEGIN" -c "SELECT crm_security.version() IS NOT NULL" -c "ROLLBACK" \
        -c "SELECT coalesce(crm_security.tenant_id(), 'none')")
check "the transaction that loaded the library rolled back (restoring the value): still no context" "none" "$(echo "$out" | tail -1)"

# (The parallel query comes first after the rollback: any commit in trust mode erases.)
out=$(q -U regress_trust_pgrst -c "$PAR" -c "SET request.jwt.claims = '$CLAIMS'" \
        -c "BEGIN" -c "SELECT crm_security.version() IS NOT NULL" -c "ROLLBACK" \
        -c "$PARQ" -c "SELECT '[' || current_setting('request.jwt.claims', true) || ']'")
check "... nor in parallel workers of the next query" "0" "$(echo "$out" | sed -n 2p)"
check "... the value is erased before that query starts" "[]" "$(echo "$out" | tail -1)"

out=$(q -U regress_trust_pgrst -c "$PAR" -c "BEGIN" \
        -c "SELECT set_config('request.jwt.claims', '$CLAIMS', true) IS NOT NULL" -c "$PARQ" -c "COMMIT")
check "a value set in the transaction reaches the parallel workers (trust mode as configured)" "100000" "$(echo "$out" | tail -1)"

out=$(PGOPTIONS="-c request.jwt.claims={\"sub\":\"u-opt\",\"tenant_id\":\"t-opt\"}" \
      q -U regress_trust_pgrst -c "SELECT coalesce(crm_security.tenant_id(), 'none')")
check "request.jwt.claims sent as a connection option is not a context" "none" "$out"

q -c "ALTER ROLE regress_trust_pgrst SET request.jwt.claims = '$CLAIMS'" >/dev/null
out=$(q -U regress_trust_pgrst -c "BEGIN" -c "SELECT coalesce(crm_security.tenant_id(), 'none')" -c "COMMIT")
check "request.jwt.claims stored with ALTER ROLE ... SET is not a context" "none" "$out"
q -c "ALTER ROLE regress_trust_pgrst RESET request.jwt.claims" >/dev/null

# The token in the same situations (trust mode or not).
out=$(q -U regress_trust_pgrst -c "SET crm_security.token = '$TOK'" \
        -c "BEGIN" -c "SELECT crm_security.version() IS NOT NULL" -c "ROLLBACK" \
        -c "SELECT coalesce(crm_security.user_id(), 'none')")
check "a token SET before the library loaded, the loading transaction rolled back: no context" "none" "$(echo "$out" | tail -1)"
out=$(q -U regress_trust_pgrst -c "$PAR" -c "SET crm_security.token = '$TOK'" \
        -c "BEGIN" -c "SELECT crm_security.version() IS NOT NULL" -c "ROLLBACK" \
        -c "$PARQ")
check "... nor in parallel workers" "0" "$(echo "$out" | tail -1)"
out=$(q -U regress_trust_pgrst -c "SET crm_security.token = '$TOK'" \
        -c "BEGIN" -c "SELECT crm_security.version() IS NOT NULL" -c "ROLLBACK" \
        -c "BEGIN" -c "SET LOCAL crm_security.token = '$TOK'" -c "SELECT crm_security.user_id()" -c "COMMIT")
check "... while the same token set in the transaction is the context" "u-tok" "$(echo "$out" | tail -1)"
out=$(q -U regress_trust_pgrst -c "BEGIN" -c "SELECT crm_security.set_claim_context('$TOK') IS NOT NULL" \
        -c "$PAR" -c "$PARQ" -c "COMMIT")
check "set_claim_context reaches the parallel workers as before" "100000" "$(echo "$out" | tail -1)"

"${PSQL[@]}" -d postgres -c "DROP DATABASE $DB" -c "DROP ROLE regress_trust_pgrst" >/dev/null 2>&1
exit $failed
