#!/usr/bin/env bash
# The whole test suite: system packages, every `swift test` suite, then each fuzz harness for a
# short run (FUZZ_SECONDS, default 60) that also fails on any new crasher.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
swift build --build-tests
swift test
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
