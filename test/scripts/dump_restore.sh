#!/usr/bin/env bash
# pg_dump keeps the audit log: a database with audited tables, sealed and purged blocks and
# unsealed entries is dumped (plain and custom format) and restored into fresh databases,
# where CREATE EXTENSION comes from the dump.  Entries, ids, hashes, blocks, purge records,
# the id sequence, keys, roles and grants must come back unchanged, verify_audit_log() must
# pass with and without the digest taken before the dump, and the append-only protection
# must be back: UPDATE, DELETE and TRUNCATE refused, a forged entry refused or reported.
# Into another cluster, the source's entry key file is copied first; without it the
# restore stops at audit_log.
set -uo pipefail
: "${PG_BIN:?}" "${CRM_WORK:?}" "${CRM_ROOT:?}"
SRC=crm_dump_src
DIR="$CRM_WORK/dump_restore"
mkdir -p "$DIR"
n=0
ok() {  # ok CONDITION-RESULT DESCRIPTION [DIAGNOSTIC]
    n=$((n + 1))
    if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; [ -z "${3:-}" ] || echo "# $3" | head -20; fi
}
is() {  # is GOT EXPECTED DESCRIPTION
    n=$((n + 1))
    if [ "$1" = "$2" ]; then echo "ok $n - $3"; else echo "not ok $n - $3"; echo "#   got: '$1'"; echo "#   expected: '$2'"; fi
}
psql_db() { local db=$1; shift; "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }
admin() { "$PG_BIN/psql" -X -q -d postgres -c "SET client_min_messages = warning" "$@" >/dev/null; }

echo "1..43"
admin -c "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS crm_dump_plain" \
      -c "DROP DATABASE IF EXISTS crm_dump_custom" -c "CREATE DATABASE $SRC TEMPLATE template0"

# Some transactions first, so that the log's transaction ids lie beyond those of a new
# cluster (see the last tests).
psql_db "$SRC" -c "DO \$\$ BEGIN FOR i IN 1..300 LOOP PERFORM pg_catalog.txid_current(); COMMIT; END LOOP; END \$\$"
psql_db "$SRC" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION crm_security;
CREATE TABLE deals (id int PRIMARY KEY, tenant text NOT NULL, title text, amount numeric, doc jsonb,
                    secret text);
SELECT crm_security.enable_audit('deals', ARRAY['secret']);
INSERT INTO deals VALUES (1, 't1', E'caf\u00e9 "q" \\ x\n', 10.50, '{"k": [1, "\u00e9", 2.0]}', 's1');
SELECT crm_security.log_event('export', 'report', 'r1', 'denied', '{"n": 1.0}');
SELECT crm_security.seal_audit_log();
-- block 1's entries are purged: its header and the purge record remain.
SELECT crm_security.purge_audit_log('0 seconds');
INSERT INTO deals SELECT g, 't' || (g % 3), 'deal ' || g, g * 1.5, NULL, 'x' FROM generate_series(2, 40) g;
UPDATE deals SET title = 'changed', amount = amount + 1 WHERE id % 4 = 0;
SELECT crm_security.seal_audit_log();
DELETE FROM deals WHERE id > 35;
SELECT crm_security.log_event('login');
SELECT crm_security.seal_audit_log();
-- unsealed entries after the last block
INSERT INTO deals VALUES (100, 't2', 'unsealed', 1, NULL, NULL);
SELECT crm_security.log_event('logout');
-- other state that lives in the extension's tables
SELECT crm_security.add_jwt_key('k-dump', 'HS256', 'a-secret-of-thirty-two-bytes-at-least!!');
SELECT crm_security.create_role('dumper', ARRAY['crm:deals:read'], 't1');
SELECT crm_security.grant_role('u1', 't1', 'dumper');
SQL
digest=$(psql_db "$SRC" -c "SELECT crm_security.audit_digest()")
KEY_FP=$(psql_db "$SRC" -c "SELECT crm_security.audit_key_fingerprint()")

# What must survive, one line per table.
FINGERPRINT="
SELECT 'entries', count(*), coalesce(max(id), 0),
       md5(coalesce(string_agg(id || ':' || txid || ':' || encode(entry_hash, 'hex'), ',' ORDER BY id), ''))
  FROM crm_security.audit_log
UNION ALL
SELECT 'images', count(*), 0, md5(coalesce(string_agg(a::text, ',' ORDER BY a.id), ''))
  FROM crm_security.audit_log a
UNION ALL
SELECT 'blocks', count(*), coalesce(max(block_id), 0), md5(coalesce(string_agg(b::text, ',' ORDER BY block_id), ''))
  FROM crm_security.audit_blocks b
UNION ALL
SELECT 'purges', count(*), coalesce(max(purged_through_block), 0),
       md5(coalesce(string_agg(p::text, ',' ORDER BY purged_through_block), ''))
  FROM crm_security.audit_purges p
UNION ALL
SELECT 'keys', count(*), 0, md5(coalesce(string_agg(kid || algorithm, ',' ORDER BY kid), '')) FROM crm_security.jwt_keys
UNION ALL
SELECT 'grants', count(*), 0, md5(coalesce(string_agg(g.user_id || r.name, ',' ORDER BY g.user_id), ''))
  FROM crm_security.role_grants g JOIN crm_security.roles r ON r.id = g.role_id
UNION ALL
SELECT 'audited', count(*), 0, string_agg(table_name::text || coalesce(exclude_columns::text, ''), ',')
  FROM crm_security.audited_tables"
before=$(psql_db "$SRC" -c "$FINGERPRINT")
src_entries=$(psql_db "$SRC" -c "SELECT count(*) FROM crm_security.audit_log")
src_blocks=$(psql_db "$SRC" -c "SELECT count(*) FROM crm_security.audit_blocks")
ok "$([ "$src_entries" -gt 40 ] && [ "$src_blocks" -ge 3 ] && echo 0 || echo 1)" \
   "the source has $src_entries entries and $src_blocks blocks"
is "$(psql_db "$SRC" -c "SELECT ok FROM crm_security.verify_audit_log('$digest')")" t "the source verifies"

"$PG_BIN/pg_dump" -d "$SRC" -Fp -f "$DIR/plain.sql" 2>"$DIR/dump_plain.err"
ok $? "pg_dump (plain) succeeds" "$(cat "$DIR/dump_plain.err")"
"$PG_BIN/pg_dump" -d "$SRC" -Fc -f "$DIR/custom.dump" 2>"$DIR/dump_custom.err"
ok $? "pg_dump (custom) succeeds" "$(cat "$DIR/dump_custom.err")"

# Nothing of the extension's own objects (but its data) is in the dump: it comes from
# CREATE EXTENSION.
admin -c "CREATE DATABASE crm_dump_plain TEMPLATE template0" -c "CREATE DATABASE crm_dump_custom TEMPLATE template0"
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d crm_dump_plain -f "$DIR/plain.sql" >"$DIR/restore_plain.out" 2>&1
ok $? "the plain dump restores with ON_ERROR_STOP" "$(cat "$DIR/restore_plain.out")"
"$PG_BIN/pg_restore" --exit-on-error -d crm_dump_custom "$DIR/custom.dump" >"$DIR/restore_custom.out" 2>&1
ok $? "the custom dump restores with --exit-on-error" "$(cat "$DIR/restore_custom.out")"

for db in crm_dump_plain crm_dump_custom; do
    fmt=${db#crm_dump_}
    after=$(psql_db "$db" -c "$FINGERPRINT")
    is "$(echo "$after" | grep '^entries|')" "$(echo "$before" | grep '^entries|')" "$fmt: entries, ids, txids and hashes restored"
    is "$(echo "$after" | grep '^images|')" "$(echo "$before" | grep '^images|')" "$fmt: every column of every entry restored"
    is "$(echo "$after" | grep '^blocks|')" "$(echo "$before" | grep '^blocks|')" "$fmt: blocks restored"
    is "$(echo "$after" | grep '^purges|')" "$(echo "$before" | grep '^purges|')" "$fmt: purge records restored"
    is "$(echo "$after" | grep -E '^(keys|grants|audited)\|')" "$(echo "$before" | grep -E '^(keys|grants|audited)\|')" \
       "$fmt: keys, grants and audited tables restored"
    is "$(psql_db "$db" -c "SELECT ok, detail FROM crm_security.verify_audit_log()")" \
       "$(psql_db "$SRC" -c "SELECT ok, detail FROM crm_security.verify_audit_log()")" \
       "$fmt: verify_audit_log() passes"
    is "$(psql_db "$db" -c "SELECT ok FROM crm_security.verify_audit_log('$digest')")" t \
       "$fmt: verify_audit_log(digest taken before the dump) passes"
    # Writing goes on: ids continue from the restored sequence, sealing continues the chain.
    is "$(psql_db "$db" -c "SET client_min_messages = warning" \
          -c "UPDATE deals SET title = 'after restore' WHERE id = 1" \
          -c "SELECT count(*) FROM crm_security.audit_log WHERE id <= $(psql_db "$SRC" -c "SELECT max(id) FROM crm_security.audit_log") AND table_name = 'public.deals' AND new_row->>'title' = 'after restore'")" 0 \
       "$fmt: a change after the restore gets a new id"
    is "$(psql_db "$db" -c "SELECT crm_security.seal_audit_log() > 0" -c "SELECT ok FROM crm_security.verify_audit_log('$digest')")" "t
t" "$fmt: sealing continues the restored chain, which still reaches the digest"
    # The protection is back.
    for stmt in "UPDATE crm_security.audit_log SET actor_id = 'x'" "DELETE FROM crm_security.audit_log" \
                "TRUNCATE crm_security.audit_log" "DELETE FROM crm_security.audit_blocks"; do
        out=$(psql_db "$db" -c "$stmt" 2>&1)
        ok "$([[ "$out" == *"cannot "*"append-only"* || "$out" == *"cannot "* ]] && echo 0 || echo 1)" \
           "$fmt: refused after the restore: $stmt" "$out"
    done
done

# After the restore, a forged entry is refused even with a correct plain SHA-256 (entry
# hashes are keyed), and one inserted with the protection disabled is reported; so is a
# copy of a restored entry, which the guard lets in (it verifies: a restore does this).
out=$(psql_db crm_dump_plain 2>&1 <<'SQL'
-- The plain SHA-256 of the forged entry's canonical form: insert around the guard, hash, roll back.
BEGIN;
ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
INSERT INTO crm_security.audit_log (id, txid, logged_at, kind, table_name, operation, record_key, new_row,
                                    actor_type, db_user, entry_hash)
SELECT max(id) + 1000, (SELECT txid_lo FROM crm_security.audit_blocks ORDER BY block_id DESC LIMIT 1),
       '2020-01-01', 'row', 'public.deals', 'INSERT', '{"id": 999}', '{"id": 999}', 'system', 'postgres', '\x00'
  FROM crm_security.audit_log;
SELECT max(id) AS forged_id, encode(sha256(crm_security.audit_canonical_entry(max(id))), 'hex') AS forged_hash
  FROM crm_security.audit_log \gset
ROLLBACK;
SELECT length(:'forged_hash') = 64;
INSERT INTO crm_security.audit_log (id, txid, logged_at, kind, table_name, operation, record_key, new_row,
                                    actor_type, db_user, entry_hash)
SELECT :forged_id, (SELECT txid_lo FROM crm_security.audit_blocks ORDER BY block_id DESC LIMIT 1),
       '2020-01-01', 'row', 'public.deals', 'INSERT', '{"id": 999}', '{"id": 999}', 'system', 'postgres',
       decode(:'forged_hash', 'hex');
SQL
)
ok "$([[ "$out" == "t"$'\n'*"cannot insert into \"audit_log\""* ]] && echo 0 || echo 1)" \
   "a forged entry with a correct plain SHA-256 is refused after the restore" "$out"
