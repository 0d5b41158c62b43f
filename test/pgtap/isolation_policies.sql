-- isolation_report() compares each isolated table's policies with what
-- enable_tenant_isolation created (the registry crm_security.isolated_tables): a policy added,
-- redefined (ALTER POLICY, DROP and CREATE), dropped, row level security disabled or not
-- forced are each reported; renames do not make it lie; the registry is the extension's to
-- write.  (docs/security.md, finding on added and rewritten policies.)
BEGIN;
SELECT plan(56);

CREATE ROLE regress_pol_app NOSUPERUSER NOBYPASSRLS;
CREATE ROLE regress_pol_owner NOSUPERUSER NOBYPASSRLS;
\ir include/tap_state.sql
SELECT pg_temp.grant_tap_state('regress_pol_app', 'regress_pol_owner');
SELECT crm_security.add_jwt_key('regress_pol', 'HS256', 'regress-policies-secret-0123456789abcdef');
CREATE FUNCTION pg_temp.ctx(claims jsonb) RETURNS boolean LANGUAGE sql AS $$
    SELECT crm_security.set_claim_context(
        crm_security.jwt_sign(claims || jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600),
                              'regress-policies-secret-0123456789abcdef', 'HS256')) IS NOT NULL
$$;
-- The report's issues for one table, sorted.
CREATE FUNCTION pg_temp.issues(tbl text) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(r.issue ORDER BY r.issue), '{}') FROM crm_security.isolation_report() r
     WHERE r.relation::text = tbl
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;

CREATE SCHEMA regress_pol;
GRANT USAGE ON SCHEMA regress_pol TO regress_pol_app, regress_pol_owner;
CREATE TABLE regress_pol.deals (id int, tenant_id text NOT NULL, title text);
CREATE INDEX ON regress_pol.deals (tenant_id);
INSERT INTO regress_pol.deals VALUES (1, 't1', 'own'), (2, 't2', 'secret of t2');
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_pol.deals TO regress_pol_app;
SELECT crm_security.enable_tenant_isolation('regress_pol.deals');
-- a table of every supported column type, cross_tenant or not, a nondeterministic-free setup
CREATE TABLE regress_pol.by_uuid (id int, org uuid NOT NULL);
CREATE TABLE regress_pol.by_bigint (id int, org bigint NOT NULL);
CREATE TABLE regress_pol.by_int (id int, org integer NOT NULL);
CREATE TABLE regress_pol.by_smallint (id int, org smallint NOT NULL);
CREATE TABLE regress_pol.by_varchar (id int, "Org Id" varchar(20) NOT NULL);
CREATE INDEX ON regress_pol.by_uuid (org);
CREATE INDEX ON regress_pol.by_bigint (org);
CREATE INDEX ON regress_pol.by_int (org);
CREATE INDEX ON regress_pol.by_smallint (org);
CREATE INDEX ON regress_pol.by_varchar ("Org Id");
SELECT crm_security.enable_tenant_isolation('regress_pol.by_uuid', 'org');
SELECT crm_security.enable_tenant_isolation('regress_pol.by_bigint', 'org', false);
SELECT crm_security.enable_tenant_isolation('regress_pol.by_int', 'org');
SELECT crm_security.enable_tenant_isolation('regress_pol.by_smallint', 'org', false);
SELECT crm_security.enable_tenant_isolation('regress_pol.by_varchar', 'Org Id');

SELECT is_empty($$SELECT * FROM crm_security.isolation_report() WHERE relation::text LIKE 'regress_pol.%'$$,
                'a clean setup gives an empty report');
SELECT is((SELECT count(*)::int FROM crm_security.isolated_tables WHERE relation::text LIKE 'regress_pol.%'), 6,
          'every isolated table is registered');
SELECT is((SELECT jsonb_array_length(policies) FROM crm_security.isolated_tables WHERE relation = 'regress_pol.deals'::regclass), 6,
          'with the six policies it created');

-- an added permissive policy: the leak of the finding, then its report
CREATE POLICY deals_debug ON regress_pol.deals FOR SELECT USING (true);
SET ROLE regress_pol_app;
SELECT ok(pg_temp.ctx('{"sub":"u1","tenant_id":"t1"}'), 'context of tenant t1');
SELECT is((SELECT count(*)::int FROM regress_pol.deals), 2, 'the added policy lets t1 read t2''s row (the leak reported below)');
SELECT crm_security.clear_claim_context();
RESET ROLE;
SELECT is(pg_temp.issues('regress_pol.deals'),
          ARRAY['permissive policy deals_debug was not created by enable_tenant_isolation: it is OR-ed with the isolation policies and widens what public may read or write'],
          'an added permissive policy is reported');
