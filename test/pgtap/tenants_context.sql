-- The tenant of a token without a tenant claim, from tenant_members: set_claim_context's
-- rules, bad input, the role's precedence, require_membership, and membership changes.
BEGIN;
SELECT plan(70);

SELECT crm_security.add_jwt_key('tc_hs', 'HS256', 'tenants-context-secret-0123456789-abcdef');
CREATE FUNCTION pg_temp.tok(claims jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT crm_security.jwt_sign(claims || jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600),
                                 'tenants-context-secret-0123456789-abcdef', 'HS256', '{"kid": "tc_hs"}')
$$;
-- The context's tenant and role after set_claim_context(token, tenant), or the error.
CREATE FUNCTION pg_temp.ctx(sub text, tenant text DEFAULT NULL, extra jsonb DEFAULT '{}') RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm_security.set_claim_context(pg_temp.tok(jsonb_strip_nulls(jsonb_build_object('sub', sub, 'role', 'authenticated')) || extra), tenant);
    RETURN coalesce(crm_security.tenant_id(), '-') || '/' || coalesce(crm_security.app_role(), '-');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;

SELECT crm_security.add_tenant('acme', 'Acme Corp');
SELECT crm_security.add_tenant('globex', 'Globex');
SELECT crm_security.add_tenant('initech', 'Initech');
SELECT crm_security.add_tenant_member('acme', 'alice', 'client_admin');
SELECT crm_security.add_tenant_member('acme', 'carol', 'client_user');
SELECT crm_security.add_tenant_member('globex', 'carol', 'reviewer');
SELECT crm_security.add_tenant_member('acme', 'dave');
SELECT crm_security.add_tenant_member('initech', 'erin', 'client_user');
SELECT crm_security.add_tenant_member('globex', 'erin', 'client_user');
SELECT crm_security.disable_tenant_member('globex', 'erin');

-- The only membership.
SELECT is(pg_temp.ctx('alice'), 'acme/client_admin', 'the only membership gives the tenant and the role');
SELECT is(pg_temp.ctx('alice', 'acme'), 'acme/client_admin', 'the requested tenant of a member');
SELECT is(pg_temp.ctx('dave'), 'acme/authenticated', 'a membership without a role keeps the token''s role');
SELECT is(pg_temp.ctx('erin'), 'initech/client_user', 'a disabled membership does not count: the only one left is used');
-- Several memberships.
SELECT is(pg_temp.ctx('carol'), '22023 the user is a member of several tenants', 'several memberships and no tenant: an error that says so');
SELECT is(pg_temp.ctx('carol', 'acme'), 'acme/client_user', 'the requested tenant picks one ...');
SELECT is(pg_temp.ctx('carol', 'globex'), 'globex/reviewer', '... with its own role');
-- Not a member: one error whether the tenant exists or not.
SELECT is(pg_temp.ctx('alice', 'globex'), '42501 not a member of the requested tenant', 'a tenant the user is not a member of');
SELECT is(pg_temp.ctx('alice', 'no-such-tenant'), '42501 not a member of the requested tenant', 'an unknown tenant: the same error');
SELECT is(pg_temp.ctx('erin', 'globex'), '42501 not a member of the requested tenant', 'a disabled membership: the same error');
SELECT is(pg_temp.ctx('mallory', 'acme'), '42501 not a member of the requested tenant', 'a user without membership');
SELECT throws_ok($$SELECT crm_security.set_claim_context(pg_temp.tok('{"sub": "alice"}'), 'globex')$$, '42501',
    'not a member of the requested tenant', 'the refusal is 42501');
SELECT is(pg_temp.ctx('mallory'), '-/authenticated', 'no membership at all: a context without a tenant, as before');
SELECT is(pg_temp.ctx(NULL, 'acme'), '42501 not a member of the requested tenant', 'a token without sub has no membership');
-- Bad tenant ids.
SELECT is(pg_temp.ctx('alice', ''), '22023 tenant id must not be empty', 'an empty tenant id');
SELECT is(pg_temp.ctx('alice', repeat('x', 257)), '22023 tenant id is too long', 'a tenant id of 257 bytes');
SELECT is(pg_temp.ctx('alice', repeat('x', 1000000)), '22023 tenant id is too long', 'a tenant id of 1 MB');
SELECT is(pg_temp.ctx('alice', repeat('x', 256)), '42501 not a member of the requested tenant', 'a tenant id of 256 bytes is only unknown');
SELECT is(pg_temp.ctx('alice', E'acme\u00e9'), '42501 not a member of the requested tenant', 'a look-alike tenant id');
SELECT is(pg_temp.ctx('alice', 'ACME'), '42501 not a member of the requested tenant', 'tenant ids compare bytewise');
SELECT is(pg_temp.ctx('alice', 'acme '), '42501 not a member of the requested tenant', 'trailing space');
SELECT is(pg_temp.ctx('alice', NULL), 'acme/client_admin', 'NULL asks for nothing');
-- A tenant id that is not a value of a tenant column's type: no member has it, and the
-- typed accessor of the isolation policies gives NULL for what is not a uuid.
SELECT is(pg_temp.ctx('alice', 'not-a-uuid'), '42501 not a member of the requested tenant', 'a tenant id not castable to uuid');
SELECT crm_security.add_tenant('not-a-uuid', 'Odd');
SELECT crm_security.add_tenant_member('not-a-uuid', 'oscar', 'client_user');
SELECT is(pg_temp.ctx('oscar'), 'not-a-uuid/client_user', 'a text tenant that is not a uuid ...');
SELECT is(crm_security.tenant_id_uuid(), NULL, '... gives no uuid tenant: a uuid-keyed table shows nothing');

