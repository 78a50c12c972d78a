#!/usr/bin/env bash
# Audit log figures side by side: writing and verifying one million records (audit-bench), then
# `tunnel audit verify` on the same files next to `sha256sum` of them — the floor for anything
# that must hash every byte. Release builds; prints one line per figure.
#   scripts/bench-audit.sh [records]      (default 1000000)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RECORDS=${1:-1000000}
cd "$ROOT"
# audit-bench lives in its own package (Benchmarks/Package.swift) over the main one's products.
swift build -c release --package-path Benchmarks --product audit-bench >/dev/null
swift build -c release --product tunnel >/dev/null
BIN=$(swift build -c release --show-bin-path)
BENCH_BIN=$(swift build -c release --package-path Benchmarks --show-bin-path)
OUT=$(KEEP=1 "$BENCH_BIN/audit-bench" "$RECORDS")
echo "$OUT" | sed -n '1,4p'
DIR=$(echo "$OUT" | tail -n 1)
trap 'rm -rf "$DIR"' EXIT
seconds() { local start end; start=$(date +%s%N); "$@" >/dev/null; end=$(date +%s%N); awk -v ns=$((end - start)) 'BEGIN { printf "%.2f", ns / 1e9 }'; }
echo "tunnel audit verify (CLI): $(seconds "$BIN/tunnel" audit verify "$DIR" --closed) s"
echo "sha256sum of the same files (peer, hashing only): $(seconds sha256sum "$DIR"/audit-*.jsonl) s"
echo "size: $(du -sh "$DIR" | cut -f1) in $(ls "$DIR"/audit-*.jsonl | wc -l) segment(s)"
