#!/usr/bin/env bash
# Tenant isolation and permission checks against their hand-written baselines, measured in
# the same run:
#  1. a tenant query on 1,000,000 rows of 1,000 tenants through enable_tenant_isolation
#     (application role, claim context, no WHERE) against the same query with an explicit
#     WHERE tenant_id = ... and row level security bypassed;
#  2. has_permission() over 50 granted permissions against "= ANY (array)", row by row.
set -euo pipefail
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "${PGDATABASE:-crm_bench}")
SECRET=bench-authz-secret-0123456789abcdef0123456789
ROUNDS=${AUTHZ_BENCH_ROUNDS:-3}
TENANTS=${AUTHZ_BENCH_TENANTS:-10}
RUNS=${AUTHZ_BENCH_RUNS:-100}

"${PSQL[@]}" <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_contacts;
DROP ROLE IF EXISTS bench_app;
CREATE ROLE bench_app LOGIN;
SELECT crm_security.add_jwt_key('bench_authz', 'HS256', '$SECRET')
 WHERE NOT EXISTS (SELECT 1 FROM crm_security.jwt_keys WHERE kid = 'bench_authz');
-- 1,000,000 contacts of 1,000 tenants, in random order (as rows arrive in a shared table)
CREATE TABLE bench_contacts (
    id bigint PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    amount numeric NOT NULL
);
INSERT INTO bench_contacts
SELECT i, ('00000000-0000-0000-0000-' || lpad(((hashint4(i::int)::bigint + 2147483648) % 1000)::text, 12, '0'))::uuid,
       'contact ' || i, (i % 997)
  FROM generate_series(1, 1000000) i;
CREATE INDEX ON bench_contacts (tenant_id);
VACUUM ANALYZE bench_contacts;
SELECT crm_security.enable_tenant_isolation('bench_contacts');
GRANT SELECT ON bench_contacts TO bench_app;

-- Median milliseconds of n runs of a query (planned each time, as an application's would be).
CREATE OR REPLACE FUNCTION bench_ms(q text, n int) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; ms float8[] := '{}'; r record;
BEGIN
    FOR i IN 1 .. n LOOP
        t0 := clock_timestamp();
        EXECUTE q INTO r;
        ms := ms || (extract(epoch FROM clock_timestamp() - t0) * 1000)::float8;
    END LOOP;
    RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x);
END \$\$;
GRANT EXECUTE ON FUNCTION bench_ms(text, int) TO bench_app;
SQL

token() {  # token TENANT_UUID
    "${PSQL[@]}" -At -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'bench', 'tenant_id', '$1',
        'exp', extract(epoch FROM now())::bigint + 3600), '$SECRET', 'HS256')"
}

echo "1,000,000 rows, 1,000 tenants; median of $RUNS runs per tenant, $TENANTS tenants, $ROUNDS rounds"
echo
echo "EXPLAIN of the isolated query (application role, claim context, no WHERE):"
T7=00000000-0000-0000-0000-000000000007
"${PSQL[@]}" -U bench_app <<SQL
BEGIN;
SELECT crm_security.set_claim_context('$(token $T7)') IS NOT NULL AS context \gset
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*), sum(amount) FROM bench_contacts;
COMMIT;
SQL
echo "EXPLAIN of the baseline (explicit WHERE, row level security bypassed):"
"${PSQL[@]}" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
    SELECT count(*), sum(amount) FROM bench_contacts WHERE tenant_id = '$T7'"

# Same answers?
iso=$("${PSQL[@]}" -U bench_app -At <<SQL
BEGIN;
SELECT crm_security.set_claim_context('$(token $T7)') IS NOT NULL \g /dev/null
SELECT count(*) || '/' || sum(amount) FROM bench_contacts;
COMMIT;
SQL
)
base=$("${PSQL[@]}" -At -c "SELECT count(*) || '/' || sum(amount) FROM bench_contacts WHERE tenant_id = '$T7'")
echo "rows/sum, isolated: $iso; baseline: $base"
[ "$iso" = "$base" ] || { echo "the isolated query gave a different answer"; exit 1; }

