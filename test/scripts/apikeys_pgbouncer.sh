#!/usr/bin/env bash
# API-key and service contexts behind pgbouncer in transaction pooling mode: several clients
# share a pool of two server connections; each sets its integration's context with
# set_api_key_context (or a service's with set_claim_context on a service token) in a
# transaction, reads an isolated table there, and then runs a transaction WITHOUT a
# context, which must see none.  A revoked key is then refused on every pooled connection.
set -u
source "$CRM_ROOT/test/lib.sh"
source "$CRM_ROOT/test/scripts/include/pgbouncer.sh"
PSQL=("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=sqlstate)
DB=crm_ak_pgb
APP=regress_akpgb_app
CLIENTS=6
ROUNDS=25
DIR=$CRM_WORK/pgbouncer_apikeys

echo "1..8"
pgb_database
"${PSQL[@]}" -d "$DB" -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL);
INSERT INTO items SELECT g, 't-akpgb-' || (g % $CLIENTS + 1) FROM generate_series(1, 600) g;
SELECT crm_security.enable_tenant_isolation('items');
GRANT SELECT ON items TO $APP;
SELECT crm_security.register_service('akpgb-caller', '{akpgb-callee}');
SELECT crm_security.register_service('akpgb-callee');
SQL
for i in $(seq 1 $CLIENTS); do
    "${PSQL[@]}" -d "$DB" -c "SELECT id || ' ' || api_key FROM crm_security.create_api_key('client $i', 't-akpgb-$i', '{items:read}')" >"$DIR/key$i"
done
stok=$("${PSQL[@]}" -d "$DB" -c "SELECT crm_security.issue_service_token('akpgb-caller', 'akpgb-callee', '10 minutes')")

start_pgbouncer

# "in" lines: client, actor type, user id, tenant, rows seen and their tenants, backend.
# "out" lines: the same without a context.
Q='coalesce(crm_security.actor_type(), $$-$$), coalesce(crm_security.user_id(), $$-$$), coalesce(crm_security.tenant_id(), $$-$$), (SELECT count(*) FROM items), coalesce((SELECT string_agg(DISTINCT tenant_id, $$,$$) FROM items), $$-$$), pg_backend_pid()'
for i in $(seq 1 $CLIENTS); do
    read -r id key <"$DIR/key$i"
    {
        for r in $(seq 1 $ROUNDS); do
            echo "BEGIN;"
            if [ "$i" = 1 ] && [ $((r % 2)) = 0 ]; then
                echo "SELECT 'svc', $i, crm_security.set_claim_context('$stok')->>'sub', $Q;"
            else
                echo "SELECT 'in', $i, crm_security.set_api_key_context('$key')->>'sub', $Q;"
            fi
            echo "COMMIT;"
            echo "SELECT 'out', $i, '-', $Q;"
            if [ $((r % 3)) = 0 ]; then  # autocommit: its context ends with the statement
                echo "SELECT 'set', $i, crm_security.set_api_key_context('$key')->>'sub';"
                echo "SELECT 'out', $i, '-', $Q;"
            fi
        done
    } >"$DIR/client$i.sql"
    echo "$id" >"$DIR/id$i"
done

pids=()
for i in $(seq 1 $CLIENTS); do
    "${PSQL[@]}" -h 127.0.0.1 -p "$PGB_PORT" -U "$APP" -d "$DB" -F ' ' -f "$DIR/client$i.sql" >"$DIR/client$i.out" 2>&1 &
    pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
grep -q ERROR "$DIR"/client*.out && rc=1
check "$CLIENTS clients ran $ROUNDS rounds each without an error" "$rc" "$(grep -h ERROR "$DIR"/client*.out | sort | uniq -c)"

bad_in="" bad_out="" bad_svc="" counts_ok=0
for i in $(seq 1 $CLIENTS); do
    f=$DIR/client$i.out id=$(cat "$DIR/id$i")
    bad_in+=$(awk -v i="$i" -v id="$id" '$1 == "in" && !($2 == i && $3 == id && $4 == "api_key" && $5 == id && $6 == "t-akpgb-"i && $7 == 100 && $8 == "t-akpgb-"i)' "$f")
    bad_out+=$(awk '$1 == "out" && !($4 == "-" && $5 == "-" && $6 == "-" && $7 == 0 && $8 == "-")' "$f")
    bad_svc+=$(awk '$1 == "svc" && !($3 == "akpgb-caller" && $4 == "service" && $5 == "akpgb-caller" && $6 == "-" && $7 == 0)' "$f")
    nin=$(grep -cE '^(in|svc) ' "$f"); nout=$(grep -c '^out ' "$f")
    [ "$nin" = "$ROUNDS" ] && [ "$nout" -ge "$ROUNDS" ] || counts_ok=1
done
check "every client saw its whole output" "$counts_ok" "$(wc -l "$DIR"/client*.out)"
check "each API-key transaction saw its own key: actor api_key, its id, its tenant and only its rows" "$([ -z "$bad_in" ]; echo $?)" "$bad_in"
check "the service transactions saw the service: actor service, no tenant, no rows" "$([ -z "$bad_svc" ] && grep -q '^svc ' "$DIR/client1.out"; echo $?)" "$bad_svc"
check "no transaction without a context saw any context or row" "$([ -z "$bad_out" ]; echo $?)" "$bad_out"
pairs=$(awk '$1 == "in" || $1 == "out" || $1 == "svc" {print $NF, $2}' "$DIR"/client*.out | sort -u)
nbackends=$(echo "$pairs" | awk '{print $1}' | sort -u | wc -l)
shared=$(echo "$pairs" | awk '{c[$1]++} END {for (b in c) if (c[b] >= 2) s++; print s + 0}')
check "the clients were interleaved on at most 2 server connections ($nbackends), each serving several clients" \
    "$([ "$nbackends" -le 2 ] && [ "$shared" -ge 1 ]; echo $?)" "$pairs"

# A revoked key: refused at the next set_api_key_context on every pooled connection.
read -r id2 key2 <"$DIR/key2"
"${PSQL[@]}" -d "$DB" -c "SELECT crm_security.revoke_api_key('$id2')" >/dev/null
for r in 1 2 3 4; do
    apids=()
    for k in 2 3; do
        read -r _ kk <"$DIR/key$k"
        "${PSQL[@]}" -h 127.0.0.1 -p "$PGB_PORT" -U "$APP" -d "$DB" -F ' ' \
            -c "SELECT 'after', $k, crm_security.set_api_key_context('$kk')->>'tenant_id', pg_backend_pid(), pg_sleep(0.05)" \
            >>"$DIR/after.out" 2>&1 &
        apids+=($!)
    done
    wait "${apids[@]}"  # not pgbouncer's
done
refused=$(grep -c '28000' "$DIR/after.out")
kept=$(grep -c "^after 3 t-akpgb-3 " "$DIR/after.out")
check "a revoked key is refused by every pooled connection (4 of 4), another key still works (4 of 4)" \
    "$([ "$refused" = 4 ] && [ "$kept" = 4 ]; echo $?)" "$(cat "$DIR/after.out")"

stop_pgbouncer
trap - EXIT
"${PSQL[@]}" -d postgres -c "DROP DATABASE $DB WITH (FORCE)" >/dev/null 2>&1
"${PSQL[@]}" -d postgres -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
exit $failed