DROP POLICY deals_debug ON regress_pol.deals;
CREATE POLICY deals_for_app ON regress_pol.deals FOR SELECT TO regress_pol_app USING (true);
SELECT ok(EXISTS (SELECT 1 FROM unnest(pg_temp.issues('regress_pol.deals')) i WHERE i LIKE 'permissive policy deals_for_app %widens what regress_pol_app may%'),
          'a permissive policy for one role is reported with the role');
DROP POLICY deals_for_app ON regress_pol.deals;
CREATE POLICY deals_narrow ON regress_pol.deals AS RESTRICTIVE FOR SELECT USING (id > 0);
SELECT is(pg_temp.issues('regress_pol.deals'),
          ARRAY['restrictive policy deals_narrow: Citus propagates restrictive policies to its shards as permissive, where it widens what the isolation policies allow instead of narrowing it; compose its condition into permissive policies'],
          'an added restrictive policy is reported too, as Citus would widen it');
DROP POLICY deals_narrow ON regress_pol.deals;
SELECT is(pg_temp.issues('regress_pol.deals'), '{}'::text[], 'once dropped, nothing is reported');

-- a redefined extension policy: ALTER POLICY
ALTER POLICY crm_tenant_select ON regress_pol.deals USING (true);
SELECT is(pg_temp.issues('regress_pol.deals'),
          ARRAY['tenant isolation policy crm_tenant_select differs from what enable_tenant_isolation created (USING expression): run enable_tenant_isolation again'],
          'ALTER POLICY ... USING is reported');
SELECT crm_security.enable_tenant_isolation('regress_pol.deals');
SELECT is(pg_temp.issues('regress_pol.deals'), '{}'::text[], 'enable_tenant_isolation again restores it');
ALTER POLICY crm_tenant_insert ON regress_pol.deals WITH CHECK (true);
SELECT is(pg_temp.issues('regress_pol.deals'),
          ARRAY['tenant isolation policy crm_tenant_insert differs from what enable_tenant_isolation created (WITH CHECK expression): run enable_tenant_isolation again'],
          'ALTER POLICY ... WITH CHECK is reported');
SELECT crm_security.enable_tenant_isolation('regress_pol.deals');
ALTER POLICY crm_tenant_update ON regress_pol.deals TO regress_pol_owner;
SELECT is(pg_temp.issues('regress_pol.deals'),
          ARRAY['tenant isolation policy crm_tenant_update differs from what enable_tenant_isolation created (roles): run enable_tenant_isolation again'],
          'ALTER POLICY ... TO is reported');
SELECT crm_security.enable_tenant_isolation('regress_pol.deals');
-- DROP and CREATE under the same name
DROP POLICY crm_tenant_select ON regress_pol.deals;
CREATE POLICY crm_tenant_select ON regress_pol.deals FOR SELECT USING (true);
SELECT is(pg_temp.issues('regress_pol.deals'),
          ARRAY['tenant isolation policy crm_tenant_select differs from what enable_tenant_isolation created (USING expression): run enable_tenant_isolation again'],
          'a policy dropped and created again with another expression is reported');
SELECT crm_security.enable_tenant_isolation('regress_pol.deals');
DROP POLICY crm_tenant_delete ON regress_pol.deals;
CREATE POLICY crm_tenant_delete ON regress_pol.deals AS RESTRICTIVE FOR ALL USING (tenant_id = crm_security.tenant_id_text());
SELECT is(pg_temp.issues('regress_pol.deals'),
          ARRAY['restrictive policy crm_tenant_delete: Citus propagates restrictive policies to its shards as permissive, where it widens what the isolation policies allow instead of narrowing it; compose its condition into permissive policies',
                'tenant isolation policy crm_tenant_delete differs from what enable_tenant_isolation created (command, permissive or restrictive, USING expression): run enable_tenant_isolation again'],
          'another command and kind under the same name are reported');
SELECT crm_security.enable_tenant_isolation('regress_pol.deals');
DROP POLICY crm_tenant_superadmin ON regress_pol.deals;
SELECT is(pg_temp.issues('regress_pol.deals'), ARRAY['tenant isolation policy crm_tenant_superadmin is missing'],
          'a dropped policy is reported');
ALTER POLICY crm_tenant_select ON regress_pol.deals RENAME TO crm_tenant_read;
SELECT is(pg_temp.issues('regress_pol.deals'),
          ARRAY['permissive policy crm_tenant_read was not created by enable_tenant_isolation: it is OR-ed with the isolation policies and widens what public may read or write',
                'tenant isolation policy crm_tenant_select is missing',
                'tenant isolation policy crm_tenant_superadmin is missing'],
          'a renamed policy is reported as missing and added');
SELECT crm_security.enable_tenant_isolation('regress_pol.deals');
DROP POLICY crm_tenant_read ON regress_pol.deals;
SELECT is(pg_temp.issues('regress_pol.deals'), '{}'::text[], 'clean again');