out=$(psql_db crm_dump_plain 2>&1 <<'SQL'
ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
INSERT INTO crm_security.audit_log (id, txid, logged_at, kind, table_name, operation, record_key, new_row,
                                    actor_type, db_user, entry_hash)
SELECT max(id) + 1000, (SELECT txid_lo FROM crm_security.audit_blocks ORDER BY block_id DESC LIMIT 1),
       '2020-01-01', 'row', 'public.deals', 'INSERT', '{"id": 999}', '{"id": 999}', 'system', 'postgres', '\x00'
  FROM crm_security.audit_log;
UPDATE crm_security.audit_log SET entry_hash = sha256(crm_security.audit_canonical_entry(id))
 WHERE id = (SELECT max(id) FROM crm_security.audit_log);
ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only_rows;
SELECT ok, first_bad_block IS NOT NULL, detail FROM crm_security.verify_audit_log();
SQL
)
ok "$([[ "$out" == "f|t|"* ]] && echo 0 || echo 1)" "a forged entry inserted around the protection is reported after the restore" "$out"
out=$(psql_db crm_dump_custom <<'SQL'
INSERT INTO crm_security.audit_log SELECT * FROM crm_security.audit_log WHERE id = (SELECT min(id) FROM crm_security.audit_log);
SELECT ok, detail FROM crm_security.verify_audit_log();
SQL
)
ok "$([[ "$out" == "f|"* ]] && echo 0 || echo 1)" "a duplicated sealed entry is reported after the restore" "$out"

