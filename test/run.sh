#!/usr/bin/env bash
# make test: install what is missing, build with -Werror, install into a private copy of
# PostgreSQL, start a throwaway cluster, run pg_regress, the pgTAP suites and the shell
# suites (TAP), stop the cluster, print "N passed, M failed" last.
#
# Environment: CRM_TESTS="regress pgtap scripts" picks suites; CRM_ONLY=name runs the
# tests whose file name contains it; CRM_SANITIZE=valgrind (make check-memory) runs the
# server under valgrind's memcheck (memcheck_setup in lib.sh).
set -uo pipefail
source "$(dirname "$0")/lib.sh"

ensure_deps
WORK=$(mktemp -d /tmp/crm_security_test.XXXXXX)
chmod 755 "$WORK"
cleanup() { stop_cluster "$WORK/pg"; [ -n "${CRM_KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT

log "building with -Werror"
# In the environment, so that every make below (make install included) builds with the same
# flags: the objects depend on them (.build-flags), a change rebuilds every object.
export WERROR=1
make -C "$CRM_ROOT" -s >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; echo "0 passed, 1 failed"; exit 1; }
private_install "$WORK/inst"
start_cluster "$WORK/pg"
[ "${CRM_SANITIZE:-}" != valgrind ] || memcheck_setup "$WORK" "$WORK/pg"
export CRM_ROOT CRM_WORK=$WORK PG_BIN
export CRM_TESTDATA=${CRM_TESTDATA:-$CRM_ROOT/../shared/testdata}
# Test data readable by the server process, for pg_read_file().
if [ -d "$CRM_TESTDATA" ]; then
    cp -r "$CRM_TESTDATA" "$WORK/testdata" && chmod -R a+rX "$WORK/testdata"
fi
export CRM_SERVER_TESTDATA=$WORK/testdata

suites=${CRM_TESTS:-regress pgtap scripts}
only=${CRM_ONLY:-}
passed=0 failed=0

pick() {  # pick GLOB: the files of GLOB, filtered by CRM_ONLY
    local f
    for f in $1; do
        [ -e "$f" ] || continue
        # 00_install creates the extension for every pg_regress test after it.
        [ -z "$only" ] || [[ "$(basename "$f")" == *"$only"* ]] || [[ "$f" == */00_install.sql ]] || continue
        echo "$f"
    done
}

if [[ " $suites " == *" regress "* ]]; then
    tests=$(pick "$CRM_ROOT/test/sql/*.sql" | xargs -r -n1 basename | sed 's/\.sql$//' | tr '\n' ' ')
    if [ -n "$tests" ]; then
        log "pg_regress: $tests"
        # pg_regress runs as the PostgreSQL OS user, which may not read the checkout (a
        # clone in /root or in a mktemp -d): it gets copies, laid out as in the checkout
        # (test/sql, test/expected), since tests include shared fixtures with
        # \i test/sql/... relative to the directory psql runs in (as in make installcheck).
        mkdir -p "$WORK/regress/in/test"
        readable_copy "$CRM_ROOT/test/sql" "$WORK/regress/in/test/sql"
        readable_copy "$CRM_ROOT/test/expected" "$WORK/regress/in/test/expected"
        chown -R postgres "$WORK/regress" 2>/dev/null
        cd "$WORK/regress/in"
        as_pg "$PG_REGRESS" --host="$PGHOST" --port="$PGPORT" --user=postgres \
            --bindir="$PG_BIN" --inputdir="$WORK/regress/in/test" --outputdir="$WORK/regress" \
            --dbname=crm_regression $tests >"$WORK/regress/out.txt" 2>&1
        rc=$?
        cd "$CRM_ROOT"
        cat "$WORK/regress/out.txt"
        # pg_regress's exit status decides: the "ok" lines only make the tally.  A non-zero
        # status counts as at least one failure even without a FAILED line (a missing
        # expected file, a database it could not create, a crash).
        p=$(grep -cE '\.\.\. ok' "$WORK/regress/out.txt")
        f=$(grep -cE '\.\.\. FAILED|\.\.\. failed' "$WORK/regress/out.txt")
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
        if [ "$rc" -eq 0 ] && [ "$f" -ne 0 ]; then f=0; fi
        passed=$((passed + p)); failed=$((failed + f))
        if [ -n "${CRM_ACCEPT:-}" ]; then cp "$WORK"/regress/results/*.out "$CRM_ROOT/test/expected/"; fi
        if [ "$f" -gt 0 ] && [ -f "$WORK/regress/regression.diffs" ]; then
            head -c 20000 "$WORK/regress/regression.diffs"
        fi
    fi
fi

count_tap() {  # count_tap FILE: add the file's TAP results to the totals
    local out=$1 p f
    p=$(grep -cE '^[[:space:]]*ok [0-9]+' "$out")
    f=$(grep -cE '^[[:space:]]*not ok [0-9]+' "$out")
    # A suite that died or broke its plan fails even when no assertion did.
    if grep -qE '^Result: FAIL' "$out" && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
}

if [[ " $suites " == *" pgtap "* ]]; then
    files=$(pick "$CRM_ROOT/test/pgtap/*.sql")
    if [ -n "$files" ]; then
        log "pgTAP"
        # Each file runs in its own database, a copy of a template that has the extensions,
        # so that no file sees what another left behind and each passes alone and in any
        # order (a copy takes a fraction of a second).
        if ! as_pg "$PG_BIN/psql" -X -q -d postgres -v ON_ERROR_STOP=1 \
                -c "CREATE DATABASE crm_tap_template" >/dev/null ||
           ! as_pg "$PG_BIN/psql" -X -q -d crm_tap_template -v ON_ERROR_STOP=1 \
                -c "CREATE EXTENSION pgtap; CREATE EXTENSION crm_security; CREATE EXTENSION pgcrypto;" >/dev/null; then
            log "pgTAP: the template database could not be set up"; failed=$((failed + 1))
            files=
        fi
        : >"$WORK/pgtap.txt"
        n=0
        for f in $files; do
            n=$((n + 1))
            if ! as_pg "$PG_BIN/psql" -X -q -d postgres -v ON_ERROR_STOP=1 \
                    -c "CREATE DATABASE crm_tap_$n TEMPLATE crm_tap_template" >/dev/null; then
                echo "not ok 1 - $(basename "$f"): its database could not be created" >>"$WORK/pgtap.txt"
                continue
            fi
            PGOPTIONS="-c crm_test.datadir=$CRM_SERVER_TESTDATA" \
                pg_prove -v -h "$PGHOST" -p "$PGPORT" -U postgres -d "crm_tap_$n" "$f" >"$WORK/pgtap.one" 2>&1
            rc=$?
            cat "$WORK/pgtap.one" >>"$WORK/pgtap.txt"
            # pg_prove failing without a failed assertion (a broken plan, a lost connection)
            # is a failure of that file.
            if [ "$rc" -ne 0 ] && ! grep -qE '^[[:space:]]*not ok [0-9]+|^Result: FAIL' "$WORK/pgtap.one"; then
                echo "not ok 1 - $(basename "$f"): pg_prove exited with status $rc" >>"$WORK/pgtap.txt"
            fi
            as_pg "$PG_BIN/psql" -X -q -d postgres -v ON_ERROR_STOP=1 -c "DROP DATABASE crm_tap_$n" >/dev/null ||
                echo "not ok 1 - $(basename "$f"): its database could not be dropped" >>"$WORK/pgtap.txt"
        done
        grep -vE '^[[:space:]]*ok [0-9]+' "$WORK/pgtap.txt"
        count_tap "$WORK/pgtap.txt"
    fi
fi

if [[ " $suites " == *" scripts "* ]]; then
    files=$(pick "$CRM_ROOT/test/scripts/*.sh")
    if [ -n "$files" ]; then
        log "shell suites"
        prove -v --exec bash $files >"$WORK/scripts.txt" 2>&1
        grep -vE '^[[:space:]]*ok [0-9]+' "$WORK/scripts.txt"
        count_tap "$WORK/scripts.txt"
    fi
fi

# The server must have survived everything.
if ! as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" status >/dev/null; then
    log "the server is not running any more"; failed=$((failed + 1))
elif grep -qE 'terminated by signal|was terminated|server process .* exited' "$WORK/pg/server.log"; then
    log "a server process crashed:"; grep -E 'terminated by signal|exited' "$WORK/pg/server.log" | head
    failed=$((failed + 1))
fi

[ "${CRM_SANITIZE:-}" != valgrind ] || memcheck_check "$WORK" || failed=$((failed + 1))

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
