#!/usr/bin/env bash
# ALTER EXTENSION crm_security UPDATE from the last release (docs/upgrading.md).
#
# In a cluster of its own (so that the roles the extension creates are seen as the upgrade
# leaves them): 0.1.0's frozen install script is installed with the current library, keys,
# role grants, an isolated and audited table with data, writes under a verified context and
# a sealed audit block are made; then ALTER EXTENSION crm_security UPDATE.  Checked:
#   - every object of the extension (functions with their full definition, volatility,
#     strictness, parallel label, SECURITY DEFINER, SET options, ACL, comment; tables and
#     views with columns, defaults, constraints, indexes, policies, triggers, options, ACLs,
#     comments; sequences; event triggers; types; the configuration tables pg_dump keeps;
#     initial privileges; the schema; the roles the extension creates and their
#     memberships) equals what a fresh install of the current version creates, shown as a
#     diff when not;
#   - data and behaviour survive: a token signed before the update still verifies, the
#     context, tenant isolation, role grants and permission checks work, and the audit log
#     still verifies (with the digest taken before the update) after the update and after
#     more writes;
#   - every C symbol that the frozen 0.1.0 script names is defined by the built library;
#   - make install installed each released install script, the current one and the upgrade
#     scripts; META.json's version equals the control file's.
set -uo pipefail
: "${PG_BIN:?}" "${CRM_WORK:?}" "${CRM_ROOT:?}"
DIR="$CRM_WORK/upgrade"
mkdir -p "$DIR"
chmod 755 "$DIR"
FROM=0.1.0
TO=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$CRM_ROOT/crm_security.control")
SHARE=$("$PG_BIN/pg_config" --sharedir)/extension
LIB=$("$PG_BIN/pg_config" --pkglibdir)/crm_security.so
n=0
ok() {  # ok STATUS DESCRIPTION [DIAGNOSTIC-FILE-OR-TEXT]
    n=$((n + 1))
    if [ "$1" = 0 ]; then echo "ok $n - $2"; else
        echo "not ok $n - $2"
        if [ -n "${3:-}" ]; then
            if [ -f "$3" ]; then head -120 "$3"; else printf '%s\n' "$3" | head -40; fi | sed 's/^/# /'
        fi
    fi
}
is() {  # is GOT EXPECTED DESCRIPTION
    n=$((n + 1))
    if [ "$1" = "$2" ]; then echo "ok $n - $3"; else
        echo "not ok $n - $3"; printf '#   got:      %s\n#   expected: %s\n' "$1" "$2"
    fi
}

echo "1..26"

# --- what is installed --------------------------------------------------------------------
missing=
for f in "crm_security--$FROM.sql" "crm_security--$TO.sql" "crm_security--$FROM--$TO.sql"; do
    [ -f "$SHARE/$f" ] || missing="$missing $f"
done
ok "$([ -z "$missing" ] && echo 0 || echo 1)" "make install installs the $FROM and $TO install scripts and the upgrade script" "missing:$missing"
cmp -s "$CRM_ROOT/sql/crm_security--$FROM.sql" "$SHARE/crm_security--$FROM.sql"
ok $? "the installed $FROM script is the frozen one (sql/crm_security--$FROM.sql)"

# Every C function of the released SQL must resolve in the library that replaces it, or
# CREATE EXTENSION ... VERSION '$FROM' (and every 0.1.0 database, until its update) fails.
syms=$(tr '\n' ' ' <"$CRM_ROOT/sql/crm_security--$FROM.sql" |
       grep -oE "'MODULE_PATHNAME'[[:space:]]*,[[:space:]]*'[A-Za-z0-9_]+'" | sed -E "s/.*,[[:space:]]*'([A-Za-z0-9_]+)'/\1/" | sort -u)
defined=$(nm -D --defined-only "$LIB" 2>/dev/null | awk '{print $NF}' | sort -u)
unresolved=
for s in $syms; do
    grep -qxF "$s" <<<"$defined" && grep -qxF "pg_finfo_$s" <<<"$defined" || unresolved="$unresolved $s"
