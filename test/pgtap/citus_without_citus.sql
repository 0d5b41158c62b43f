-- The Citus support without Citus (docs/citus.md): the functions refuse clearly, the
-- replication triggers and context propagation cost nothing and change nothing, the
-- internal apply function refuses every table it does not replace and hostile input, the
-- policy signature and isolation_report work, enable_audit makes both triggers.
SET client_min_messages = warning;
BEGIN;
SELECT plan(25);
\ir include/err.sql

SELECT is(pg_temp.err('SELECT crm_security.citus_sync()'), '55000: ', 'citus_sync() without Citus: 55000');
SELECT is(pg_temp.err('SELECT * FROM crm_security.verify_cluster_audit()'), '55000: ', 'verify_cluster_audit() without Citus: 55000');
SELECT is(pg_temp.err('SELECT * FROM crm_security.seal_cluster_audit()'), '55000: ', 'seal_cluster_audit() without Citus: 55000');
SELECT is(pg_temp.err('SELECT crm_security._citus_replicate()'), '39P01: ', '_citus_replicate() outside a trigger: 39P01');

-- _citus_apply: only the replicated tables, NULLs refused, hostile names refused.
SELECT is(pg_temp.err('SELECT crm_security._citus_apply(NULL, ''[]'')'), '22004: ', 'apply: NULL table refused');
SELECT is(pg_temp.err('SELECT crm_security._citus_apply(''jwt_keys'', NULL)'), '22004: ', 'apply: NULL rows refused');
SELECT is(pg_temp.err('SELECT crm_security._citus_apply('''', ''[]'')'), '22023: ', 'apply: empty name refused');
SELECT is(pg_temp.err('SELECT crm_security._citus_apply(''audit_log'', ''[]'')'), '22023: ', 'apply: the audit log is not replaced');
SELECT is(pg_temp.err('SELECT crm_security._citus_apply(''jwt_keys; DROP TABLE x'', ''[]'')'), '22023: ', 'apply: a hostile name refused');
SELECT is(pg_temp.err('SELECT crm_security._citus_apply(repeat(''x'', 1000000), ''[]'')'), '22023: ', 'apply: a huge name refused');
SELECT is(pg_temp.err('SELECT crm_security._citus_apply(''jwt_keys'', ''{"not": "an array"}'')'), '22023: ', 'apply: rows that are not an array refused');

-- As superuser it replaces the rows (what a worker does) and the caches follow.
SELECT crm_security.add_tenant('c1', 'C one');
SELECT crm_security._citus_apply('tenants', (SELECT jsonb_agg(to_jsonb(t) || '{"name": "renamed"}') FROM crm_security.tenants t));
SELECT is((SELECT string_agg(name, ',') FROM crm_security.tenants WHERE id = 'c1'), 'renamed', 'apply replaces the rows of a replicated table');
SELECT is((SELECT count(*)::int FROM crm_security.tenants WHERE id = 'c1'), 1, '... without duplicating them');

CREATE ROLE crm_citus_nobody;
SET LOCAL ROLE crm_citus_nobody;
SELECT is(pg_temp.err('SELECT crm_security._citus_apply(''tenants'', ''[]'')'), '42501: ', 'apply: refused to a role without the right');
SELECT is(pg_temp.err('SELECT crm_security.citus_sync()'), '42501: ', 'citus_sync: refused to a role without the right');
SELECT is(pg_temp.err('SELECT * FROM crm_security.citus_synced_nodes'), '42501: ', 'citus_synced_nodes: not readable by a role without the right');
RESET ROLE;

-- Without Citus the triggers do nothing: a key, a member, a change are local as always.
SELECT lives_ok($$SELECT crm_security.add_tenant_member('c1', 'u1')$$, 'a member is added without Citus');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgname = 'citus_replicate'), 17, 'the 17 replicated tables have the trigger');

-- The policy signature (a shard is compared with its table by it).
CREATE TABLE pt (tenant_id text, v int);
ALTER TABLE pt ENABLE ROW LEVEL SECURITY;
CREATE POLICY p1 ON pt AS RESTRICTIVE FOR UPDATE TO crm_citus_nobody USING (v > 0) WITH CHECK (v < 10);
SELECT is(crm_security._policy_signature('pt')::jsonb,
          '{"force": false, "row_security": true, "policies": [{"name": "p1", "command": "w", "permissive": false, "roles": ["crm_citus_nobody"], "using": "(v > 0)", "check": "(v < 10)"}]}'::jsonb,
          'the signature names the policy, its command, permissive flag, roles and expressions');
SELECT is(crm_security._policy_signature(NULL), NULL, 'the signature of NULL is NULL');
SELECT is((SELECT count(*)::int FROM crm_security.isolation_report() WHERE kind = 'shard'), 0, 'isolation_report() has no shard row without Citus');

-- enable_audit still makes both triggers, one command at a time.
CREATE TABLE at (id int PRIMARY KEY, v text);
SELECT crm_security.enable_audit('at');
SELECT is((SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'at'::regclass), 'crm_audit_row,crm_audit_truncate', 'enable_audit makes the row and TRUNCATE triggers');
SELECT lives_ok($$SELECT crm_security.enable_audit('at', exclude_columns => '{v}')$$, 'enable_audit again with other options replaces them');

-- Without Citus a table named like a shard (name_<digits>) is audited under its own name.
CREATE TABLE deals_102008 (id int PRIMARY KEY);
SELECT crm_security.enable_audit('deals_102008');
INSERT INTO deals_102008 VALUES (1);
TRUNCATE deals_102008;
SELECT is((SELECT string_agg(DISTINCT table_name, ',') FROM crm_security.audit_log WHERE kind = 'row' AND table_name LIKE '%deals_1%'),
          'public.deals_102008', 'without Citus, a table named like a shard keeps its name in its entries (INSERT, TRUNCATE)');
SELECT is((SELECT count(*)::int FROM crm_security.audit_log WHERE kind = 'row' AND table_name = 'public.deals_102008'), 2,
          '... both entries written');

SELECT * FROM finish();
ROLLBACK;
DROP ROLE IF EXISTS crm_citus_nobody;
