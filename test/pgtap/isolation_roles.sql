-- Isolation policies that mean the same on every node (API.md section 4, DESIGN.md "Policies
-- that mean the same on every node"): no restrictive policy anywhere; members evaluate the
-- tenant equality alone (ordered index scans kept); cross-tenant access needs both the
-- database role (crm_security_reviewer, crm_security_superadmin) and the context's role;
-- a table in the form of 0.1.0 is reported and moved by enable_tenant_isolation; record
-- access and tenant_members follow the same model.
BEGIN;
SELECT plan(92);

CREATE ROLE regress_roles_app NOSUPERUSER NOBYPASSRLS;      -- members' connection
CREATE ROLE regress_roles_staff NOSUPERUSER NOBYPASSRLS;    -- both cross-tenant roles
CREATE ROLE regress_roles_rev NOSUPERUSER NOBYPASSRLS;      -- the reviewer role only
CREATE ROLE regress_roles_sup NOSUPERUSER NOBYPASSRLS;      -- the superadmin role only
GRANT crm_security_reviewer, crm_security_superadmin TO regress_roles_staff;
GRANT crm_security_reviewer TO regress_roles_rev;
GRANT crm_security_superadmin TO regress_roles_sup;
\ir include/tap_state.sql
SELECT pg_temp.grant_tap_state('regress_roles_app', 'regress_roles_staff', 'regress_roles_rev', 'regress_roles_sup');
SELECT crm_security.add_jwt_key('regress_roles', 'HS256', 'regress-roles-secret-0123456789abcdef0123');
CREATE FUNCTION pg_temp.ctx(claims jsonb) RETURNS boolean LANGUAGE sql AS $$
    SELECT crm_security.set_claim_context(crm_security.jwt_sign(
        claims || jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600),
        'regress-roles-secret-0123456789abcdef0123', 'HS256')) IS NOT NULL