done
ok "$([ -n "$syms" ] && [ "$(wc -w <<<"$syms")" -gt 50 ] && [ -z "$unresolved" ] && echo 0 || echo 1)" \
   "every C symbol of the $FROM script ($(wc -w <<<"$syms") names) is defined by the library, with its pg_finfo_ record" \
   "not defined:$unresolved"

# META.json (PGXN) names the control file's version, for the distribution and the extension.
meta=$(python3 - "$CRM_ROOT/META.json" <<'PY' 2>&1
import json, re, sys
m = json.load(open(sys.argv[1]))
req = ["name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"]
miss = [k for k in req if k not in m]
assert not miss, "missing keys: %s" % miss
assert m["meta-spec"]["version"] == "1.0.0", "meta-spec version"
assert re.fullmatch(r"\d+\.\d+\.\d+", m["version"]), "version is not semantic"
p = m["provides"]["crm_security"]
assert p["version"] == m["version"], "provides.crm_security.version differs from version"
assert p["file"], "provides.crm_security.file"
print(m["version"])
PY
)
is "$meta" "$TO" "META.json is valid JSON with the PGXN keys, and its version is the control file's ($TO)"

# --- a cluster of its own -----------------------------------------------------------------
source "$CRM_ROOT/test/lib.sh"
MAIN_HOST=$PGHOST MAIN_PORT=$PGPORT
trap 'stop_cluster "$DIR/pg"; export PGHOST=$MAIN_HOST PGPORT=$MAIN_PORT' EXIT
(start_cluster "$DIR/pg" >/dev/null 2>&1; echo "$PGPORT" >"$DIR/port")
export PGHOST="$DIR/pg" PGPORT=$(cat "$DIR/port")
sql() { local db=$1; shift; "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }
admin() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" "$@" >/dev/null; }

SECRET=upgrade-secret-0123456789-0123456789-abc
admin -c "CREATE DATABASE crm_up TEMPLATE template0"
out=$(sql crm_up -c "SET client_min_messages = warning" -c "CREATE EXTENSION crm_security VERSION '$FROM'" \
      -c "SELECT extversion FROM pg_extension WHERE extname = 'crm_security'" 2>&1)
is "$out" "$FROM" "CREATE EXTENSION crm_security VERSION '$FROM' runs the frozen script with the current library"

# State made under 0.1.0.
sql crm_up >"$DIR/setup.out" 2>&1 <<SQL
SET client_min_messages = warning;
SELECT crm_security.add_jwt_key('k-up', 'HS256', '$SECRET');
CREATE ROLE regress_upgrade_app LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE TABLE public.deals (id int PRIMARY KEY, tenant_id text NOT NULL, title text, owner text);
CREATE TABLE public.contacts (id int PRIMARY KEY, tenant_id text NOT NULL, name text, email text);
CREATE INDEX ON public.deals (tenant_id);
CREATE INDEX ON public.contacts (tenant_id);
SELECT crm_security.enable_tenant_isolation('public.deals');
SELECT crm_security.enable_tenant_isolation('public.contacts');
SELECT crm_security.enable_audit('public.deals');
SELECT crm_security.enable_audit('public.contacts', personal_columns => ARRAY['name', 'email']);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.deals, public.contacts TO regress_upgrade_app;
INSERT INTO public.deals VALUES (1, 'acme', 'Acme renewal', 'alice'), (2, 'acme', 'Acme upsell', 'alice'),
                                (3, 'globex', 'Globex pilot', 'bob');
INSERT INTO public.contacts VALUES (1, 'acme', 'Ada', 'ada@acme.test'), (2, 'globex', 'Grace', 'grace@globex.test');
SELECT crm_security.create_role('up_rep', '{crm:deals:manage}', 'acme', '{client_user}');
SELECT crm_security.grant_role('alice', 'acme', 'up_rep');
CREATE TABLE public.tokens (who text PRIMARY KEY, token text NOT NULL);
GRANT SELECT ON public.tokens TO regress_upgrade_app;
INSERT INTO public.tokens
SELECT who, crm_security.jwt_sign(claims || jsonb_build_object('exp', extract(epoch FROM now())::bigint + 3600),
                                  '$SECRET', 'HS256', '{"kid": "k-up"}')
  FROM (VALUES ('alice', '{"sub": "alice", "tenant_id": "acme"}'::jsonb),
               ('bob', '{"sub": "bob", "tenant_id": "globex"}')) t(who, claims);
BEGIN;
SET LOCAL ROLE regress_upgrade_app;
SELECT crm_security.set_claim_context(token, request_id => 'req-before') IS NOT NULL FROM public.tokens WHERE who = 'alice';
UPDATE public.deals SET title = 'Acme renewal (signed)' WHERE id = 1;
COMMIT;
SELECT crm_security.seal_audit_log();
SQL
ok $? "under $FROM: keys, role grants, an isolated and audited table with data, a write under a context, a sealed block" "$DIR/setup.out"
DIGEST=$(sql crm_up -c "SELECT crm_security.audit_digest()")
BEFORE_DATA=$(sql crm_up -c "SELECT md5(string_agg(d::text, ',' ORDER BY id)) FROM public.deals d" \
                         -c "SELECT count(*) FROM crm_security.audit_log")

# The update.
out=$(sql crm_up -c "SET client_min_messages = warning" -c "ALTER EXTENSION crm_security UPDATE" \
      -c "SELECT extversion FROM pg_extension WHERE extname = 'crm_security'" 2>&1)
is "${out##*$'\n'}" "$TO" "ALTER EXTENSION crm_security UPDATE brings $FROM to $TO"
ok "$([[ "$out" == *"2 tables are still isolated in the form of crm_security 0.1.0"* ]] && echo 0 || echo 1)" \
   "the update warns that the application's 2 isolated tables keep 0.1.0's policies until isolation is enabled again" "$out"

# --- data and behaviour after the update --------------------------------------------------
as_app() {  # as_app DB WHO SQL...: one transaction as the application role with WHO's token
    local db=$1 who=$2; shift 2
    sql "$db" -c "BEGIN" -c "SET LOCAL ROLE regress_upgrade_app" \
        -c "SELECT crm_security.set_claim_context(token, request_id => 'req-$who') IS NULL FROM public.tokens WHERE who = '$who'" \
        "$@" -c "COMMIT" 2>&1 | sed '1{/^f$/d}'
}
is "$(sql crm_up -c "SELECT md5(string_agg(d::text, ',' ORDER BY id)) FROM public.deals d" \
                 -c "SELECT count(*) FROM crm_security.audit_log")" "$BEFORE_DATA" "the table's rows and the audit entries are unchanged"
is "$(as_app crm_up alice -c "SELECT crm_security.user_id() || '/' || crm_security.tenant_id()")" "alice/acme" \
   "a token signed before the update verifies against the kept key and sets the context"
is "$(as_app crm_up alice -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM public.deals")" "1,2" "isolation: alice sees her tenant's rows only"
is "$(as_app crm_up bob -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM public.deals")" "3" "isolation: bob sees his tenant's rows only"
is "$(sql crm_up -c "SET ROLE regress_upgrade_app" -c "SELECT count(*) FROM public.deals")" "0" "no context, no rows"
is "$(as_app crm_up alice -c "SELECT crm_security.can('crm:deals:delete')::text || crm_security.can('crm:users:manage')::text")" "truefalse" \
   "a role grant made under $FROM still gives its permissions"
