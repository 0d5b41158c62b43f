#!/usr/bin/env bash
# make demo: build, install, start a throwaway cluster and walk through the product in psql
# (demo/*.sql, in order).  The cluster keeps running; `make demo-stop` stops it.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
STATE=/tmp/crm_security_demo

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
log "building and installing crm_security"
make -C "$CRM_ROOT" -s >/dev/null || die "build failed"
make -C "$CRM_ROOT" -s install >/dev/null || die "make install failed"
PG_BIN=$PG_BIN_SYS
start_cluster "$STATE/pg"
printf 'PG_BIN=%q\nPGHOST=%q\nPGPORT=%q\n' "$PG_BIN" "$PGHOST" "$PGPORT" >"$STATE/env"
as_pg "$PG_BIN/psql" -X -q -d postgres -c "CREATE DATABASE crm_demo" >/dev/null
for f in "$CRM_ROOT"/demo/*.sql; do
    echo
    as_pg "$PG_BIN/psql" -X -d crm_demo -v ON_ERROR_STOP=0 -e -f "$f" 2>&1
done
cat <<MSG

The demo cluster is still running. Connect with:
    sudo -u postgres psql -h $PGHOST -p $PGPORT crm_demo
(or psql -h 127.0.0.1 -p $PGPORT -U postgres crm_demo). Stop it with: make demo-stop
MSG
