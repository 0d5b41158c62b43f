-- Effective permissions of a claim context: token claim plus roles granted in the database,
-- can() and authorize(), caching and its invalidation, and hostile contexts.
BEGIN;
SELECT plan(67);

CREATE ROLE regress_app NOSUPERUSER NOBYPASSRLS;
\ir include/tap_state.sql
SELECT pg_temp.grant_tap_state('regress_app');
SELECT crm_security.add_jwt_key('regress_authz', 'HS256', 'regress-authz-secret-0123456789abcdef0123');
CREATE FUNCTION pg_temp.tok(claims jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT crm_security.jwt_sign(claims || jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600),
                                 'regress-authz-secret-0123456789abcdef0123', 'HS256')
$$;
CREATE FUNCTION pg_temp.ctx(claims jsonb) RETURNS boolean LANGUAGE sql AS $$
    SELECT crm_security.set_claim_context(pg_temp.tok(claims)) IS NOT NULL
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;

-- roles, set up by the administrator
SELECT crm_security.create_role('regress_sales', '{crm:deals:manage}', 'tenant-a', '{client_user}');
SELECT crm_security.create_role('regress_exporter', '{crm:data:export}', 'tenant-a');
SELECT crm_security.grant_role('alice', 'tenant-a', 'regress_sales');
SELECT crm_security.grant_role('alice', 'tenant-b', 'reviewer');
INSERT INTO crm_security.role_grants (user_id, tenant_id, role_id, expires_at)
SELECT 'alice', 'tenant-a', id, now() - interval '1 minute' FROM crm_security.roles
 WHERE name = 'regress_exporter';

SET ROLE regress_app;

-- no context
SELECT is(crm_security.permissions(), '{}'::text[], 'no context: no permissions');
SELECT ok(NOT crm_security.can('crm:contacts:read'), 'no context: can() is false');
SELECT throws_ok($$SELECT crm_security.authorize('crm:contacts:read')$$, '42501',
                 'missing permission "crm:contacts:read"', 'no context: authorize() raises 42501');

-- token permissions only (no grants for this user)
SELECT ok(pg_temp.ctx('{"sub":"tom","tenant_id":"tenant-a","permissions":["crm:contacts:read","crm:notes:*"," bad","",42,null,"crm::x","crm:contacts:read"]}'),
          'context with a permissions claim');
SELECT is(crm_security.permissions(), '{crm:contacts:read,crm:notes:*}'::text[],
          'permissions(): well-formed strings of the claim, sorted, without duplicates');
