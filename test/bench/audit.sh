#!/usr/bin/env bash
# Audit log benchmark: the cost of auditing against the same work unaudited, measured in
# the same run, then sealing and verification throughput.
#   - 50,000-row INSERT and UPDATE statements, audited / unaudited time: the median of
#     nine paired rounds
#   - pgbench single-row INSERT transactions, audited / unaudited TPS: the median of five
#     paired runs
#   - seal_audit_log() and verify_audit_log() in entries per second
#   - 50,000-row INSERT with two personal columns / without, and audit_personal_data()
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

# CRM_AUDIT_BENCH=personal: only the personal-column part at the end.
if [ "${CRM_AUDIT_BENCH:-all}" != personal ]; then
# One session; plain and audited alternate, nine rounds, after the session has touched
# every shared buffer.  Before each timed statement an
# untimed CHECKPOINT writes out what earlier statements left dirty, so that no statement
# pays for another's writes (the cluster's max_wal_size is large enough that no
# checkpoint starts during a statement).  The machine may be shared and its speed drifts
# from minute to minute, so the figure is the median of the per-round ratios (each the
# audited time over the unaudited time measured just before it); every round's ratio and
# the ratio of the best times are printed too.
"${PSQL[@]}" >"$DIR/rows.txt" <<SQL
SET client_min_messages = warning;
$MS
-- Each process maps shared memory page by page on first use: let this one map every
-- buffer before measuring, as a long-lived connection has (see bench.sh).
CREATE TABLE bench_warm (pad text);
INSERT INTO bench_warm SELECT repeat('x', 200) FROM generate_series(1, 1500000);
DROP TABLE bench_warm;
CREATE TEMP TABLE timings (round int, kind text, tbl text, ms float8);
DO \$\$
DECLARE t text;
BEGIN
  FOR round IN 1..9 LOOP
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
WITH r AS (
  SELECT kind, round, a.ms / p.ms AS ratio FROM timings a JOIN timings p USING (round, kind)
   WHERE a.tbl = 'bench_audited' AND p.tbl = 'bench_plain')
SELECT kind,
       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ratio)::numeric, 2) FROM r WHERE r.kind = t.kind),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE tbl = 'bench_plain')::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE tbl = 'bench_audited')::numeric, 1),
       round((min(ms) FILTER (WHERE tbl = 'bench_audited') / min(ms) FILTER (WHERE tbl = 'bench_plain'))::numeric, 2),
       (SELECT string_agg(round(ratio::numeric, 2)::text, ' ' ORDER BY round) FROM r WHERE r.kind = t.kind)
  FROM timings t GROUP BY kind ORDER BY kind DESC;
SQL
echo "50,000-row statements, 9 alternating rounds (target: audited at most 3x the time):"
while IFS='|' read -r kind median plain audited best rounds; do
    printf '  %-6s ratio %sx (median of the per-round ratios; unaudited %s ms, audited %s ms, medians)\n' \
        "$kind" "$median" "$plain" "$audited"
    printf '         per round: %s; ratio of the best times %sx\n' "$rounds" "$best"
done <"$DIR/rows.txt"

echo "INSERT INTO bench_plain_tx (client, name, qty, ts) VALUES (:client_id, 'row', 1, now());" >"$DIR/plain.sql"
echo "INSERT INTO bench_audited_tx (client, name, qty, ts) VALUES (:client_id, 'row', 1, now());" >"$DIR/audited.sql"
# A checkpoint before each run lets both reuse recycled WAL segments: a new cluster would
# otherwise create a file per 16 MB of WAL, which penalises whoever writes more.
tps() {
    q "CHECKPOINT" >/dev/null
    "$PG_BIN/pgbench" -n -c 4 -j 2 -T 5 -f "$1" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1
}
# Five pairs of 5 s runs, plain then audited; the median of the per-pair ratios.
pairs=""
for i in 1 2 3 4 5; do
    p=$(tps "$DIR/plain.sql"); a=$(tps "$DIR/audited.sql")
    pairs="$pairs $p:$a"
done
echo "pgbench single-row INSERT transactions, 4 clients, 5 pairs of 5 s runs (target: audited at least 0.8x the TPS):"
echo "$pairs" | tr ' ' '\n' | awk -F: 'NF == 2 { r[n++] = $2 / $1; ps += $1; as += $2 }
    END {
        for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
        printf "  ratio %.2fx (median of the pairs; unaudited %.0f tps, audited %.0f tps on average)\n", r[int(n / 2)], ps / n, as / n
        printf "         per pair, sorted:"; for (i = 0; i < n; i++) printf " %.2f", r[i]; printf "\n" }'

