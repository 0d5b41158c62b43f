-- The claim context ends with its transaction: COMMIT, ROLLBACK, autocommit statements,
-- and even a token put into the setting with plain (session-level) SET.
-- Not wrapped in one transaction, on purpose; the keys are deleted at the end.
-- Leftovers of an interrupted run.
DELETE FROM crm_security.jwt_keys WHERE kid = 'cxl_hs';
DO $$ BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'regress_cxl_user') THEN
        EXECUTE 'DROP OWNED BY regress_cxl_user';
        EXECUTE 'DROP ROLE regress_cxl_user';
    END IF;
END $$;
SELECT plan(22);

SELECT crm_security.add_jwt_key('cxl_hs', 'HS256', 'cxl-secret-0123456789-0123456789-abcdef') IS NULL AS added \gset
SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'u-life', 'tenant_id', 't-life', 'exp', extract(epoch FROM now())::bigint + 600),
                             'cxl-secret-0123456789-0123456789-abcdef', 'HS256', '{"kid": "cxl_hs"}') AS tok \gset
SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'u-other', 'tenant_id', 't-other', 'exp', extract(epoch FROM now())::bigint + 600),
                             'cxl-secret-0123456789-0123456789-abcdef', 'HS256', '{"kid": "cxl_hs"}') AS tok2 \gset
CREATE ROLE regress_cxl_user;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO regress_cxl_user;

-- COMMIT
BEGIN;
SELECT is(crm_security.set_claim_context(:'tok')->>'tenant_id', 't-life', 'a context inside a transaction');
COMMIT;
SELECT is(crm_security.claims(), NULL, 'gone after COMMIT');
SELECT is(current_setting('crm_security.token'), '', 'crm_security.token is empty after COMMIT');
SELECT is(current_setting('request.jwt.claims', true), '', 'request.jwt.claims is empty after COMMIT');

-- ROLLBACK
BEGIN;
SELECT is(crm_security.set_claim_context(:'tok')->>'tenant_id', 't-life', 'a context inside a transaction');
ROLLBACK;
SELECT is(crm_security.claims(), NULL, 'gone after ROLLBACK');
SELECT is(current_setting('request.jwt.claim.sub', true), '', 'request.jwt.claim.sub is empty after ROLLBACK');

-- An autocommit statement is a transaction of its own.
SELECT crm_security.set_claim_context(:'tok') IS NOT NULL AS set_alone \gset
SELECT is(crm_security.claims(), NULL, 'a context set by a statement of its own is gone at the next');

-- An error aborts the transaction and takes the context with it.
BEGIN;
SELECT is(crm_security.set_claim_context(:'tok')->>'sub', 'u-life', 'a context, then an error');
\set ON_ERROR_STOP 0
\set VERBOSITY terse
DO $$ BEGIN RAISE EXCEPTION 'expected error: this transaction is aborted on purpose'; END $$;
\set ON_ERROR_STOP 1
ROLLBACK;
SELECT is(crm_security.claims(), NULL, 'gone after an aborted transaction');

-- Plain SET is session-level, yet the token still ends with the transaction.
BEGIN;
SET crm_security.token = :'tok';
SELECT is(crm_security.tenant_id(), 't-life', 'a verified token set with plain SET gives its context in the transaction');
COMMIT;
SELECT is(crm_security.claims(), NULL, 'a session-level SET does not survive COMMIT');
SELECT is(current_setting('crm_security.token'), '', '... the setting is erased');

SET crm_security.token = :'tok';
SELECT is(crm_security.claims(), NULL, 'a SET outside a transaction block ends with its own statement');

BEGIN;
SET crm_security.token = :'tok2';
SELECT is(crm_security.set_claim_context(:'tok')->>'sub', 'u-life', 'set_claim_context over a session-level SET');
COMMIT;
SELECT is(crm_security.claims(), NULL, 'the session-level value masked by the local one does not come back');

BEGIN;
SET crm_security.token = :'tok';
ROLLBACK;
SELECT is(crm_security.claims(), NULL, 'a session-level SET rolled back is gone');

-- The same as a role that is not superuser.
SET ROLE regress_cxl_user;
BEGIN;
SET crm_security.token = :'tok';
SELECT is(crm_security.user_id(), 'u-life', 'a non-superuser: SET of a verified token works in its transaction');
COMMIT;
SELECT is(crm_security.user_id(), NULL, 'a non-superuser: gone after COMMIT');
BEGIN;
SELECT is(crm_security.set_claim_context(:'tok2')->>'sub', 'u-other', 'a non-superuser: set_claim_context');
COMMIT;
SELECT is(crm_security.user_id(), NULL, 'a non-superuser: gone after COMMIT');
RESET ROLE;

-- RESET ALL and DISCARD ALL clear it as well.
BEGIN;
SELECT crm_security.set_claim_context(:'tok') IS NOT NULL AS set_again \gset
RESET ALL;
SELECT is(crm_security.claims(), NULL, 'RESET ALL drops the context');
COMMIT;

SELECT * FROM finish();

DROP OWNED BY regress_cxl_user;
DROP ROLE regress_cxl_user;
DELETE FROM crm_security.jwt_keys WHERE kid = 'cxl_hs';
