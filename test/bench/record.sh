#!/usr/bin/env bash
# Record-level access against its hand-written baseline, in the same run, alternating pairs:
# RECORD_BENCH_ROWS (default 1,000,000) records of one tenant, 11,111 owners in a 5-level
# hierarchy (branching 10); a level-2 manager's count and "newest 20" through
# enable_record_access (application role, claim context, no WHERE) against the same query on
# a copy under tenant isolation only, with an explicit WHERE owner_id = ANY (<the same
# owners>) as a constant.  And the cost of computing accessible_owner_ids for the VP.
set -euo pipefail
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "${PGDATABASE:-crm_bench}")
SECRET=bench-record-secret-0123456789abcdef0123456789
ROWS=${RECORD_BENCH_ROWS:-1000000}
RUNS=${RECORD_BENCH_RUNS:-30}

"${PSQL[@]}" <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_deals, bench_deals_iso;
DROP ROLE IF EXISTS bench_rec_app;
CREATE ROLE bench_rec_app LOGIN;
SELECT crm_security.add_jwt_key('bench_record', 'HS256', '$SECRET')
 WHERE NOT EXISTS (SELECT 1 FROM crm_security.jwt_keys WHERE kid = 'bench_record');
CREATE TABLE bench_deals (id bigint NOT NULL, tenant_id text NOT NULL, owner_id text NOT NULL,
                          created_at timestamptz NOT NULL, amount numeric NOT NULL);
INSERT INTO bench_deals
SELECT i, 't1', 'u' || ((hashint4(i::int)::bigint + 2147483648) % 11111),
       timestamptz '2026-01-01' + i * interval '1 second', i % 997
  FROM generate_series(1, $ROWS) i;
-- the primary key of a multi-tenant table (and the one Citus requires): (tenant, id)
ALTER TABLE bench_deals ADD PRIMARY KEY (tenant_id, id);
CREATE TABLE bench_deals_iso AS SELECT * FROM bench_deals ORDER BY id;
ALTER TABLE bench_deals_iso ADD PRIMARY KEY (tenant_id, id);
CREATE INDEX ON bench_deals (tenant_id, owner_id, created_at);
CREATE INDEX ON bench_deals_iso (tenant_id, owner_id, created_at);
CREATE INDEX ON bench_deals (tenant_id, created_at);
CREATE INDEX ON bench_deals_iso (tenant_id, created_at);
VACUUM ANALYZE bench_deals;
VACUUM ANALYZE bench_deals_iso;
SELECT crm_security.enable_tenant_isolation('bench_deals');
SELECT crm_security.enable_tenant_isolation('bench_deals_iso');
SELECT crm_security.enable_record_access('bench_deals', 'owner_id');
GRANT SELECT ON bench_deals, bench_deals_iso TO bench_rec_app;
-- u0 the VP; u1..u10 level 2; ... u1111..u11110 level 5 (bulk load of the hierarchy)
DELETE FROM crm_security.reports_to WHERE tenant_id = 't1';
INSERT INTO crm_security.reports_to (tenant_id, user_id, manager_id)
SELECT 't1', 'u' || g, 'u' || ((g - 1) / 10) FROM generate_series(1, 11110) g;

CREATE OR REPLACE FUNCTION bench_rec_pair(base text, test text, n int,
                                          OUT base_ms float8, OUT test_ms float8, OUT ratio float8)
LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; b float8; t float8; bs float8[] := '{}'; ts float8[] := '{}'; rs float8[] := '{}'; r record;
BEGIN
    FOR i IN 1 .. n LOOP
        IF i % 2 = 0 THEN
            t0 := clock_timestamp(); EXECUTE base INTO r; b := extract(epoch FROM clock_timestamp() - t0);
            t0 := clock_timestamp(); EXECUTE test INTO r; t := extract(epoch FROM clock_timestamp() - t0);
        ELSE
            t0 := clock_timestamp(); EXECUTE test INTO r; t := extract(epoch FROM clock_timestamp() - t0);
            t0 := clock_timestamp(); EXECUTE base INTO r; b := extract(epoch FROM clock_timestamp() - t0);
        END IF;
        bs := bs || b * 1000; ts := ts || t * 1000; rs := rs || t / b;
    END LOOP;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO base_ms FROM unnest(bs) x;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO test_ms FROM unnest(ts) x;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO ratio FROM unnest(rs) x;
END \$\$;
GRANT EXECUTE ON FUNCTION bench_rec_pair(text, text, int) TO bench_rec_app;
SQL