# A block that ends beyond the transaction counter is refused: only a restore into a
# cluster that is behind produces one, and entries written there would later fall inside it.
out=$(psql_db crm_dump_custom <<'SQL' 2>&1
INSERT INTO crm_security.audit_blocks
SELECT block_id + 1, block_hash, txid_hi, txid_hi + 100000000, 0, sha256(''), now(), '\x00'
  FROM crm_security.audit_blocks ORDER BY block_id DESC LIMIT 1;
SQL
)
ok "$([[ "$out" == *"covers transactions this cluster has not reached"* ]] && echo 0 || echo 1)" \
   "a block beyond the transaction counter is refused" "$out"

admin -c "DROP DATABASE $SRC" -c "DROP DATABASE crm_dump_plain" -c "DROP DATABASE crm_dump_custom"

# Restoring into a new cluster, whose transaction counter is behind the source's: refused
# loudly at the blocks, and fine once the new cluster's epoch is advanced, as docs/audit.md
# says.
source "$CRM_ROOT/test/lib.sh"
MAIN_HOST=$PGHOST MAIN_PORT=$PGPORT
NEW="$DIR/new_cluster"
trap 'stop_cluster "$NEW"' EXIT
MAIN_DATA=$("$PG_BIN/psql" -X -At -d postgres -c "SHOW data_directory")
(start_cluster "$NEW" >/dev/null 2>&1; echo "$PGPORT" >"$DIR/new_port")
export PGHOST=$NEW PGPORT=$(cat "$DIR/new_port")
# The source's entry key goes first, as docs/audit.md says (the file, mode 0600).
copy_key() {
    as_pg sh -c 'mkdir -p -m 700 "$1/crm_security" && cp "$0/crm_security/audit_entry.key" "$1/crm_security/audit_entry.key" && chmod 600 "$1/crm_security/audit_entry.key"' \
        "$MAIN_DATA" "$NEW/data"
}
copy_key
ok $? "the source's entry key is copied into the new cluster"
admin -c "CREATE DATABASE crm_dump_new TEMPLATE template0"
"$PG_BIN/pg_restore" --exit-on-error -d crm_dump_new "$DIR/custom.dump" >"$DIR/restore_new.out" 2>&1
rc=$?
ok "$([ $rc -ne 0 ] && grep -q "covers transactions this cluster has not reached" "$DIR/restore_new.out" && echo 0 || echo 1)" \
   "a restore into a cluster whose transaction counter is behind stops at the blocks" "$(cat "$DIR/restore_new.out")"
