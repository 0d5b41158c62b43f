-- Personal data in the audit log (API.md section 8; the model is in docs/privacy.md).
--
-- The values of a table's personal columns (enable_audit(personal_columns => ...)) and
-- chosen metadata members of log_event(subject => ...) are stored in audit entries as
-- AES-256-GCM ciphertext under a data key of their data subject, before the entry is
-- hashed.  forget_subject() destroys the key: the values become unreadable everywhere,
-- the entries stay, and the chain verifies, since it never needs the data keys.

-- Auditors read personal values in clear through audit_personal_data(); nobody else can.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'crm_security_auditor') THEN
        CREATE ROLE crm_security_auditor NOLOGIN;
    END IF;
END
$$;

-- Key ids are never reused: a ciphertext names its key, and a key made for the same
-- subject after forget_subject() must not read what was erased.
CREATE SEQUENCE crm_security.audit_subject_keys_id_seq AS bigint;

-- One row per (tenant, subject): the data key, wrapped (AES-256-GCM, with the tenant and
-- subject as associated data) under a key-encryption key derived from the entry key file,
-- which is not in the database: the rows of this table, in a dump or a backup of the
-- table, do not decrypt anything without that file.
CREATE TABLE crm_security.audit_subject_keys (
    key_id      bigint PRIMARY KEY DEFAULT pg_catalog.nextval('crm_security.audit_subject_keys_id_seq'),
    tenant_id   text COLLATE "C",
    subject     text COLLATE "C" NOT NULL,
    wrapped_key bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT audit_subject_keys_subject_key UNIQUE NULLS NOT DISTINCT (tenant_id, subject)
);
ALTER SEQUENCE crm_security.audit_subject_keys_id_seq OWNED BY crm_security.audit_subject_keys.key_id;
COMMENT ON TABLE crm_security.audit_subject_keys IS 'data keys of data subjects, wrapped under a key derived from the entry key file; deleting a row (forget_subject()) erases the subject''s personal values from the audit log';
REVOKE ALL ON crm_security.audit_subject_keys, crm_security.audit_subject_keys_id_seq FROM PUBLIC;
-- A dump keeps the wrapped keys (what was not erased stays readable after a restore into a
-- cluster with the same entry key file) and never the erased ones (their rows are gone).
SELECT pg_catalog.pg_extension_config_dump('crm_security.audit_subject_keys', '');
SELECT pg_catalog.pg_extension_config_dump('crm_security.audit_subject_keys_id_seq', '');

CREATE FUNCTION crm_security.audit_personal_data(entry_id bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'audit_personal_data'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION crm_security.audit_personal_data(bigint) IS 'an audit entry''s old_row, new_row and metadata with personal values decrypted, erased ones as {"erased": true}; for roles granted crm_security_auditor (42501 for others)';
GRANT EXECUTE ON FUNCTION crm_security.audit_personal_data(bigint) TO PUBLIC;

CREATE FUNCTION crm_security.audit_subject_data(tenant_id text, subject text)
RETURNS TABLE (entry_id bigint, logged_at timestamptz, kind text, table_name text, operation text,
               record_key jsonb, old_row jsonb, new_row jsonb, metadata jsonb)
AS 'MODULE_PATHNAME', 'audit_subject_data'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION crm_security.audit_subject_data(text, text) IS 'every audit entry that holds personal values of a data subject (tenant_id NULL: no tenant), with those values decrypted and values of another subject as {"other_subject": true} (a request for access, GDPR article 15); one scan of the log; nothing for a subject never written or forgotten; for roles granted crm_security_auditor (42501 for others)';
GRANT EXECUTE ON FUNCTION crm_security.audit_subject_data(text, text) TO PUBLIC;

CREATE FUNCTION crm_security.forget_subject(tenant_id text, subject text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_forget_subject'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm_security.forget_subject(text, text) IS 'crypto-shredding: destroy the data key of a data subject (tenant_id NULL: no tenant), so that their personal values in the audit log become unreadable while the entries and the chain stay verifiable; recorded as an audit.forget event; returns how many entries held their values';
REVOKE ALL ON FUNCTION crm_security.forget_subject(text, text) FROM PUBLIC;

-- Auditors may read the log and its compliance views (personal values there are
-- ciphertext; audit_personal_data() decrypts them).
GRANT SELECT ON crm_security.audit_log, crm_security.audit_changes,
    crm_security.audit_access_events, crm_security.audit_actor_summary TO crm_security_auditor;
