#!/usr/bin/env bash
# Claim context cost per request, against the PostgREST way (an unverified
# set_config('request.jwt.claims', ..., true) and a hand-written policy reading it).
#
# Per request: BEGIN; set the context; one indexed query on a table with a tenant policy
# (FORCE ROW LEVEL SECURITY, queried by a role that is not the owner); COMMIT.
# Then microbenchmarks: set_claim_context per call, and the accessor per call.
set -u
PSQL=("$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1)
APP=bench_ctx_app
SECRET=bench-secret-0123456789-0123456789-abcdef
TENANTS=100
ROWS=2000
CLIENTS=${CRM_BENCH_CLIENTS:-4}
SECONDS_EACH=${CRM_BENCH_SECONDS:-10}
ROUNDS=${CRM_BENCH_ROUNDS:-3}
DIR=$CRM_WORK/bench_context
rm -rf "$DIR"
mkdir -p "$DIR"

"${PSQL[@]}" <<SQL >/dev/null
DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP') THEN CREATE ROLE $APP LOGIN; END IF; END \$\$;
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_ctx_items, bench_pgrst_items;
CREATE TABLE bench_ctx_items (tenant_id text, id int, payload text, PRIMARY KEY (tenant_id, id));
INSERT INTO bench_ctx_items
    SELECT 'tenant-' || t, i, md5(t::text || ':' || i::text)
      FROM generate_series(1, $TENANTS) t, generate_series(1, $ROWS) i;
CREATE TABLE bench_pgrst_items (LIKE bench_ctx_items INCLUDING ALL);
INSERT INTO bench_pgrst_items SELECT * FROM bench_ctx_items;
ALTER TABLE bench_ctx_items ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE bench_pgrst_items ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON bench_ctx_items USING (tenant_id = crm_security.tenant_id());
CREATE POLICY tenant ON bench_pgrst_items
    USING (tenant_id = (pg_catalog.current_setting('request.jwt.claims', true)::jsonb ->> 'tenant_id'));
GRANT SELECT ON bench_ctx_items, bench_pgrst_items TO $APP;
VACUUM ANALYZE bench_ctx_items;
VACUUM ANALYZE bench_pgrst_items;
DELETE FROM crm_security.jwt_keys WHERE kid = 'bench';
SELECT crm_security.add_jwt_key('bench', 'HS256', '$SECRET');
SQL

# Ten tenants, one script each, for both ways; the same claims in both.
ctx_files=() pgrst_files=()
for t in $(seq 1 10); do
    claims="{\"sub\": \"user-$t\", \"tenant_id\": \"tenant-$t\", \"role\": \"authenticated\", \"exp\": $(( $(date +%s) + 3600 ))}"
    tok=$("${PSQL[@]}" -c "SELECT crm_security.jwt_sign('$claims', '$SECRET', 'HS256', '{\"kid\": \"bench\"}')")
    cat >"$DIR/ctx$t.sql" <<EOF
\set id random(1, $ROWS)
BEGIN;
SELECT crm_security.set_claim_context('$tok');
SELECT payload FROM bench_ctx_items WHERE id = :id;
COMMIT;
EOF
    cat >"$DIR/pgrst$t.sql" <<EOF
\set id random(1, $ROWS)
BEGIN;
SELECT pg_catalog.set_config('request.jwt.claims', '$claims', true);
SELECT payload FROM bench_pgrst_items WHERE id = :id;
COMMIT;
EOF
    ctx_files+=(-f "$DIR/ctx$t.sql")
    pgrst_files+=(-f "$DIR/pgrst$t.sql")
done

# Both ways must return the same single row through an index scan.
check=$("${PSQL[@]}" -U "$APP" <<EOF
BEGIN;
SELECT crm_security.set_claim_context('$tok') IS NOT NULL;
SELECT count(*) FROM bench_ctx_items WHERE id = 7;
EXPLAIN (COSTS OFF) SELECT payload FROM bench_ctx_items WHERE id = 7;
SELECT pg_catalog.set_config('request.jwt.claims', '$claims', true) IS NOT NULL;
SELECT count(*) FROM bench_pgrst_items WHERE id = 7;
EXPLAIN (COSTS OFF) SELECT payload FROM bench_pgrst_items WHERE id = 7;
COMMIT;
EOF
)
echo "Plans (as $APP, FORCE RLS):"
echo "$check" | sed 's/^/    /'
if [ "$(echo "$check" | grep -c 'Index Scan')" != 2 ] || [ "$(echo "$check" | grep -cx 1)" != 2 ]; then
    echo "the benchmark queries do not use the index or do not find one row"; exit 1
fi

tps() {  # tps NAME PGBENCH-ARGS...: TPS of one pgbench run
    local name=$1; shift
    "$PG_BIN/pgbench" -n -U "$APP" -j 1 -T "$SECONDS_EACH" "$@" >"$DIR/$name.log" 2>&1 \
        || { cat "$DIR/$name.log" >&2; echo 0; return; }
    sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$DIR/$name.log"
}

# paired TITLE NAME_A LABEL_A NAME_B LABEL_B RATIO_LABEL: ROUNDS rounds of SECONDS_EACH, the
# pgbench scripts of the arrays A_FILES and B_FILES run at once with $half clients each; the
# ratio reported is the TPS of A over the TPS of B, median of the rounds.
paired() {
    local title=$1 an=$2 al=$3 bn=$4 bl=$5 rl=$6 r at bt ratios=() as=() bs=() med
    echo
    echo "$title, $ROUNDS rounds of ${SECONDS_EACH}s, both ways at once with $half pgbench clients each:"
    for r in $(seq 1 "$ROUNDS"); do
        tps "$an$r" -c "$half" "${A_FILES[@]}" >"$DIR/$an$r.tps" &
        tps "$bn$r" -c "$half" "${B_FILES[@]}" >"$DIR/$bn$r.tps" &
        wait
        at=$(cat "$DIR/$an$r.tps"); bt=$(cat "$DIR/$bn$r.tps")
        as+=("$at"); bs+=("$bt")
        ratios+=("$(awk -v a="$at" -v b="$bt" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }')")
    done
    med=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
    awk -v a="${as[*]}" -v b="${bs[*]}" -v r="${ratios[*]}" -v m="$med" -v al="$al" -v bl="$bl" -v rl="$rl" 'BEGIN {
        na = split(a, A, " "); nb = split(b, B, " "); nr = split(r, R, " ");
        for (i = 1; i <= na; i++) { sa += A[i]; ra = ra sprintf("%s%.0f", i > 1 ? ", " : "", A[i]) }
        for (i = 1; i <= nb; i++) { sb += B[i]; rb = rb sprintf("%s%.0f", i > 1 ? ", " : "", B[i]) }
        for (i = 1; i <= nr; i++) { rr = rr sprintf("%s%.3f", i > 1 ? ", " : "", R[i]) }
        printf "    %-58s %8.0f TPS  (rounds %s)\n", al, sa / na, ra;
        printf "    %-58s %8.0f TPS  (rounds %s)\n", bl, sb / nb, rb;
        printf "    %s: median %.3f (rounds %s)\n", rl, m, rr;
    }'
}