# Sealing and verification of everything written above.
unsealed=$(q "SELECT count(*) FROM crm_security.audit_log WHERE txid >= COALESCE((SELECT max(txid_hi) FROM crm_security.audit_blocks), 0)")
seal_ms=$(q "$MS SELECT pg_temp.ms('SELECT crm_security.seal_audit_log()')")
total=$(q "SELECT count(*) FROM crm_security.audit_log")
verify_ms=$(q "$MS SELECT pg_temp.ms('SELECT * FROM crm_security.verify_audit_log()')")
verify_ok=$(q "SELECT ok FROM crm_security.verify_audit_log()")
echo "sealing and verification:"
awk -v n="$unsealed" -v ms="$seal_ms" 'BEGIN { printf "  seal_audit_log: %d entries in %.0f ms = %.0f entries/s\n", n, ms, n / (ms / 1000) }'
awk -v n="$total" -v ms="$verify_ms" -v ok="$verify_ok" 'BEGIN { printf "  verify_audit_log: %d entries in %.0f ms = %.0f entries/s (ok = %s)\n", n, ms, n / (ms / 1000), ok }'

fi

# Personal columns (docs/privacy.md): the same 50,000-row INSERT into a table audited with
# two personal columns against the same table audited without, five alternating rounds,
# the median of the per-round ratios: with a new data subject per row (the primary key: a
# data key is created for each row, new ids every round), with one existing subject per row
# (the same ids every round: their keys exist), and with 100 subjects (a subject column);
# then a 14-column CRM contacts table, the tenant in its key, against itself unaudited for
# personal columns, with existing and with new subjects.  Wall-clock time and the backend's CPU time (user + system, from /proc/self/stat: the
# machine is shared, and CPU time moves less with the load of others).  Then
# audit_personal_data() per entry.
TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
"${PSQL[@]}" >"$DIR/personal.txt" <<SQL
SET client_min_messages = warning;
$MS
CREATE FUNCTION pg_temp.cpu() RETURNS float8 LANGUAGE sql AS \$\$
  SELECT (split_part(s, ' ', 12)::float8 + split_part(s, ' ', 13)::float8) / $TCK
    FROM (SELECT split_part(pg_read_file('/proc/self/stat'), ') ', 2) AS s) x \$\$;
CREATE TABLE bench_np (id int PRIMARY KEY, name text, email text, grp int, note text, ts timestamptz);
CREATE TABLE bench_pk (LIKE bench_np INCLUDING ALL);
CREATE TABLE bench_pkx (LIKE bench_np INCLUDING ALL);
CREATE TABLE bench_grp (LIKE bench_np INCLUDING ALL);
SELECT crm_security.enable_audit('bench_np');
SELECT crm_security.enable_audit('bench_pk', NULL, ARRAY['name', 'email']);
SELECT crm_security.enable_audit('bench_pkx', NULL, ARRAY['name', 'email']);
SELECT crm_security.enable_audit('bench_grp', NULL, ARRAY['name', 'email'], 'grp');
-- The same, written with crm_security.audit_envelope_format = crm1 (one envelope per value;
-- crm2, one per image, is the default).
CREATE TABLE bench_grp1 (LIKE bench_np INCLUDING ALL);
SELECT crm_security.enable_audit('bench_grp1', NULL, ARRAY['name', 'email'], 'grp');
-- A table with six personal columns (100 subjects), in both formats, against itself
-- audited without personal columns.
CREATE TABLE bench_wnp (id int PRIMARY KEY, grp int, first_name text, last_name text, email text, phone text,
  street text, city text, note text, ts timestamptz);
CREATE TABLE bench_w (LIKE bench_wnp INCLUDING ALL);
CREATE TABLE bench_w1 (LIKE bench_wnp INCLUDING ALL);
SELECT crm_security.enable_audit('bench_wnp');
SELECT crm_security.enable_audit('bench_w', NULL, ARRAY['first_name', 'last_name', 'email', 'phone', 'street', 'city'], 'grp');
SELECT crm_security.enable_audit('bench_w1', NULL, ARRAY['first_name', 'last_name', 'email', 'phone', 'street', 'city'], 'grp');
-- A CRM contacts table of 14 columns (the tenant in the key), with two personal columns
-- (email, phone) and the contact as the subject (the primary key), against the same table
-- audited without personal columns: with the contacts' keys made before (updates, re-imports)
-- and with a new contact per row.
CREATE TABLE bench_ct_np (tenant_id text, id bigint, first_name text, last_name text, email text,
  phone text, company text, title text, owner text, status text, source text, notes text,
  created_at timestamptz, updated_at timestamptz, PRIMARY KEY (tenant_id, id));
