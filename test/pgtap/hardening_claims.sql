-- One claim path resolver for claim() and every claim setting (tenant_claim, role_claim,
-- permissions_claim), and for everything that reads the tenant (tenant_id(), the typed
-- accessors of the isolation policies, the role lookup of permissions()).  (docs/security.md, finding
-- 11: permissions_claim = 'https://crm.example.com/permissions' was split on its dots and
-- found nothing.)
--
-- The rule: at each level the longest member name that is the whole remaining path, or the
-- part of it before one of its dots, is taken; the rest of the path is then looked up in
-- that member (a number selects an array element).  So a member named by the whole path
-- wins over a nested path spelling the same, and a namespaced claim may itself hold objects.
BEGIN;
SELECT plan(47);

CREATE ROLE regress_hc_app NOSUPERUSER NOBYPASSRLS;
SELECT crm_security.add_jwt_key('regress_hc', 'HS256', 'regress-hc-secret-0123456789abcdef0123');
CREATE FUNCTION pg_temp.ctx(claims jsonb) RETURNS boolean LANGUAGE sql AS $$
    SELECT crm_security.set_claim_context(
        crm_security.jwt_sign(claims || jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600),
                              'regress-hc-secret-0123456789abcdef0123', 'HS256')) IS NOT NULL
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;
SELECT crm_security.create_role('regress_hc_role', '{crm:hc:granted}', 'hc-tenant-ns');
SELECT crm_security.grant_role('hc-user', 'hc-tenant-ns', 'regress_hc_role');
SELECT crm_security.create_role('regress_hc_role2', '{crm:hc:nested}', 'hc-tenant-nested');
SELECT crm_security.grant_role('hc-user', 'hc-tenant-nested', 'regress_hc_role2');

-- Auth0-style namespaced claims: the names contain dots.
SET LOCAL crm_security.permissions_claim = 'https://crm.example.com/permissions';
SET LOCAL crm_security.tenant_claim = 'https://crm.example.com/tenant';
SET LOCAL crm_security.role_claim = 'https://crm.example.com/role';
SET LOCAL ROLE regress_hc_app;
SELECT ok(pg_temp.ctx('{"sub": "hc-user",
                        "https://crm.example.com/permissions": ["crm:deals:read", "crm:notes:*"],
                        "https://crm.example.com/tenant": "hc-tenant-ns",
                        "https://crm.example.com/role": "reviewer",
                        "permissions": ["crm:wrong:one"], "tenant_id": "wrong-tenant", "role": "superadmin"}'),
          'a context with Auth0-style namespaced claims');
SELECT is(crm_security.permissions(), '{crm:deals:read,crm:hc:granted,crm:notes:*}'::text[],
          'permissions_claim with dots in its name: the namespaced permissions, and the roles of the namespaced tenant');
SELECT ok(crm_security.can('crm:deals:read'), 'can() reads the namespaced permissions claim');
SELECT ok(crm_security.can('crm:notes:delete'), '... wildcards included');
SELECT ok(NOT crm_security.can('crm:wrong:one'), '... and not the plain "permissions" claim');
SELECT lives_ok($$SELECT crm_security.authorize('crm:deals:read')$$, 'authorize() passes through the namespaced claim');
SELECT is(crm_security.tenant_id(), 'hc-tenant-ns', 'tenant_id() reads the namespaced tenant claim');
SELECT is(crm_security.tenant_id_text(), 'hc-tenant-ns', 'tenant_id_text() (the isolation policies) reads the same');
SELECT is(crm_security.app_role(), 'reviewer', 'app_role() reads the namespaced role claim');
SELECT is(crm_security.claim('https://crm.example.com/tenant'), 'hc-tenant-ns', 'claim() gives the same value');
SELECT is(crm_security.claim('https://crm.example.com/permissions'), '["crm:deals:read", "crm:notes:*"]',
          'claim() of the namespaced permissions');

-- A space-separated string in a namespaced claim (OAuth scope style).
SELECT ok(pg_temp.ctx('{"sub": "nobody", "https://crm.example.com/permissions": "crm:a:read crm:b:read"}'), 'a namespaced scope string');
SELECT is(crm_security.permissions(), '{crm:a:read,crm:b:read}'::text[], 'the namespaced string claim is split on spaces');

-- Typed tenants through a namespaced claim.
SELECT ok(pg_temp.ctx('{"sub": "u", "https://crm.example.com/tenant": "7b4f1f0e-8f2a-4d4e-9c55-3f1e2d9a7b10"}'), 'a uuid tenant, namespaced');
SELECT is(crm_security.tenant_id_uuid(), '7b4f1f0e-8f2a-4d4e-9c55-3f1e2d9a7b10'::uuid, 'tenant_id_uuid() reads the namespaced claim');
SELECT ok(pg_temp.ctx('{"sub": "u", "https://crm.example.com/tenant": "42"}'), 'an integer tenant, namespaced');
SELECT is(crm_security.tenant_id_bigint(), 42::bigint, 'tenant_id_bigint() reads the namespaced claim');
SELECT is(crm_security.tenant_id_int(), 42, 'tenant_id_int() reads the namespaced claim');

-- A namespaced claim holding an object: the longest member name, then the rest inside it.
RESET ROLE;
SET LOCAL crm_security.permissions_claim = 'https://crm.example.com/app.permissions';
SET LOCAL crm_security.tenant_claim = 'https://crm.example.com/app.tenant';
SET LOCAL crm_security.role_claim = 'https://crm.example.com/app.roles.0';
SET LOCAL ROLE regress_hc_app;
SELECT ok(pg_temp.ctx('{"sub": "hc-user",
                        "https://crm.example.com/app": {"permissions": ["crm:x:read"], "tenant": "hc-tenant-ns", "roles": ["reviewer", "x"]}}'),
          'a namespaced claim holding an object');
