-- Data keys of new data subjects, created without SQL (src/audit_subject_insert.c): a
-- key made by a transaction or subtransaction that rolls back is gone with it; the unique
-- (tenant_id, subject) NULLS NOT DISTINCT holds, within one command too; subject ids up to
-- 1,024 bytes; thousands of new subjects in one statement; what an INSERT would do that
-- the direct path does not (a CHECK constraint, a trigger) is still done; an index added
-- later is maintained; the writer gets no access to the key table.  Statements commit
-- one by one; the database is this file's own; the role is dropped at the end.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS amcheck;

-- Rows of customers; the subject is the customer, the tenant the row's tenant_id.
CREATE TABLE public.sk (id int PRIMARY KEY, tenant_id text, customer text, name text);
SELECT crm_security.enable_audit('public.sk', NULL, ARRAY['name'], 'customer') \g /dev/null
-- Rows whose subject is their primary key.
CREATE TABLE public.skpk (id int PRIMARY KEY, name text);
SELECT crm_security.enable_audit('public.skpk', NULL, ARRAY['name']) \g /dev/null
CREATE TABLE public.facts (k text PRIMARY KEY, v bigint);
-- The key id of an envelope, and the key row of (tenant, subject).
CREATE FUNCTION public.env_key(e jsonb) RETURNS bigint LANGUAGE sql IMMUTABLE
  AS $$SELECT substring(e->>'enc' FROM '^crm[12]\.(\d+)')::bigint$$;
CREATE FUNCTION public.key_of(t text, s text) RETURNS bigint LANGUAGE sql STABLE
  AS $$SELECT key_id FROM crm_security.audit_subject_keys WHERE tenant_id IS NOT DISTINCT FROM t AND subject = s$$;
CREATE FUNCTION public.keys_of(t text, s text) RETURNS bigint LANGUAGE sql STABLE
  AS $$SELECT count(*) FROM crm_security.audit_subject_keys WHERE tenant_id IS NOT DISTINCT FROM t AND subject = s$$;
CREATE FUNCTION public.num(s text) RETURNS int LANGUAGE sql IMMUTABLE
  AS $$SELECT CASE WHEN s ~ '^[0-9]{1,8}$' THEN s::int END$$;
-- The key id and the clear name of the last entry of a row of sk.
CREATE FUNCTION public.entry_key(rid int) RETURNS bigint LANGUAGE sql STABLE
  AS $$SELECT public.env_key(new_row->'name') FROM crm_security.audit_log
        WHERE table_name = 'public.sk' AND record_key->>'id' = rid::text ORDER BY id DESC LIMIT 1$$;
CREATE FUNCTION public.entry_name(rid int) RETURNS text LANGUAGE sql STABLE
  AS $$SELECT crm_security.audit_personal_data(id)->'new_row'->>'name' FROM crm_security.audit_log
        WHERE table_name = 'public.sk' AND record_key->>'id' = rid::text ORDER BY id DESC LIMIT 1$$;

-- A key made by a transaction that rolls back.
BEGIN;
INSERT INTO public.sk VALUES (1, NULL, 'rb', 'Rollname one');
SELECT public.key_of(NULL, 'rb') AS rb_key \gset
ROLLBACK;
INSERT INTO public.facts SELECT 'rb after rollback', public.keys_of(NULL, 'rb');
INSERT INTO public.sk VALUES (1, NULL, 'rb', 'Rollname two');

-- Subtransactions: a key made in a savepoint rolled back is gone, and the next write of
-- the subject in the transaction makes another; one released stays; one made before a
-- savepoint rolled back stays, and is used again after it.
BEGIN;
SAVEPOINT a;
INSERT INTO public.sk VALUES (2, NULL, 'sp', 'Spname one');
SELECT public.key_of(NULL, 'sp') AS sp_key \gset
ROLLBACK TO a;
INSERT INTO public.facts SELECT 'sp after rollback to', public.keys_of(NULL, 'sp');
INSERT INTO public.sk VALUES (2, NULL, 'sp', 'Spname two');
SAVEPOINT b;
INSERT INTO public.sk VALUES (3, NULL, 'rel', 'Relname one');
RELEASE b;
INSERT INTO public.sk VALUES (4, NULL, 'rel', 'Relname two');
INSERT INTO public.sk VALUES (5, NULL, 'outer', 'Outer one');
SAVEPOINT c;
INSERT INTO public.sk VALUES (6, NULL, 'gone', 'Gonename');
ROLLBACK TO c;
INSERT INTO public.sk VALUES (7, NULL, 'outer', 'Outer two');
COMMIT;