CREATE TABLE bench_ct_pkx (LIKE bench_ct_np INCLUDING ALL);
CREATE TABLE bench_ct_pk (LIKE bench_ct_np INCLUDING ALL);
SELECT crm_security.enable_audit('bench_ct_np');
SELECT crm_security.enable_audit('bench_ct_pkx', NULL, ARRAY['email', 'phone']);
SELECT crm_security.enable_audit('bench_ct_pk', NULL, ARRAY['email', 'phone']);
CREATE TABLE bench_ct_pkx1 (LIKE bench_ct_np INCLUDING ALL);
SELECT crm_security.enable_audit('bench_ct_pkx1', NULL, ARRAY['email', 'phone']);
-- The keys of bench_pkx's subjects exist before the rounds.
-- Every table gets ids of the same width (7 digits), so that rows and entries compare.
INSERT INTO bench_pkx SELECT 1000000 + g, 'x', 'x', 0, 'x', now() FROM generate_series(1, $ROWS) g;
INSERT INTO bench_ct_pkx (tenant_id, id) SELECT 't' || g % 20, 1000000 + g FROM generate_series(1, $ROWS) g;
INSERT INTO bench_ct_pkx1 (tenant_id, id) SELECT 't' || g % 20, 1000000 + g FROM generate_series(1, $ROWS) g;
-- Let this session map every shared buffer before measuring (as in the first part): the
-- table measured first in a round would otherwise pay for the pages it maps first.
CREATE TABLE bench_warm (pad text);
INSERT INTO bench_warm SELECT repeat('x', 200) FROM generate_series(1, 1500000);
DROP TABLE bench_warm;
CREATE TEMP TABLE ptimings (round int, tbl text, ms float8, cpu float8);
DO \$\$
DECLARE t text; c0 float8; m float8;
BEGIN
  FOR round IN 1..5 LOOP
    FOREACH t IN ARRAY ARRAY['bench_np', 'bench_pk', 'bench_pkx', 'bench_grp', 'bench_grp1', 'bench_ct_np', 'bench_ct_pkx', 'bench_ct_pk', 'bench_ct_pkx1', 'bench_wnp', 'bench_w', 'bench_w1'] LOOP
      EXECUTE format('TRUNCATE %I', t);
      PERFORM set_config('crm_security.audit_envelope_format', CASE WHEN t LIKE '%1' THEN 'crm1' ELSE 'crm2' END, false);
      CHECKPOINT;
      c0 := pg_temp.cpu();
      IF t LIKE 'bench_ct%' THEN
        m := pg_temp.ms(format(
          'INSERT INTO %I SELECT ''t'' || g %% 20, g + %s, ''First'' || g, ''Last'' || g, ''contact'' || g || ''@example.org'',
                  ''+1 555 '' || lpad(g::text, 7, ''0''), ''Company '' || g %% 997, ''Head of Sales'', ''owner'' || g %% 50,
                  ''active'', ''web'', ''met at the trade fair; call back in March'', now(), now()
             FROM generate_series(1, $ROWS) g',
          t, CASE t WHEN 'bench_ct_pk' THEN (round + 1) * 1000000 ELSE 1000000 END));
      ELSIF t LIKE 'bench_w%' THEN
        m := pg_temp.ms(format(
          'INSERT INTO %I SELECT 1000000 + g, g %% 100, ''First'' || g, ''Last'' || g, ''e'' || g || ''@example.org'',
                  ''+1 555 '' || g, g || '' Main Street'', ''Springfield'', ''note'', now() FROM generate_series(1, $ROWS) g', t));
      ELSE
        m := pg_temp.ms(format(
          'INSERT INTO %I SELECT g + %s, ''name '' || g, ''e'' || g || ''@example.org'', g %% 100, ''note'', now() FROM generate_series(1, $ROWS) g',
          t, CASE t WHEN 'bench_pk' THEN (round + 1) * 1000000 ELSE 1000000 END));
      END IF;
      INSERT INTO ptimings VALUES (round, t, m, pg_temp.cpu() - c0);
      -- A transaction each, as an import would be: no key is cached from one to the next.
      COMMIT;
    END LOOP;
  END LOOP;
END \$\$ LANGUAGE plpgsql;
SELECT t.tbl,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t.ms / p.ms)::numeric, 2),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY p.ms)::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t.ms)::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t.cpu / nullif(p.cpu, 0))::numeric, 2),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY p.cpu * 1000)::numeric, 0),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t.cpu * 1000)::numeric, 0)
  FROM ptimings t JOIN ptimings p ON p.round = t.round
   AND p.tbl = CASE WHEN t.tbl LIKE 'bench_ct%' THEN 'bench_ct_np' WHEN t.tbl LIKE 'bench_w%' THEN 'bench_wnp' ELSE 'bench_np' END
 WHERE t.tbl NOT IN ('bench_np', 'bench_ct_np', 'bench_wnp') GROUP BY t.tbl
 ORDER BY CASE WHEN t.tbl LIKE 'bench_ct%' THEN 1 WHEN t.tbl LIKE 'bench_w%' THEN 2 ELSE 0 END, t.tbl DESC;
