-- Partitions and inheritance children of isolated tables (docs/security.md, finding on
-- partitions and children): created (PARTITION OF, INHERITS) or attached (ATTACH PARTITION,
-- INHERIT) after enable_tenant_isolation, at any depth, they are isolated as their parent;
-- what cannot be is refused; a detached partition keeps its isolation; isolation_report()
-- finds an unprotected descendant whatever the tenant column's name.  Tenant t1's member
-- (regress_desc_app, not the owner) must never read or write t2's rows through them.
BEGIN;
SELECT plan(71);

CREATE ROLE regress_desc_app NOSUPERUSER NOBYPASSRLS;
CREATE ROLE regress_desc_owner NOSUPERUSER NOBYPASSRLS;
\ir include/tap_state.sql
SELECT pg_temp.grant_tap_state('regress_desc_app', 'regress_desc_owner');
SELECT crm_security.add_jwt_key('regress_desc', 'HS256', 'regress-descendants-secret-0123456789abcdef');
CREATE FUNCTION pg_temp.ctx(claims jsonb) RETURNS boolean LANGUAGE sql AS $$
    SELECT crm_security.set_claim_context(
        crm_security.jwt_sign(claims || jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600),
                              'regress-descendants-secret-0123456789abcdef', 'HS256')) IS NOT NULL
$$;
-- A statement's row count as text, or the SQLSTATE it raised.
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE q;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n::text;
EXCEPTION WHEN OTHERS THEN
    RETURN 'error ' || SQLSTATE;
END $$;
-- Row level security enabled and forced, and the isolation policies on the column: the
-- four of members, and the two of the cross-tenant roles when the registry says
-- cross_tenant; none restrictive.
CREATE FUNCTION pg_temp.isolated(tbl regclass, col name) RETURNS boolean LANGUAGE sql AS $$
    SELECT c.relrowsecurity AND c.relforcerowsecurity
           AND (SELECT count(*) FROM pg_policy p WHERE p.polrelid = tbl
                  AND p.polname = ANY (crm_security._isolation_policy_names()))
               = CASE WHEN (SELECT r.cross_tenant FROM crm_security.isolated_tables r WHERE r.relation = tbl) THEN 6 ELSE 4 END
           AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = tbl AND NOT p.polpermissive)
           AND EXISTS (SELECT 1 FROM pg_policy p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_policy'::regclass
                         JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                        WHERE p.polrelid = tbl AND p.polname = 'crm_tenant_select' AND a.attname = col)
      FROM pg_class c WHERE c.oid = tbl
