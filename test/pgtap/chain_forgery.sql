-- Audit chain: forged entries.  Only the extension's writer adds entries: an INSERT into
-- audit_log whose keyed hash does not verify is refused for every role, the table's owner
-- and superusers included, also under session_replication_role = replica; entry hashes
-- are HMAC-SHA256 under the entry key, so an entry forged or edited by going around the
-- protection is reported, sealed or not.  Runs as a superuser; each tampering is undone.
SET client_min_messages = warning;

CREATE TABLE public.tap_f (id int PRIMARY KEY, v text);
SELECT crm_security.enable_audit('public.tap_f') IS NULL AS enabled \g /dev/null
INSERT INTO public.tap_f SELECT g, 'a' FROM generate_series(1, 4) g;
SELECT crm_security.seal_audit_log() \g /dev/null
UPDATE public.tap_f SET v = 'b' WHERE id = 1;     -- unsealed
CREATE TABLE public.tap_digest AS SELECT crm_security.audit_digest() AS d;
DO $$ BEGIN CREATE ROLE regress_chain_owner NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;

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

-- An entry as an attacker would make it: any actor, this transaction, a plain SHA-256.
CREATE FUNCTION public.forge() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO crm_security.audit_log (txid, logged_at, kind, operation, resource_type, actor_type, actor_id, db_user, entry_hash)
  VALUES (pg_current_xact_id()::text::bigint, now(), 'event', 'login', 'user', 'user', 'ceo', 'app', '\x00');
END $$;
CREATE FUNCTION public.forge_sha256() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  e crm_security.audit_log;
BEGIN
  -- The canonical form of a made-up entry: take a real one's bytes and change the actor.
  SELECT * INTO e FROM crm_security.audit_log ORDER BY id DESC LIMIT 1;
  e.id := e.id + 1000; e.actor_id := 'ceo';
  INSERT INTO crm_security.audit_log SELECT e.*;
END $$;

SELECT plan(18);

SELECT is((SELECT ok FROM crm_security.verify_audit_log((SELECT d FROM public.tap_digest))), true, 'the intact log verifies');
SELECT is((SELECT count(*) FROM crm_security.audit_log
            WHERE entry_hash IS DISTINCT FROM hmac(crm_security.audit_canonical_entry(id), pg_read_binary_file('crm_security/audit_entry.key'), 'sha256')),
          0::bigint, 'every entry hash is the HMAC-SHA256 of the canonical form under the entry key');
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE entry_hash = sha256(crm_security.audit_canonical_entry(id))),
          0::bigint, '... and none is the plain SHA-256');

-- A direct INSERT is refused to the superuser, also with a correct plain SHA-256, also
-- under replica.
SELECT throws_ok('SELECT public.forge()', '42501', NULL, 'a forged INSERT is refused to the superuser');
SELECT throws_ok($$INSERT INTO crm_security.audit_log (txid, logged_at, kind, operation, actor_type, db_user, entry_hash)
                   SELECT txid, logged_at, kind, 'forged', actor_type, db_user,
                          sha256(convert_to(replace(convert_from(crm_security.audit_canonical_entry(id), 'UTF8'), 'operation=6:UPDATE', 'operation=6:forged'), 'UTF8'))
                     FROM crm_security.audit_log WHERE operation = 'UPDATE'$$,
                 '42501', NULL, 'a forged INSERT with a correct plain SHA-256 is refused');
SELECT throws_ok($$COPY crm_security.audit_log (txid, logged_at, kind, operation, actor_type, db_user, entry_hash) FROM PROGRAM 'printf "1\t2024-01-01\tevent\tx\tuser\tapp\tab\n"'$$,
                 '42501', NULL, 'a forged COPY is refused');
BEGIN;
SET LOCAL session_replication_role = replica;
SELECT throws_ok('SELECT public.forge()', '42501', NULL, 'a forged INSERT is refused under session_replication_role = replica');
ROLLBACK;
-- The table's owner, not a superuser.
BEGIN;
ALTER TABLE crm_security.audit_log OWNER TO regress_chain_owner;
GRANT USAGE ON SCHEMA crm_security TO regress_chain_owner;
GRANT EXECUTE ON FUNCTION public.forge() TO regress_chain_owner;
SET LOCAL ROLE regress_chain_owner;
SELECT throws_ok('SELECT public.forge()', '42501', NULL, 'a forged INSERT is refused to the table''s owner');
RESET ROLE;
ROLLBACK;
SELECT throws_ok('SELECT public.forge_sha256()', '42501', NULL, 'a forged INSERT made from a real entry''s bytes is refused');
-- On the prepared-statement path (a constraint added to audit_log) the writer's inserts fire
-- the guard, and pass it.
BEGIN;
ALTER TABLE crm_security.audit_log ADD CONSTRAINT tap_spi_path CHECK (kind <> '');
UPDATE public.tap_f SET v = 'through spi' WHERE id = 2;
SELECT is((SELECT count(*) FROM crm_security.audit_log WHERE new_row->>'v' = 'through spi'), 1::bigint,
          'the writer''s entries pass the guard on the prepared-statement path');
ROLLBACK;

-- A copy of a genuine entry passes the guard (a restore) but not verification.
SELECT matches(public.tampered($$INSERT INTO crm_security.audit_log SELECT * FROM crm_security.audit_log WHERE operation = 'UPDATE'$$),
               'appears more than once', 'an entry inserted twice is reported');

-- Going around the guard: triggers disabled.
SELECT matches(public.tampered($$ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER; SELECT public.forge();
  UPDATE crm_security.audit_log SET entry_hash = sha256(crm_security.audit_canonical_entry(id)) WHERE actor_id = 'ceo'$$),
               '^bad block -: unsealed entry [0-9]+ does not match its hash', 'a forged unsealed entry with a plain SHA-256 is reported');
SELECT matches(public.tampered($$ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
  UPDATE crm_security.audit_log SET actor_id = 'ceo' WHERE operation = 'UPDATE';
  UPDATE crm_security.audit_log SET entry_hash = sha256(crm_security.audit_canonical_entry(id)) WHERE operation = 'UPDATE'$$),
               '^bad block -: unsealed entry [0-9]+ does not match its hash', 'an unsealed entry edited and re-hashed is reported');
SELECT matches(public.tampered($$ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER;
  DELETE FROM crm_security.audit_log WHERE id = (SELECT min(id) FROM crm_security.audit_log WHERE operation = 'INSERT')$$),
               '^bad block 1: block 1 holds [0-9]+ entries', 'a deleted sealed entry is reported');
SELECT matches(public.tampered($$ALTER TABLE crm_security.audit_log DISABLE TRIGGER USER; SELECT public.forge_sha256()$$),
               '^bad block -: unsealed entry [0-9]+ does not match', 'an entry forged from a real one''s bytes is reported');

-- The key: a fingerprint names it, nothing returns it.
SELECT matches(crm_security.audit_key_fingerprint(), '^[0-9a-f]{64}$', 'the key''s fingerprint is 64 hex digits');
SELECT isnt(crm_security.audit_key_fingerprint(), encode(sha256(pg_read_binary_file('crm_security/audit_entry.key')), 'hex'),
            'the fingerprint is not the hash of the key itself');
SELECT is(length(pg_read_binary_file('crm_security/audit_entry.key')), 32, 'the key file holds a 32-byte key');

SELECT * FROM finish();

DROP FUNCTION public.tampered(text, jsonb), public.forge(), public.forge_sha256();
DROP TABLE public.tap_f, public.tap_digest;
DROP ROLE regress_chain_owner;
