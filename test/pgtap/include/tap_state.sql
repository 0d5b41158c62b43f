-- pgTAP keeps its state in temporary tables: pg_temp.grant_tap_state(role, ...) lets the
-- roles a test switches to write them.  Included with \ir after plan(), in a transaction
-- the test rolls back.
CREATE FUNCTION pg_temp.grant_tap_state(VARIADIC roles name[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE r regclass;
BEGIN
    FOR r IN SELECT c.oid FROM pg_class c
              WHERE c.relnamespace = pg_my_temp_schema() AND c.relkind IN ('r', 'S') LOOP
        EXECUTE format('GRANT ALL ON %s TO %s', r,
                       (SELECT string_agg(quote_ident(x), ', ') FROM unnest(roles) x));
    END LOOP;
END $$;
