#!/usr/bin/env bash
# Tokens in databases whose encoding is not UTF-8 (LATIN1, SQL_ASCII), printing TAP.
# Header and payload are UTF-8 by definition; a character the database cannot hold must end
# as a refusal of class 28 like any other unacceptable token, and characters it can hold
# must round-trip.  A short fixed-seed fuzz of non-ASCII claims follows in each database.
# Environment (from test/run.sh): PGHOST, PGPORT, PGUSER, PG_BIN.
set -uo pipefail

RESULTS=$(mktemp)
DBS=(crm_fuzz_latin1 crm_fuzz_sql_ascii)
ENCODINGS=(LATIN1 SQL_ASCII)

finish() {
    local db
    for db in "${DBS[@]}"; do
        "$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
    done
    echo "1..$(wc -l <"$RESULTS")"
    awk '{ if (sub(/^not ok - /, "")) print "not ok " NR " - " $0;
           else if (sub(/^ok - /, "")) print "ok " NR " - " $0;
           else print "not ok " NR " - unexpected output: " $0 }' "$RESULTS"
    rm -f "$RESULTS"
}
trap finish EXIT

for i in 0 1; do
    db=${DBS[$i]}
    enc=${ENCODINGS[$i]}
    PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -d postgres \
        -c "DROP DATABASE IF EXISTS $db" \
        -c "CREATE DATABASE $db ENCODING '$enc' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" >/dev/null
    "$PG_BIN/psql" -X -q -d "$db" -c "CREATE EXTENSION crm_security" >/dev/null
    # All SQL below is ASCII; non-ASCII bytes are written as hex, so the client encoding
    # plays no part.
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$db" >>"$RESULTS" 2>&1 <<'SQL'
CREATE FUNCTION pg_temp.b64u(b bytea) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT pg_catalog.translate(pg_catalog.encode(b, 'base64'), E'+/=\n', '-_') $$;
CREATE FUNCTION pg_temp.secret() RETURNS text
LANGUAGE sql AS $$ SELECT '0123456789abcdef0123456789abcdef' $$;
CREATE FUNCTION pg_temp.signed(h bytea, p bytea) RETURNS text
LANGUAGE sql AS $$
    SELECT pg_temp.b64u(h) || '.' || pg_temp.b64u(p) || '.'
           || pg_temp.b64u(crm_security.sign_message('HS256', pg_temp.secret(),
                  pg_catalog.textsend(pg_temp.b64u(h) || '.' || pg_temp.b64u(p))))
$$;
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r text;
    st text;
BEGIN
    EXECUTE q INTO r;
    RETURN 'ok:' || coalesce(r, 'null');
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
    RETURN st;
END
$$;
CREATE FUNCTION pg_temp.jv(tok text, what text DEFAULT 'jwt_verify') RETURNS text
LANGUAGE sql AS $$
    SELECT pg_temp.outcome(CASE what
        WHEN 'jwt_verify' THEN pg_catalog.format('SELECT crm_security.jwt_verify(%L, %L) ->> ''n''', tok, pg_temp.secret())
        WHEN 'jws_verify' THEN pg_catalog.format('SELECT pg_catalog.length(crm_security.jws_verify(%L, %L))', tok, pg_temp.secret())
        ELSE pg_catalog.format('SELECT payload ->> ''n'' FROM crm_security.jwt_decode(%L)', tok) END)
$$;
CREATE FUNCTION pg_temp.report(ok boolean, what text) RETURNS text
LANGUAGE sql AS $$ SELECT CASE WHEN ok THEN 'ok - ' ELSE 'not ok - ' END || pg_catalog.current_setting('server_encoding') || ': ' || what $$;

-- ASCII claims (and \u escapes of ASCII) work in every encoding.
SELECT pg_temp.report(pg_temp.jv(pg_temp.signed('\x7b22616c67223a224853323536227d', '\x7b226e223a22616263227d')) = 'ok:abc',
                      'an ASCII token verifies');
SELECT pg_temp.report(pg_temp.jv(pg_temp.signed('\x7b22616c67223a224853323536227d', '\x7b226e223a225c7530303431227d')) = 'ok:A',
                      'a \u0041 escape verifies');
-- Characters outside the database encoding: the euro sign (UTF-8 e2 82 ac, not in LATIN1),
-- as raw bytes and as an escape, in the payload, in the header, in jws_verify and jwt_decode.
SELECT pg_temp.report(st LIKE 'ok:%' OR st LIKE '28%',
                      what || ' -> ' || st)
