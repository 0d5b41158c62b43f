#!/usr/bin/env bash
# crm_security on a Citus cluster (docs/citus.md): a coordinator and two workers started
# here (throwaway clusters, shared_preload_libraries = 'citus' on every node, crm_security
# too on the coordinator and the first worker), a third worker added later.  Citus is built
# from $CITUS_SRC (a directory with build.sh), else ../shared/citus, when it is not
# installed; without either the suite says in one line that it is skipped.  Asserts:
#  - the extension is on every node; a key, tenants and members added on the coordinator
#    are on the workers and verify there, also on a worker added after them;
#  - set_claim_context alone gives the context to the workers: multi-shard count and list,
#    router query for another tenant (0 rows), inside explicit transactions;
#    set_api_key_context and clear_claim_context too;
#  - a member of t1 cannot INSERT, UPDATE or DELETE rows of t2 (also by INSERT ... SELECT,
#    COPY, in a distributed transaction); a connection without a context changes nothing;
#    its own writes are allowed and audited once, on the node that holds the shard, with
#    the verified actor and tenant;
#  - a forged and an expired token are refused on a worker;
#  - isolation_report() flags a shard whose policy was altered by hand;
#  - the audit of every node seals and verifies (verify_cluster_audit()); a worker's entries
#    name the distributed table (public.deals), not the shard; a table named like a shard
#    on a node that holds no placement of it keeps its own name;
#  - record access on a distributed table: a member reads her own records only, on the
#    workers (multi-shard and router); a share added on the coordinator is seen there;
#  - a worker added later gets the key store at the next change on the coordinator, without
#    citus_sync(), and refuses tokens until then;
#  - a worker with log_statement = 'all' and log_min_duration_statement = 0 (preloading
#    crm_security) logs the SET LOCAL crm_security.token statements without the token.
# Environment (from test/run.sh): PG_BIN, CRM_ROOT, CRM_WORK.
set -uo pipefail
: "${PG_BIN:?}" "${CRM_ROOT:?}"
source "$CRM_ROOT/test/lib.sh"
WORK=${CRM_WORK:-$(mktemp -d)}
DIR=$WORK/citus
DB=crm_citus
SECRET=citus-test-secret-0123456789abcdef0123

# Citus in the private installation, built if needed.
LIBDIR=$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo "$PG_BIN/../lib")
SHAREDIR=$("$PG_BIN/pg_config" --sharedir 2>/dev/null || echo "$PG_BIN/../../../share/postgresql/15")
if [ ! -f "$LIBDIR/citus.so" ]; then
    src=${CITUS_SRC:-$CRM_ROOT/../shared/citus}
    if [ ! -f /usr/lib/postgresql/15/lib/citus.so ]; then
        if [ ! -f "$src/build.sh" ]; then
            echo "1..0 # SKIP Citus suite skipped: Citus is not installed and there is no build.sh in CITUS_SRC or ../shared/citus ($src)"
            exit 0
        fi
        bash "$src/build.sh" >"$WORK/citus_build.log" 2>&1 || {
            echo "1..50"; echo "not ok 1 - Citus could not be built from $src (see citus_build.log)"; tail -5 "$WORK/citus_build.log" | sed 's/^/# /'; exit 1; }
    fi
    cp -a /usr/lib/postgresql/15/lib/citus* "$LIBDIR/" &&
    cp -a /usr/share/postgresql/15/extension/citus* "$SHAREDIR/extension/" || {
        echo "1..50"; echo "not ok 1 - Citus could not be copied into the private installation"; exit 1; }
fi

