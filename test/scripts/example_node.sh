#!/usr/bin/env bash
# examples/node, the two-tenant Node.js application, run against the test server: npm ci
# installs node-postgres and jose (from the npm registry or npm's cache), then run.mjs prints
# TAP: isolation, refusals mapped to HTTP statuses with their reasons (the pool asks for
# crm_security.error_codes = 'specific' in its connection options), key rotation, audit.  Where Node or the registry is not there, the suite says it is skipped, in one line.
# Environment (from test/run.sh): PGHOST, PGPORT, PGUSER, PG_BIN, CRM_ROOT, CRM_WORK.
set -uo pipefail

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "1..0 # SKIP node and npm are not installed"
    exit 0
fi
W=$CRM_WORK/example_node
DB=crm_example_node
rm -rf "$W"; mkdir -p "$W"
cp "$CRM_ROOT"/examples/node/package.json "$CRM_ROOT"/examples/node/package-lock.json \
   "$CRM_ROOT"/examples/node/*.mjs "$W/"
# Short retry pauses: an unreachable registry is told within seconds, not minutes.
if ! (cd "$W" && npm ci --silent --no-audit --no-fund --fetch-retries=2 \
        --fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=5000 >"$W/npm.log" 2>&1); then
    REG=$(npm config get registry 2>/dev/null || echo "the npm registry")
    echo "1..0 # SKIP examples/node not run: npm ci could not install node-postgres and jose from $REG (registry unreachable and not in npm's cache)"
    exit 0
fi

psql_q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
PGOPTIONS="-c client_min_messages=warning" psql_q -d postgres \
    -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null || exit 1
psql_q -d "$DB" -c "CREATE EXTENSION crm_security" >/dev/null || exit 1

(cd "$W" && CRM_EXAMPLE_DB=$DB node run.mjs)
status=$?

PGOPTIONS="-c client_min_messages=warning" psql_q -d postgres \
    -c "DROP DATABASE IF EXISTS $DB" -c "DROP ROLE IF EXISTS crm_example_app" >/dev/null
exit $status
