#!/usr/bin/env bash
# `tunnel dev` on a machine without OpenSSH: a throwaway user, in network and mount namespaces
# of its own where /usr/sbin/sshd is covered by /dev/null (so neither PATH nor /usr/sbin has
# one), runs `tunnel dev`. It must say that OpenSSH is missing and what to install, and the
# recorded shell and the logs must still work.
#   Tests/EndToEnd/dev-no-openssh.sh [path/to/tunnel]   (default: .build/debug/tunnel; needs root)
# Prints one line per check and "N passed, N failed" last; exits non-zero on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TUNNEL=$(readlink -f "${1:-$ROOT/.build/debug/tunnel}")
[ -x "$TUNNEL" ] || { echo "no tunnel binary at $TUNNEL (swift build first)"; exit 2; }

if [ "${NO_OPENSSH_INNER:-}" != 1 ]; then
    # --- as root: the user and the namespaces, then this script again as that user inside them ---
    [ "$(id -u)" = 0 ] || { echo "dev-no-openssh.sh needs root (a throwaway user and namespaces); skipped"; exit 0; }
    WORK=$(mktemp -d /tmp/tunnel-no-openssh.XXXXXX)
    chmod 755 "$WORK"
    TESTUSER="tnossh$$"
    cleanup() {
        userdel -r "$TESTUSER" >/dev/null 2>&1
        rm -rf "$WORK"
    }
    trap cleanup EXIT
    useradd --create-home --home-dir "$WORK/home" --shell /bin/bash "$TESTUSER" || { echo "useradd failed"; exit 2; }
    mkdir -p "$WORK/bin" "$WORK/empty" "$WORK/test" "$WORK/out"
    cp "$TUNNEL" "$WORK/bin/tunnel"
    cp "$0" "$ROOT/scripts/lib/loopback.sh" "$ROOT/scripts/lib/e2e.sh" "$WORK/test/"
    chown -R "$TESTUSER:" "$WORK/bin" "$WORK/empty" "$WORK/test" "$WORK/out"
    unshare --net --mount --propagation private -- bash -c 'ip link set lo up && mount --bind /dev/null /usr/sbin/sshd \
        && exec runuser -u "$1" -- env -i HOME="$2/home" USER="$1" LOGNAME="$1" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin TERM=dumb \
        NO_OPENSSH_INNER=1 WORK="$2" bash "$2/test/dev-no-openssh.sh" "$2/bin/tunnel"' _ "$TESTUSER" "$WORK"
    exit $?
fi

# --- as the test user, in the namespaces ------------------------------------------------------
. "$WORK/test/e2e.sh"
e2e_inner dev-no-openssh
cd "$WORK/empty"

[ -x /usr/sbin/sshd ] && { fail "sshd is hidden in the namespace"; exit; }
start "$WORK/out/dev.log" "$TUNNEL" dev
wait_for_line "$WORK/out/dev.log" "Ctrl-C stops" 60 "$LAST_PID" || { fail "tunnel dev prints its guide" "$(cat "$WORK/out/dev.log")"; exit; }
pass "tunnel dev starts without OpenSSH"
grep -q "OpenSSH is not installed.*apt-get install openssh-server" "$WORK/out/dev.log" && grep -q "everything but ssh works" "$WORK/out/dev.log" \
    && pass "it says OpenSSH is missing and what to install" || fail "the missing-OpenSSH sentence" "$(cat "$WORK/out/dev.log")"
# The guide's first line sets up the environment its other commands use.
eval "$(sed -n '/try:$/,/^Then /p' "$WORK/out/dev.log" | sed -n 's/^  \(export .*\)/\1/p' | head -1)"
out=$("$TUNNEL" shell dev-node -- echo no-openssh-marker </dev/null 2>&1) && grep -q "no-openssh-marker" <<<"$out" \
    && pass "the recorded shell works" || fail "shell" "$out"
out=$("$TUNNEL" logs dev-node 2>&1 </dev/null) && grep -q "hydraulic pressure" <<<"$out" \
    && pass "tunnel logs shows the demo log" || fail "logs" "$out"
