#!/usr/bin/env bash
# API key verification against its baselines, measured in the same run (pgbench, prepared
# statements, alternating runs; medians), on a cluster started here with
# shared_preload_libraries = 'crm_security' (the shared use counters) and, for comparison,
# on the benchmark cluster without it (counters in the table):
#  1. verify_api_key() per call against a bare indexed SELECT of the same key's row by its
#     hash (SELECT ... FROM api_key_secrets JOIN api_keys ... WHERE key_hash = '\x...'),
#     one session: target at most 2x;
#  2. 8 concurrent sessions verifying the same key against 8 verifying 8 different keys:
#     target at least 0.9x the throughput (no hot-row serialisation);
#  3. a request with an API-key context (BEGIN; SET LOCAL ROLE app; set_api_key_context;
#     SELECT one row by primary key under a tenant policy; COMMIT) against the same request
#     with set_claim_context(<HS256 token>): the ratio is reported (preloaded cluster only).
set -euo pipefail
: "${PG_BIN:?}" "${CRM_ROOT:?}"
source "$CRM_ROOT/test/lib.sh"
SECS=${APIKEY_BENCH_SECONDS:-5}
RUNS=${APIKEY_BENCH_RUNS:-3}
WORK=${CRM_WORK:-$(mktemp -d)}
DIR=$WORK/apikeys_bench_pg
BENCH_HOST=$PGHOST BENCH_PORT=$PGPORT

rm -rf "$DIR"
start_cluster "$DIR" "shared_preload_libraries = 'crm_security'
max_parallel_workers_per_gather = 0" >/dev/null
PRE_HOST=$PGHOST PRE_PORT=$PGPORT
trap 'stop_cluster "$DIR"' EXIT

setup() {  # setup: a database with 1,000 keys, 8 of them the "different" ones
    "$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS crm_bench_ak" -c "CREATE DATABASE crm_bench_ak" >/dev/null 2>&1
    "$PG_BIN/psql" -X -q -d crm_bench_ak -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION crm_security;
CREATE TABLE bench_keys (n int PRIMARY KEY, id uuid, key text, hash bytea);
INSERT INTO bench_keys (n, id, key)
SELECT g, k.id, k.api_key FROM generate_series(0, 999) g,
       LATERAL crm_security.create_api_key('bench ' || g, 'tenant ' || (g % 10), '{read,crm:deals:write}') k;
UPDATE bench_keys SET hash = crm_security.hash_api_key(key);
VACUUM ANALYZE;
SQL
    KEY=$("$PG_BIN/psql" -X -At -d crm_bench_ak -c "SELECT key FROM bench_keys WHERE n = 0")
    HASH=$("$PG_BIN/psql" -X -At -d crm_bench_ak -c "SELECT encode(hash, 'hex') FROM bench_keys WHERE n = 0")
    printf '%s\n' "SELECT id, tenant_id, scopes, name FROM crm_security.verify_api_key('$KEY');" >"$WORK/ak_verify.sql"
    printf '%s\n' "SELECT k.id, k.tenant_id, k.scopes, k.name FROM crm_security.api_key_secrets s JOIN crm_security.api_keys k ON k.id = s.key_id WHERE s.key_hash = '\\x$HASH'::bytea;" >"$WORK/ak_select.sql"
    printf '%s\n' "SELECT id FROM crm_security.verify_api_key((SELECT key FROM bench_keys WHERE n = 0));" >"$WORK/ak_same.sql"
    printf '%s\n' "SELECT id FROM crm_security.verify_api_key((SELECT key FROM bench_keys WHERE n = :client_id));" >"$WORK/ak_diff.sql"
    chmod a+r "$WORK"/ak_*.sql
}