-- Tokens with a tenant claim: as before; a requested tenant must agree.
SELECT is(pg_temp.ctx('alice', NULL, '{"tenant_id": "globex", "role": "agent"}'), 'globex/agent', 'a tenant claim wins without membership');
SELECT is(pg_temp.ctx('alice', 'globex', '{"tenant_id": "globex"}'), 'globex/authenticated', 'the same tenant requested');
SELECT is(pg_temp.ctx('alice', 'acme', '{"tenant_id": "globex"}'), '42501 the requested tenant is not the token''s tenant', 'another tenant requested');
SET LOCAL crm_security.require_membership = on;
SELECT is(pg_temp.ctx('alice', NULL, '{"tenant_id": "globex"}'), '42501 not a member of the requested tenant', 'require_membership: the claim''s tenant must be a membership');
SELECT is(pg_temp.ctx('alice', NULL, '{"tenant_id": "acme"}'), 'acme/client_admin', 'require_membership: a member, with the membership''s role');
SELECT is(pg_temp.ctx('mallory', NULL, '{"tenant_id": "nowhere"}'), '42501 not a member of the requested tenant', 'require_membership: an unknown tenant, the same error');
RESET crm_security.require_membership;
SELECT is(pg_temp.ctx('alice', NULL, '{"tenant_id": "acme"}'), 'acme/authenticated', 'without require_membership the membership is not read');

-- Role precedence.
SELECT is(pg_temp.ctx('alice'), 'acme/client_admin', 'role_source = membership (default): the membership''s role');
SET LOCAL crm_security.role_source = 'token';
SELECT is(pg_temp.ctx('alice'), 'acme/authenticated', 'role_source = token: the token''s role claim');
SELECT is(pg_temp.ctx('alice', NULL, '{"role": null}'), 'acme/client_admin', 'role_source = token without a role claim: the membership''s');
RESET crm_security.role_source;
SELECT throws_ok($$SET crm_security.role_source = 'claims'$$, '22023', NULL, 'role_source takes membership or token');
SELECT is((SELECT context FROM pg_settings WHERE name = 'crm_security.role_source') ||
          (SELECT context FROM pg_settings WHERE name = 'crm_security.require_membership'), 'superusersuperuser',
          'both settings are PGC_SUSET');