-- Within one command: a subtransaction that aborts between two rows of one subject (an
-- exception caught by a later trigger) drops the cached key, and the command's own key
-- row is not visible to its snapshot; the second row must still find it, not make another.
CREATE FUNCTION public.swallow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    RAISE EXCEPTION 'swallowed';
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RETURN NULL;
END $$;
CREATE TRIGGER zz_swallow AFTER INSERT ON public.sk FOR EACH ROW EXECUTE FUNCTION public.swallow();
INSERT INTO public.sk VALUES (10, NULL, 'same', 'Same one'), (11, NULL, 'same', 'Same two'),
                             (12, 't1', 'same', 'Same three'), (13, 't1', 'same', 'Same four');
-- The same under REPEATABLE READ: a row of the transaction itself is no serialization
-- failure, even where its snapshot does not show it.
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO public.sk VALUES (14, NULL, 'same rr', 'Samerr one'), (15, NULL, 'same rr', 'Samerr two');
COMMIT;
DROP TRIGGER zz_swallow ON public.sk;

-- Tenants: none (NULL), an empty one, a text one, and '~' (what the encoding writes for
-- none), with one subject; NULL again in a later statement.
INSERT INTO public.sk VALUES (20, NULL, 'tn', 'Tn null'), (21, 't1', 'tn', 'Tn t1'),
                             (22, '', 'tn', 'Tn empty'), (23, '~', 'tn', 'Tn tilde');
INSERT INTO public.sk VALUES (24, NULL, 'tn', 'Tn null again');

-- Subject ids of 1,024 bytes (ASCII, and two-byte characters).
INSERT INTO public.sk VALUES (30, NULL, repeat('s', 1024), 'Long ascii'),
                             (31, NULL, repeat('é', 512), 'Long utf8');

-- Thousands of new subjects in one statement.
INSERT INTO public.skpk SELECT g, 'N' || g FROM generate_series(1, 5000) g;

-- An index added to the key table is maintained by the direct path.  Then a CHECK
-- constraint and a trigger on it: the key goes through SQL, which enforces and fires them.
CREATE INDEX tap_keys_created ON crm_security.audit_subject_keys (created_at, subject);
INSERT INTO public.sk VALUES (41, NULL, 'direct', 'Directname');
INSERT INTO public.skpk SELECT g, 'M' || g FROM generate_series(5001, 5300) g;
CREATE TABLE public.seen (subject text);
CREATE FUNCTION public.keys_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.seen VALUES (NEW.subject);
  RETURN NEW;
END $$;
ALTER TABLE crm_security.audit_subject_keys ADD CONSTRAINT tap_not_blocked CHECK (subject <> 'blocked');
CREATE TRIGGER tap_keys_seen BEFORE INSERT ON crm_security.audit_subject_keys
  FOR EACH ROW EXECUTE FUNCTION public.keys_seen();
INSERT INTO public.sk VALUES (40, NULL, 'through sql', 'Sqlname');
DROP TRIGGER tap_keys_seen ON crm_security.audit_subject_keys;

CREATE ROLE tap_sk_writer;
GRANT ALL ON public.sk TO tap_sk_writer;

-- One transaction with 70,000 new subjects: the cache of keys stays bounded (it starts
-- afresh after 65,536), and subjects that have left it find their key again rather than
-- make a second one.
BEGIN;
INSERT INTO public.skpk SELECT g, 'B' || g FROM generate_series(200001, 270000) g;
INSERT INTO public.facts SELECT 'cache bytes', coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts
 WHERE name = 'crm_security subject keys';
