#!/usr/bin/env bash
# Interoperability with independent JOSE implementations, printing TAP:
#  - jose (npm) makes keys and JWTs for all 13 algorithms; crm_security verifies each with the
#    public key as PEM text (the secret for HS*), as a JWK and through a JWKS;
#  - crm_security signs with the same keys (PEM and JWK); jose verifies (jwtVerify);
#  - the openssl CLI makes HS256, RS256, PS256, ES256 (DER converted to r||s) and Ed25519
#    tokens for crm_security, and verifies crm_security's RS256, ES256 and Ed25519 tokens.
# Environment (from test/run.sh): PGHOST, PGPORT, PGUSER, PG_BIN, CRM_ROOT, CRM_WORK.
set -uo pipefail

W=$CRM_WORK/jose_interop
DB=crm_jose_interop
mkdir -p "$W/node" "$W/ossl"
RESULTS=$W/results
: >"$RESULTS"

ok()     { echo "ok - $*" >>"$RESULTS"; }
not_ok() { echo "not ok - $*" >>"$RESULTS"; }
check()  { if [ "$1" = 0 ]; then ok "$2"; else not_ok "$2"; fi; }
psql_db() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

finish() {
    "$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
    local n
    n=$(wc -l <"$RESULTS")
    echo "1..$n"
    awk '{ if (sub(/^not ok - /, "")) print "not ok " NR " - " $0;
           else if (sub(/^ok - /, "")) print "ok " NR " - " $0;
           else print "not ok " NR " - unexpected output: " $0 }' "$RESULTS"
}
trap finish EXIT

b64u() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
b64u_decode() {
    local s=$1
    while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done
    printf '%s' "$s" | tr -- '-_' '+/' | openssl base64 -d -A
}
hex_of() { od -An -v -tx1 | tr -d ' \n'; }
bin_of() { printf '%b' "$(printf '%s' "$1" | sed 's/../\\x&/g')"; }

# --- jose, from the npm registry (or the local npm cache) ---------------------------------
cp "$CRM_ROOT/test/node/package.json" "$CRM_ROOT/test/node/package-lock.json" \
   "$CRM_ROOT/test/node/make_tokens.mjs" "$W/node/"
if (cd "$W/node" && npm ci --silent --no-audit --no-fund >"$W/npm.log" 2>&1); then
    ok "npm ci installs jose"
else
    not_ok "npm ci installs jose"; sed 's/^/# /' "$W/npm.log"; exit 1
fi
JOSE_VERSION=$(node -p "require('$W/node/node_modules/jose/package.json').version")
echo "# jose $JOSE_VERSION, $(openssl version)"

PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -d postgres \
    -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
psql_db -c "CREATE EXTENSION crm_security" >/dev/null

(cd "$W/node" && node make_tokens.mjs generate >"$W/jose.json")
check $? "jose generates keys and tokens for 13 algorithms"

# --- crm_security verifies jose's tokens ----------------------------------------------------
psql_db -At -v jose="$(cat "$W/jose.json")" >>"$RESULTS" 2>"$W/sql1.err" <<'SQL'
CREATE FUNCTION pg_temp.check_jose(d jsonb) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
    how text;
    claims jsonb;
    payload bytea;
    st text;
    m text;
    det text;
    tok text;
    opts_alg text[];
