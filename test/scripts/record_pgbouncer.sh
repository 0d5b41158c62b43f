#!/usr/bin/env bash
# Record access behind pgbouncer in transaction pooling mode: clients of one tenant (a rep, a
# colleague, their manager) and a user with the same id in another tenant share a pool of two
# server connections; every transaction sees exactly its own user's rows, never the sets
# another client left in the server connection, and a transaction without a context none.
set -u
source "$CRM_ROOT/test/lib.sh"
source "$CRM_ROOT/test/scripts/include/pgbouncer.sh"
PSQL=("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=sqlstate)
DB=crm_rec_pgb
APP=regress_rec_pgb
SECRET=record-pgbouncer-secret-0123456789-0123
ROUNDS=25
DIR=$CRM_WORK/pgbouncer_record

echo "1..4"
pgb_database \
    -c "SELECT crm_security.add_jwt_key('rpgb', 'HS256', '$SECRET')" \
    -c "CREATE TABLE deals (tenant_id text NOT NULL, id int NOT NULL, owner_id text NOT NULL, PRIMARY KEY (tenant_id, id))" \
    -c "CREATE INDEX ON deals (tenant_id, owner_id)" \
    -c "INSERT INTO deals VALUES ('a', 1, 'mgr'), ('a', 2, 'rep'), ('a', 3, 'peer'), ('a', 4, 'peer'), ('b', 5, 'rep'), ('b', 6, 'x')" \
    -c "GRANT SELECT ON deals TO $APP" \
    -c "SELECT crm_security.enable_tenant_isolation('deals')" \
    -c "SELECT crm_security.enable_record_access('deals', 'owner_id')" \
    -c "SELECT crm_security.set_manager('a', 'rep', 'mgr')" -c "SELECT crm_security.set_manager('a', 'peer', 'mgr')" \
    -c "SELECT crm_security.share_record('deals', '4', 'a', 'rep')" >/dev/null

start_pgbouncer

# client: user tenant expected-ids
clients=("rep a 2,4" "peer a 3,4" "mgr a 1,2,3,4" "rep b 5")
i=0
for c in "${clients[@]}"; do
    set -- $c
    tok=$("${PSQL[@]}" -d "$DB" -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', '$1', 'tenant_id', '$2', 'exp', extract(epoch FROM now())::bigint + 600), '$SECRET', 'HS256')")
    {
        for r in $(seq 1 $ROUNDS); do
            echo "BEGIN;"
            echo "SELECT crm_security.set_claim_context('$tok') IS NULL;"
            echo "SELECT 'in $1@$2 ' || coalesce(string_agg(id::text, ',' ORDER BY id), '-') || ' $3' FROM deals;"
            [ $((r % 3)) = 0 ] && echo "SELECT pg_sleep(0.002);"
            echo "COMMIT;"
            echo "SELECT 'out ' || coalesce(string_agg(id::text, ',' ORDER BY id), '-') FROM deals;"
        done
    } >"$DIR/client$i.sql"
    i=$((i + 1))
done
pids=()
for i in $(seq 0 $((${#clients[@]} - 1))); do
    "${PSQL[@]}" -h 127.0.0.1 -p "$PGB_PORT" -U "$APP" -d "$DB" -f "$DIR/client$i.sql" >"$DIR/client$i.out" 2>&1 &
    pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
ins=$(cat "$DIR"/client*.out | grep -c '^in ')
bad_in=$(cat "$DIR"/client*.out | awk '/^in / && $3 != $4')
check "every client ran its transactions ($ins of $((ROUNDS * ${#clients[@]})))" \
    "$([ "$rc" = 0 ] && [ "$ins" = $((ROUNDS * ${#clients[@]})) ] && echo 0 || echo 1)" "$(grep -h ERROR "$DIR"/client*.out | head -5)"
check "every transaction saw exactly its own user's records" "$([ -z "$bad_in" ] && echo 0 || echo 1)" "$bad_in"
bad_out=$(cat "$DIR"/client*.out | awk '/^out / && $2 != "-"')
check "a transaction without a context saw no record" "$([ -z "$bad_out" ] && echo 0 || echo 1)" "$bad_out"

stop_pgbouncer
trap - EXIT
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
exit $failed
