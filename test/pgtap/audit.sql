-- Audit log: behaviour and adversarial checks.
-- Committed setup first (sealing only takes entries of finished transactions), then one
-- transaction that is rolled back; the setup is removed at the end.
SET client_min_messages = warning;
-- Each pgTAP file runs in a database of its own (test/run.sh), so the audit log starts empty
-- and nothing needs cleaning up at the end.
CREATE TABLE public.tap_audited (
  tenant text, id bigint, body text, amount numeric, tags text[], doc jsonb, at timestamptz, blob bytea,
  secret text,
  PRIMARY KEY (tenant, id));
SELECT crm_security.enable_audit('public.tap_audited', ARRAY['secret']) IS NULL AS enabled \g /dev/null
INSERT INTO public.tap_audited VALUES ('t1', 1, 'one', 1.5, ARRAY['a'], '{"k": 1}', '2024-01-01 00:00+00', '\x01', 'pw-1');
INSERT INTO public.tap_audited VALUES ('t1', 2, 'two', NULL, NULL, NULL, NULL, NULL, 'pw-2');
UPDATE public.tap_audited SET body = 'uno', secret = 'pw-1b' WHERE id = 1;
DELETE FROM public.tap_audited WHERE id = 2;
SELECT crm_security.log_event('login', 'user', 'u1', 'denied') IS NOT NULL AS logged \g /dev/null
SELECT crm_security.seal_audit_log() AS sealed \g /dev/null
CREATE TABLE public.tap_digest AS SELECT crm_security.audit_digest() AS d;

BEGIN;
SELECT plan(46);

-- Tamper going around the protection as a superuser; the edit is rolled back.
CREATE FUNCTION pg_temp.tampered(edit text, digest jsonb DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE v record; res text;
BEGIN
  BEGIN
    ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
    ALTER TABLE crm_security.audit_blocks DISABLE TRIGGER USER;
    EXECUTE edit;
    SELECT * INTO v FROM crm_security.verify_audit_log(digest);
    res := CASE WHEN v.ok THEN 'ok' ELSE 'bad block ' || coalesce(v.first_bad_block::text, '-') || ': ' || v.detail END;
    RAISE EXCEPTION 'undo';
  EXCEPTION WHEN raise_exception THEN
    NULL;
  END;
  RETURN res;
END $$;

-- schema and privileges
SELECT has_table('crm_security', 'audit_log', 'audit_log exists');
SELECT table_privs_are('crm_security', 'audit_log', 'public', ARRAY[]::text[], 'PUBLIC has no privilege on audit_log');
SELECT table_privs_are('crm_security', 'audit_blocks', 'public', ARRAY[]::text[], 'PUBLIC has no privilege on audit_blocks');
SELECT function_privs_are('crm_security', 'seal_audit_log', ARRAY[]::text[], 'public', ARRAY[]::text[], 'PUBLIC cannot seal');
SELECT function_privs_are('crm_security', 'purge_audit_log', ARRAY['interval'], 'public', ARRAY[]::text[], 'PUBLIC cannot purge');
SELECT function_privs_are('crm_security', 'log_event', ARRAY['text', 'text', 'text', 'text', 'jsonb'], 'public', ARRAY['EXECUTE'], 'PUBLIC may log events');
SELECT function_privs_are('crm_security', 'log_event', ARRAY['text', 'text', 'text', 'text', 'jsonb', 'text', 'text[]'], 'public', ARRAY['EXECUTE'], 'PUBLIC may log events of a data subject');
SELECT is_definer('crm_security', 'seal_audit_log', ARRAY[]::text[], 'seal_audit_log is SECURITY DEFINER');
SELECT ok((SELECT proconfig @> ARRAY['search_path=pg_catalog, pg_temp'] FROM pg_proc
            WHERE oid = 'crm_security.purge_audit_log(interval)'::regprocedure), 'purge_audit_log pins search_path');
SELECT volatility_is('crm_security', 'verify_audit_log', ARRAY['jsonb'], 'stable', 'verify_audit_log is STABLE');

-- capture
SELECT results_eq(
  $$SELECT operation, record_key, changed_columns FROM crm_security.audit_log
     WHERE table_name = 'public.tap_audited' ORDER BY id$$,
  $$VALUES ('INSERT', '{"id": 1, "tenant": "t1"}'::jsonb, NULL::text[]),
           ('INSERT', '{"id": 2, "tenant": "t1"}'::jsonb, NULL::text[]),
           ('UPDATE', '{"id": 1, "tenant": "t1"}'::jsonb, ARRAY['body']),
           ('DELETE', '{"id": 2, "tenant": "t1"}'::jsonb, NULL::text[])$$,
  'INSERT, UPDATE and DELETE are captured with the composite key and changed columns');
SELECT is((SELECT new_row FROM crm_security.audit_log WHERE table_name = 'public.tap_audited' ORDER BY id LIMIT 1),
          '{"tenant": "t1", "id": 1, "body": "one", "amount": 1.5, "tags": ["a"], "doc": {"k": 1},
            "at": "2024-01-01T00:00:00+00:00", "blob": "\\x01"}'::jsonb,
          'the new row holds every column but the excluded one, typed as to_jsonb() types it');