$$;
-- What tenant t1's member gets from a table that holds only rows of t2: rows read, rows
-- updated, rows deleted, and the outcome of inserting a row of t2.
CREATE FUNCTION pg_temp.as_t1(tbl text, col text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    SET LOCAL ROLE regress_desc_app;
    PERFORM pg_temp.ctx('{"sub":"u1","tenant_id":"t1"}');
    r := pg_temp.outcome(format('SELECT * FROM %s', tbl)) || '/'
         || pg_temp.outcome(format('UPDATE %s SET id = id', tbl)) || '/'
         || pg_temp.outcome(format('DELETE FROM %s', tbl)) || '/'
         || pg_temp.outcome(format('INSERT INTO %s (id, %I) VALUES (999, %L)', tbl, col, 't2'));
    PERFORM crm_security.clear_claim_context();
    RESET ROLE;
    RETURN r;
END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;
\set denied '''0/0/0/error 42501'''

CREATE SCHEMA regress_desc;
GRANT USAGE, CREATE ON SCHEMA regress_desc TO regress_desc_app, regress_desc_owner;
ALTER DEFAULT PRIVILEGES IN SCHEMA regress_desc GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO regress_desc_app;

-- A partitioned table, isolated with one partition.
CREATE TABLE regress_desc.deals (id int, tenant_id text NOT NULL) PARTITION BY LIST (tenant_id);
CREATE INDEX ON regress_desc.deals (tenant_id);
CREATE TABLE regress_desc.deals_t1 PARTITION OF regress_desc.deals FOR VALUES IN ('t1');
SELECT crm_security.enable_tenant_isolation('regress_desc.deals');
SELECT ok(pg_temp.isolated('regress_desc.deals_t1', 'tenant_id'), 'an existing partition is isolated by enable_tenant_isolation');

-- PARTITION OF after enable_tenant_isolation
CREATE TABLE regress_desc.deals_t2 PARTITION OF regress_desc.deals FOR VALUES IN ('t2');
INSERT INTO regress_desc.deals VALUES (1, 't1'), (2, 't2');
SELECT ok(pg_temp.isolated('regress_desc.deals_t2', 'tenant_id'), 'a partition created after enable_tenant_isolation is isolated');
SELECT is(pg_temp.as_t1('regress_desc.deals_t2', 'tenant_id'), :denied,
          'tenant t1 reads, updates, deletes nothing of t2''s partition and cannot insert into it');
SELECT is(pg_temp.outcome('SELECT * FROM regress_desc.deals_t2'), '1', 'the row of t2 is still there');

-- ATTACH PARTITION of a table that held rows before
CREATE TABLE regress_desc.deals_t3 (id int, tenant_id text NOT NULL);
INSERT INTO regress_desc.deals_t3 VALUES (3, 't2');
ALTER TABLE regress_desc.deals_t3 ADD CONSTRAINT deals_t3_tenant CHECK (tenant_id = 't2');
ALTER TABLE regress_desc.deals DETACH PARTITION regress_desc.deals_t2;
ALTER TABLE regress_desc.deals ATTACH PARTITION regress_desc.deals_t3 FOR VALUES IN ('t2');
SELECT ok(pg_temp.isolated('regress_desc.deals_t3', 'tenant_id'), 'an attached partition is isolated');
SELECT is(pg_temp.as_t1('regress_desc.deals_t3', 'tenant_id'), :denied, 'tenant t1 gets nothing of the attached partition');

-- a sub-partitioned partition, and a partition of it
CREATE TABLE regress_desc.deals_t4 PARTITION OF regress_desc.deals FOR VALUES IN ('t4') PARTITION BY RANGE (id);
CREATE TABLE regress_desc.deals_t4_low PARTITION OF regress_desc.deals_t4 FOR VALUES FROM (0) TO (1000);
INSERT INTO regress_desc.deals VALUES (4, 't4');
SELECT ok(pg_temp.isolated('regress_desc.deals_t4', 'tenant_id') AND pg_temp.isolated('regress_desc.deals_t4_low', 'tenant_id'),
          'a sub-partitioned partition and its own partition are isolated');
SELECT is(pg_temp.as_t1('regress_desc.deals_t4_low', 'tenant_id'), '0/0/0/error 42501',
          'tenant t1 gets nothing of a partition two levels down');
-- a whole partitioned tree attached at once
CREATE TABLE regress_desc.deals_t5 (id int, tenant_id text NOT NULL) PARTITION BY RANGE (id);
CREATE TABLE regress_desc.deals_t5_low PARTITION OF regress_desc.deals_t5 FOR VALUES FROM (0) TO (1000);
INSERT INTO regress_desc.deals_t5 VALUES (5, 't5');
ALTER TABLE regress_desc.deals ATTACH PARTITION regress_desc.deals_t5 FOR VALUES IN ('t5');
SELECT ok(pg_temp.isolated('regress_desc.deals_t5', 'tenant_id') AND pg_temp.isolated('regress_desc.deals_t5_low', 'tenant_id'),
          'an attached partitioned table and its partitions are isolated');
SELECT is(pg_temp.as_t1('regress_desc.deals_t5_low', 'tenant_id'), :denied,
          'tenant t1 gets nothing of the partitions of an attached tree');
-- under session_replication_role = replica the event trigger fires too (ENABLE ALWAYS)
SET LOCAL session_replication_role = replica;
CREATE TABLE regress_desc.deals_t6 PARTITION OF regress_desc.deals FOR VALUES IN ('t6');
RESET session_replication_role;
SELECT ok(pg_temp.isolated('regress_desc.deals_t6', 'tenant_id'), 'a partition created as replica is isolated');
SELECT ok((SELECT bool_and(e.evtenabled = 'A') FROM pg_event_trigger e
            JOIN pg_depend d ON d.classid = 'pg_event_trigger'::regclass AND d.objid = e.oid AND d.deptype = 'e'
            JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'crm_security'),
          'the extension''s event triggers are enabled ALWAYS');

-- inheritance, with a tenant column of another name
CREATE TABLE regress_desc.notes (id int, org text NOT NULL);
CREATE INDEX ON regress_desc.notes (org);
SELECT crm_security.enable_tenant_isolation('regress_desc.notes', 'org');
CREATE TABLE regress_desc.notes_c1 () INHERITS (regress_desc.notes);
CREATE INDEX ON regress_desc.notes_c1 (org);
INSERT INTO regress_desc.notes_c1 VALUES (1, 't2');
SELECT ok(pg_temp.isolated('regress_desc.notes_c1', 'org'), 'a child created with INHERITS is isolated on the same column');
SELECT is(pg_temp.as_t1('regress_desc.notes_c1', 'org'), :denied, 'tenant t1 gets nothing of the child');
CREATE TABLE regress_desc.notes_c2 (id int, org text NOT NULL);
CREATE INDEX ON regress_desc.notes_c2 (org);
INSERT INTO regress_desc.notes_c2 VALUES (2, 't2');
ALTER TABLE regress_desc.notes_c2 INHERIT regress_desc.notes;
SELECT ok(pg_temp.isolated('regress_desc.notes_c2', 'org'), 'a table made a child with ALTER TABLE ... INHERIT is isolated');
SELECT is(pg_temp.as_t1('regress_desc.notes_c2', 'org'), :denied, 'tenant t1 gets nothing of it');
CREATE TABLE regress_desc.notes_gc () INHERITS (regress_desc.notes_c1);
CREATE INDEX ON regress_desc.notes_gc (org);
INSERT INTO regress_desc.notes_gc VALUES (3, 't2');
SELECT ok(pg_temp.isolated('regress_desc.notes_gc', 'org'), 'a grandchild is isolated');
SELECT is(pg_temp.as_t1('regress_desc.notes_gc', 'org'), :denied, 'tenant t1 gets nothing of the grandchild');
SELECT is(pg_temp.as_t1('regress_desc.notes', 'org'), :denied, 'nor through the parent');

-- enable_tenant_isolation on a parent protects its existing inheritance children
CREATE TABLE regress_desc.acc (id int, tenant_id text NOT NULL);
CREATE TABLE regress_desc.acc_child () INHERITS (regress_desc.acc);
CREATE TABLE regress_desc.acc_grandchild () INHERITS (regress_desc.acc_child);
INSERT INTO regress_desc.acc_child VALUES (1, 't2');
INSERT INTO regress_desc.acc_grandchild VALUES (2, 't2');
SELECT crm_security.enable_tenant_isolation('regress_desc.acc', cross_tenant => false);
SELECT ok(pg_temp.isolated('regress_desc.acc_child', 'tenant_id') AND pg_temp.isolated('regress_desc.acc_grandchild', 'tenant_id'),
          'enable_tenant_isolation isolates existing inheritance children at any depth');
SELECT is(pg_temp.as_t1('regress_desc.acc_grandchild', 'tenant_id'), :denied, 'tenant t1 gets nothing of them');
SELECT is((SELECT array_agg(relation::text || ':' || cross_tenant ORDER BY relation::text) FROM crm_security.isolated_tables
            WHERE relation::text LIKE 'regress_desc.acc%'),
          ARRAY['regress_desc.acc:false', 'regress_desc.acc_child:false', 'regress_desc.acc_grandchild:false'],
          'the children take the parent''s options (cross_tenant => false)');

-- a partition created by a role that owns the isolated parent (not a superuser)
CREATE TABLE regress_desc.owned (id int, tenant_id text NOT NULL) PARTITION BY LIST (tenant_id);
ALTER TABLE regress_desc.owned OWNER TO regress_desc_owner;
SET ROLE regress_desc_owner;
SELECT lives_ok($$SELECT crm_security.enable_tenant_isolation('regress_desc.owned')$$, 'the owner isolates its table');
SELECT lives_ok($$CREATE TABLE regress_desc.owned_t2 PARTITION OF regress_desc.owned FOR VALUES IN ('t2')$$,
                'the owner creates a partition');
SELECT throws_ok($$INSERT INTO crm_security.isolated_tables VALUES ('regress_desc.owned', 'id', true, '[]')$$, '42501', NULL,
                 'the owner cannot write the registry');
SELECT throws_ok($$UPDATE crm_security.isolated_tables SET policies = '[]'$$, '42501', NULL, 'nor change it');
SELECT throws_ok($$DELETE FROM crm_security.isolated_tables$$, '42501', NULL, 'nor delete from it');
RESET ROLE;
SELECT ok(pg_temp.isolated('regress_desc.owned_t2', 'tenant_id'), 'the owner''s new partition is isolated');
SELECT is((SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'regress_desc.owned_t2'::regclass), 'regress_desc_owner',
          'and still belongs to the owner');
INSERT INTO regress_desc.owned VALUES (1, 't2');
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_desc.owned_t2 TO regress_desc_app;
SELECT is(pg_temp.as_t1('regress_desc.owned_t2', 'tenant_id'), :denied, 'tenant t1 gets nothing of it');

-- what cannot be isolated is refused
CREATE FOREIGN DATA WRAPPER regress_desc_fdw;
CREATE SERVER regress_desc_srv FOREIGN DATA WRAPPER regress_desc_fdw;
SELECT throws_ok($$CREATE FOREIGN TABLE regress_desc.deals_ft PARTITION OF regress_desc.deals FOR VALUES IN ('t7') SERVER regress_desc_srv$$,
                 '42P16', NULL, 'a foreign table partition of an isolated table is refused');
CREATE FOREIGN TABLE regress_desc.ft (id int, tenant_id text NOT NULL) SERVER regress_desc_srv;
SELECT throws_ok($$ALTER TABLE regress_desc.deals ATTACH PARTITION regress_desc.ft FOR VALUES IN ('t7')$$,
                 '42P16', NULL, 'attaching a foreign table is refused');
SELECT throws_ok($$CREATE FOREIGN TABLE regress_desc.notes_ft () INHERITS (regress_desc.notes) SERVER regress_desc_srv$$,
                 '42P16', NULL, 'a foreign table child of an isolated table is refused');
CREATE TABLE regress_desc.other (id int, org text NOT NULL);
SELECT crm_security.enable_tenant_isolation('regress_desc.other', 'org', cross_tenant => false);
SELECT throws_ok($$CREATE TABLE regress_desc.both () INHERITS (regress_desc.notes, regress_desc.other)$$,
                 '42P16', NULL, 'a child of isolated tables with different settings is refused');
SELECT throws_ok($$SELECT crm_security.enable_tenant_isolation('regress_desc.deals_t3', 'tenant_id', false)$$,
                 '42P16', NULL, 'enable_tenant_isolation with other settings on a partition of an isolated table is refused');
SELECT lives_ok($$SELECT crm_security.enable_tenant_isolation('regress_desc.deals_t3')$$,
                'with the same settings it is allowed (it makes the policies again)');
SELECT throws_ok($$SELECT crm_security.disable_tenant_isolation('regress_desc.deals_t3')$$,
                 '42P16', NULL, 'disable_tenant_isolation on a partition of an isolated table is refused');
SELECT ok(pg_temp.isolated('regress_desc.deals_t3', 'tenant_id'), 'the partition stays isolated');
CREATE TABLE regress_desc.plain_parent (id int, tenant_id text NOT NULL);
CREATE TABLE regress_desc.mixed () INHERITS (regress_desc.plain_parent, regress_desc.acc);
SELECT ok(pg_temp.isolated('regress_desc.mixed', 'tenant_id'), 'a child of an isolated and a plain table is isolated');

-- a table isolated on its own with other settings takes its new parent's
CREATE TABLE regress_desc.deals_t8 (id int, tenant_id text NOT NULL);
SELECT crm_security.enable_tenant_isolation('regress_desc.deals_t8', cross_tenant => false);
ALTER TABLE regress_desc.deals ATTACH PARTITION regress_desc.deals_t8 FOR VALUES IN ('t8');
SELECT is((SELECT cross_tenant FROM crm_security.isolated_tables WHERE relation = 'regress_desc.deals_t8'::regclass), true,
          'a partition isolated with other settings takes its new parent''s when attached');
SELECT ok(pg_temp.isolated('regress_desc.deals_t8', 'tenant_id')
          AND EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = 'regress_desc.deals_t8'::regclass
                        AND polname = 'crm_tenant_reviewer_select'),
          'and its policies are made again with them');