$$;
-- Rows read as a role under a context: sorted ids, or the SQLSTATE.
CREATE FUNCTION pg_temp.read_as(r name, claims jsonb, q text DEFAULT 'SELECT id FROM regress_roles.deals')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE res text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    IF claims IS NOT NULL THEN
        PERFORM pg_temp.ctx(claims);
    END IF;
    EXECUTE format('SELECT coalesce(string_agg(id::text, '','' ORDER BY id), '''') FROM (%s) s', q) INTO res;
    PERFORM crm_security.clear_claim_context();
    RESET ROLE;
    RETURN res;
EXCEPTION WHEN OTHERS THEN
    RESET ROLE;
    RETURN 'error ' || SQLSTATE;
END $$;
-- A write as a role under a context: the row count, or the SQLSTATE.
CREATE FUNCTION pg_temp.write_as(r name, claims jsonb, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    PERFORM pg_temp.ctx(claims);
    EXECUTE q;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM crm_security.clear_claim_context();
    RESET ROLE;
    RETURN n::text;
EXCEPTION WHEN OTHERS THEN
    RESET ROLE;
    RETURN 'error ' || SQLSTATE;
END $$;
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; result text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP result := result || line || E'\n'; END LOOP;
    RETURN result;
END $$;
CREATE FUNCTION pg_temp.issues(tbl text) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(r.issue ORDER BY r.issue), '{}') FROM crm_security.isolation_report() r
     WHERE r.relation::text = tbl
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;

-- the roles: created by CREATE EXTENSION, NOLOGIN, granted by nobody but the administrator
SELECT is((SELECT array_agg(rolname::text || ':' || rolcanlogin ORDER BY rolname) FROM pg_roles
            WHERE rolname IN ('crm_security_reviewer', 'crm_security_superadmin')),
          '{crm_security_reviewer:false,crm_security_superadmin:false}', 'both roles exist, NOLOGIN');
SELECT is((SELECT count(*)::int FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
            WHERE r.rolname IN ('crm_security_reviewer', 'crm_security_superadmin')
              AND m.member NOT IN ('regress_roles_staff'::regrole, 'regress_roles_rev'::regrole, 'regress_roles_sup'::regrole)), 0,
          'the extension grants them to nobody');

-- the extension's own tables: no restrictive policy anywhere after install
SELECT is_empty($$SELECT polrelid::regclass, polname FROM pg_policy WHERE NOT polpermissive$$,
                'after CREATE EXTENSION no policy in the database is restrictive');
SELECT is_empty($$SELECT 1 FROM pg_policy WHERE polname = 'crm_members_own_or_admin'$$,
                'tenant_members has no restrictive crm_members_own_or_admin any more');
SELECT ok((SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = 'crm_security.tenant_members'::regclass
            AND polname = 'crm_tenant_select') LIKE '%tenant_id = crm_security.tenant_id_text()%user_id = crm_security.user_id()%can(''crm:users:read''%',
          'its condition is inside the permissive member policy');
SELECT ok(NOT EXISTS (SELECT 1 FROM crm_security.isolated_tables r, jsonb_array_elements(r.policies) x
                       WHERE NOT (x.value->>'permissive')::boolean
                          OR (x.value->>'name')::name = ANY (crm_security._isolation_legacy_policy_names())),
          'the registry records no restrictive and no 0.1.0 policy for the extension''s tables');

-- a table of 200 tenants, isolated with the defaults
CREATE SCHEMA regress_roles;
GRANT USAGE ON SCHEMA regress_roles TO PUBLIC;
CREATE TABLE regress_roles.deals (id int PRIMARY KEY, tenant_id uuid NOT NULL, title text);
INSERT INTO regress_roles.deals
SELECT i, ('00000000-0000-0000-0000-' || lpad((i % 200)::text, 12, '0'))::uuid, 'd' || i FROM generate_series(1, 20000) i;
CREATE INDEX ON regress_roles.deals (tenant_id, id);
ANALYZE regress_roles.deals;
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_roles.deals
   TO regress_roles_app, regress_roles_staff, regress_roles_rev, regress_roles_sup;
SELECT crm_security.enable_tenant_isolation('regress_roles.deals');
SELECT crm_security.enable_tenant_isolation('regress_roles.deals');
\set t7 '{"sub": "u7", "tenant_id": "00000000-0000-0000-0000-000000000007"}'
\set t8 '{"sub": "u8", "tenant_id": "00000000-0000-0000-0000-000000000008"}'

-- the policies
SELECT is((SELECT array_agg(polname::text || ' ' || polcmd::text || ' ' || polroles::regrole[]::text || ' ' || polpermissive
                            ORDER BY polname) FROM pg_policy WHERE polrelid = 'regress_roles.deals'::regclass),
          ARRAY['crm_tenant_delete d {-} true', 'crm_tenant_insert a {-} true', 'crm_tenant_reviewer_select r {crm_security_reviewer} true',
                'crm_tenant_select r {-} true', 'crm_tenant_superadmin * {crm_security_superadmin} true', 'crm_tenant_update w {-} true'],
          'six permissive policies: four TO PUBLIC, one TO each cross-tenant role (twice enabled: no duplicate)');
SELECT is((SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = 'regress_roles.deals'::regclass AND polname = 'crm_tenant_select'),
          '(tenant_id = crm_security.tenant_id_uuid())', 'members read with the tenant equality alone');
SELECT ok((SELECT bool_and(pg_get_expr(coalesce(polqual, polwithcheck), polrelid) ~ '^\(?tenant_id =\s+CASE\s+WHEN \(crm_security\.app_role\(\) IS DISTINCT FROM ''reviewer''::text\) THEN crm_security\.tenant_id_uuid\(\)\s+ELSE NULL::uuid\s+END\)?$'
                    AND (polwithcheck IS NULL OR pg_get_expr(polwithcheck, polrelid) = pg_get_expr(coalesce(polqual, polwithcheck), polrelid)))
             FROM pg_policy WHERE polrelid = 'regress_roles.deals'::regclass AND polname IN ('crm_tenant_insert', 'crm_tenant_update', 'crm_tenant_delete')),
          'members write with one equality too, whose value is NULL in a reviewer''s context');
SELECT is((SELECT pg_get_expr(polqual, polrelid) || ' / ' || coalesce(pg_get_expr(polwithcheck, polrelid), '-') FROM pg_policy
            WHERE polrelid = 'regress_roles.deals'::regclass AND polname = 'crm_tenant_reviewer_select'),
          '(crm_security.app_role() = ''reviewer''::text) / -', 'the reviewer policy: the context''s role, reading only');
SELECT is((SELECT pg_get_expr(polqual, polrelid) || ' / ' || pg_get_expr(polwithcheck, polrelid) FROM pg_policy
            WHERE polrelid = 'regress_roles.deals'::regclass AND polname = 'crm_tenant_superadmin'),
          '(crm_security.app_role() = ''superadmin''::text) / (crm_security.app_role() = ''superadmin''::text)',
          'the superadmin policy: the context''s role, everything');
-- the registry records that set
SELECT is((SELECT array_agg((x.value->>'name') || ' ' || (x.value->>'permissive') || ' ' || (x.value->'roles')::text ORDER BY x.value->>'name')
             FROM crm_security.isolated_tables r, jsonb_array_elements(r.policies) x WHERE r.relation = 'regress_roles.deals'::regclass),
          ARRAY['crm_tenant_delete true ["public"]', 'crm_tenant_insert true ["public"]',
                'crm_tenant_reviewer_select true ["crm_security_reviewer"]', 'crm_tenant_select true ["public"]',
                'crm_tenant_superadmin true ["crm_security_superadmin"]', 'crm_tenant_update true ["public"]'],
          'the registry records the six policies');
SELECT is(pg_temp.issues('regress_roles.deals'), '{}'::text[], 'and the report is empty');

-- "the newest 20 of my tenant" reads the index in order on a member's connection
SET LOCAL ROLE regress_roles_app;
SELECT ok(pg_temp.ctx(:'t7'), 'member of tenant 7');
SELECT matches(pg_temp.plan_of('SELECT * FROM regress_roles.deals ORDER BY id DESC LIMIT 20'),
               'Index Scan Backward using deals_tenant_id_id_idx', 'the newest 20 of my tenant: an ordered index scan');
SELECT doesnt_match(pg_temp.plan_of('SELECT * FROM regress_roles.deals ORDER BY id DESC LIMIT 20'), 'Sort|BitmapOr|Seq Scan',
                    'no sort, no BitmapOr, no sequential scan');
SELECT results_eq('SELECT id FROM regress_roles.deals ORDER BY id DESC LIMIT 3', ARRAY[19807, 19607, 19407], 'the newest rows of tenant 7');
SELECT matches(pg_temp.plan_of($$UPDATE regress_roles.deals SET title = 'x' WHERE id > 19000$$), 'Index Cond: \(+tenant_id = ',
               'writes use the tenant index too');
SELECT crm_security.clear_claim_context();
RESET ROLE;

-- members: their tenant only, whatever the role claim says
SELECT is(pg_temp.read_as('regress_roles_app', '{"sub": "x"}'), '', 'no tenant: no rows');
SELECT is(pg_temp.read_as('regress_roles_app', :'t7', 'SELECT count(*) AS id FROM regress_roles.deals'), '100', 'a member reads its 100 rows');
SELECT is(pg_temp.read_as('regress_roles_app', :'t7'::jsonb || '{"role": "superadmin"}', 'SELECT count(*) AS id FROM regress_roles.deals'), '100',
          'a token saying superadmin on a connection without the database role reads its tenant only');
SELECT is(pg_temp.write_as('regress_roles_app', :'t7'::jsonb || '{"role": "superadmin"}',
                           $$UPDATE regress_roles.deals SET title = 'x' WHERE id IN (7, 8)$$), '1',
          '... and writes its tenant only');
SELECT is(pg_temp.write_as('regress_roles_app', :'t7'::jsonb || '{"role": "superadmin"}',
                           $$INSERT INTO regress_roles.deals VALUES (30008, '00000000-0000-0000-0000-000000000008', 'planted')$$), 'error 42501',
          '... and inserts into no other tenant');
SELECT is(pg_temp.read_as('regress_roles_app', :'t7'::jsonb || '{"role": "reviewer"}', 'SELECT count(*) AS id FROM regress_roles.deals'), '100',
          'a token saying reviewer on a connection without the database role reads its tenant only');
SELECT is(pg_temp.write_as('regress_roles_app', :'t7'::jsonb || '{"role": "reviewer"}',
                           $$UPDATE regress_roles.deals SET title = 'x' WHERE id = 7$$), '0', '... and writes nothing, not even there');
SELECT is(pg_temp.read_as('regress_roles_app', '{"sub": "s", "role": "superadmin"}'), '', 'a superadmin token without a tenant: no rows');

-- the staff connection (both database roles)
SELECT is(pg_temp.read_as('regress_roles_staff', '{"sub": "r", "role": "reviewer"}', 'SELECT count(*) AS id FROM regress_roles.deals'), '20000',
          'database role and token role reviewer: every tenant');
SELECT is(pg_temp.write_as('regress_roles_staff', '{"sub": "r", "role": "reviewer"}', $$UPDATE regress_roles.deals SET title = 'x'$$), '0',
          'the reviewer updates nothing');
SELECT is(pg_temp.write_as('regress_roles_staff', :'t7'::jsonb || '{"role": "reviewer"}', $$UPDATE regress_roles.deals SET title = 'x' WHERE id = 7$$), '0',
          'not even in its own tenant');
SELECT is(pg_temp.write_as('regress_roles_staff', '{"sub": "r", "role": "reviewer"}', 'DELETE FROM regress_roles.deals'), '0',
          'the reviewer deletes nothing');
SELECT is(pg_temp.write_as('regress_roles_staff', :'t7'::jsonb || '{"role": "reviewer"}',
                           $$INSERT INTO regress_roles.deals VALUES (30007, '00000000-0000-0000-0000-000000000007', 'r')$$), 'error 42501',
          'the reviewer inserts nothing');
SELECT is(pg_temp.read_as('regress_roles_staff', '{"sub": "s", "role": "superadmin"}', 'SELECT count(*) AS id FROM regress_roles.deals'), '20000',
          'database role and token role superadmin: every tenant');
SELECT is(pg_temp.write_as('regress_roles_staff', '{"sub": "s", "role": "superadmin"}',
                           $$UPDATE regress_roles.deals SET title = title WHERE id IN (7, 8)$$), '2', 'the superadmin updates every tenant');
SELECT is(pg_temp.write_as('regress_roles_staff', '{"sub": "s", "role": "superadmin"}',
                           $$INSERT INTO regress_roles.deals VALUES (30001, '00000000-0000-0000-0000-000000000001', 's')$$), '1',
          'and inserts anywhere');
SELECT is(pg_temp.write_as('regress_roles_staff', '{"sub": "s", "role": "superadmin"}', 'DELETE FROM regress_roles.deals WHERE id = 30001'), '1',
          'and deletes anywhere');
-- hostile: the database role with a member's token, or a role claim that is not exactly right
SELECT is(pg_temp.read_as('regress_roles_staff', :'t7'::jsonb || '{"role": "client_user"}', 'SELECT count(*) AS id FROM regress_roles.deals'), '100',
          'the database roles with a member''s token: its tenant only');
SELECT is(pg_temp.write_as('regress_roles_staff', :'t7'::jsonb || '{"role": "client_admin"}',
                           $$INSERT INTO regress_roles.deals VALUES (30008, '00000000-0000-0000-0000-000000000008', 'planted')$$), 'error 42501',
          'and writes into no other tenant');
SELECT is(pg_temp.write_as('regress_roles_staff', :'t7'::jsonb || '{"role": "client_admin"}', $$UPDATE regress_roles.deals SET title = 'x' WHERE id = 8$$), '0',
          'nor updates another tenant');
SELECT is(pg_temp.read_as('regress_roles_staff', '{"sub": "x"}'), '', 'the database roles without a context''s tenant or role: nothing');
SELECT is(pg_temp.read_as('regress_roles_staff', '{"sub": "x", "role": null}'), '', 'a NULL role claim: nothing');
SELECT is(pg_temp.read_as('regress_roles_staff', '{"sub": "x", "role": ""}'), '', 'an empty role claim: nothing');
SELECT is(pg_temp.read_as('regress_roles_staff', '{"sub": "x", "role": "Superadmin"}'), '', 'another case: nothing');
SELECT is(pg_temp.read_as('regress_roles_staff', '{"sub": "x", "role": " reviewer"}'), '', 'a padded role: nothing');
SELECT is(pg_temp.read_as('regress_roles_staff', '{"sub": "x", "role": ["superadmin"]}'), '', 'an array role: nothing');
SELECT is(pg_temp.read_as('regress_roles_staff', '{"sub": "x", "role": {"name": "superadmin"}}'), '', 'an object role: nothing');
SELECT is(pg_temp.read_as('regress_roles_staff', '{"sub": "x", "role": "reviewer,superadmin"}'), '', 'a list in a string: nothing');
SELECT is(pg_temp.read_as('regress_roles_staff', NULL), '', 'no context at all: nothing');
-- one role each
SELECT is(pg_temp.read_as('regress_roles_rev', :'t7'::jsonb || '{"role": "superadmin"}', 'SELECT count(*) AS id FROM regress_roles.deals'), '100',
          'the reviewer''s database role with a superadmin token: its tenant only');
SELECT is(pg_temp.read_as('regress_roles_sup', :'t7'::jsonb || '{"role": "reviewer"}', 'SELECT count(*) AS id FROM regress_roles.deals'), '100',
          'the superadmin''s database role with a reviewer token: its tenant only');
SELECT is(pg_temp.write_as('regress_roles_sup', :'t7'::jsonb || '{"role": "reviewer"}', $$UPDATE regress_roles.deals SET title = 'x'$$), '0',
          'and writes nothing');
SELECT is(pg_temp.write_as('regress_roles_rev', :'t7'::jsonb || '{"role": "superadmin"}', $$UPDATE regress_roles.deals SET title = 'x' WHERE id = 8$$), '0',
          'the reviewer''s database role with a superadmin token writes no other tenant');

-- cross_tenant => false: the four member policies only, nobody reads across tenants
SELECT crm_security.enable_tenant_isolation('regress_roles.deals', cross_tenant => false);
SELECT is((SELECT count(*)::int FROM pg_policy WHERE polrelid = 'regress_roles.deals'::regclass), 4, 'cross_tenant => false: four policies');
SELECT is(pg_temp.read_as('regress_roles_staff', :'t8'::jsonb || '{"role": "superadmin"}', 'SELECT count(*) AS id FROM regress_roles.deals'), '100',
          'the superadmin with the database role reads its own tenant only');
SELECT is(pg_temp.write_as('regress_roles_staff', :'t8'::jsonb || '{"role": "reviewer"}', $$UPDATE regress_roles.deals SET title = 'x'$$), '0',
          'a reviewer still writes nothing');
SELECT is(pg_temp.issues('regress_roles.deals'), '{}'::text[], 'the report is empty');
SELECT crm_security.enable_tenant_isolation('regress_roles.deals');

-- missing roles: a clear error, before anything changes
ALTER ROLE crm_security_reviewer RENAME TO regress_roles_renamed;
SELECT throws_ok($$SELECT crm_security.enable_tenant_isolation('regress_roles.deals')$$, '42704',
                 'role "crm_security_reviewer" or "crm_security_superadmin" does not exist', 'a missing role is named');
SELECT lives_ok($$SELECT crm_security.enable_tenant_isolation('regress_roles.deals', cross_tenant => false)$$,
                'cross_tenant => false needs neither role');
ALTER ROLE regress_roles_renamed RENAME TO crm_security_reviewer;
SELECT crm_security.enable_tenant_isolation('regress_roles.deals');

-- a table isolated in the form of 0.1.0 (its seven policies, as 0.1.0 created and recorded them)
CREATE TABLE regress_roles.old (id int PRIMARY KEY, tenant_id text NOT NULL, title text);
CREATE INDEX ON regress_roles.old (tenant_id, id);
INSERT INTO regress_roles.old SELECT i, 't' || (i % 200), 'o' || i FROM generate_series(1, 20000) i;
ANALYZE regress_roles.old;
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_roles.old TO regress_roles_app, regress_roles_staff;
SELECT crm_security.enable_tenant_isolation('regress_roles.old');
DO $$
DECLARE p name;
BEGIN
    FOR p IN SELECT polname FROM pg_policy WHERE polrelid = 'regress_roles.old'::regclass LOOP
        EXECUTE format('DROP POLICY %I ON regress_roles.old', p);
    END LOOP;
END $$;
CREATE POLICY crm_tenant_select ON regress_roles.old AS PERMISSIVE FOR SELECT TO PUBLIC
    USING (tenant_id = crm_security.tenant_id_text() OR tenant_id >= CASE WHEN crm_security.app_role() = ANY ('{reviewer,superadmin}'::text[]) THEN ''::text END);
CREATE POLICY crm_tenant_insert ON regress_roles.old AS PERMISSIVE FOR INSERT TO PUBLIC
    WITH CHECK (tenant_id = crm_security.tenant_id_text() OR crm_security.app_role() = 'superadmin');
CREATE POLICY crm_tenant_update ON regress_roles.old AS PERMISSIVE FOR UPDATE TO PUBLIC
    USING (tenant_id = crm_security.tenant_id_text() OR tenant_id >= CASE WHEN crm_security.app_role() = 'superadmin' THEN ''::text END)
    WITH CHECK (tenant_id = crm_security.tenant_id_text() OR crm_security.app_role() = 'superadmin');
CREATE POLICY crm_tenant_delete ON regress_roles.old AS PERMISSIVE FOR DELETE TO PUBLIC
    USING (tenant_id = crm_security.tenant_id_text() OR tenant_id >= CASE WHEN crm_security.app_role() = 'superadmin' THEN ''::text END);
CREATE POLICY crm_tenant_reviewer_no_insert ON regress_roles.old AS RESTRICTIVE FOR INSERT TO PUBLIC
    WITH CHECK (crm_security.app_role() IS DISTINCT FROM 'reviewer');
CREATE POLICY crm_tenant_reviewer_no_update ON regress_roles.old AS RESTRICTIVE FOR UPDATE TO PUBLIC
    USING (crm_security.app_role() IS DISTINCT FROM 'reviewer');
CREATE POLICY crm_tenant_reviewer_no_delete ON regress_roles.old AS RESTRICTIVE FOR DELETE TO PUBLIC
    USING (crm_security.app_role() IS DISTINCT FROM 'reviewer');
UPDATE crm_security.isolated_tables SET policies = crm_security._isolation_policies(relation, false)
 WHERE relation = 'regress_roles.old'::regclass;
-- what the old form allowed: a token's claim alone reads every tenant
SELECT is(pg_temp.read_as('regress_roles_app', '{"sub": "s", "role": "superadmin"}', 'SELECT count(*) AS id FROM regress_roles.old'), '20000',
          'old form: a superadmin token on a member''s connection reads every tenant');
SET LOCAL ROLE regress_roles_app;
SELECT ok(pg_temp.ctx('{"sub": "u", "tenant_id": "t3"}') AND pg_temp.plan_of('SELECT * FROM regress_roles.old ORDER BY id DESC LIMIT 20') ~ 'Sort',
          'old form: the newest 20 of a tenant sort the tenant''s rows');
SELECT crm_security.clear_claim_context();
RESET ROLE;
SELECT is(pg_temp.issues('regress_roles.old'),
          ARRAY['restrictive policy crm_tenant_reviewer_no_delete: Citus propagates restrictive policies to its shards as permissive, where it widens what the isolation policies allow instead of narrowing it; compose its condition into permissive policies',
                'restrictive policy crm_tenant_reviewer_no_insert: Citus propagates restrictive policies to its shards as permissive, where it widens what the isolation policies allow instead of narrowing it; compose its condition into permissive policies',
                'restrictive policy crm_tenant_reviewer_no_update: Citus propagates restrictive policies to its shards as permissive, where it widens what the isolation policies allow instead of narrowing it; compose its condition into permissive policies',
                'tenant isolation is in the form of crm_security 0.1.0 (cross-tenant access by a token''s role claim alone, and restrictive policies, which Citus makes permissive): run enable_tenant_isolation again to move it to the current form'],
          'isolation_report flags the old form and each restrictive policy');
-- re-enabling moves it
SELECT lives_ok($$SELECT crm_security.enable_tenant_isolation('regress_roles.old')$$, 'enable_tenant_isolation on the old form');
SELECT is(pg_temp.issues('regress_roles.old'), '{}'::text[], 'the report is empty once moved');
SELECT is((SELECT array_agg(polname::text ORDER BY polname) FROM pg_policy WHERE polrelid = 'regress_roles.old'::regclass),
          '{crm_tenant_delete,crm_tenant_insert,crm_tenant_reviewer_select,crm_tenant_select,crm_tenant_superadmin,crm_tenant_update}',
          'the policies of the current form, the restrictive ones gone');
SELECT is((SELECT array_agg(x.value->>'name' ORDER BY x.value->>'name') FROM crm_security.isolated_tables r, jsonb_array_elements(r.policies) x
            WHERE r.relation = 'regress_roles.old'::regclass),
          '{crm_tenant_delete,crm_tenant_insert,crm_tenant_reviewer_select,crm_tenant_select,crm_tenant_superadmin,crm_tenant_update}',
          'and the registry records them');
SELECT is(pg_temp.read_as('regress_roles_app', '{"sub": "s", "role": "superadmin"}', 'SELECT count(*) AS id FROM regress_roles.old'), '0',
          'moved: the superadmin token alone reads nothing');
SELECT is(pg_temp.read_as('regress_roles_staff', '{"sub": "s", "role": "superadmin"}', 'SELECT count(*) AS id FROM regress_roles.old'), '20000',
          'moved: with the database role, every tenant');
SET LOCAL ROLE regress_roles_app;
SELECT ok(pg_temp.ctx('{"sub": "u", "tenant_id": "t3"}') AND pg_temp.plan_of('SELECT * FROM regress_roles.old ORDER BY id DESC LIMIT 20') !~ 'Sort',
          'moved: the newest 20 of a tenant sort nothing');
SELECT crm_security.clear_claim_context();
RESET ROLE;
-- disable_tenant_isolation removes the old form's policies too
CREATE POLICY crm_tenant_reviewer_no_delete ON regress_roles.old AS RESTRICTIVE FOR DELETE TO PUBLIC
    USING (crm_security.app_role() IS DISTINCT FROM 'reviewer');
SELECT ok('tenant isolation is in the form of crm_security 0.1.0 (cross-tenant access by a token''s role claim alone, and restrictive policies, which Citus makes permissive): run enable_tenant_isolation again to move it to the current form'
          = ANY (pg_temp.issues('regress_roles.old')), 'one policy of the old form is enough to be flagged');
SELECT crm_security.disable_tenant_isolation('regress_roles.old');
SELECT is_empty($$SELECT 1 FROM pg_policy WHERE polrelid = 'regress_roles.old'::regclass$$,
                'disable_tenant_isolation drops the old form''s policies too');
-- a restrictive policy of the application is reported
CREATE POLICY deals_narrow ON regress_roles.deals AS RESTRICTIVE FOR DELETE USING (crm_security.can('crm:deals:delete'));
SELECT is(pg_temp.issues('regress_roles.deals'),
          ARRAY['restrictive policy deals_narrow: Citus propagates restrictive policies to its shards as permissive, where it widens what the isolation policies allow instead of narrowing it; compose its condition into permissive policies'],
          'a restrictive policy added to an isolated table is reported');
DROP POLICY deals_narrow ON regress_roles.deals;

-- tenant_members: the same meaning as the restrictive policy it replaces
SELECT crm_security.add_tenant('tm-a', 'A');
SELECT crm_security.add_tenant('tm-b', 'B');
SELECT crm_security.add_tenant_member('tm-a', 'ann', 'client_user');
SELECT crm_security.add_tenant_member('tm-a', 'abe', 'client_user');
SELECT crm_security.add_tenant_member('tm-b', 'bea', 'client_user');
CREATE FUNCTION pg_temp.members(r name, claims jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE res text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    PERFORM pg_temp.ctx(claims);
    SELECT coalesce(string_agg(user_id, ',' ORDER BY user_id), '') INTO res FROM crm_security.tenant_members;
    PERFORM crm_security.clear_claim_context();
    RESET ROLE;
    RETURN res;
END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;
SELECT is(pg_temp.members('regress_roles_app', '{"sub": "ann"}'), 'ann', 'a member reads their own membership');
SELECT is(pg_temp.members('regress_roles_app', '{"sub": "ann", "permissions": ["crm:users:read"]}'), 'abe,ann',
          'with crm:users:read, their tenant''s memberships');
SELECT is(pg_temp.members('regress_roles_app', '{"sub": "ann", "role": "superadmin", "permissions": ["*"]}'), 'abe,ann',
          'a superadmin token on a member''s connection: their tenant''s only');
SELECT is(pg_temp.members('regress_roles_staff', '{"sub": "rev", "role": "reviewer", "permissions": ["crm:*:read"]}'), 'abe,ann,bea',
          'a reviewer with the database role and crm:users:read: every tenant''s');
SELECT is(pg_temp.members('regress_roles_staff', '{"sub": "rev", "role": "reviewer"}'), '',
          'a reviewer without crm:users:read: none that are not their own, as before');
SELECT is(pg_temp.members('regress_roles_staff', '{"sub": "sam", "role": "superadmin", "permissions": ["*"]}'), 'abe,ann,bea',
          'a superadmin with the database role and the permission: every tenant''s');

-- record access composes into the same model
CREATE TABLE regress_roles.rec (id int, tenant_id text NOT NULL, owner_id text NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE INDEX ON regress_roles.rec (tenant_id, owner_id);
INSERT INTO regress_roles.rec VALUES (1, 'ra', 'u1'), (2, 'ra', 'u2'), (3, 'rb', 'u1');
INSERT INTO regress_roles.rec SELECT i, 'rc' || (i % 50), 'o' || (i % 97) FROM generate_series(10, 20000) i;
ANALYZE regress_roles.rec;
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_roles.rec TO regress_roles_app, regress_roles_staff;
SELECT crm_security.enable_tenant_isolation('regress_roles.rec');
SELECT crm_security.enable_record_access('regress_roles.rec', 'owner_id');
SELECT is_empty($$SELECT polrelid::regclass, polname FROM pg_policy WHERE NOT polpermissive$$,
                'after isolation, record access and tenants: no policy in the database is restrictive');
SELECT is(pg_temp.read_as('regress_roles_app', '{"sub": "u1", "tenant_id": "ra"}', 'SELECT id FROM regress_roles.rec'), '1',
          'record access: a member reads their own records');
SELECT is(pg_temp.read_as('regress_roles_app', '{"sub": "u1", "tenant_id": "ra", "role": "reviewer"}', 'SELECT id FROM regress_roles.rec'), '1',
          'a reviewer token without the database role: the record rules apply');
SELECT is(pg_temp.read_as('regress_roles_staff', '{"sub": "r", "role": "reviewer"}', 'SELECT id FROM regress_roles.rec WHERE id < 10'), '1,2,3',
          'a reviewer with the database role reads every record of every tenant');
SELECT is(pg_temp.write_as('regress_roles_staff', '{"sub": "u1", "tenant_id": "ra", "role": "reviewer"}', $$UPDATE regress_roles.rec SET owner_id = owner_id$$), '0',
          'and writes none, not even their own');
SELECT is(pg_temp.write_as('regress_roles_staff', '{"sub": "s", "role": "superadmin"}', $$UPDATE regress_roles.rec SET owner_id = owner_id WHERE id < 10$$), '3',
          'a superadmin with the database role writes every record');
SELECT is(pg_temp.issues('regress_roles.rec'), '{}'::text[], 'the composed policies are recorded');
-- the tenant is not factored out of the arms (which would check every arm again on every
-- row the index scans return): a bitmap plan without a Filter
SET LOCAL ROLE regress_roles_app;
SELECT ok(pg_temp.ctx('{"sub": "o5", "tenant_id": "rc7"}'), 'a member of a tenant of 400 rows');
SET LOCAL enable_seqscan = off;
SELECT matches(pg_temp.plan_of('SELECT * FROM regress_roles.rec'), 'BitmapOr', 'record access: a BitmapOr of the arms');
SELECT doesnt_match(pg_temp.plan_of('SELECT * FROM regress_roles.rec'), 'Filter:', 'and no per-row filter');
RESET enable_seqscan;
SELECT crm_security.clear_claim_context();
RESET ROLE;

-- new functions: hostile input
SELECT is(crm_security._isolation_row_condition(NULL), NULL, '_isolation_row_condition(NULL)');
SELECT is(crm_security._isolation_row_condition(0), NULL, '_isolation_row_condition of no table');
SELECT is(cardinality(crm_security._isolation_legacy_policy_names()), 3, '_isolation_legacy_policy_names');

-- installing again while the roles exist (another database of the cluster, a restore):
-- they are used as they are, with their members and attributes
ALTER ROLE crm_security_reviewer CONNECTION LIMIT 7;
SET LOCAL client_min_messages = warning;
DROP EXTENSION crm_security CASCADE;
SELECT lives_ok('CREATE EXTENSION crm_security', 'CREATE EXTENSION while the roles exist');
SELECT is((SELECT rolconnlimit FROM pg_roles WHERE rolname = 'crm_security_reviewer'), 7,
          'an existing role is left as the administrator made it');
SELECT ok(pg_has_role('regress_roles_staff', 'crm_security_reviewer', 'MEMBER'), 'with its members');

SELECT * FROM finish();
ROLLBACK;
