#!/usr/bin/env bash
# The entry key file, in a cluster of its own: created once on first use even when many
# sessions need it at the same moment (every session gets the same key), with mode 0600 in
# a 0700 directory of the data directory, its bytes in no log line; a cluster whose key was
# replaced reports every entry, and gets them back with the original file.
set -uo pipefail
: "${PG_BIN:?}" "${CRM_WORK:?}" "${CRM_ROOT:?}"
source "$CRM_ROOT/test/lib.sh"
DIR="$CRM_WORK/audit_key"
mkdir -p "$DIR"
DB=crm_audit_key
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At)
source "$CRM_ROOT/test/scripts/include/tap.sh"

echo "1..8"
NEW="$DIR/cluster"
trap 'stop_cluster "$NEW"' EXIT
start_cluster "$NEW" >/dev/null 2>&1
KEYDIR="$NEW/data/crm_security"
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" >/dev/null
"${PSQL[@]}" -d "$DB" -c "SET client_min_messages = warning" -c "CREATE EXTENSION crm_security" >/dev/null
check "a new cluster has no key before the first use" "no" "$(as_pg test -e "$KEYDIR/audit_entry.key" && echo yes || echo no)"

# Eight sessions need the key at once.
for i in 1 2 3 4 5 6 7 8; do
    "${PSQL[@]}" -d "$DB" -c "SELECT crm_security.audit_key_fingerprint()" >"$DIR/fp.$i" 2>&1 &
done
wait
check "eight sessions starting together all get the same key" "1" "$(sort -u "$DIR"/fp.* | wc -l | tr -d ' ')"
check "... a fingerprint" "64" "$(head -1 "$DIR/fp.1" | tr -d '\n' | wc -c | tr -d ' ')"
check "the key file is 32 bytes, mode 0600" "32 600" "$(as_pg stat -c '%s %a' "$KEYDIR/audit_entry.key")"
check "its directory is mode 0700 and holds nothing else" "700 audit_entry.key" \
      "$(as_pg stat -c '%a' "$KEYDIR") $(as_pg ls "$KEYDIR" | tr '\n' ' ' | sed 's/ $//')"

"${PSQL[@]}" -d "$DB" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE TABLE t (id int PRIMARY KEY);
SELECT crm_security.enable_audit('t');
INSERT INTO t SELECT generate_series(1, 5);
SELECT crm_security.seal_audit_log();
INSERT INTO t VALUES (6);
SQL
keyhex=$(as_pg od -An -tx1 "$KEYDIR/audit_entry.key" | tr -d ' \n')
check "the key's bytes appear in no server log line" "0" "$(grep -ci "$keyhex" "$NEW/server.log")"

# Another key: every entry fails verification; the original file brings them back.
as_pg cp "$KEYDIR/audit_entry.key" "$NEW/saved.key"
as_pg rm "$KEYDIR/audit_entry.key"
check "under another key every entry is reported" "f|t" \
      "$("${PSQL[@]}" -d "$DB" -c "SELECT bool_and(ok), (SELECT count(*) FROM crm_security.audit_log_problems() WHERE entry_id IS NOT NULL) = (SELECT count(*) FROM crm_security.audit_log) FROM crm_security.verify_audit_log()")"
as_pg cp "$NEW/saved.key" "$KEYDIR/audit_entry.key"
check "with the original key file back, the log verifies" "t" \
      "$("${PSQL[@]}" -d "$DB" -c "SELECT ok FROM crm_security.verify_audit_log()")"
as_pg rm -f "$NEW/saved.key"
stop_cluster "$NEW"
exit $failed