-- what the event trigger leaves alone
CREATE TABLE regress_desc.unrelated (id int, tenant_id text);
SELECT ok((SELECT NOT relrowsecurity FROM pg_class WHERE oid = 'regress_desc.unrelated'::regclass)
          AND NOT EXISTS (SELECT 1 FROM crm_security.isolated_tables WHERE relation = 'regress_desc.unrelated'::regclass),
          'a table that is no descendant of an isolated table is left alone');
CREATE TABLE regress_desc.plain_child () INHERITS (regress_desc.plain_parent);
SELECT ok((SELECT NOT relrowsecurity FROM pg_class WHERE oid = 'regress_desc.plain_child'::regclass),
          'so is a child of a table that is not isolated');

-- a role that may not use the extension's schema still creates and drops its tables
REVOKE USAGE ON SCHEMA crm_security FROM PUBLIC;
SET ROLE regress_desc_app;
SELECT lives_ok($$CREATE TABLE regress_desc.app_t (id int); ALTER TABLE regress_desc.app_t ADD COLUMN tenant_id text;
                  ALTER TABLE regress_desc.app_t RENAME COLUMN tenant_id TO org; DROP TABLE regress_desc.app_t$$,
                'DDL of a role without USAGE on crm_security is not hindered by the event triggers');