-- Expired memberships (the membership counts until its expiry; the limit check uses the
-- clock, the resolution the transaction's start).
UPDATE crm_security.tenant_members SET expires_at = now() - interval '1 second' WHERE user_id = 'dave';
SELECT is(pg_temp.ctx('dave'), '-/authenticated', 'an expired membership gives no tenant');
SELECT is(pg_temp.ctx('dave', 'acme'), '42501 not a member of the requested tenant', 'an expired membership: not a member');
UPDATE crm_security.tenant_members SET expires_at = now() + interval '1 hour' WHERE user_id = 'dave';
SELECT is(pg_temp.ctx('dave', 'acme'), 'acme/authenticated', 'an unexpired one counts');

-- A disabled tenant gives no context: an error, for members only (others get the
-- not-a-member error, so nothing tells them the tenant exists).
SELECT crm_security.disable_tenant('globex');
SELECT is(pg_temp.ctx('carol', 'globex'), '42501 the tenant is disabled', 'a disabled tenant: no context');
SELECT is(pg_temp.ctx('alice', 'globex'), '42501 not a member of the requested tenant', 'to a non-member a disabled tenant is only not theirs');
SELECT is(pg_temp.ctx('alice', NULL, '{"tenant_id": "globex"}'), '42501 the tenant is disabled', 'a token naming a disabled tenant: no context');
SELECT is(pg_temp.ctx('carol'), '22023 the user is a member of several tenants', 'memberships of disabled tenants still count as memberships');
SELECT crm_security.enable_tenant('globex');
SELECT is(pg_temp.ctx('carol', 'globex'), 'globex/reviewer', 'enabled again');

-- A refused resolution leaves the context as it was.
SELECT is(pg_temp.ctx('alice'), 'acme/client_admin', 'a context ...');
SELECT is(pg_temp.ctx('alice', 'globex'), '42501 not a member of the requested tenant', '... then a refused tenant ...');
SELECT is(crm_security.tenant_id() || '/' || crm_security.user_id(), 'acme/alice', '... leaves it as it was');

-- request_id goes to the audit setting; too long is refused.
SELECT lives_ok($$SELECT crm_security.set_claim_context(pg_temp.tok('{"sub": "alice"}'), NULL, 'req-42')$$, 'a request id');
SELECT is(current_setting('crm_security.request_id'), 'req-42', 'set for the transaction');
SELECT throws_ok($$SELECT crm_security.set_claim_context(pg_temp.tok('{"sub": "alice"}'), NULL, repeat('r', 257))$$,
    '22023', 'request id is too long', 'a request id of 257 bytes');
SELECT lives_ok($$SELECT crm_security.set_claim_context(pg_temp.tok('{"sub": "alice"}'), NULL, NULL)$$, 'NULL request id');
SELECT is(current_setting('crm_security.request_id'), 'req-42', 'NULL leaves the request id as it was');
SELECT throws_ok($$SELECT crm_security.set_claim_context(NULL, 'acme')$$, '28000', NULL, 'a NULL token is refused');

-- The setting crm_security.requested_tenant is only an input.
SELECT lives_ok($$SELECT crm_security.set_claim_context(pg_temp.tok('{"sub": "carol"}'), 'acme')$$, 'carol in acme');
SELECT is(current_setting('crm_security.requested_tenant'), 'acme', 'the requested tenant is in the setting');
SET LOCAL crm_security.requested_tenant = 'globex';
SELECT is(crm_security.tenant_id() || '/' || crm_security.app_role(), 'globex/reviewer',
          'setting it by hand gives what set_claim_context(token, that tenant) gives ...');
SET LOCAL crm_security.requested_tenant = 'initech';
SELECT throws_ok($$SELECT crm_security.tenant_id()$$, '42501', 'not a member of the requested tenant', '... and nothing else');
SELECT throws_ok($$SET LOCAL crm_security.requested_tenant = '$$ || repeat('x', 300) || $$'$$, '22023', NULL, 'a huge value is refused');
SELECT throws_ok($$ALTER ROLE CURRENT_USER SET crm_security.requested_tenant = 'acme'$$, '42501', NULL,
    'it cannot outlive a transaction');

-- Each process caches what it read; a change, even by hand, is seen at the next
-- set_claim_context, and a rolled-back change leaves nothing behind.
SELECT is(pg_temp.ctx('alice'), 'acme/client_admin', 'a membership read (and cached)');
SAVEPOINT s1;
UPDATE crm_security.tenant_members SET enabled = false WHERE user_id = 'alice';
SELECT is(pg_temp.ctx('alice'), '-/authenticated', 'disabled by hand: the next set_claim_context sees it');
ROLLBACK TO SAVEPOINT s1;
SELECT is(pg_temp.ctx('alice'), 'acme/client_admin', 'rolled back: the membership counts again');
SAVEPOINT s2;
UPDATE crm_security.tenants SET enabled = false WHERE id = 'acme';
SELECT is(pg_temp.ctx('alice'), '42501 the tenant is disabled', 'a tenant disabled by hand: seen at once');
ROLLBACK TO SAVEPOINT s2;
SELECT is(pg_temp.ctx('alice'), 'acme/client_admin', 'rolled back: enabled again');
SELECT is(pg_temp.ctx('alice', 'initech'), '42501 not a member of the requested tenant', 'not a member (cached) ...');
SELECT crm_security.add_tenant_member('initech', 'alice', 'client_user');
SELECT is(pg_temp.ctx('alice', 'initech'), 'initech/client_user', '... until added');
SELECT crm_security.remove_tenant_member('initech', 'alice');

-- 10,000 memberships for one user: one probe for a requested tenant, and the error that
-- says so without one.
INSERT INTO crm_security.tenants (id, name) SELECT 'bulk-' || g, 'Bulk ' || g FROM generate_series(1, 10000) g;
INSERT INTO crm_security.tenant_members (tenant_id, user_id, role) SELECT 'bulk-' || g, 'busy', 'client_user' FROM generate_series(1, 10000) g;
SELECT is(pg_temp.ctx('busy', 'bulk-9999'), 'bulk-9999/client_user', '10,000 memberships: the requested one');
SELECT is(pg_temp.ctx('busy'), '22023 the user is a member of several tenants', '10,000 memberships without a tenant: the error');
SELECT ok((SELECT count(*) FROM crm_security.tenant_members WHERE user_id = 'busy') = 10000, 'all 10,000 are there');

SELECT * FROM finish();
ROLLBACK;
