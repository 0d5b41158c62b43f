#!/usr/bin/env bash
# make demo: build, install into a private copy of PostgreSQL (as make test does; nothing is
# installed system-wide), start a throwaway cluster and walk through the product in psql
# (demo/*.sql, in order).  The cluster keeps running; `make demo-stop` stops it.
#
# Every step runs with ON_ERROR_STOP: a step that fails stops the demo and makes the command
# fail (a refusal the demo shows on purpose is caught inside the step's SQL).
# Environment: CRM_DEMO_DIR, the state directory (default /tmp/crm_security_demo).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
STATE=${CRM_DEMO_DIR:-/tmp/crm_security_demo}
case "$STATE" in
/*) ;;
*) die "CRM_DEMO_DIR must be an absolute path" ;;
esac

case "${1:-start}" in
stop)
    if [ -f "$STATE/env" ]; then
        source "$STATE/env"
        stop_cluster "$STATE/pg"
        rm -rf "$STATE"
        echo "demo cluster stopped"
    else
        echo "no demo cluster is running"
    fi
    exit 0
    ;;
esac

ensure_deps
if [ -f "$STATE/env" ]; then
    source "$STATE/env"
    stop_cluster "$STATE/pg"
fi
rm -rf "$STATE"; mkdir -p "$STATE"; chmod 755 "$STATE"
log "building crm_security and installing it into a private copy of PostgreSQL"
make -C "$CRM_ROOT" -s >/dev/null || die "build failed"
private_install "$STATE/inst"
start_cluster "$STATE/pg" "shared_preload_libraries = 'crm_security'"
printf 'PG_BIN=%q\nPGHOST=%q\nPGPORT=%q\n' "$PG_BIN" "$PGHOST" "$PGPORT" >"$STATE/env"
# The server's OS user runs psql and may not read the checkout: it reads copies.
readable_copy "$CRM_ROOT/demo" "$STATE/demo"
as_pg "$PG_BIN/psql" -X -q -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE crm_demo" >/dev/null \
    || die "could not create the demo database"
for f in "$STATE"/demo/*.sql; do
    echo
    if ! (cd "$STATE/demo" && as_pg "$PG_BIN/psql" -X -d crm_demo -v ON_ERROR_STOP=1 -e -f "$f" 2>&1); then
        cat >&2 <<MSG

error: demo step $(basename "$f") failed (above); the demo stops here.
The demo cluster is still running for a look (PGHOST=$PGHOST PGPORT=$PGPORT); stop it with: make demo-stop
MSG
        exit 1
    fi
done
cat <<MSG

The demo cluster is still running. Connect with:
    sudo -u postgres $PG_BIN/psql -h $PGHOST -p $PGPORT crm_demo
(or psql -h 127.0.0.1 -p $PGPORT -U postgres crm_demo). Stop it with: make demo-stop
MSG
