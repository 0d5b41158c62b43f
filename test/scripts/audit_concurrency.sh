#!/usr/bin/env bash
# Audit log under concurrency: pgbench clients write audited tables (and roll some
# transactions back) while seal_audit_log() runs in a loop in another process.  Afterwards
# the entries must match the committed changes exactly and the chain must verify.
set -uo pipefail
: "${PG_BIN:?}" "${CRM_WORK:?}"
DB=crm_audit_concurrency
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At)
DIR="$CRM_WORK/audit_concurrency"
mkdir -p "$DIR"

echo "1..13"
n=0
check() {  # check DESCRIPTION COMMAND...: one TAP line
    local desc=$1; shift
    n=$((n + 1))
    if "$@"; then echo "ok $n - $desc"; else echo "not ok $n - $desc"; fi
}
q() { "${PSQL[@]}" -d "$DB" -c "$1"; }

"$PG_BIN/psql" -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
q "CREATE EXTENSION crm_security;
   CREATE TABLE orders (id bigserial PRIMARY KEY, client int NOT NULL, note text, secret text);
   CREATE TABLE counters (k int PRIMARY KEY, v bigint NOT NULL DEFAULT 0);
   INSERT INTO counters (k) SELECT g FROM generate_series(1, 20) g;
   SELECT crm_security.enable_audit('orders', ARRAY['secret']);
   SELECT crm_security.enable_audit('counters');" >/dev/null

cat >"$DIR/commit.sql" <<'SQL'
\set k random(1, 20)
BEGIN;
INSERT INTO orders (client, note, secret) VALUES (:client_id, 'order', 'pw');
UPDATE counters SET v = v + 1 WHERE k = :k;
SELECT crm_security.log_event('bench.commit', 'order', NULL, 'success');
END;
SQL
cat >"$DIR/rollback.sql" <<'SQL'
\set k random(1, 20)
BEGIN;
INSERT INTO orders (client, note) VALUES (:client_id, 'rolled back');
UPDATE counters SET v = v + 1000000 WHERE k = :k;
SELECT crm_security.log_event('bench.rollback');
ROLLBACK;
SQL

# The sealer: a separate process sealing as fast as it can until told to stop.
rm -f "$DIR/stop"
(
    runs=0 fails=0 sealed=0
    while [ ! -e "$DIR/stop" ]; do
        if s=$("${PSQL[@]}" -d "$DB" -c "SELECT crm_security.seal_audit_log()" 2>>"$DIR/sealer.err"); then
            runs=$((runs + 1)); sealed=$((sealed + s))
        else
            fails=$((fails + 1))
        fi
        sleep 0.05
    done
    echo "$runs $fails $sealed" >"$DIR/sealer.out"
) &
sealer=$!

"$PG_BIN/pgbench" -n -c 8 -j 2 -T 12 -f "$DIR/commit.sql@8" -f "$DIR/rollback.sql@2" "$DB" >"$DIR/pgbench.out" 2>&1
rc=$?
touch "$DIR/stop"
wait "$sealer"
read -r runs fails sealed_during <"$DIR/sealer.out"

check "pgbench ran without errors" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || grep -iE "error|abort|deadlock|fatal" "$DIR/pgbench.out" | head -5 | sed 's/^/# /'
check "the sealer ran $runs times concurrently without a failure" [ "$runs" -gt 10 ] && [ "$fails" -eq 0 ]
check "entries were sealed while the writers ran ($sealed_during)" [ "$sealed_during" -gt 0 ]

orders=$(q "SELECT count(*) FROM orders")
updates=$(q "SELECT sum(v) FROM counters")
check "no rolled-back change reached the tables" [ "$(q "SELECT count(*) FROM orders WHERE note = 'rolled back'")" = 0 ] && [ "$updates" -lt 1000000 ]
check "one INSERT entry per committed insert ($orders)" \
    [ "$(q "SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.orders' AND operation = 'INSERT'")" = "$orders" ]
check "one UPDATE entry per committed update ($updates)" \
    [ "$(q "SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.counters' AND operation = 'UPDATE'")" = "$updates" ]
check "one event per committed transaction and none from rolled-back ones" \
    [ "$(q "SELECT count(*) FILTER (WHERE operation = 'bench.commit') || '/' || count(*) FILTER (WHERE operation = 'bench.rollback') FROM crm_security.audit_log")" = "$orders/0" ]

q "SELECT crm_security.seal_audit_log()" >/dev/null
check "after a last seal every entry is in a block" \
    [ "$(q "SELECT (SELECT sum(entry_count) FROM crm_security.audit_blocks) = (SELECT count(*) FROM crm_security.audit_log)")" = t ]
check "several blocks were chained ($(q "SELECT count(*) FROM crm_security.audit_blocks"))" \
    [ "$(q "SELECT count(*) FROM crm_security.audit_blocks")" -gt 1 ]
verdict=$(q "SELECT ok || ' ' || detail FROM crm_security.verify_audit_log(crm_security.audit_digest())")
check "the chain verifies: $verdict" [ "${verdict%% *}" = true ]

# A transaction that writes an entry first and commits last: later transactions commit
# entries meanwhile, yet nothing may be sealed past the running one.
"${PSQL[@]}" -d "$DB" -c "SELECT crm_security.log_event('long.running'); SELECT pg_sleep(3)" >/dev/null &
long=$!
sleep 1
q "SELECT crm_security.log_event('after.long')" >/dev/null
sealed_meanwhile=$(q "SELECT crm_security.seal_audit_log()")
check "entries committed behind a running transaction wait (sealed $sealed_meanwhile)" \
    [ "$(q "SELECT count(*) FROM crm_security.audit_log WHERE operation = 'after.long' AND txid < (SELECT max(txid_hi) FROM crm_security.audit_blocks)")" = 0 ]
wait "$long"
q "SELECT crm_security.seal_audit_log()" >/dev/null
check "once it commits, both are sealed" \
    [ "$(q "SELECT count(*) FROM crm_security.audit_log WHERE operation IN ('long.running', 'after.long') AND txid < (SELECT max(txid_hi) FROM crm_security.audit_blocks)")" = 2 ]
verdict=$(q "SELECT ok || ' ' || detail FROM crm_security.verify_audit_log(crm_security.audit_digest())")
check "the chain still verifies: $verdict" [ "${verdict%% *}" = true ]

"$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE $DB" >/dev/null
