# Shared by Tests/EndToEnd/run.sh and scripts/bench-tunnel.sh: helpers for starting real programs
# on loopback, waiting for them by their log lines, and an sshd of our own. Source it; the caller
# owns PIDS (ended in its cleanup) and WORK (its temporary directory).

# A free loopback TCP port (the kernel picks it; the tiny race with our own bind is acceptable on loopback).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# Waits (at most SECONDS) until FILE contains a line matching PATTERN: an event, not a sleep.
# With PID, gives up as soon as that process exits (tail --pid ends, grep sees end of file).
wait_for_line() {
    local file=$1 pattern=$2 seconds=${3:-20} pid=${4:-}
    timeout "$seconds" bash -c "tail -n +1 -F ${pid:+--pid=$pid} '$file' 2>/dev/null | grep -q -m1 -E '$pattern'"
}

# Waits (at most SECONDS) until FILE holds COUNT lines matching PATTERN, counting from its start.
wait_for_lines() {
    local file=$1 pattern=$2 count=$3 seconds=${4:-20}
    timeout "$seconds" bash -c "tail -n +1 -F '$file' 2>/dev/null | grep -m $count -E '$pattern' | tail -n +$count | grep -q ."
}

# start LOG CMD...: runs CMD in the background, output to LOG, PID remembered in PIDS and LAST_PID.
start() {
    local log=$1; shift
    "$@" >"$log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# prepare_sshd PORT [EXTRA CONFIG LINE ...]: a host key, a client key ($WORK/id) allowed for
# root, and $WORK/sshd_config listening on 127.0.0.1:PORT. Start it with
#   start LOG /usr/sbin/sshd -D -e -f "$WORK/sshd_config"
prepare_sshd() {
    local port=$1; shift
    mkdir -p /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh_host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/id"
    cp "$WORK/id.pub" "$WORK/authorized_keys"
    {
        echo "Port $port"
        echo "ListenAddress 127.0.0.1"
        echo "HostKey $WORK/ssh_host_key"
        echo "AuthorizedKeysFile $WORK/authorized_keys"
        echo "PidFile $WORK/sshd.pid"
        echo "StrictModes no"
        echo "UsePAM no"
        echo "PasswordAuthentication no"
        echo "KbdInteractiveAuthentication no"
        echo "PermitRootLogin prohibit-password"
        printf '%s\n' "$@"
    } >"$WORK/sshd_config"
}
