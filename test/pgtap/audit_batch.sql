-- Audit entries of a statement are written together (audit_write.c).  Whatever the path
-- (statement end, a later trigger's query, COPY, savepoints, errors, nested
-- subtransactions, parallel queries, DDL on audit_log), the result must be exactly what
-- writing each entry at once would give: every entry of committed work, none of aborted
-- work, each visible to every query that runs after it.
SET client_min_messages = warning;
CREATE TABLE public.tb_main (id int PRIMARY KEY, body text, n int);
CREATE TABLE public.tb_side (id int PRIMARY KEY, body text);
CREATE TABLE public.tb_seen (id int, entries bigint, at text);
SELECT crm_security.enable_audit('public.tb_main') IS NULL \g /dev/null
SELECT crm_security.enable_audit('public.tb_side') IS NULL \g /dev/null

-- Entries of each table, as a later query sees them.
CREATE FUNCTION public.tb_entries(tbl text, op text DEFAULT NULL) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT count(*) FROM crm_security.audit_log
   WHERE table_name = 'public.' || tbl AND (op IS NULL OR operation = op)
$$;

-- Committed work outside any test transaction: written at statement end and commit.
INSERT INTO public.tb_main SELECT g, 'row ' || g, g FROM generate_series(1, 2500) g;
CREATE TABLE public.tb_committed AS SELECT public.tb_entries('tb_main') AS n;
DELETE FROM public.tb_main;

-- Committed too: BRIN's pages per range is the index's own, even when ALTER INDEX changed
-- the reloption without a REINDEX.  The last page range is summarized, then a statement
-- writes batches that run from it into the next ranges; each range must be widened by
-- what was written into it (checked below).
CREATE TABLE public.tb_brin (id int PRIMARY KEY);
SELECT crm_security.enable_audit('public.tb_brin') IS NULL \g /dev/null
ALTER INDEX crm_security.audit_log_txid_id_brin SET (pages_per_range = 512);
CREATE TABLE public.tb_brin_range AS
  SELECT (pg_relation_size('crm_security.audit_log') / current_setting('block_size')::int - 1) / 128 * 128 AS first_block,
         (SELECT max(id) FROM crm_security.audit_log) AS before;
SELECT brin_summarize_range('crm_security.audit_log_txid_id_brin', (SELECT first_block FROM public.tb_brin_range))
  IS NOT NULL \g /dev/null
INSERT INTO public.tb_brin SELECT g FROM generate_series(1, 6000) g;
ALTER INDEX crm_security.audit_log_txid_id_brin RESET (pages_per_range);

BEGIN;
SELECT plan(37);

SELECT is((SELECT n FROM public.tb_committed), 2500::bigint,
          'a committed 2,500-row INSERT has 2,500 entries (more than one batch)');

-- A large statement: every row once, ids in row order, every hash right.
INSERT INTO public.tb_main SELECT g, 'row ' || g, g FROM generate_series(1, 3456) g;
SELECT is(public.tb_entries('tb_main', 'INSERT'), 2500 + 3456::bigint, 'each inserted row has an entry');
SELECT is((SELECT count(DISTINCT (new_row->>'id')) FROM crm_security.audit_log
            WHERE table_name = 'public.tb_main' AND txid = txid_current()), 3456::bigint,
          'no row is recorded twice or skipped');
SELECT ok((SELECT bool_and(ok) FROM (
             SELECT (new_row->>'id')::int > lag((new_row->>'id')::int) OVER (ORDER BY id) AS ok
               FROM crm_security.audit_log WHERE table_name = 'public.tb_main' AND txid = txid_current()) s
            WHERE ok IS NOT NULL),
          'entry ids follow the order of the rows');
SELECT is((SELECT count(*) FROM crm_security.audit_log
            WHERE table_name = 'public.tb_main' AND txid = txid_current()
              AND entry_hash <> hmac(crm_security.audit_canonical_entry(id), pg_read_binary_file('crm_security/audit_entry.key'), 'sha256')), 0::bigint,
          'every batched entry has the hash of its canonical form');
