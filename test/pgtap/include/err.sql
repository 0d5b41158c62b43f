-- pg_temp.err(sql): runs sql and returns 'ok', or the SQLSTATE and detail of its error
-- ("42501: The registry does not let ..."), so that a test can assert both at once.
-- Executable by every role, for tests that switch roles.
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; d text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, d = PG_EXCEPTION_DETAIL;
    RETURN s || ': ' || coalesce(d, '');
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO PUBLIC;