BEGIN
    FOR e IN SELECT value FROM pg_catalog.jsonb_array_elements(d -> 'items') LOOP
        opts_alg := ARRAY[e ->> 'alg'];
        FOREACH how IN ARRAY ARRAY['PEM or secret text', 'JWK', 'JWKS'] LOOP
            BEGIN
                IF how = 'JWK' THEN
                    claims := crm_security.jwt_verify(e ->> 'token', e -> 'pubJwk', algorithms => opts_alg,
                                  audience => 'crm-api', issuer => 'https://issuer.example.com');
                ELSIF how = 'JWKS' THEN
                    claims := crm_security.jwt_verify(e ->> 'token', d -> 'jwks', algorithms => opts_alg,
                                  audience => 'crm-api', issuer => 'https://issuer.example.com');
                ELSE
                    claims := crm_security.jwt_verify(e ->> 'token', coalesce(e ->> 'pubPem', e ->> 'secret'),
                                  algorithms => opts_alg, audience => 'crm-api', issuer => 'https://issuer.example.com');
                END IF;
                RETURN NEXT pg_catalog.format('%s - jwt_verify accepts the jose %s token with its %s',
                    CASE WHEN claims ->> 'sub' = e ->> 'sub' AND claims -> 'n' = '42' THEN 'ok' ELSE 'not ok' END,
                    e ->> 'alg', how);
            EXCEPTION WHEN others THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
                RETURN NEXT pg_catalog.format('not ok - jwt_verify accepts the jose %s token with its %s: %s %s %s',
                    e ->> 'alg', how, st, m, det);
            END;
        END LOOP;
        -- jws_verify returns the payload segment, decoded.
        BEGIN
            payload := crm_security.jws_verify(e ->> 'token', e -> 'pubJwk');
            RETURN NEXT pg_catalog.format('%s - jws_verify returns the payload of the jose %s token',
                CASE WHEN (pg_catalog.convert_from(payload, 'UTF8')::jsonb) ->> 'sub' = e ->> 'sub'
                     THEN 'ok' ELSE 'not ok' END, e ->> 'alg');
        EXCEPTION WHEN others THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT;
            RETURN NEXT pg_catalog.format('not ok - jws_verify returns the payload of the jose %s token: %s %s',
                e ->> 'alg', st, m);
        END;
        -- The same token with another audience, and with a changed payload, is refused.
        FOREACH how IN ARRAY ARRAY['another audience', 'a changed payload'] LOOP
            tok := e ->> 'token';
            IF how = 'a changed payload' THEN
                tok := pg_catalog.split_part(tok, '.', 1) || '.'
                       || pg_catalog.translate(pg_catalog.encode(pg_catalog.convert_to(
                              pg_catalog.format('{"sub":"mallory","aud":"crm-api","iss":"https://issuer.example.com","exp":%s}',
                                                pg_catalog.floor(extract(epoch FROM pg_catalog.now())) + 3600), 'UTF8'),
                              'base64'), E'+/=\n', '-_')
                       || '.' || pg_catalog.split_part(tok, '.', 3);
            END IF;
            BEGIN
                PERFORM crm_security.jwt_verify(tok, e -> 'pubJwk', audience => CASE WHEN how = 'another audience'
                                                                                THEN 'other-api' ELSE 'crm-api' END);
                RETURN NEXT pg_catalog.format('not ok - jwt_verify refuses the jose %s token with %s', e ->> 'alg', how);
            EXCEPTION WHEN others THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
                RETURN NEXT pg_catalog.format('%s - jwt_verify refuses the jose %s token with %s (%s)',
                    CASE WHEN st = '28000' THEN 'ok' ELSE 'not ok' END, e ->> 'alg', how, st);
            END;
        END LOOP;
    END LOOP;
END
$$;
SELECT pg_temp.check_jose(:'jose'::jsonb);
SQL
check $? "the SQL checks of the jose tokens ran"
[ -s "$W/sql1.err" ] && sed 's/^/# /' "$W/sql1.err"
n=$(grep -c 'the jose [A-Za-z0-9]* token' "$RESULTS")
[ "$n" -eq $((13 * 6)) ]; check $? "13 algorithms x 6 checks of jose tokens in SQL ($n)"