SELECT is(crm_security.permissions(), '{crm:hc:granted,crm:x:read}'::text[], 'permissions through a namespaced object');
SELECT is(crm_security.tenant_id(), 'hc-tenant-ns', 'tenant through a namespaced object');
SELECT is(crm_security.tenant_id_text(), 'hc-tenant-ns', 'tenant_id_text() through a namespaced object');
SELECT is(crm_security.app_role(), 'reviewer', 'role through a namespaced object and an array index');
SELECT is(crm_security.claim('https://crm.example.com/app.tenant'), 'hc-tenant-ns', 'claim() through a namespaced object');

-- Nested paths (Supabase's app_metadata).
RESET ROLE;
SET LOCAL crm_security.permissions_claim = 'app_metadata.permissions';
SET LOCAL crm_security.tenant_claim = 'app_metadata.tenant_id';
SET LOCAL crm_security.role_claim = 'app_metadata.role';
SET LOCAL ROLE regress_hc_app;
SELECT ok(pg_temp.ctx('{"sub": "hc-user", "app_metadata": {"tenant_id": "hc-tenant-nested", "permissions": ["crm:y:read"], "role": "superadmin"}}'),
          'nested claims');
SELECT is(crm_security.permissions(), '{crm:hc:nested,crm:y:read}'::text[], 'permissions from a nested path, roles of the nested tenant');
SELECT is(crm_security.tenant_id(), 'hc-tenant-nested', 'tenant_id() from a nested path');
SELECT is(crm_security.tenant_id_text(), 'hc-tenant-nested', 'tenant_id_text() from a nested path');
SELECT is(crm_security.app_role(), 'superadmin', 'app_role() from a nested path');

-- Precedence: a member literally named "a.b" beside a nested a -> b.  The whole name wins,
-- for claim() and for every setting alike.
RESET ROLE;
SET LOCAL crm_security.permissions_claim = 'a.b';
SET LOCAL crm_security.tenant_claim = 't.id';
SET LOCAL crm_security.role_claim = 'r.name';
SET LOCAL ROLE regress_hc_app;
SELECT ok(pg_temp.ctx('{"sub": "hc-user",
                        "a.b": ["crm:literal:read"], "a": {"b": ["crm:nested:read"]},
                        "t.id": "hc-tenant-ns", "t": {"id": "hc-tenant-nested"},
                        "r.name": "reviewer", "r": {"name": "superadmin"}}'),
          'a literal "a.b" beside a nested a.b');
SELECT is(crm_security.claim('a.b'), '["crm:literal:read"]', 'claim(''a.b''): the literal member wins');
SELECT is(crm_security.permissions(), '{crm:hc:granted,crm:literal:read}'::text[],
          'permissions_claim ''a.b'': the literal member wins, as in claim() (and the literal tenant''s roles)');
SELECT ok(NOT crm_security.can('crm:nested:read'), '... the nested one is not read');
SELECT is(crm_security.tenant_id(), 'hc-tenant-ns', 'tenant_claim ''t.id'': the literal member wins');
SELECT is(crm_security.tenant_id_text(), 'hc-tenant-ns', 'tenant_id_text(): the literal member wins');
SELECT is(crm_security.app_role(), 'reviewer', 'role_claim ''r.name'': the literal member wins');
-- Only the nested one present: the path is followed.
SELECT ok(pg_temp.ctx('{"sub": "hc-user", "a": {"b": ["crm:nested:read"]}, "t": {"id": "hc-tenant-nested"}, "r": {"name": "superadmin"}}'),
          'only the nested a.b');
SELECT is(crm_security.permissions(), '{crm:hc:nested,crm:nested:read}'::text[], 'the nested path is followed when no literal member exists');
SELECT is(crm_security.tenant_id(), 'hc-tenant-nested', '... for the tenant too');
SELECT is(crm_security.app_role(), 'superadmin', '... and the role');
-- Deeper: "a.b" (an object) and a -> b -> c; the path a.b.c takes the longest name first
-- and does not fall back.
SELECT ok(pg_temp.ctx('{"sub": "u", "a.b": {"c": "long"}, "a": {"b": {"c": "short"}}, "x.y": "scalar", "x": {"y": {"z": "deep"}}}'),
          'overlapping names at two levels');
SELECT is(crm_security.claim('a.b.c'), 'long', 'a.b.c: the longest member name ("a.b") is taken first');
SELECT is(crm_security.claim('x.y.z'), NULL, 'x.y.z: "x.y" is taken and holds no "z": NULL, no fallback to x -> y -> z');
SELECT is(crm_security.claim('a.b'), '{"c": "long"}', 'a.b: the literal member');
-- Paths that name nothing, and bad paths, as before.
SELECT is(crm_security.claim('a.b.c.d'), NULL, 'a path past a string: NULL');
SELECT throws_ok($$SELECT crm_security.claim('a..b')$$, '22023', 'invalid claim path', 'an empty segment still raises');
RESET ROLE;
SELECT throws_ok($$SET LOCAL crm_security.permissions_claim = 'perms.'$$, '22023', NULL,
                 'a claim setting with a trailing dot is refused');

SELECT * FROM finish();
ROLLBACK;