UPDATE public.skpk SET name = 'again ' || id WHERE id BETWEEN 200001 AND 200010;
COMMIT;
-- After 8 new subjects in a row, a subject that is not cached goes straight to the
-- insertion (its check of the unique index finds an existing key): a known subject met
-- then keeps its key; the key id the attempt drew is skipped.
INSERT INTO public.sk VALUES (600000, NULL, 'known', 'Knownname');
INSERT INTO public.sk SELECT 600000 + g, NULL, 'streak' || g, 'Streakname' FROM generate_series(1, 20) g
UNION ALL SELECT 600021, NULL, 'known', 'Knownname again'
UNION ALL SELECT 600022, NULL, 'after', 'Aftername';
-- (tenant, subject) pairs that would run together unless the cache by subject encodes
-- them apart: an empty tenant and none; the newline that separates them moved from the
-- subject to the tenant; digits and a colon that look like the tenant's length.  Written
-- in one transaction, so that each looks up the cache after the others.
BEGIN;
INSERT INTO public.sk VALUES (700001, '', 'split', 'Splitname'), (700002, NULL, 'split', 'Splitname'),
  (700003, 'a', E'\nb', 'Splitname'), (700004, E'a\n', 'b', 'Splitname'),
  (700005, '1:a', 'b', 'Splitname'), (700006, 'a', E'1:a\nb', 'Splitname'),
  (700007, '~', 'c', 'Splitname'), (700008, NULL, E'c', 'Splitname');
UPDATE public.sk SET name = 'Splitname again' WHERE id BETWEEN 700001 AND 700008;
COMMIT;
-- The cache by subject also holds the subject ids (to compare them in full): 20,000
-- subjects of 1,000 bytes (20 MB of ids) in one transaction.
BEGIN;
INSERT INTO public.sk SELECT 300000 + g, 'long', lpad(g::text, 1000, 'L'), 'Longname' FROM generate_series(1, 20000) g;
INSERT INTO public.facts SELECT 'long cache bytes', coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts
 WHERE name = 'crm_security subject keys';
UPDATE public.sk SET name = 'Longname again' WHERE id IN (300001, 300002);
COMMIT;

SELECT plan(55);

-- Rollback.
SELECT cmp_ok(:rb_key::bigint, '>', 0::bigint,
              'a new subject''s key row is there in its transaction');
SELECT is((SELECT v FROM public.facts WHERE k = 'rb after rollback'), 0::bigint,
          'a key made by a transaction that rolled back is gone');
SELECT is(public.keys_of(NULL, 'rb'), 1::bigint, 'a later transaction makes one key');
SELECT cmp_ok(public.key_of(NULL, 'rb'), '>', :rb_key::bigint, '... a new one, with a new key id');
SELECT is(public.entry_name(1), 'Rollname two', '... under which its value decrypts');

-- Savepoints.
SELECT is((SELECT v FROM public.facts WHERE k = 'sp after rollback to'), 0::bigint,
          'a key made in a savepoint rolled back is gone');
SELECT is(public.keys_of(NULL, 'sp'), 1::bigint, 'the next write of the subject makes one key');
SELECT isnt(public.key_of(NULL, 'sp'), :sp_key::bigint, '... a new one');
SELECT is(public.entry_name(2), 'Spname two', '... and its value decrypts');
SELECT is(public.keys_of(NULL, 'rel'), 1::bigint, 'a key made in a released savepoint stays');
SELECT is(public.entry_key(4), public.entry_key(3), '... and the transaction''s next write uses it');
SELECT is(public.entry_key(3), public.key_of(NULL, 'rel'), '... the key of the row');
SELECT is(public.keys_of(NULL, 'gone'), 0::bigint, 'a savepoint rolled back takes its new key');
SELECT is(public.entry_key(7), public.entry_key(5),
          'a key made before a savepoint rolled back is used after it');
SELECT is(public.keys_of(NULL, 'outer'), 1::bigint, '... and not made again');
SELECT is(public.entry_name(7), 'Outer two', '... and the value decrypts');

