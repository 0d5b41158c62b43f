-- has_permission, has_any_permission and has_all_permissions answer for the array they are
-- given, whatever they answered before at the same call site: PL/pgSQL reuses expression
-- state across loop iterations and calls, prepared statements reuse plans, SQL functions
-- are inlined or not.  (docs/security.md, finding 2: the granted list was cached per call site once the
-- argument looked stable, and eve got true.)
BEGIN;
SELECT plan(37);

-- The reproduction of the issue: a PL/pgSQL wrapper called for three rows.
CREATE FUNCTION pg_temp.chk(p text[], r text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RETURN crm_security.has_permission(p, r);
END $$;
SELECT results_eq(
    $$SELECT name, pg_temp.chk(perms, 'crm:deals:delete')
        FROM (VALUES ('a', '{*}'::text[]), ('b', '{*}'), ('eve', '{}')) u(name, perms)$$,
    $$VALUES ('a', true), ('b', true), ('eve', false)$$,
    'plpgsql wrapper, three rows: eve (no permissions) gets false');
SELECT results_eq(
    $$SELECT name, pg_temp.chk(perms, 'crm:deals:delete')
        FROM (VALUES ('a', '{crm:deals:manage}'::text[]), ('b', '{crm:deals:manage}'), ('c', '{crm:deals:manage}'),
                     ('eve', '{crm:deals:read}'), ('f', '{crm:*:delete}'), ('g', '{crm:contacts:delete}')) u(name, perms)$$,
    $$VALUES ('a', true), ('b', true), ('c', true), ('eve', false), ('f', true), ('g', false)$$,
    'plpgsql wrapper: the answer follows each row''s array, patterns and exact grants alike');
-- The wrapper again, in later statements of the same transaction (the expression state lives on).
SELECT ok(pg_temp.chk('{*}', 'crm:deals:delete'), 'plpgsql wrapper, a later call: {*} is granted');
SELECT ok(pg_temp.chk('{*}', 'crm:deals:delete'), '... again');
SELECT ok(NOT pg_temp.chk('{}', 'crm:deals:delete'), '... then {} is not');
SELECT ok(NOT pg_temp.chk('{crm:deals:read}', 'crm:deals:delete'), '... nor {crm:deals:read}');
SELECT ok(pg_temp.chk('{crm:deals:delete}', 'crm:deals:delete'), '... and {crm:deals:delete} is');

-- has_any_permission and has_all_permissions in the same shape.
CREATE FUNCTION pg_temp.chk_any(p text[], r text[]) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RETURN crm_security.has_any_permission(p, r);
END $$;
CREATE FUNCTION pg_temp.chk_all(p text[], r text[]) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RETURN crm_security.has_all_permissions(p, r);
END $$;
SELECT results_eq(
    $$SELECT name, pg_temp.chk_any(perms, '{crm:deals:delete,crm:users:manage}')
        FROM (VALUES ('a', '{*}'::text[]), ('b', '{*}'), ('c', '{*}'), ('eve', '{}'), ('mallory', '{crm:deals:read}')) u(name, perms)$$,
    $$VALUES ('a', true), ('b', true), ('c', true), ('eve', false), ('mallory', false)$$,
    'has_any_permission in a plpgsql wrapper: eve and mallory get false');
SELECT results_eq(
    $$SELECT name, pg_temp.chk_all(perms, '{crm:deals:delete,crm:deals:read}')
        FROM (VALUES ('a', '{*}'::text[]), ('b', '{*}'), ('c', '{*}'), ('eve', '{}'), ('mallory', '{crm:deals:read}')) u(name, perms)$$,
    $$VALUES ('a', true), ('b', true), ('c', true), ('eve', false), ('mallory', false)$$,
    'has_all_permissions in a plpgsql wrapper: eve and mallory get false');
SELECT ok(NOT pg_temp.chk_any('{}', '{crm:deals:delete}'), 'has_any_permission wrapper, a later call with {}: false');
SELECT ok(NOT pg_temp.chk_all('{}', '{crm:deals:delete}'), 'has_all_permissions wrapper, a later call with {}: false');
SELECT ok(pg_temp.chk_all('{}', '{}'), 'has_all_permissions of nothing is still true');

-- A PL/pgSQL loop over arrays: one call site, many values.
CREATE FUNCTION pg_temp.loop_check(lists text[][], r text) RETURNS boolean[] LANGUAGE plpgsql AS $$
DECLARE
    one text[];
    res boolean[] := '{}';
BEGIN
    FOREACH one SLICE 1 IN ARRAY lists LOOP
        res := res || crm_security.has_permission(one, r);
    END LOOP;
    RETURN res;
END $$;
SELECT is(pg_temp.loop_check('{{*,x},{*,x},{*,x},{y,x},{crm:deals:delete,x},{crm:deals:read,x}}', 'crm:deals:delete'),
          '{t,t,t,f,t,f}'::boolean[], 'plpgsql FOREACH loop: every iteration answers for its own array');
CREATE FUNCTION pg_temp.loop_any_all(r text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    lists text[] := '{{*},{*},{*},{crm:deals:read},{crm:deals:delete}}';
    i int;
    res text := '';
BEGIN
    FOR i IN 1 .. 5 LOOP
        res := res || crm_security.has_any_permission(lists[i:i][1:1], r)::text::char(1)
                   || crm_security.has_all_permissions(lists[i:i][1:1], r)::text::char(1) || ' ';
    END LOOP;
    RETURN res;
END $$;
SELECT is(pg_temp.loop_any_all('{crm:deals:delete,crm:deals:read}'), 'tt tt tt tf tf ',
          'plpgsql FOR loop: has_any_permission / has_all_permissions per iteration');
-- A loop that builds a new (grown) array each time, and one that shrinks it.
CREATE FUNCTION pg_temp.grow(r text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    g text[] := '{}';
    res text := '';
    p text;
BEGIN
    FOREACH p IN ARRAY '{a:a,b:b,*,c:c}'::text[] LOOP
        res := res || crm_security.has_permission(g, r)::text::char(1);
        g := g || p;
    END LOOP;
    res := res || crm_security.has_permission(g, r)::text::char(1);
    WHILE pg_catalog.cardinality(g) > 0 LOOP
        g := g[1:pg_catalog.cardinality(g) - 1];
        res := res || crm_security.has_permission(g, r)::text::char(1);
    END LOOP;
    RETURN res;
END $$;
SELECT is(pg_temp.grow('x:y'), 'ffftttfff', 'plpgsql: an array that grows and shrinks in place is judged afresh each time');

-- The same call site with a NULL array after a non-NULL one (the functions are strict).
SELECT is(pg_temp.chk('{*}', 'crm:deals:delete'), true, 'wrapper with {*}: true');
SELECT is(pg_temp.chk(NULL, 'crm:deals:delete'), NULL, '... then NULL: NULL, never true');
SELECT is(pg_temp.chk_any(NULL, '{crm:deals:delete}'), NULL, 'has_any_permission wrapper with NULL: NULL');
SELECT is(pg_temp.chk_all(NULL, '{crm:deals:delete}'), NULL, 'has_all_permissions wrapper with NULL: NULL');
SELECT results_eq(
    $$SELECT name, pg_temp.chk(perms, 'crm:deals:delete')
        FROM (VALUES ('a', '{*}'::text[]), ('b', '{*}'), ('n', NULL), ('eve', '{}')) u(name, perms)$$,
    $$VALUES ('a', true), ('b', true), ('n', NULL::boolean), ('eve', false)$$,
    'rows with a NULL array between others');

-- Prepared statements: custom plans, then the generic plan after five executions.
PREPARE pg_temp_q(text[]) AS SELECT crm_security.has_permission($1, 'crm:deals:delete');
PREPARE pg_temp_q_any(text[]) AS SELECT crm_security.has_any_permission($1, '{crm:deals:delete}');
PREPARE pg_temp_q_all(text[]) AS SELECT crm_security.has_all_permissions($1, '{crm:deals:delete}');
CREATE FUNCTION pg_temp.run_prepared(stmt text, arr text[]) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE res boolean;
BEGIN
    EXECUTE pg_catalog.format('EXECUTE %I(%L)', stmt, arr) INTO res;
    RETURN res;
END $$;
SELECT is((SELECT string_agg(pg_temp.run_prepared('pg_temp_q', '{*}')::text::char(1), '' ORDER BY g)
             FROM generate_series(1, 7) g), 'ttttttt', 'prepared statement: seven executions with {*}');
SELECT is(pg_temp.run_prepared('pg_temp_q', '{}'), false, '... then {} (generic plan): false');
SELECT is(pg_temp.run_prepared('pg_temp_q', '{crm:deals:read}'), false, '... then {crm:deals:read}: false');
SELECT is(pg_temp.run_prepared('pg_temp_q', NULL), NULL, '... then NULL: NULL');
SELECT is(pg_temp.run_prepared('pg_temp_q', '{crm:deals:*}'), true, '... then {crm:deals:*}: true');
SELECT is((SELECT string_agg(pg_temp.run_prepared('pg_temp_q_any', '{*}')::text::char(1), '' ORDER BY g)
             FROM generate_series(1, 7) g) || pg_temp.run_prepared('pg_temp_q_any', '{}')::text::char(1),
          'tttttttf', 'prepared has_any_permission: {} after seven {*}: false');
SELECT is((SELECT string_agg(pg_temp.run_prepared('pg_temp_q_all', '{*}')::text::char(1), '' ORDER BY g)
             FROM generate_series(1, 7) g) || pg_temp.run_prepared('pg_temp_q_all', '{}')::text::char(1),
          'tttttttf', 'prepared has_all_permissions: {} after seven {*}: false');
SET LOCAL plan_cache_mode = force_generic_plan;
PREPARE pg_temp_q2(text[]) AS SELECT crm_security.has_permission($1, 'crm:deals:delete');
SELECT is(pg_temp.run_prepared('pg_temp_q2', '{*}')::text || pg_temp.run_prepared('pg_temp_q2', '{*}')::text
          || pg_temp.run_prepared('pg_temp_q2', '{}')::text, 'truetruefalse', 'forced generic plan: {} after {*}: false');
-- A prepared statement over rows, with a parameter among the arrays.
PREPARE pg_temp_q3(text[]) AS
    SELECT string_agg(crm_security.has_permission(p, 'crm:deals:delete')::text::char(1), '' ORDER BY o)
      FROM (VALUES (1, $1), (2, '{*}'::text[]), (3, $1), (4, '{}'::text[])) v(o, p);
SELECT results_eq($$EXECUTE pg_temp_q3('{}')$$, $$VALUES ('ftff'::text)$$, 'prepared over rows, $1 = {}');
SELECT results_eq($$EXECUTE pg_temp_q3('{*}')$$, $$VALUES ('tttf'::text)$$, 'prepared over rows, $1 = {*}');
RESET plan_cache_mode;
DEALLOCATE pg_temp_q;
DEALLOCATE pg_temp_q_any;
DEALLOCATE pg_temp_q_all;
DEALLOCATE pg_temp_q2;
DEALLOCATE pg_temp_q3;

-- SQL functions: inlined, and not inlined (SECURITY DEFINER and a SET clause prevent it).
CREATE FUNCTION pg_temp.sql_inl(p text[], r text) RETURNS boolean LANGUAGE sql AS $$
    SELECT crm_security.has_permission(p, r)
$$;
CREATE FUNCTION pg_temp.sql_noinl(p text[], r text) RETURNS boolean LANGUAGE sql
    SET search_path = pg_catalog, pg_temp AS $$
    SELECT crm_security.has_permission(p, r)
$$;
CREATE FUNCTION pg_temp.sql_noinl_any(p text[], r text[]) RETURNS boolean LANGUAGE sql
    SET search_path = pg_catalog, pg_temp AS $$
    SELECT crm_security.has_any_permission(p, r) AND crm_security.has_all_permissions(p, r)
$$;
SELECT results_eq(
    $$SELECT name, pg_temp.sql_inl(perms, 'crm:deals:delete')
        FROM (VALUES ('a', '{*}'::text[]), ('b', '{*}'), ('c', '{*}'), ('eve', '{}')) u(name, perms)$$,
    $$VALUES ('a', true), ('b', true), ('c', true), ('eve', false)$$,
    'inlined SQL function: eve gets false');
SELECT results_eq(
    $$SELECT name, pg_temp.sql_noinl(perms, 'crm:deals:delete')
        FROM (VALUES ('a', '{*}'::text[]), ('b', '{*}'), ('c', '{*}'), ('eve', '{}')) u(name, perms)$$,
    $$VALUES ('a', true), ('b', true), ('c', true), ('eve', false)$$,
    'SQL function that is not inlined: eve gets false');
SELECT results_eq(
    $$SELECT name, pg_temp.sql_noinl_any(perms, '{crm:deals:delete}')
        FROM (VALUES ('a', '{*}'::text[]), ('b', '{*}'), ('c', '{*}'), ('eve', '{}')) u(name, perms)$$,
    $$VALUES ('a', true), ('b', true), ('c', true), ('eve', false)$$,
    'SQL function that is not inlined, has_any/has_all_permissions: eve gets false');

-- The ordinary per-row shapes still answer right: a constant array probed per row (the
-- prepared set), and a column that changes per row.
CREATE TEMP TABLE hz_req (id int, req text);
INSERT INTO hz_req SELECT g, CASE WHEN g % 3 = 0 THEN 'crm:deals:delete' WHEN g % 3 = 1 THEN 'crm:notes:read' ELSE 'x:y:z' END
  FROM generate_series(1, 30) g;
SELECT is((SELECT count(*) FROM hz_req WHERE crm_security.has_permission('{crm:deals:manage,crm:notes:*}', req)), 20::bigint,
          'a constant array probed per row: 20 of 30 rows');
SELECT is((SELECT count(*) FROM hz_req
            WHERE crm_security.has_permission(CASE WHEN id % 2 = 0 THEN '{*}'::text[] ELSE '{}'::text[] END, req)),
          15::bigint, 'an array that alternates per row: only the rows with {*}');
SELECT is((SELECT count(*) FROM hz_req
            WHERE crm_security.has_permission(CASE WHEN id <= 10 THEN '{*}'::text[] ELSE '{}'::text[] END, req)),
          10::bigint, 'an array that stays the same for ten rows, then changes: the set is rebuilt');
SELECT is((SELECT count(*) FROM hz_req
            WHERE crm_security.has_all_permissions(CASE WHEN id <= 10 THEN '{*}'::text[] ELSE '{x:y:z}'::text[] END, ARRAY[req])),
          17::bigint, 'has_all_permissions with an array that changes after ten rows');

SELECT * FROM finish();
ROLLBACK;
