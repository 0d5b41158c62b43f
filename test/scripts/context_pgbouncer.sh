#!/usr/bin/env bash
# No claim context leaks between clients behind pgbouncer in transaction pooling mode.
# Several clients share a pool of two server connections; each sets its own context in a
# transaction (with set_claim_context, in an autocommit statement, or with a plain
# session-level SET, which a careless client might do), and after every one of them runs
# a transaction WITHOUT a context, which must see none: never its own, never another's.
# Even-numbered clients have tokens without a tenant claim and belong to two tenants: they
# name theirs (set_claim_context(token, tenant_id), or crm_security.requested_tenant), and
# no transaction after theirs sees it.  A membership removed afterwards is refused on every
# pooled server connection at the next set_claim_context.
set -u
source "$CRM_ROOT/test/lib.sh"
source "$CRM_ROOT/test/scripts/include/pgbouncer.sh"
PSQL=("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=sqlstate)
DB=crm_ctx_pgb
APP=regress_pgb_app
SECRET=pgbouncer-secret-0123456789-0123456789
CLIENTS=6
ROUNDS=30
DIR=$CRM_WORK/pgbouncer_context

echo "1..10"
pgb_database \
    -c "SELECT crm_security.add_jwt_key('pgb', 'HS256', '$SECRET')" \
    -c "SELECT crm_security.add_tenant('t-pgb-shared', 'Shared')" >/dev/null
for i in $(seq 2 2 $CLIENTS); do
    "${PSQL[@]}" -d "$DB" -c "SELECT crm_security.add_tenant('t-pgb-$i', 'Tenant $i')" \
        -c "SELECT crm_security.add_tenant_member('t-pgb-$i', 'u-pgb-$i', 'client_user')" \
        -c "SELECT crm_security.add_tenant_member('t-pgb-shared', 'u-pgb-$i', 'client_user')" >/dev/null
done

start_pgbouncer

# One script per client.  "in" lines come from transactions with this client's context,
# "out" lines from transactions without one.
OUT='coalesce(crm_security.user_id(), $$-$$), coalesce(crm_security.tenant_id(), $$-$$), coalesce(nullif(current_setting($$request.jwt.claims$$, true), $$$$), $$-$$), coalesce(nullif(current_setting($$request.jwt.claim.sub$$, true), $$$$), $$-$$), coalesce(nullif(current_setting($$crm_security.requested_tenant$$, true), $$$$), $$-$$), pg_backend_pid()'
for i in $(seq 1 $CLIENTS); do
    if [ $((i % 2)) = 0 ]; then
        # no tenant claim: the tenant is named, and checked against the memberships
        tok=$("${PSQL[@]}" -d "$DB" -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'u-pgb-$i', 'exp', extract(epoch FROM now())::bigint + 600), '$SECRET', 'HS256', '{\"kid\": \"pgb\"}')")
        targ=", 't-pgb-$i'"
        treq="SET LOCAL crm_security.requested_tenant = 't-pgb-$i';"
    else
        tok=$("${PSQL[@]}" -d "$DB" -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'u-pgb-$i', 'tenant_id', 't-pgb-$i', 'exp', extract(epoch FROM now())::bigint + 600), '$SECRET', 'HS256', '{\"kid\": \"pgb\"}')")
        targ="" treq=""
    fi
    echo "$tok" >"$DIR/token$i"
    {
        for r in $(seq 1 $ROUNDS); do
            echo "BEGIN;"
            echo "SELECT 'in', $i, crm_security.set_claim_context('$tok'$targ)->>'sub', crm_security.user_id(), crm_security.tenant_id(), current_setting('request.jwt.claim.sub'), pg_backend_pid();"
            [ $((r % 3)) = 0 ] && echo "SELECT pg_sleep(0.002);"
            echo "COMMIT;"
            echo "SELECT 'out', $i, $OUT;"
            case $((r % 4)) in
                1)  # an autocommit statement sets a context, the next must not see it
                    echo "SELECT 'set', $i, crm_security.set_claim_context('$tok'$targ)->>'sub';"
                    echo "SELECT 'out', $i, $OUT;" ;;
                2)  # a plain, session-level SET of the token
                    echo "SET crm_security.token = '$tok';"
                    echo "SELECT 'out', $i, $OUT;" ;;
                3)  # the same inside a transaction block, then a new transaction
                    echo "BEGIN;"
                    echo "SET crm_security.token = '$tok';"
                    [ -n "$treq" ] && echo "$treq"
                    echo "SELECT 'in', $i, crm_security.user_id(), crm_security.user_id(), crm_security.tenant_id(), 'u-pgb-$i', pg_backend_pid();"
                    echo "COMMIT;"
                    echo "SELECT 'out', $i, $OUT;" ;;
            esac
        done
    } >"$DIR/client$i.sql"
done

