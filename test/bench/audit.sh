#!/usr/bin/env bash
# Audit log benchmark: the cost of auditing against the same work unaudited, measured in
# the same run, then sealing and verification throughput.
#   - 50,000-row INSERT and UPDATE statements (best of 7: the machine may be shared),
#     audited / unaudited time
#   - pgbench single-row INSERT transactions, audited / unaudited TPS
#   - seal_audit_log() and verify_audit_log() in entries per second
set -uo pipefail
: "${PG_BIN:?}" "${CRM_WORK:?}"
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At)
DIR="$CRM_WORK/audit_bench"
mkdir -p "$DIR"
ROWS=50000
q() { "${PSQL[@]}" -c "$1"; }

q "SET client_min_messages = warning;
   DROP TABLE IF EXISTS bench_plain, bench_audited, bench_plain_tx, bench_audited_tx;
   CREATE TABLE bench_plain (id int PRIMARY KEY, name text, qty int, price numeric, note text, ts timestamptz);
   CREATE TABLE bench_audited (LIKE bench_plain INCLUDING ALL);
   CREATE TABLE bench_plain_tx (id bigserial PRIMARY KEY, client int, name text, qty int, ts timestamptz);
   CREATE TABLE bench_audited_tx (LIKE bench_plain_tx INCLUDING ALL);
   ALTER TABLE bench_audited_tx ALTER id SET DEFAULT nextval('bench_plain_tx_id_seq');
   SELECT crm_security.enable_audit('bench_audited');
   SELECT crm_security.enable_audit('bench_audited_tx');" >/dev/null
MS="CREATE FUNCTION pg_temp.ms(stmt text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN EXECUTE stmt; RETURN extract(epoch FROM clock_timestamp() - t0) * 1000; END \$\$;"

# One session; plain and audited alternate, seven rounds.  Before each timed statement an
# untimed CHECKPOINT writes out what earlier statements left dirty, so that no statement
# pays for another's writes (the cluster's max_wal_size is large enough that no
# checkpoint starts during a statement).  The machine may be shared: the figure is the
# best time of each, and the median of the seven per-round ratios is shown next to it.
"${PSQL[@]}" >"$DIR/rows.txt" <<SQL
SET client_min_messages = warning;
$MS
CREATE TEMP TABLE timings (round int, kind text, tbl text, ms float8);
DO \$\$
DECLARE t text;
BEGIN
  FOR round IN 1..7 LOOP
    FOREACH t IN ARRAY ARRAY['bench_plain', 'bench_audited'] LOOP
      EXECUTE format('TRUNCATE %I', t);
      CHECKPOINT;
      INSERT INTO timings SELECT round, 'insert', t, pg_temp.ms(format(
        'INSERT INTO %I SELECT g, ''name '' || g, g %% 100, g * 1.5, ''note'', now() FROM generate_series(1, $ROWS) g', t));
      CHECKPOINT;
      INSERT INTO timings SELECT round, 'update', t, pg_temp.ms(format('UPDATE %I SET qty = qty + 1, note = ''changed''', t));
    END LOOP;
  END LOOP;
END \$\$ LANGUAGE plpgsql;
SELECT kind,
       round(min(ms) FILTER (WHERE tbl = 'bench_plain')::numeric, 1),
       round(min(ms) FILTER (WHERE tbl = 'bench_audited')::numeric, 1),
       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY a.ms / p.ms)::numeric, 2)
          FROM timings a JOIN timings p USING (round, kind)
         WHERE a.kind = t.kind AND a.tbl = 'bench_audited' AND p.tbl = 'bench_plain')
  FROM timings t GROUP BY kind ORDER BY kind DESC;
SQL
echo "50,000-row statements (best of 7, alternating; target: audited at most 3x the time):"
while IFS='|' read -r kind plain audited median; do
    ratio=$(awk -v a="$audited" -v p="$plain" 'BEGIN { printf "%.2f", a / p }')
    printf '  %-6s unaudited %8.1f ms   audited %8.1f ms   ratio %sx (median of the rounds %sx)\n' \
        "$kind" "$plain" "$audited" "$ratio" "$median"
done <"$DIR/rows.txt"

echo "INSERT INTO bench_plain_tx (client, name, qty, ts) VALUES (:client_id, 'row', 1, now());" >"$DIR/plain.sql"
echo "INSERT INTO bench_audited_tx (client, name, qty, ts) VALUES (:client_id, 'row', 1, now());" >"$DIR/audited.sql"
# A checkpoint before each run lets both reuse recycled WAL segments: a new cluster would
# otherwise create a file per 16 MB of WAL, which penalises whoever writes more.
tps() {
    q "CHECKPOINT" >/dev/null
    "$PG_BIN/pgbench" -n -c 4 -j 2 -T 8 -f "$1" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1
}
p1=$(tps "$DIR/plain.sql"); a1=$(tps "$DIR/audited.sql")
p2=$(tps "$DIR/plain.sql"); a2=$(tps "$DIR/audited.sql")
echo "pgbench single-row INSERT transactions, 4 clients, 2 x 8 s each (target: audited at least 0.8x the TPS):"
awk -v p1="$p1" -v p2="$p2" -v a1="$a1" -v a2="$a2" 'BEGIN {
    p = (p1 + p2) / 2; a = (a1 + a2) / 2;
    printf "  unaudited %.0f tps   audited %.0f tps   ratio %.2fx\n", p, a, a / p }'

# Sealing and verification of everything written above.
unsealed=$(q "SELECT count(*) FROM crm_security.audit_log WHERE txid >= COALESCE((SELECT max(txid_hi) FROM crm_security.audit_blocks), 0)")
seal_ms=$(q "$MS SELECT pg_temp.ms('SELECT crm_security.seal_audit_log()')")
total=$(q "SELECT count(*) FROM crm_security.audit_log")
verify_ms=$(q "$MS SELECT pg_temp.ms('SELECT * FROM crm_security.verify_audit_log()')")
verify_ok=$(q "SELECT ok FROM crm_security.verify_audit_log()")
echo "sealing and verification:"
awk -v n="$unsealed" -v ms="$seal_ms" 'BEGIN { printf "  seal_audit_log: %d entries in %.0f ms = %.0f entries/s\n", n, ms, n / (ms / 1000) }'
awk -v n="$total" -v ms="$verify_ms" -v ok="$verify_ok" 'BEGIN { printf "  verify_audit_log: %d entries in %.0f ms = %.0f entries/s (ok = %s)\n", n, ms, n / (ms / 1000), ok }'

q "SET client_min_messages = warning; DROP TABLE bench_plain, bench_audited, bench_plain_tx, bench_audited_tx;" >/dev/null
