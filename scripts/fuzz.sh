#!/usr/bin/env bash
# Builds the libFuzzer harnesses in Fuzz/ with AddressSanitizer and runs each for a while.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]     targets: frames session (default: both)
# New crashers are copied into Fuzz/crashers/TARGET/, where the test suite replays them; commit
# them with the fix. The seed corpus in Fuzz/corpus/ is only read; new inputs go to .build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frames session)

declare -A entry=([frames]=Fuzz/FrameDecoderFuzzer.swift [session]=Fuzz/SessionFuzzer.swift)
out=.build-fuzz
mkdir -p "$out"
status=0
for target in "${targets[@]}"; do
    [ -n "${entry[$target]:-}" ] || { echo "fuzz.sh: unknown target '$target'; use: ${!entry[*]}" >&2; exit 2; }
    echo "== building $target"
    # gold warns about every sanitizer-local symbol it cannot export; those lines are noise.
    swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name MultiplexFuzz -package-name tunnel \
        -D MULTIPLEX_SINGLE_MODULE \
        Sources/Multiplex/*.swift Sources/MultiplexFuzzing/*.swift "${entry[$target]}" \
        -o "$out/fuzz-$target" 2>&1 | { grep -v 'Cannot export local symbol' || true; }
    rm -rf "$out/artifacts-$target"
    mkdir -p "$out/corpus-$target" "$out/artifacts-$target" "Fuzz/crashers/$target"
    echo "== fuzzing $target for ${seconds}s"
    # Swift's own crash backtracer fights ASan's; let libFuzzer and ASan report alone.
    if ! SWIFT_BACKTRACE=enable=no "$out/fuzz-$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts-$target/" \
        "$out/corpus-$target" "Fuzz/corpus/$target" 2>"$out/fuzz-$target.log"; then
        status=1
        tail -n 40 "$out/fuzz-$target.log" >&2
        for artifact in "$out/artifacts-$target"/*; do
            [ -f "$artifact" ] || continue
            cp "$artifact" "Fuzz/crashers/$target/"
            echo "fuzz.sh: $target found $(basename "$artifact"); saved to Fuzz/crashers/$target/ (the tests replay it)" >&2
        done
    else
        grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done' "$out/fuzz-$target.log" || true
    fi
done
exit $status
