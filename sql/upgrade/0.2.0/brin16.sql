-- audit_log's BRIN index summarizes a page range once it is full (autovacuum), so that
-- lookups by id (audit_personal_data()) read one range rather than every page written
-- since the last VACUUM; seal_audit_log() also summarizes the ranges it has read.
ALTER INDEX crm_security.audit_log_txid_id_brin SET (autosummarize = on);
