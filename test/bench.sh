#!/usr/bin/env bash
# make bench: build, install into a private copy of PostgreSQL, start a throwaway cluster
# and run every test/bench/*.sh against it.  Each prints its own figures; ratios are
# always against a baseline measured in the same run.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

ensure_deps
WORK=$(mktemp -d /tmp/crm_security_bench.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/pg"; rm -rf "$WORK"' EXIT
make -C "$CRM_ROOT" -s >/dev/null || die "build failed"
private_install "$WORK/inst"
start_cluster "$WORK/pg" $'max_parallel_workers_per_gather = 0\nmax_wal_size = 4GB'
export CRM_ROOT CRM_WORK=$WORK PG_BIN
as_pg "$PG_BIN/psql" -X -q -d postgres -c "CREATE DATABASE crm_bench" >/dev/null
as_pg "$PG_BIN/psql" -X -q -d crm_bench -c "CREATE EXTENSION crm_security; CREATE EXTENSION pgcrypto" >/dev/null
export PGDATABASE=crm_bench
# A new server's shared memory is mapped but not yet touched: the first use of each buffer
# costs a page fault (the kernel allocates the page), which a long-running server has long
# paid.  Touch every buffer once (a table larger than shared_buffers, written and dropped),
# then checkpoint.  A benchmark that measures in one session does the same in it: each
# process also faults once per page it has not used yet.
as_pg "$PG_BIN/psql" -X -q -c "CREATE TABLE bench_warm (pad text);
    INSERT INTO bench_warm SELECT repeat('x', 200) FROM generate_series(1, 1500000);
    DROP TABLE bench_warm; CHECKPOINT;" >/dev/null
echo "crm_security benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores, $(openssl version)"
for b in "$CRM_ROOT"/test/bench/*.sh; do
    [ -z "${CRM_ONLY:-}" ] || [[ "$(basename "$b")" == *"$CRM_ONLY"* ]] || continue
    echo
    echo "## $(basename "$b" .sh)"
    bash "$b" || echo "(benchmark $(basename "$b") failed)"
done
