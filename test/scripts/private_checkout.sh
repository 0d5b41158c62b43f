#!/usr/bin/env bash
# make test and make demo from a checkout that only its owner can read (a clone in /root, a
# mktemp -d): the PostgreSQL OS user must not need to read anything in it.  A copy of the
# working tree goes into a directory of mode 700; a reduced make test (the pg_regress suite,
# one test) and make demo run there, and a demo with a broken step must fail.
#
# The inner make test runs only pg_regress and sets CRM_PRIVATE_CHECKOUT_INNER, so this
# script never runs itself.
set -uo pipefail
: "${CRM_WORK:?}" "${CRM_ROOT:?}"
if [ -n "${CRM_PRIVATE_CHECKOUT_INNER:-}" ]; then
    echo "1..0 # SKIP already inside a private checkout run"
    exit 0
fi
echo "1..8"
n=0
ok() {  # ok STATUS DESCRIPTION [FILE-TO-SHOW]
    n=$((n + 1))
    if [ "$1" = 0 ]; then echo "ok $n - $2"; else
        echo "not ok $n - $2"
        [ -z "${3:-}" ] || tail -40 "$3" | sed 's/^/# /'
    fi
}

PRIV=$(mktemp -d "$CRM_WORK/private.XXXXXX")
chmod 700 "$PRIV"
DEMO_DIR="$CRM_WORK/private_demo"
export CRM_DEMO_DIR=$DEMO_DIR
cleanup() {
    [ -d "$PRIV/crm" ] && make -C "$PRIV/crm" -s demo-stop >/dev/null 2>&1
    rm -rf "$PRIV"
}
trap cleanup EXIT

# The working tree as it is (built objects included, with their times, so nothing is
# rebuilt), without git's metadata and node's modules.
tar -C "$CRM_ROOT" --exclude=./.git --exclude=./test/node/node_modules -cf - . | tar -C "$PRIV" --one-top-level=crm -xf -
ok $? "a copy of the checkout in a directory of mode 700"
if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- test -r "$PRIV/crm/test/sql/crypto.sql"
    ok "$([ $? -ne 0 ] && echo 0 || echo 1)" "the postgres OS user cannot read it"
else
    echo "ok $((n += 1)) # SKIP not root: the server runs as this user"
fi

env -u CRM_ACCEPT -u CRM_KEEP CRM_PRIVATE_CHECKOUT_INNER=1 CRM_TESTS=regress CRM_ONLY=crypto \
    make -C "$PRIV/crm" test >"$CRM_WORK/private_test.out" 2>&1
rc=$?
ok "$([ $rc = 0 ] && grep -qE '^[2-9][0-9]* passed, 0 failed$' "$CRM_WORK/private_test.out" && echo 0 || echo 1)" \
   "make test passes there ($(tail -1 "$CRM_WORK/private_test.out"))" "$CRM_WORK/private_test.out"
ok "$(grep -qi 'permission denied' "$CRM_WORK/private_test.out" && echo 1 || echo 0)" \
   "make test reads nothing it may not" "$CRM_WORK/private_test.out"

make -C "$PRIV/crm" demo >"$CRM_WORK/private_demo.out" 2>&1
rc=$?
ok "$([ $rc = 0 ] && grep -q 'The demo cluster is still running' "$CRM_WORK/private_demo.out" \
      && grep -q 'Nobody may rewrite the log' "$CRM_WORK/private_demo.out" \
      && [ "$(grep -c 'refused (' "$CRM_WORK/private_demo.out")" -ge 10 ] && echo 0 || echo 1)" \
   "make demo runs every step there, showing its refusals" "$CRM_WORK/private_demo.out"
ok "$(grep -qiE 'permission denied|ERROR:' "$CRM_WORK/private_demo.out" && echo 1 || echo 0)" \
   "make demo shows no error" "$CRM_WORK/private_demo.out"

# A broken step fails make demo, and the steps after it do not run.
printf '\\echo a broken step\nSELECT 1 / 0;\n' >"$PRIV/crm/demo/50_broken.sql"
make -C "$PRIV/crm" demo >"$CRM_WORK/private_demo_broken.out" 2>&1
rc=$?
ok "$([ $rc -ne 0 ] && grep -q 'demo step 50_broken.sql failed' "$CRM_WORK/private_demo_broken.out" \
      && ! grep -q 'Nobody may rewrite the log' "$CRM_WORK/private_demo_broken.out" && echo 0 || echo 1)" \
   "make demo fails at a broken step (exit $rc) and stops there" "$CRM_WORK/private_demo_broken.out"
make -C "$PRIV/crm" -s demo-stop >"$CRM_WORK/private_demo_stop.out" 2>&1
ok "$([ $? = 0 ] && grep -q 'demo cluster stopped' "$CRM_WORK/private_demo_stop.out" && [ ! -e "$DEMO_DIR" ] && echo 0 || echo 1)" \
   "make demo-stop stops it and removes CRM_DEMO_DIR" "$CRM_WORK/private_demo_stop.out"
