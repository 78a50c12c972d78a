#!/usr/bin/env bash
# End-to-end (issue #9, the door): an anonymous flood from loopback — half-open sockets, idle
# enrollment sessions, refused redeems at full speed — while an admin lists nodes and opens new
# streams through a real gateway, node and operator. Passes if every admin operation succeeded
# and the audit log holds per-source summaries instead of one record per refusal; timings are
# reported, not asserted (scripts/bench-hostile.sh measures them at full size).
#
#   Tests/EndToEnd/hostile.sh [PATH-TO-TUNNEL]   (default .build/debug/tunnel)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
exec "$ROOT/scripts/bench-hostile.sh" --quick --check --tunnel "${1:-$ROOT/.build/debug/tunnel}"