# --- jose verifies crm_security's tokens ----------------------------------------------------
psql_db -At -v jose="$(cat "$W/jose.json")" -o "$W/crm_tokens.json" 2>"$W/sql2.err" <<'SQL'
WITH e AS (
    SELECT value AS e FROM pg_catalog.jsonb_array_elements(:'jose'::jsonb -> 'items')
), c AS (
    SELECT e, pg_catalog.jsonb_build_object('sub', e ->> 'sub', 'aud', 'crm-api', 'iss', 'https://issuer.example.com',
               'iat', pg_catalog.floor(extract(epoch FROM pg_catalog.now())),
               'exp', pg_catalog.floor(extract(epoch FROM pg_catalog.now())) + 3600) AS claims
    FROM e
)
SELECT pg_catalog.jsonb_agg(t) FROM (
    SELECT pg_catalog.jsonb_build_object('alg', e ->> 'alg', 'sub', e ->> 'sub', 'how', 'PEM or secret text',
               'token', crm_security.jwt_sign(claims, coalesce(e ->> 'privPem', e ->> 'secret'), e ->> 'alg',
                                              pg_catalog.jsonb_build_object('kid', e ->> 'kid'))) AS t
    FROM c
    UNION ALL
    SELECT pg_catalog.jsonb_build_object('alg', e ->> 'alg', 'sub', e ->> 'sub', 'how', 'JWK',
               'token', crm_security.jwt_sign(claims, e -> 'privJwk', e ->> 'alg'))
    FROM c
) s;
SQL
check $? "crm_security signs 26 tokens with jose's keys (PEM or secret, and JWK)"
[ -s "$W/sql2.err" ] && sed 's/^/# /' "$W/sql2.err"
(cd "$W/node" && node make_tokens.mjs verify "$W/crm_tokens.json" "$W/jose.json") >>"$RESULTS" 2>"$W/node.err"
check $? "jose verified the crm_security tokens"
[ -s "$W/node.err" ] && sed 's/^/# /' "$W/node.err"
n=$(grep -c 'crm_security [A-Za-z0-9]* token (' "$RESULTS")
# Per token: header alg, public key, JWK, changed payload, and the JWKS for the 20 asymmetric ones.
[ "$n" -eq $((26 * 4 + 20)) ]; check $? "26 crm_security tokens x 4 checks in jose, + 20 through the JWKS ($n)"

# --- the openssl command line ---------------------------------------------------------------
cd "$W/ossl" || exit 1
EXP=$(( $(date +%s) + 3600 ))
HSEG=""
PSEG=$(printf '{"sub":"openssl","exp":%s}' "$EXP" | b64u)
seg() { printf '{"alg":"%s","typ":"JWT"}' "$1" | b64u; }

# verify_sql NAME TOKEN KEY: jwt_verify must return sub = openssl.
verify_sql() {
    local got
    got=$(psql_db -At -v tok="$2" -v key="$3" 2>&1 <<<"SELECT crm_security.jwt_verify(:'tok', :'key') ->> 'sub'" | tr '\n' ' ')
    got=${got% }
    [ "$got" = openssl ]; check $? "jwt_verify accepts the openssl $1 token${got:+ ($got)}"
}

SECRET=$(openssl rand -hex 24)   # 48 characters
HSEG=$(seg HS256)
SIG=$(printf '%s' "$HSEG.$PSEG" | openssl dgst -sha256 -mac HMAC -macopt "key:$SECRET" -binary | b64u)
verify_sql HS256 "$HSEG.$PSEG.$SIG" "$SECRET"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null
openssl pkey -in rsa.pem -pubout -out rsa.pub
HSEG=$(seg RS256)
printf '%s' "$HSEG.$PSEG" >si
SIG=$(openssl dgst -sha256 -sign rsa.pem -binary si | b64u)
verify_sql RS256 "$HSEG.$PSEG.$SIG" "$(cat rsa.pub)"
HSEG=$(seg PS256)
printf '%s' "$HSEG.$PSEG" >si
SIG=$(openssl dgst -sha256 -sign rsa.pem -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -binary si | b64u)
verify_sql PS256 "$HSEG.$PSEG.$SIG" "$(cat rsa.pub)"

# ES256: openssl gives a DER SEQUENCE of two INTEGERs; JOSE wants r||s of 32 bytes each.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem 2>/dev/null
openssl pkey -in ec.pem -pubout -out ec.pub
HSEG=$(seg ES256)
printf '%s' "$HSEG.$PSEG" >si
openssl dgst -sha256 -sign ec.pem -binary si >sig.der
RAW=""
for int in $(openssl asn1parse -inform DER -in sig.der | sed -n 's/.*INTEGER *://p'); do
    int=$(printf '%064s' "$int" | tr ' ' 0)
    RAW="$RAW${int: -64}"
