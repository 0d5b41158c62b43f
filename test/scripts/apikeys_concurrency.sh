#!/usr/bin/env bash
# API keys across sessions, in both modes of the use counters (docs/api-keys.md,
# "Preloading"): the test cluster (no shared_preload_libraries: counters in the table) and
# a second cluster started here with shared_preload_libraries = 'crm_security' and a pepper
# in its configuration (counters in shared memory).  In each:
#  - 8 concurrent sessions verifying one key: the use count is exact;
#  - a per-day limit under 8 concurrent sessions: exactly the limit succeeds;
#  - a per-minute limit across two sessions: exactly the limit succeeds, the next use is
#    53400 with the retry time in its detail; with preloading the limit is GCRA (the shared
#    table of rate_limit()): one use comes back after 60 s / limit, and only one; without,
#    the fixed minute of the usage row;
#  - uses in transactions that roll back: counted with preloading, rolled back without;
#  - a transaction holding a verified use open: another session's verification of the same
#    key does not wait with preloading (and waits on the row lock without, as documented);
#  - a revocation is seen at once by another session, inside its open transaction;
# and, with preloading, the counters reach the table and survive a restart.  Finally no
# key, hash or pepper is in either server log.
# Environment (from test/run.sh): PG_BIN, PGHOST, PGPORT, CRM_ROOT, CRM_WORK.
set -u
: "${PG_BIN:?}" "${CRM_ROOT:?}"
source "$CRM_ROOT/test/lib.sh"
PSQL=("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=sqlstate)
DB=crm_apikeys_conc
source "$(dirname "$0")/include/tap.sh"
source "$(dirname "$0")/include/session.sh"
errcode() { sed -n 's/.*ERROR:  *\([0-9A-Z]\{5\}\).*/\1/p' | head -1; }
PEPPER=conc-pepper-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e
WORK=${CRM_WORK:-$(mktemp -d)}
MAIN_HOST=$PGHOST MAIN_PORT=$PGPORT MAIN_LOG=${CRM_WORK:+$CRM_WORK/pg/server.log}
PRE_DIR=$WORK/apikeys_preload
ALL_KEYS=()

echo "1..40"
rm -rf "$PRE_DIR"
start_cluster "$PRE_DIR" "shared_preload_libraries = 'crm_security'
crm_security.api_key_usage_flush_interval = 1
crm_security.api_key_pepper = '$PEPPER'" >/dev/null
PRE_HOST=$PGHOST PRE_PORT=$PGPORT
trap 'stop_cluster "$PRE_DIR"' EXIT

use() {  # use main|preload: point PGHOST/PGPORT at that cluster
    if [ "$1" = main ]; then export PGHOST=$MAIN_HOST PGPORT=$MAIN_PORT; else export PGHOST=$PRE_HOST PGPORT=$PRE_PORT; fi
}
newkey() {  # newkey NAME [create_api_key arguments]: prints "id key"
    q -F ' ' -c "SELECT id, api_key FROM crm_security.create_api_key('$1', 'acme', '{read}'$2)"
}
usage() { q -c "SELECT use_count FROM crm_security.api_key_usage('$1')"; }
# hammer KEY SESSIONS CALLS: SESSIONS concurrent psql sessions, each CALLS verifications in
# autocommit; prints how many succeeded.
hammer() {
    local f=$WORK/apikeys_calls.$$.sql i
    for i in $(seq 1 "$3"); do echo "SELECT 'ok' FROM crm_security.verify_api_key('$1');"; done >"$f"
    for i in $(seq 1 "$2"); do "${PSQL[@]}" -d "$DB" -f "$f" 2>/dev/null & done | grep -c '^ok$'
    wait
    rm -f "$f"
}

for mode in preload main; do
    use $mode
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
    q -c "CREATE EXTENSION crm_security" >/dev/null
    shared=$([ $mode = preload ] && echo t || echo f)
    check "$mode: shared counters $([ $shared = t ] && echo on || echo off) (api_key_usage_slots $([ $shared = t ] && echo shown || echo undefined))" \
        "$shared" "$(q -c "SELECT current_setting('crm_security.api_key_usage_slots', true) IS NOT NULL")"

    read -r K_ID K <<<"$(newkey conc "")"
    ALL_KEYS+=("$K")
    check "$mode: 8 sessions x 200 verifications of one key all succeed" 1600 "$(hammer "$K" 8 200)"
    check "$mode: ... and the use count is exact" 1600 "$(usage "$K_ID")"

    read -r L_ID L <<<"$(newkey limited ", rate_limit_per_day => 100")"
    ALL_KEYS+=("$L")
    check "$mode: a limit of 100 a day under 8 sessions x 20 attempts: exactly 100 succeed" 100 "$(hammer "$L" 8 20)"
    check "$mode: ... the refusal is 53400" 53400 \
        "$(q -c "SELECT * FROM crm_security.verify_api_key('$L')" | errcode)"

    # A key's own per-minute limit across two sessions (not near the end of a clock minute,
    # where the fixed window of the unpreloaded mode would start again).
    read -r M_ID M <<<"$(newkey minute ", rate_limit_per_minute => 30")"
    ALL_KEYS+=("$M")
    s=$(date +%S); s=${s#0}; [ "$s" -lt 50 ] || sleep $((61 - s))
    check "$mode: a limit of 30 a minute under 2 sessions x 20 attempts: exactly 30 succeed" 30 "$(hammer "$M" 2 20)"
    out=$("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=verbose -d "$DB" -c "SELECT * FROM crm_security.verify_api_key('$M')" 2>&1)
    check "$mode: ... the next use is 53400" 53400 "$(sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' <<<"$out")"
    retry=$(sed -n "s/^DETAIL:  The key's limit of 30 uses per minute is reached; retry in \([0-9]*\) seconds\.$/\1/p" <<<"$out")
    check "$mode: ... with the retry time in its detail (1 to 60 s)" t "$([ -n "$retry" ] && [ "$retry" -ge 1 ] && [ "$retry" -le 60 ] && echo t || echo "f: $out")"
    check "$mode: ... and set_api_key_context is refused the same way" 53400 \
        "$(q -c "SELECT crm_security.set_api_key_context('$M')" | errcode)"
    if [ $mode = preload ]; then
        # GCRA with a burst of 30: one use every 2 s refills; the refusal says when.
        check "$mode: GCRA: the retry time is at most 60 s / 30" t "$([ "${retry:-99}" -le 2 ] && echo t || echo "f: $retry")"
        sleep 2.1
        check "$mode: ... after it, one more use succeeds in another session, and only one" 1 "$(hammer "$M" 1 3)"
    fi
    check "$mode: refused uses are not counted" "$([ $mode = preload ] && echo 31 || echo 30)" "$(q -c "SELECT use_count FROM crm_security.api_key_usage('$M_ID')")"

    read -r R_ID R <<<"$(newkey rollback "")"
    ALL_KEYS+=("$R")
    for i in 1 2 3 4 5; do
        q -c "BEGIN" -c "SELECT * FROM crm_security.verify_api_key('$R')" -c "SELECT * FROM crm_security.verify_api_key('$R')" -c "ROLLBACK" >/dev/null
    done
    if [ $mode = preload ]; then
        check "$mode: 10 uses in transactions that rolled back are counted" 10 "$(usage "$R_ID")"
    else
        check "$mode: 10 uses in transactions that rolled back are not counted (documented)" 0 "$(usage "$R_ID")"
    fi

    # Session A holds a transaction with a verified use open; session B verifies the same key.
    session_a_start
    a "BEGIN;" >/dev/null
    check "$mode: session A verifies the key in an open transaction" ok "$(a "SELECT 'ok' FROM crm_security.verify_api_key('$K');")"
    out=$(q -c "SET statement_timeout = '3s'" -c "SELECT 'ok' FROM crm_security.verify_api_key('$K')")
    if [ $mode = preload ]; then
        check "$mode: session B verifies the same key without waiting for A" ok "$out"
    else
        check "$mode: session B waits for A's row lock (documented; cancelled after 3 s)" 57014 "$(errcode <<<"$out")"
    fi
    check "$mode: session B revokes the key" "" "$(q -c "SELECT crm_security.revoke_api_key('$K_ID')")"
    # (no pipe: the coprocess descriptors do not reach a pipeline's subshells)
    out=$(a "SELECT 'ok' FROM crm_security.verify_api_key('$K');")
    check "$mode: session A, in its open transaction, is refused at its next verification" 28000 "$(errcode <<<"$out")"
    a "ROLLBACK;" >/dev/null
    session_a_end

    # Refusals whose statements carry a key or a pepper, for the log check below.
    q -c "SELECT * FROM crm_security.verify_api_key('$K')" -c "SELECT * FROM crm_security.verify_api_key('${K}x')" \
      -c "SELECT * FROM crm_security.verify_api_key('$L', 'svc', '10.0.0.1')" \
      -c "SELECT * FROM crm_security.verify_api_key('$R', 'svc', '10.0.0.0/8')" \
      -c "SET crm_security.api_key_pepper = '${PEPPER:0:20}'" \
      -c "ALTER DATABASE $DB SET crm_security.api_key_pepper = '$PEPPER'" >/dev/null 2>&1
done

# With preloading: the shared counters reach the table and survive a restart.
use preload
read -r F_ID F <<<"$(newkey flushed "")"
ALL_KEYS+=("$F")
hammer "$F" 2 50 >/dev/null
sleep 1.2
q -c "SELECT * FROM crm_security.verify_api_key('$F')" >/dev/null
check "preload: a verification after the flush interval writes the counters" 101 \
    "$(q -c "SELECT use_count FROM crm_security.api_key_usage WHERE key_id = '$F_ID'")"
hammer "$F" 1 10 >/dev/null
q -c "CREATE ROLE regress_ak_flusher IN ROLE crm_security_api_admin" >/dev/null
check "preload: flush_api_key_usage() writes them now (called by a member of crm_security_api_admin)" t \
    "$(q -c "SET ROLE regress_ak_flusher" -c "SELECT crm_security.flush_api_key_usage() > 0")"
check "preload: ... the table holds the exact count" 111 \
    "$(q -c "SELECT use_count FROM crm_security.api_key_usage WHERE key_id = '$F_ID'")"
as_pg "$PG_BIN/pg_ctl" -D "$PRE_DIR/data" -m fast -w restart -l "$PRE_DIR/server.log" >/dev/null 2>&1
q -c "SELECT * FROM crm_security.verify_api_key('$F')" >/dev/null
check "preload: after a restart the count goes on from the table" 112 "$(usage "$F_ID")"
check "preload: the pepper from postgresql.conf hashes the keys" hmac-sha256 \
    "$(q -c "SELECT DISTINCT hash_scheme FROM crm_security.api_key_secrets")"

# No key, hash or pepper in either server log.
check "the logs hold the refusals (the check below is meaningful)" 0 \
    "$(grep -q 'The API key was revoked' "$PRE_DIR/server.log" && grep -q 'an API key pepper cannot be stored in the catalog' "$PRE_DIR/server.log"; echo $?)"
# and the peppers of test/pgtap/apikeys_*.sql, which run before this script in make test
pats=("$PEPPER" "${PEPPER:0:20}" pepper-0123456789abcdef0123456789abcdef pepper-one-0123456789 pepper-two-0123456789)
for k in "${ALL_KEYS[@]}"; do pats+=("${k: -36:30}"); done
for h in $(q -c "SELECT encode(key_hash, 'hex') FROM crm_security.api_key_secrets"); do pats+=("$h"); done
leaks=0
for log in "$PRE_DIR/server.log" ${MAIN_LOG:+"$MAIN_LOG"}; do
    [ -r "$log" ] || continue
    for p in "${pats[@]}"; do grep -qF -- "$p" "$log" && leaks=$((leaks + 1)) && echo "# found in $log: ${p:0:6}..."; done
done
check "no key, hash or pepper in the server logs (${#pats[@]} strings)" 0 "$leaks"

use main
# A short pepper SET before the library is loaded is dropped with a warning when it loads,
# instead of failing the load.
out=$(q -c "SET crm_security.api_key_pepper = 'short'" -c "SELECT crm_security.generate_api_key() IS NOT NULL")
check "a short pepper set before the library loads is dropped with a warning at load" \
    "WARNING:  22023|t" "$(tr '\n' '|' <<<"$out" | sed 's/|$//')"
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
exit $failed
