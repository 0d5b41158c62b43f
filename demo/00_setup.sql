\echo '================================================================'
\echo ' crm_security: the security layer, inside PostgreSQL'
\echo '================================================================'
CREATE EXTENSION IF NOT EXISTS crm_security;
SELECT crm_security.version();