SELECT ok(crm_security.can('crm:contacts:read'), 'can read contacts');
SELECT ok(crm_security.can('crm:notes:delete'), 'can delete notes through crm:notes:*');
SELECT ok(NOT crm_security.can('crm:contacts:delete'), 'cannot delete contacts');
SELECT ok(NOT crm_security.can('bad'), 'a malformed claim entry grants nothing');
SELECT ok(NOT crm_security.can(NULL), 'can(NULL) is false');
SELECT ok(NOT crm_security.can(''), 'can('''') is false');
SELECT lives_ok($$SELECT crm_security.authorize('crm:contacts:read')$$, 'authorize() passes');
SELECT throws_ok($$SELECT crm_security.authorize('crm:contacts:delete')$$, '42501',
                 'missing permission "crm:contacts:delete"', 'authorize() names the missing permission');
SELECT throws_ok($$SELECT crm_security.authorize('crm:contacts: delete')$$, '22023', NULL,
                 'authorize() refuses a malformed permission');
SELECT throws_ok($$SELECT crm_security.authorize(NULL)$$, '22023', NULL, 'authorize(NULL) raises');

-- a space-separated string claim (OAuth scope style)
SELECT ok(pg_temp.ctx('{"sub":"tom","tenant_id":"tenant-a","permissions":"crm:deals:read  crm:deals:update"}'),
          'context with a string permissions claim');
SELECT is(crm_security.permissions(), '{crm:deals:read,crm:deals:update}'::text[], 'a string claim is split on spaces');
SELECT ok(pg_temp.ctx('{"sub":"tom","tenant_id":"tenant-a","permissions":{"crm:deals:read":true}}'),
          'context with an object as permissions claim');
SELECT is(crm_security.permissions(), '{}'::text[], 'an object claim grants nothing');
SELECT ok(pg_temp.ctx('{"sub":"tom","tenant_id":"tenant-a","permissions":"*"}'), 'context with "*"');
SELECT ok(crm_security.can('anything:at:all') AND crm_security.can('x'), 'a lone "*" grants everything');

-- roles granted in the database, with inheritance, per tenant, expired grants ignored
SELECT ok(pg_temp.ctx('{"sub":"alice","tenant_id":"tenant-a","permissions":["crm:extra:read"]}'), 'alice in tenant A');
SELECT ok(crm_security.can('crm:extra:read'), 'the token permission counts');
SELECT ok(crm_security.can('crm:deals:delete'), 'the granted custom role counts (crm:deals:manage)');
SELECT ok(crm_security.can('crm:contacts:create'), 'the inherited system role counts (client_user)');
SELECT ok(NOT crm_security.can('crm:data:export'), 'an expired grant does not count');
SELECT ok(NOT crm_security.can('crm:audit:read'), 'the role granted in tenant B does not count in tenant A');
SELECT ok('crm:deals:manage' = ANY (crm_security.permissions()), 'permissions() lists role permissions');
SELECT ok(pg_temp.ctx('{"sub":"alice","tenant_id":"tenant-b"}'), 'alice in tenant B');
SELECT is(crm_security.permissions(), '{crm:*:read,crm:audit:read}'::text[], 'in tenant B alice is a reviewer');
SELECT ok(NOT crm_security.can('crm:deals:delete'), 'tenant A roles do not count in tenant B');
SELECT ok(pg_temp.ctx('{"sub":"alice","tenant_id":"tenant-c"}'), 'alice in tenant C');
SELECT is(crm_security.permissions(), '{}'::text[], 'no roles in tenant C');
SELECT ok(pg_temp.ctx('{"sub":"alice"}'), 'alice without a tenant');
SELECT is(crm_security.permissions(), '{}'::text[], 'no tenant: no roles');
SELECT ok(pg_temp.ctx('{"sub":"Alice","tenant_id":"tenant-a"}'), 'ALICE in tenant A');
SELECT ok(NOT crm_security.can('crm:deals:delete'), 'user ids are compared exactly');

-- spoofed settings change nothing
SELECT ok(set_config('request.jwt.claims', '{"sub":"alice","tenant_id":"tenant-a","permissions":["*"]}', true) IS NOT NULL,
          'spoof request.jwt.claims');
SELECT ok(set_config('request.jwt.claim.sub', 'alice', true) IS NOT NULL, 'spoof request.jwt.claim.sub');
SELECT ok(NOT crm_security.can('crm:deals:delete') AND NOT crm_security.can('x'), 'spoofed claims grant nothing');
SELECT throws_ok($$SET crm_security.permissions_claim = 'sub'$$, '42501', NULL, 'cannot redirect the permissions claim');
SELECT lives_ok('SELECT crm_security.clear_claim_context()', 'clear the context');
SELECT ok(NOT crm_security.can('x'), 'spoofed claims without a context grant nothing');
SELECT throws_ok(format('SELECT crm_security.set_claim_context(%L)',
                        crm_security.jwt_sign('{"sub":"alice","tenant_id":"tenant-a","permissions":["*"],"exp":4000000000}',
                                              'a-key-nobody-trusts-0123456789abcdef', 'HS256')),
                 '28000', NULL, 'a forged token is refused');
SELECT is(crm_security.permissions(), '{}'::text[], 'and leaves no permissions');

-- computed once per transaction: the role lookup runs once for many calls
RESET ROLE;
SET LOCAL track_functions = 'all';
SET ROLE regress_app;
SELECT ok(pg_temp.ctx('{"sub":"alice","tenant_id":"tenant-a"}'), 'alice in tenant A again');
SELECT is((SELECT count(*)::int FROM generate_series(1, 5000) WHERE crm_security.can('crm:deals:delete')), 5000,
          'can() on 5000 rows');
RESET ROLE;
SELECT cmp_ok((SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = '_granted_permissions'), '<=', 2::bigint,
              'the role tables were read at most twice for 5000 calls');

-- grants and revocations in this transaction take effect at once, savepoints included
SELECT crm_security.revoke_role('alice', 'tenant-a', 'regress_sales');
SET ROLE regress_app;
SELECT ok(NOT crm_security.can('crm:deals:delete'), 'revoked in this transaction: gone at once');
RESET ROLE;
SELECT crm_security.grant_role('alice', 'tenant-a', 'regress_exporter');
SET ROLE regress_app;
SELECT ok(crm_security.can('crm:data:export'), 'granted in this transaction: there at once');
RESET ROLE;
SAVEPOINT s1;
SELECT crm_security.grant_role('alice', 'tenant-a', 'client_admin');
SET ROLE regress_app;
SELECT ok(crm_security.can('crm:users:manage'), 'granted in a savepoint');
ROLLBACK TO SAVEPOINT s1;
SET ROLE regress_app;
SELECT ok(NOT crm_security.can('crm:users:manage'), 'gone after ROLLBACK TO SAVEPOINT');
RESET ROLE;
SELECT crm_security.alter_role('regress_exporter', '{crm:data:import}', 'tenant-a');
SET ROLE regress_app;
SELECT ok(crm_security.can('crm:data:import') AND NOT crm_security.can('crm:data:export'), 'a changed role takes effect at once');
RESET ROLE;

-- the claim holding permissions is a setting (superuser only)
SET LOCAL crm_security.permissions_claim = 'app_metadata.perms';
SET ROLE regress_app;
SELECT ok(pg_temp.ctx('{"sub":"tom","tenant_id":"tenant-z","permissions":["a:b"],"app_metadata":{"perms":["c:d"]}}'),
          'context with nested permissions');
SELECT is(crm_security.permissions(), '{c:d}'::text[], 'permissions are read from the configured dotted path');
RESET ROLE;
RESET crm_security.permissions_claim;

-- can() in a restrictive policy on top of tenant isolation: deleting needs crm:notes:delete
CREATE TABLE public.authz_notes (id int PRIMARY KEY, tenant_id text NOT NULL, body text);
INSERT INTO public.authz_notes VALUES (1, 'tenant-a', 'one'), (2, 'tenant-a', 'two'), (3, 'tenant-b', 'three');
SELECT crm_security.enable_tenant_isolation('public.authz_notes');
CREATE POLICY notes_delete ON public.authz_notes AS RESTRICTIVE FOR DELETE
    USING (crm_security.can('crm:notes:delete'));
GRANT SELECT, DELETE ON public.authz_notes TO regress_app;
SET ROLE regress_app;
SELECT ok(pg_temp.ctx('{"sub":"tom","tenant_id":"tenant-a","permissions":["crm:notes:read"]}'), 'tom may read notes');
SELECT is_empty('DELETE FROM public.authz_notes RETURNING id', 'without crm:notes:delete nothing is deleted');
SELECT ok(pg_temp.ctx('{"sub":"tom","tenant_id":"tenant-a","permissions":["crm:notes:manage"]}'), 'tom may manage notes');
SELECT results_eq('DELETE FROM public.authz_notes RETURNING id', ARRAY[1, 2], 'with crm:notes:manage his tenant''s notes go');
RESET ROLE;
SELECT results_eq('SELECT id FROM public.authz_notes', ARRAY[3], 'the other tenant''s note stays');

-- the application role cannot read or change roles and grants
SET ROLE regress_app;
SELECT throws_ok('SELECT * FROM crm_security.role_grants', '42501', NULL, 'cannot read role_grants');
SELECT throws_ok($$SELECT crm_security.grant_role('tom', 'tenant-a', 'superadmin')$$, '42501', NULL, 'cannot grant roles');
SELECT throws_ok($$SELECT crm_security._granted_permissions('alice', 'tenant-a')$$, '42501', NULL,
                 'cannot call the internal lookup');
RESET ROLE;

-- every SECURITY DEFINER function of the extension pins its search_path
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p
     WHERE p.prosecdef
       AND (p.pronamespace = 'crm_security'::regnamespace
            OR EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                        WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
                          AND e.extname = 'crm_security'))
       AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c
                        WHERE c IN ('search_path=pg_catalog, pg_temp', 'search_path=pg_catalog,pg_temp'))
$$, 'every SECURITY DEFINER function sets search_path = pg_catalog, pg_temp');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p
     WHERE p.pronamespace = 'crm_security'::regnamespace
       AND p.proname IN ('create_role', 'alter_role', 'drop_role', 'grant_role', 'revoke_role',
                         '_granted_permissions')
       AND (NOT p.prosecdef OR has_function_privilege('public', p.oid, 'EXECUTE'))
$$, 'the role administration functions are SECURITY DEFINER and not executable by PUBLIC');
SELECT ok((SELECT count(*) FROM pg_proc p
             JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
             JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crm_security'
            WHERE p.prosecdef) >= 6, 'the check above saw the SECURITY DEFINER functions');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p
      JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
      JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crm_security'
     WHERE obj_description(p.oid, 'pg_proc') IS NULL
       AND p.proname IN ('permission_valid', 'permission_matches', 'has_permission', 'has_any_permission',
                         'has_all_permissions', 'permissions', 'can', 'authorize', 'create_role', 'alter_role',
                         'drop_role', 'grant_role', 'revoke_role', 'enable_tenant_isolation',
                         'disable_tenant_isolation', 'isolation_report', 'tenant_id_uuid', 'tenant_id_bigint',
                         'tenant_id_int', 'tenant_id_text')
$$, 'every permission and isolation function has a comment');

SELECT * FROM finish();
ROLLBACK;
