#!/usr/bin/env bash
# libFuzzer with AddressSanitizer and UBSan on every parser, as TAP: one test per target.
# Each target first runs its saved regressions (test/fuzz/regressions/<target>/, inputs
# that once failed), then fuzzes for CRM_FUZZ_SECONDS (default 6: `make test` spends about
# 50 s in all; `make fuzz` gives each 300 s) from the seed corpus test/fuzz/corpus/<target>/.
# CRM_FUZZ_TARGETS="json pem" picks targets; CRM_FUZZ_OUT=DIR keeps the binaries, the grown
# corpora and any failing input there.  Skipped (not failed) without clang's libFuzzer.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${CRM_FUZZ_OUT:-}" ]; then
    out=$CRM_FUZZ_OUT; mkdir -p "$out"
else
    out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
fi
# The permission target's call sites say their arguments are constants, as PL/pgSQL's do:
# the hardest case for a per-call-site cache (CRM_FUZZ_ARGS_STABLE= turns it off).
export CRM_FUZZ_ARGS_STABLE=${CRM_FUZZ_ARGS_STABLE-1}
[ -n "$CRM_FUZZ_ARGS_STABLE" ] || unset CRM_FUZZ_ARGS_STABLE
targets=(${CRM_FUZZ_TARGETS:-b64url json jose_header jwt_claims jwk pem permission claims_path})
seconds=${CRM_FUZZ_SECONDS:-6}
echo "1..${#targets[@]}"
bash "$here/build.sh" "$out" >"$out/build.log" 2>&1
rc=$?
if [ "$rc" = 2 ]; then
    i=0; for t in "${targets[@]}"; do i=$((i + 1)); echo "ok $i - fuzz_$t # SKIP no clang with libFuzzer"; done
    exit 0
elif [ "$rc" != 0 ]; then
    grep -E 'error|undefined' "$out/build.log" | head -30 | sed 's/^/# /'
    i=0; for t in "${targets[@]}"; do i=$((i + 1)); echo "not ok $i - fuzz_$t builds"; done
    exit 0
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
i=0
for t in "${targets[@]}"; do
    i=$((i + 1))
    bin=$out/fuzz_$t
    mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
    reg=("$here/regressions/$t"/*)
    if [ -e "${reg[0]}" ] && ! "$bin" -runs=1 "${reg[@]}" >"$out/regress_$t.log" 2>&1; then
        grep -aE '^fuzz:|ERROR|SUMMARY|Running:' "$out/regress_$t.log" | head -20 | sed 's/^/# /'
        echo "not ok $i - fuzz_$t: a saved regression input fails again"
        continue
    fi
    if "$bin" -max_total_time="$seconds" -max_len=16384 -timeout=30 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" \
            "$out/corpus/$t" "$here/corpus/$t" >"$out/fuzz_$t.log" 2>&1; then
        runs=$(grep -ao 'stat::number_of_executed_units: [0-9]*' "$out/fuzz_$t.log" | awk '{print $2}')
        echo "ok $i - fuzz_$t: ${runs:-?} inputs in ${seconds}s without a finding"
    else
        grep -aE '^fuzz:|ERROR|SUMMARY|runtime error|#[0-9]+ 0x.* in ' "$out/fuzz_$t.log" | head -25 | sed 's/^/# /'
        for f in "$out/artifacts/$t"/*; do
            [ -e "$f" ] && echo "# input (base64): $(head -c 2000 "$f" | base64 -w0)"
        done
        echo "not ok $i - fuzz_$t: libFuzzer found a failing input (save it in test/fuzz/regressions/$t/)"
    fi
done