RESET ROLE;
GRANT USAGE ON SCHEMA crm_security TO PUBLIC;

-- DETACH: the partition keeps its isolation and stays registered
ALTER TABLE regress_desc.deals DETACH PARTITION regress_desc.deals_t3;
SELECT ok(pg_temp.isolated('regress_desc.deals_t3', 'tenant_id'), 'a detached partition keeps its isolation');
SELECT is(pg_temp.as_t1('regress_desc.deals_t3', 'tenant_id'), :denied, 'tenant t1 still gets nothing of it');
SELECT ok(EXISTS (SELECT 1 FROM crm_security.isolated_tables WHERE relation = 'regress_desc.deals_t3'::regclass),
          'it stays in the registry');
SELECT lives_ok($$SELECT crm_security.disable_tenant_isolation('regress_desc.deals_t3')$$,
                'once detached its isolation can be disabled');
SELECT ok(NOT EXISTS (SELECT 1 FROM crm_security.isolated_tables WHERE relation = 'regress_desc.deals_t3'::regclass),
          'and it leaves the registry');
ALTER TABLE regress_desc.notes_c2 NO INHERIT regress_desc.notes;
SELECT ok(pg_temp.isolated('regress_desc.notes_c2', 'org'), 'a child removed with NO INHERIT keeps its isolation');
-- a detached partition whose protection is then weakened is still reported
DROP POLICY crm_tenant_delete ON regress_desc.notes_c2;
SELECT ok(EXISTS (SELECT 1 FROM crm_security.isolation_report()
                   WHERE relation = 'regress_desc.notes_c2'::regclass AND issue = 'tenant isolation policy crm_tenant_delete is missing'),
          'the report still checks it');
