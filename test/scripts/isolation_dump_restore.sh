#!/usr/bin/env bash
# pg_dump keeps tenant isolation's registry (crm_security.isolated_tables): a database with
# isolated tables, partitions made before and after enable_tenant_isolation, an inheritance
# child and a renamed tenant column is dumped (plain and custom format) and restored into
# fresh databases.  The registry must come back the same (tables resolved by name), the
# report must stay empty, and both the report and the event trigger must work on the
# restored tables.
set -uo pipefail
: "${PG_BIN:?}" "${CRM_WORK:?}"
SRC=crm_iso_dump_src
DIR="$CRM_WORK/isolation_dump_restore"
mkdir -p "$DIR"
PSQL=("$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1)
DB=$SRC
source "$(dirname "$0")/include/tap.sh"
admin() { "$PG_BIN/psql" -X -q -d postgres -c "SET client_min_messages = warning" "$@" >/dev/null; }

echo "1..16"
admin -c "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS crm_iso_dump_plain" \
      -c "DROP DATABASE IF EXISTS crm_iso_dump_custom" -c "CREATE DATABASE $SRC TEMPLATE template0"
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION crm_security;
CREATE SCHEMA crm;
CREATE TABLE crm.deals (id int, tenant_id text NOT NULL) PARTITION BY LIST (tenant_id);
CREATE INDEX ON crm.deals (tenant_id);
CREATE TABLE crm.deals_t1 PARTITION OF crm.deals FOR VALUES IN ('t1');
SELECT crm_security.enable_tenant_isolation('crm.deals');
CREATE TABLE crm.deals_t2 PARTITION OF crm.deals FOR VALUES IN ('t2');
CREATE TABLE crm.notes (id int, "Org Id" bigint NOT NULL);
CREATE INDEX ON crm.notes ("Org Id");
SELECT crm_security.enable_tenant_isolation('crm.notes', 'Org Id', cross_tenant => false);
CREATE TABLE crm.notes_child () INHERITS (crm.notes);
CREATE INDEX ON crm.notes_child ("Org Id");
ALTER TABLE crm.notes RENAME COLUMN "Org Id" TO org;
INSERT INTO crm.deals VALUES (1, 't1'), (2, 't2');
SQL
REGISTRY="SELECT string_agg(relation::text || '|' || tenant_column || '|' || cross_tenant || '|' || policies::text, E'\n'
                            ORDER BY relation::text) FROM crm_security.isolated_tables"
before=$(q -c "$REGISTRY")
check "the source registers 5 tables" 5 "$(q -c "SELECT count(*) FROM crm_security.isolated_tables WHERE NOT system")"
check "the source's report is empty" 0 "$(q -c "SELECT count(*) FROM crm_security.isolation_report()")"

"$PG_BIN/pg_dump" -d "$SRC" -Fp -f "$DIR/plain.sql" 2>"$DIR/dump_plain.err"
check "pg_dump (plain) succeeds" 0 "$?"
"$PG_BIN/pg_dump" -d "$SRC" -Fc -f "$DIR/custom.dump" 2>"$DIR/dump_custom.err"
check "pg_dump (custom) succeeds" 0 "$?"
admin -c "CREATE DATABASE crm_iso_dump_plain TEMPLATE template0" -c "CREATE DATABASE crm_iso_dump_custom TEMPLATE template0"
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d crm_iso_dump_plain -f "$DIR/plain.sql" >"$DIR/restore_plain.out" 2>&1
check "the plain dump restores with ON_ERROR_STOP" 0 "$?"
"$PG_BIN/pg_restore" --exit-on-error -d crm_iso_dump_custom "$DIR/custom.dump" >"$DIR/restore_custom.out" 2>&1
check "the custom dump restores with --exit-on-error" 0 "$?"

for DB in crm_iso_dump_plain crm_iso_dump_custom; do
    fmt=${DB#crm_iso_dump_}
    check "$fmt: the registry is restored as it was" "$before" "$(q -c "$REGISTRY")"
    check "$fmt: the report is empty" 0 "$(q -c "SELECT count(*) FROM crm_security.isolation_report()")"
    check "$fmt: a partition created after the restore is isolated" "true|true|6" \
          "$(q -c "CREATE TABLE crm.deals_t3 PARTITION OF crm.deals FOR VALUES IN ('t3')" \
               -c "SELECT c.relrowsecurity || '|' || c.relforcerowsecurity || '|' || (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
                     FROM pg_class c WHERE c.oid = 'crm.deals_t3'::regclass")"
    check "$fmt: a policy added after the restore is reported" \
          "permissive policy debug was not created by enable_tenant_isolation: it is OR-ed with the isolation policies and widens what public may read or write" \
          "$(q -c "CREATE POLICY debug ON crm.notes_child FOR SELECT USING (true)" \
               -c "SELECT issue FROM crm_security.isolation_report() WHERE relation = 'crm.notes_child'::regclass")"
    check "$fmt: a policy changed after the restore is reported" 1 \
          "$(q -c "ALTER POLICY crm_tenant_select ON crm.deals_t1 USING (true)" \
               -c "SELECT count(*) FROM crm_security.isolation_report() WHERE relation = 'crm.deals_t1'::regclass AND issue LIKE 'tenant isolation policy crm_tenant_select differs%'")"
done

admin -c "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS crm_iso_dump_plain" \
      -c "DROP DATABASE IF EXISTS crm_iso_dump_custom"
exit $failed
