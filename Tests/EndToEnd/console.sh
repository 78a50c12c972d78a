#!/usr/bin/env bash
# Browser tests of the auditor's console (`tunnel audit serve`) with Debian's Chromium driven by
# Playwright (pip; it downloads no browser: the tests point it at /usr/bin/chromium). They read
# the audit scenario that Tests/EndToEnd/run.sh keeps when AUDIT_SCENARIO_OUT is set: allowed,
# denied and kill -9-crashed streams and a recorded shell that printed "recorded-42".
#   Tests/EndToEnd/console.sh [path/to/tunnel] [scenario dir]   (defaults: .build/debug/tunnel, .build/audit-scenario)
# Screenshots of every page go to .build/console-screenshots/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TUNNEL=$(readlink -f "${1:-$ROOT/.build/debug/tunnel}")
SCENARIO=$(readlink -f "${2:-$ROOT/.build/audit-scenario}")
[ -x "$TUNNEL" ] || { echo "no tunnel binary at $TUNNEL (swift build first)"; exit 2; }
[ -d "$SCENARIO/audit" ] || { echo "no scenario at $SCENARIO/audit: run AUDIT_SCENARIO_OUT=$SCENARIO Tests/EndToEnd/run.sh first"; exit 2; }
[ -x /usr/bin/chromium ] || { echo "missing /usr/bin/chromium (scripts/setup.sh installs it)"; exit 2; }
python3 -c 'import playwright' 2>/dev/null || { echo "missing Playwright for Python (scripts/setup.sh installs it with pip)"; exit 2; }
mkdir -p "$ROOT/.build/console-screenshots"
exec python3 "$ROOT/Tests/EndToEnd/console-check.py" "$TUNNEL" "$SCENARIO/audit" "$ROOT/.build/console-screenshots"