SELECT is((SELECT count(*) FROM crm_security.audit_log l WHERE l::text LIKE '%pw-%' OR new_row ? 'secret' OR old_row ? 'secret'),
          0::bigint, 'the excluded column and its values are stored nowhere');
SELECT is((SELECT array_agg(DISTINCT actor_id || '/' || actor_type) FROM crm_security.audit_log),
          ARRAY[session_user || '/db_user'], 'without a context the actor is the session user');
SELECT ok((SELECT bool_and(entry_hash = hmac(crm_security.audit_canonical_entry(id), pg_read_binary_file('crm_security/audit_entry.key'), 'sha256')) FROM crm_security.audit_log),
          'entry hashes are the HMAC-SHA256 of the canonical form under the entry key');
TRUNCATE public.tap_audited;
SELECT is((SELECT operation FROM crm_security.audit_log ORDER BY id DESC LIMIT 1), 'TRUNCATE', 'TRUNCATE is captured');
INSERT INTO public.tap_audited (tenant, id, body) VALUES ('t2', 9, repeat('x', 3000000));
SELECT is((SELECT length(new_row->>'body') FROM crm_security.audit_log ORDER BY id DESC LIMIT 1), 3000000, 'a huge value is audited whole');

-- append-only for the superuser, also under session_replication_role = replica
SELECT throws_ok($$UPDATE crm_security.audit_log SET result = 'x'$$, '42501', NULL, 'UPDATE refused to the superuser');
SELECT throws_ok($$DELETE FROM crm_security.audit_log$$, '42501', NULL, 'DELETE refused to the superuser');
SELECT throws_ok($$TRUNCATE crm_security.audit_log$$, '42501', NULL, 'TRUNCATE refused to the superuser');
SELECT throws_ok($$DELETE FROM crm_security.audit_blocks$$, '42501', NULL, 'blocks cannot be deleted');
SET LOCAL session_replication_role = replica;
SELECT throws_ok($$UPDATE crm_security.audit_log SET result = 'x'$$, '42501', NULL, 'UPDATE refused under replica');
SELECT throws_ok($$DELETE FROM crm_security.audit_log$$, '42501', NULL, 'DELETE refused under replica');
SELECT throws_ok($$TRUNCATE crm_security.audit_log$$, '42501', NULL, 'TRUNCATE refused under replica');
SELECT throws_ok($$UPDATE crm_security.audit_blocks SET entry_count = 0$$, '42501', NULL, 'blocks cannot be updated under replica');
SET LOCAL session_replication_role = origin;

-- hostile input
SELECT throws_ok($$SELECT crm_security.enable_audit(NULL)$$, '22023', NULL, 'enable_audit(NULL) is refused');
SELECT throws_ok($$SELECT crm_security.enable_audit(4000000000::oid::regclass)$$, '42P01', NULL, 'a table that does not exist is refused');
CREATE TABLE pg_temp.tap_nopk (a int);
SELECT throws_ok($$SELECT crm_security.enable_audit('pg_temp.tap_nopk')$$, '55000', 'table "tap_nopk" has no primary key', 'a table without a primary key is refused');
SELECT throws_ok($$SELECT crm_security.enable_audit('public.tap_audited', ARRAY['nope'])$$, '42703', NULL, 'an unknown excluded column is refused');
SELECT throws_ok($$SELECT crm_security.log_event(NULL)$$, '22023', NULL, 'log_event(NULL) is refused');
SELECT throws_ok($$SELECT crm_security.log_event('a', metadata => (SELECT jsonb_agg(repeat('m', 1000)) FROM generate_series(1, 2000)))$$,
                 '22023', NULL, 'oversized metadata is refused');