echo
echo "Per request (BEGIN; set context; indexed query under RLS; COMMIT), $ROUNDS rounds of ${SECONDS_EACH}s, both ways at once with $(( (CLIENTS + 1) / 2 )) pgbench clients each:"
# Both ways run at the same time, each with half of the clients, so that both see the same
# background load (this machine may be shared); each round gives one ratio, and the median
# over the rounds is the figure.
half=$(( (CLIENTS + 1) / 2 ))
bs=() cs=() rs=()
# Server CPU per request, which background load does not change: the CPU time of each
# run's backends (sampled from /proc while they live) over the transactions they ran.
TICK_US=$(( 1000000 / $(getconf CLK_TCK) ))
backend_pids() { "${PSQL[@]}" -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$1'"; }
txns() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$DIR/$1.log"; }
bcpu=() ccpu=()
for r in $(seq 1 "$ROUNDS"); do
    PGAPPNAME=bench_pgrst tps pgrst$r -c "$half" "${pgrst_files[@]}" >"$DIR/pgrst$r.tps" &
    PGAPPNAME=bench_ctx tps ctx$r -c "$half" "${ctx_files[@]}" >"$DIR/ctx$r.tps" &
    sleep 1
    bp=$(backend_pids bench_pgrst); cp=$(backend_pids bench_ctx)
    declare -A ticks=()
    while [ -n "$(jobs -r)" ]; do
        for p in $bp $cp; do
            t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) && [ -n "$t" ] && ticks[$p]=$t
        done
        sleep 0.1
    done
    wait
    bt=$(cat "$DIR/pgrst$r.tps"); ct=$(cat "$DIR/ctx$r.tps")
    bs+=("$bt"); cs+=("$ct")
    rs+=("$(awk -v b="$bt" -v c="$ct" 'BEGIN { printf "%.4f", (b > 0 ? c / b : 0) }')")
    sb=0; for p in $bp; do sb=$((sb + ${ticks[$p]:-0})); done
    sc=0; for p in $cp; do sc=$((sc + ${ticks[$p]:-0})); done
    bcpu+=("$(awk -v t="$sb" -v n="$(txns pgrst$r)" -v u="$TICK_US" 'BEGIN { printf "%.1f", (n > 0 ? t * u / n : 0) }')")
    ccpu+=("$(awk -v t="$sc" -v n="$(txns ctx$r)" -v u="$TICK_US" 'BEGIN { printf "%.1f", (n > 0 ? t * u / n : 0) }')")
    unset ticks
