#!/usr/bin/env bash
# libFuzzer with AddressSanitizer/UBSan on the strict base64url decoder, briefly (TAP).
exec bash "$(dirname "$0")/../fuzz/run.sh"
