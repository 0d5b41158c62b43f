-- audit_log's BRIN index: the page ranges seal_audit_log() has read are summarized by it,
-- so that a lookup by id reads one range rather than every page written since the last
-- VACUUM; the index summarizes full ranges by itself too (autosummarize).
BEGIN;
SELECT plan(6);
SET LOCAL client_min_messages = warning;
CREATE TABLE public.bs_rows (id int PRIMARY KEY, body text);
SELECT crm_security.enable_audit('public.bs_rows') IS NULL AS enabled \gset

SELECT is((SELECT reloptions FROM pg_class WHERE oid = 'crm_security.audit_log_txid_id_brin'::regclass),
          '{autosummarize=on}'::text[], 'the index summarizes full ranges by itself (autosummarize)');

-- More than two page ranges of entries (128 pages each), then a seal.
INSERT INTO public.bs_rows SELECT g, repeat('x', 300) FROM generate_series(1, 8000) g;
SELECT cmp_ok(pg_relation_size('crm_security.audit_log') / current_setting('block_size')::int, '>', 256::bigint,
              'the entries fill more than two page ranges');
-- A seal (which seals only committed work: not this transaction's entries) summarizes
-- every range there is.
SELECT is(crm_security.seal_audit_log(), 0::bigint, 'seal_audit_log() seals nothing of this transaction');
SELECT is(brin_summarize_new_values('crm_security.audit_log_txid_id_brin'), 0,
          'after a seal, no page range is left to summarize');

-- Without a seal, the ranges written since stay unsummarized (the control of the test
-- above; autovacuum cannot summarize them while this transaction holds the lock).
INSERT INTO public.bs_rows SELECT g, repeat('y', 300) FROM generate_series(8001, 16000) g;
SELECT cmp_ok(brin_summarize_new_values('crm_security.audit_log_txid_id_brin'), '>', 0,
              'ranges written after it are not summarized until something does it');
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE id = (SELECT max(id) FROM crm_security.audit_log)),
          1::bigint, 'a lookup by id finds its entry');

SELECT * FROM finish();
ROLLBACK;
