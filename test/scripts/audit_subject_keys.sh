#!/usr/bin/env bash
# Data keys of new data subjects created by sessions at once (src/audit_subject_insert.c,
# docs/privacy.md "Concurrency"):
#  - a session that meets another's uncommitted key of the same subject waits for it; if
#    that transaction rolls back, the waiter makes the key itself; if it commits, the
#    waiter uses that key;
#  - under REPEATABLE READ, a key committed after the transaction's snapshot was taken is
#    a serialization failure (40001), as for INSERT ... ON CONFLICT DO NOTHING.
# The sessions take turns through flag files (psql's \! on the client).
# Environment (from test/run.sh): PG_BIN, PGHOST, PGPORT, PGUSER, CRM_WORK.
set -uo pipefail
: "${PG_BIN:?}" "${CRM_WORK:?}"
DB=crm_subject_keys
DIR="$CRM_WORK/audit_subject_keys"
mkdir -p "$DIR"
rm -f "$DIR"/*.flag
PSQL=("$PG_BIN/psql" -X -q -At)
. "$(dirname "$0")/include/tap.sh"
admin() { "$PG_BIN/psql" -X -q -d postgres -c "SET client_min_messages = warning" "$@" >/dev/null; }
wait_for() {  # wait_for FILE: up to 30 s
    for _ in $(seq 1 300); do [ -f "$1" ] && return 0; sleep 0.1; done
    return 1
}
keys() { q -c "SELECT count(*) FROM crm_security.audit_subject_keys WHERE subject = '$1'"; }
key_of() { q -c "SELECT key_id FROM crm_security.audit_subject_keys WHERE subject = '$1'"; }
entry_key() {  # the key ids named by the entries of a subject's rows, distinct
    q -c "SELECT string_agg(DISTINCT substring(new_row->'name'->>'enc' FROM '^crm[12]\.([0-9]+)'), ',')
            FROM crm_security.audit_log WHERE new_row->>'customer' = '$1'"
}
names() {
    q -c "SELECT string_agg(crm_security.audit_personal_data(id)->'new_row'->>'name', ', ' ORDER BY id)
            FROM crm_security.audit_log WHERE new_row->>'customer' = '$1'"
}

echo "1..11"
admin -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB TEMPLATE template0"
q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION crm_security;
CREATE TABLE contacts (id int PRIMARY KEY, customer text, name text);
SELECT crm_security.enable_audit('contacts', NULL, ARRAY['name'], 'customer');
SQL

# race SUBJECT ID END: a first session writes row ID of SUBJECT (making its key), waits,
# then ends with END (ROLLBACK or COMMIT); a second session writes row ID+1 of SUBJECT
# meanwhile.  Its output is left in $DIR/SUBJECT2.out.
race() {
    q >"$DIR/${1}1.out" <<SQL &
BEGIN;
INSERT INTO contacts VALUES ($2, '$1', '${1^}name one');
\! touch $DIR/${1}1.flag
SELECT pg_sleep(1.5);
$3;
SQL
    wait_for "$DIR/${1}1.flag"
    q -c "INSERT INTO contacts VALUES ($(($2 + 1)), '$1', '${1^}name two')" >"$DIR/${1}2.out"
    wait
}

race ab 1 ROLLBACK
check "a session waiting for a key whose transaction rolls back writes its row" "" "$(cat "$DIR/ab2.out")"
check "... and makes the one key" 1 "$(keys ab)"
check "... which its entry names" "$(key_of ab)" "$(entry_key ab)"
check "... and under which it decrypts" "Abname two" "$(names ab)"

race cm 3 COMMIT
check "a session waiting for a key whose transaction commits writes its row" "" "$(cat "$DIR/cm2.out")"
check "... with that key: one key" 1 "$(keys cm)"
check "... named by both entries" "$(key_of cm)" "$(entry_key cm)"
check "... under which both decrypt" "Cmname one, Cmname two" "$(names cm)"

# REPEATABLE READ: the snapshot is taken, another session commits the key of 'rr', then
# the transaction writes 'rr'.
q >"$DIR/rr1.out" <<SQL &
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM contacts;
\! touch $DIR/rr1.flag
\! i=0; while [ ! -f $DIR/rr2.flag ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done
INSERT INTO contacts VALUES (6, 'rr', 'Rrname one');
\echo sqlstate :LAST_ERROR_SQLSTATE
ROLLBACK;
SQL
wait_for "$DIR/rr1.flag"
q -c "INSERT INTO contacts VALUES (5, 'rr', 'Rrname two')" >"$DIR/rr2.out"
touch "$DIR/rr2.flag"
wait
check "REPEATABLE READ: a key committed after the snapshot is a serialization failure" "sqlstate 40001" \
    "$(grep -o 'sqlstate .*' "$DIR/rr1.out")"
check "... the committed key stays the one" "1:Rrname two" "$(keys rr):$(names rr)"
check "... and the refusal names no value" 0 "$(grep -c 'Rrname' "$DIR/rr1.out")"

admin -c "DROP DATABASE IF EXISTS $DB"
exit $failed