PSQL=("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=sqlstate -v ON_ERROR_STOP=0 -h 127.0.0.1 -d "$DB")
source "$CRM_ROOT/test/scripts/include/tap.sh"
# qn PORT [USER] psql-args...: psql on a node
qn() { local port=$1 user=$2; shift 2; "${PSQL[@]}" -p "$port" -U "$user" "$@" 2>&1; }
qc() { qn "$CP" postgres "$@"; }            # coordinator, superuser
qa() { qn "$CP" crm_app "$@"; }             # coordinator, the application's role
errcode() { sed -n 's/.*ERROR:  *\([0-9A-Z]\{5\}\).*/\1/p' | head -1; }
one() { tr '\n' '|' | sed 's/|$//'; }

stop_all() { local d; [ -n "${CITUS_TEST_KEEP:-}" ] || for d in coord w1 w2 w3; do stop_cluster "$DIR/$d"; done; }
trap stop_all EXIT
rm -rf "$DIR"; mkdir -p "$DIR"; chown postgres "$DIR" 2>/dev/null
# node NAME PRELOAD: start a node, create the database and Citus in it; its port in $PGPORT
node() {
    start_cluster "$DIR/$1" "shared_preload_libraries = '$2'
citus.node_conninfo = 'sslmode=disable'
max_prepared_transactions = 20
citus.shard_count = 4
log_min_messages = warning" >/dev/null || return 1
    "${PSQL[@]}" -p "$PGPORT" -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null &&
    "${PSQL[@]}" -p "$PGPORT" -U postgres -c "SET client_min_messages = warning" -c "CREATE EXTENSION citus" >/dev/null
}

echo "1..50"
# The coordinator and the first worker preload crm_security too (with Citus first).
if ! node coord 'citus, crm_security'; then echo "not ok 1 - the coordinator did not start"; exit 1; fi
CP=$PGPORT
node w1 'citus, crm_security'; W1=$PGPORT
node w2 'citus'; W2=$PGPORT
qc -c "SET client_min_messages = warning" -c "SELECT citus_set_coordinator_host('127.0.0.1', $CP)" \
   -c "SELECT citus_add_node('127.0.0.1', $W1)" -c "SELECT citus_add_node('127.0.0.1', $W2)" >"$DIR/setup.log"
qc -c "SET client_min_messages = warning" -c "CREATE EXTENSION crm_security" -c "SELECT crm_security.citus_sync()" >>"$DIR/setup.log"
echo "CP=$CP W1=$W1 W2=$W2" >"$DIR/ports"
check "crm_security is installed on the coordinator and both workers" "1|1|1" \
    "$(for p in $CP $W1 $W2; do qn "$p" postgres -c "SELECT count(*) FROM pg_extension WHERE extname = 'crm_security'"; done | one)"

# Keys, tenants, members, an application role, a distributed table under isolation and audit.
qc >>"$DIR/setup.log" <<SQL
SET client_min_messages = warning;
SELECT crm_security.add_jwt_key('k1', 'HS256', '$SECRET');
SELECT crm_security.add_tenant('t1', 'Tenant one');
SELECT crm_security.add_tenant('t2', 'Tenant two');
SELECT crm_security.add_tenant_member('t1', 'alice');
SELECT crm_security.add_tenant_member('t2', 'bob');
CREATE ROLE crm_app LOGIN;
CREATE TABLE deals (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('deals', 'tenant_id');
SELECT crm_security.enable_tenant_isolation('deals');
GRANT SELECT, INSERT, UPDATE, DELETE ON deals TO crm_app;
INSERT INTO deals SELECT 't' || (i % 2 + 1), i, 'v' || i FROM generate_series(1, 20) i;
CREATE TABLE staging (tenant_id text, id int, v text);
SELECT create_distributed_table('staging', 'tenant_id', colocate_with => 'deals');
CREATE TABLE local_staging (tenant_id text, id int, v text);
GRANT SELECT ON staging, local_staging TO crm_app;
INSERT INTO staging VALUES ('t1', 300, 'staged'), ('t2', 301, 'staged');
INSERT INTO local_staging VALUES ('t1', 310, 'staged'), ('t2', 311, 'staged');
SQL
check "enable_audit works on a distributed table" "" \
    "$(qc -c "SET client_min_messages = warning" -c "SELECT crm_security.enable_audit('deals')" | grep -v '^$')"
check "the key, tenants and members added on the coordinator are on both workers" "1 2 2|1 2 2" \
    "$(for p in $W1 $W2; do qn "$p" postgres -c "SELECT (SELECT count(*) FROM crm_security.jwt_keys WHERE kid = 'k1') || ' ' || (SELECT count(*) FROM crm_security.tenants WHERE id IN ('t1', 't2')) || ' ' || (SELECT count(*) FROM crm_security.tenant_members)"; done | one)"

sign() { qc -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', '$1', 'tenant_id', '$2', 'exp', extract(epoch FROM now())::int + ${4:-3600}), '${3:-$SECRET}')"; }
ALICE=$(sign alice t1)
FORGED=$(sign alice t2 another-secret-0123456789abcdef0123456789)
EXPIRED=$(sign alice t1 "$SECRET" -3600)
# qctx STATEMENT...: each statement on its own (the token stays out of the others' log lines)
# in one transaction of the application's role, after set_claim_context(alice's token)
qctx() {
    local a=(-c BEGIN -c "SELECT crm_security.set_claim_context('$ALICE') IS NULL") x
    for x in "$@"; do a+=(-c "$x"); done
    qa "${a[@]}" -c COMMIT
}
nums() { grep -E '^[0-9]+$' | one; }
# restore: the 20 rows as at the start (each write check starts from them)
restore() { qc -c "DELETE FROM deals" -c "INSERT INTO deals SELECT 't' || (i % 2 + 1), i, 'v' || i FROM generate_series(1, 20) i" >/dev/null; }
T2_BEFORE=$(qc -c "SELECT md5(string_agg(id || v, ',' ORDER BY id)) FROM deals WHERE tenant_id = 't2'")
t2_unchanged() { qc -c "SELECT coalesce(md5(string_agg(id || v, ',' ORDER BY id)), 'none') = '$T2_BEFORE' FROM deals WHERE tenant_id = 't2'"; }

check "a key added on the coordinator verifies on a worker" "alice|t1" \
    "$(qn "$W1" crm_app -c "BEGIN" -c "SELECT crm_security.set_claim_context('$ALICE') IS NULL" -c "SELECT crm_security.user_id() || '|' || crm_security.tenant_id()" -c "COMMIT" | grep '|')"
check "multi-shard count under set_claim_context alone (a transaction)" "10" \
    "$(qctx "SELECT count(*) FROM deals" | nums)"
check "multi-shard list: only tenant t1's rows" "t1:10" \
    "$(qctx "SELECT string_agg(DISTINCT tenant_id, ',') || ':' || count(*) FROM (SELECT * FROM deals ORDER BY id) d" | grep ':')"
check "router query for tenant t2: 0 rows" "0" \
    "$(qctx "SELECT count(*) FROM deals WHERE tenant_id = 't2'" | nums)"
check "router query for the own tenant: its rows" "10" \
    "$(qctx "SELECT count(*) FROM deals WHERE tenant_id = 't1'" | nums)"
check "without a context: 0 rows" "0" "$(qa -c "SELECT count(*) FROM deals")"
check "clear_claim_context reaches the workers: 0 rows after it" "10|0" \
    "$(qctx "SELECT count(*) FROM deals" "SELECT crm_security.clear_claim_context()" "SELECT count(*) FROM deals" | nums)"

# API key context.
APIKEY=$(qc -c "SET client_min_messages = warning" -c "SELECT api_key FROM crm_security.create_api_key('citus test', 't1', ARRAY['deals:read'])" | grep -v '^$' | tail -1)
check "set_api_key_context alone reaches the workers: tenant t1's rows only" "10|0" \
    "$(qa -c BEGIN -c "SELECT crm_security.set_api_key_context('$APIKEY') IS NULL" -c "SELECT count(*) FROM deals" -c "SELECT count(*) FROM deals WHERE tenant_id = 't2'" -c COMMIT | nums)"

# Writes: the contract (isolation on the shards as on one node).
check "a member of t1 cannot INSERT a row of t2 (42501)" "42501" \
    "$(qctx "INSERT INTO deals VALUES ('t2', 500, 'intruder')" | errcode)"
restore; qctx "UPDATE deals SET v = 'overwritten' WHERE tenant_id = 't2'" >/dev/null
check "a member of t1 cannot UPDATE rows of t2 (router)" "t" "$(t2_unchanged)"
restore; qctx "UPDATE deals SET v = 'overwritten'" >/dev/null
check "a member of t1 cannot UPDATE rows of t2 (multi-shard)" "t" "$(t2_unchanged)"
restore; qctx "DELETE FROM deals WHERE tenant_id = 't2'" >/dev/null
check "a member of t1 cannot DELETE rows of t2" "t" "$(t2_unchanged)"
restore; qa -c "UPDATE deals SET v = 'overwritten'" -c "DELETE FROM deals" >/dev/null
check "a connection without a context changes nothing (UPDATE, DELETE)" "t|t" \
    "$( (t2_unchanged; qc -c "SELECT count(*) = 10 FROM deals WHERE tenant_id = 't1' AND v <> 'overwritten'") | one)"
restore
check "INSERT ... SELECT of t2 rows under t1's context is refused (42501)" "42501" \
    "$(qctx "INSERT INTO deals SELECT * FROM staging WHERE tenant_id = 't2'" | errcode)"
# PostgreSQL refuses COPY FROM into a table with row level security (0A000) to every role
# that does not bypass it: on Citus as on one node.  (INSERT ... SELECT from a colocated
# distributed table runs on the shards, under their policies.)
restore
check "COPY into the distributed table under a context is refused (0A000), t2 unchanged" "0A000|t" \
    "$( (printf 't2\t600\tcopied\n' | qctx "COPY deals FROM STDIN" | errcode; t2_unchanged) | one)"
# Citus runs INSERT ... SELECT from a local table as a COPY into the shards.
restore
check "INSERT ... SELECT from a local table is refused likewise (0A000), t2 unchanged" "0A000|t" \
    "$( (qctx "INSERT INTO deals SELECT * FROM local_staging" | errcode; t2_unchanged) | one)"
restore
check "a distributed transaction under t1's context leaves t2 as it was" "t" \
    "$(qctx "INSERT INTO deals VALUES ('t1', 700, 'tx')" "UPDATE deals SET v = 'tx' WHERE id < 5" "DELETE FROM deals WHERE id = 2" >/dev/null; t2_unchanged)"
restore
check "own writes in a distributed transaction: INSERT ... SELECT, INSERT, UPDATE" "300,602|x" \
    "$(qctx "INSERT INTO deals SELECT * FROM staging WHERE tenant_id = 't1'" "INSERT INTO deals VALUES ('t1', 602, 'mine')" "UPDATE deals SET v = 'x' WHERE id = 4" >/dev/null
       qc -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM deals WHERE id IN (300, 602)" -c "SELECT v FROM deals WHERE tenant_id = 't1' AND id = 4" | one)"

# Audit: once, on the node that holds the shard, with the verified actor and tenant.
NODE=$(qc -c "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE p.shardid = get_shard_id_for_distribution_column('deals', 't1')")
OTHER=$([ "$NODE" = "$W1" ] && echo "$W2" || echo "$W1")
audited() { qn "$1" postgres -c "SELECT count(*) || ':' || coalesce(string_agg(DISTINCT actor_id || '/' || tenant_id, ','), '') FROM crm_security.audit_log WHERE kind = 'row' AND new_row->>'id' = '602'"; }
check "the own INSERT is audited once, on the node of its shard, with actor alice and tenant t1" "1:alice/t1" "$(audited "$NODE")"
check "... and not on the other worker" "0:" "$(audited "$OTHER")"
check "... nor on the coordinator" "0:" "$(audited "$CP")"
check "the worker's entries name the distributed table, not the shard" "public.deals" \
    "$(qn "$NODE" postgres -c "SELECT string_agg(DISTINCT table_name, ',') FROM crm_security.audit_log WHERE kind = 'row' AND table_name LIKE 'public.deals%'")"
# A table named like a shard of deals on the coordinator, which holds no placement of it.
FAKE=deals_$(qc -c "SELECT get_shard_id_for_distribution_column('deals', 't1')")
qc -c "SET client_min_messages = warning" -c "CREATE TABLE $FAKE (id int PRIMARY KEY)" -c "SELECT crm_security.enable_audit('$FAKE')" \
   -c "INSERT INTO $FAKE VALUES (1)" >>"$DIR/setup.log"
check "a table named like a shard on a node without its placement keeps its own name" "public.$FAKE" \
    "$(qc -c "SELECT string_agg(DISTINCT table_name, ',') FROM crm_security.audit_log WHERE kind = 'row' AND table_name LIKE 'public.deals%'")"

# Record access on a distributed table: the rules hold on the workers, shares reach them.
qc >>"$DIR/setup.log" <<'SQL'
SET client_min_messages = warning;
CREATE TABLE accounts (tenant_id text NOT NULL, id int NOT NULL, owner text, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('accounts', 'tenant_id', colocate_with => 'deals');
SELECT crm_security.enable_tenant_isolation('accounts');
SELECT crm_security.enable_record_access('accounts', 'owner');
GRANT SELECT, UPDATE ON accounts TO crm_app;
INSERT INTO accounts VALUES ('t1', 1, 'alice'), ('t1', 2, 'alice'), ('t1', 3, 'dave'), ('t1', 4, 'dave'),
                            ('t2', 5, 'alice'), ('t2', 6, 'bob');
SQL
ids() { grep -E '^[0-9,]*$' | grep -v '^$' | one; }
check "record access on the workers: own records only (multi-shard, router)" "1,2|1,2" \
    "$(qctx "SELECT string_agg(id::text, ',' ORDER BY id) FROM accounts" "SELECT string_agg(id::text, ',' ORDER BY id) FROM accounts WHERE tenant_id = 't1'" | ids)"
check "... and an UPDATE of another's record changes nothing" "dave" \
    "$(qctx "UPDATE accounts SET owner = 'alice' WHERE id = 3" >/dev/null; qc -c "SELECT owner FROM accounts WHERE id = 3")"
qc -c "SET client_min_messages = warning" -c "SELECT crm_security.share_record('accounts', '3', 't1', 'alice')" >>"$DIR/setup.log"
check "a share added on the coordinator is on the workers" "1|1" \
    "$(for p in $W1 $W2; do qn "$p" postgres -c "SELECT count(*) FROM crm_security.shared_records WHERE relation = 'accounts'::regclass AND record_id = '3' AND with_user = 'alice'"; done | one)"
check "... and the shared record is seen on the workers (multi-shard, router)" "1,2,3|1,2,3" \
    "$(qctx "SELECT string_agg(id::text, ',' ORDER BY id) FROM accounts" "SELECT string_agg(id::text, ',' ORDER BY id) FROM accounts WHERE tenant_id = 't1'" | ids)"

# A worker with statement logging: the SET LOCALs Citus sends are logged without the token.
logw1() { qn "$W1" postgres -c "ALTER SYSTEM SET $1" -c "SELECT pg_reload_conf()" >/dev/null; sleep 1; }
logw1 "log_statement = 'all'"
qctx "SELECT count(*) FROM deals" >/dev/null
logw1 "log_statement = 'none'"; logw1 "log_min_duration_statement = 0"
qctx "SELECT count(*) FROM deals" >/dev/null
qn "$W1" postgres -c "ALTER SYSTEM RESET log_statement" -c "ALTER SYSTEM RESET log_min_duration_statement" -c "SELECT pg_reload_conf()" >/dev/null
check "a worker logging every statement logs the SET LOCAL of the token without it (statement:, duration:)" "t|t|0" \
    "$( (grep -q "statement: .*crm_security.token = '(token)'" "$DIR/w1/server.log" && echo t
         grep -q "duration: .*crm_security.token = '(token)'" "$DIR/w1/server.log" && echo t
         grep -cF -e "${ALICE##*.}" "$DIR/w1/server.log") | one)"

# Forged and expired tokens sent to a worker are refused there.
wtok() { qn "$W1" crm_app -c "BEGIN" -c "SET LOCAL crm_security.token = '$1'" -c "SELECT crm_security.user_id()" -c "ROLLBACK" | errcode; }
check "a forged token sent to a worker is refused there (28000)" "28000" "$(wtok "$FORGED")"
check "an expired token sent to a worker is refused there (28000)" "28000" "$(wtok "$EXPIRED")"
check "... and so is its tenant (no rows through the worker)" "28000" \
    "$(qn "$W1" crm_app -c "BEGIN" -c "SET LOCAL crm_security.token = '$FORGED'" -c "SELECT count(*) FROM deals" -c "ROLLBACK" | errcode)"

# isolation_report() compares every shard's policies with its table's.
check "isolation_report() has no shard row for deals (its policies mean the same on the shards)" "0" \
    "$(qc -c "SELECT count(*) FROM crm_security.isolation_report() WHERE kind = 'shard' AND relation = 'deals'::regclass")"
qc >>"$DIR/setup.log" <<'SQL'
CREATE TABLE notes (tenant_id text NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('notes', 'tenant_id', colocate_with => 'deals');
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_tenant ON notes USING (tenant_id = crm_security.tenant_id_text());
SQL
check "isolation_report() has no shard row for a table whose shards match it" "0" \
    "$(qc -c "SELECT count(*) FROM crm_security.isolation_report() WHERE kind = 'shard' AND relation = 'notes'::regclass")"
SHARD=$(qc -c "SELECT shard_name('notes'::regclass, get_shard_id_for_distribution_column('notes', 't1'))")
qn "$NODE" postgres -c "SET citus.override_table_visibility = off" -c "ALTER POLICY notes_tenant ON $SHARD USING (true)" >"$DIR/alter.log"
check "isolation_report() flags the shard whose policy was altered by hand" "1|1" \
    "$(qc -c "SELECT count(*) FROM crm_security.isolation_report() WHERE kind = 'shard' AND relation = 'notes'::regclass" \
          -c "SELECT count(*) FROM crm_security.isolation_report() WHERE kind = 'shard' AND relation = 'notes'::regclass AND issue LIKE 'shard ' || get_shard_id_for_distribution_column('notes', 't1') || ' (on 127.0.0.1:$NODE) has %differ%'" | one)"
qn "$NODE" postgres -c "SET citus.override_table_visibility = off" -c "ALTER POLICY notes_tenant ON $SHARD USING (tenant_id = crm_security.tenant_id_text())" >>"$DIR/alter.log"
check "... and no longer once it is the table's again" "0" \
    "$(qc -c "SELECT count(*) FROM crm_security.isolation_report() WHERE kind = 'shard' AND relation = 'notes'::regclass")"
qn "$NODE" postgres -c "SET citus.override_table_visibility = off" -c "DROP POLICY notes_tenant ON $SHARD" >>"$DIR/alter.log"
check "... and flags a shard that lost its policy" "1" \
    "$(qc -c "SELECT count(*) FROM crm_security.isolation_report() WHERE kind = 'shard' AND relation = 'notes'::regclass")"

# Audit of every node: sealed and verified, one row per node.
check "seal_cluster_audit() seals on every node (one row per node)" "3|t" \
    "$(qc -c "SELECT count(*) FROM crm_security.seal_cluster_audit()" -c "SELECT bool_and(ok) FROM crm_security.seal_cluster_audit()" | one)"
check "verify_cluster_audit(): every node's log verifies" "3|t|t" \
    "$(qc -c "SELECT count(*), bool_and(ok), sum(entries_checked) > 0 FROM crm_security.verify_cluster_audit()" | tr '|' '\n' | one)"
check "... and the worker's log holds the entries of its shard" "t" \
    "$(qc -c "SELECT entries_checked > 0 FROM crm_security.verify_cluster_audit() WHERE node = '127.0.0.1:$NODE'")"

# A worker added after the keys exist.
node w3 'citus'; W3=$PGPORT
qc -c "SET client_min_messages = warning" -c "SELECT citus_add_node('127.0.0.1', $W3)" >>"$DIR/setup.log"
check "a worker added later has the extension, an empty key store, and refuses tokens (28000)" "1|0|28000" \
    "$( (qn "$W3" postgres -c "SELECT count(*) FROM pg_extension WHERE extname = 'crm_security'" -c "SELECT count(*) FROM crm_security.jwt_keys"
         qn "$W3" crm_app -c "BEGIN" -c "SELECT crm_security.set_claim_context('$ALICE') IS NULL" -c "ROLLBACK" | errcode) | one)"
# No citus_sync(): the next change of a replicated table on the coordinator sends every table.
qc -c "SELECT crm_security.add_tenant_member('t1', 'carol')" >/dev/null
check "at the next change on the coordinator, the new worker gets every table: the key, members, shares" "1|3|1" \
    "$(qn "$W3" postgres -c "SELECT count(*) FROM crm_security.jwt_keys WHERE kid = 'k1'" -c "SELECT count(*) FROM crm_security.tenant_members" -c "SELECT count(*) FROM crm_security.shared_records" | one)"
check "... and the coordinator records the three workers as synced" "3" \
    "$(qc -c "SELECT count(*) FROM crm_security.citus_synced_nodes s JOIN pg_dist_node n USING (nodeid) WHERE n.groupid <> 0")"
check "a token verifies on the worker added later" "alice|t1" \
    "$(qn "$W3" crm_app -c "BEGIN" -c "SELECT crm_security.set_claim_context('$ALICE') IS NULL" -c "SELECT crm_security.user_id() || '|' || crm_security.tenant_id()" -c "COMMIT" | grep '|')"
check "a member added afterwards reaches every worker, the new one too" "4|4|4" \
    "$(qc -c "SELECT crm_security.add_tenant_member('t2', 'erin')" >/dev/null
       for p in $W1 $W2 $W3; do qn "$p" postgres -c "SELECT count(*) FROM crm_security.tenant_members"; done | one)"

# A key disabled on the coordinator is refused on every worker, at once (a worker session that
# verified with it before is open meanwhile: its cache follows the invalidation).
W1S=$(qn "$W1" crm_app -c "BEGIN" -c "SELECT crm_security.set_claim_context('$ALICE') IS NULL" -c "SELECT crm_security.user_id()" -c "COMMIT" | grep alice)
qc -c "SELECT crm_security.disable_jwt_key('k1')" >/dev/null
check "a key disabled on the coordinator is refused on every worker (28000)" "$W1S|28000|28000|28000" \
    "$W1S|$(for p in $W1 $W2 $W3; do qn "$p" crm_app -c "BEGIN" -c "SET LOCAL crm_security.token = '$ALICE'" -c "SELECT crm_security.user_id()" -c "ROLLBACK" | errcode; done | one)"

# No token or key material in any server log.
check "no token or key in any server log" "0" \
    "$(cat "$DIR"/*/server.log | grep -cF -e "$SECRET" -e "${ALICE##*.}" -e "${FORGED##*.}" -e "$APIKEY")"
check "no backend crashed on any node" "0" \
    "$(cat "$DIR"/*/server.log | grep -cE 'terminated by signal|was terminated')"

stop_all
exit $failed
