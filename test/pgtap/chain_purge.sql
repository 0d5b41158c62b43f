-- Audit chain: a purge is part of the chain.  A purge record is an audit.purge entry with
-- a keyed hash, sealed into a later block; verification accepts missing entries only in
-- the blocks such a record covers, and never trusts audit_purges.  Runs as a superuser,
-- going around the protection where an attacker would; each tampering is rolled back.
-- Statements commit one by one (sealing takes only committed entries); the database is
-- this file's own.
SET client_min_messages = warning;

CREATE TABLE public.tap_p (id int PRIMARY KEY, v text);
SELECT crm_security.enable_audit('public.tap_p') IS NULL AS enabled \g /dev/null
INSERT INTO public.tap_p SELECT g, 'a' FROM generate_series(1, 5) g;
SELECT crm_security.seal_audit_log() \g /dev/null
INSERT INTO public.tap_p SELECT g, 'b' FROM generate_series(6, 9) g;
SELECT crm_security.seal_audit_log() \g /dev/null
UPDATE public.tap_p SET v = 'c' WHERE id < 4;
SELECT crm_security.seal_audit_log() \g /dev/null
CREATE TABLE public.tap_digests (name text PRIMARY KEY, d jsonb);
INSERT INTO public.tap_digests VALUES ('before', crm_security.audit_digest());

-- Tamper as a superuser going around the protection, verify, undo; returns the verdict.
CREATE FUNCTION public.tampered(edit text, digest jsonb DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE v record; res text;
BEGIN
  BEGIN
    EXECUTE edit;
    SELECT * INTO v FROM crm_security.verify_audit_log(digest);
    res := CASE WHEN v.ok THEN 'ok' ELSE 'bad block ' || coalesce(v.first_bad_block::text, '-') || ': ' || v.detail END;
    RAISE EXCEPTION 'undo';
  EXCEPTION WHEN raise_exception THEN
    NULL;
  END;
  RETURN res;
END $$;

SELECT plan(19);

SELECT is((SELECT count(*) FROM crm_security.audit_blocks), 3::bigint, 'three sealed blocks');

-- The issue's attack: delete every entry of blocks 1 and 2, then claim a purge in audit_purges.
SELECT isnt(public.tampered($$
  ALTER TABLE crm_security.audit_log DISABLE TRIGGER audit_log_append_only;
  ALTER TABLE crm_security.audit_log DISABLE TRIGGER audit_log_append_only_rows;
  DELETE FROM crm_security.audit_log WHERE txid < (SELECT txid_hi FROM crm_security.audit_blocks WHERE block_id = 2);
  ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
  ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only_rows;
  INSERT INTO crm_security.audit_purges VALUES (2, now() - interval '400 days', 9, 'retention-job')$$,
  (SELECT d FROM public.tap_digests WHERE name = 'before')), 'ok',
  'sealed entries deleted behind a forged audit_purges row are reported (with the digest)');
SELECT matches(public.tampered($$
  ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
  DELETE FROM crm_security.audit_log WHERE txid < (SELECT txid_hi FROM crm_security.audit_blocks WHERE block_id = 2);
  INSERT INTO crm_security.audit_purges VALUES (3, now(), 9, 'retention-job')$$),
  '^bad block 1: block 1 holds 0 entries', '... and without a digest: audit_purges is not trusted');

-- A forged purge record: an audit.purge entry made in SQL, with a plain SHA-256.
SELECT throws_ok($$SELECT crm_security.log_event('audit.purge', 'audit_log', NULL, 'success',
  '{"first_block": 1, "purged_through_block": 2, "cutoff_us": 0, "entries_deleted": 9, "last_block_hash": "00"}')$$,
  '22023', NULL, 'log_event refuses the extension''s own audit.* actions');
SELECT isnt(public.tampered($$
  ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
  DELETE FROM crm_security.audit_log WHERE txid < (SELECT txid_hi FROM crm_security.audit_blocks WHERE block_id = 2);
  INSERT INTO crm_security.audit_log (txid, logged_at, kind, operation, resource_type, metadata, actor_type, db_user, entry_hash)
  SELECT pg_current_xact_id()::text::bigint, now(), 'event', 'audit.purge', 'audit_log',
         jsonb_build_object('first_block', 1, 'purged_through_block', 2, 'cutoff_us', 4102444800000000,
                            'entries_deleted', 9, 'last_block_hash', encode(block_hash, 'hex')),
         'db_user', current_user, '\x00'
    FROM crm_security.audit_blocks WHERE block_id = 2;
  UPDATE crm_security.audit_log SET entry_hash = sha256(crm_security.audit_canonical_entry(id)) WHERE operation = 'audit.purge'$$,
  (SELECT d FROM public.tap_digests WHERE name = 'before')), 'ok',
  'a purge record forged in SQL (plain SHA-256) does not cover deleted entries');

-- An honest purge honours its cutoff.
SELECT is(crm_security.purge_audit_log('1 hour'), 0::bigint, 'no block was sealed an hour ago: nothing is purged');
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE operation = 'audit.purge'), 0::bigint,
          'a purge that deletes nothing records nothing');