out=$(as_app crm_up bob -c '\set VERBOSITY sqlstate' -c "SELECT crm_security.authorize('crm:deals:delete')")
is "$(grep -oE '[0-9A-Z]{5}$' <<<"$out" | tail -1)" "42501" "authorize() refuses a missing permission with 42501"
out=$(as_app crm_up bob -c '\set VERBOSITY sqlstate' -c "INSERT INTO public.deals VALUES (10, 'acme', 'planted', 'bob')")
is "$(grep -oE '[0-9A-Z]{5}$' <<<"$out" | tail -1)" "42501" "a write into another tenant is refused by the policy"
out=$(sql crm_up -c "BEGIN" -c "SET LOCAL ROLE regress_upgrade_app" -c '\set VERBOSITY sqlstate' \
      -c "SELECT crm_security.set_claim_context(crm_security.jwt_sign('{\"sub\": \"eve\", \"tenant_id\": \"acme\"}', 'a-guessed-secret-0123456789-0123456789', 'HS256', '{\"kid\": \"k-up\"}'))" 2>&1)
is "$(grep -oE '[0-9A-Z]{5}$' <<<"$out" | tail -1 | cut -c1-2)" "28" "a forged token is refused (class 28)"
is "$(sql crm_up -c "SELECT ok FROM crm_security.verify_audit_log('$DIGEST')")" "t" \
   "the audit log verifies after the update, with the digest taken before it"