SQL
echo "50,000-row INSERT, two personal columns against none, 5 alternating rounds (target: at most 1.3x);"
echo "a 6-column table (name and email personal), a 14-column contacts table (email and phone), then a"
echo "10-column table with six personal columns; crm2 envelopes (the default) unless crm1 is named:"
while IFS='|' read -r tbl ratio plain personal cratio cplain cpersonal; do
    case $tbl in
        bench_pk) what="a new subject per row";; bench_pkx) what="an existing subject per row";;
        bench_grp) what="100 subjects";; bench_grp1) what="100 subjects, crm1";;
        bench_ct_pkx) what="contacts, existing subjects";; bench_ct_pkx1) what="contacts, existing, crm1";;
        bench_w) what="six personal columns";; bench_w1) what="six personal columns, crm1";;
        *) what="contacts, a new subject each";;
    esac
    printf '  %-30s time %sx (without personal columns %s ms, with %s ms), backend CPU %sx (%s ms, %s ms); medians\n' \
        "$what" "$ratio" "$plain" "$personal" "$cratio" "$cplain" "$cpersonal"
done < <(grep '^bench_' "$DIR/personal.txt")
# Per entry, in microseconds: the newest n entries of bench_grp read one by one (their ids
# chosen first, outside the timing).
q "CREATE TABLE bench_ids AS SELECT id FROM crm_security.audit_log WHERE table_name = 'public.bench_grp' ORDER BY id DESC LIMIT 1000" >/dev/null
read_us() { q "$MS SELECT pg_temp.ms('SELECT count(crm_security.audit_personal_data(id)) FROM (SELECT id FROM bench_ids ORDER BY id DESC LIMIT $1) s') * 1000 / $1"; }
read_ms=$(read_us 50)
# A seal summarizes the BRIN index's new page ranges: then a lookup reads one range.  It
# skips that while a VACUUM or an ANALYZE of audit_log runs (they hold the lock it needs), as
# autovacuum may after millions of inserts: wait for them to end first.
for _ in $(seq 1 600); do
    [ "$(q "SELECT count(*) FROM pg_locks WHERE relation = 'crm_security.audit_log'::regclass
              AND mode = 'ShareUpdateExclusiveLock' AND granted AND pid <> pg_backend_pid()")" = 0 ] && break
    sleep 0.5
done
seal_ms=$(q "$MS SELECT pg_temp.ms('SELECT crm_security.seal_audit_log()')")
# Should an autovacuum have taken the lock in between (the seal then leaves the ranges to
# it), summarize what is left, waiting for the lock: the figure is that of a summarized log.
q "SELECT brin_summarize_new_values('crm_security.audit_log_txid_id_brin')" >/dev/null
read_sealed_ms=$(read_us 1000)
q "CREATE INDEX bench_audit_log_id ON crm_security.audit_log (id)" >/dev/null
read_ix_ms=$(read_us 1000)
q "DROP INDEX crm_security.bench_audit_log_id" >/dev/null
awk -v a="$read_ms" -v s="$read_sealed_ms" -v b="$read_ix_ms" -v sm="$seal_ms" \
    'BEGIN { printf "  audit_personal_data per entry: %.0f us before a seal (50 entries), %.0f us after one (1,000 entries; the seal took %.0f ms), %.0f us with a B-tree index on audit_log.id\n", a, s, sm, b }'
q "SET client_min_messages = warning; DROP TABLE bench_np, bench_pk, bench_pkx, bench_grp, bench_grp1, bench_ct_np, bench_ct_pkx, bench_ct_pk, bench_ct_pkx1, bench_wnp, bench_w, bench_w1, bench_ids;" >/dev/null

q "SET client_min_messages = warning; DROP TABLE bench_plain, bench_audited, bench_plain_tx, bench_audited_tx;" >/dev/null
