# pgbouncer in transaction pooling mode in front of the test server, for the TAP suites that
# test pooled connections.  Needs DIR, DB, APP and PSQL set.  check DESCRIPTION STATUS
# [DIAGNOSTIC] prints one TAP line; pgb_database makes the suite's database; start_pgbouncer
# sets PGB_PORT, stops pgbouncer when the script exits, and ends the script when pgbouncer
# does not come up; stop_pgbouncer stops it earlier.

n=0
failed=0

check() {  # check DESCRIPTION CONDITION-EXIT-STATUS [diagnostic]
    n=$((n + 1))
    if [ "$2" = 0 ]; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1"
        [ -n "${3:-}" ] && printf '%s\n' "$3" | head -20 | sed 's/^/#   /'
        failed=1
    fi
}

# pgb_database [psql arguments...]: DIR emptied, database DB created afresh with the extension
# and the login role APP, then the arguments (more -c commands) run in it.
pgb_database() {
    rm -rf "$DIR"
    mkdir -p "$DIR"
    chown postgres "$DIR" 2>/dev/null
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
    "${PSQL[@]}" -d "$DB" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION crm_security" \
        -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP') THEN CREATE ROLE $APP LOGIN; END IF; END \$\$" \
        "$@" >/dev/null
}

stop_pgbouncer() {
    if [ -f "$DIR/pgbouncer.pid" ]; then
        kill "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null
        sleep 0.5
    fi
}

# start_pgbouncer [pool size]: a pool of 2 server connections unless told otherwise.
start_pgbouncer() {
    local pool=${1:-2} up=1
    PGB_PORT=$(free_port)
    printf '"%s" ""\n"postgres" ""\n' "$APP" >"$DIR/userlist.txt"
    cat >"$DIR/pgbouncer.ini" <<INI
[databases]
$DB = host=$PGHOST port=$PGPORT dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
pool_mode = transaction
default_pool_size = $pool
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 50
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
INI
    chown -R postgres "$DIR" 2>/dev/null
    as_pg /usr/sbin/pgbouncer "$DIR/pgbouncer.ini" >"$DIR/stdout.log" 2>&1 &
    trap stop_pgbouncer EXIT
    for _ in $(seq 1 50); do
        if "${PSQL[@]}" -h 127.0.0.1 -p "$PGB_PORT" -U "$APP" -d "$DB" -c "SELECT 1" >/dev/null 2>&1; then
            up=0
            break
        fi
        sleep 0.2
    done
    check "pgbouncer runs in transaction pooling mode with a pool of $pool" "$up" \
        "$(cat "$DIR/pgbouncer.log" "$DIR/stdout.log" 2>/dev/null)"
    [ "$up" = 0 ] || exit 1
}
