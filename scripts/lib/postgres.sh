# A throwaway PostgreSQL server for end-to-end tests and benchmarks, from Debian's binaries: the
# shell twin of Tests/PostgresTestServer. Source it after scripts/lib/loopback.sh (free_port);
# the caller owns WORK (its temporary directory) and calls postgres_stop in its cleanup.
#   postgres_start  → PG_PORT, PG_DIR; a superuser `tunnel`, trust authentication, only on 127.0.0.1
#   postgres_url DB → postgres://tunnel@127.0.0.1:PORT/DB (creates DB)
#   postgres_stop   → fast shutdown by the PID in postmaster.pid, bounded to 10 s

postgres_bin() { local dir; dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1); echo "${dir:-$(dirname "$(command -v initdb)")}"; }

# PostgreSQL refuses to run as root: under root the server runs as Debian's `postgres` account.
postgres_as_server_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_start() {
    local bin attempt
    bin=$(postgres_bin)
    [ -x "$bin/initdb" ] || { echo "no PostgreSQL binaries (initdb); run scripts/setup.sh" >&2; return 1; }
    PG_DIR=$WORK/postgres
    mkdir -m 700 "$PG_DIR"
    # The server's account must reach PG_DIR through WORK (mktemp makes it 0700).
    [ "$(id -u)" = 0 ] && chmod o+x "$WORK" && chown postgres: "$PG_DIR"
    postgres_as_server_user "$bin/initdb" -D "$PG_DIR/data" -U tunnel --auth=trust --no-sync -E UTF8 --locale=C >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    # A port found free may be taken before the server binds it; a few tries settle that.
    for attempt in 1 2 3 4 5; do
        PG_PORT=$(free_port)
        if postgres_as_server_user "$bin/pg_ctl" start -w -t 30 -D "$PG_DIR/data" -l "$PG_DIR/server.log" \
            -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100" >/dev/null 2>&1; then
            return 0
        fi
    done
    tail -5 "$PG_DIR/server.log" >&2
    return 1
}

postgres_url() {
    "$(postgres_bin)/psql" -h 127.0.0.1 -p "$PG_PORT" -U tunnel -d postgres -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $1" >/dev/null || return 1
    echo "postgres://tunnel@127.0.0.1:$PG_PORT/$1"
}

postgres_stop() {
    local pid
    [ -n "${PG_DIR:-}" ] && [ -f "$PG_DIR/data/postmaster.pid" ] || return 0
    pid=$(head -1 "$PG_DIR/data/postmaster.pid")
    [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null
    # Waits for its exit (tail --pid), not a guessed time.
    [ -n "$pid" ] && timeout 10 tail --pid="$pid" -f /dev/null
}
