-- Hardening of the row trigger and of enable_audit()/disable_audit():
--  * user code run while a row image is built (a user type's cast to json) renames the
--    audited table's columns, writes to the table, or tries to drop and add columns: the
--    server survives and every entry written matches its hash (it used to free the
--    table's cached description under the running trigger: signal 11);
--  * a nested entry cannot change the enclosing entry's values (the date/time text cache);
--  * only the table's owner (or a superuser) may enable or disable auditing;
--  * TRUNCATE of a partition of an audited partitioned table is recorded, per partition.
SET client_min_messages = warning;
BEGIN;
SELECT plan(30);

CREATE ROLE regress_ha_user;
CREATE ROLE regress_ha_other;
GRANT USAGE ON SCHEMA crm_security TO regress_ha_user, regress_ha_other;
-- A temporary schema of this session, owned by the superuser, for the audit tables below.
CREATE TEMP TABLE ha_marker (x int);
CREATE FUNCTION pg_temp.ha_entries(tbl text) RETURNS TABLE (id bigint, operation text, new_row jsonb, ok boolean)
LANGUAGE sql AS $$
    SELECT l.id, l.operation, l.new_row,
           l.entry_hash = hmac(crm_security.audit_canonical_entry(l.id), pg_read_binary_file('crm_security/audit_entry.key'), 'sha256')
      FROM crm_security.audit_log l
     WHERE l.table_name LIKE 'pg\_temp\_%.' || tbl
       AND l.txid = pg_catalog.txid_current()
     ORDER BY l.id
$$;

-- 1. The reproduction, as an ordinary role (it needs only TEMP).
SET LOCAL ROLE regress_ha_user;
CREATE TYPE pg_temp.ha_md AS ENUM ('a', 'b');
SELECT format('CREATE TABLE pg_temp.ha_w (id int PRIMARY KEY, %s)',
              string_agg(format('c%s_%s pg_temp.ha_md', g, repeat('n', 50)), ', '))
  FROM generate_series(1, 60) g \gexec
CREATE FUNCTION pg_temp.ha_md_json(pg_temp.ha_md) RETURNS json LANGUAGE plpgsql AS $$
DECLARE r record; k int := 0;
BEGIN
    IF current_setting('ha.renamed', true) IS DISTINCT FROM '1' THEN
        PERFORM set_config('ha.renamed', '1', true);
        FOR r IN SELECT attname FROM pg_attribute
                  WHERE attrelid = 'pg_temp.ha_w'::regclass AND attnum > 1 AND NOT attisdropped LOOP
            k := k + 1;
            EXECUTE format('ALTER TABLE pg_temp.ha_w RENAME COLUMN %I TO %I', r.attname, 'z' || k);
        END LOOP;
        INSERT INTO pg_temp.ha_w (id) VALUES (1000);
    END IF;
    RETURN to_json($1::text);
END $$;
CREATE CAST (pg_temp.ha_md AS json) WITH FUNCTION pg_temp.ha_md_json(pg_temp.ha_md);
SELECT crm_security.enable_audit('pg_temp.ha_w') IS NULL AS enabled \g /dev/null
SELECT lives_ok(format('INSERT INTO pg_temp.ha_w VALUES (1, %s)', string_agg('''a''', ',')),
                'a cast that renames every column and inserts into the audited table: no crash')
  FROM generate_series(1, 60);
SELECT lives_ok($$UPDATE pg_temp.ha_w SET z1 = 'b' WHERE id = 1$$, 'the table is audited under its new names');
RESET ROLE;
SELECT is((SELECT count(*) FROM pg_temp.ha_entries('ha_w')), 3::bigint, 'an entry for the row, the nested row and the update');
SELECT ok((SELECT bool_and(ok) FROM pg_temp.ha_entries('ha_w')), 'each matches its hash');
SELECT is((SELECT new_row ->> ('c1_' || repeat('n', 50)) FROM pg_temp.ha_entries('ha_w') WHERE new_row ->> 'id' = '1' AND operation = 'INSERT'),
          'a', 'the outer row is recorded with the columns it was inserted under');
SELECT ok((SELECT new_row ? 'z60' FROM pg_temp.ha_entries('ha_w') WHERE new_row ->> 'id' = '1000'),
          'the nested row is recorded with the new names');

-- 2. A cast that inserts into the audited table without changing it; a date column is
--    converted before the cast runs, and the nested row's date must not leak into it.
SET LOCAL ROLE regress_ha_user;
CREATE TABLE pg_temp.ha_n (id int PRIMARY KEY, ts timestamptz, d date, zzzzzz_m pg_temp.ha_md);
CREATE FUNCTION pg_temp.ha_md_json2(pg_temp.ha_md) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('ha.nested', true) IS DISTINCT FROM '1' THEN
        PERFORM set_config('ha.nested', '1', true);
        INSERT INTO pg_temp.ha_n VALUES (2000, '2001-02-03 04:05:06+00', '2001-02-03', 'b');
        UPDATE pg_temp.ha_n SET ts = '2002-02-02 02:02:02+00' WHERE id = 2000;
    END IF;
    RETURN to_json($1::text);
END $$;
DROP CAST (pg_temp.ha_md AS json);
CREATE CAST (pg_temp.ha_md AS json) WITH FUNCTION pg_temp.ha_md_json2(pg_temp.ha_md);
SELECT crm_security.enable_audit('pg_temp.ha_n') IS NULL AS enabled \g /dev/null
SET LOCAL TimeZone = 'UTC';
SELECT lives_ok($$INSERT INTO pg_temp.ha_n VALUES (1, '2024-05-06 07:08:09+00', '2024-05-06', 'a')$$,
                'a cast that inserts into and updates the audited table');
RESET ROLE;
SELECT is((SELECT count(*) FROM pg_temp.ha_entries('ha_n')), 3::bigint, 'three entries');
SELECT ok((SELECT bool_and(ok) FROM pg_temp.ha_entries('ha_n')), 'each matches its hash');
SELECT is((SELECT new_row ->> 'ts' FROM pg_temp.ha_entries('ha_n') WHERE new_row ->> 'id' = '1'),
          '2024-05-06T07:08:09+00:00', 'the outer row keeps its own time, not the nested row''s');
SELECT is((SELECT new_row ->> 'd' FROM pg_temp.ha_entries('ha_n') WHERE new_row ->> 'id' = '1'),
          '2024-05-06', 'the outer row keeps its own date');
SELECT is((SELECT new_row ->> 'ts' FROM pg_temp.ha_entries('ha_n') WHERE new_row ->> 'id' = '2000' AND operation = 'UPDATE'),
          '2002-02-02T02:02:02+00:00', 'the nested update is recorded with its value');

-- 3. A cast that drops and adds columns: PostgreSQL refuses it (the table is in use);
--    caught by the cast, the row is still recorded; not caught, the statement fails.
SET LOCAL ROLE regress_ha_user;
CREATE TABLE pg_temp.ha_d (id int PRIMARY KEY, extra text, m pg_temp.ha_md);
CREATE FUNCTION pg_temp.ha_md_json3(pg_temp.ha_md) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('ha.ddl', true) IS DISTINCT FROM '1' THEN
        PERFORM set_config('ha.ddl', '1', true);
        BEGIN
            ALTER TABLE pg_temp.ha_d DROP COLUMN extra;
        EXCEPTION WHEN object_in_use THEN
            PERFORM set_config('ha.ddl_refused', SQLSTATE, true);
        END;
        INSERT INTO pg_temp.ha_d (id, extra) VALUES (3000, 'nested');
    ELSIF current_setting('ha.ddl_raw', true) = '1' THEN
        PERFORM set_config('ha.ddl_raw', '2', true);
        ALTER TABLE pg_temp.ha_d ADD COLUMN added int;
    END IF;
    RETURN to_json($1::text);
END $$;
DROP CAST (pg_temp.ha_md AS json);
CREATE CAST (pg_temp.ha_md AS json) WITH FUNCTION pg_temp.ha_md_json3(pg_temp.ha_md);
SELECT crm_security.enable_audit('pg_temp.ha_d') IS NULL AS enabled \g /dev/null
SELECT lives_ok($$INSERT INTO pg_temp.ha_d VALUES (1, 'outer', 'a')$$, 'a cast that tries to drop a column');
SELECT is(current_setting('ha.ddl_refused', true), '55006', 'PostgreSQL refused the change of a table in use');
SELECT set_config('ha.ddl_raw', '1', true) \g /dev/null
SELECT throws_ok($$INSERT INTO pg_temp.ha_d VALUES (2, 'outer', 'b')$$, '55006', NULL,
                 'a cast that adds a column fails the statement');
RESET ROLE;
SELECT is((SELECT count(*) FROM pg_temp.ha_entries('ha_d')), 2::bigint, 'the rows of the first statement are recorded');
SELECT ok((SELECT bool_and(ok) FROM pg_temp.ha_entries('ha_d')), 'each matches its hash');

-- 4. enable_audit() and disable_audit(): the owner or a superuser only.
CREATE TABLE public.ha_owned (id int PRIMARY KEY, v text);
ALTER TABLE public.ha_owned OWNER TO regress_ha_user;
GRANT ALL ON public.ha_owned TO regress_ha_other;
SET LOCAL ROLE regress_ha_other;
SELECT throws_ok($$SELECT crm_security.enable_audit('public.ha_owned')$$, '42501', NULL,
                 'a role that does not own the table cannot enable its audit, even with every privilege on it');
RESET ROLE;
SELECT crm_security.enable_audit('public.ha_owned') IS NULL AS enabled \g /dev/null
SET LOCAL ROLE regress_ha_other;
SELECT throws_ok($$SELECT crm_security.disable_audit('public.ha_owned')$$, '42501', NULL,
                 'nor disable it');
RESET ROLE;
SET LOCAL ROLE regress_ha_user;
SELECT lives_ok($$SELECT crm_security.disable_audit('public.ha_owned')$$, 'the owner can disable it');
SELECT lives_ok($$SELECT crm_security.enable_audit('public.ha_owned')$$, 'and enable it');
RESET ROLE;

-- 5. TRUNCATE of an audited partitioned table's partitions: one entry per relation.
CREATE TABLE public.ha_p (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
CREATE TABLE public.ha_p1 PARTITION OF public.ha_p FOR VALUES IN (1);
CREATE TABLE public.ha_p2 PARTITION OF public.ha_p FOR VALUES IN (2);
CREATE TABLE public.ha_p3 PARTITION OF public.ha_p FOR VALUES IN (3) PARTITION BY RANGE (id);
CREATE TABLE public.ha_p3a PARTITION OF public.ha_p3 FOR VALUES FROM (0) TO (1000);
SELECT crm_security.enable_audit('public.ha_p') IS NULL AS enabled \g /dev/null
-- Created after enable_audit(): the row trigger is cloned, the TRUNCATE trigger is not.
CREATE TABLE public.ha_p4 PARTITION OF public.ha_p FOR VALUES IN (4);
INSERT INTO public.ha_p SELECT g, k, 'x' FROM generate_series(1, 3) g, generate_series(1, 4) k;
CREATE FUNCTION pg_temp.ha_truncated(req text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(table_name, ' ' ORDER BY table_name) FROM crm_security.audit_log
     WHERE operation = 'TRUNCATE' AND request_id = req AND txid = pg_catalog.txid_current()
$$;
SET LOCAL crm_security.request_id = 'ha-t1';
TRUNCATE public.ha_p1;
SET LOCAL crm_security.request_id = 'ha-t2';
TRUNCATE ONLY public.ha_p2;
SET LOCAL crm_security.request_id = 'ha-t3';
TRUNCATE public.ha_p3a;
SET LOCAL crm_security.request_id = 'ha-t4';
TRUNCATE public.ha_p4;
SET LOCAL crm_security.request_id = 'ha-t5';
TRUNCATE public.ha_p;
RESET crm_security.request_id;
SELECT is(pg_temp.ha_truncated('ha-t1'), 'public.ha_p1', 'TRUNCATE of a partition is recorded');
SELECT is(pg_temp.ha_truncated('ha-t2'), 'public.ha_p2', 'TRUNCATE ONLY of a partition is recorded');
SELECT is(pg_temp.ha_truncated('ha-t3'), 'public.ha_p3a', 'TRUNCATE of a sub-partition is recorded');
SELECT is(pg_temp.ha_truncated('ha-t4'), 'public.ha_p4', 'TRUNCATE of a partition created after enable_audit() is recorded');
SELECT is(pg_temp.ha_truncated('ha-t5'), 'public.ha_p public.ha_p1 public.ha_p2 public.ha_p3 public.ha_p3a public.ha_p4',
          'TRUNCATE of the partitioned table records it and each partition, once');
SELECT crm_security.enable_audit('public.ha_p') IS NULL AS enabled \g /dev/null
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgname = 'crm_audit_truncate'
             AND tgrelid IN ('public.ha_p'::regclass, 'public.ha_p1'::regclass, 'public.ha_p2'::regclass,
                             'public.ha_p3'::regclass, 'public.ha_p3a'::regclass, 'public.ha_p4'::regclass)),
          6::bigint, 'enable_audit() again gives the new partition its TRUNCATE trigger');
SELECT crm_security.disable_audit('public.ha_p') IS NULL AS disabled \g /dev/null
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgfoid = 'crm_security.audit_trigger()'::regprocedure
             AND tgrelid IN ('public.ha_p'::regclass, 'public.ha_p1'::regclass, 'public.ha_p2'::regclass,
                             'public.ha_p3'::regclass, 'public.ha_p3a'::regclass, 'public.ha_p4'::regclass)),
          0::bigint, 'disable_audit() removes the triggers of every partition');
SET LOCAL crm_security.request_id = 'ha-t6';
TRUNCATE public.ha_p;
RESET crm_security.request_id;
SELECT is(pg_temp.ha_truncated('ha-t6'), NULL, 'a table no longer audited records nothing');

-- 6. Every entry written above verifies with the rest of the log.
SELECT ok((SELECT ok FROM crm_security.verify_audit_log()), 'verify_audit_log() passes');

SELECT * FROM finish();
ROLLBACK;