setup_ctx() {  # setup_ctx: an isolated table, an application role, a token of the same tenant
    "$PG_BIN/psql" -X -q -d crm_bench_ak -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE bench_items (id int PRIMARY KEY, tenant_id text NOT NULL, title text);
INSERT INTO bench_items SELECT g, 'tenant ' || (g % 10), 'item ' || g FROM generate_series(1, 10000) g;
CREATE INDEX ON bench_items (tenant_id);
SELECT crm_security.enable_tenant_isolation('bench_items');
DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_ak_app') THEN CREATE ROLE bench_ak_app; END IF; END $$;
GRANT SELECT ON bench_items TO bench_ak_app;
SELECT crm_security.add_jwt_key('bench-ctx', 'HS256', 'bench-context-secret-0123456789-0123456789');
VACUUM ANALYZE bench_items;
SQL
    local tok
    tok=$("$PG_BIN/psql" -X -At -d crm_bench_ak -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'bench-user', 'tenant_id', 'tenant 0', 'exp', extract(epoch FROM now())::bigint + 86400), 'bench-context-secret-0123456789-0123456789', 'HS256', '{\"kid\": \"bench-ctx\"}')")
    printf '%s\n' "BEGIN;" "SET LOCAL ROLE bench_ak_app;" "SELECT crm_security.set_api_key_context('$KEY');" \
        "SELECT id, title FROM bench_items WHERE id = 10;" "COMMIT;" >"$WORK/ak_ctx_key.sql"
    printf '%s\n' "BEGIN;" "SET LOCAL ROLE bench_ak_app;" "SELECT crm_security.set_claim_context('$tok');" \
        "SELECT id, title FROM bench_items WHERE id = 10;" "COMMIT;" >"$WORK/ak_ctx_jwt.sql"
    chmod a+r "$WORK"/ak_ctx_*.sql
    # both see the row of their tenant (tenant 0)
    [ "$("$PG_BIN/psql" -X -At -d crm_bench_ak -f "$WORK/ak_ctx_key.sql" | grep -c '^10|')" = 1 ] || die "the API-key request does not see its row"
    [ "$("$PG_BIN/psql" -X -At -d crm_bench_ak -f "$WORK/ak_ctx_jwt.sql" | grep -c '^10|')" = 1 ] || die "the token request does not see its row"
}

measure_ctx() {  # measure_ctx: RUNS alternating pairs, 1 client each
    local i a b k=() j=() ratios=()
    for i in $(seq 1 "$RUNS"); do
        if [ $((i % 2)) = 1 ]; then a=$(tps "$WORK/ak_ctx_key.sql" 1); b=$(tps "$WORK/ak_ctx_jwt.sql" 1)
        else b=$(tps "$WORK/ak_ctx_jwt.sql" 1); a=$(tps "$WORK/ak_ctx_key.sql" 1); fi
        k+=("$a"); j+=("$b"); ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN {print a / b}')")
    done
    printf '  request with set_api_key_context %.0f TPS, with set_claim_context %.0f TPS: the API-key context at %.2fx the throughput (median of %d pairs; reported)\n' \
        "$(printf '%s\n' "${k[@]}" | median)" "$(printf '%s\n' "${j[@]}" | median)" "$(printf '%s\n' "${ratios[@]}" | median)" "$RUNS"
    # server side: the setter and the query, 5,000 times each in one transaction, alternating
    PGOPTIONS="-c bench.runs=$RUNS" "$PG_BIN/psql" -X -q -At -d crm_bench_ak -v key="$KEY" -v tok="$(sed -n "s/^SELECT crm_security.set_claim_context('\(.*\)');$/\1/p" "$WORK/ak_ctx_jwt.sql")" <<'SQL'
CREATE TEMP TABLE r (k float8, j float8);
GRANT ALL ON r TO bench_ak_app;
SELECT set_config('bench.key', :'key', false), set_config('bench.tok', :'tok', false) \g /dev/null
SET ROLE bench_ak_app;
DO $$
DECLARE t0 timestamptz; a float8; b float8; x record;
    k text := current_setting('bench.key'); t text := current_setting('bench.tok');
BEGIN
    FOR run IN 1 .. current_setting('bench.runs')::int LOOP
        t0 := clock_timestamp();
        FOR i IN 1 .. 5000 LOOP
            PERFORM crm_security.set_api_key_context(k);
            SELECT id, title INTO x FROM bench_items WHERE id = 10;
        END LOOP;
        a := extract(epoch FROM clock_timestamp() - t0);
        t0 := clock_timestamp();
        FOR i IN 1 .. 5000 LOOP
            PERFORM crm_security.set_claim_context(t);
            SELECT id, title INTO x FROM bench_items WHERE id = 10;
        END LOOP;
        b := extract(epoch FROM clock_timestamp() - t0);
        INSERT INTO r VALUES (a / 5000 * 1e6, b / 5000 * 1e6);
    END LOOP;
END $$;
SELECT format('  server side (PL/pgSQL loop, median of %s): set_api_key_context + query %s us, set_claim_context + query %s us: %sx the time',
              count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY k)::numeric, 1),
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY j)::numeric, 1),
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY k / j)::numeric, 2)) FROM r;
SQL
}

