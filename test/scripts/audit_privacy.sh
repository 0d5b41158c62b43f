#!/usr/bin/env bash
# Personal data in the audit log seen from outside one session (docs/privacy.md):
#  - concurrent first writes for one new data subject, from several sessions whose
#    transactions overlap, agree on one data key, and every value they wrote decrypts;
#  - pg_dump/pg_restore keeps what was not erased readable and what was erased erased, and
#    the restored chain verifies;
#  - no personal value reaches the server log, errors included.
# Environment (from test/run.sh): PG_BIN, PGHOST, PGPORT, PGUSER, CRM_WORK (server log).
set -uo pipefail
: "${PG_BIN:?}" "${CRM_WORK:?}"
SRC=crm_privacy_src
DST=crm_privacy_restored
DIR="$CRM_WORK/audit_privacy"
LOG=$CRM_WORK/pg/server.log
mkdir -p "$DIR"
DB=$SRC
PSQL=("$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1)
. "$(dirname "$0")/include/tap.sh"
admin() { "$PG_BIN/psql" -X -q -d postgres -c "SET client_min_messages = warning" "$@" >/dev/null; }

echo "1..14"
admin -c "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS $DST" -c "CREATE DATABASE $SRC TEMPLATE template0"
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION crm_security;
CREATE TABLE contacts (id int PRIMARY KEY, customer text, name text, email text);
SELECT crm_security.enable_audit('contacts', NULL, ARRAY['name', 'email'], 'customer');
INSERT INTO contacts VALUES (1, 'keep', 'Keptname Privmark', 'kept@privmark.example'),
                            (2, 'gone', 'Gonename Privmark', 'gone@privmark.example');
SQL

# Eight sessions write the first rows of a new subject at once: each inserts, then waits
# until every session has inserted (its transaction still open), then commits.
for i in 1 2 3 4 5 6 7 8; do
    q -c "BEGIN" -c "INSERT INTO contacts VALUES (10$i, 'fresh', 'Fresh$i Privmark', NULL)" \
      -c "SELECT pg_sleep(1.5)" -c "COMMIT" >"$DIR/session$i.out" &
done
wait
check "eight concurrent sessions wrote their rows" 8 \
    "$(q -c "SELECT count(*) FROM contacts WHERE customer = 'fresh'")"
check "concurrent first writes for one new subject made one data key" 1 \
    "$(q -c "SELECT count(*) FROM crm_security.audit_subject_keys WHERE subject = 'fresh'")"
check "every value they wrote names that key" \
    "$(q -c "SELECT key_id FROM crm_security.audit_subject_keys WHERE subject = 'fresh'")" \
    "$(q -c "SELECT string_agg(DISTINCT substring(new_row->'name'->>'enc' FROM '^crm[12]\.([0-9]+)'), ',')
               FROM crm_security.audit_log WHERE new_row->>'customer' = 'fresh'")"
check "every value they wrote decrypts under it" 8 \
    "$(q -c "SELECT count(*) FROM crm_security.audit_log WHERE new_row->>'customer' = 'fresh'
               AND crm_security.audit_personal_data(id)->'new_row'->>'name' LIKE 'Fresh_ Privmark'")"

# Forget one subject, then dump and restore.
q >/dev/null <<'SQL'
SELECT crm_security.seal_audit_log();
SELECT crm_security.forget_subject(NULL, 'gone');
SELECT crm_security.seal_audit_log();
SQL
digest=$(q -c "SELECT crm_security.audit_digest()")
"$PG_BIN/pg_dump" -Fc -d "$SRC" -f "$DIR/src.dump" 2>"$DIR/dump.err"
check "pg_dump succeeds" 0 $?
admin -c "CREATE DATABASE $DST TEMPLATE template0"
"$PG_BIN/pg_restore" -d "$DST" "$DIR/src.dump" >"$DIR/restore.out" 2>&1
check "pg_restore succeeds" 0 $?
DB=$DST
check "the restored chain verifies with the digest taken before the dump" t \
    "$(q -c "SELECT ok FROM crm_security.verify_audit_log('$digest')")"
check "the data keys not erased come back" \
    "$(DB=$SRC q -c "SELECT string_agg(key_id || ':' || subject || ':' || encode(wrapped_key, 'hex'), ',' ORDER BY key_id) FROM crm_security.audit_subject_keys")" \
    "$(q -c "SELECT string_agg(key_id || ':' || subject || ':' || encode(wrapped_key, 'hex'), ',' ORDER BY key_id) FROM crm_security.audit_subject_keys")"
check "what was not erased stays readable after the restore" "Keptname Privmark" \
    "$(q -c "SELECT crm_security.audit_personal_data(id)->'new_row'->>'name' FROM crm_security.audit_log WHERE record_key->>'id' = '1'")"
check "what was erased stays erased after the restore" '{"erased": true}' \
    "$(q -c "SELECT crm_security.audit_personal_data(id)->'new_row'->'name' FROM crm_security.audit_log WHERE record_key->>'id' = '2'")"
check "the dump of the extension's tables holds no personal value in clear" 0 \
    "$("$PG_BIN/pg_restore" -f - --data-only -n crm_security "$DIR/src.dump" | grep -c 'Privmark')"
check "... though it holds the audit log" 1 \
    "$("$PG_BIN/pg_restore" -f - --data-only -n crm_security "$DIR/src.dump" | grep -c 'COPY crm_security.audit_log ')"

# An error about personal data, then the server log.
DB=$SRC
q -c "SELECT crm_security.enable_audit('contacts', NULL, ARRAY['no_such_privlog_col'])" >/dev/null
check "the server log holds the session's errors (the check below is meaningful)" 1 \
    "$(grep -c 'no_such_privlog_col' "$LOG" | awk '{print ($1 > 0)}')"
check "no personal value in the server log" 0 "$(grep -c -i 'privmark' "$LOG")"

admin -c "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS $DST"
exit $failed
