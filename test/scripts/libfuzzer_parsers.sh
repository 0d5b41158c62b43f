#!/usr/bin/env bash
# libFuzzer with AddressSanitizer/UBSan on every parser, briefly (TAP; see test/fuzz/run.sh).
exec bash "$(dirname "$0")/../fuzz/run.sh"
