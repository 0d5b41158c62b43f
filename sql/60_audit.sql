-- Audit log (API.md section 6; the model and hash formats are in docs/audit.md).
--
-- Entries are written by a C trigger and by log_event(); each carries the HMAC-SHA256 of its
-- canonical form under the entry key (a file of the data directory that no SQL function
-- returns) from the moment it is inserted.  seal_audit_log() later links committed
-- entries into hash-chained blocks.  Nobody may UPDATE, DELETE or TRUNCATE the three tables
-- below through SQL: the protecting triggers are ENABLE ALWAYS, so they fire under
-- session_replication_role = replica too; whatever goes around them is reported by
-- verify_audit_log().

-- Ids need only be unique (entries are ordered by transaction, then id); a cache spares
-- concurrent writers a shared sequence update per entry.
CREATE SEQUENCE crm_security.audit_log_id_seq AS bigint CACHE 32;

CREATE TABLE crm_security.audit_log (
    id              bigint NOT NULL DEFAULT pg_catalog.nextval('crm_security.audit_log_id_seq'),
    txid            bigint NOT NULL,
    logged_at       timestamptz NOT NULL,
    kind            text NOT NULL,
    table_name      text,
    operation       text NOT NULL,
    record_key      jsonb,
    old_row         jsonb,
    new_row         jsonb,
    changed_columns text[],
    resource_type   text,
    resource_id     text,
    result          text,
    metadata        jsonb,
    actor_type      text NOT NULL,
    actor_id        text,
    tenant_id       text,
    db_user         text NOT NULL,
    request_id      text,
    client_addr     inet,
    entry_hash      bytea NOT NULL,
    CONSTRAINT audit_log_kind_check CHECK (kind IN ('row', 'event'))
);
ALTER SEQUENCE crm_security.audit_log_id_seq OWNED BY crm_security.audit_log.id;
-- No B-tree primary key: measured, it was a third of the cost of every audited row.  Ids
-- come from the sequence alone and are unique as long as nobody goes around the
-- protection, which verify_audit_log() reports.  txid and id grow with the physical order
-- of the table, which is what BRIN needs, at almost no cost per insert; sealing,
-- verification and lookups by id use it.  A page range is summarized once full
-- (autosummarize, by autovacuum) and at the latest by the next seal_audit_log(), so that
-- a lookup reads one range, not every page written since.  Add B-tree indexes for the
-- queries you run (by tenant, table, actor): the writer keeps them up to date.
CREATE INDEX audit_log_txid_id_brin ON crm_security.audit_log USING brin (txid, id)
    WITH (autosummarize = on);

COMMENT ON TABLE crm_security.audit_log IS 'append-only audit log: row changes of audited tables and application events, each with the HMAC-SHA256 of its canonical form under the entry key';

CREATE TABLE crm_security.audit_blocks (
    block_id      bigint PRIMARY KEY,
    prev_hash     bytea NOT NULL,
    txid_lo       bigint NOT NULL,
    txid_hi       bigint NOT NULL,
    entry_count   bigint NOT NULL,
    entries_hash  bytea NOT NULL,
    sealed_at     timestamptz NOT NULL,
    block_hash    bytea NOT NULL,
    CONSTRAINT audit_blocks_range_check CHECK (txid_lo < txid_hi)
);
COMMENT ON TABLE crm_security.audit_blocks IS 'hash-chained blocks of sealed audit entries; block N holds the entries whose txid lies in [txid_lo, txid_hi)';

CREATE TABLE crm_security.audit_purges (
    purged_through_block bigint PRIMARY KEY,
    purged_at            timestamptz NOT NULL,
    entries_deleted      bigint NOT NULL,
    purged_by            text NOT NULL
);
COMMENT ON TABLE crm_security.audit_purges IS 'list of purges for convenience, never trusted by verification: a purge is proven by its audit.purge entry in the chain';