SELECT is(crm_security.purge_audit_log('0 seconds'), (SELECT sum(entry_count)::bigint FROM crm_security.audit_blocks),
          'purge deletes the entries of every block sealed before the cutoff');
SELECT is((SELECT metadata - 'cutoff_us' FROM crm_security.audit_log WHERE operation = 'audit.purge'),
          (SELECT jsonb_build_object('first_block', 1, 'purged_through_block', 3, 'entries_deleted', sum(entry_count),
                                     'last_block_hash', encode((array_agg(block_hash ORDER BY block_id DESC))[1], 'hex'))
             FROM crm_security.audit_blocks),
          'the purge record names the blocks, the count and the last block''s hash');
SELECT ok((SELECT (metadata->>'cutoff_us')::numeric <= extract(epoch FROM logged_at) * 1000000
                  AND (metadata->>'cutoff_us')::numeric >= extract(epoch FROM logged_at - interval '1 hour') * 1000000
             FROM crm_security.audit_log WHERE operation = 'audit.purge'), 'the purge record carries its cutoff');
SELECT is((SELECT entry_hash FROM crm_security.audit_log WHERE operation = 'audit.purge'),
          (SELECT hmac(crm_security.audit_canonical_entry(id), pg_read_binary_file('crm_security/audit_entry.key'), 'sha256')
             FROM crm_security.audit_log WHERE operation = 'audit.purge'),
          'the purge record''s hash is keyed');
SELECT is((SELECT ok FROM crm_security.verify_audit_log((SELECT d FROM public.tap_digests WHERE name = 'before'))), true,
          'after the purge the log verifies with a digest taken before it');
SELECT crm_security.seal_audit_log() \g /dev/null
INSERT INTO public.tap_digests VALUES ('after', crm_security.audit_digest());
SELECT is((SELECT count(*) FROM crm_security.audit_blocks), 4::bigint, 'the purge record is sealed into a later block');
SELECT is((SELECT ok FROM crm_security.verify_audit_log((SELECT d FROM public.tap_digests WHERE name = 'after'))), true,
          '... and the log verifies with a digest taken after it');
SELECT is((SELECT ok FROM crm_security.verify_audit_log((SELECT d FROM public.tap_digests WHERE name = 'before'))), true,
          '... and still with the one taken before');

-- The purge record is what proves the purge.
SELECT matches(public.tampered($$
  ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
  DELETE FROM crm_security.audit_log WHERE operation = 'audit.purge'$$),
  '^bad block 1: block 1 holds 0 entries', 'without its purge record the purged blocks are reported');
SELECT matches(public.tampered($$
  ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
  UPDATE crm_security.audit_log SET metadata = jsonb_set(metadata, '{purged_through_block}', '4') WHERE operation = 'audit.purge';
  UPDATE crm_security.audit_log SET entry_hash = sha256(crm_security.audit_canonical_entry(id)) WHERE operation = 'audit.purge'$$),
  '^bad block 1: block 1 holds 0 entries', 'a purge record rewritten in SQL is not trusted');
-- A second purge: cumulative, and the first record may go with the blocks it was sealed in.
SELECT is(crm_security.purge_audit_log('0 seconds'), 1::bigint, 'a second purge deletes the block holding the first record');
SELECT crm_security.seal_audit_log() \g /dev/null
SELECT is((SELECT ok FROM crm_security.verify_audit_log((SELECT d FROM public.tap_digests WHERE name = 'before'))), true,
          'the log verifies after two purges, with the first digest');

SELECT * FROM finish();

DROP FUNCTION public.tampered(text, jsonb);
DROP TABLE public.tap_p, public.tap_digests;
