-- The claim context's generation (ctx_generation() in src/context.h): everything cached
-- from the context (the effective permissions) follows every change of the context inside
-- one transaction, and inside one statement: another request.jwt.claims in trust mode, an
-- emptied one, the same one again, and the settings that select claims.
BEGIN;
SELECT plan(10);

SET LOCAL crm_security.trust_request_jwt_claims = on;
SELECT set_config('request.jwt.claims',
                  '{"sub": "u-gen", "tenant_id": "t-gen", "permissions": ["a:read"], "scopes": ["s:read"]}',
                  true) IS NOT NULL AS x \gset
SELECT ok(crm_security.can('a:read'), 'trust mode: the permissions claim is held');

SELECT set_config('request.jwt.claims', '{"sub": "u-gen", "tenant_id": "t-gen", "permissions": ["b:read"]}',
                  true) IS NOT NULL AS x \gset
SELECT ok(NOT crm_security.can('a:read'), 'other claims in the same transaction: the old permissions are gone');
SELECT ok(crm_security.can('b:read'), '... and the new ones are held');

SELECT set_config('request.jwt.claims', '', true) IS NOT NULL AS x \gset
SELECT ok(NOT crm_security.can('b:read'), 'emptied claims hold nothing');

SELECT set_config('request.jwt.claims', '{"sub": "u-gen", "tenant_id": "t-gen", "permissions": ["b:read"]}',
                  true) IS NOT NULL AS x \gset
SELECT ok(crm_security.can('b:read'), 'the same claims again are held again');

SELECT set_config('request.jwt.claims',
                  '{"sub": "u-gen", "tenant_id": "t-gen", "permissions": ["a:read"], "scopes": ["s:read"]}',
                  true) IS NOT NULL AS x \gset
SET LOCAL crm_security.permissions_claim = 'scopes';
SELECT is(crm_security.permissions(), ARRAY['s:read'], 'permissions_claim changed: permissions() follows');
SET LOCAL crm_security.permissions_claim = 'permissions';
SELECT is(crm_security.permissions(), ARRAY['a:read'], '... and follows it back');

SET LOCAL crm_security.tenant_claim = 'sub';
SELECT is(crm_security.tenant_id(), 'u-gen', 'tenant_claim changed: tenant_id() follows');
SET LOCAL crm_security.tenant_claim = 'tenant_id';

CREATE FUNCTION pg_temp.switch_and_check() RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    r text[] := '{}';
BEGIN
    PERFORM set_config('request.jwt.claims', '{"sub": "u-gen", "permissions": ["c:read"]}', true);
    r := r || crm_security.can('c:read')::text;
    PERFORM set_config('request.jwt.claims', '{"sub": "u-gen", "permissions": ["d:read"]}', true);
    r := r || crm_security.can('c:read')::text || crm_security.can('d:read')::text;
    PERFORM set_config('crm_security.trust_request_jwt_claims', 'off', true);
    r := r || crm_security.can('d:read')::text;
    RETURN r;
END $$;
SELECT is(pg_temp.switch_and_check(), ARRAY['true', 'false', 'true', 'false'],
          'inside one statement, every change of the claims and of trust mode is seen');
SELECT is(crm_security.permissions(), '{}'::text[], 'trust mode off: no permissions');

SELECT * FROM finish();
ROLLBACK;