REVOKE ALL ON crm_security.audit_log, crm_security.audit_blocks, crm_security.audit_purges,
    crm_security.audit_log_id_seq FROM PUBLIC;

-- The log is data to keep: pg_dump saves the entries, blocks, purge records and the id
-- sequence with the extension, and a restore loads them with COPY (which fires no UPDATE,
-- DELETE or TRUNCATE trigger) after CREATE EXTENSION has made the tables and their
-- protection.  See "Dump and restore" in docs/audit.md.
SELECT pg_catalog.pg_extension_config_dump('crm_security.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.audit_blocks', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.audit_purges', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.audit_log_id_seq', '');

-- Append-only protection.
CREATE FUNCTION crm_security.audit_protect()
RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_protect'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.audit_protect() IS 'trigger: refuses UPDATE, DELETE and TRUNCATE of the audit tables (purge_audit_log() is the only way to delete entries), an entry whose keyed hash does not verify, and a block that ends beyond the cluster''s transaction counter';
REVOKE ALL ON FUNCTION crm_security.audit_protect() FROM PUBLIC;

-- A statement trigger refuses every UPDATE, DELETE and TRUNCATE, even of no rows; a row
-- trigger also catches changes that fire only row triggers (logical replication apply).
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crm_security.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security.audit_protect();
-- On audit_log the row trigger also refuses every inserted row whose keyed hash does not
-- verify under the entry key: entries come from the extension's writer (which goes around
-- it on its fast path, and passes it otherwise), or from a restore of entries made under
-- the same key.
CREATE TRIGGER audit_log_append_only_rows BEFORE INSERT OR UPDATE OR DELETE ON crm_security.audit_log
    FOR EACH ROW EXECUTE FUNCTION crm_security.audit_protect();
ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE crm_security.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only_rows;
CREATE TRIGGER audit_blocks_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crm_security.audit_blocks
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security.audit_protect();
-- On audit_blocks the row trigger also checks that an inserted block ends at a transaction
-- this cluster has reached (a restore into a cluster whose transaction counter is behind).
CREATE TRIGGER audit_blocks_append_only_rows BEFORE INSERT OR UPDATE OR DELETE ON crm_security.audit_blocks
    FOR EACH ROW EXECUTE FUNCTION crm_security.audit_protect();
ALTER TABLE crm_security.audit_blocks ENABLE ALWAYS TRIGGER audit_blocks_append_only;
ALTER TABLE crm_security.audit_blocks ENABLE ALWAYS TRIGGER audit_blocks_append_only_rows;
CREATE TRIGGER audit_purges_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON crm_security.audit_purges
    FOR EACH STATEMENT EXECUTE FUNCTION crm_security.audit_protect();
CREATE TRIGGER audit_purges_append_only_rows BEFORE UPDATE OR DELETE ON crm_security.audit_purges
    FOR EACH ROW EXECUTE FUNCTION crm_security.audit_protect();
ALTER TABLE crm_security.audit_purges ENABLE ALWAYS TRIGGER audit_purges_append_only;
ALTER TABLE crm_security.audit_purges ENABLE ALWAYS TRIGGER audit_purges_append_only_rows;

-- The row trigger of audited tables.  Anyone may use it: it only records changes that
-- really happen to a table the caller may put triggers on.
CREATE FUNCTION crm_security.audit_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_trigger'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.audit_trigger() IS 'trigger: records INSERT, UPDATE, DELETE (per row) and TRUNCATE (per statement) of an audited table; arguments are the excluded columns';

