-- Tenants, tiers, member limits, features, the administration functions (bad input, audit
-- events, privileges) and reading tenant_members under tenant isolation without a leak.
BEGIN;
SELECT plan(62);

CREATE ROLE regress_tn_app NOSUPERUSER NOBYPASSRLS;
CREATE ROLE regress_tn_admin NOSUPERUSER NOBYPASSRLS;
\ir include/tap_state.sql
SELECT pg_temp.grant_tap_state('regress_tn_app', 'regress_tn_admin');

SELECT crm_security.add_jwt_key('ta_hs', 'HS256', 'tenants-admin-secret-0123456789-abcdefgh');
CREATE FUNCTION pg_temp.tok(claims jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT crm_security.jwt_sign(claims || jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600),
                                 'tenants-admin-secret-0123456789-abcdefgh', 'HS256', '{"kid": "ta_hs"}')
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;

-- Tiers and tenants.
SELECT is((SELECT array_agg(name ORDER BY name) FROM crm_security.tenant_tiers), '{enterprise,free,pro,standard}'::text[], 'four tiers');
SELECT lives_ok($$SELECT crm_security.add_tenant('t-free', 'Free Ltd', 'free')$$, 'a tenant of tier free');
SELECT lives_ok($$SELECT crm_security.add_tenant('t-pro', 'Pro Ltd', 'pro', 2, '{"sso": true}')$$, 'a pro tenant with a limit of 2 and sso');
SELECT lives_ok($$SELECT crm_security.add_tenant('t-std', 'Standard Ltd')$$, 'a tenant of the default tier');
SELECT is((SELECT tier FROM crm_security.tenants WHERE id = 't-std'), 'standard', 'the default tier is standard');
SELECT throws_ok($$SELECT crm_security.add_tenant('t-free', 'Again')$$, '23505', NULL, 'a tenant id is unique');
SELECT throws_ok($$SELECT crm_security.add_tenant('t-x', 'X', 'platinum')$$, '42704', 'tier "platinum" does not exist', 'an unknown tier');
SELECT throws_ok($$SELECT crm_security.add_tenant(NULL, 'X')$$, '22023', 'invalid tenant id', 'a NULL id');
SELECT throws_ok($$SELECT crm_security.add_tenant('', 'X')$$, '22023', 'invalid tenant id', 'an empty id');
SELECT throws_ok($$SELECT crm_security.add_tenant(repeat('x', 257), 'X')$$, '22023', 'invalid tenant id', 'an id of 257 bytes');
SELECT throws_ok($$SELECT crm_security.add_tenant(repeat('é', 200), 'X')$$, '22023', 'invalid tenant id', 'an id of 400 bytes in 200 characters');
SELECT throws_ok($$SELECT crm_security.add_tenant('t-x', NULL)$$, '22023', 'invalid tenant name', 'a NULL name');
SELECT throws_ok($$SELECT crm_security.add_tenant('t-x', 'X', 'free', -1)$$, '22023', NULL, 'a negative limit');
SELECT throws_ok($$SELECT crm_security.add_tenant('t-x', 'X', 'free', NULL, '{"sso": "yes"}')$$, '22023', 'invalid features', 'a feature that is not a boolean');
SELECT throws_ok($$SELECT crm_security.add_tenant('t-x', 'X', 'free', NULL, '[true]')$$, '22023', 'invalid features', 'features that are not an object');
SELECT throws_ok($$SELECT crm_security.add_tenant('t-x', 'X', 'free', NULL, NULL)$$, '22023', 'invalid features', 'NULL features');
SELECT throws_ok($$UPDATE crm_security.tenants SET features = '{"sso": 1}' WHERE id = 't-pro'$$, '23514', NULL, 'the table refuses bad features too');
SELECT throws_ok($$SELECT crm_security.disable_tenant('nope')$$, '42704', NULL, 'disabling an unknown tenant');

-- Members and limits.
SELECT lives_ok($$SELECT crm_security.add_tenant_member('t-pro', 'u1', 'client_admin')$$, 'a first member');
SELECT lives_ok($$SELECT crm_security.add_tenant_member('t-pro', 'u2', 'client_user')$$, 'a second member');
SELECT throws_ok($$SELECT crm_security.add_tenant_member('t-pro', 'u3', 'client_user')$$, '54000',
    'tenant "t-pro" has reached its member limit of 2', 'a third is refused, naming the tenant and the limit');
