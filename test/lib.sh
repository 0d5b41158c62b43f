# Shared shell helpers for make test, make demo and make bench.
# Sourced, not executed.  Sets CRM_ROOT, PG_BIN_SYS and the helpers below.

CRM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=15
CRM_PACKAGES=(postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-$PG_MAJOR-pgtap
              libtap-parser-sourcehandler-pgtap-perl libssl-dev pkg-config make gcc
              pgbouncer openssl postgresql-contrib clang-14 libclang-rt-14-dev)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as the PostgreSQL OS user when we are root (the server refuses root).  It
# runs in the current directory if that user may enter it, else in / (a checkout in a
# private directory such as /root/... or a mktemp -d): give it absolute paths, and copy
# what it must read into the work directory (see readable_copy).
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- sh -c 'cd "$0" 2>/dev/null || cd /; exec "$@"' "$PWD" "$@"
    else
        "$@"
    fi
}

# readable_copy SRC DEST: copy SRC (a file or directory) to DEST, readable by the
# PostgreSQL OS user (the checkout may not be).
readable_copy() {
    cp -r "$1" "$2" || die "cannot copy $1 to $2"
    chmod -R a+rX "$2"
    if [ "$(id -u)" = 0 ]; then chown -R postgres "$2"; fi
}

# Install whatever Debian packages are missing.
ensure_deps() {
    local missing=() p
    for p in "${CRM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    # Node (for the independent JOSE implementation) may come from elsewhere than Debian.
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing missing packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -qq >/dev/null || die "apt-get update failed"
        $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || die "apt-get install ${missing[*]} failed"
    fi
    # Debian creates a default cluster with the server package; we never use it.
    PG_BIN_SYS=/usr/lib/postgresql/$PG_MAJOR/bin
    export PATH="$PG_BIN_SYS:$PATH"
    id postgres >/dev/null 2>&1 || die "no postgres OS user"
}

# A private copy of the PostgreSQL installation with the extension installed into it, so
# that tests never depend on (or disturb) what is installed system-wide.  PostgreSQL finds
# its share and lib directories relative to its binaries, so the copy is self-contained.
private_install() {
    local inst=$1
    mkdir -p "$inst/usr/lib/postgresql" "$inst/usr/share/postgresql"
    cp -a /usr/lib/postgresql/$PG_MAJOR "$inst/usr/lib/postgresql/"
    cp -a /usr/share/postgresql/$PG_MAJOR "$inst/usr/share/postgresql/"
    make -C "$CRM_ROOT" -s install DESTDIR="$inst" >/dev/null || die "make install failed"
    PG_BIN=$inst/usr/lib/postgresql/$PG_MAJOR/bin
    PG_REGRESS=$inst/usr/lib/postgresql/$PG_MAJOR/lib/pgxs/src/test/regress/pg_regress
}

# A port nothing listens on, below the kernel's range of ephemeral ports: a port in that
# range can be taken at any moment as the local end of an outgoing connection, and a
# server started on it then fails with "Address already in use".
free_port() {
    local p lo=32768
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    [ "$lo" -gt 11000 ] 2>/dev/null || lo=32768
    for p in $(shuf -i 10000-$((lo - 1)) -n 50); do
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return; fi
    done
    die "no free port"
}

# start_cluster DIR: initdb and start a throwaway server in DIR on a free port.
# Exports PGHOST (the socket directory), PGPORT, PGUSER.
start_cluster() {
    local dir=$1; shift
    mkdir -p "$dir"
    chown postgres "$dir" 2>/dev/null || true
    as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    PGPORT=$(free_port)
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$dir'
max_connections = 120
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_worker_processes = 16
max_parallel_workers = 8
max_parallel_workers_per_gather = 4
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
log_destination = 'stderr'
logging_collector = off
$*
CONF
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; die "server did not start"; }
    export PGHOST=$dir PGPORT PGUSER=postgres
}

stop_cluster() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
    return 0
}

# CRM_SANITIZE=valgrind (make check-memory): run the private server under valgrind's
# memcheck (children follow the postmaster's forks), with PostgreSQL's suppressions.  One
# log per process in WORK/memcheck/; memcheck_check prints the errors with crm_security
# code on the stack and fails if there is one.
memcheck_setup() {
    local work=$1 pgdir=$2 bin=$PG_BIN/postgres
    command -v valgrind >/dev/null || die "CRM_SANITIZE=valgrind needs valgrind (apt-get install valgrind)"
    mkdir -p "$work/memcheck"; chmod 777 "$work/memcheck"
    stop_cluster "$pgdir"
    mv "$bin" "$bin.real"
    cat >"$bin" <<SH
#!/bin/sh
exec valgrind --quiet --tool=memcheck ${CRM_VALGRIND_OPTS:-} --error-limit=no --num-callers=40 --trace-children=no \
  --read-var-info=no --suppressions=$CRM_ROOT/test/vendor/postgresql-15/valgrind.supp \
  --log-file=$work/memcheck/%p.log "\$(dirname "\$0")/postgres.real" "\$@"
SH
    chmod 755 "$bin"
    cat >>"$pgdir/data/postgresql.conf" <<CONF
jit = off
max_parallel_workers_per_gather = 0
CONF
    as_pg "$PG_BIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 300 start >/dev/null \
        || { cat "$pgdir/server.log" >&2; die "server (under valgrind) did not start"; }
}

memcheck_check() {
    local work=$1 f n=0 all=0
    for f in "$work"/memcheck/*.log; do
        [ -s "$f" ] || continue
        grep -q '^==[0-9]*== [A-Z].*' "$f" || continue
        all=$((all + 1))
        grep -q 'crm_security\.so' "$f" || continue
        n=$((n + 1))
        log "memcheck errors in crm_security code ($(basename "$f")):"; head -80 "$f" >&2
    done
    log "memcheck: $n process(es) with errors in crm_security code, $all with any error"
    [ "$n" -eq 0 ]
}
