#!/usr/bin/env bash
# Tenant queries on a Citus cluster (docs/citus.md): a coordinator and two workers started
# here (shared_preload_libraries = 'citus, crm_security'), a table distributed by tenant
# (20 tenants, 100,000 rows) under tenant isolation, and an identical one without row level
# security.  Figures, one run, ratios against a baseline measured in the same run (pgbench,
# one client, CRM_BENCH_SECONDS per figure, default 10, in CRM_BENCH_ROUNDS rounds, default 4,
# the figures in turn in each round, the best of each kept):
#  - A tenant query through the coordinator under isolation, against the same query with an
#    explicit WHERE tenant_id = ... on the table without row level security (target <= 1.1x).
#    Under isolation the application writes the same WHERE (a router query to one shard);
#    without it Citus cannot know the tenant and asks every shard (also shown).
#  - Per request (BEGIN; context; the router query; COMMIT): the cost of the context with the
#    worker hop (the token verified again on the worker), and without it (the same request on
#    a table local to the coordinator); each also as the same request with the context set
#    on the table without row level security, which separates the context from the policies.
# Environment (from test/bench.sh): PG_BIN, CRM_ROOT, CRM_WORK.
set -u
: "${PG_BIN:?}" "${CRM_ROOT:?}" "${CRM_WORK:?}"
source "$CRM_ROOT/test/lib.sh"
DIR=$CRM_WORK/bench_citus
DB=crm_bench_citus
SECRET=bench-citus-secret-0123456789abcdef012345
SECONDS_EACH=${CRM_BENCH_SECONDS:-10}
if [ ! -f "$("$PG_BIN/pg_config" --pkglibdir)/citus.so" ]; then
    src=${CITUS_SRC:-$CRM_ROOT/../shared/citus}
    if [ ! -f /usr/lib/postgresql/15/lib/citus.so ]; then
        [ -f "$src/build.sh" ] || { echo "skipped: Citus is not installed and there is no build.sh in $src"; exit 0; }
        bash "$src/build.sh" >/dev/null 2>&1 || { echo "Citus could not be built from $src"; exit 1; }
    fi
    cp -a /usr/lib/postgresql/15/lib/citus* "$("$PG_BIN/pg_config" --pkglibdir)/"
    cp -a /usr/share/postgresql/15/extension/citus* "$("$PG_BIN/pg_config" --sharedir)/extension/"
