-- audit_subject_data(): a data subject's entries with their personal values decrypted, for
-- auditors (a request for access).
CREATE FUNCTION crm_security.audit_subject_data(tenant_id text, subject text)
RETURNS TABLE (entry_id bigint, logged_at timestamptz, kind text, table_name text, operation text,
               record_key jsonb, old_row jsonb, new_row jsonb, metadata jsonb)
AS 'MODULE_PATHNAME', 'audit_subject_data'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION crm_security.audit_subject_data(text, text) IS 'every audit entry that holds personal values of a data subject (tenant_id NULL: no tenant), with those values decrypted and values of another subject as {"other_subject": true} (a request for access, GDPR article 15); one scan of the log; nothing for a subject never written or forgotten; for roles granted crm_security_auditor (42501 for others)';
GRANT EXECUTE ON FUNCTION crm_security.audit_subject_data(text, text) TO PUBLIC;