done
median=$(printf '%s\n' "${rs[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
awk -v b="${bs[*]}" -v c="${cs[*]}" -v r="${rs[*]}" -v m="$median" 'BEGIN {
    nb = split(b, B, " "); nc = split(c, C, " "); nr = split(r, R, " ");
    for (i = 1; i <= nb; i++) { sb += B[i]; rb = rb sprintf("%s%.0f", i > 1 ? ", " : "", B[i]) }
    for (i = 1; i <= nc; i++) { sc += C[i]; rc = rc sprintf("%s%.0f", i > 1 ? ", " : "", C[i]) }
    for (i = 1; i <= nr; i++) { rr = rr sprintf("%s%.3f", i > 1 ? ", " : "", R[i]) }
    printf "    %-58s %8.0f TPS  (rounds %s)\n", "PostgREST-style set_config + current_setting policy", sb / nb, rb;
    printf "    %-58s %8.0f TPS  (rounds %s)\n", "set_claim_context (HS256 verified) + tenant_id() policy", sc / nc, rc;
    printf "    ratio set_claim_context / PostgREST-style: median %.3f (rounds %s; target >= 0.9)\n", m, rr;
}'
awk -v b="${bcpu[*]}" -v c="${ccpu[*]}" 'BEGIN {
    n = split(b, B, " "); split(c, C, " ");
    for (i = 1; i <= n; i++) { sb += B[i]; sc += C[i]; rr = rr sprintf("%s%.0f/%.0f", i > 1 ? ", " : "", C[i], B[i]) }
    printf "    server CPU per request: %.0f us with set_claim_context, %.0f us PostgREST-style (rounds %s)\n", sc / n, sb / n, rr;
    printf "    TPS ratio when the server CPU is the limit (PostgREST-style CPU / set_claim_context CPU): %.3f\n", (sc > 0 ? sb / sc : 0);
}'

