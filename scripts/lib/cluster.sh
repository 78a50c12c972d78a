# A gateway cluster on loopback for Tests/EndToEnd/cluster.sh and scripts/bench-cluster.sh: a
# throwaway PostgreSQL, one shared PKI and replicas r1…rN on free ports. Source it after
# scripts/lib/e2e.sh (start, PIDS, WORK, TUNNEL) and scripts/lib/postgres.sh.
#   cluster_start N     → STORE, PORT[i], METRICS[i], GW_PID[i], LIST (every replica, comma-separated)
#   start_replica I     → (re)starts replica I on its port and data directory
#   admin I CMD...      → runs `tunnel CMD...` on replica I's admin socket

declare -a PORT GW_PID METRICS

start_replica() {
    local index=$1
    start "$WORK/r$index.log" "$TUNNEL" gateway --store "$STORE" --pki-dir "$WORK/pki" --data-dir "$WORK/r$index" \
        --replica-name "r$index" --advertise "127.0.0.1:${PORT[$index]}" --listen "127.0.0.1:${PORT[$index]}" \
        --metrics-listen "127.0.0.1:${METRICS[$index]}" --admin-socket "$WORK/r$index/admin.sock"
    GW_PID[$index]=$LAST_PID
    wait_for_line "$WORK/r$index.log" "admin socket open" 30 "$LAST_PID"
}

cluster_start() {
    local count=$1 index
    postgres_start || { echo "PostgreSQL did not start" >&2; return 1; }
    STORE=$(postgres_url tunnel) || return 1
    "$TUNNEL" ca init --dir "$WORK/pki" >/dev/null || return 1
    LIST=""
    for index in $(seq 1 "$count"); do
        PORT[$index]=$(free_port)
        METRICS[$index]=$(free_port)
        mkdir -p "$WORK/r$index"
        start_replica "$index" || { cat "$WORK/r$index.log" >&2; return 1; }
        LIST+="${LIST:+,}127.0.0.1:${PORT[$index]}"
    done
}

admin() { local index=$1; shift; "$TUNNEL" "$@" --admin-socket "$WORK/r$index/admin.sock"; }

# The replica NODE's session started on first: the one whose log says it connected there.
holder_of() { grep -lE "node.name=$1 .*node connected" "$WORK"/r[0-9].log 2>/dev/null | head -1 | sed -E 's|.*/r([0-9])\.log$|\1|'; }