-- row level security turned off or not forced
ALTER TABLE regress_pol.by_varchar DISABLE ROW LEVEL SECURITY;
SELECT is(pg_temp.issues('regress_pol.by_varchar'), ARRAY['row level security is disabled'], 'RLS disabled is reported');
ALTER TABLE regress_pol.by_varchar ENABLE ROW LEVEL SECURITY;
ALTER TABLE regress_pol.by_varchar NO FORCE ROW LEVEL SECURITY;
SELECT is(pg_temp.issues('regress_pol.by_varchar'), ARRAY['row level security is not forced: the owner bypasses it'],
          'NO FORCE is reported');
SELECT is((SELECT tenant_column::text FROM crm_security.isolation_report() WHERE relation = 'regress_pol.by_varchar'::regclass),
          'Org Id', 'with the tenant column''s name');
ALTER TABLE regress_pol.by_varchar FORCE ROW LEVEL SECURITY;
-- the same on a table with a column of another name, and on a bigint one
CREATE POLICY by_int_debug ON regress_pol.by_int USING (true);
ALTER POLICY crm_tenant_select ON regress_pol.by_bigint USING (org > 0);
SELECT ok(array_length(pg_temp.issues('regress_pol.by_int'), 1) = 1 AND array_length(pg_temp.issues('regress_pol.by_bigint'), 1) = 1,
          'policies of tables isolated on other columns are compared too');
DROP POLICY by_int_debug ON regress_pol.by_int;
SELECT crm_security.enable_tenant_isolation('regress_pol.by_bigint', 'org', false);

-- renames do not make the report lie
ALTER TABLE regress_pol.by_uuid RENAME TO by_uuid_renamed;
ALTER TABLE regress_pol.by_uuid_renamed RENAME COLUMN org TO "Tenant Ref";
ALTER TABLE regress_pol.by_varchar RENAME COLUMN "Org Id" TO org;
ALTER TABLE regress_pol.deals RENAME COLUMN title TO tenant_id_old;
ALTER TABLE regress_pol.by_int SET SCHEMA public;
SELECT is_empty($$SELECT * FROM crm_security.isolation_report() WHERE relation::text LIKE 'regress_pol.%' OR relation::text = 'by_int'$$,
                'after renaming tables and tenant columns and moving a table, the report is still empty');
SELECT is((SELECT tenant_column::text FROM crm_security.isolated_tables WHERE relation = 'regress_pol.by_uuid_renamed'::regclass),
          'Tenant Ref', 'the registry follows the renamed column');
ALTER POLICY crm_tenant_select ON regress_pol.by_uuid_renamed USING (true);
SELECT is(pg_temp.issues('regress_pol.by_uuid_renamed'),
          ARRAY['tenant isolation policy crm_tenant_select differs from what enable_tenant_isolation created (USING expression): run enable_tenant_isolation again'],
          'and a change after the rename is still reported');
SELECT crm_security.enable_tenant_isolation('regress_pol.by_uuid_renamed', 'Tenant Ref');
-- a rename that follows a change does not make the change disappear
ALTER POLICY crm_tenant_select ON regress_pol.by_varchar USING (true);
ALTER TABLE regress_pol.by_varchar RENAME COLUMN org TO org2;
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = 'regress_pol.by_varchar'::regclass
                        AND polname = 'crm_tenant_select' AND pg_get_expr(polqual, polrelid) = 'true'),
          'the rename made the policies again from the registry: the change is undone, not recorded');

-- the registry: readable, written only by the extension's functions
SET ROLE regress_pol_app;
SELECT lives_ok($$SELECT * FROM crm_security.isolated_tables$$, 'anyone may read the registry');
SELECT throws_ok($$INSERT INTO crm_security.isolated_tables VALUES ('regress_pol.deals', 'id', true, '[]')$$, '42501', NULL,
                 'PUBLIC cannot insert into the registry');
SELECT throws_ok($$UPDATE crm_security.isolated_tables SET policies = NULL$$, '42501', NULL, 'nor update it');
SELECT throws_ok($$DELETE FROM crm_security.isolated_tables$$, '42501', NULL, 'nor delete from it');
SELECT throws_ok($$SELECT crm_security._isolation_register('regress_pol.deals', 'tenant_id', true)$$, '42501', NULL,
                 'nor register a table it does not own');
SELECT throws_ok($$SELECT crm_security._isolation_apply('regress_pol.deals')$$, '42501', NULL,
                 'nor make the policies of a table it does not own');
SELECT throws_ok($$SELECT crm_security._isolation_unregister('regress_pol.deals'::regclass)$$, '42501', NULL,
                 'nor forget a table it does not own');