SELECT ok((SELECT bool_and(id > prev) FROM (
             SELECT id, lag(id) OVER (ORDER BY ctid) AS prev FROM crm_security.audit_log
              WHERE table_name = 'public.tb_main' AND txid = txid_current()) s WHERE prev IS NOT NULL),
          'entries of a statement are stored in id order');

-- A later trigger of the same statement sees the entries of rows changed before it,
-- including its own row's (crm_audit_row fires before zz_seen: triggers fire by name).
CREATE FUNCTION public.tb_seen_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.tb_seen VALUES (NEW.id, public.tb_entries('tb_side'), TG_NAME);
  RETURN NULL;
END $$;
CREATE TRIGGER zz_seen AFTER INSERT ON public.tb_side FOR EACH ROW EXECUTE FUNCTION public.tb_seen_trigger();
CREATE TRIGGER aa_seen AFTER INSERT ON public.tb_side FOR EACH ROW EXECUTE FUNCTION public.tb_seen_trigger();
INSERT INTO public.tb_side SELECT g, 'x' FROM generate_series(1, 5) g;
SELECT results_eq($$SELECT id, entries FROM public.tb_seen WHERE at = 'zz_seen' ORDER BY id$$,
                  $$SELECT g, g::bigint FROM generate_series(1, 5) g$$,
                  'a trigger firing after the audit trigger sees the entry of its row and of earlier rows');
SELECT results_eq($$SELECT id, entries FROM public.tb_seen WHERE at = 'aa_seen' ORDER BY id$$,
                  $$SELECT g, g::bigint - 1 FROM generate_series(1, 5) g$$,
                  'a trigger firing before it sees the entries of earlier rows only');
DROP TRIGGER zz_seen ON public.tb_side;
DROP TRIGGER aa_seen ON public.tb_side;

-- log_event() from a later trigger: entries and events interleave in order.
CREATE FUNCTION public.tb_event_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM crm_security.log_event('tb.changed', 'tb_side', NEW.id::text);
  RETURN NULL;
END $$;
CREATE TRIGGER zz_event AFTER INSERT ON public.tb_side FOR EACH ROW EXECUTE FUNCTION public.tb_event_trigger();
INSERT INTO public.tb_side SELECT g, 'x' FROM generate_series(11, 13) g;
SELECT results_eq($$SELECT kind, coalesce(new_row->>'id', resource_id) FROM crm_security.audit_log
                     WHERE txid = txid_current() AND (table_name = 'public.tb_side' OR resource_type = 'tb_side')
                       AND coalesce(new_row->>'id', resource_id)::int > 10 ORDER BY id$$,
                  $$VALUES ('row', '11'), ('event', '11'), ('row', '12'), ('event', '12'), ('row', '13'), ('event', '13')$$,
                  'row entries and events of later triggers are in firing order');
DROP TRIGGER zz_event ON public.tb_side;

-- Savepoints: rolled back work leaves no entry, even after a full batch was written.
SAVEPOINT s1;
INSERT INTO public.tb_side SELECT g, 'sp' FROM generate_series(100, 1600) g;
SELECT is(public.tb_entries('tb_side', 'INSERT'), 8 + 1501::bigint, 'entries are there inside the savepoint');
ROLLBACK TO SAVEPOINT s1;
SELECT is(public.tb_entries('tb_side', 'INSERT'), 8::bigint, 'ROLLBACK TO SAVEPOINT removes them');
SAVEPOINT s2;
INSERT INTO public.tb_side VALUES (200, 'kept');
RELEASE SAVEPOINT s2;
SELECT is(public.tb_entries('tb_side', 'INSERT'), 9::bigint, 'RELEASE SAVEPOINT keeps them');