SELECT lives_ok($$SELECT crm_security.add_tenant_member('t-pro', 'u2', 'client_admin')$$, 'adding a member again is an update, within the limit');
SELECT is((SELECT role FROM crm_security.tenant_members WHERE tenant_id = 't-pro' AND user_id = 'u2'), 'client_admin', 'with the new role');
SELECT lives_ok($$SELECT crm_security.disable_tenant_member('t-pro', 'u2')$$, 'disabling a member frees a place ...');
SELECT lives_ok($$SELECT crm_security.add_tenant_member('t-pro', 'u3', 'client_user')$$, '... for another');
SELECT throws_ok($$SELECT crm_security.enable_tenant_member('t-pro', 'u2')$$, '54000', NULL, 'enabling again is refused beyond the limit');
SELECT throws_ok($$SELECT crm_security.add_tenant_member('t-pro', 'u2')$$, '54000', NULL, 'so is adding a disabled member again');
SELECT lives_ok($$SELECT crm_security.remove_tenant_member('t-pro', 'u3')$$, 'removing a member ...');
SELECT lives_ok($$SELECT crm_security.enable_tenant_member('t-pro', 'u2')$$, '... lets a disabled one back');
SELECT is((SELECT count(*)::int FROM crm_security.tenant_members WHERE tenant_id = 't-pro' AND enabled), 2, 'never beyond the limit');
-- The tier's limit when the tenant has none: free allows 5.
SELECT lives_ok($$SELECT crm_security.add_tenant_member('t-free', 'f' || g) FROM generate_series(1, 5) g$$, 'five members of a free tenant');
SELECT throws_ok($$SELECT crm_security.add_tenant_member('t-free', 'f6')$$, '54000', 'tenant "t-free" has reached its member limit of 5', 'the tier''s limit');
UPDATE crm_security.tenant_members SET expires_at = now() - interval '1 minute' WHERE tenant_id = 't-free' AND user_id = 'f1';
SELECT lives_ok($$SELECT crm_security.add_tenant_member('t-free', 'f6')$$, 'an expired member frees a place');
SELECT lives_ok($$SELECT crm_security.add_tenant_member('t-std', 's' || g) FROM generate_series(1, 100) g$$, 'standard: no limit');
-- Bad input.
SELECT throws_ok($$SELECT crm_security.add_tenant_member('nope', 'u1')$$, '42704', 'tenant "nope" does not exist', 'an unknown tenant');
SELECT throws_ok($$SELECT crm_security.add_tenant_member(NULL, 'u1')$$, '22023', NULL, 'a NULL tenant');
SELECT throws_ok($$SELECT crm_security.add_tenant_member('t-std', NULL)$$, '22023', NULL, 'a NULL user');
SELECT throws_ok($$SELECT crm_security.add_tenant_member('t-std', '')$$, '22023', NULL, 'an empty user');
SELECT throws_ok($$SELECT crm_security.add_tenant_member('t-std', repeat('u', 100000))$$, '22023', NULL, 'a huge user');
SELECT throws_ok($$SELECT crm_security.add_tenant_member('t-std', 'u9', 'Bad Role')$$, '22023', NULL, 'a malformed role');
SELECT throws_ok($$SELECT crm_security.add_tenant_member('t-std', 'u9', NULL, now() - interval '1 day')$$, '22023', NULL, 'an expiry in the past');
SELECT throws_ok($$SELECT crm_security.disable_tenant_member('t-std', 'nobody')$$, '42704', NULL, 'disabling a membership that does not exist');
SELECT lives_ok($$SELECT crm_security.remove_tenant_member('t-std', 'nobody')$$, 'removing one is a no-op');

-- Audit events: adds, removals, enabling and disabling, with the tenant in the metadata.
SELECT is((SELECT array_agg(DISTINCT operation ORDER BY operation) FROM crm_security.audit_log
            WHERE kind = 'event' AND resource_type IN ('tenant', 'tenant_member')),
          '{tenant_added,tenant_member_added,tenant_member_disabled,tenant_member_enabled,tenant_member_removed}'::text[],
          'every change of a membership is an audit event');
