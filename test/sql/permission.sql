\set VERBOSITY terse
-- Permission grammar, table-driven: granted, required, expected.
CREATE TEMP TABLE perm_cases (granted text, required text, expected boolean, why text);
INSERT INTO perm_cases VALUES
 ('crm:contacts:read',   'crm:contacts:read',   true,  'equal'),
 ('crm:contacts:read',   'crm:contacts:write',  false, 'other action'),
 ('crm:contacts:read',   'crm:deals:read',      false, 'other resource'),
 ('crm:*:read',          'crm:deals:read',      true,  'wildcard resource'),
 ('crm:*:read',          'crm:deals:delete',    false, 'wildcard resource, other action'),
 ('crm:contacts:*',      'crm:contacts:delete', true,  'wildcard action'),
 ('*:*:*',               'crm:contacts:read',   true,  'all wildcards'),
 ('*:*:*',               'crm:contacts',        false, 'segment count differs'),
 ('*',                   'crm:contacts:read',   true,  'lone star grants everything'),
 ('*',                   'x',                   true,  'lone star, one segment'),
 ('*',                   '*',                   true,  'lone star, literal star'),
 ('crm:*',               'crm:contacts:read',   false, 'star is one segment only'),
 ('crm',                 'crm:contacts:read',   false, 'no prefix matching'),
 ('crm:contacts:read',   'crm:contacts',        false, 'granted longer'),
 ('crm:contacts:manage', 'crm:contacts:read',   true,  'manage implies read'),
 ('crm:contacts:manage', 'crm:contacts:delete', true,  'manage implies delete'),
 ('crm:contacts:manage', 'crm:contacts:manage', true,  'manage equal'),
 ('crm:contacts:manage', 'crm:deals:read',      false, 'manage is per resource'),
 ('crm:manage:read',     'crm:contacts:read',   false, 'manage only in last segment'),
 ('crm:contacts:manage', 'crm:contacts:read:own', false, 'manage keeps the segment count'),
 ('manage',              'read',                false, 'manage needs a resource'),
 ('crm:*:manage',        'crm:deals:export',    true,  'wildcard resource and manage'),
 ('crm:contacts:Manage', 'crm:contacts:read',   false, 'case matters'),
 ('CRM:contacts:read',   'crm:contacts:read',   false, 'case matters'),
 ('crm:contacts:read',   'crm:*:read',          false, 'required star is literal'),
 ('crm:*:read',          'crm:*:read',          true,  'granted star matches literal star'),
 ('crm:contacts:manage', 'crm:contacts:*',      true,  'manage covers the literal star action'),
 ('crm:dea*:read',       'crm:deals:read',      false, 'no partial globs'),
 ('crm:dea*:read',       'crm:dea*:read',       false, 'partial glob is malformed'),
 ('crm:deals:read',      'crm:dea*:read',       false, 'malformed required'),
 ('crm:**:read',         'crm:deals:read',      false, 'double star is malformed'),
 ('',                    '',                    false, 'empty'),
 ('crm:contacts:read',   '',                    false, 'empty required'),
 ('',                    'crm:contacts:read',   false, 'empty granted'),
 ('crm::read',           'crm::read',           false, 'empty segment'),
 (':crm:read',           ':crm:read',           false, 'leading colon'),
 ('crm:read:',           'crm:read:',           false, 'trailing colon'),
 ('crm:*:',              'crm:x:',              false, 'trailing colon with star'),
 ('*:',                  'x:y',                 false, 'star then trailing colon'),
 (':',                   ':',                   false, 'lone colon'),
 ('crm: contacts:read',  'crm: contacts:read',  false, 'space'),
 ('crm:contacts:read ',  'crm:contacts:read',   false, 'trailing space'),
 (' *',                  'crm:contacts:read',   false, 'space before star'),
 (E'crm:contacts:read\n','crm:contacts:read',   false, 'newline'),
 (E'crm:con\ttacts:read',E'crm:con\ttacts:read',false, 'tab'),
 (E'crm:\x01:read',      E'crm:\x01:read',      false, 'control character'),
 (E'crm:\x7f:read',      E'crm:\x7f:read',      false, 'DEL'),
 ('crm:contacts:read',   E'crm:contacts:read\r',false, 'carriage return in required'),
 ('crm:kontakte:lesen',  'crm:kontakte:lesen',  true,  'plain ASCII words'),
 ('crm:kontakté:read',   'crm:kontakté:read',   false, 'non-ASCII is malformed'),
 (E'crm:\u00a0:read',    E'crm:\u00a0:read',    false, 'no-break space'),
 ('crm:contacts:read',   'crm:contacts：read',  false, 'fullwidth colon'),
 ('a.b-c_d/e@f',         'a.b-c_d/e@f',         true,  'punctuation inside a segment'),
 ('a:b:c:d:e:f',         'a:*:c:*:e:f',         false, 'literal stars in required'),
 ('a:*:c:*:e:f',         'a:b:c:d:e:f',         true,  'many segments'),
 ('a:*:c:*:e:manage',    'a:b:c:d:e:f',         true,  'many segments with manage'),
 (repeat('a', 1024),     repeat('a', 1024),     true,  'longest permission'),
 (repeat('a', 1025),     repeat('a', 1025),     false, 'too long'),
 ('*',                   repeat('a', 1025),     false, 'too long required, lone star');
SELECT why, granted, required FROM perm_cases
 WHERE crm_security.permission_matches(granted, required) IS DISTINCT FROM expected
   AND length(granted) < 100;