as_app crm_up alice -c "UPDATE public.deals SET title = 'after the update' WHERE id = 2" \
                    -c "INSERT INTO public.contacts VALUES (3, 'acme', 'Alan', 'alan@acme.test')" >/dev/null
is "$(sql crm_up -c "SELECT actor_id || '/' || tenant_id || '/' || request_id FROM crm_security.audit_log WHERE table_name = 'public.deals' ORDER BY id DESC LIMIT 1")" \
   "alice/acme/req-alice" "a write after the update is audited with the verified actor, tenant and request id"
is "$(sql crm_up -c "SELECT crm_security.seal_audit_log() > 0" -c "SELECT ok FROM crm_security.verify_audit_log('$DIGEST')" -c "SELECT ok FROM crm_security.verify_audit_log()")" \
   "t
t
t" "more writes seal onto the same chain, which verifies with and without the old digest"
out=$(sql crm_up -c "UPDATE crm_security.audit_log SET actor_id = 'x'" 2>&1)
ok "$([[ "$out" == *"cannot "* ]] && echo 0 || echo 1)" "the audit log is still append-only after the update" "$out"
REPORT="SELECT coalesce(string_agg(relation || ': ' || issue, '; ' ORDER BY relation::text, issue), 'nothing') FROM crm_security.isolation_report() WHERE relation IN ('public.deals'::regclass, 'public.contacts'::regclass) AND issue IS NOT NULL"
is "$(sql crm_up -c "SELECT count(*) FROM crm_security.isolation_report() WHERE relation IN ('public.deals'::regclass, 'public.contacts'::regclass) AND issue LIKE 'tenant isolation is in the form of crm_security 0.1.0%'")" "2" \
   "isolation_report() names both tables isolated under $FROM as still in its form"
sql crm_up -c "SELECT crm_security.enable_tenant_isolation('public.deals')" \
           -c "SELECT crm_security.enable_tenant_isolation('public.contacts')" >/dev/null
is "$(sql crm_up -c "$REPORT")" "nothing" \
   "after enable_tenant_isolation again, isolation_report() finds nothing missing on them"