CREATE FUNCTION crm_security.enable_audit(tbl regclass, exclude_columns text[] DEFAULT NULL,
    personal_columns text[] DEFAULT NULL, subject_column name DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'audit_enable'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.enable_audit(regclass, text[], text[], name) IS 'audit every INSERT, UPDATE, DELETE and TRUNCATE of a table with a primary key, never storing the excluded columns, and storing the personal columns encrypted under the data key of their subject (subject_column, else the primary key); idempotent';

CREATE FUNCTION crm_security.disable_audit(tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'audit_disable'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.disable_audit(regclass) IS 'stop auditing a table (recorded in the audit log); idempotent';

-- log_event has the signature of API.md section 6, and a second form that names a data
-- subject (docs/privacy.md).  The subject has no default, so that a call with up to five
-- arguments can only mean the first form: pass the first five positionally, then
-- subject => ... and personal_keys => ....
CREATE FUNCTION crm_security.log_event(action text, resource_type text DEFAULT NULL,
    resource_id text DEFAULT NULL, result text DEFAULT 'success', metadata jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_log_event'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.log_event(text, text, text, text, jsonb) IS 'record an application event (login, export, denied, ...) in the audit log; returns its id';

CREATE FUNCTION crm_security.log_event(action text, resource_type text, resource_id text,
    result text, metadata jsonb, subject text, personal_keys text[] DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_log_event'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.log_event(text, text, text, text, jsonb, text, text[]) IS 'record an application event in the audit log with personal metadata of a data subject: the metadata members named in personal_keys (all when NULL) are stored encrypted under the subject''s data key; returns its id';

CREATE FUNCTION crm_security.seal_audit_log()
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_seal'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm_security.seal_audit_log() IS 'link committed, unsealed audit entries into hash-chained blocks; returns the number of entries sealed';
REVOKE ALL ON FUNCTION crm_security.seal_audit_log() FROM PUBLIC;

CREATE FUNCTION crm_security.audit_digest()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'audit_digest'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.audit_digest() IS 'the newest block''s id and hash, to keep outside the database and pass to verify_audit_log()';

CREATE FUNCTION crm_security.verify_audit_log(digest jsonb DEFAULT NULL,
    OUT ok boolean, OUT blocks_checked bigint, OUT entries_checked bigint,
    OUT first_bad_block bigint, OUT detail text)
RETURNS record
AS 'MODULE_PATHNAME', 'audit_verify'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.verify_audit_log(jsonb) IS 'recompute every entry hash, block hash and link of the audit log; with a digest, also prove that the chain still reaches it';

CREATE FUNCTION crm_security.audit_log_problems(digest jsonb DEFAULT NULL)
RETURNS TABLE (block_id bigint, entry_id bigint, problem text)
AS 'MODULE_PATHNAME', 'audit_log_problems'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION crm_security.audit_log_problems(jsonb) IS 'every problem verify_audit_log() finds, one row each: the block, the entry, what is wrong';

CREATE FUNCTION crm_security.audit_key_fingerprint()
RETURNS text
AS 'MODULE_PATHNAME', 'audit_key_fingerprint'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.audit_key_fingerprint() IS 'names the entry key of this cluster (SHA-256 of a value derived from it) without revealing it';
REVOKE ALL ON FUNCTION crm_security.audit_key_fingerprint() FROM PUBLIC;

CREATE FUNCTION crm_security.purge_audit_log(older_than interval)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_purge'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm_security.purge_audit_log(interval) IS 'delete the entries of whole sealed blocks sealed before now() - older_than, keeping the block headers as a verifiable anchor, and record the purge in the chain; returns the number of entries deleted';
REVOKE ALL ON FUNCTION crm_security.purge_audit_log(interval) FROM PUBLIC;

CREATE FUNCTION crm_security.audit_canonical_entry(entry_id bigint)
RETURNS bytea
AS 'MODULE_PATHNAME', 'audit_canonical_entry'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm_security.audit_canonical_entry(bigint) IS 'the exact bytes whose HMAC-SHA256 under the entry key is the entry_hash of an audit entry, for outside verifiers';

-- Compliance views.  security_invoker: reading them needs SELECT on audit_log.
CREATE VIEW crm_security.audit_changes WITH (security_invoker = true) AS
SELECT id, logged_at, tenant_id, table_name, record_key, operation, changed_columns,
       old_row, new_row, actor_type, actor_id, db_user, request_id, client_addr, txid
  FROM crm_security.audit_log
 WHERE kind = 'row';
COMMENT ON VIEW crm_security.audit_changes IS 'change tracking: every audited row change, filterable by tenant_id, table_name and record_key';

CREATE VIEW crm_security.audit_access_events WITH (security_invoker = true) AS
SELECT id, logged_at, tenant_id, actor_type, actor_id, db_user, operation AS action,
       resource_type, resource_id, result,
       result IN ('denied', 'failure', 'error') AS denied,
       metadata, request_id, client_addr
  FROM crm_security.audit_log
 WHERE kind = 'event';
COMMENT ON VIEW crm_security.audit_access_events IS 'access and denial events recorded by log_event(), filterable by tenant_id and actor';

CREATE VIEW crm_security.audit_actor_summary WITH (security_invoker = true) AS
SELECT tenant_id, actor_type, actor_id,
       pg_catalog.count(*) AS events,
       pg_catalog.count(*) FILTER (WHERE denied) AS denials,
       pg_catalog.min(logged_at) AS first_seen,
       pg_catalog.max(logged_at) AS last_seen
  FROM crm_security.audit_access_events
 GROUP BY tenant_id, actor_type, actor_id;
COMMENT ON VIEW crm_security.audit_actor_summary IS 'access and denial events per tenant and actor';

-- tgargs holds each argument followed by a zero byte: the excluded columns, and with
-- personal columns, these and the subject column ('' for the primary key).
CREATE VIEW crm_security.audited_tables WITH (security_invoker = true) AS
SELECT t.tgrelid::pg_catalog.regclass AS table_name,
       CASE WHEN t.tgnargs OPERATOR(pg_catalog.=) ANY ('{1,3}'::pg_catalog.int2[]) THEN
           pg_catalog.convert_from(pg_catalog.substring(t.tgargs, 1, a1.z OPERATOR(pg_catalog.-) 1),
                                   pg_catalog.getdatabaseencoding())::text[]
       END AS exclude_columns,
       CASE WHEN t.tgnargs OPERATOR(pg_catalog.=) 3 THEN
           pg_catalog.convert_from(pg_catalog.substring(a1.rest, 1, a2.z OPERATOR(pg_catalog.-) 1),
                                   pg_catalog.getdatabaseencoding())::text[]
       END AS personal_columns,
       CASE WHEN t.tgnargs OPERATOR(pg_catalog.=) 3 THEN
           NULLIF(pg_catalog.convert_from(pg_catalog.substring(a2.rest, 1, pg_catalog.length(a2.rest) OPERATOR(pg_catalog.-) 1),
                                          pg_catalog.getdatabaseencoding()), '')::name
       END AS subject_column
  FROM pg_catalog.pg_trigger t,
       LATERAL (SELECT pg_catalog.position(t.tgargs, '\x00'::bytea) AS z) p1,
       LATERAL (SELECT p1.z, pg_catalog.substring(t.tgargs, p1.z OPERATOR(pg_catalog.+) 1) AS rest) a1,
       LATERAL (SELECT pg_catalog.position(a1.rest, '\x00'::bytea) AS z,
                       pg_catalog.substring(a1.rest, pg_catalog.position(a1.rest, '\x00'::bytea) OPERATOR(pg_catalog.+) 1) AS rest) a2
 WHERE t.tgname = 'crm_audit_row'
   AND t.tgfoid = 'crm_security.audit_trigger()'::pg_catalog.regprocedure;
COMMENT ON VIEW crm_security.audited_tables IS 'tables audited by enable_audit(), their excluded columns, and their personal columns and subject column (NULL: the primary key)';

-- Monitoring: the tables audit was enabled on (by the newest audit.enable or audit.disable
-- event of each, so that a table whose triggers were dropped is still listed) and the
-- tables that have audit triggers, with the state of both triggers.  A table whose owner
-- dropped or disabled a trigger shows audited = false.
CREATE VIEW crm_security.audit_table_status WITH (security_invoker = true) AS
WITH events AS (
    SELECT DISTINCT ON (resource_id) resource_id, operation, logged_at
      FROM crm_security.audit_log
     WHERE kind OPERATOR(pg_catalog.=) 'event' AND resource_type OPERATOR(pg_catalog.=) 'table'
       AND operation OPERATOR(pg_catalog.=) ANY (ARRAY['audit.enable', 'audit.disable'])
     ORDER BY resource_id, txid DESC, id DESC
), tables AS (
    SELECT e.resource_id AS table_name, pg_catalog.to_regclass(e.resource_id) AS relid,
           e.logged_at AS enabled_at
      FROM events e
     WHERE e.operation OPERATOR(pg_catalog.=) 'audit.enable'
    UNION
    SELECT t.tgrelid::pg_catalog.regclass::pg_catalog.text, t.tgrelid::pg_catalog.regclass, NULL
      FROM pg_catalog.pg_trigger t
     WHERE t.tgname OPERATOR(pg_catalog.=) ANY (ARRAY['crm_audit_row', 'crm_audit_truncate']::pg_catalog.name[])
       AND t.tgfoid OPERATOR(pg_catalog.=) 'crm_security.audit_trigger()'::pg_catalog.regprocedure
       AND NOT EXISTS (SELECT FROM events e
                        WHERE e.operation OPERATOR(pg_catalog.=) 'audit.enable'
                          AND pg_catalog.to_regclass(e.resource_id) OPERATOR(pg_catalog.=) t.tgrelid)
)
SELECT s.table_name, s.relid, s.enabled_at, s.row_trigger, s.truncate_trigger,
       s.row_trigger OPERATOR(pg_catalog.=) ANY (ARRAY['enabled', 'always'])
         AND s.truncate_trigger OPERATOR(pg_catalog.=) ANY (ARRAY['enabled', 'always']) AS audited
  FROM (SELECT t.table_name, t.relid, pg_catalog.max(t.enabled_at) AS enabled_at,
               COALESCE((SELECT CASE g.tgenabled WHEN 'O' THEN 'enabled' WHEN 'A' THEN 'always'
                                     WHEN 'R' THEN 'replica only' ELSE 'disabled' END
                           FROM pg_catalog.pg_trigger g
                          WHERE g.tgrelid OPERATOR(pg_catalog.=) t.relid
                            AND g.tgname OPERATOR(pg_catalog.=) 'crm_audit_row'
                            AND g.tgfoid OPERATOR(pg_catalog.=) 'crm_security.audit_trigger()'::pg_catalog.regprocedure),
                        'missing') AS row_trigger,
               COALESCE((SELECT CASE g.tgenabled WHEN 'O' THEN 'enabled' WHEN 'A' THEN 'always'
                                     WHEN 'R' THEN 'replica only' ELSE 'disabled' END
                           FROM pg_catalog.pg_trigger g
                          WHERE g.tgrelid OPERATOR(pg_catalog.=) t.relid
                            AND g.tgname OPERATOR(pg_catalog.=) 'crm_audit_truncate'
                            AND g.tgfoid OPERATOR(pg_catalog.=) 'crm_security.audit_trigger()'::pg_catalog.regprocedure),
                        'missing') AS truncate_trigger
          FROM tables t
         GROUP BY t.table_name, t.relid) s;
COMMENT ON VIEW crm_security.audit_table_status IS 'monitoring: every table audit was enabled on or that has audit triggers, whether both triggers exist and are enabled (audited), and when auditing was enabled';

REVOKE ALL ON crm_security.audit_changes, crm_security.audit_access_events,
    crm_security.audit_actor_summary, crm_security.audit_table_status FROM PUBLIC;
GRANT SELECT ON crm_security.audited_tables TO PUBLIC;