pids=()
for i in $(seq 1 $CLIENTS); do
    "${PSQL[@]}" -h 127.0.0.1 -p "$PGB_PORT" -U "$APP" -d "$DB" -F ' ' -f "$DIR/client$i.sql" >"$DIR/client$i.out" 2>&1 &
    pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
errors=$(grep -l 'ERROR' "$DIR"/client*.out)
[ -z "$errors" ] || rc=1
check "$CLIENTS clients ran $ROUNDS rounds each without an error" "$rc" "$(grep -h ERROR "$DIR"/client*.out | sort | uniq -c)"

bad_in="" bad_out="" foreign="" counts_ok=0
for i in $(seq 1 $CLIENTS); do
    f=$DIR/client$i.out
    bad_in+=$(awk -v i="$i" '$1 == "in" && !($2 == i && $3 == "u-pgb-"i && $4 == "u-pgb-"i && $5 == "t-pgb-"i && $6 == "u-pgb-"i)' "$f")
    bad_out+=$(awk '$1 == "out" && !($3 == "-" && $4 == "-" && $5 == "-" && $6 == "-" && $7 == "-")' "$f")
    foreign+=$(grep -E "[ut]-pgb-[0-9]+" "$f" | grep -vE "^[a-z]+ $i " ; grep -oE "[ut]-pgb-[0-9]+" "$f" | grep -vE -- "-pgb-$i\$")
    nin=$(grep -c '^in ' "$f"); nout=$(grep -c '^out ' "$f")
    [ "$nin" -ge "$ROUNDS" ] && [ "$nout" -ge $((ROUNDS * 7 / 4)) ] || counts_ok=1
done
check "every client saw its whole output (in and out transactions)" "$counts_ok" "$(wc -l "$DIR"/client*.out)"
check "each transaction with a context saw its own client's claims" "$([ -z "$bad_in" ]; echo $?)" "$bad_in"
check "no transaction without set_claim_context saw any context" "$([ -z "$bad_out" ]; echo $?)" "$bad_out"
check "no client ever saw another client's claims" "$([ -z "$foreign" ]; echo $?)" "$foreign"

# The clients really shared server connections: at most 2 backends, each serving several
# clients.
pairs=$(awk '$1 == "in" || $1 == "out" {print $NF, $2}' "$DIR"/client*.out | sort -u)
nbackends=$(echo "$pairs" | awk '{print $1}' | sort -u | wc -l)
shared=$(echo "$pairs" | awk '{c[$1]++} END {for (b in c) if (c[b] >= 2) s++; print s + 0}')
check "the clients were interleaved on at most 2 server connections ($nbackends), each serving several clients" \
    "$([ "$nbackends" -le 2 ] && [ "$shared" -ge 1 ] && [ "$shared" = "$nbackends" ]; echo $?)" "$pairs"
check "pgbouncer logged no server error" "$(! grep -qiE 'server_(login|connect) fail|ERROR' "$DIR/pgbouncer.log"; echo $?)" \
    "$(grep -iE 'fail|ERROR' "$DIR/pgbouncer.log")"

# A membership removed: refused at the next set_claim_context on every pooled connection
# (two clients at a time, so that both server connections serve them), the other kept.
"${PSQL[@]}" -d "$DB" -c "SELECT crm_security.remove_tenant_member('t-pgb-2', 'u-pgb-2')" >/dev/null
tok2=$(cat "$DIR/token2")
for r in 1 2 3 4; do
    apids=()
    for t in t-pgb-2 t-pgb-shared; do
        "${PSQL[@]}" -h 127.0.0.1 -p "$PGB_PORT" -U "$APP" -d "$DB" -F ' ' \
            -c "SELECT 'after', '$t', coalesce((SELECT crm_security.tenant_id() FROM crm_security.set_claim_context('$tok2', '$t')), '-'), pg_backend_pid(), pg_sleep(0.05)" \
            >>"$DIR/after.out" 2>&1 &
        apids+=($!)
    done
    wait "${apids[@]}"  # not pgbouncer's
done
refused=$(grep -c '42501' "$DIR/after.out")
kept=$(grep -c "^after t-pgb-shared t-pgb-shared " "$DIR/after.out")
leaked=$(grep -c "^after t-pgb-2 " "$DIR/after.out")
check "a removed membership is refused by every pooled connection (4 of 4)" \
    "$([ "$refused" = 4 ] && [ "$leaked" = 0 ]; echo $?)" "$(cat "$DIR/after.out")"
check "the user's other membership still works there (4 of 4)" "$([ "$kept" = 4 ]; echo $?)" "$(cat "$DIR/after.out")"

stop_pgbouncer
trap - EXIT
"${PSQL[@]}" -d postgres -c "DROP DATABASE $DB WITH (FORCE)" >/dev/null 2>&1
"${PSQL[@]}" -d postgres -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
exit $failed