# The tenant from a membership: set_claim_context(token, tenant_id) with a token without a
# tenant claim (one probe into tenant_members, one into tenants, once per transaction)
# against set_claim_context(token) with the tenant in the token.  Every user belongs to two
# tenants (so the tenant must be named), among 10,000 other memberships.
"${PSQL[@]}" <<SQL >/dev/null
DELETE FROM crm_security.tenants WHERE id LIKE 'tenant-%' OR id LIKE 'bench-%';
INSERT INTO crm_security.tenants (id, name) SELECT 'tenant-' || t, 'Tenant ' || t FROM generate_series(1, $TENANTS) t;
INSERT INTO crm_security.tenants (id, name) SELECT 'bench-' || t, 'Other ' || t FROM generate_series(1, 100) t;
INSERT INTO crm_security.tenant_members (tenant_id, user_id, role)
    SELECT 'tenant-' || t, 'user-' || t, 'client_user' FROM generate_series(1, 10) t
    UNION ALL SELECT 'tenant-' || (t + 10), 'user-' || t, 'client_admin' FROM generate_series(1, 10) t
    UNION ALL SELECT 'bench-' || (g % 100 + 1), 'other-' || g, 'client_user' FROM generate_series(1, 10000) g;
VACUUM ANALYZE crm_security.tenants;
VACUUM ANALYZE crm_security.tenant_members;
SQL
claim_files=() member_files=()
for t in $(seq 1 10); do
    exp=$(( $(date +%s) + 3600 ))
    ctok=$("${PSQL[@]}" -c "SELECT crm_security.jwt_sign('{\"sub\": \"user-$t\", \"tenant_id\": \"tenant-$t\", \"role\": \"authenticated\", \"exp\": $exp}', '$SECRET', 'HS256', '{\"kid\": \"bench\"}')")
    mtok=$("${PSQL[@]}" -c "SELECT crm_security.jwt_sign('{\"sub\": \"user-$t\", \"role\": \"authenticated\", \"exp\": $exp}', '$SECRET', 'HS256', '{\"kid\": \"bench\"}')")
    printf '\\set id random(1, %s)\nBEGIN;\nSELECT crm_security.set_claim_context('"'%s'"');\nSELECT payload FROM bench_ctx_items WHERE id = :id;\nCOMMIT;\n' \
        "$ROWS" "$ctok" >"$DIR/claim$t.sql"
    printf '\\set id random(1, %s)\nBEGIN;\nSELECT crm_security.set_claim_context('"'%s'"', '"'tenant-%s'"');\nSELECT payload FROM bench_ctx_items WHERE id = :id;\nCOMMIT;\n' \
        "$ROWS" "$mtok" "$t" >"$DIR/member$t.sql"
    claim_files+=(-f "$DIR/claim$t.sql")
    member_files+=(-f "$DIR/member$t.sql")
done
same=$("${PSQL[@]}" -U "$APP" -c "BEGIN" -c "SELECT crm_security.set_claim_context('$mtok', 'tenant-10') IS NOT NULL" \
        -c "SELECT crm_security.tenant_id(), count(*) FROM bench_ctx_items WHERE id = 7 GROUP BY 1" -c "COMMIT")
if [ "$(echo "$same" | tail -1)" != "tenant-10|1" ]; then
    echo "the membership benchmark does not resolve the tenant: $same"; exit 1
fi
A_FILES=("${member_files[@]}") B_FILES=("${claim_files[@]}")
paired "Tenant from a membership, per request" member "set_claim_context(token, tenant_id), membership lookup" \
    claim "set_claim_context(token) with the tenant in the token" "ratio membership / tenant claim (target >= 0.95)"

