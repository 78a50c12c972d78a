#!/usr/bin/env bash
# Interactive over bulk on a shaped edge uplink (issue #12), end to end: a 20 Mbit/s link made here
# (two network namespaces, a veth pair, `tc tbf` on both ends; scripts/lib/shaped-link.sh), the
# gateway and operator on one side, the node's client with an echo and a bulk-download service on
# the other. While `tunnel proxy --class bulk` downloads from the node (and then uploads to it),
# one-byte keystrokes go through `tunnel proxy --class interactive` on the same node connection.
# Checks only what works or not, never how fast: every echo comes back while the download is still
# running (behind a FIFO queue of the old 1 MiB they could not: 100 echoes would take longer than
# the whole download), and the download arrives whole and intact. The timings are
# scripts/bench-tunnel.sh's business.
#   Tests/EndToEnd/shaped-link.sh [path/to/tunnel]        (default: .build/debug/tunnel); needs root
# Prints one line per check and "N passed, N failed" last; exits non-zero on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TUNNEL=$(readlink -f "${1:-$ROOT/.build/debug/tunnel}")
WORK=$(mktemp -d /tmp/tunnel-shaped.XXXXXX)
PIDS=()
PASSED=0
FAILED=0
# 24 MB take about 10 s at 20 Mbit/s: room for 100 keystrokes if they go first (about 5 s), not
# if each waits behind the old 1 MiB queue (over 12 s).
BULK_BYTES=24000000
KEYS=100

# shellcheck source=../../scripts/lib/loopback.sh
. "$ROOT/scripts/lib/loopback.sh"
# shellcheck source=../../scripts/lib/shaped-link.sh
. "$ROOT/scripts/lib/shaped-link.sh"

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    shaped_link_down
    [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

pass() { PASSED=$((PASSED + 1)); echo "ok   - $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && sed 's/^/       /' <<<"$2" | tail -n 15; }
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2]))' "$1" "$2" 2>/dev/null; }

[ -x "$TUNNEL" ] || { echo "no tunnel binary at $TUNNEL (swift build first)"; exit 2; }
for tool in ip tc python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (scripts/setup.sh installs iproute2)"; exit 2; }
done
if ! shaped_link_up 20mbit 2>"$WORK/link.err"; then
    # Without namespaces (not root, or a sandbox without them) there is no link to shape.
    echo "skip - no network namespaces or tc here: $(head -1 "$WORK/link.err")"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
export HOME="$WORK/home"
mkdir -p "$HOME"
SHAPED_TUNNEL=$TUNNEL

if shaped_link_start "$TUNNEL" "$BULK_BYTES" 2>"$WORK/start.err"; then
    pass "gateway and node on the two ends of a 20 Mbit/s shaped link, the node connected"
else
    fail "the shaped link's gateway and node start" "$(cat "$WORK/start.err")"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi

idle=$(shaped_measure tunnel idle 5 0)
if [ "$(field "$idle" echoes)" = 5 ]; then pass "keystrokes echo through tunnel proxy --class interactive"; else fail "idle keystrokes" "$idle"; fi

loaded=$(shaped_measure tunnel bulk "$KEYS" "$BULK_BYTES")
if [ "$(field "$loaded" echoes)" = "$KEYS" ] && [ "$(field "$loaded" bulk_running_at_last_echo)" = True ]; then
    pass "all $KEYS interactive keystrokes come back while a bulk download runs on the same node connection"
else
    fail "keystrokes go ahead of the bulk download" "$loaded"
fi
if [ "$(field "$loaded" bulk_intact)" = True ]; then
    pass "the bulk download arrives whole and intact ($BULK_BYTES bytes, SHA-256 checked)"
else
    fail "the bulk download arrives intact" "$loaded"
fi
# The other way: an upload to the node's sink loads the gateway's socket toward the node instead.
upload=$(shaped_measure tunnel upload "$KEYS" "$BULK_BYTES")
if [ "$(field "$upload" echoes)" = "$KEYS" ] && [ "$(field "$upload" bulk_running_at_last_echo)" = True ] \
    && [ "$(field "$upload" bulk_intact)" = True ]; then
    pass "all $KEYS keystrokes come back while an upload runs to the node, and the upload arrives intact (SHA-256 read back)"
else
    fail "keystrokes go ahead of an upload" "$upload"
fi
# The control: the same on two plain TCP connections across the same link, to show the link works.
control=$(shaped_measure tcp bulk "$KEYS" "$BULK_BYTES")
if [ "$(field "$control" echoes)" = "$KEYS" ] && [ "$(field "$control" bulk_intact)" = True ]; then
    pass "the plain TCP control crosses the same link (keystrokes and an intact download)"
else
    fail "plain TCP control" "$control"
fi
echo "figures (not asserted): tunnel idle $(field "$idle" p50_ms) ms; under bulk p50 $(field "$loaded" p50_ms) p99 $(field "$loaded" p99_ms) ms; plain TCP under bulk p50 $(field "$control" p50_ms) p99 $(field "$control" p99_ms) ms; the download through the tunnel $(field "$loaded" bulk_mbit_s), plain TCP $(field "$control" bulk_mbit_s) Mbit/s; under an upload p50 $(field "$upload" p50_ms) p99 $(field "$upload" p99_ms) ms at $(field "$upload" bulk_mbit_s) Mbit/s"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