-- One command.
SELECT is(public.keys_of(NULL, 'same'), 1::bigint,
          'one command, a subtransaction aborted between two rows of a new subject: one key');
SELECT is(public.keys_of('t1', 'same'), 1::bigint, '... of another tenant too');
SELECT is(public.entry_key(11), public.entry_key(10), '... which both rows use');
SELECT is(public.entry_key(13), public.entry_key(12), '... in either tenant');
SELECT isnt(public.entry_key(12), public.entry_key(10), '... the tenants'' keys being two');
SELECT is(public.entry_name(11) || ', ' || public.entry_name(13), 'Same two, Same four',
          '... and the values decrypt');
SELECT is(public.keys_of(NULL, 'same rr'), 1::bigint, '... under REPEATABLE READ too: one key');
SELECT is(public.entry_key(15), public.entry_key(14), '... which both rows use');

-- Tenants.
SELECT is((SELECT count(DISTINCT key_id) FROM crm_security.audit_subject_keys WHERE subject = 'tn'), 4::bigint,
          'no tenant, an empty tenant, a tenant and the tenant ''~'': four keys for one subject id');
SELECT is(public.entry_key(24), public.entry_key(20), 'no tenant is one tenant (NULLS NOT DISTINCT)');
SELECT is((SELECT count(DISTINCT public.entry_key(i)) FROM generate_series(20, 23) i), 4::bigint,
          'each row uses its tenant''s key');
SELECT is((SELECT string_agg(public.entry_name(i), ', ' ORDER BY i) FROM generate_series(20, 24) i),
          'Tn null, Tn t1, Tn empty, Tn tilde, Tn null again', '... and the values decrypt');

-- Subject length.
SELECT is((SELECT count(*) FROM crm_security.audit_subject_keys
            WHERE octet_length(subject) = 1024 AND tenant_id IS NULL), 2::bigint,
          'subject ids of 1,024 bytes get keys');
SELECT is(public.entry_name(31), 'Long utf8', '... under which values decrypt');
SELECT throws_ok($$INSERT INTO public.sk VALUES (32, NULL, repeat('s', 1025), 'Too long')$$,
                 '22023', 'data subject id is too long', 'a subject id of 1,025 bytes is refused');
SELECT throws_ok($$INSERT INTO public.sk VALUES (33, NULL, repeat('é', 512) || 'x', 'Too long')$$,
                 '22023', NULL, '... counted in bytes');

-- Thousands.
SELECT is((SELECT count(*) FROM crm_security.audit_subject_keys k
             JOIN crm_security.audit_log l ON l.table_name = 'public.skpk'
              AND l.record_key->>'id' = k.subject AND public.env_key(l.new_row->'name') = k.key_id
            WHERE k.tenant_id IS NULL AND public.num(k.subject) BETWEEN 1 AND 5000), 5000::bigint,
          '5,000 new subjects in one statement: 5,000 keys, each entry under its subject''s');
SELECT is((SELECT count(*) FROM crm_security.audit_log
            WHERE table_name = 'public.skpk' AND record_key->>'id' IN ('1', '2500', '5000')
              AND crm_security.audit_personal_data(id)->'new_row'->>'name' = 'N' || (record_key->>'id')),
          3::bigint, '... under which the values decrypt');
SELECT throws_ok($$INSERT INTO public.skpk SELECT g, 'F' || g FROM generate_series(6001, 6100) g UNION ALL SELECT 6001, 'again'$$,
                 '23505', NULL, 'a statement that fails after making 100 keys');
SELECT is((SELECT count(*) FROM crm_security.audit_subject_keys WHERE public.num(subject) BETWEEN 6001 AND 6100),
          0::bigint, '... leaves none of them');

SELECT ok((SELECT v BETWEEN 1 AND 3000000 FROM public.facts WHERE k = 'cache bytes'),
          '70,000 new subjects in one transaction: the cache of their keys is under 3 MB after them');
SELECT is((SELECT count(*) FROM crm_security.audit_subject_keys WHERE public.num(subject) BETWEEN 200001 AND 270000),
          70000::bigint, '... one key per subject');