SELECT crm_security.enable_tenant_isolation('regress_desc.notes_c2', 'org');

-- DROP: the registry forgets the table
DROP TABLE regress_desc.deals_t6;
SELECT is((SELECT count(*)::int FROM crm_security.isolated_tables WHERE relation::oid NOT IN (SELECT oid FROM pg_class)), 0,
          'a dropped partition leaves no registry row behind');
DROP SCHEMA regress_desc CASCADE;
SELECT is((SELECT count(*)::int FROM crm_security.isolated_tables WHERE NOT system), 0, 'nor does a dropped schema');
SELECT is((SELECT count(*)::int FROM crm_security.isolated_tables WHERE relation::oid NOT IN (SELECT oid FROM pg_class)), 0,
          'no registry row names a table that does not exist');

-- a table dropped while the event triggers are disabled leaves a row, which the next
-- registration removes
CREATE TABLE regress_desc_gone (id int, tenant_id text NOT NULL);
SELECT crm_security.enable_tenant_isolation('regress_desc_gone');
SELECT 'regress_desc_gone'::regclass::oid AS gone_oid \gset
ALTER EVENT TRIGGER crm_security_isolation_drop DISABLE;
DROP TABLE regress_desc_gone;
ALTER EVENT TRIGGER crm_security_isolation_drop ENABLE ALWAYS;
SELECT is_empty($$SELECT * FROM crm_security.isolation_report() WHERE relation::oid = $$ || :gone_oid,
                'a registry row of a dropped table is not reported');
