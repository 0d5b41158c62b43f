-- The key table's (tenant_id, subject) compare bytewise (COLLATE "C"): a key is found by
-- equality only, which a deterministic collation decides byte by byte anyway, and the
-- unique index's comparisons no longer go through the database's collation (strcoll()).
-- Rebuilds that index.
ALTER TABLE crm_security.audit_subject_keys
    ALTER COLUMN tenant_id TYPE text COLLATE "C",
    ALTER COLUMN subject TYPE text COLLATE "C";
