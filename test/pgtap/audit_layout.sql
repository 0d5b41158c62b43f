-- Audit log: the table of sql/60_audit.sql and the C definition of its columns
-- (src/audit_layout.h) agree.  The canonical form of an entry names every column of the C
-- definition but entry_hash, in its order; the table must have these columns in this order
-- (the writer's heap access and the canonical form depend on it).
SET client_min_messages = warning;
BEGIN;
SELECT plan(3);

CREATE TEMP TABLE tap_layout_id AS SELECT crm_security.log_event('tap.layout') AS id;
CREATE TEMP TABLE tap_layout_entry AS
  SELECT pg_catalog.convert_from(crm_security.audit_canonical_entry(id), 'UTF8') AS canon
  FROM tap_layout_id;

CREATE TEMP TABLE tap_layout_c AS
  SELECT pg_catalog.array_agg(m[1] ORDER BY n) || ARRAY['entry_hash'] AS names
  FROM tap_layout_entry,
       LATERAL regexp_matches(canon, E'\n([a-z_]+)=', 'g') WITH ORDINALITY AS t(m, n);

CREATE TEMP TABLE tap_layout_sql AS
  SELECT pg_catalog.array_agg(attname::text ORDER BY attnum) AS names,
         pg_catalog.array_agg(attname::text ORDER BY attnum) FILTER (WHERE attnotnull) AS not_null
  FROM pg_catalog.pg_attribute
  WHERE attrelid = 'crm_security.audit_log'::regclass AND attnum > 0 AND NOT attisdropped;

SELECT is((SELECT names FROM tap_layout_sql), (SELECT names FROM tap_layout_c),
          'audit_log has the columns of the C definition, in its order');
SELECT is((SELECT pg_catalog.cardinality(names) FROM tap_layout_c), 21,
          'the C definition has 21 columns');
-- NOT NULL columns are those every entry fills in: a bare event has them all.
SELECT is((SELECT pg_catalog.array_agg(c) FROM tap_layout_sql, unnest(not_null) AS c
           WHERE c <> 'entry_hash'
             AND (SELECT canon FROM tap_layout_entry) ~ (E'\n' || c || '=~')),
          NULL, 'every NOT NULL column of audit_log is set in a bare event');

SELECT * FROM finish();
ROLLBACK;