CREATE TABLE regress_desc_next (id int, tenant_id text NOT NULL);
SELECT crm_security.enable_tenant_isolation('regress_desc_next');
SELECT ok(NOT EXISTS (SELECT 1 FROM crm_security.isolated_tables WHERE relation::oid = :gone_oid),
          'and the next registration removes it');
DROP TABLE regress_desc_next;

-- isolation_report finds an unprotected descendant whatever its column's name: made here by a
-- superuser with the event triggers disabled
CREATE SCHEMA regress_desc2;
CREATE TABLE regress_desc2.notes (id int, org_ref bigint NOT NULL);
CREATE INDEX ON regress_desc2.notes (org_ref);
CREATE TABLE regress_desc2.parted (id int, org_ref bigint NOT NULL) PARTITION BY LIST (org_ref);
CREATE INDEX ON regress_desc2.parted (org_ref);
SELECT crm_security.enable_tenant_isolation('regress_desc2.notes', 'org_ref');
SELECT crm_security.enable_tenant_isolation('regress_desc2.parted', 'org_ref');
SELECT is_empty($$SELECT * FROM crm_security.isolation_report() WHERE relation::text LIKE 'regress_desc2.%'$$,
                'the report is empty for the isolated tables');
DO $$
DECLARE e name;
BEGIN
    FOR e IN SELECT evtname FROM pg_event_trigger LOOP
        EXECUTE format('ALTER EVENT TRIGGER %I DISABLE', e);
    END LOOP;
END $$;
CREATE TABLE regress_desc2.notes_raw () INHERITS (regress_desc2.notes);
CREATE TABLE regress_desc2.notes_raw_gc () INHERITS (regress_desc2.notes_raw);
CREATE TABLE regress_desc2.parted_1 PARTITION OF regress_desc2.parted FOR VALUES IN (1);
CREATE FOREIGN DATA WRAPPER regress_desc2_fdw;
CREATE SERVER regress_desc2_srv FOREIGN DATA WRAPPER regress_desc2_fdw;
CREATE FOREIGN TABLE regress_desc2.parted_ft PARTITION OF regress_desc2.parted FOR VALUES IN (2) SERVER regress_desc2_srv;
DO $$
DECLARE e name;
BEGIN
    FOR e IN SELECT evtname FROM pg_event_trigger LOOP
        EXECUTE format('ALTER EVENT TRIGGER %I ENABLE ALWAYS', e);
    END LOOP;