token() {  # token USER
    "${PSQL[@]}" -At -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', '$1', 'tenant_id', 't1',
        'exp', extract(epoch FROM now())::bigint + 3600), '$SECRET', 'HS256')"
}
TOK=$(token u1)
OWNERS=$("${PSQL[@]}" -At -c "SELECT (crm_security._record_access_sets('t1', 'u1')).read_owners::text")
COUNT_BASE="SELECT count(*), sum(amount) FROM bench_deals_iso WHERE owner_id = ANY ('$OWNERS'::text[])"
COUNT_TEST="SELECT count(*), sum(amount) FROM bench_deals"
TOP_BASE="SELECT id, created_at FROM bench_deals_iso WHERE owner_id = ANY ('$OWNERS'::text[]) ORDER BY created_at DESC LIMIT 20"
TOP_TEST="SELECT id, created_at FROM bench_deals ORDER BY created_at DESC LIMIT 20"

echo "$ROWS records of one tenant, 11,111 owners in 5 levels (branching 10); a level-2 manager ($(echo "$OWNERS" | tr -cd ',' | wc -c | awk '{print $1 + 1}') owners); $RUNS paired runs"
echo
echo "EXPLAIN, record access (application role, claim context, no WHERE):"
"${PSQL[@]}" -U bench_rec_app <<SQL | sed 's/^/  /' | cut -c1-160
BEGIN;
SELECT crm_security.set_claim_context('$TOK') IS NOT NULL AS context \gset
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $COUNT_TEST;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $TOP_TEST;
COMMIT;
SQL
echo "EXPLAIN, baseline (tenant isolation only, explicit WHERE owner_id = ANY (constant)):"
"${PSQL[@]}" -U bench_rec_app <<SQL | sed 's/^/  /' | cut -c1-160
BEGIN;
SELECT crm_security.set_claim_context('$TOK') IS NOT NULL AS context \gset
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $COUNT_BASE;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $TOP_BASE;
COMMIT;
SQL

same=$("${PSQL[@]}" -U bench_rec_app -At <<SQL
BEGIN;
SELECT crm_security.set_claim_context('$TOK') IS NOT NULL \g /dev/null
SELECT (SELECT array_agg(x ORDER BY x)::text FROM ($COUNT_TEST) x) = (SELECT array_agg(x ORDER BY x)::text FROM ($COUNT_BASE) x)
   AND (SELECT array_agg(x)::text FROM ($TOP_TEST) x) = (SELECT array_agg(x)::text FROM ($TOP_BASE) x);
COMMIT;
SQL
)
echo "same answers: $same"
[ "$same" = "t" ] || { echo "record access gave a different answer than the baseline"; exit 1; }

"${PSQL[@]}" -U bench_rec_app -At -F ' ' <<SQL | awk '{ printf "  %s: baseline %.3f ms, record access %.3f ms, median paired ratio %.2f (target <= 1.5)\n", $1, $2, $3, $4 }'
BEGIN;
SELECT crm_security.set_claim_context('$TOK') IS NOT NULL \g /dev/null
SELECT 'count', * FROM bench_rec_pair(\$q\$$COUNT_BASE\$q\$, \$q\$$COUNT_TEST\$q\$, $RUNS);
SELECT 'newest_20', * FROM bench_rec_pair(\$q\$$TOP_BASE\$q\$, \$q\$$TOP_TEST\$q\$, $RUNS * 5);
COMMIT;
SQL

echo
echo "accessible_owner_ids for the VP (11,111 users), computed once per transaction:"
"${PSQL[@]}" -At -F ' ' <<'SQL' | awk '{ printf "  %s owners: median %.2f ms, min %.2f ms over 20 computations\n", $1, $2, $3 }'
DO $$ BEGIN END $$;
CREATE TEMP TABLE vp_t (ms float8, n int);
DO $$
DECLARE t0 timestamptz; n int;
BEGIN
    FOR i IN 1 .. 20 LOOP
        t0 := clock_timestamp();
        SELECT array_length((crm_security._record_access_sets('t1', 'u0')).read_owners, 1) INTO n;
        INSERT INTO vp_t VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000, n);
    END LOOP;
END $$;
SELECT max(n), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), min(ms) FROM vp_t;
SQL

"${PSQL[@]}" -c "DROP TABLE bench_deals, bench_deals_iso" -c "DROP FUNCTION bench_rec_pair(text, text, int)" \
    -c "REVOKE ALL ON SCHEMA public FROM bench_rec_app" -c "DROP ROLE bench_rec_app" >/dev/null 2>&1 || true