# --- the objects: an upgraded install equals a fresh one ----------------------------------
# One record per property of every object of the extension, ordered, with no OID in it.
DESCRIBE=$(cat <<'SQL'
SET search_path = pg_catalog;
SET client_min_messages = warning;
WITH ext AS (SELECT oid, extnamespace FROM pg_extension WHERE extname = 'crm_security'),
mem AS (SELECT d.classid, d.objid FROM pg_depend d, ext
         WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
rels AS (SELECT c.* FROM pg_class c JOIN mem ON mem.classid = 'pg_class'::regclass AND mem.objid = c.oid),
items(k, v) AS (
    SELECT 'extension', format('version %s, relocatable %s, schema %s, configuration tables (pg_dump keeps their rows) %s',
                               e.extversion, e.extrelocatable, e.extnamespace::regnamespace,
                               (SELECT string_agg(t::regclass || ' ' || pg_catalog.quote_literal(c), ', ' ORDER BY t::regclass::text)
                                  FROM unnest(e.extconfig, e.extcondition) u(t, c)))
      FROM pg_extension e WHERE e.extname = 'crm_security'
    UNION ALL
    SELECT 'member ' || pg_describe_object(classid, objid, 0), '' FROM mem
    UNION ALL
    SELECT 'schema ' || n.nspname, format('owner %s, acl %s, comment %s', n.nspowner::regrole,
           (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(coalesce(n.nspacl, acldefault('n', n.nspowner))) x),
           obj_description(n.oid, 'pg_namespace'))
      FROM pg_namespace n, ext WHERE n.oid = ext.extnamespace
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure,
           format(E'%s\nowner %s, acl %s\ncomment %s',
                  CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END,
                  p.proowner::regrole,
                  (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) x),
                  obj_description(p.oid, 'pg_proc'))
      FROM pg_proc p JOIN mem ON mem.classid = 'pg_proc'::regclass AND mem.objid = p.oid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass,
           format('kind %s, persistence %s, owner %s, rls %s, forced %s, replica identity %s, options %s, acl %s, comment %s',
                  c.relkind, c.relpersistence, c.relowner::regrole, c.relrowsecurity, c.relforcerowsecurity,
                  c.relreplident, c.reloptions,
                  (SELECT string_agg(x::text, ',' ORDER BY x::text)
                     FROM unnest(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) x),
                  obj_description(c.oid, 'pg_class'))
      FROM rels c
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' column ' || lpad(row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)::text, 3, '0'),
           format('%s %s%s%s%s%s%s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                  CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
                  ' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid),
                  CASE WHEN a.attidentity <> '' THEN ' IDENTITY ' || a.attidentity::text ELSE '' END,
                  CASE WHEN a.attgenerated <> '' THEN ' GENERATED ' || a.attgenerated::text ELSE '' END,
                  CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN ' COLLATE ' || a.attcollation::regcollation ELSE '' END,
                  ' acl ' || (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(a.attacl) x),
                  ' comment ' || col_description(c.oid, a.attnum))
      FROM rels c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      JOIN pg_type t ON t.oid = a.atttypid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' constraint ' || co.conname,
           pg_get_constraintdef(co.oid) || coalesce(' comment ' || obj_description(co.oid, 'pg_constraint'), '')
      FROM rels c JOIN pg_constraint co ON co.conrelid = c.oid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' index ' || i.indexrelid::regclass,
           pg_get_indexdef(i.indexrelid) || coalesce(' comment ' || obj_description(i.indexrelid, 'pg_class'), '')
      FROM rels c JOIN pg_index i ON i.indrelid = c.oid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' policy ' || po.polname,
           format('for %s, %s, to %s, using (%s), with check (%s)', po.polcmd,
                  CASE WHEN po.polpermissive THEN 'permissive' ELSE 'restrictive' END,
                  (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END, ',' ORDER BY 1) FROM unnest(po.polroles) r),
                  pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid))
      FROM rels c JOIN pg_policy po ON po.polrelid = c.oid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' trigger ' || tg.tgname,
           pg_get_triggerdef(tg.oid) || ' enabled ' || tg.tgenabled::text
      FROM rels c JOIN pg_trigger tg ON tg.tgrelid = c.oid AND NOT tg.tgisinternal
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' rule ' || ru.rulename,
           CASE WHEN ru.rulename = '_RETURN' THEN pg_get_viewdef(c.oid, true) ELSE pg_get_ruledef(ru.oid, true) END
           || ' enabled ' || ru.ev_enabled::text
      FROM rels c JOIN pg_rewrite ru ON ru.ev_class = c.oid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' sequence',
           format('%s start %s increment %s min %s max %s cache %s cycle %s owned by %s', s.seqtypid::regtype, s.seqstart,
                  s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                  (SELECT d.refobjid::regclass || '.' || a.attname FROM pg_depend d
                     JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
                      AND d.refclassid = 'pg_class'::regclass LIMIT 1))
      FROM rels c JOIN pg_sequence s ON s.seqrelid = c.oid
    UNION ALL
    SELECT 'type ' || format_type(t.oid, NULL),
           format('type %s, base %s, not null %s, default %s, labels %s, constraints %s, attributes %s, comment %s',
                  t.typtype, nullif(t.typbasetype, 0)::regtype, t.typnotnull, t.typdefault,
                  (SELECT string_agg(enumlabel::text, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid),
                  (SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname) FROM pg_constraint WHERE contypid = t.oid),
                  (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                     FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
                  obj_description(t.oid, 'pg_type'))
      FROM pg_type t JOIN mem ON mem.classid = 'pg_type'::regclass AND mem.objid = t.oid
    UNION ALL
    SELECT 'event trigger ' || ev.evtname,
           format('on %s, function %s, enabled %s, tags %s, comment %s', ev.evtevent, ev.evtfoid::regprocedure,
                  ev.evtenabled, ev.evttags, obj_description(ev.oid, 'pg_event_trigger'))
      FROM pg_event_trigger ev JOIN mem ON mem.classid = 'pg_event_trigger'::regclass AND mem.objid = ev.oid
    UNION ALL
    SELECT 'initial privileges ' || pg_describe_object(ip.classoid, ip.objoid, ip.objsubid),
           format('%s %s', ip.privtype, (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(ip.initprivs) x))
      FROM pg_init_privs ip JOIN mem ON mem.classid = ip.classoid AND mem.objid = ip.objoid
    UNION ALL
    SELECT 'role ' || r.rolname,
           format('super %s, inherit %s, createrole %s, createdb %s, login %s, replication %s, bypassrls %s, connection limit %s, member of %s',
                  r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, r.rolreplication,
                  r.rolbypassrls, r.rolconnlimit,
                  (SELECT string_agg(m.roleid::regrole || CASE WHEN m.admin_option THEN ' with admin' ELSE '' END, ', ' ORDER BY 1)
                     FROM pg_auth_members m WHERE m.member = r.oid))
      FROM pg_roles r WHERE r.rolname LIKE 'crm\_security%'
)
SELECT format(E'== %s\n%s', k, v) FROM items ORDER BY k COLLATE "C", v COLLATE "C";
SQL
)
sql crm_up -c "$DESCRIBE" >"$DIR/upgraded.txt" 2>"$DIR/upgraded.err"
ok $? "the upgraded install is described" "$DIR/upgraded.err"