# A repeated token, ES256 against HS256 (issue 15): the same request, each client sending the
# same token again and again (ten clients' tokens, one per tenant), as an application does for
# the life of an access token.  Each verified token is kept per connection across
# transactions, so an ES256 signature is checked once per connection, not per request.
"${PSQL[@]}" -c "DELETE FROM crm_security.jwt_keys WHERE kid = 'bench_es'" >/dev/null
ES_JWK=$("${PSQL[@]}" -c "SELECT crm_security.generate_jwk('ES256')")
"${PSQL[@]}" -c "SELECT crm_security.add_jwt_key('bench_es', crm_security.jwk_public('$ES_JWK'::jsonb))" >/dev/null
hs_files=() es_files=()
for t in $(seq 1 10); do
    exp=$(( $(date +%s) + 3600 ))
    c="{\"sub\": \"user-$t\", \"tenant_id\": \"tenant-$t\", \"role\": \"authenticated\", \"exp\": $exp}"
    htok=$("${PSQL[@]}" -c "SELECT crm_security.jwt_sign('$c', '$SECRET', 'HS256', '{\"kid\": \"bench\"}')")
    etok=$("${PSQL[@]}" -c "SELECT crm_security.jwt_sign('$c', '$ES_JWK'::jsonb, 'ES256', '{\"kid\": \"bench_es\"}')")
    printf '\\set id random(1, %s)\nBEGIN;\nSELECT crm_security.set_claim_context('"'%s'"');\nSELECT payload FROM bench_ctx_items WHERE id = :id;\nCOMMIT;\n' \
        "$ROWS" "$htok" >"$DIR/hsrep$t.sql"
    printf '\\set id random(1, %s)\nBEGIN;\nSELECT crm_security.set_claim_context('"'%s'"');\nSELECT payload FROM bench_ctx_items WHERE id = :id;\nCOMMIT;\n' \
        "$ROWS" "$etok" >"$DIR/esrep$t.sql"
    hs_files+=(-f "$DIR/hsrep$t.sql")
    es_files+=(-f "$DIR/esrep$t.sql")
done
same=$("${PSQL[@]}" -U "$APP" -c "BEGIN" -c "SELECT crm_security.set_claim_context('$etok') IS NOT NULL" \
        -c "SELECT crm_security.tenant_id(), count(*) FROM bench_ctx_items WHERE id = 7 GROUP BY 1" -c "COMMIT")
if [ "$(echo "$same" | tail -1)" != "tenant-10|1" ]; then
    echo "the ES256 benchmark does not give the context: $same"; exit 1
fi
A_FILES=("${hs_files[@]}") B_FILES=("${es_files[@]}")
paired "Repeated token, per request" hsrep "set_claim_context(<the same HS256 token>)" \
    esrep "set_claim_context(<the same ES256 token>)" "ratio HS256 TPS / ES256 TPS (target <= 1.15)"

echo
echo "First use against repeated use (one statement over N distinct tokens, or one token N times; microseconds per call):"
exp=$(( $(date +%s) + 3600 ))
"${PSQL[@]}" <<EOF
CREATE TEMP TABLE first_hs AS SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'f' || g, 'tenant_id', 'tenant-1', 'exp', $exp), '$SECRET', 'HS256', '{"kid": "bench"}') AS tok FROM generate_series(1, 2000) g;
CREATE TEMP TABLE first_es AS SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'f' || g, 'tenant_id', 'tenant-1', 'exp', $exp), '$ES_JWK'::jsonb, 'ES256', '{"kid": "bench_es"}') AS tok FROM generate_series(1, 2000) g;
CREATE FUNCTION pg_temp.per_call_once(q text, n int) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
END \$\$;
BEGIN;
SELECT '    ' || rpad(label, 58) || lpad(round(v::numeric, 2)::text, 9) || ' us'
  FROM (VALUES
    (1, 'HS256, 2,000 distinct tokens (first use: verified)', pg_temp.per_call_once(\$q\$SELECT count(crm_security.set_claim_context(tok)) FROM first_hs\$q\$, 2000)),
    (2, 'ES256, 2,000 distinct tokens (first use: verified)', pg_temp.per_call_once(\$q\$SELECT count(crm_security.set_claim_context(tok)) FROM first_es\$q\$, 2000)),
    (3, 'ES256, one token 2,000 times (repeated: cached)', pg_temp.per_call_once(\$q\$SELECT count(crm_security.set_claim_context('$etok')) FROM generate_series(1, 2000)\$q\$, 2000)),
    (4, 'jws_verify(ES256 token, JWK) (reference, no key store)', pg_temp.per_call_once(\$q\$SELECT count(crm_security.jws_verify(tok, crm_security.jwk_public('$ES_JWK'::jsonb))) FROM first_es\$q\$, 2000))
  ) AS x(o, label, v)
 ORDER BY o;
