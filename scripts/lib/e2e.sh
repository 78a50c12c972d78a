# Shared by the end-to-end scripts under Tests/EndToEnd: the tally of checks, a work directory,
# and one cleanup that ends the processes the script started (PIDS), removes WORK, prints the
# tally and exits 1 when a check failed. The summary runs from the EXIT trap, whose own status
# bash ignores, hence the explicit exit. Source it, then call e2e_begin.

# shellcheck source=loopback.sh
. "$(dirname "${BASH_SOURCE[0]}")/loopback.sh"

PASSED=0
FAILED=0
PIDS=()

pass() { PASSED=$((PASSED + 1)); echo "ok   - $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && sed 's/^/       /' <<<"$2" | tail -n 15; }
# check NAME CMD...: passes when CMD succeeds, else fails showing its output.
check() { local name=$1; shift; local out; if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi; }

# e2e_begin NAME [TUNNEL-ARG] [TOOL...]: WORK (a fresh /tmp/tunnel-NAME.XXXXXX, kept when
# KEEP_WORK is set), HOME inside it, TUNNEL (the given path, else .build/debug/tunnel; not
# checked when TUNNEL-ARG is "-"), and every TOOL on the PATH, or exit 2 naming what to run.
# A script that needs more at exit defines e2e_on_exit; it runs after PIDS are ended.
e2e_begin() {
    E2E_NAME=$1
    local tunnel_arg=${2:-}
    shift 2 2>/dev/null || shift $#
    if [ "$tunnel_arg" != - ]; then
        TUNNEL=$(readlink -f "${tunnel_arg:-$ROOT/.build/debug/tunnel}")
        [ -x "$TUNNEL" ] || { echo "no tunnel binary at $TUNNEL (swift build first)"; exit 2; }
    fi
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "missing $tool (scripts/setup.sh installs it)"; exit 2; }
    done
    WORK=$(mktemp -d "/tmp/tunnel-$E2E_NAME.XXXXXX")
    export HOME="$WORK/home"
    mkdir -p "$HOME"
    trap e2e_end EXIT
}

# e2e_inner NAME: the same tally and summary for the half of a script that runs as another user
# inside namespaces, in a WORK its outer half made and removes. Its processes (tunnel dev) get
# SIGINT, the Ctrl-C its guide speaks of.
e2e_inner() {
    E2E_NAME=$1
    E2E_INNER=1
    trap e2e_end EXIT
}

e2e_end() {
    local pid signal=TERM
    [ -n "${E2E_INNER:-}" ] && signal=INT
    for pid in "${PIDS[@]}"; do kill -"$signal" "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    declare -F e2e_on_exit >/dev/null && e2e_on_exit
    if [ -z "${E2E_INNER:-}" ]; then
        [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
    fi
    echo "$E2E_NAME: $PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ] || exit 1
}