END $$;
CREATE TEMP TABLE rep AS
SELECT relation::text AS rel, kind, tenant_column::text AS col, issue FROM crm_security.isolation_report()
 WHERE relation::text LIKE 'regress_desc2.%';
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_desc2.notes_raw' AND col = 'org_ref'
                   AND issue LIKE 'inheritance child of the isolated table regress_desc2.notes is not under tenant isolation%'),
          'an unprotected inheritance child is reported with its column');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_desc2.notes_raw_gc' AND col = 'org_ref'
                   AND issue LIKE 'inheritance child of the isolated table regress_desc2.notes is not under tenant isolation%'),
          'and its own child');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_desc2.notes_raw' AND issue = 'row level security is disabled'),
          'with what its protection lacks');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_desc2.parted_1' AND col = 'org_ref'
                   AND issue LIKE 'partition of the isolated table regress_desc2.parted is not under tenant isolation%'),
          'an unprotected partition is reported');
SELECT ok(EXISTS (SELECT 1 FROM rep WHERE rel = 'regress_desc2.parted_ft' AND kind = 'foreign table'
                   AND issue LIKE 'foreign table is a partition of the isolated table regress_desc2.parted%'),
          'a foreign table partition is reported');
SELECT ok(EXISTS (SELECT 1 FROM crm_security.isolation_report('{}') WHERE relation = 'regress_desc2.notes_raw'::regclass),
          'also when no tenant column name is given');
-- the fix: enable_tenant_isolation on the parent again (the foreign partition detached first)
SELECT throws_ok($$SELECT crm_security.enable_tenant_isolation('regress_desc2.parted', 'org_ref')$$, '42P16', NULL,
                 'enable_tenant_isolation refuses a tree with a foreign table');
ALTER TABLE regress_desc2.parted DETACH PARTITION regress_desc2.parted_ft;
SELECT crm_security.enable_tenant_isolation('regress_desc2.notes', 'org_ref');
SELECT crm_security.enable_tenant_isolation('regress_desc2.parted', 'org_ref');
SELECT is_empty($$SELECT * FROM crm_security.isolation_report() WHERE relation::text LIKE 'regress_desc2.%'
                   AND relation::text <> 'regress_desc2.parted_ft' AND issue NOT LIKE 'no index%'$$,
                'after enable_tenant_isolation again, nothing is reported');

-- renames: the registry follows, the report does not lie, isolation holds
ALTER TABLE regress_desc2.notes RENAME COLUMN org_ref TO tenant_ref;
ALTER TABLE regress_desc2.notes RENAME TO notes_renamed;
SELECT is((SELECT array_agg(DISTINCT tenant_column::text) FROM crm_security.isolated_tables WHERE relation::text LIKE 'regress_desc2.notes%'),
          ARRAY['tenant_ref'], 'a renamed tenant column is followed in the registry, children included');
SELECT is_empty($$SELECT * FROM crm_security.isolation_report() WHERE relation::text LIKE 'regress_desc2.notes%' AND issue NOT LIKE 'no index%'$$,
                'after renaming the table and the tenant column, nothing is reported');
INSERT INTO regress_desc2.notes_raw VALUES (1, 2);
GRANT USAGE ON SCHEMA regress_desc2 TO regress_desc_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA regress_desc2 TO regress_desc_app;
SET ROLE regress_desc_app;
SELECT ok(pg_temp.ctx('{"sub":"u1","tenant_id":"1"}'), 'context of tenant 1');
SELECT is(pg_temp.outcome('SELECT * FROM regress_desc2.notes_raw'), '0', 'tenant 1 reads nothing of tenant 2 after the renames');
SELECT is(pg_temp.outcome('INSERT INTO regress_desc2.notes_raw VALUES (2, 2)'), 'error 42501', 'nor writes for it');
SELECT is(pg_temp.outcome('INSERT INTO regress_desc2.notes_raw VALUES (3, 1)'), '1', 'but writes its own rows');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