SELECT is((SELECT metadata->>'tenant_id' FROM crm_security.audit_log
            WHERE operation = 'tenant_member_removed' AND resource_id = 'u3'), 't-pro', 'the event names the tenant');

-- Features: the tier's, overridden per tenant; false without a tenant or for NULL.
SELECT crm_security.remove_tenant_member('t-free', 'f2');
SELECT crm_security.add_tenant_member('t-free', 'fu');
SELECT crm_security.add_tenant('t-ent', 'Enterprise Ltd', 'enterprise', NULL, '{"audit_export": false, "beta": true}');
SELECT crm_security.add_tenant_member('t-ent', 'eu');
CREATE FUNCTION pg_temp.features(sub text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm_security.set_claim_context(pg_temp.tok(jsonb_build_object('sub', sub)));
    RETURN concat_ws(',', crm_security.tenant_feature('sso'), crm_security.tenant_feature('api_access'),
                     crm_security.tenant_feature('audit_export'), crm_security.tenant_feature('beta'),
                     crm_security.tenant_feature(NULL), crm_security.tenant_feature(''),
                     crm_security.tenant_feature(repeat('z', 100000)));
END $$;
SELECT is(pg_temp.features('fu'), 'f,f,f,f,f,f,f', 'free: no feature');
SELECT is(pg_temp.features('u1'), 't,t,t,f,f,f,f', 'pro: api_access and audit_export, and sso by override');
SELECT is(pg_temp.features('eu'), 't,t,f,t,f,f,f', 'enterprise: everything but the feature turned off, plus its own');
SELECT is(pg_temp.features('nobody'), 'f,f,f,f,f,f,f', 'no tenant: no feature');
SELECT is((SELECT provolatile::text || proparallel::text FROM pg_proc WHERE oid = 'crm_security.tenant_feature(text)'::regprocedure), 'ss',
          'tenant_feature is STABLE and PARALLEL SAFE');

-- Privileges: nobody but the administrator writes tenant_members.
SET LOCAL ROLE regress_tn_app;
SELECT throws_ok($$INSERT INTO crm_security.tenant_members (tenant_id, user_id) VALUES ('t-std', 'me')$$, '42501', NULL, 'PUBLIC cannot insert');
SELECT throws_ok($$UPDATE crm_security.tenant_members SET role = 'superadmin'$$, '42501', NULL, 'PUBLIC cannot update');
SELECT throws_ok($$DELETE FROM crm_security.tenant_members$$, '42501', NULL, 'PUBLIC cannot delete');
SELECT throws_ok($$SELECT crm_security.add_tenant_member('t-std', 'me', 'superadmin')$$, '42501', NULL, 'PUBLIC cannot call add_tenant_member');
SELECT throws_ok($$SELECT * FROM crm_security.tenants$$, '42501', NULL, 'PUBLIC cannot read tenants');

-- Reading under tenant isolation: nothing without a context; a member sees their own row;
-- an admin (crm:users:read through client_admin) all of their tenant's, never another's.
SELECT is((SELECT count(*)::int FROM crm_security.tenant_members), 0, 'no context: no membership visible');
SELECT lives_ok($$SELECT crm_security.set_claim_context(pg_temp.tok('{"sub": "u2"}'))$$, 'context of u2 (client_admin of t-pro)');
SELECT is((SELECT array_agg(user_id ORDER BY user_id) FROM crm_security.tenant_members), '{u1,u2}'::text[],
          'an admin of t-pro sees its members');
SELECT lives_ok($$SELECT crm_security.set_claim_context(pg_temp.tok('{"sub": "s1"}'))$$, 'context of s1 (member of t-std)');
SELECT is((SELECT array_agg(tenant_id || ':' || user_id) FROM crm_security.tenant_members), '{t-std:s1}'::text[],
          'a member without crm:users:read sees only their own row');
SELECT lives_ok($$SELECT crm_security.set_claim_context(pg_temp.tok('{"sub": "u1", "tenant_id": "t-std", "permissions": ["crm:users:read"]}'))$$, 'context of u1 with a t-std tenant claim');
SELECT is((SELECT count(*)::int FROM crm_security.tenant_members WHERE tenant_id <> 't-std'), 0,
          'a token of another tenant, even with crm:users:read, sees no other tenant''s members');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
