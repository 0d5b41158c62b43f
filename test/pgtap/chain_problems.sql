-- Audit chain: verification goes on after the first bad block.  verify_audit_log() keeps
-- its columns, reports the first problem and counts them all; audit_log_problems() lists
-- every one.  audit_table_status shows a table whose audit triggers were dropped or
-- disabled.  Hostile and NULL input to the new functions.  Runs as a superuser.
SET client_min_messages = warning;

CREATE TABLE public.tap_q (id int PRIMARY KEY, v text);
SELECT crm_security.enable_audit('public.tap_q') IS NULL AS enabled \g /dev/null
INSERT INTO public.tap_q SELECT g, 'a' FROM generate_series(1, 3) g;
SELECT crm_security.seal_audit_log() \g /dev/null
INSERT INTO public.tap_q SELECT g, 'b' FROM generate_series(4, 6) g;
SELECT crm_security.seal_audit_log() \g /dev/null
INSERT INTO public.tap_q SELECT g, 'c' FROM generate_series(7, 9) g;
SELECT crm_security.seal_audit_log() \g /dev/null
CREATE TABLE public.tap_digest AS SELECT crm_security.audit_digest() AS d;

-- Tamper going around the protection, then run a query; the tampering is undone.
CREATE FUNCTION public.tampered_rows(edit text, query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE res text[];
BEGIN
  BEGIN
    ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
    ALTER TABLE crm_security.audit_blocks DISABLE TRIGGER USER;
    EXECUTE edit;
    EXECUTE 'SELECT array_agg(x) FROM (' || query || ') q(x)' INTO res;
    RAISE EXCEPTION 'undo';
  EXCEPTION WHEN raise_exception THEN
    NULL;
  END;
  RETURN QUERY SELECT unnest(res);
END $$;

SELECT plan(21);
CREATE TEMP TABLE tap_ranges AS
SELECT '3: block 3 covers transactions [' || b3.txid_lo || ', ' || b3.txid_hi || '), expected to start at ' || b1.txid_hi AS m
  FROM crm_security.audit_blocks b1, crm_security.audit_blocks b3 WHERE b1.block_id = 1 AND b3.block_id = 3;
CREATE TEMP TABLE tap_ids AS SELECT id::text FROM crm_security.audit_log WHERE new_row->>'id' IN ('1', '2');

SELECT is((SELECT count(*) FROM crm_security.audit_log_problems()), 0::bigint, 'an intact log has no problem');
SELECT is((SELECT count(*) FROM crm_security.audit_log_problems((SELECT d FROM public.tap_digest))), 0::bigint,
          '... also against its digest');
SELECT is((SELECT count(*) FROM crm_security.audit_log_problems(NULL)), 0::bigint, 'a NULL digest means no digest');

-- Damage in blocks 1 and 3 and an unsealed entry: all of it reported.
SELECT results_eq($$SELECT * FROM public.tampered_rows(
    $e$UPDATE crm_security.audit_log SET tenant_id = 'x' WHERE new_row->>'id' IN ('1', '8');
       DELETE FROM crm_security.audit_log WHERE new_row->>'id' = '5'$e$,
    $q$SELECT block_id::text FROM crm_security.audit_log_problems() GROUP BY block_id ORDER BY block_id$q$)$$,
  $$VALUES ('1'), ('2'), ('3')$$, 'a modified entry in block 1 does not hide the damage in blocks 2 and 3');
SELECT matches((SELECT * FROM public.tampered_rows(
    $e$UPDATE crm_security.audit_log SET tenant_id = 'x' WHERE new_row->>'id' IN ('1', '8');
       DELETE FROM crm_security.audit_log WHERE new_row->>'id' = '5'$e$,
    $q$SELECT format('%s|%s|%s', ok, first_bad_block, detail) FROM crm_security.verify_audit_log()$q$)),
  '^f\|1\|entry [0-9]+ does not match its hash .*; 3 problems in all \(3 bad blocks, 2 bad entries\)',
  'verify_audit_log reports the first problem and counts them all');
SELECT is((SELECT * FROM public.tampered_rows(
    $e$UPDATE crm_security.audit_log SET tenant_id = 'x' WHERE new_row->>'id' IN ('1', '8')$e$,
    $q$SELECT format('%s %s %s', blocks_checked, entries_checked, ok) FROM crm_security.verify_audit_log()$q$)),
  '3 10 f', 'verification checks every block and entry after a bad one');
SELECT results_eq($$SELECT * FROM public.tampered_rows(
    $e$UPDATE crm_security.audit_blocks SET entry_count = entry_count + 1 WHERE block_id IN (1, 3)$e$,
    $q$SELECT block_id || ': ' || problem FROM crm_security.audit_log_problems() ORDER BY block_id, problem$q$)$$,
  $$VALUES ('1: block 1 does not match its stored hash (block modified)'),
           ('1: block 1 holds 4 entries but was sealed with 5 (entries deleted or inserted)'),
           ('3: block 3 does not match its stored hash (block modified)'),
           ('3: block 3 holds 3 entries but was sealed with 4 (entries deleted or inserted)')$$,
  'two modified blocks are both reported, and the block between them is not');
SELECT results_eq($$SELECT * FROM public.tampered_rows(
    $e$DELETE FROM crm_security.audit_blocks WHERE block_id = 2$e$,
    $q$SELECT coalesce(block_id::text, '-') || ': ' || problem FROM crm_security.audit_log_problems() ORDER BY 1$q$)$$,
  $$VALUES ('2: block 2 is missing (the next block is 3)'),
           ((SELECT m FROM pg_temp.tap_ranges)),
           ('3: block 3 does not link to block 2 (prev_hash differs)'),
           ('3: block 3 holds 6 entries but was sealed with 3 (entries deleted or inserted)')$$,
  'a removed block is reported where it is missing');
SELECT is(ARRAY(SELECT * FROM public.tampered_rows(
    $e$UPDATE crm_security.audit_log SET actor_id = 'x' WHERE new_row->>'id' IN ('1', '2')$e$,
    $q$SELECT entry_id FROM crm_security.audit_log_problems() WHERE entry_id IS NOT NULL ORDER BY 1$q$)),
  ARRAY(SELECT id FROM pg_temp.tap_ids ORDER BY 1),
  'each bad entry is named');
SELECT is((SELECT count(*) FROM crm_security.audit_log_problems(('{"block_id": 99, "block_hash": "' || repeat('a', 64) || '"}')::jsonb)),
          1::bigint, 'a digest beyond the chain is one problem');
SELECT is((SELECT ok FROM crm_security.verify_audit_log()), true, 'every tampering above was undone');

-- Hostile digests.
SELECT throws_ok($$SELECT * FROM crm_security.audit_log_problems('[]')$$, '22023', NULL, 'an array is not a digest');
SELECT throws_ok($$SELECT * FROM crm_security.audit_log_problems('"x"')$$, '22023', NULL, 'a string is not a digest');
SELECT throws_ok($$SELECT * FROM crm_security.audit_log_problems('{"block_id": -1, "block_hash": "00"}')$$, '22023', NULL,
                 'a negative block id is refused');
SELECT throws_ok($$SELECT * FROM crm_security.audit_log_problems(jsonb_build_object('block_id', 1, 'block_hash', repeat('z', 1000000)))$$,
                 '22023', NULL, 'a huge hash is refused');
SELECT throws_ok($$SELECT * FROM crm_security.audit_log_problems('{"block_id": 1e400, "block_hash": "00"}')$$, '22023', NULL,
                 'a huge block id is refused');

-- Monitoring: a table whose audit trigger was disabled or dropped.
SELECT is((SELECT format('%s %s %s', row_trigger, truncate_trigger, audited) FROM crm_security.audit_table_status
            WHERE relid = 'public.tap_q'::regclass), 'enabled enabled t', 'an audited table is listed as audited');
ALTER TABLE public.tap_q DISABLE TRIGGER crm_audit_row;
SELECT is((SELECT format('%s %s', row_trigger, audited) FROM crm_security.audit_table_status
            WHERE relid = 'public.tap_q'::regclass), 'disabled f', 'a disabled row trigger is shown');
ALTER TABLE public.tap_q ENABLE TRIGGER crm_audit_row;
DROP TRIGGER crm_audit_row ON public.tap_q;
SELECT is((SELECT format('%s %s', row_trigger, audited) FROM crm_security.audit_table_status
            WHERE table_name = 'public.tap_q'), 'missing f', 'a dropped row trigger is shown');
DROP TRIGGER crm_audit_truncate ON public.tap_q;
SELECT is((SELECT format('%s %s %s', row_trigger, truncate_trigger, audited) FROM crm_security.audit_table_status
            WHERE table_name = 'public.tap_q'), 'missing missing f',
          'a table whose triggers were all dropped is still listed, from its audit.enable entry');
SELECT crm_security.disable_audit('public.tap_q') IS NULL AS disabled \g /dev/null
SELECT crm_security.enable_audit('public.tap_q') IS NULL AS enabled \g /dev/null
SELECT crm_security.disable_audit('public.tap_q') IS NULL AS disabled \g /dev/null
SELECT is((SELECT count(*) FROM crm_security.audit_table_status WHERE table_name = 'public.tap_q'), 0::bigint,
          'a table whose audit was disabled with disable_audit() is not listed');

SELECT * FROM finish();

DROP FUNCTION public.tampered_rows(text, text);
DROP TABLE public.tap_q, public.tap_digest;