COMMIT;
EOF

echo
echo "Per call (one statement of N calls; microseconds per call):"
"${PSQL[@]}" <<EOF
CREATE FUNCTION pg_temp.per_call(q text, n int) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; best float8 := 'Infinity'; r int;
BEGIN
    FOR r IN 1..5 LOOP
        t0 := clock_timestamp();
        EXECUTE q USING n;
        best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);
    END LOOP;
    RETURN best;
END \$\$;
BEGIN;
DO \$\$ BEGIN PERFORM crm_security.set_claim_context('$tok'); END \$\$;
WITH m AS (
    SELECT pg_temp.per_call(\$q\$SELECT count(pg_catalog.set_config('request.jwt.claims', '$claims', true)) FROM generate_series(1, \$1)\$q\$, 20000) AS setcfg,
           pg_temp.per_call(\$q\$SELECT count(crm_security.set_claim_context('$tok')) FROM generate_series(1, \$1)\$q\$, 20000) AS setctx,
           pg_temp.per_call(\$q\$SELECT count(crm_security.jwt_verify('$tok', '$SECRET')) FROM generate_series(1, \$1)\$q\$, 20000) AS verify,
           pg_temp.per_call(\$q\$SELECT count(crm_security.set_claim_context('$mtok', 'tenant-10')) FROM generate_series(1, \$1)\$q\$, 20000) AS setmem,
           pg_temp.per_call(\$q\$SELECT count(pg_catalog.current_setting('request.jwt.claims', true)::jsonb ->> 'tenant_id') FROM generate_series(1, \$1)\$q\$, 200000) AS hand,
           pg_temp.per_call(\$q\$SELECT count(crm_security.tenant_id()) FROM generate_series(1, \$1)\$q\$, 200000) AS acc,
           pg_temp.per_call(\$q\$SELECT count(i) FROM generate_series(1, \$1) i\$q\$, 200000) AS empty
)
SELECT '    ' || rpad(label, 58) || lpad(round(greatest(v, 0)::numeric, 3)::text, 9) || ' us' || coalesce('  (' || round(r::numeric, 2) || 'x)', '')
  FROM m, LATERAL (VALUES
    (1, 'set_config(request.jwt.claims) (PostgREST-style)', setcfg - empty, NULL::float8),
    (2, 'set_claim_context (HS256 repeated: cache + 5 settings)', setctx - empty, (setctx - empty) / nullif(setcfg - empty, 0)),
    (3, 'jwt_verify(token, secret) (reference)', verify - empty, NULL),
    (3.5, 'set_claim_context(token, tenant_id) (membership lookup)', setmem - empty, (setmem - empty) / nullif(setctx - empty, 0)),
    (4, 'current_setting(request.jwt.claims)::jsonb->>tenant_id', hand - empty, NULL),
    (5, 'crm_security.tenant_id() (cached verified context)', acc - empty, (acc - empty) / nullif(hand - empty, 0))
  ) AS x(o, label, v, r)
 ORDER BY o;
COMMIT;
EOF

"${PSQL[@]}" -c "DROP TABLE bench_ctx_items, bench_pgrst_items" -c "DELETE FROM crm_security.jwt_keys WHERE kid IN ('bench', 'bench_es')" \
    -c "DELETE FROM crm_security.tenants WHERE id LIKE 'tenant-%' OR id LIKE 'bench-%'" >/dev/null
"${PSQL[@]}" -c "DROP ROLE $APP" >/dev/null 2>&1 || true