stop_cluster "$NEW"
as_pg "$PG_BIN/pg_resetwal" --epoch=1 -D "$NEW/data" >"$DIR/resetwal.out" 2>&1
ok $? "pg_resetwal --epoch=1 on the stopped new cluster" "$(cat "$DIR/resetwal.out")"
as_pg "$PG_BIN/pg_ctl" -D "$NEW/data" -l "$NEW/server.log" -w -t 60 start >/dev/null
admin -c "DROP DATABASE crm_dump_new" -c "CREATE DATABASE crm_dump_new TEMPLATE template0"
# Without the source's key the new cluster makes its own, and the entries do not verify
# under it: the restore stops at audit_log.
as_pg rm -f "$NEW/data/crm_security/audit_entry.key"
"$PG_BIN/pg_restore" --exit-on-error -d crm_dump_new "$DIR/custom.dump" >"$DIR/restore_new.out" 2>&1
rc=$?
ok "$([ $rc -ne 0 ] && grep -q 'cannot insert into "audit_log"' "$DIR/restore_new.out" && echo 0 || echo 1)" \
   "a restore into a cluster without the source's entry key stops at audit_log" "$(cat "$DIR/restore_new.out")"
as_pg rm -f "$NEW/data/crm_security/audit_entry.key"
copy_key
admin -c "DROP DATABASE crm_dump_new" -c "CREATE DATABASE crm_dump_new TEMPLATE template0"
"$PG_BIN/pg_restore" --exit-on-error -d crm_dump_new "$DIR/custom.dump" >"$DIR/restore_new.out" 2>&1
ok $? "then, with the key, the restore succeeds" "$(cat "$DIR/restore_new.out")"
is "$(psql_db crm_dump_new -c "SELECT crm_security.audit_key_fingerprint()")" "$KEY_FP" \
   "the new cluster uses the source's entry key (same fingerprint)"
is "$(psql_db crm_dump_new -c "SET client_min_messages = warning" \
      -c "UPDATE deals SET title = 'in the new cluster' WHERE id = 2" \
      -c "SELECT crm_security.seal_audit_log() > 0" \
      -c "SELECT ok FROM crm_security.verify_audit_log('$digest')")" "t
t" "the new cluster writes, seals and verifies the restored chain with the old digest"
stop_cluster "$NEW"
export PGHOST=$MAIN_HOST PGPORT=$MAIN_PORT
