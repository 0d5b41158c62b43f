\set VERBOSITY terse
-- System roles are seeded
SELECT name, permissions, inherits FROM crm_security.roles WHERE system ORDER BY name;
-- custom roles: system-wide and per tenant
SELECT crm_security.create_role('regress_sales', '{crm:deals:manage,crm:contacts:read}', 'tenant-a');
SELECT crm_security.create_role('regress_sales_lead', '{crm:reports:export}', 'tenant-a', '{regress_sales,client_user}');
SELECT crm_security.create_role('regress_sales', '{crm:deals:read}', 'tenant-b');
SELECT crm_security.create_role('regress_global', '{crm:billing:read}');
SELECT tenant_id, name, permissions, inherits, system FROM crm_security.roles WHERE name LIKE 'regress%' ORDER BY name, tenant_id;
-- invalid input
SELECT crm_security.create_role('regress_sales', '{crm:deals:read}', 'tenant-a');
SELECT crm_security.create_role('client_user', '{crm:deals:read}', 'tenant-a');
SELECT crm_security.create_role('regress_sales', '{crm:deals:read}');
SELECT crm_security.create_role(NULL, '{crm:deals:read}');
SELECT crm_security.create_role('Regress Bad', '{crm:deals:read}');
SELECT crm_security.create_role(repeat('r', 64), '{crm:deals:read}');
SELECT crm_security.create_role('regress_x', NULL);
SELECT crm_security.create_role('regress_x', '{crm:deals:read,NULL}');
SELECT crm_security.create_role('regress_x', '{"crm:deals: read"}');
SELECT crm_security.create_role('regress_x', '{crm::read}');
SELECT crm_security.create_role('regress_x', '{crm:dea*:read}');
SELECT crm_security.create_role('regress_x', ARRAY[E'crm:deals:read\n']);
SELECT crm_security.create_role('regress_x', '{{a,b},{c,d}}');
SELECT crm_security.create_role('regress_x', '{a}', '');
SELECT crm_security.create_role('regress_x', '{a}', repeat('t', 257));
SELECT crm_security.create_role('regress_x', '{a}', 'tenant-a', '{regress_missing}');
SELECT crm_security.create_role('regress_x', '{a}', 'tenant-a', '{NULL}');
SELECT crm_security.create_role('regress_x', '{a}', 'tenant-a', '{regress_x}');
-- a system role cannot inherit from a tenant's role
SELECT crm_security.create_role('regress_x', '{a}', NULL, '{regress_sales}');
-- a tenant cannot inherit another tenant's role
SELECT crm_security.create_role('regress_x', '{a}', 'tenant-c', '{regress_sales}');
-- inheritance cycles are refused
SELECT crm_security.alter_role('regress_sales', NULL, 'tenant-a', '{regress_sales_lead}');
SELECT crm_security.alter_role('regress_sales', NULL, 'tenant-a', '{regress_sales}');
SELECT crm_security.create_role('regress_c1', '{a:b}');
SELECT crm_security.create_role('regress_c2', '{a:c}', NULL, '{regress_c1}');
SELECT crm_security.create_role('regress_c3', '{a:d}', NULL, '{regress_c2}');
SELECT crm_security.alter_role('regress_c1', NULL, NULL, '{regress_c3}');
-- even by hand
UPDATE crm_security.roles SET inherits = '{regress_c3}' WHERE name = 'regress_c1';
UPDATE crm_security.roles SET permissions = '{"bad perm"}' WHERE name = 'regress_c1';
INSERT INTO crm_security.roles (name, tenant_id) VALUES ('superadmin', 'tenant-a');
SELECT crm_security.alter_role('regress_missing', '{a}');
SELECT crm_security.alter_role('regress_c1', '{a:z}');
SELECT permissions FROM crm_security.roles WHERE name = 'regress_c1';
-- grants
SELECT crm_security.grant_role('alice', 'tenant-a', 'regress_sales_lead');
SELECT crm_security.grant_role('alice', 'tenant-b', 'client_user', now() + interval '1 day');
SELECT crm_security.grant_role('bob', 'tenant-a', 'regress_sales');
SELECT crm_security.grant_role('carol', 'tenant-a', 'regress_c3');
SELECT crm_security.grant_role(NULL, 'tenant-a', 'regress_sales');
SELECT crm_security.grant_role('', 'tenant-a', 'regress_sales');
SELECT crm_security.grant_role('alice', NULL, 'regress_sales');
SELECT crm_security.grant_role('alice', 'tenant-a', NULL);
SELECT crm_security.grant_role('alice', 'tenant-a', 'regress_missing');
SELECT crm_security.grant_role('alice', 'tenant-c', 'regress_sales');
SELECT crm_security.grant_role('alice', 'tenant-a', 'regress_sales', now() - interval '1 second');
-- the effective role permissions, inheritance included, per tenant
SELECT crm_security._granted_permissions('alice', 'tenant-a');
SELECT crm_security._granted_permissions('alice', 'tenant-b');
SELECT crm_security._granted_permissions('alice', 'tenant-c');
SELECT crm_security._granted_permissions('bob', 'tenant-a');
SELECT crm_security._granted_permissions('carol', 'tenant-a');
SELECT crm_security._granted_permissions('nobody', 'tenant-a');
-- expired grants count for nothing
UPDATE crm_security.role_grants SET expires_at = now() - interval '1 second' WHERE user_id = 'bob';
SELECT crm_security._granted_permissions('bob', 'tenant-a');
-- granting again replaces the expiry
SELECT crm_security.grant_role('bob', 'tenant-a', 'regress_sales');
SELECT expires_at FROM crm_security.role_grants WHERE user_id = 'bob';
-- revoke
SELECT crm_security.revoke_role('bob', 'tenant-a', 'regress_sales');
SELECT crm_security.revoke_role('bob', 'tenant-a', 'regress_sales');
SELECT crm_security.revoke_role(NULL, 'tenant-a', 'regress_sales');
SELECT count(*) FROM crm_security.role_grants WHERE user_id = 'bob';
-- drop
SELECT crm_security.drop_role('regress_sales', 'tenant-a');
SELECT crm_security.drop_role('client_user');
SELECT crm_security.drop_role('regress_missing');
SELECT crm_security.drop_role('regress_sales', 'tenant-b');
-- nobody but the administrator: no privilege on the tables or the functions
CREATE ROLE regress_app;
SET ROLE regress_app;
SELECT * FROM crm_security.roles;
SELECT * FROM crm_security.role_grants;
SELECT crm_security.create_role('regress_evil', '{*}', 'tenant-a');
SELECT crm_security.grant_role('regress_app', 'tenant-a', 'superadmin');
SELECT crm_security.revoke_role('alice', 'tenant-a', 'regress_sales_lead');
SELECT crm_security.alter_role('regress_sales_lead', '{*}', 'tenant-a');
SELECT crm_security.drop_role('regress_c3');
SELECT crm_security._granted_permissions('alice', 'tenant-a');
INSERT INTO crm_security.role_grants (user_id, tenant_id, role_id) VALUES ('x', 'tenant-a', 1);
-- but may ask for its own permissions (none without a context)
SELECT crm_security.permissions(), crm_security.can('crm:deals:read');
RESET ROLE;
-- clean up
DELETE FROM crm_security.role_grants;
SELECT crm_security.drop_role('regress_sales_lead', 'tenant-a');
SELECT crm_security.drop_role('regress_sales', 'tenant-a');
SELECT crm_security.drop_role('regress_c3');
SELECT crm_security.drop_role('regress_c2');
SELECT crm_security.drop_role('regress_c1');
SELECT crm_security.drop_role('regress_global');
SELECT count(*) FROM crm_security.roles WHERE NOT system;
DROP ROLE regress_app;
