#!/usr/bin/env bash
# The JavaScript and Python clients of docs/requests.md (taken from the page itself) give
# the signature sign_request() gives, for several requests (a query, a nonce, an empty and
# a binary body, a path with percent-encoding), and verify_request() accepts them.  Python
# is skipped when absent.
# Environment (from test/run.sh): PG_BIN, PGHOST, PGPORT, CRM_ROOT, CRM_WORK.
set -u
: "${PG_BIN:?}" "${CRM_ROOT:?}"
PSQL=("$PG_BIN/psql" -X -q -A -t)
DB=crm_requests_clients
source "$(dirname "$0")/include/tap.sh"
WORK=${CRM_WORK:-$(mktemp -d)}/requests_clients
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
q -c "CREATE EXTENSION crm_security" >/dev/null
mkdir -p "$WORK"
DOC=$CRM_ROOT/docs/requests.md
# block LANG: the fenced code block of that language in the page
block() { awk -v l="$1" '$0 == "```" l {on=1; next} on && $0 == "```" {exit} on {print}' "$DOC"; }
block js >"$WORK/sign.mjs"
block python >"$WORK/sign.py"
SECRET=whsec_clients_0123456789abcdef
TS=$(date +%s)
# method|path|body hex|nonce
CASES=("POST|/hooks/deal?tenant=acme&x=1|7b226964223a317d|n-1"
       "GET|/a%20b/c?q=%C3%A4||"
       "PUT|/bin|00ff10fe80|nonce-with-dash_and.dot"
       "DELETE|/|61|")
echo "1..$((${#CASES[@]} * 3 + 1))"
check "the page holds both clients" t "$([ -s "$WORK/sign.mjs" ] && [ -s "$WORK/sign.py" ] && echo t)"
for c in "${CASES[@]}"; do
    IFS='|' read -r m p b nonce <<<"$c"
    sqlnonce=$([ -n "$nonce" ] && echo "'$nonce'" || echo NULL)
    want=$(q -c "SELECT crm_security.sign_request('$SECRET', '$m', '$p', '\\x$b'::bytea, $TS, $sqlnonce)")
    js=$(cd "$WORK" && node --input-type=module -e "
import { signRequest } from './sign.mjs';
console.log(signRequest('$SECRET', '$m', '$p', Buffer.from('$b', 'hex'), $TS, '$nonce'));" 2>&1)
    check "JavaScript signs $m $p as sign_request does" "$want" "$js"
    if command -v python3 >/dev/null; then
        py=$(cd "$WORK" && python3 -c "
from sign import sign_request
print(sign_request(b'$SECRET', '$m', '$p', bytes.fromhex('$b'), $TS, '$nonce'))" 2>&1)
        check "Python signs $m $p as sign_request does" "$want" "$py"
    else
        echo "ok $((n += 1)) # skip python3 is not installed"
    fi
    # (verification with a nonce needs preloading: requests_preload.sh; here the nonce is
    # shown to be signed)
    check "verify_request $([ -n "$nonce" ] && echo "without the signed nonce refuses" || echo accepts) the JavaScript signature" \
        "$([ -n "$nonce" ] && echo f || echo t)" \
        "$(q -c "SELECT crm_security.verify_request('$SECRET', '$js', '$m', '$p', '\\x$b'::bytea, $TS)")"
done
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
exit $failed
