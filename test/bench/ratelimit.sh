#!/usr/bin/env bash
# Rate limits and signed requests against their baselines, measured in the same run, on a
# cluster started here with shared_preload_libraries = 'crm_security':
#  1. rate_limit() decisions per second on one key, 1 and 8 sessions (pgbench, prepared),
#     against the usual database limiter: a PL/pgSQL fixed-window counter, INSERT ... ON
#     CONFLICT DO UPDATE on an unlogged table; target at least 5x with 8 sessions;
#  2. verify_request() per call against a bare pgcrypto hmac() of the same canonical text,
#     server side (PL/pgSQL loop of 20,000 calls, alternating); target at most 2x.
set -euo pipefail
: "${PG_BIN:?}" "${CRM_ROOT:?}"
source "$CRM_ROOT/test/lib.sh"
SECS=${RL_BENCH_SECONDS:-5}
RUNS=${RL_BENCH_RUNS:-3}
WORK=${CRM_WORK:-$(mktemp -d)}
DIR=$WORK/ratelimit_bench_pg

rm -rf "$DIR"
start_cluster "$DIR" "shared_preload_libraries = 'crm_security'
max_parallel_workers_per_gather = 0" >/dev/null
trap 'stop_cluster "$DIR"' EXIT
P=("$PG_BIN/psql" -X -q -At)
"${P[@]}" -d postgres -c "CREATE DATABASE crm_bench_rl" >/dev/null
"${P[@]}" -d crm_bench_rl -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION crm_security;
CREATE EXTENSION pgcrypto;
CREATE TABLE bench_hot AS SELECT 'hot'::text AS key FROM generate_series(1, 100);
CREATE UNLOGGED TABLE rl_counter (key text PRIMARY KEY, window_start bigint NOT NULL, n int NOT NULL);
CREATE FUNCTION rl_table(k text, max_requests int, per_seconds int) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE w bigint := floor(extract(epoch FROM clock_timestamp()) / per_seconds); c int;
BEGIN
    INSERT INTO rl_counter AS r VALUES (k, w, 1)
    ON CONFLICT (key) DO UPDATE
       SET n = CASE WHEN r.window_start = w THEN r.n + 1 ELSE 1 END, window_start = w
    RETURNING r.n INTO c;
    RETURN c <= max_requests;
END $$;
SQL
# One decision per statement (what an application does per request; the client round trip
# dominates), and 100 per statement (the decisions themselves).
echo "SELECT allowed FROM crm_security.rate_limit('hot', 1000000000, '1 second');" >"$WORK/rl_shm.sql"
echo "SELECT rl_table('hot', 1000000000, 1);" >"$WORK/rl_table.sql"
echo "SELECT true;" >"$WORK/rl_bare.sql"
echo "SELECT count(*) FROM bench_hot h, crm_security.rate_limit(h.key, 1000000000, '1 second') r WHERE r.allowed;" >"$WORK/rl_shm100.sql"
echo "SELECT count(*) FROM bench_hot h WHERE rl_table(h.key, 1000000000, 1);" >"$WORK/rl_table100.sql"
chmod a+r "$WORK"/rl_*.sql

tps() { "$PG_BIN/pgbench" -n -M prepared -T "$SECS" -c "$2" -j 2 -f "$1" crm_bench_rl 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

for per in 1 100; do
  for c in 1 8; do
    s=() t=() r=()
    suffix=$([ $per = 100 ] && echo 100 || true)
    for i in $(seq 1 "$RUNS"); do
        if [ $((i % 2)) = 1 ]; then a=$(tps "$WORK/rl_shm$suffix.sql" $c); b=$(tps "$WORK/rl_table$suffix.sql" $c)
        else b=$(tps "$WORK/rl_table$suffix.sql" $c); a=$(tps "$WORK/rl_shm$suffix.sql" $c); fi
        s+=("$(awk -v a="$a" -v p=$per 'BEGIN {print a * p}')"); t+=("$(awk -v b="$b" -v p=$per 'BEGIN {print b * p}')")
        r+=("$(awk -v a="$a" -v b="$b" 'BEGIN {print a / b}')")
    done
    printf '  rate_limit, %d per statement, %d session(s) on one key: %.0f decisions/s, table counter %.0f/s: %.2fx (median of %d pairs%s)\n' \
        "$per" "$c" "$(printf '%s\n' "${s[@]}" | median)" "$(printf '%s\n' "${t[@]}" | median)" "$(printf '%s\n' "${r[@]}" | median)" "$RUNS" \
        "$([ $c = 8 ] && echo '; target >= 5x' || true)"
    if [ $per = 1 ]; then
        # The ceiling of one decision per statement: a statement that does nothing.
        bare=$(tps "$WORK/rl_bare.sql" $c)
        printf '    (a bare prepared SELECT true: %.0f statements/s with %d session(s); one rate_limit() per statement runs at %.2f of it)\n' \
            "$bare" "$c" "$(awk -v a="$(printf '%s\n' "${s[@]}" | median)" -v b="$bare" 'BEGIN {print (b > 0 ? a / b : 0)}')"
    fi
  done
done

"${P[@]}" -d crm_bench_rl -v runs="$RUNS" <<'SQL'
SET bench.runs = :'runs';
CREATE TEMP TABLE r (verify float8, hmac float8);
DO $$
DECLARE t0 timestamptz; a float8; b float8; ok boolean; h bytea;
    secret text := 'whsec_bench_0123456789abcdef0123';
    body bytea := convert_to(repeat('{"deal":42,"stage":"won"}', 8), 'UTF8');
    ts bigint := floor(extract(epoch FROM now()));
    sig text; canon bytea;
BEGIN
    sig := crm_security.sign_request(secret, 'POST', '/hooks/deal?tenant=acme', body, ts);
    canon := convert_to('crm-req-v1' || chr(10) || '4:POST' || chr(10) || '23:/hooks/deal?tenant=acme' || chr(10)
                        || ts || chr(10) || '0:' || chr(10) || encode(digest(body, 'sha256'), 'hex'), 'UTF8');
    IF 'v1=' || encode(hmac(canon, convert_to(secret, 'UTF8'), 'sha256'), 'hex') IS DISTINCT FROM sig THEN
        RAISE EXCEPTION 'the baseline does not compute the same signature';
    END IF;
    FOR run IN 1 .. current_setting('bench.runs')::int LOOP
        t0 := clock_timestamp();
        FOR i IN 1 .. 20000 LOOP ok := crm_security.verify_request(secret, sig, 'POST', '/hooks/deal?tenant=acme', body, ts); END LOOP;
        a := extract(epoch FROM clock_timestamp() - t0) / 20000;
        t0 := clock_timestamp();
        FOR i IN 1 .. 20000 LOOP h := hmac(canon, convert_to(secret, 'UTF8'), 'sha256'); END LOOP;
        b := extract(epoch FROM clock_timestamp() - t0) / 20000;
        INSERT INTO r VALUES (a, b);
    END LOOP;
END $$;
SELECT format('  verify_request %s us per call, pgcrypto hmac() of the same canonical text %s us: %sx (median of %s; target <= 2x)',
              round((percentile_cont(0.5) WITHIN GROUP (ORDER BY verify) * 1e6)::numeric, 2),
              round((percentile_cont(0.5) WITHIN GROUP (ORDER BY hmac) * 1e6)::numeric, 2),
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY verify / hmac)::numeric, 2), count(*)) FROM r;
SQL