# The fresh install, in the same cluster once the upgraded database and the roles the
# extension created are gone, so that its roles are created by the install itself.
admin -c "DROP DATABASE crm_up" -c "DROP ROLE regress_upgrade_app"
for r in $(sql postgres -c "SELECT rolname FROM pg_roles WHERE rolname LIKE 'crm\_security%'"); do
    admin -c "DROP ROLE \"$r\""
done
admin -c "CREATE DATABASE crm_fresh TEMPLATE template0"
sql crm_fresh -c "SET client_min_messages = warning" -c "CREATE EXTENSION crm_security" >"$DIR/fresh.err" 2>&1 &&
    sql crm_fresh -c "$DESCRIBE" >"$DIR/fresh.txt" 2>>"$DIR/fresh.err"
ok $? "a fresh install of $TO is described" "$DIR/fresh.err"
n_objects=$(grep -c '^== member ' "$DIR/fresh.txt")
diff -u --label "fresh install of $TO" --label "$FROM updated to $TO" "$DIR/fresh.txt" "$DIR/upgraded.txt" >"$DIR/objects.diff"
rc=$?
if [ $rc -ne 0 ]; then
    { echo "The upgrade script sql/crm_security--$FROM--$TO.sql (from sql/upgrade/$TO/*.sql) misses what the"
      echo "lines below show ('-': the fresh install has it, '+': the upgraded one has it); each record starts"
      echo "with '== <object>'.  Full diff: $DIR/objects.diff (kept with CRM_KEEP=1)."
      cat "$DIR/objects.diff"; } >"$DIR/objects.report"
fi
ok "$([ $rc = 0 ] && [ "$n_objects" -gt 150 ] && echo 0 || echo 1)" \
   "the upgraded install's objects equal a fresh install's ($n_objects member objects, $(grep -c '^== ' "$DIR/fresh.txt") records)" "$DIR/objects.report"
admin -c "DROP DATABASE crm_fresh"