SELECT count(*) AS cases,
       count(*) FILTER (WHERE crm_security.permission_matches(granted, required) = expected) AS correct
  FROM perm_cases;
-- has_permission agrees with permission_matches on every case
SELECT count(*) AS disagreements FROM perm_cases
 WHERE crm_security.has_permission(ARRAY[granted], required) IS DISTINCT FROM expected;
-- a list checked many times is prepared once (hash of exact grants plus patterns): it must
-- agree with matching one by one, for every required permission of the cases
SELECT count(*) AS set_disagreements
  FROM perm_cases c, (SELECT array_agg(granted) AS arr FROM perm_cases) g
 WHERE crm_security.has_permission(g.arr, c.required)
       IS DISTINCT FROM (SELECT bool_or(crm_security.permission_matches(x.granted, c.required)) FROM perm_cases x);
SELECT count(*) AS set_disagreements_per_case
  FROM perm_cases c, (SELECT array_agg(granted) FILTER (WHERE granted <> '*') AS arr FROM perm_cases) g
 WHERE crm_security.has_permission(g.arr, c.required)
       IS DISTINCT FROM (SELECT bool_or(crm_security.permission_matches(x.granted, c.required))
                           FROM perm_cases x WHERE x.granted <> '*');
SELECT r, crm_security.has_permission('{crm:a:read,crm:b:manage,crm:c:*,x}', r) AS held
  FROM (VALUES ('crm:a:read'), ('crm:a:write'), ('crm:b:purge'), ('crm:c:z'), ('x'), ('y'), ('crm:b'),
               ('crm:a:read:x')) AS v(r);
-- well-formedness
SELECT p, crm_security.permission_valid(p) FROM (VALUES ('crm:contacts:read'), ('*'), ('*:*'),
  ('crm:dea*'), ('a::b'), (''), ('a b'), ('manage')) AS v(p);
-- NULLs
SELECT crm_security.permission_matches(NULL, 'a'), crm_security.permission_matches('a', NULL);
SELECT crm_security.has_permission(NULL, 'a'), crm_security.has_permission('{a}', NULL);
SELECT crm_security.has_permission('{NULL,NULL}', 'a') AS null_elements,
       crm_security.has_permission('{NULL,a}', 'a') AS null_then_match,
       crm_security.has_permission('{}', 'a') AS empty;
SELECT crm_security.has_permission('{{a,b},{c,d}}', 'd') AS two_dimensional;
SELECT crm_security.has_permission(ARRAY['crm:contacts:read', NULL, 'crm:deals:*'], 'crm:deals:delete') AS match;
SELECT crm_security.has_permission(ARRAY['crm:contacts:read ', E'crm:deals:read\n'], 'crm:deals:read') AS malformed_granted;
-- any / all
SELECT crm_security.has_any_permission('{crm:contacts:read}', '{crm:deals:read,crm:contacts:read}') AS any_one,
       crm_security.has_any_permission('{crm:contacts:read}', '{crm:deals:read}') AS any_none,
       crm_security.has_any_permission('{crm:contacts:read}', '{}') AS any_empty,
       crm_security.has_any_permission('{crm:contacts:read}', '{NULL}') AS any_null;
SELECT crm_security.has_all_permissions('{crm:*:read}', '{crm:deals:read,crm:contacts:read}') AS all_yes,
       crm_security.has_all_permissions('{crm:*:read}', '{crm:deals:read,crm:contacts:write}') AS all_no,
       crm_security.has_all_permissions('{crm:*:read}', '{}') AS all_empty,
       crm_security.has_all_permissions('{*}', '{crm:deals:read,NULL}') AS all_with_null,
       crm_security.has_all_permissions('{*}', '{crm:deals:read,"bad perm"}') AS all_with_malformed;
SELECT crm_security.has_any_permission(NULL, '{a}'), crm_security.has_all_permissions('{a}', NULL);
-- a big granted list: the last element matches
SELECT crm_security.has_permission(array_append(array(SELECT 'crm:r' || i || ':read' FROM generate_series(1, 10000) i), 'crm:x:manage'), 'crm:x:delete') AS big;
-- volatility, strictness and parallel safety are declared
SELECT proname, provolatile, proisstrict, proparallel, proleakproof
  FROM pg_proc WHERE pronamespace = 'crm_security'::regnamespace
   AND proname IN ('permission_valid', 'permission_matches', 'has_permission', 'has_any_permission',
                   'has_all_permissions', 'permissions', 'can', 'authorize')
 ORDER BY proname;
-- without a context: no permissions, can() is false, authorize() raises
SELECT crm_security.permissions() AS no_context;
SELECT crm_security.can('crm:contacts:read') AS can_without_context;
SELECT crm_security.can(NULL) AS can_null;
SELECT crm_security.can('') AS can_empty;
SELECT crm_security.authorize('crm:contacts:read');
SELECT crm_security.authorize(NULL);
SELECT crm_security.authorize(E'crm:\x01:read');
SELECT crm_security.authorize(repeat('a', 2000));
-- the setting exists and only superusers may change it
SHOW crm_security.permissions_claim;
CREATE ROLE regress_perm_user;
SET ROLE regress_perm_user;
SET crm_security.permissions_claim = 'scope';
SELECT set_config('crm_security.permissions_claim', 'scope', true);
RESET ROLE;
DROP ROLE regress_perm_user;
DROP TABLE perm_cases;
