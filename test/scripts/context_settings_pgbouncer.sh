#!/usr/bin/env bash
# Verification settings kept in the key store reach every pooled server connection at its
# next transaction (issue 15's reproduction): behind pgbouncer in transaction pooling mode,
# two server connections accept a token of audience app-old and keep it in their token
# caches; then an administrator sets the audience app-new with set_verification_settings()
# in another session, and the SAME server connections (no reconnect) refuse the app-old
# token at once and accept an app-new one.  A key disabled afterwards is refused by both at
# their next transaction too, cached token or not.
set -u
source "$CRM_ROOT/test/lib.sh"
source "$CRM_ROOT/test/scripts/include/pgbouncer.sh"
PSQL=("$PG_BIN/psql" -X -q -A -t -v VERBOSITY=sqlstate)
DB=crm_ctx_settings_pgb
APP=regress_pgb_settings_app
SECRET=pgbouncer-settings-secret-0123456789-0123
DIR=$CRM_WORK/pgbouncer_settings

echo "1..7"
pgb_database \
    -c "SELECT crm_security.add_jwt_key('pgbs', 'HS256', '$SECRET')" >/dev/null

start_pgbouncer

tok() {  # tok AUDIENCE
    "${PSQL[@]}" -d "$DB" -c "SELECT crm_security.jwt_sign(jsonb_build_object('sub', 'u-$1', 'tenant_id', 't1', 'aud', '$1', 'exp', extract(epoch FROM now())::bigint + 600), '$SECRET', 'HS256', '{\"kid\": \"pgbs\"}')"
}
OLD=$(tok app-old)
NEW=$(tok app-new)

# round NAME TOKEN: two clients at once, so that both server connections serve one each;
# each line: NAME, the sub or the SQLSTATE, the server pid.
round() {
    local pids=()
    for c in 1 2; do
        "${PSQL[@]}" -h 127.0.0.1 -p "$PGB_PORT" -U "$APP" -d "$DB" -F ' ' \
            -c "BEGIN" \
            -c "SELECT '$1', coalesce(crm_security.set_claim_context('$2')->>'sub', '-'), pg_backend_pid(), pg_sleep(0.3)" \
            -c "COMMIT" >>"$DIR/$1.out" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}"  # not pgbouncer's
    # a refused statement prints its SQLSTATE and no row: add the pid from the error's session
    cat "$DIR/$1.out"
}

before=$(round before "$OLD"; round before2 "$OLD")
pids_before=$(echo "$before" | awk '$1 ~ /^before/ {print $3}' | sort -u)
check "before the change, both pooled server connections accept the app-old token" \
    "$([ "$(echo "$before" | grep -c ' u-app-old ')" = 4 ] && [ "$(echo "$pids_before" | wc -l)" = 2 ]; echo $?)" "$before"

"${PSQL[@]}" -d "$DB" -c "SELECT crm_security.set_verification_settings(audience => 'app-new')" >/dev/null

after=$(round after "$OLD"; round after2 "$OLD")
check "right after set_verification_settings(audience => 'app-new'), the app-old token is refused on every pooled connection (4 of 4, 28000)" \
    "$([ "$(echo "$after" | grep -c '28000')" = 4 ] && ! echo "$after" | grep -q 'u-app-old'; echo $?)" "$after"

new=$(round new "$NEW"; round new2 "$NEW")
pids_new=$(echo "$new" | awk '$1 ~ /^new/ {print $3}' | sort -u)
check "the app-new token is accepted there (4 of 4)" "$([ "$(echo "$new" | grep -c ' u-app-new ')" = 4 ]; echo $?)" "$new"
check "by the same two server connections as before the change (no reconnect)" \
    "$([ "$pids_new" = "$pids_before" ]; echo $?)" "before: $pids_before; after: $pids_new"

# The session settings are checked in addition, never instead: a database default that lags
# cannot let the app-old token in again.
"${PSQL[@]}" -d "$DB" -c "ALTER DATABASE $DB SET crm_security.jwt_audience = 'app-old'" >/dev/null
"${PSQL[@]}" -d "$DB" -v VERBOSITY=sqlstate -c "BEGIN" -c "SELECT crm_security.set_claim_context('$OLD')" -c "COMMIT" >"$DIR/guc.out" 2>&1
check "a new connection with crm_security.jwt_audience = app-old still refuses the app-old token (the store's audience holds)" \
    "$(grep -q '28000' "$DIR/guc.out"; echo $?)" "$(cat "$DIR/guc.out")"
"${PSQL[@]}" -d "$DB" -c "ALTER DATABASE $DB RESET crm_security.jwt_audience" >/dev/null

# A disabled key: the cached app-new token is refused at the next transaction everywhere.
"${PSQL[@]}" -d "$DB" -c "SELECT crm_security.disable_jwt_key('pgbs')" >/dev/null
dis=$(round disabled "$NEW"; round disabled2 "$NEW")
check "after disable_jwt_key, the cached token is refused on every pooled connection (4 of 4)" \
    "$([ "$(echo "$dis" | grep -c '28000')" = 4 ] && ! echo "$dis" | grep -q 'u-app-new'; echo $?)" "$dis"

stop_pgbouncer
trap - EXIT
"${PSQL[@]}" -d postgres -c "DROP DATABASE $DB WITH (FORCE)" >/dev/null 2>&1
"${PSQL[@]}" -d postgres -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
exit $failed