fi
rm -rf "$DIR"; mkdir -p "$DIR"; chown postgres "$DIR" 2>/dev/null
stop_all() { local d; for d in coord w1 w2; do stop_cluster "$DIR/$d"; done; }
trap stop_all EXIT
P=("$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -d "$DB")
node() {
    start_cluster "$DIR/$1" "shared_preload_libraries = 'citus, crm_security'
citus.node_conninfo = 'sslmode=disable'
max_prepared_transactions = 20
max_parallel_workers_per_gather = 0" >/dev/null || exit 1
    "${P[@]}" -p "$PGPORT" -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null
    "${P[@]}" -p "$PGPORT" -U postgres -c "SET client_min_messages = warning" -c "CREATE EXTENSION citus" >/dev/null
}
node coord; CP=$PGPORT; node w1; W1=$PGPORT; node w2; W2=$PGPORT
"${P[@]}" -p "$CP" -U postgres >/dev/null <<SQL
SET client_min_messages = warning;
SELECT citus_set_coordinator_host('127.0.0.1', $CP);
SELECT citus_add_node('127.0.0.1', $W1);
SELECT citus_add_node('127.0.0.1', $W2);
CREATE EXTENSION crm_security;
SELECT crm_security.citus_sync();
SELECT crm_security.add_jwt_key('k1', 'HS256', '$SECRET');
SELECT crm_security.add_tenant('t' || i, 'T' || i) FROM generate_series(1, 20) i;
SELECT crm_security.add_tenant_member('t1', 'alice');
CREATE ROLE bench_app LOGIN;
CREATE TABLE deals (tenant_id text NOT NULL, id int NOT NULL, amount int, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('deals', 'tenant_id');
CREATE TABLE plain_deals (LIKE deals INCLUDING ALL);
SELECT create_distributed_table('plain_deals', 'tenant_id', colocate_with => 'deals');
CREATE TABLE local_deals (LIKE deals INCLUDING ALL);
CREATE TABLE local_plain (LIKE deals INCLUDING ALL);
INSERT INTO deals SELECT 't' || (i % 20 + 1), i, i % 1000 FROM generate_series(1, 100000) i;
INSERT INTO plain_deals SELECT * FROM deals;
INSERT INTO local_deals SELECT * FROM deals;
INSERT INTO local_plain SELECT * FROM deals;
SELECT crm_security.enable_tenant_isolation('deals');
SELECT crm_security.enable_tenant_isolation('local_deals');
GRANT SELECT ON deals, plain_deals, local_deals, local_plain TO bench_app;
ANALYZE;
SQL
TOK=$("${P[@]}" -p "$CP" -U postgres -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'alice', 'tenant_id', 't1', 'exp', extract(epoch FROM now())::int + 86400), '$SECRET')")
Q="SELECT count(*), sum(amount) FROM"
# script NAME SQL...: a pgbench script of the statements
script() { local name=$1; shift; printf '%s\n' "$@" >"$DIR/$name.sql"; }
CTX="SELECT crm_security.set_claim_context('$TOK');"
script plain "$Q plain_deals WHERE tenant_id = 't1';"
script plain_tx "BEGIN;" "$Q plain_deals WHERE tenant_id = 't1';" "COMMIT;"
script iso_where "BEGIN;" "$CTX" "$Q deals WHERE tenant_id = 't1';" "COMMIT;"
# The same request with the context set, on the table without row level security: the
# context's own cost (set, sent to the worker in the transaction's first command, which
# runs the three SET LOCALs there), apart from the policies.
script plain_ctx "BEGIN;" "$CTX" "$Q plain_deals WHERE tenant_id = 't1';" "COMMIT;"
script iso_all "BEGIN;" "$CTX" "$Q deals;" "COMMIT;"
script lplain_tx "BEGIN;" "$Q local_plain WHERE tenant_id = 't1';" "COMMIT;"
script lplain_ctx "BEGIN;" "$CTX" "$Q local_plain WHERE tenant_id = 't1';" "COMMIT;"
script liso "BEGIN;" "$CTX" "$Q local_deals WHERE tenant_id = 't1';" "COMMIT;"
# Transactions per second of one client, the best of ROUNDS runs of SECONDS_EACH / ROUNDS
# seconds, the scripts in turn in each round (the machine's load changes over a run: each
# figure sees the same moments, and the best of each is the least disturbed).
ROUNDS=${CRM_BENCH_ROUNDS:-4}
SLICE=$(( SECONDS_EACH / ROUNDS > 1 ? SECONDS_EACH / ROUNDS : 2 ))
NAMES="plain plain_tx iso_where plain_ctx iso_all lplain_tx lplain_ctx liso"
declare -A best
for r in $(seq "$ROUNDS"); do
    for n in $NAMES; do
        t=$("$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$CP" -U bench_app -c 1 -T "$SLICE" -f "$DIR/$n.sql" "$DB" 2>&1 \
            | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
        best[$n]=$(awk -v a="${best[$n]:-0}" -v b="${t:-0}" 'BEGIN { print (b > a ? b : a) }')
    done
done
plain=${best[plain]}; plain_tx=${best[plain_tx]}; iso_where=${best[iso_where]}; plain_ctx=${best[plain_ctx]}
iso_all=${best[iso_all]}; lplain_tx=${best[lplain_tx]}; lplain_ctx=${best[lplain_ctx]}; liso=${best[liso]}
# loop_ms TABLE: ms per tenant query, 300 in a row in one transaction with the context set
# (the query alone: the context is verified once per node and cached)
loop_ms() {
    "${P[@]}" -p "$CP" -U bench_app -c "BEGIN" -c "$CTX" -c "DO \$\$DECLARE t0 timestamptz; i int; BEGIN
        PERFORM count(*) FROM $1 WHERE tenant_id = 't1';
        t0 := clock_timestamp();
        FOR i IN 1..300 LOOP PERFORM count(*), sum(amount) FROM $1 WHERE tenant_id = 't1'; END LOOP;
        RAISE NOTICE 'ms=%', round((extract(epoch FROM clock_timestamp() - t0) * 1000 / 300)::numeric, 3);
    END\$\$" -c "COMMIT" 2>&1 | sed -n 's/.*ms=//p'
}
q_plain=$(loop_ms plain_deals)
q_iso=$(loop_ms deals)
q_lplain=$(loop_ms local_plain)
q_liso=$(loop_ms local_deals)
ms() { awk -v t="$1" 'BEGIN { if (t > 0) printf "%.3f", 1000 / t; else printf "n/a" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", b / a; else printf "n/a" }'; }
diffms() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.3f", 1000 / a - 1000 / b; else printf "n/a" }'; }
echo "one client, best of $ROUNDS runs of ${SLICE}s each, in turn, coordinator + 2 workers on this machine, 100,000 rows, 20 tenants, 32 shards"
echo "tenant query, RLS off, explicit WHERE (autocommit)         : $(ms "$plain") ms/query"
echo "tenant query, RLS off, explicit WHERE, in a transaction     : $(ms "$plain_tx") ms/request"
echo "  under isolation, context + same WHERE (router)            : $(ms "$iso_where") ms/request, $(ratio "$iso_where" "$plain_tx")x"
echo "  under isolation, context, no WHERE (every shard)          : $(ms "$iso_all") ms/request, $(ratio "$iso_all" "$plain_tx")x"
echo "  RLS off, context set, same WHERE                          : $(ms "$plain_ctx") ms/request, $(ratio "$plain_ctx" "$plain_tx")x"
echo "  under isolation against RLS off, both with the context    : $(ratio "$iso_where" "$plain_ctx")x"
echo "the query alone (300 in one transaction, context set):"
echo "  distributed, RLS off, explicit WHERE                      : $q_plain ms"
echo "  distributed, under isolation, same WHERE                  : $q_iso ms, $(awk -v a="$q_plain" -v b="$q_iso" 'BEGIN { printf "%.2f", b / a }')x"
echo "  local, RLS off / under isolation                          : $q_lplain ms / $q_liso ms, $(awk -v a="$q_lplain" -v b="$q_liso" 'BEGIN { printf "%.2f", b / a }')x"
echo "context cost per request with the worker hop                : $(diffms "$plain_ctx" "$plain_tx") ms (policies included: $(diffms "$iso_where" "$plain_tx") ms)"
echo "local table on the coordinator, RLS off, in a transaction   : $(ms "$lplain_tx") ms/request"
echo "  under isolation, context (no worker hop)                  : $(ms "$liso") ms/request, $(ratio "$liso" "$lplain_tx")x"
echo "  RLS off, context set (no worker hop)                      : $(ms "$lplain_ctx") ms/request, $(ratio "$lplain_ctx" "$lplain_tx")x"
echo "context cost per request without the worker hop             : $(diffms "$lplain_ctx" "$lplain_tx") ms (policies included: $(diffms "$liso" "$lplain_tx") ms)"