-- An error while the statement's triggers fire, after batches were written.
CREATE FUNCTION public.tb_fail_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id = 1700 THEN RAISE EXCEPTION 'row % refused', NEW.id; END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER zz_fail AFTER INSERT ON public.tb_side FOR EACH ROW EXECUTE FUNCTION public.tb_fail_trigger();
SELECT throws_ok($$INSERT INTO public.tb_side SELECT g, 'err' FROM generate_series(300, 2000) g$$,
                 'P0001', 'row 1700 refused', 'a trigger fails late in a large statement');
SELECT is(public.tb_entries('tb_side', 'INSERT'), 9::bigint, 'the failed statement left no entry');
INSERT INTO public.tb_side VALUES (201, 'after');
SELECT is(public.tb_entries('tb_side', 'INSERT'), 10::bigint, 'the next statement writes only its own entry');
DROP TRIGGER zz_fail ON public.tb_side;

-- Nested subtransactions: a later trigger changes another audited table inside an
-- exception block, which fails for one row.  Entries of the outer statement wait while
-- the inner ones are written; the failed block's entries are gone.
CREATE FUNCTION public.tb_nested_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    INSERT INTO public.tb_side VALUES (1000 + NEW.id, 'nested');
    IF NEW.id % 2 = 0 THEN RAISE EXCEPTION 'even'; END IF;
  EXCEPTION WHEN raise_exception THEN
    NULL;
  END;
  RETURN NULL;
END $$;
CREATE TRIGGER zz_nested AFTER INSERT ON public.tb_main FOR EACH ROW EXECUTE FUNCTION public.tb_nested_trigger();
INSERT INTO public.tb_main SELECT g, 'outer', g FROM generate_series(5001, 5010) g;
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.tb_main'
              AND (new_row->>'id')::int BETWEEN 5001 AND 5010), 10::bigint,
          'every row of the outer statement has its entry');
SELECT results_eq($$SELECT (new_row->>'id')::int FROM crm_security.audit_log
                     WHERE table_name = 'public.tb_side' AND (new_row->>'id')::int > 6000 ORDER BY 1$$,
                  $$SELECT 1000 + g FROM generate_series(5001, 5010, 2) g$$,
                  'only the inner inserts that were not rolled back have entries');
SELECT is((SELECT count(*) FROM public.tb_side WHERE id > 6000), 5::bigint, 'and they match the rows');
DROP TRIGGER zz_nested ON public.tb_main;

-- COPY fires the triggers outside the executor.
COPY public.tb_side (id, body) FROM STDIN;
7001	copied
7002	copied
7003	copied
\.
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.tb_side'
              AND (new_row->>'id')::int > 7000), 3::bigint, 'COPY FROM writes an entry per row');

-- UPDATE, DELETE, TRUNCATE and EXPLAIN ANALYZE.
UPDATE public.tb_main SET n = n + 1 WHERE id <= 1200;
SELECT is(public.tb_entries('tb_main', 'UPDATE'), 1200::bigint, 'a large UPDATE has an entry per row');
DELETE FROM public.tb_main WHERE id <= 1100;
SELECT is(public.tb_entries('tb_main', 'DELETE'), 2500 + 1100::bigint, 'a large DELETE has an entry per row');
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) INSERT INTO public.tb_side VALUES (8001, 'explain') \g /dev/null
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.tb_side'
              AND new_row->>'id' = '8001'), 1::bigint, 'EXPLAIN ANALYZE of an INSERT writes its entry');

-- MERGE, inserting and updating in one statement.
MERGE INTO public.tb_side s USING (SELECT g FROM generate_series(8001, 8003) g) v ON s.id = v.g
  WHEN MATCHED THEN UPDATE SET body = 'merged'
  WHEN NOT MATCHED THEN INSERT VALUES (v.g, 'merged');
SELECT results_eq($$SELECT operation, new_row->>'id' FROM crm_security.audit_log
                     WHERE table_name = 'public.tb_side' AND new_row->>'body' = 'merged' ORDER BY id$$,
                  $$VALUES ('UPDATE', '8001'), ('INSERT', '8002'), ('INSERT', '8003')$$,
                  'MERGE writes an entry per row it inserts or updates');

