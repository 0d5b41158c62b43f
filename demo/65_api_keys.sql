-- Integrations and services: an integration authenticates with an API key and gets a
-- context of its own (its tenant, its scopes), a wrong network is refused, and one service
-- calls another with a short-lived service token.
\echo
\echo '################################################################'
\echo '# Chapter 6. API keys and services'
\echo '#   Integrations have no user: an API key gives them a context of their own (tenant,'
\echo '#   scopes, allowed networks). Services call each other with short-lived service tokens.'
\echo '################################################################'
\set QUIET on
\pset footer off

\echo
\echo '== 1. Two tenants, a ticket table isolated by tenant, and a role for integrations =='
SELECT crm_security.add_tenant('initech', 'Initech');
SELECT crm_security.add_tenant('umbrella', 'Umbrella');
CREATE TABLE demo_tickets (id int PRIMARY KEY, tenant_id text NOT NULL, subject text);
INSERT INTO demo_tickets VALUES (1, 'initech', 'TPS report cover sheets'), (2, 'initech', 'Stapler missing'),
                                (3, 'umbrella', 'Lab door stuck');
SELECT crm_security.enable_tenant_isolation('demo_tickets');
SELECT crm_security.enable_audit('demo_tickets');
CREATE ROLE demo_integration;
GRANT SELECT, INSERT ON demo_tickets TO demo_integration;

\echo
\echo '== 2. An API key for the helpdesk sync of Initech: only from 10.20.0.0/16, only for the helpdesk service =='
SELECT id AS key_id, api_key FROM crm_security.create_api_key('helpdesk sync', 'initech', '{tickets:write}',
    allowed_services => '{helpdesk}', allowed_ips => '{10.20.0.0/16}') \gset
SELECT name, tenant_id, display_prefix, scopes, allowed_services, allowed_ips FROM crm_security.api_keys WHERE id = :'key_id';

\echo
\echo '== 3. The integration authenticates with its key: actor api_key, its tenant, its scopes =='
BEGIN;
SET LOCAL ROLE demo_integration;
SELECT crm_security.set_api_key_context(:'api_key', 'helpdesk', '10.20.3.4') ->> 'crm_actor_type' AS context_of;
SELECT crm_security.actor_type(), crm_security.user_id() = :'key_id' AS user_is_the_key,
       crm_security.tenant_id(), crm_security.permissions();
SELECT crm_security.can('tickets:read') AS may_read, crm_security.can('billing:read') AS may_bill;
SELECT id, tenant_id, subject FROM demo_tickets ORDER BY id;
INSERT INTO demo_tickets VALUES (4, 'initech', 'Filed by the helpdesk sync');
SELECT demo_refused($$INSERT INTO demo_tickets VALUES (5, 'umbrella', 'sneaking in')$$) AS other_tenant;
COMMIT;
SELECT actor_type, actor_id = :'key_id' AS actor_is_the_key, tenant_id, operation
  FROM crm_security.audit_log WHERE table_name = 'public.demo_tickets' AND record_key->>'id' = '4';

\echo
\echo '== 4. The same key from another network, or for another service: refused, no context =='
SELECT demo_refused(format('SELECT crm_security.set_api_key_context(%L, %L, %L)', :'api_key', 'helpdesk', '203.0.113.9')) AS wrong_network;
SELECT demo_refused(format('SELECT crm_security.set_api_key_context(%L, %L, %L)', :'api_key', 'reports', '10.20.3.4')) AS wrong_service;
SELECT crm_security.actor_type() IS NULL AS no_context;

\echo
\echo '== 5. Service to service: billing may call crm; billing gets a 60-second token for crm =='
SELECT crm_security.register_service('billing', '{crm}', description => 'invoices');
SELECT crm_security.register_service('crm', description => 'the CRM database');
SELECT crm_security.issue_service_token('billing', 'crm', '60 seconds') AS service_token \gset
SELECT payload - 'jti' AS claims FROM crm_security.jwt_decode(:'service_token');

\echo
\echo '== 6. On the crm side, the call is authenticated with the token =='
BEGIN;
SET LOCAL ROLE demo_integration;
SELECT crm_security.set_claim_context(:'service_token') ->> 'sub' AS caller;
SELECT crm_security.actor_type(), crm_security.user_id() AS service, crm_security.tenant_id();
SELECT crm_security.authorize_service_call(crm_security.user_id(), 'crm') AS call_allowed;
COMMIT;

\echo
\echo '== 7. Billing is disabled in the registry: its tokens stop working at once =='
SELECT crm_security.set_service_enabled('billing', false);
SELECT demo_refused(format('SELECT crm_security.set_claim_context(%L)', :'service_token')) AS disabled_service;
\echo '   (nor is a token minted for a call the registry refuses: crm calling the disabled billing)'
SELECT demo_refused($$SELECT crm_security.issue_service_token('crm', 'billing')$$) AS call_not_in_registry;

DROP TABLE demo_tickets;
DROP ROLE demo_integration;