tps() {  # tps FILE CLIENTS
    "$PG_BIN/pgbench" -n -M prepared -T "$SECS" -c "$2" -j 2 -f "$1" crm_bench_ak 2>/dev/null |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

measure() {  # measure LABEL
    local i a b ratios1=() ratios2=() v=() s=() same=() diff=()
    for i in $(seq 1 "$RUNS"); do
        if [ $((i % 2)) = 1 ]; then a=$(tps "$WORK/ak_verify.sql" 1); b=$(tps "$WORK/ak_select.sql" 1)
        else b=$(tps "$WORK/ak_select.sql" 1); a=$(tps "$WORK/ak_verify.sql" 1); fi
        v+=("$a"); s+=("$b"); ratios1+=("$(awk -v a="$a" -v b="$b" 'BEGIN {print b / a}')")
    done
    for i in $(seq 1 "$RUNS"); do
        if [ $((i % 2)) = 1 ]; then a=$(tps "$WORK/ak_same.sql" 8); b=$(tps "$WORK/ak_diff.sql" 8)
        else b=$(tps "$WORK/ak_diff.sql" 8); a=$(tps "$WORK/ak_same.sql" 8); fi
        same+=("$a"); diff+=("$b"); ratios2+=("$(awk -v a="$a" -v b="$b" 'BEGIN {print a / b}')")
    done
    echo "$1:"
    printf '  1 session: verify_api_key %.0f calls/s, bare indexed SELECT %.0f/s: verify costs %.2fx the SELECT (median of %d pairs; target <= 2x)\n' \
        "$(printf '%s\n' "${v[@]}" | median)" "$(printf '%s\n' "${s[@]}" | median)" "$(printf '%s\n' "${ratios1[@]}" | median)" "$RUNS"
    printf '  8 sessions: one key %.0f/s, 8 keys %.0f/s: same key at %.2fx the throughput (median of %d pairs; target >= 0.9x)\n' \
        "$(printf '%s\n' "${same[@]}" | median)" "$(printf '%s\n' "${diff[@]}" | median)" "$(printf '%s\n' "${ratios2[@]}" | median)" "$RUNS"
}

loop_ratio() {  # server-side cost per call: 20,000 calls in a PL/pgSQL loop, RUNS alternating pairs
    "$PG_BIN/psql" -X -q -At -d crm_bench_ak <<'SQL'
CREATE TEMP TABLE r (verify float8, sel float8);
DO $$
DECLARE t0 timestamptz; a float8; b float8; x record;
    k text := (SELECT key FROM bench_keys WHERE n = 1); h bytea := (SELECT hash FROM bench_keys WHERE n = 1);
BEGIN
    FOR run IN 1 .. current_setting('bench.runs', true)::int LOOP
        t0 := clock_timestamp();
        FOR i IN 1 .. 20000 LOOP SELECT * INTO x FROM crm_security.verify_api_key(k); END LOOP;
        a := extract(epoch FROM clock_timestamp() - t0);
        t0 := clock_timestamp();
        FOR i IN 1 .. 20000 LOOP
            SELECT k.id, k.tenant_id, k.scopes, k.name INTO x FROM crm_security.api_key_secrets s
              JOIN crm_security.api_keys k ON k.id = s.key_id WHERE s.key_hash = h;
        END LOOP;
        b := extract(epoch FROM clock_timestamp() - t0);
        INSERT INTO r VALUES (a / 20000 * 1e6, b / 20000 * 1e6);
    END LOOP;
END $$;
SELECT format('  server side (PL/pgSQL loop, median of %s): verify_api_key %s us per call, the SELECT %s us: %sx',
              count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY verify)::numeric, 1),
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY sel)::numeric, 1),
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY verify / sel)::numeric, 2)) FROM r;
SQL
}

echo "pgbench -M prepared, $SECS s per run, $(nproc) cores; 1,000 keys"
export PGHOST=$PRE_HOST PGPORT=$PRE_PORT PGUSER=postgres
setup
measure "with shared_preload_libraries (use counters in shared memory)"
PGOPTIONS="-c bench.runs=$RUNS" loop_ratio
setup_ctx
measure_ctx
export PGHOST=$BENCH_HOST PGPORT=$BENCH_PORT
setup
measure "without shared_preload_libraries (use counters in the table row)"
"$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE crm_bench_ak" >/dev/null
"$PG_BIN/psql" -X -q -d postgres -c "DROP ROLE IF EXISTS bench_ak_app" >/dev/null
