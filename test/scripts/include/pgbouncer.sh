# pgbouncer in transaction pooling mode in front of the test server, for the TAP suites that
# test pooled connections.  Needs check DESCRIPTION STATUS [DIAGNOSTIC] and DIR, DB, APP and
# PSQL set.  start_pgbouncer sets PGB_PORT, stops pgbouncer when the script exits, and ends
# the script when pgbouncer does not come up; stop_pgbouncer stops it earlier.

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
