-- Record-level access inside a tenant (API.md section 7): each level alone and combined,
-- the manager hierarchy, read and write sharing, expiry, companies, the manage bypass, no
-- leak across tenants, changes seen by the next statement, bad input, and the policies
-- recorded in the isolation registry.
BEGIN;
SELECT plan(78);

CREATE ROLE regress_rec_app NOSUPERUSER NOBYPASSRLS;
\ir include/tap_state.sql
SELECT pg_temp.grant_tap_state('regress_rec_app');
SELECT crm_security.add_jwt_key('regress_rec', 'HS256', 'regress-record-secret-0123456789abcdef0123');
CREATE FUNCTION pg_temp.ctx(sub text, tenant text, extra jsonb DEFAULT '{}') RETURNS boolean LANGUAGE sql AS $$
    SELECT crm_security.set_claim_context(crm_security.jwt_sign(
        jsonb_build_object('sub', sub, 'tenant_id', tenant, 'exp', extract(epoch FROM now())::bigint + 600) || extra,
        'regress-record-secret-0123456789abcdef0123', 'HS256')) IS NOT NULL
$$;

CREATE TABLE public.deals (id int PRIMARY KEY, tenant_id text NOT NULL, owner_id text NOT NULL,
                           company text, title text);
CREATE INDEX ON public.deals (tenant_id, owner_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.deals TO regress_rec_app;
CREATE TABLE public.notes (id text PRIMARY KEY, tenant_id text NOT NULL, owner_id text NOT NULL);
CREATE INDEX ON public.notes (tenant_id);
GRANT SELECT ON public.notes TO regress_rec_app;

-- Tenant a: vp <- mgr1 <- rep1, rep2; vp <- mgr2 <- rep3.  Tenant b: another "rep1".
INSERT INTO public.deals VALUES
    (1, 'a', 'vp', 'acme', 'vp deal'), (2, 'a', 'mgr1', 'acme', 'mgr1 deal'), (3, 'a', 'rep1', 'acme', 'rep1 deal'),
    (4, 'a', 'rep2', 'acme', 'rep2 deal'), (5, 'a', 'mgr2', 'acme', 'mgr2 deal'), (6, 'a', 'rep3', 'acme', 'rep3 deal'),
    (7, 'a', 'rep1', 'globex', 'rep1 globex deal'), (8, 'b', 'rep1', 'acme', 'b rep1 deal'), (9, 'b', 'boss', 'acme', 'b boss deal');
CREATE FUNCTION pg_temp.ids() RETURNS int[] LANGUAGE sql AS $$
    SELECT COALESCE(array_agg(id ORDER BY id), '{}') FROM public.deals
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;
INSERT INTO public.notes VALUES ('n1', 'a', 'rep1'), ('n2', 'a', 'rep2');

SELECT throws_ok($$SELECT crm_security.enable_record_access('public.deals', 'owner_id', 'company')$$, '55000',
    'table "public.deals" is not under tenant isolation', 'record access needs tenant isolation first');
SELECT crm_security.enable_tenant_isolation('public.deals');
SELECT crm_security.enable_tenant_isolation('public.notes');
SELECT lives_ok($$SELECT crm_security.enable_record_access('public.deals', 'owner_id', 'company')$$,
    'enable_record_access on an isolated table');
SELECT crm_security.enable_record_access('public.notes', 'owner_id');
SELECT is((SELECT count(*) FROM crm_security.isolation_report()), 0::bigint,
    'isolation_report is empty: the composed policies are recorded in the registry');
SELECT is((SELECT count(*) FROM pg_policy WHERE polrelid = 'public.deals'::regclass AND NOT polpermissive), 0::bigint,
    'no restrictive policy at all: the record rules are inside the permissive ones');
SELECT ok((SELECT pg_get_expr(polqual, polrelid) FROM pg_policy
            WHERE polrelid = 'public.deals'::regclass AND polname = 'crm_tenant_select')
          LIKE '%accessible_owner_ids(''read''%shared_record_ids(%companies()%',
    'the select policy compares with accessible_owner_ids, shared_record_ids and companies');

SELECT crm_security.set_manager('a', 'mgr1', 'vp');
SELECT crm_security.set_manager('a', 'mgr2', 'vp');
SELECT crm_security.set_manager('a', 'rep1', 'mgr1');
SELECT crm_security.set_manager('a', 'rep2', 'mgr1');
SELECT crm_security.set_manager('a', 'rep3', 'mgr2');
SELECT crm_security.set_manager('b', 'rep1', 'boss');
SELECT crm_security.grant_company(t, u, 'acme')
  FROM (VALUES ('a'), ('b')) t(t), unnest('{vp,mgr1,mgr2,rep1,rep2,rep3,boss}'::text[]) u;

SET ROLE regress_rec_app;

-- level 1 alone: own records
SELECT ok(pg_temp.ctx('rep1', 'a'), 'rep1 of tenant a');
SELECT is(pg_temp.ids(), '{3}', 'a rep sees their own records (in the companies they act for)');
SELECT is(crm_security.accessible_owner_ids(), '{rep1}', 'accessible_owner_ids: the user alone');
SELECT is(crm_security.accessible_owner_ids('write'), '{rep1}', 'write: the user alone');
-- level 3: hierarchy
SELECT ok(pg_temp.ctx('mgr1', 'a'), 'mgr1');
SELECT is(pg_temp.ids(), '{2,3,4}', 'a manager sees their subordinates'' records and not their peers''');
SELECT ok(pg_temp.ctx('vp', 'a'), 'vp');
SELECT is(pg_temp.ids(), '{1,2,3,4,5,6}', 'a VP sees the whole subtree');
SELECT is(crm_security.accessible_owner_ids(), '{mgr1,mgr2,rep1,rep2,rep3,vp}', 'the VP''s owners');
SELECT ok(pg_temp.ctx('mgr2', 'a'), 'mgr2');
SELECT is(pg_temp.ids(), '{5,6}', 'the other manager sees their own subtree only');
-- tenants: the same user id in two tenants
SELECT ok(pg_temp.ctx('rep1', 'b'), 'rep1 of tenant b');
SELECT is(pg_temp.ids(), '{8}', 'the same user id in tenant b sees tenant b''s record only');
SELECT ok(pg_temp.ctx('boss', 'b'), 'boss of tenant b');
SELECT is(pg_temp.ids(), '{8,9}', 'the hierarchy of tenant b is its own');
SELECT is(crm_security.accessible_owner_ids(), '{boss,rep1}', 'tenant b''s rep1 is below boss, tenant a''s is not counted');
-- level 5: companies
SELECT ok(pg_temp.ctx('rep1', 'a'), 'rep1 again');
SELECT is(crm_security.companies(), '{acme}', 'companies()');
SELECT is(pg_temp.ids(), '{3}', 'a record of a company the user may not act for is hidden');
RESET ROLE;
SELECT crm_security.grant_company('a', 'rep1', 'globex');
SET ROLE regress_rec_app;
SELECT is(pg_temp.ids(), '{3,7}', 'after grant_company the record is seen (next statement, same transaction)');
SELECT is(crm_security.companies(), '{acme,globex}', 'companies() after the grant');
-- level 4: a shared record, read and write
RESET ROLE;
SELECT crm_security.share_record('public.deals', '4', 'a', 'rep1');
SET ROLE regress_rec_app;
SELECT is(pg_temp.ids(), '{3,4,7}', 'a record shared for reading is seen');
SELECT is(crm_security.shared_record_ids('public.deals'), '{4}', 'shared_record_ids()');
SELECT ok(crm_security.can_access_record('public.deals', '4', 'rep2', 'read'), 'can_access_record: shared for reading');
SELECT ok(NOT crm_security.can_access_record('public.deals', '4', 'rep2', 'write'), 'can_access_record: not for writing');
SELECT ok(NOT crm_security.can_access_record('public.deals', '5', 'mgr2'), 'can_access_record: a peer''s record');
SELECT ok(crm_security.can_access_record('public.deals', '3', 'rep1', 'write'), 'can_access_record: an own record for writing');
UPDATE public.deals SET title = 'changed' WHERE id = 4;
SELECT is((SELECT title FROM public.deals WHERE id = 4), 'rep2 deal', 'a record shared for reading is not updated');
RESET ROLE;
SELECT crm_security.share_record('public.deals', '4', 'a', 'rep1', 'write');
SET ROLE regress_rec_app;
UPDATE public.deals SET title = 'changed' WHERE id = 4;
SELECT is((SELECT title FROM public.deals WHERE id = 4), 'changed', 'a record shared for writing is updated');
SELECT throws_ok($$INSERT INTO public.deals VALUES (10, 'a', 'rep2', 'acme', 'x')$$, '42501', NULL,
    'a record owned by someone the user may not write for is not inserted');
SELECT lives_ok($$INSERT INTO public.deals VALUES (10, 'a', 'rep1', 'acme', 'x')$$, 'an own record is inserted');
SELECT throws_ok($$UPDATE public.deals SET owner_id = 'rep3' WHERE id = 10$$, '42501', NULL,
    'a record is not given to an owner the user may not write for');
-- expiry
RESET ROLE;
UPDATE crm_security.shared_records SET expires_at = now() - interval '1 second' WHERE record_id = '4';
SET ROLE regress_rec_app;
SELECT is(pg_temp.ids(), '{3,7,10}', 'an expired share shows nothing');
RESET ROLE;
SELECT crm_security.unshare_record('public.deals', '4', 'a', 'rep1');
SELECT is((SELECT count(*) FROM crm_security.shared_records), 0::bigint, 'unshare_record removes the share');
-- level 4: sharing rules between teams
SELECT crm_security.add_team_member('a', 'east', 'rep3');
SELECT crm_security.add_team_member('a', 'west', 'rep1');
SELECT crm_security.add_sharing_rule('a', 'east', 'west');
SET ROLE regress_rec_app;
SELECT is(pg_temp.ids(), '{3,6,7,10}', 'a sharing rule shares the records of the owner team''s members');
SELECT is(crm_security.accessible_owner_ids('write'), '{rep1}', 'a read rule gives no write access');
RESET ROLE;
SELECT crm_security.add_sharing_rule('a', 'east', 'west', 'write');
SET ROLE regress_rec_app;
SELECT is(crm_security.accessible_owner_ids('write'), '{rep1,rep3}', 'a write rule gives write access');
RESET ROLE;
SELECT crm_security.remove_team_member('a', 'west', 'rep1');
SET ROLE regress_rec_app;
SELECT is(pg_temp.ids(), '{3,7,10}', 'a team change is seen by the next statement');
-- a record shared with a team
RESET ROLE;
SELECT crm_security.add_team_member('a', 'west', 'rep1');
SELECT crm_security.remove_sharing_rule('a', 'east', 'west');
SELECT crm_security.share_record_with_team('public.deals', '5', 'a', 'west');
SET ROLE regress_rec_app;
SELECT is(pg_temp.ids(), '{3,5,7,10}', 'a record shared with a team of the user is seen');
-- a table without a company column, with a text key
SELECT is((SELECT array_agg(id ORDER BY id) FROM public.notes), '{n1}', 'record access on a second table');
-- the manage permission bypasses the record rules, inside the tenant only
SELECT ok(pg_temp.ctx('rep2', 'a', '{"permissions": ["crm:deals:manage"]}'), 'rep2 with crm:deals:manage');
SELECT is(pg_temp.ids(), '{1,2,3,4,5,6,7,10}', 'the table''s manage permission bypasses the record rules');
SELECT is((SELECT array_agg(id ORDER BY id) FROM public.notes), '{n2}', 'but only for that table');
SELECT ok(pg_temp.ctx('rep2', 'b', '{"permissions": ["crm:*:manage"]}'), 'a wildcard manage permission in tenant b');
SELECT is(pg_temp.ids(), '{8,9}', 'the bypass stays inside the tenant');
-- no context, no user
SELECT lives_ok('SELECT crm_security.clear_claim_context()', 'no context');
SELECT is(pg_temp.ids(), '{}', 'no context: no record');
SELECT is(crm_security.accessible_owner_ids(), '{}', 'no context: no owner');
SELECT is(crm_security.companies(), '{}', 'no context: no company');
SELECT ok(NOT crm_security.can_access_record('public.deals', '3', 'rep1'), 'no context: can_access_record is false');
-- the record access tables are isolated and not readable by PUBLIC
SELECT throws_ok('SELECT count(*) FROM crm_security.reports_to', '42501', NULL, 'reports_to is not readable by PUBLIC');
SELECT throws_ok($$SELECT crm_security.set_manager('a', 'rep1', 'rep2')$$, '42501', NULL,
    'management functions are not executable by PUBLIC');
RESET ROLE;
SELECT is((SELECT array_agg(DISTINCT relation::text ORDER BY relation::text) FROM crm_security.isolated_tables
            WHERE system AND relation::text <> 'crm_security.tenant_members'),
    '{crm_security.reports_to,crm_security.shared_records,crm_security.sharing_rules,crm_security.team_members,crm_security.teams,crm_security.user_companies}',
    'the six tables are under tenant isolation, registered as system');

-- bad input
SELECT throws_ok($$SELECT crm_security.accessible_owner_ids('admin')$$, '22023', 'unknown access level', 'unknown access level');
SELECT is(crm_security.accessible_owner_ids(NULL), NULL, 'NULL access level: NULL (matches nothing)');
SELECT ok(NOT crm_security.can_access_record(NULL, '1', 'x'), 'can_access_record(NULL ...) is false');
SELECT throws_ok($$SELECT crm_security.set_manager(NULL, 'a', 'b')$$, '22023', NULL, 'NULL tenant');
SELECT throws_ok($$SELECT crm_security.set_manager('a', '', 'b')$$, '22023', NULL, 'empty user');
SELECT throws_ok($$SELECT crm_security.set_manager('a', repeat('x', 100000), 'b')$$, '22023', NULL, 'huge user id');
SELECT throws_ok($$SELECT crm_security.set_manager('a', 'vp', 'rep3')$$, '23514', NULL, 'a cycle is refused');
SELECT throws_ok($$SELECT crm_security.set_manager('a', 'vp', 'vp')$$, '23514', NULL, 'a self-manager is refused');
SELECT throws_ok($$SELECT crm_security.add_sharing_rule('a', 'east', 'nowhere')$$, '42704', NULL, 'unknown team');
SELECT throws_ok($$SELECT crm_security.add_sharing_rule('a', 'east', 'west', 'delete')$$, '22023', 'unknown access level', 'unknown access level in a rule');
SELECT throws_ok($$SELECT crm_security.share_record('public.deals', '3', 'a', 'rep2', 'own')$$, '22023', NULL, 'unknown access level in a share');
SELECT throws_ok($$SELECT crm_security.share_record('public.deals', '3', 'a', 'rep2', 'read', now() - interval '1 day')$$,
    '22023', 'expiry is in the past', 'a share that has expired already is refused');
SELECT throws_ok($$SELECT crm_security.share_record('crm_security.isolated_tables', '3', 'a', 'rep2')$$, '55000', NULL,
    'a share of a table without record access is refused');
SELECT throws_ok($$SELECT crm_security.share_record('public.deals', '8', 'a', 'rep2')$$, '42704', NULL,
    'a share of a record of another tenant is refused');
SELECT throws_ok($$SELECT crm_security.share_record('public.deals', 'not-a-number', 'a', 'rep2')$$, '42704', NULL,
    'a share of a key that cannot exist is refused');
SELECT throws_ok($$SELECT crm_security.enable_record_access('public.deals', 'nope')$$, '42703', NULL, 'unknown owner column');
SELECT throws_ok($$SELECT crm_security.enable_record_access('public.deals', 'id')$$, '22023', NULL, 'an owner column that is not text');

-- a policy edited by hand is reported
ALTER POLICY crm_tenant_select ON public.deals USING (tenant_id = crm_security.tenant_id_text());
SELECT ok((SELECT count(*) FROM crm_security.isolation_report() WHERE relation = 'public.deals'::regclass
             AND issue LIKE '%crm_tenant_select differs%') = 1, 'isolation_report catches an edit of a composed policy');
SELECT crm_security.enable_record_access('public.deals', 'owner_id', 'company');
SELECT is((SELECT count(*) FROM crm_security.isolation_report()), 0::bigint, 'enable_record_access restores it');
SELECT crm_security.disable_record_access('public.notes');
SELECT ok((SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = 'public.notes'::regclass
            AND polname = 'crm_tenant_select') NOT LIKE '%accessible%'
          AND (SELECT count(*) FROM crm_security.isolation_report()) = 0, 'disable_record_access leaves tenant isolation alone');

SELECT * FROM finish();
ROLLBACK;
