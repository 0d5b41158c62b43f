#!/usr/bin/env bash
# The canonical forms of docs/audit.md, checked by a program that owes nothing to the
# database: the Python verifier printed in the documentation (extracted from it here, so the
# two cannot drift apart) must accept an intact exported log, reach the digest, and reject
# a tampered one; entry hashes are checked with the entry key file, the chain without it.
set -uo pipefail
: "${PG_BIN:?}" "${CRM_WORK:?}" "${CRM_ROOT:?}"
DB=crm_audit_external
DIR="$CRM_WORK/audit_external"
mkdir -p "$DIR"
chmod 777 "$DIR"
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$DB")

echo "1..6"
if ! command -v python3 >/dev/null; then
    for i in 1 2 3 4 5 6; do echo "ok $i # SKIP python3 is not installed"; done
    exit 0
fi
# The verifier and the export commands, as the documentation prints them.
awk '/^```python$/ {p = 1; next} /^```$/ {p = 0} p' "$CRM_ROOT/docs/audit.md" >"$DIR/verify.py"
grep -E '^\\copy \(SELECT json_build_array' "$CRM_ROOT/docs/audit.md" >"$DIR/export.sql"

"$PG_BIN/psql" -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION crm_security;
CREATE TABLE t (id int, region text, note text, amount numeric, doc jsonb, tags text[], at timestamptz,
                secret text, PRIMARY KEY (id, region));
SELECT crm_security.enable_audit('t', ARRAY['secret']);
INSERT INTO t VALUES (1, 'eu', E'caf\u00e9 "quoted" \\ back\nslash', 12.50, '{"k": [1, "\u00e9"]}', ARRAY['a', 'b c'], '2024-01-01 10:00+02', 's');
INSERT INTO t (id, region) VALUES (2, 'us');
UPDATE t SET note = 'changed', tags = NULL WHERE id = 1;
DELETE FROM t WHERE id = 2;
SELECT crm_security.log_event('export', 'report', E'r\t1', 'denied', '{"n": 1.0}');
SELECT crm_security.seal_audit_log();
INSERT INTO t (id, region, note) VALUES (3, 'eu', 'second block');
SELECT crm_security.seal_audit_log();
SQL
# Over TCP too, so that client_addr is set in one entry.
"$PG_BIN/psql" -X -q -h 127.0.0.1 -d "$DB" -c "SELECT crm_security.log_event('tcp')" -c "SELECT crm_security.seal_audit_log()" >/dev/null 2>&1 || true
export_log() { (cd "$DIR" && "${PSQL[@]}" -f "$DIR/export.sql" >/dev/null); }
export_log
digest=$("${PSQL[@]}" -c "SELECT crm_security.audit_digest()->>'block_hash'")
# The entry key file, read here as a superuser can (an auditor would get a copy of the file).
python3 -c 'import sys; open(sys.argv[1], "wb").write(bytes.fromhex(sys.argv[2]))' "$DIR/entry.key" \
    "$("${PSQL[@]}" -c "SELECT encode(pg_read_binary_file('crm_security/audit_entry.key'), 'hex')")"
out=$(python3 "$DIR/verify.py" "$DIR/entries.jsonl" "$DIR/blocks.jsonl" "$DIR/entry.key" 2>&1)
if [[ "$out" == ok:* ]]; then echo "ok 1 - the documented verifier accepts the intact log ($out)"; else echo "not ok 1 - the documented verifier accepts the intact log: $out"; fi
if [[ "$out" == *"$digest" ]]; then echo "ok 2 - it reaches the digest"; else echo "not ok 2 - it reaches the digest $digest"; fi
out=$(python3 "$DIR/verify.py" "$DIR/entries.jsonl" "$DIR/blocks.jsonl" 2>&1)
if [[ "$out" == ok:*"no key"*"$digest" ]]; then echo "ok 3 - without the key it checks the chain up to the digest ($out)"; else echo "not ok 3 - without the key it checks the chain up to the digest: $out"; fi

"${PSQL[@]}" >/dev/null <<'SQL'
ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
UPDATE crm_security.audit_log SET actor_id = 'mallory' WHERE operation = 'UPDATE';
SQL
export_log
out=$(python3 "$DIR/verify.py" "$DIR/entries.jsonl" "$DIR/blocks.jsonl" "$DIR/entry.key" 2>&1)
if [[ "$out" == *"does not match its hash"* ]]; then echo "ok 4 - it rejects a modified entry ($out)"; else echo "not ok 4 - it rejects a modified entry: $out"; fi
"${PSQL[@]}" -c "UPDATE crm_security.audit_log SET entry_hash = sha256(crm_security.audit_canonical_entry(id)) WHERE operation = 'UPDATE'" >/dev/null
export_log
out=$(python3 "$DIR/verify.py" "$DIR/entries.jsonl" "$DIR/blocks.jsonl" "$DIR/entry.key" 2>&1)
if [[ "$out" == *"entry "*" does not match its hash"* ]]; then echo "ok 5 - with the key it rejects a modified entry with a recomputed plain SHA-256 ($out)"; else echo "not ok 5 - with the key it rejects a modified entry with a recomputed plain SHA-256: $out"; fi
out=$(python3 "$DIR/verify.py" "$DIR/entries.jsonl" "$DIR/blocks.jsonl" 2>&1)
if [[ "$out" == *"entries of block 1 changed"* ]]; then echo "ok 6 - without the key it rejects it by the block's entries hash ($out)"; else echo "not ok 6 - without the key it rejects it by the block's entries hash: $out"; fi

rm -f "$DIR/entry.key"
"$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE $DB" >/dev/null
