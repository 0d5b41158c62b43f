\set VERBOSITY terse
-- Audit log: capture, refusals, sealing, tamper detection, retention, hostile input.
-- The test owns the audit log of this database: it starts from an empty log (so ids
-- and block numbers are stable) and leaves it empty.
CREATE FUNCTION regress_audit_reset() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
  ALTER TABLE crm_security.audit_blocks DISABLE TRIGGER USER;
  ALTER TABLE crm_security.audit_purges DISABLE TRIGGER USER;
  TRUNCATE crm_security.audit_log, crm_security.audit_blocks, crm_security.audit_purges;
  ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
  ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only_rows;
  ALTER TABLE crm_security.audit_blocks ENABLE ALWAYS TRIGGER audit_blocks_append_only;
  ALTER TABLE crm_security.audit_blocks ENABLE ALWAYS TRIGGER audit_blocks_append_only_rows;
  ALTER TABLE crm_security.audit_purges ENABLE ALWAYS TRIGGER audit_purges_append_only;
  ALTER TABLE crm_security.audit_purges ENABLE ALWAYS TRIGGER audit_purges_append_only_rows;
  ALTER SEQUENCE crm_security.audit_log_id_seq RESTART;
END $$;
SELECT regress_audit_reset();
-- Tamper as a superuser going around the protection, verify, and undo everything (the
-- exception rolls the edit back), returning what verification said.
CREATE FUNCTION regress_audit_tampered(edit text, digest jsonb DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE v record; res text;
BEGIN
  BEGIN
    ALTER TABLE crm_security.audit_log DISABLE TRIGGER audit_log_append_only;
    ALTER TABLE crm_security.audit_log DISABLE TRIGGER audit_log_append_only_rows;
    ALTER TABLE crm_security.audit_blocks DISABLE TRIGGER audit_blocks_append_only;
    ALTER TABLE crm_security.audit_blocks DISABLE TRIGGER audit_blocks_append_only_rows;
    EXECUTE edit;
    ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
    ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only_rows;
    ALTER TABLE crm_security.audit_blocks ENABLE ALWAYS TRIGGER audit_blocks_append_only;
    ALTER TABLE crm_security.audit_blocks ENABLE ALWAYS TRIGGER audit_blocks_append_only_rows;
    SELECT * INTO v FROM crm_security.verify_audit_log(digest);
    res := format('ok=%s first_bad_block=%s: %s', v.ok, v.first_bad_block, v.detail);
    RAISE EXCEPTION 'undo';
  EXCEPTION WHEN raise_exception THEN
    NULL;
  END;
  RETURN res;
END $$;

SET TimeZone = 'UTC';
CREATE ROLE regress_audit_app;
CREATE TYPE regress_audit_pt AS (x int, y int);
CREATE TABLE regress_audited (
  id int, region text,
  i2 smallint, i8 bigint, n numeric, f float8, flag boolean, note text, vc varchar(10),
  doc jsonb, js json, ts timestamptz, d date, raw bytea, nums int[], tags text[],
  pt regress_audit_pt, u uuid,
  password text, api_token text,
  PRIMARY KEY (id, region));
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_audited TO regress_audit_app;

-- enable_audit: excluded columns are sorted and deduplicated; a second call changes nothing
SELECT crm_security.enable_audit('regress_audited', ARRAY['password', 'api_token', 'password']);
SELECT crm_security.enable_audit('regress_audited', ARRAY['api_token', 'password']);
SELECT table_name, exclude_columns FROM crm_security.audited_tables;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'regress_audited'::regclass ORDER BY 1;
SELECT id, kind, operation, resource_type, resource_id, metadata FROM crm_security.audit_log ORDER BY id;

-- capture: every column type, NULLs, composite primary key
INSERT INTO regress_audited VALUES
  (1, 'eu', 2, 9007199254740993, 12.50, 'NaN', true, 'hello "world"', 'short',
   '{"a": [1, {"b": null}]}', '{"k": "v"}', '2024-02-29 12:34:56.789+00', '2024-03-01',
   '\xdeadbeef', ARRAY[1, NULL, 3], ARRAY['x', 'y z'], ROW(1, 2), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   'hunter2', 'tok_secret');
INSERT INTO regress_audited (id, region) VALUES (2, 'us');
SET ROLE regress_audit_app;
UPDATE regress_audited SET note = 'changed', n = 13, password = 'hunter3' WHERE id = 1;
UPDATE regress_audited SET password = 'only-secret-changes' WHERE id = 1;
DELETE FROM regress_audited WHERE id = 2;
RESET ROLE;
TRUNCATE regress_audited;
SELECT id, operation, table_name, record_key, changed_columns, actor_type, actor_id, db_user, tenant_id
  FROM crm_security.audit_log WHERE kind = 'row' ORDER BY id;
SELECT new_row FROM crm_security.audit_log WHERE id = 2;
SELECT old_row, new_row FROM crm_security.audit_log WHERE id = 4;
SELECT old_row FROM crm_security.audit_log WHERE id = 6;
-- excluded columns never stored, not even their values elsewhere
SELECT count(*) AS leaks FROM crm_security.audit_log l
 WHERE old_row ? 'password' OR new_row ? 'password' OR old_row ? 'api_token' OR new_row ? 'api_token'
    OR 'password' = ANY (changed_columns)
    OR l::text ~ '(hunter|tok_secret|only-secret)';
-- every entry hash is the HMAC-SHA256 of the documented canonical form under the entry key
-- (HMAC written out with sha256(), as an outside verifier holding the key file would)
CREATE FUNCTION regress_hmac(m bytea, k bytea) RETURNS bytea LANGUAGE sql AS $$
  SELECT sha256(string_agg(set_byte('\x00'::bytea, 0, b # 92), ''::bytea ORDER BY i) ||
                sha256(string_agg(set_byte('\x00'::bytea, 0, b # 54), ''::bytea ORDER BY i) || m))
    FROM (SELECT i, CASE WHEN i < length(k) THEN get_byte(k, i) ELSE 0 END AS b
            FROM generate_series(0, 63) i) p $$;
SELECT bool_and(entry_hash = regress_hmac(crm_security.audit_canonical_entry(id), pg_read_binary_file('crm_security/audit_entry.key'))) AS hashes_match,
       count(*) AS entries
  FROM crm_security.audit_log;
SELECT convert_from(crm_security.audit_canonical_entry(3), 'UTF8') ~
       '^crm_security\.audit_entry\.v1\nid=1:3\ntxid=[0-9]+:[0-9]+\nlogged_at=[0-9]+:[0-9]+\nkind=3:row\ntable_name=22:public\.regress_audited\noperation=6:INSERT\nrecord_key=25:\{"id": 2, "region": "us"\}\nold_row=~\n'
       AS canonical_form;
SELECT crm_security.audit_canonical_entry(-1) IS NULL AS missing_entry;

-- application events, with the request id the application set for the transaction
BEGIN;
SET LOCAL crm_security.request_id = 'req-42';
SELECT crm_security.log_event('export', 'report', 'r-7', 'success', '{"rows": 3}') AS event_id;
SELECT crm_security.log_event('login', 'user', 'alice', 'denied') IS NOT NULL AS logged;
COMMIT;
SELECT crm_security.log_event('logout') IS NOT NULL AS logged;
SELECT action, resource_type, resource_id, result, denied, metadata, request_id, actor_id
  FROM crm_security.audit_access_events WHERE action IN ('export', 'login', 'logout') ORDER BY id;
SELECT actor_type, actor_id, events, denials FROM crm_security.audit_actor_summary;
SELECT operation, changed_columns FROM crm_security.audit_changes
 WHERE table_name = 'public.regress_audited' AND record_key @> '{"id": 1}' ORDER BY id;
-- export as JSON lines: CSV mode with quote and delimiter characters JSON never contains raw
COPY (SELECT pg_catalog.jsonb_build_object('operation', operation, 'key', record_key, 'changed', changed_columns)
        FROM crm_security.audit_changes ORDER BY id)
  TO STDOUT WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
COPY (SELECT operation, record_key, changed_columns FROM crm_security.audit_changes ORDER BY id)
  TO STDOUT WITH (FORMAT csv, HEADER);

-- hostile input
SELECT crm_security.log_event(NULL);
SELECT crm_security.log_event('');
SELECT crm_security.log_event(repeat('x', 201));
SELECT crm_security.log_event('x', resource_id => repeat('r', 1025));
SELECT crm_security.log_event('x', metadata => (SELECT jsonb_agg(g) FROM generate_series(1, 200000) g));
SELECT crm_security.log_event('x', NULL, NULL, NULL, NULL) IS NOT NULL AS nulls_accepted;
SELECT crm_security.enable_audit(NULL);
SELECT crm_security.enable_audit('regress_no_such_table');
SELECT crm_security.enable_audit(4000000000::oid::regclass);
CREATE TABLE regress_audit_nopk (a int);
SELECT crm_security.enable_audit('regress_audit_nopk');
SELECT crm_security.enable_audit('regress_audited', ARRAY['no_such_column']);
SELECT crm_security.enable_audit('regress_audited', ARRAY['id']);
SELECT crm_security.enable_audit('regress_audited', ARRAY[NULL]::text[]);
SELECT crm_security.enable_audit('regress_audited', ARRAY[['a'], ['b']]);
SELECT crm_security.enable_audit('crm_security.audit_log');
CREATE VIEW regress_audit_view AS SELECT 1 AS one;
SELECT crm_security.enable_audit('regress_audit_view');
SELECT crm_security.disable_audit(NULL);
SELECT crm_security.verify_audit_log('[]');
SELECT crm_security.verify_audit_log('{"block_id": -1, "block_hash": "00"}');
SELECT crm_security.verify_audit_log('{"block_id": 1.5, "block_hash": "00"}');
SELECT crm_security.verify_audit_log('{"block_id": 1, "block_hash": "zz"}');
SELECT crm_security.purge_audit_log('-1 day');
SELECT crm_security.purge_audit_log(NULL) IS NULL AS strict;
SELECT crm_security.audit_trigger();
CREATE TRIGGER regress_bad BEFORE INSERT ON regress_audited FOR EACH ROW EXECUTE FUNCTION crm_security.audit_trigger();
INSERT INTO regress_audited (id, region) VALUES (9, 'x');
DROP TRIGGER regress_bad ON regress_audited;
BEGIN READ ONLY;
SELECT crm_security.log_event('read.only');
ROLLBACK;
-- quoted identifiers everywhere
CREATE SCHEMA "regress audit";
CREATE TABLE "regress audit"."T""q" ("i d" int PRIMARY KEY, "Col,{x}" text, "se""cret" text);
SELECT crm_security.enable_audit('"regress audit"."T""q"', ARRAY['se"cret']);
INSERT INTO "regress audit"."T""q" VALUES (1, 'a', 'hidden');
UPDATE "regress audit"."T""q" SET "Col,{x}" = 'b', "se""cret" = 'also hidden';
SELECT table_name, operation, record_key, new_row, changed_columns FROM crm_security.audit_log
 WHERE table_name = '"regress audit"."T""q"' ORDER BY id;
SELECT exclude_columns FROM crm_security.audited_tables WHERE table_name = '"regress audit"."T""q"'::regclass;
DROP SCHEMA "regress audit" CASCADE;
-- partitioned tables: entries name the partition; moving a row between partitions is a DELETE and an INSERT
CREATE TABLE regress_audit_parted (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE regress_audit_parted_eu PARTITION OF regress_audit_parted FOR VALUES IN ('eu');
CREATE TABLE regress_audit_parted_us PARTITION OF regress_audit_parted FOR VALUES IN ('us');
SELECT crm_security.enable_audit('regress_audit_parted');
INSERT INTO regress_audit_parted VALUES (1, 'eu');
UPDATE regress_audit_parted SET region = 'us';
TRUNCATE regress_audit_parted;
SELECT table_name, operation, record_key FROM crm_security.audit_log
 WHERE table_name LIKE 'public.regress_audit_parted%' ORDER BY id;
DROP TABLE regress_audit_parted;
-- huge values are audited whole
INSERT INTO regress_audited (id, region, note) VALUES (3, 'eu', repeat('0123456789', 500000));
SELECT length(new_row->>'note') AS note_length FROM crm_security.audit_log
 WHERE operation = 'INSERT' AND record_key = '{"id": 3, "region": "eu"}';
-- a renamed excluded column makes writes fail closed rather than store it
ALTER TABLE regress_audited RENAME COLUMN password TO pw;
UPDATE regress_audited SET pw = 'leak?' WHERE id = 3;
ALTER TABLE regress_audited RENAME COLUMN pw TO password;

-- nothing for PUBLIC but log_event
SET ROLE regress_audit_app;
SELECT count(*) FROM crm_security.audit_log;
SELECT count(*) FROM crm_security.audit_changes;
INSERT INTO crm_security.audit_log (txid, logged_at, kind, operation, actor_type, db_user, entry_hash)
  VALUES (1, now(), 'event', 'forged', 'db_user', 'x', '\x00');
SELECT crm_security.seal_audit_log();
SELECT crm_security.purge_audit_log('0 seconds');
SELECT crm_security.verify_audit_log();
SELECT crm_security.log_event('app.event') IS NOT NULL AS app_can_log;
SELECT crm_security.enable_audit('regress_audited');
SELECT crm_security.disable_audit('regress_audited');
RESET ROLE;

-- sealing, digest, verification
SELECT crm_security.seal_audit_log() AS sealed;
SELECT crm_security.seal_audit_log() AS sealed_again;
SELECT block_id, entry_count, txid_lo = 0 AS starts_at_zero FROM crm_security.audit_blocks ORDER BY block_id;
SELECT * FROM crm_security.verify_audit_log();
SELECT crm_security.log_event('after.first.seal') IS NOT NULL AS logged;
SELECT crm_security.seal_audit_log() AS sealed;
SELECT crm_security.audit_digest() AS digest \gset
SELECT (:'digest'::jsonb)->>'block_id' AS digest_block, length((:'digest'::jsonb)->>'block_hash') AS hash_length;
SELECT * FROM crm_security.verify_audit_log(:'digest');
-- append-only, for the superuser too, and under session_replication_role = replica
UPDATE crm_security.audit_log SET actor_id = 'mallory' WHERE id = 3;
DELETE FROM crm_security.audit_log WHERE id = 3;
TRUNCATE crm_security.audit_log;
SET session_replication_role = replica;
UPDATE crm_security.audit_log SET actor_id = 'mallory' WHERE id = 3;
DELETE FROM crm_security.audit_log WHERE id = 3;
TRUNCATE crm_security.audit_log;
UPDATE crm_security.audit_blocks SET entry_count = 0;
DELETE FROM crm_security.audit_blocks;
UPDATE crm_security.audit_blocks SET entry_count = 0 WHERE false;
TRUNCATE crm_security.audit_blocks;
DELETE FROM crm_security.audit_purges;
RESET session_replication_role;
-- not even a statement that touches no row
DELETE FROM crm_security.audit_log WHERE false;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'crm_security.audit_log'::regclass ORDER BY 1;
-- entries of a transaction still running are never sealed
BEGIN;
SELECT crm_security.log_event('in.flight') IS NOT NULL AS logged;
SELECT crm_security.seal_audit_log() AS sealed_in_own_transaction;
COMMIT;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT crm_security.seal_audit_log();
ROLLBACK;

-- tampering is reported
SELECT regress_audit_tampered($$UPDATE crm_security.audit_log SET actor_id = 'mallory' WHERE id = 3$$) AS modified_entry;
SELECT regress_audit_tampered($$UPDATE crm_security.audit_log SET actor_id = 'mallory' WHERE id = 3;
  UPDATE crm_security.audit_log SET entry_hash = sha256(crm_security.audit_canonical_entry(3)) WHERE id = 3$$) AS modified_entry_rehashed;
SELECT regress_audit_tampered($$DELETE FROM crm_security.audit_log WHERE id = 4$$) AS deleted_entry;
SELECT regress_audit_tampered($$INSERT INTO crm_security.audit_log
  SELECT 1000, txid, logged_at, kind, table_name, operation, record_key, old_row, new_row, changed_columns,
         resource_type, resource_id, result, metadata, actor_type, 'forger', tenant_id, db_user, request_id,
         client_addr, '\x00' FROM crm_security.audit_log WHERE id = 3;
  UPDATE crm_security.audit_log SET entry_hash = sha256(crm_security.audit_canonical_entry(1000)) WHERE id = 1000$$) AS forged_entry;
SELECT regress_audit_tampered($$UPDATE crm_security.audit_log SET id = CASE id WHEN 3 THEN 4 ELSE 3 END WHERE id IN (3, 4)$$) AS reordered_entries;
SELECT regress_audit_tampered($$UPDATE crm_security.audit_log SET txid = txid - 1 WHERE id = 5$$) AS moved_entry;
SELECT regress_audit_tampered($$UPDATE crm_security.audit_blocks SET entry_count = entry_count - 1 WHERE block_id = 1$$) AS modified_block;
SELECT regress_audit_tampered($$UPDATE crm_security.audit_blocks SET sealed_at = sealed_at - interval '1 day' WHERE block_id = 2$$) AS backdated_block;
SELECT regress_audit_tampered($$DELETE FROM crm_security.audit_blocks WHERE block_id = 1$$) AS removed_first_block;
SELECT regress_audit_tampered($$DELETE FROM crm_security.audit_log
  WHERE txid >= (SELECT txid_lo FROM crm_security.audit_blocks WHERE block_id = 2);
  DELETE FROM crm_security.audit_blocks WHERE block_id = 2$$, :'digest') AS removed_tail_with_digest;
SELECT regress_audit_tampered($$DELETE FROM crm_security.audit_log
  WHERE txid >= (SELECT txid_lo FROM crm_security.audit_blocks WHERE block_id = 2);
  DELETE FROM crm_security.audit_blocks WHERE block_id = 2$$) AS removed_tail_without_digest;
SELECT regress_audit_tampered($$UPDATE crm_security.audit_log SET result = 'failure' WHERE operation = 'in.flight'$$) AS modified_unsealed_entry;
SELECT regress_audit_tampered('SELECT 1', jsonb_set(:'digest', '{block_hash}', to_jsonb(repeat('a', 64)))) AS wrong_digest;
-- all undone
SELECT ok, first_bad_block FROM crm_security.verify_audit_log(:'digest');

-- entries go through SPI when audit_log has an index the fast path cannot maintain
CREATE INDEX regress_audit_expr ON crm_security.audit_log ((lower(actor_id)));
SELECT crm_security.log_event('through.spi') IS NOT NULL AS logged;
SELECT count(*) FROM crm_security.audit_log WHERE lower(actor_id) = 'postgres' AND operation = 'through.spi';
DROP INDEX crm_security.regress_audit_expr;

-- retention: whole sealed blocks only, then verification still passes
SELECT crm_security.purge_audit_log('1 day') AS purged_nothing;
SELECT crm_security.seal_audit_log() > 0 AS sealed;
SELECT crm_security.purge_audit_log('0 seconds') AS purged;
SELECT purged_through_block, entries_deleted, purged_by FROM crm_security.audit_purges;
SELECT count(*) AS remaining, min(operation) AS first_remaining FROM crm_security.audit_log;
SELECT ok, blocks_checked, entries_checked, first_bad_block FROM crm_security.verify_audit_log(:'digest');
SELECT crm_security.purge_audit_log('0 seconds') AS purged_again;
SELECT regress_audit_tampered($$INSERT INTO crm_security.audit_log SELECT 2000, 1, logged_at, kind, table_name,
  operation, record_key, old_row, new_row, changed_columns, resource_type, resource_id, result, metadata,
  actor_type, actor_id, tenant_id, db_user, request_id, client_addr, entry_hash
  FROM crm_security.audit_log ORDER BY id LIMIT 1$$) AS entry_in_purged_block;

-- disable_audit is idempotent and recorded
SELECT crm_security.disable_audit('regress_audited');
SELECT crm_security.disable_audit('regress_audited');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'regress_audited'::regclass;
SELECT operation, resource_id FROM crm_security.audit_log WHERE operation LIKE 'audit.%' ORDER BY id;

-- clean up
DROP TABLE regress_audited, regress_audit_nopk;
DROP VIEW regress_audit_view;
DROP TYPE regress_audit_pt;
DROP ROLE regress_audit_app;
SELECT regress_audit_reset();
DROP FUNCTION regress_audit_reset();
DROP FUNCTION regress_audit_tampered(text, jsonb);
DROP FUNCTION regress_hmac(bytea, bytea);
RESET TimeZone;