done
[ ${#RAW} -eq 128 ]; check $? "openssl ES256 signature converted from DER to 64 raw bytes"
SIG=$(bin_of "$RAW" | b64u)
verify_sql ES256 "$HSEG.$PSEG.$SIG" "$(cat ec.pub)"
DERSIG=$(b64u <sig.der)
got=$(psql_db -At -v tok="$HSEG.$PSEG.$DERSIG" -v key="$(cat ec.pub)" 2>&1 \
      <<<"SELECT crm_security.jwt_verify(:'tok', :'key') ->> 'sub'")
[[ "$got" == *"invalid token"* ]]; check $? "jwt_verify refuses the same ES256 token with the DER signature"

openssl genpkey -algorithm ed25519 -out ed.pem 2>/dev/null
openssl pkey -in ed.pem -pubout -out ed.pub
HSEG=$(seg EdDSA)
printf '%s' "$HSEG.$PSEG" >si
SIG=$(openssl pkeyutl -sign -inkey ed.pem -rawin -in si | b64u)
verify_sql EdDSA "$HSEG.$PSEG.$SIG" "$(cat ed.pub)"

# openssl verifies crm_security's tokens.
crm_sign() {  # crm_sign ALG KEYFILE: a token signed by jwt_sign
    psql_db -At -v key="$(cat "$2")" \
        <<<"SELECT crm_security.jwt_sign('{\"sub\":\"crm\",\"exp\":$EXP}'::jsonb, :'key', '$1')"
}
TOKEN=$(crm_sign RS256 rsa.pem)
printf '%s' "${TOKEN%.*}" >si
b64u_decode "${TOKEN##*.}" >sig
openssl dgst -sha256 -verify rsa.pub -signature sig si >/dev/null 2>&1
check $? "openssl verifies the crm_security RS256 token"
TOKEN=$(crm_sign PS256 rsa.pem)
printf '%s' "${TOKEN%.*}" >si
b64u_decode "${TOKEN##*.}" >sig
openssl dgst -sha256 -verify rsa.pub -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -signature sig si >/dev/null 2>&1
check $? "openssl verifies the crm_security PS256 token (salt length 32)"
TOKEN=$(crm_sign ES256 ec.pem)
printf '%s' "${TOKEN%.*}" >si
RAW=$(b64u_decode "${TOKEN##*.}" | hex_of)
der_int() {  # DER INTEGER of a big-endian hex number
    local h=$1
    while [ ${#h} -gt 2 ] && [ "${h:0:2}" = 00 ]; do h=${h:2}; done
    [ $((16#${h:0:2})) -ge 128 ] && h="00$h"
    printf '02%02x%s' $(( ${#h} / 2 )) "$h"
}
BODY="$(der_int "${RAW:0:64}")$(der_int "${RAW:64:64}")"
bin_of "$(printf '30%02x%s' $(( ${#BODY} / 2 )) "$BODY")" >sig
openssl dgst -sha256 -verify ec.pub -signature sig si >/dev/null 2>&1
check $? "openssl verifies the crm_security ES256 token (r||s converted to DER)"
TOKEN=$(crm_sign EdDSA ed.pem)
printf '%s' "${TOKEN%.*}" >si
b64u_decode "${TOKEN##*.}" >sig
openssl pkeyutl -verify -pubin -inkey ed.pub -rawin -in si -sigfile sig >/dev/null 2>&1
check $? "openssl verifies the crm_security EdDSA token"
TOKEN=$(crm_sign HS256 <(printf '%s' "$SECRET"))
printf '%s' "${TOKEN%.*}" >si
[ "$(openssl dgst -sha256 -mac HMAC -macopt "key:$SECRET" -binary si | b64u)" = "${TOKEN##*.}" ]
check $? "openssl computes the same HS256 MAC as the crm_security token"