-- A SQL function's statements each write their entries before the next one runs.
CREATE FUNCTION public.tb_two_steps() RETURNS bigint LANGUAGE sql AS $$
  INSERT INTO public.tb_side VALUES (9001, 'f');
  SELECT public.tb_entries('tb_side', 'INSERT') - (SELECT count(*) FROM public.tb_side WHERE id <> 9001);
$$;
SELECT is(public.tb_two_steps(), 1::bigint, 'a later statement of a SQL function sees the entry');

-- A parallel query run by a later trigger while entries wait: nothing may be written in
-- parallel mode, and the query must still work.
CREATE FUNCTION public.tb_parallel_count() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.tb_side'
$$;
CREATE FUNCTION public.tb_parallel_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM public.tb_parallel_count();
  RETURN NULL;
END $$;
CREATE TRIGGER zz_parallel AFTER INSERT ON public.tb_side FOR EACH ROW EXECUTE FUNCTION public.tb_parallel_trigger();
SET LOCAL force_parallel_mode = on;
SET LOCAL max_parallel_workers = 0;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SELECT lives_ok($$INSERT INTO public.tb_side SELECT g, 'p' FROM generate_series(9101, 9103) g$$,
                'an audited statement whose later trigger runs parallel queries works');
RESET force_parallel_mode;
RESET max_parallel_workers;
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.tb_side'
              AND (new_row->>'id')::int BETWEEN 9101 AND 9103), 3::bigint, 'and its entries are written');
DROP TRIGGER zz_parallel ON public.tb_side;

-- DDL on audit_log from a later trigger while entries wait: they are written first, the
-- new index covers them, and entries after it go into it as well.
CREATE FUNCTION public.tb_ddl_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id = 9202 THEN
    CREATE INDEX tb_audit_tenant ON crm_security.audit_log (table_name, id);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER zz_ddl AFTER INSERT ON public.tb_side FOR EACH ROW EXECUTE FUNCTION public.tb_ddl_trigger();
INSERT INTO public.tb_side SELECT g, 'ddl' FROM generate_series(9201, 9204) g;
DROP TRIGGER zz_ddl ON public.tb_side;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.tb_side'
              AND id > 0 AND (new_row->>'id')::int BETWEEN 9201 AND 9204), 4::bigint,
          'an index created on audit_log mid-statement holds every entry of the statement');
SELECT ok((SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.tb_side') =
          (SELECT count(*) FROM (SELECT * FROM crm_security.audit_log OFFSET 0) s WHERE table_name = 'public.tb_side'),
          'the index agrees with the table');
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX crm_security.tb_audit_tenant;

-- BRIN: a summarized page range that gets new entries must widen its summary, or a
-- lookup by id would skip them.
SELECT brin_summarize_range('crm_security.audit_log_txid_id_brin',
                            pg_relation_size('crm_security.audit_log') / current_setting('block_size')::int - 1)
  IS NOT NULL \g /dev/null
CREATE TEMP TABLE tb_before AS SELECT max(id) AS id FROM crm_security.audit_log;
INSERT INTO public.tb_side SELECT g, 'brin' FROM generate_series(10001, 10300) g;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_indexscan = off;
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE id > (SELECT id FROM tb_before)
              AND txid = txid_current()), 300::bigint,
          'new entries in a summarized BRIN range are found through the index');
SELECT is((SELECT count(*) FROM crm_security.audit_log
            WHERE id = (SELECT id FROM tb_before) + 150 AND txid = txid_current()), 1::bigint,
          'so is an entry in the middle of the batch');
RESET enable_seqscan;
RESET enable_indexscan;

-- BRIN with a changed reloption (the committed setup above): every entry of that
-- statement stored in the summarized range is found through the index by its id.
CREATE TEMP TABLE tb_in_range AS
  SELECT id, txid FROM crm_security.audit_log
   WHERE table_name = 'public.tb_brin' AND id > (SELECT before FROM public.tb_brin_range)
     AND (ctid::text::point)[0] BETWEEN (SELECT first_block FROM public.tb_brin_range)
                                    AND (SELECT first_block + 127 FROM public.tb_brin_range);
