#!/usr/bin/env bash
# A short libFuzzer run of the parsing code with AddressSanitizer and UBSan, as TAP.
# Skipped (not failed) when clang's fuzzer runtime is not installed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "1..1"
CC=$(command -v clang-14 || command -v clang || true)
if [ -z "$CC" ] || ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' | \
        "$CC" -x c -fsanitize=fuzzer - -o "$out/probe" 2>/dev/null; then
    echo "ok 1 # SKIP no clang with libFuzzer"
    exit 0
fi
inc=$(pg_config --includedir-server)
if ! "$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I"$inc" \
        "$here/fuzz_b64url.c" "$root/src/b64url.c" -o "$out/fuzz_b64url" 2>"$out/build.log"; then
    cat "$out/build.log" | sed 's/^/# /'
    echo "not ok 1 - fuzz_b64url builds"
    exit 0
fi
mkdir -p "$out/corpus"
printf 'eyJhbGciOiJIUzI1NiJ9' >"$out/corpus/1"
printf 'AAAA' >"$out/corpus/2"
if "$out/fuzz_b64url" -max_total_time="${CRM_FUZZ_SECONDS:-20}" -max_len=4096 -print_final_stats=1 "$out/corpus" >"$out/fuzz.log" 2>&1; then
    echo "ok 1 - libFuzzer: b64url decoder, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/fuzz.log" | awk '{print $2}') runs without a finding"
else
    tail -30 "$out/fuzz.log" | sed 's/^/# /'
    echo "not ok 1 - libFuzzer found a failing input for the b64url decoder"
fi