RESET ROLE;
-- the owner can make the extension's policies again, never record its own
CREATE TABLE regress_pol.owned (id int, tenant_id text NOT NULL);
CREATE INDEX ON regress_pol.owned (tenant_id);
ALTER TABLE regress_pol.owned OWNER TO regress_pol_owner;
SET ROLE regress_pol_owner;
SELECT crm_security.enable_tenant_isolation('regress_pol.owned');
ALTER POLICY crm_tenant_select ON regress_pol.owned USING (true);
SELECT lives_ok($$SELECT crm_security._isolation_apply('regress_pol.owned')$$, 'the owner may call _isolation_apply');
RESET ROLE;
SELECT ok(pg_temp.issues('regress_pol.owned') = '{}' AND NOT EXISTS (SELECT 1 FROM pg_policy
            WHERE polrelid = 'regress_pol.owned'::regclass AND pg_get_expr(polqual, polrelid) = 'true'),
          'which makes the policies again rather than recording the changed one');
SET ROLE regress_pol_owner;
SELECT crm_security._isolation_register('regress_pol.owned', 'id', false);
RESET ROLE;
SELECT ok('tenant isolation was registered but its policies were not created: run enable_tenant_isolation again'
          = ANY (pg_temp.issues('regress_pol.owned')),
          'a registration without policies is reported');

-- hostile input
SELECT throws_ok($$SELECT crm_security._isolation_register(NULL, 'tenant_id', true)$$, '22023', NULL, '_isolation_register: NULL table');
SELECT throws_ok($$SELECT crm_security._isolation_register('regress_pol.deals', NULL, true)$$, '22023', NULL, '_isolation_register: NULL column');
SELECT throws_ok($$SELECT crm_security._isolation_register(0, 'tenant_id', true)$$, '42P01', NULL, '_isolation_register: no such table');
SELECT throws_ok($$SELECT crm_security._isolation_register('pg_catalog.pg_class_oid_index', 'tenant_id', true)$$, '22023', NULL,
                 '_isolation_register: not a table');
SELECT throws_ok($$SELECT crm_security._isolation_apply(NULL)$$, '22023', NULL, '_isolation_apply: NULL');
SELECT throws_ok($$SELECT crm_security._isolation_apply('regress_pol.owned_x_none')$$, '42P01', NULL, '_isolation_apply: no such table');
CREATE TABLE regress_pol.unregistered (id int, tenant_id text);
SELECT throws_ok($$SELECT crm_security._isolation_apply('regress_pol.unregistered')$$, '55000', NULL, '_isolation_apply: not registered');
SELECT throws_ok($$SELECT crm_security._isolation_unregister(NULL)$$, '22023', NULL, '_isolation_unregister: NULL');
SELECT lives_ok($$SELECT crm_security._isolation_unregister(4294967295)$$, '_isolation_unregister: a table that does not exist');
SELECT throws_ok($$SELECT crm_security._isolation_statements('regress_pol.deals', repeat('x', 10000), true)$$, '42703', NULL,
                 '_isolation_statements: a huge column name');
SELECT throws_ok($$SELECT crm_security.enable_tenant_isolation(0)$$, '22023', NULL, 'enable_tenant_isolation: no such table');
SELECT throws_ok($$SELECT crm_security.enable_tenant_isolation('regress_pol.unregistered', repeat('y', 100000))$$, '42703', NULL,
                 'enable_tenant_isolation: a huge column name');
SELECT throws_ok($$SELECT crm_security.enable_tenant_isolation('regress_pol.unregistered', 'tenant_id', NULL)$$, '22023', NULL,
                 'enable_tenant_isolation: NULL cross_tenant');
SELECT throws_ok($$SELECT crm_security.disable_tenant_isolation(0)$$, '22023', NULL, 'disable_tenant_isolation: no such table');
SELECT throws_ok($$SELECT crm_security.disable_tenant_isolation(NULL)$$, '22023', NULL, 'disable_tenant_isolation: NULL');
SELECT is(crm_security._isolation_policies(NULL, NULL), '[]'::jsonb, '_isolation_policies: NULL');
SELECT is_empty($$SELECT * FROM crm_security._isolation_tree(NULL)$$, '_isolation_tree: NULL');
SELECT lives_ok($$SELECT * FROM crm_security.isolation_report(NULL)$$, 'isolation_report(NULL)');
SELECT ok(EXISTS (SELECT 1 FROM crm_security.isolation_report(array_fill('x'::name, ARRAY[100000]) || '{tenant_id}'::name[])
                   WHERE relation = 'regress_pol.unregistered'::regclass),
          'isolation_report with 100,000 column names');
SELECT lives_ok($$SELECT * FROM crm_security.isolation_report(ARRAY[E'a\x01b', '', '"; DROP TABLE x; --', NULL]::name[])$$,
                'isolation_report with odd names and a NULL element');

SELECT * FROM finish();
ROLLBACK;