FROM (SELECT d AS what, pg_temp.jv(t, f) AS st
      FROM (VALUES
          ('raw euro sign in the payload, jwt_verify', 'jwt_verify', pg_temp.signed('\x7b22616c67223a224853323536227d', '\x7b226e223a22e282ac227d')),
          ('raw euro sign in the payload, jwt_decode', 'jwt_decode', pg_temp.signed('\x7b22616c67223a224853323536227d', '\x7b226e223a22e282ac227d')),
          ('raw euro sign in the header kid, jwt_verify', 'jwt_verify', pg_temp.signed('\x7b22616c67223a224853323536222c226b6964223a22e282ac227d', '\x7b7d')),
          ('raw euro sign in the header kid, jws_verify', 'jws_verify', pg_temp.signed('\x7b22616c67223a224853323536222c226b6964223a22e282ac227d', '\x616263')),
          ('escaped euro sign in the payload, jwt_verify', 'jwt_verify', pg_temp.signed('\x7b22616c67223a224853323536227d', '\x7b226e223a225c7532306163227d')),
          ('escaped euro sign in the header, jwt_verify', 'jwt_verify', pg_temp.signed('\x7b22616c67223a224853323536222c226b6964223a225c7532306163227d', '\x7b7d'))
      ) AS v(d, f, t)) s;
-- e-acute (UTF-8 c3 a9) is in LATIN1: it must verify and come back as that character.
SELECT pg_temp.report(pg_temp.jv(pg_temp.signed('\x7b22616c67223a224853323536227d', '\x7b226e223a22c3a9227d'))
                      = 'ok:' || pg_catalog.convert_from('\xc3a9', 'UTF8'),
                      'e-acute in the payload verifies and round-trips')
WHERE pg_catalog.current_setting('server_encoding') = 'LATIN1';

-- A short fuzz: random code points, raw and escaped, in a signed payload; class 28 or success only.
DO $$ BEGIN PERFORM pg_catalog.setseed(0.5); END $$;
CREATE FUNCTION pg_temp.utf8(cp int) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN cp < 128 THEN pg_catalog.set_byte('\x00', 0, cp)
                WHEN cp < 2048 THEN pg_catalog.set_byte(pg_catalog.set_byte('\x0000', 0, 192 | (cp >> 6)), 1, 128 | (cp & 63))
                WHEN cp < 65536 THEN pg_catalog.set_byte(pg_catalog.set_byte(pg_catalog.set_byte('\x000000', 0, 224 | (cp >> 12)), 1, 128 | ((cp >> 6) & 63)), 2, 128 | (cp & 63))
                ELSE pg_catalog.set_byte(pg_catalog.set_byte(pg_catalog.set_byte(pg_catalog.set_byte('\x00000000', 0, 240 | (cp >> 18)), 1, 128 | ((cp >> 12) & 63)), 2, 128 | ((cp >> 6) & 63)), 3, 128 | (cp & 63))
           END
$$;
CREATE TEMP TABLE fz AS
SELECT i, st, pg_catalog.encode(p, 'hex') AS input
FROM (SELECT i, p, pg_temp.jv(pg_temp.signed('\x7b22616c67223a224853323536227d', p), CASE i % 3 WHEN 0 THEN 'jwt_verify' WHEN 1 THEN 'jws_verify' ELSE 'jwt_decode' END) AS st
      FROM (SELECT i, '\x7b226e223a22'::bytea
                      || CASE WHEN pg_catalog.random() < 0.5
                              THEN pg_temp.utf8(cp)
                              ELSE pg_catalog.textsend(pg_catalog.format('\u%s', pg_catalog.lpad(pg_catalog.to_hex(cp % 65536), 4, '0'))) END
                      || '\x227d'::bytea AS p
            FROM (SELECT i, CASE WHEN pg_catalog.random() < 0.3 THEN 1 + pg_catalog.floor(pg_catalog.random() * 255)::int
                                 WHEN pg_catalog.random() < 0.9 THEN 256 + pg_catalog.floor(pg_catalog.random() * 55000)::int
                                 ELSE 65536 + pg_catalog.floor(pg_catalog.random() * 1000000)::int END AS cp
                  FROM pg_catalog.generate_series(1, 3000) AS i) c
            WHERE cp NOT BETWEEN 55296 AND 57343) q) r;
SELECT pg_temp.report(pg_catalog.count(*) = 0,
           pg_catalog.format('fuzz of %s non-ASCII claims: only success or class 28%s',
               (SELECT pg_catalog.count(*) FROM fz),
               coalesce(' (' || pg_catalog.string_agg(DISTINCT st, ', ') || ', e.g. payload ' || pg_catalog.min(input) || ')', '')))
FROM fz WHERE st NOT LIKE 'ok:%' AND st NOT LIKE '28%';
SELECT pg_temp.report(pg_catalog.count(*) FILTER (WHERE st LIKE 'ok:%') > 0, 'the fuzz accepted some tokens')
FROM fz;
SQL
    [ $? -eq 0 ] || echo "not ok - the $enc checks ran to the end" >>"$RESULTS"
done