run_base() {
    "${PSQL[@]}" -At -c "SELECT bench_ms(format('SELECT count(*), sum(amount) FROM bench_contacts WHERE tenant_id = %L', '$1'), $RUNS)"
}
run_iso() {
    "${PSQL[@]}" -U bench_app -At <<SQL
BEGIN;
SELECT crm_security.set_claim_context('$(token "$1")') IS NOT NULL \g /dev/null
SELECT bench_ms('SELECT count(*), sum(amount) FROM bench_contacts', $RUNS);
COMMIT;
SQL
}
total_iso=0 total_base=0
for round in $(seq 1 "$ROUNDS"); do
    for t in $(seq 1 "$TENANTS"); do
        tenant=$(printf '00000000-0000-0000-0000-%012d' $(( (t * 97 + round) % 1000 )))
        # alternate which runs first, so that neither always finds the pages cached
        if (( (round + t) % 2 )); then
            b=$(run_base "$tenant"); i=$(run_iso "$tenant")
        else
            i=$(run_iso "$tenant"); b=$(run_base "$tenant")
        fi
        total_base=$(echo "$total_base + $b" | bc -l)
        total_iso=$(echo "$total_iso + $i" | bc -l)
    done
done
n=$((ROUNDS * TENANTS))
printf 'tenant query, median per query: baseline %.3f ms, isolated %.3f ms, ratio %.3f (target <= 1.10)\n' \
    "$(echo "$total_base / $n" | bc -l)" "$(echo "$total_iso / $n" | bc -l)" "$(echo "$total_iso / $total_base" | bc -l)"

echo
echo "has_permission over 50 granted permissions against = ANY, one check per row of 1,000,000"
echo "(required permission computed from the row, so nothing is folded at plan time; 49 of 60 match)"
"${PSQL[@]}" -At <<'SQL'
CREATE TEMP TABLE perms AS
SELECT array_agg('crm:resource' || i || ':read' ORDER BY i) AS granted FROM generate_series(1, 50) i;
SELECT format('= ANY: %s ms; has_permission: %s ms (ratio %s); crm:*:read granted first: %s ms (ratio %s)',
              round(b::numeric, 1), round(h::numeric, 1), round((h / b)::numeric, 2),
              round(w::numeric, 1), round((w / b)::numeric, 2))
  FROM (SELECT bench_ms(format($q$SELECT count(*) FROM bench_contacts
                                  WHERE ('crm:resource' || (id %% 60) || ':read') = ANY (%L::text[])$q$, granted), 5) AS b,
               bench_ms(format($q$SELECT count(*) FROM bench_contacts
                                  WHERE crm_security.has_permission(%L::text[], 'crm:resource' || (id %% 60) || ':read')$q$,
                               granted), 5) AS h,
               bench_ms(format($q$SELECT count(*) FROM bench_contacts
                                  WHERE crm_security.has_permission(%L::text[], 'crm:resource' || (id %% 60) || ':read')$q$,
                               ARRAY['crm:*:read'] || granted), 5) AS w
          FROM perms) s;
SQL
echo "can() with the same 50 permissions in the token, against the same = ANY:"
PERM_TOKEN=$("${PSQL[@]}" -At -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'bench', 'tenant_id', 't',
    'permissions', (SELECT jsonb_agg('crm:resource' || i || ':read') FROM generate_series(1, 50) i),
    'exp', extract(epoch FROM now())::bigint + 3600), '$SECRET', 'HS256')")
"${PSQL[@]}" -U bench_app -At <<SQL
BEGIN;
SELECT crm_security.set_claim_context('$PERM_TOKEN') IS NOT NULL \g /dev/null
SELECT format('= ANY: %s ms; can(): %s ms (ratio %s)', round(b::numeric, 1), round(c::numeric, 1), round((c / b)::numeric, 2))
  FROM (SELECT bench_ms(format(\$q\$SELECT count(*) FROM generate_series(1, 1000000) id
                                  WHERE ('crm:resource' || (id %% 60) || ':read') = ANY (%L::text[])\$q\$,
                               crm_security.permissions()), 5) AS b,
               bench_ms(\$q\$SELECT count(*) FROM generate_series(1, 1000000) id
                           WHERE crm_security.can('crm:resource' || (id % 60) || ':read')\$q\$, 5) AS c) s;
COMMIT;
SQL

"${PSQL[@]}" <<SQL
SET client_min_messages = warning;
DROP TABLE bench_contacts;
DROP FUNCTION bench_ms(text, int);
DELETE FROM crm_security.jwt_keys WHERE kid = 'bench_authz';
DROP ROLE bench_app;
SQL