-- One lookup per entry, its id a constant, so that the index condition holds the id.
CREATE FUNCTION pg_temp.tb_found_by_brin() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE e record; found bigint := 0; n bigint;
BEGIN
  SET LOCAL enable_seqscan = off;
  SET LOCAL enable_indexscan = off;
  FOR e IN SELECT id, txid FROM tb_in_range LOOP
    EXECUTE format('SELECT count(*) FROM crm_security.audit_log WHERE id = %s AND txid = %s', e.id, e.txid)
      INTO n;
    found := found + n;
  END LOOP;
  RESET enable_seqscan;
  RESET enable_indexscan;
  RETURN found;
END $$;
SELECT is(pg_temp.tb_found_by_brin(), (SELECT count(*) FROM tb_in_range),
          'with a changed pages_per_range reloption, every entry written into a summarized BRIN range is found through the index');
SELECT ok((SELECT count(*) FROM tb_in_range) > 0, 'and that range did receive entries of the statement');

-- A constraint added to audit_log is enforced: the writer leaves heap access for SQL.
ALTER TABLE crm_security.audit_log ADD CONSTRAINT tb_needs_request CHECK (request_id IS NOT NULL) NOT VALID;
SELECT throws_ok($$INSERT INTO public.tb_side VALUES (40001, 'no request id')$$, '23514', NULL,
                 'a CHECK constraint added to audit_log is enforced on entries');
ALTER TABLE crm_security.audit_log DROP CONSTRAINT tb_needs_request;

-- Invalidations of audit_log (ANALYZE, reloptions) do not make each one cost memory.
CREATE TEMP TABLE tb_mem AS
  SELECT total_bytes FROM pg_backend_memory_contexts WHERE name = 'TopMemoryContext';
DO $$
BEGIN
  FOR i IN 1..200 LOOP
    EXECUTE format('ALTER TABLE crm_security.audit_log SET (autovacuum_vacuum_threshold = %s)', 1000 + i);
    INSERT INTO public.tb_side VALUES (50000 + i, 'inval');
  END LOOP;
END $$;
SELECT cmp_ok((SELECT total_bytes FROM pg_backend_memory_contexts WHERE name = 'TopMemoryContext')
              - (SELECT total_bytes FROM tb_mem), '<', 262144::bigint,
              '200 invalidations of audit_log, each followed by an entry, grow no memory');
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE table_name = 'public.tb_side'
              AND (new_row->>'id')::int BETWEEN 50001 AND 50200), 200::bigint, 'and every entry is there');

-- Huge rows: one statement whose entries pass the batch's 1 MB limit several times and
-- are stored out of line (TOAST) by heap_multi_insert.
CREATE TEMP TABLE tb_big_body AS
  SELECT string_agg(md5(i::text), '') AS body FROM generate_series(1, 15000) i;   -- 480 kB
INSERT INTO public.tb_side SELECT 60000 + g, (SELECT body FROM tb_big_body) || g FROM generate_series(1, 7) g;
SELECT is((SELECT count(*) FROM crm_security.audit_log
            WHERE table_name = 'public.tb_side' AND (new_row->>'id')::int BETWEEN 60001 AND 60007
              AND new_row->>'body' = (SELECT body FROM tb_big_body) || ((new_row->>'id')::int - 60000)
              AND entry_hash = hmac(crm_security.audit_canonical_entry(id), pg_read_binary_file('crm_security/audit_entry.key'), 'sha256')), 7::bigint,
          'seven 480 kB rows in one statement: every entry whole, with its hash');

-- The whole log still verifies (unsealed entries are checked one by one).
SELECT ok((SELECT ok FROM crm_security.verify_audit_log()), 'the log verifies');

SELECT * FROM finish();
ROLLBACK;

DROP TABLE public.tb_main, public.tb_side, public.tb_seen, public.tb_committed, public.tb_brin, public.tb_brin_range;
DROP FUNCTION public.tb_entries(text, text);