SELECT throws_ok($$SELECT * FROM crm_security.verify_audit_log('{"block_id": "1"}')$$, '22023', NULL, 'a malformed digest is refused');
SELECT lives_ok($$SELECT crm_security.enable_audit('public.tap_audited', ARRAY['secret', 'secret'])$$, 'enable_audit again');
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE operation = 'audit.enable'), 1::bigint,
          'enable_audit with the same columns again changes nothing (idempotent)');

-- entries of a running transaction are never sealed
SELECT ok(crm_security.log_event('in.flight') > 0, 'an event is logged in this transaction');
SELECT is(crm_security.seal_audit_log(), 0::bigint, 'the sealer leaves the entries of a running transaction alone');

-- verification
SELECT is((SELECT ok FROM crm_security.verify_audit_log((SELECT d FROM public.tap_digest))), true, 'the intact log verifies against the digest');
SELECT matches(pg_temp.tampered($$UPDATE crm_security.audit_log SET tenant_id = 'other' WHERE operation = 'UPDATE'$$),
               '^bad block 1: entry [0-9]+ does not match', 'a modified entry is detected');
SELECT matches(pg_temp.tampered($$DELETE FROM crm_security.audit_log WHERE operation = 'DELETE'$$),
               '^bad block 1: .*entries deleted or inserted', 'a deleted entry is detected');
SELECT matches(pg_temp.tampered($$INSERT INTO crm_security.audit_log SELECT id + 100000, txid, logged_at, kind, table_name,
  operation, record_key, old_row, new_row, changed_columns, resource_type, resource_id, result, metadata, actor_type,
  actor_id, tenant_id, db_user, request_id, client_addr, entry_hash FROM crm_security.audit_log WHERE operation = 'UPDATE';
  UPDATE crm_security.audit_log SET entry_hash = sha256(crm_security.audit_canonical_entry(id)) WHERE id > 100000$$),
               '^bad block 1: (entry [0-9]+ does not match|.*entries deleted or inserted)', 'an inserted forged entry is detected');
SELECT matches(pg_temp.tampered($$UPDATE crm_security.audit_log SET id = -id WHERE operation IN ('INSERT', 'DELETE');
  UPDATE crm_security.audit_log SET id = -id WHERE id < 0$$),
               '^ok$', 'renumbering back and forth changes nothing');
SELECT matches(pg_temp.tampered($$WITH two AS (SELECT min(id) AS a, max(id) AS b FROM crm_security.audit_log WHERE operation = 'INSERT')
  UPDATE crm_security.audit_log l SET id = CASE WHEN l.id = two.a THEN two.b ELSE two.a END FROM two WHERE l.id IN (two.a, two.b)$$),
               '^bad block 1: ', 'reordered entries are detected');
SELECT matches(pg_temp.tampered($$UPDATE crm_security.audit_blocks SET entries_hash = sha256(entries_hash) WHERE block_id = 1$$),
               '^bad block 1: block 1 does not match its stored hash', 'a modified block is detected');
SELECT matches(pg_temp.tampered($$DELETE FROM crm_security.audit_blocks WHERE block_id = (SELECT max(block_id) FROM crm_security.audit_blocks)$$,
                                (SELECT d FROM public.tap_digest)),
               'does not reach the digest', 'a removed tail is detected with the digest');

-- retention
SELECT cmp_ok(crm_security.purge_audit_log('0 seconds'), '>', 0::bigint, 'purge deletes the entries of sealed blocks');
SELECT is((SELECT ok FROM crm_security.verify_audit_log((SELECT d FROM public.tap_digest))), true, 'what remains verifies, against the old digest too');

SELECT * FROM finish();
ROLLBACK;

-- drop the committed setup (its entries stay: append-only, and the database is dropped)
DROP TABLE public.tap_audited, public.tap_digest;