SELECT is((SELECT count(*) FROM crm_security.audit_log
            WHERE table_name = 'public.skpk' AND operation = 'UPDATE'
              AND public.env_key(new_row->'name') = public.key_of(NULL, record_key->>'id')), 10::bigint,
          '... subjects written again after leaving the cache keep their key');
SELECT is((SELECT count(*) FROM crm_security.audit_log
            WHERE table_name = 'public.skpk' AND operation = 'UPDATE'
              AND crm_security.audit_personal_data(id)->'new_row'->>'name' = 'again ' || (record_key->>'id')), 10::bigint,
          '... and their values decrypt');
SELECT ok((SELECT v BETWEEN 1 AND 10000000 FROM public.facts WHERE k = 'long cache bytes'),
          '20,000 subject ids of 1,000 bytes in one transaction: the cache holds under 10 MB of them');
SELECT is((SELECT count(*) FROM crm_security.audit_subject_keys WHERE tenant_id = 'long'), 20000::bigint,
          '... one key per subject');
SELECT is((SELECT count(*) FROM crm_security.audit_log
            WHERE table_name = 'public.sk' AND operation = 'UPDATE' AND (record_key->>'id')::int > 300000
              AND public.env_key(new_row->'name') = public.key_of('long', lpad(((record_key->>'id')::int - 300000)::text, 1000, 'L'))
              AND crm_security.audit_personal_data(id)->'new_row'->>'name' = 'Longname again'), 2::bigint,
          '... and the first of them, written again after leaving the cache, keep their key');

SELECT is(public.keys_of(NULL, 'known'), 1::bigint, 'a known subject met after a streak of new ones: one key');
SELECT is(public.entry_key(600021), public.key_of(NULL, 'known'), '... its entry is under that key');
SELECT is(public.entry_name(600021), 'Knownname again', '... and decrypts');
SELECT is(public.key_of(NULL, 'after') - public.key_of(NULL, 'streak20'), 2::bigint,
          '... found by the insertion, which drew a key id for nothing');

SELECT is((SELECT count(DISTINCT public.entry_key(id)) FROM generate_series(700001, 700008) id), 8::bigint,
          'eight (tenant, subject) pairs that share their characters: eight keys');
SELECT is((SELECT count(*) FROM generate_series(700001, 700008) id
            WHERE public.entry_name(id) = 'Splitname again'), 8::bigint,
          '... each written again in the same transaction under its own key, and read back');

-- What the direct path does not do.
SELECT throws_ok($$INSERT INTO public.sk VALUES (42, NULL, 'blocked', 'Blockedname')$$,
                 '23514', NULL, 'a CHECK constraint on the key table is enforced');
SELECT is((SELECT string_agg(subject, ',') FROM public.seen), 'through sql',
          'a trigger on the key table fires');
SELECT is(public.entry_name(40) || ', ' || public.entry_name(41), 'Sqlname, Directname',
          'keys made through SQL and without read the same');
SELECT is((SELECT count(*) FROM (SELECT bt_index_check(c.oid, true)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = 'crm_security.audit_subject_keys'::regclass) x), 3::bigint,
          'every index of the key table holds every row, one added later included (amcheck)');

-- Privileges.
SET ROLE tap_sk_writer;
INSERT INTO public.sk VALUES (50, NULL, 'writer', 'Writername');
SELECT throws_ok($$INSERT INTO crm_security.audit_subject_keys (subject, wrapped_key) VALUES ('x', '\x00')$$,
                 '42501', NULL, 'a writer that makes keys cannot insert into the key table');
SELECT throws_ok($$SELECT nextval('crm_security.audit_subject_keys_id_seq')$$,
                 '42501', NULL, '... nor draw from its sequence');
RESET ROLE;

SELECT * FROM finish();

ALTER TABLE crm_security.audit_subject_keys DROP CONSTRAINT tap_not_blocked;
DROP INDEX crm_security.tap_keys_created;
DROP TABLE public.sk, public.skpk, public.facts, public.seen;
DROP ROLE tap_sk_writer;
