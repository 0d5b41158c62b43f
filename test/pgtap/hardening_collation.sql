-- Tenant isolation of text tenant columns under a nondeterministic (case-insensitive)
-- collation: tenant 't1' must not see, change or create rows of tenant 'T1', and
-- isolation_report() names such columns.  (docs/security.md, finding 6: the policies compared with the
-- column's collation, under which 'T1' = 't1'.)  Deterministic collations other than the
-- default (and domains over them) compare bytewise already and keep their plain policies.
BEGIN;
SELECT EXISTS (SELECT FROM pg_collation WHERE collprovider = 'i') AS have_icu \gset
\if :have_icu
SELECT plan(38);

CREATE COLLATION public.regress_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE COLLATION public.regress_icu_det (provider = icu, locale = 'und');
CREATE DOMAIN public.regress_tenant_ci AS text COLLATE public.regress_ci;
CREATE DOMAIN public.regress_tenant_ci_vc AS varchar(64) COLLATE public.regress_ci;
CREATE DOMAIN public.regress_tenant_det AS text COLLATE public.regress_icu_det;
SELECT ok('T1' = 't1' COLLATE public.regress_ci, 'the collation is case-insensitive: ''T1'' = ''t1''');

CREATE ROLE regress_coll_app NOSUPERUSER NOBYPASSRLS;
-- reviewer and superadmin contexts below read across tenants through these roles (API.md section 4)
GRANT crm_security_reviewer, crm_security_superadmin TO regress_coll_app;
\ir include/tap_state.sql
SELECT pg_temp.grant_tap_state('regress_coll_app');
SELECT crm_security.add_jwt_key('regress_coll', 'HS256', 'regress-collation-secret-0123456789abcdef');
CREATE FUNCTION pg_temp.ctx(claims jsonb) RETURNS boolean LANGUAGE sql AS $$
    SELECT crm_security.set_claim_context(
        crm_security.jwt_sign(claims || jsonb_build_object('exp', extract(epoch FROM now())::bigint + 600),
                              'regress-collation-secret-0123456789abcdef', 'HS256')) IS NOT NULL
$$;
-- A query's row count as text, or the SQLSTATE it raised.
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE q;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n::text;
EXCEPTION WHEN OTHERS THEN
    RETURN 'error ' || SQLSTATE;
END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pg_temp TO PUBLIC;

CREATE SCHEMA regress_coll;
GRANT USAGE ON SCHEMA regress_coll TO regress_coll_app;
-- One table per shape of tenant column; the same rows in each.
CREATE TABLE regress_coll.ci_text (id int PRIMARY KEY, tenant_id text COLLATE public.regress_ci NOT NULL, secret text);
CREATE TABLE regress_coll.ci_varchar (id int PRIMARY KEY, tenant_id varchar(64) COLLATE public.regress_ci NOT NULL, secret text);
CREATE TABLE regress_coll.ci_domain (id int PRIMARY KEY, tenant_id public.regress_tenant_ci NOT NULL, secret text);
CREATE TABLE regress_coll.ci_domain_vc (id int PRIMARY KEY, tenant_id public.regress_tenant_ci_vc NOT NULL, secret text);
CREATE TABLE regress_coll.ci_strict (id int PRIMARY KEY, tenant_id text COLLATE public.regress_ci NOT NULL, secret text);
CREATE TABLE regress_coll.det_text (id int PRIMARY KEY, tenant_id text COLLATE public.regress_icu_det NOT NULL, secret text);
CREATE TABLE regress_coll.det_domain (id int PRIMARY KEY, tenant_id public.regress_tenant_det NOT NULL, secret text);
CREATE TABLE regress_coll.ci_parted (id int, tenant_id text COLLATE public.regress_ci NOT NULL, secret text)
    PARTITION BY LIST (id);
CREATE TABLE regress_coll.ci_parted_1 PARTITION OF regress_coll.ci_parted FOR VALUES IN (1, 2, 3);
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ci_text', 'ci_varchar', 'ci_domain', 'ci_domain_vc', 'ci_strict', 'det_text', 'det_domain', 'ci_parted'] LOOP
        EXECUTE format('CREATE INDEX ON regress_coll.%I (tenant_id)', t);
        EXECUTE format($q$INSERT INTO regress_coll.%I VALUES (1, 'T1', 'secret of T1'), (2, 't1', 'row of t1'), (3, 'T2', 'secret of T2')$q$, t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON regress_coll.%I TO regress_coll_app', t);
    END LOOP;
END $$;
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_coll.ci_parted_1 TO regress_coll_app;

-- Before isolation: the report names the nondeterministic columns.
CREATE TEMP TABLE rep0 AS
SELECT relation::text AS rel, issue FROM crm_security.isolation_report() WHERE relation::text LIKE 'regress_coll.%';
SELECT is((SELECT array_agg(rel ORDER BY rel) FROM rep0 WHERE issue LIKE 'tenant column has the nondeterministic collation %'),
          '{regress_coll.ci_domain,regress_coll.ci_domain_vc,regress_coll.ci_parted,regress_coll.ci_parted_1,regress_coll.ci_strict,regress_coll.ci_text,regress_coll.ci_varchar}'::text[],
          'isolation_report flags every tenant column with a nondeterministic collation (domains and partitions included), and no other');
SELECT ok((SELECT bool_and(issue LIKE '%policies compare tenants that differ only in case or accents as equal%') FROM rep0
            WHERE issue LIKE 'tenant column has the nondeterministic collation %'),
          '... as a column whose policies do not tell T1 from t1');

SELECT crm_security.enable_tenant_isolation(('regress_coll.' || t)::regclass)
  FROM unnest(ARRAY['ci_text', 'ci_varchar', 'ci_domain', 'ci_domain_vc', 'det_text', 'det_domain', 'ci_parted']) t;
SELECT crm_security.enable_tenant_isolation('regress_coll.ci_strict', cross_tenant => false);

SET LOCAL ROLE regress_coll_app;
SELECT ok(pg_temp.ctx('{"sub": "u1", "tenant_id": "t1"}'), 'a context of tenant t1');
-- Reading.
SELECT is((SELECT array_agg(tenant_id::text COLLATE "C" ORDER BY id) FROM regress_coll.ci_text), '{t1}'::text[], 'ci text: t1 sees only its own row, not T1''s');
SELECT is((SELECT array_agg(tenant_id::text COLLATE "C" ORDER BY id) FROM regress_coll.ci_varchar), '{t1}'::text[], 'ci varchar: only t1''s row');
SELECT is((SELECT array_agg(tenant_id::text COLLATE "C" ORDER BY id) FROM regress_coll.ci_domain), '{t1}'::text[], 'domain over ci text: only t1''s row');
SELECT is((SELECT array_agg(tenant_id::text COLLATE "C" ORDER BY id) FROM regress_coll.ci_domain_vc), '{t1}'::text[], 'domain over ci varchar: only t1''s row');
SELECT is((SELECT array_agg(tenant_id::text COLLATE "C" ORDER BY id) FROM regress_coll.ci_strict), '{t1}'::text[], 'ci text, cross_tenant => false: only t1''s row');
SELECT is((SELECT array_agg(tenant_id::text COLLATE "C" ORDER BY id) FROM regress_coll.ci_parted), '{t1}'::text[], 'ci partitioned table: only t1''s row');
SELECT is((SELECT array_agg(tenant_id::text COLLATE "C" ORDER BY id) FROM regress_coll.ci_parted_1), '{t1}'::text[], '... and its partition queried directly');
SELECT is((SELECT array_agg(tenant_id::text COLLATE "C" ORDER BY id) FROM regress_coll.det_text), '{t1}'::text[], 'deterministic ICU collation: only t1''s row');
SELECT is((SELECT array_agg(tenant_id::text COLLATE "C" ORDER BY id) FROM regress_coll.det_domain), '{t1}'::text[], 'domain over a deterministic collation: only t1''s row');
SELECT is((SELECT count(*) FROM regress_coll.ci_text WHERE secret = 'secret of T1'), 0::bigint, 'asking for T1''s row by its content finds nothing');
-- Writing.
SELECT is(pg_temp.outcome($$INSERT INTO regress_coll.ci_text VALUES (10, 'T1', 'planted')$$), 'error 42501',
          'ci text: t1 cannot insert a row of tenant T1');
SELECT is(pg_temp.outcome($$INSERT INTO regress_coll.ci_strict VALUES (10, 'T1', 'planted')$$), 'error 42501',
          'ci text, cross_tenant => false: nor here');
SELECT is(pg_temp.outcome($$INSERT INTO regress_coll.ci_domain VALUES (10, 'T1', 'planted')$$), 'error 42501',
          'domain over ci text: nor here');
SELECT is(pg_temp.outcome($$INSERT INTO regress_coll.ci_parted VALUES (3, 'T1', 'planted')$$), 'error 42501',
          'ci partitioned table: nor here');
SELECT is(pg_temp.outcome($$INSERT INTO regress_coll.ci_text VALUES (11, 't1', 'mine')$$), '1', 't1 inserts its own rows');
SELECT is(pg_temp.outcome($$UPDATE regress_coll.ci_text SET secret = 'overwritten' WHERE id = 1$$), '0', 'ci text: T1''s row cannot be updated by t1');
SELECT is(pg_temp.outcome($$UPDATE regress_coll.ci_text SET tenant_id = 'T1' WHERE id = 2$$), 'error 42501', 'ci text: t1 cannot move its row to T1');
SELECT is(pg_temp.outcome($$DELETE FROM regress_coll.ci_text WHERE id = 1$$), '0', 'ci text: T1''s row cannot be deleted by t1');
SELECT is(pg_temp.outcome($$DELETE FROM regress_coll.ci_strict WHERE id = 1$$), '0', 'ci text, cross_tenant => false: nor here');
SELECT is(pg_temp.outcome($$UPDATE regress_coll.ci_varchar SET secret = 'overwritten' WHERE id = 1$$), '0', 'ci varchar: T1''s row cannot be updated by t1');
-- The other tenant and the cross-tenant roles.
SELECT ok(pg_temp.ctx('{"sub": "u2", "tenant_id": "T1"}'), 'a context of tenant T1');
SELECT is((SELECT array_agg(secret ORDER BY id) FROM regress_coll.ci_text), '{"secret of T1"}'::text[], 'T1 sees its row, unchanged, and not t1''s');
SELECT ok(pg_temp.ctx('{"sub": "u3", "tenant_id": "t1", "role": "reviewer"}'), 'a reviewer');
SELECT is((SELECT count(*) FROM regress_coll.ci_text), 4::bigint, 'the reviewer still reads every tenant');
SELECT is(pg_temp.outcome($$INSERT INTO regress_coll.ci_text VALUES (12, 't1', 'x')$$), 'error 42501', '... and writes nothing');
SELECT ok(pg_temp.ctx('{"sub": "u4", "tenant_id": "t1", "role": "superadmin"}'), 'a superadmin');
SELECT is(pg_temp.outcome($$UPDATE regress_coll.ci_text SET secret = secret$$), '4', 'the superadmin still writes every tenant');
RESET ROLE;

-- After isolation: the report still names the columns, now for what the policies cannot fix.
CREATE TEMP TABLE rep1 AS
SELECT relation::text AS rel, issue FROM crm_security.isolation_report() WHERE relation::text LIKE 'regress_coll.%';
SELECT is((SELECT array_agg(rel ORDER BY rel) FROM rep1 WHERE issue LIKE 'tenant column has the nondeterministic collation %'),
          '{regress_coll.ci_domain,regress_coll.ci_domain_vc,regress_coll.ci_parted,regress_coll.ci_parted_1,regress_coll.ci_strict,regress_coll.ci_text,regress_coll.ci_varchar}'::text[],
          'after enable_tenant_isolation the nondeterministic columns are still flagged');
SELECT ok((SELECT bool_and(issue LIKE '%the policies compare bytewise, but unique keys%') FROM rep1
            WHERE issue LIKE 'tenant column has the nondeterministic collation %'),
          '... for unique keys and joins only: the policies compare bytewise');
SELECT ok(NOT EXISTS (SELECT FROM rep1 WHERE rel LIKE 'regress_coll.det%'), 'the deterministic columns are not flagged at all');

-- Policies written by hand (or by an earlier version) that compare with the column's collation.
DROP POLICY crm_tenant_select ON regress_coll.ci_text;
CREATE POLICY crm_tenant_select ON regress_coll.ci_text FOR SELECT USING (tenant_id = crm_security.tenant_id_text());
SELECT ok(EXISTS (SELECT FROM crm_security.isolation_report()
                   WHERE relation = 'regress_coll.ci_text'::regclass
                     AND issue LIKE 'tenant column has the nondeterministic collation "regress_ci": its policies compare tenants that differ only in case or accents as equal%'),
          'a policy comparing under the nondeterministic collation is flagged as such');
SET LOCAL ROLE regress_coll_app;
SELECT ok(pg_temp.ctx('{"sub": "u1", "tenant_id": "t1"}'), 'tenant t1 again');
SELECT is((SELECT count(*) FROM regress_coll.ci_text WHERE secret = 'secret of T1'), 1::bigint,
          '(that policy does let t1 read T1''s row: what the report is for)');
RESET ROLE;
SELECT crm_security.enable_tenant_isolation('regress_coll.ci_text');
SET LOCAL ROLE regress_coll_app;
SELECT is((SELECT count(*) FROM regress_coll.ci_text WHERE secret = 'secret of T1'), 0::bigint,
          'enable_tenant_isolation again replaces it');
RESET ROLE;

SELECT * FROM finish();
\else
SELECT plan(1);
SELECT skip('this server has no ICU collations', 1);
SELECT * FROM finish();
\endif
ROLLBACK;
