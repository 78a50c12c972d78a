#!/usr/bin/env bash
# What a resumed TLS 1.3 handshake costs against a full one, with OpenSSL's own tools and no
# tunnel code: mutual authentication with P-256 certificates as the gateway's (a CA, a server
# certificate, a client certificate), X25519, AES-128-GCM. `openssl s_time -new` makes full
# handshakes, `-reuse` resumes the first session with its ticket (psk_dhe_ke: a fresh X25519
# exchange each time). Each handshake fetches a 3-byte file, so the client reads the ticket.
# Prints the CPU per handshake of the server (from /proc) and the client (from time(1)).
#   scripts/bench-tls-resumption.sh [--seconds 5]
set -euo pipefail

SECONDS_EACH=5
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) SECONDS_EACH=$2; shift 2 ;;
        *) echo "unknown argument $1"; exit 2 ;;
    esac
done
WORK=$(mktemp -d /tmp/bench-tls-resumption.XXXXXX)
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"

# ec_certificate NAME SUBJECT [ISSUER]: a P-256 key and certificate (self-signed without ISSUER).
ec_certificate() {
    openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"
    if [ $# -eq 2 ]; then
        openssl req -new -x509 -key "$1.key" -subj "$2" -days 2 -out "$1.crt" -addext basicConstraints=critical,CA:TRUE
    else
        openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$1.ext"
        openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -days 1 -extfile "$1.ext" -out "$1.crt"
    fi 2>/dev/null
}
ec_certificate ca "/CN=bench CA"
ec_certificate server "/CN=localhost" ca
ec_certificate client "/CN=node" ca
echo ok >tiny
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TICK_MS=$((1000 / $(getconf CLK_TCK)))

# run MODE: one server, MODE (new or reuse) handshakes for SECONDS_EACH seconds.
run() {
    openssl s_server -accept "$PORT" -tls1_3 -cert server.crt -key server.key -CAfile ca.crt -Verify 2 \
        -ciphersuites TLS_AES_128_GCM_SHA256 -groups X25519 -num_tickets 1 -WWW -quiet >/dev/null 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
    local before after output
    before=$(awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat")
    output=$({ /usr/bin/time -f "%U %S" openssl s_time -connect "127.0.0.1:$PORT" "-$1" -time "$SECONDS_EACH" \
        -www /tiny -cert client.crt -key client.key -CAfile ca.crt; } 2>&1)
    after=$(awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat")
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    local count client_seconds
    count=$(echo "$output" | grep -m1 -o '^[0-9]* connections in' | cut -d' ' -f1)
    client_seconds=$(echo "$output" | tail -1 | awk '{ print $1 + $2 }')
    awk -v mode="$1" -v n="$count" -v s="$(((after - before) * TICK_MS))" -v c="$client_seconds" 'BEGIN {
        printf "%-6s %6d handshakes   server %.3f ms each   client %.3f ms each\n", mode, n, s / n, c * 1000 / n }'
}

echo "OpenSSL $(openssl version | cut -d' ' -f2), load $(cut -d' ' -f1 /proc/loadavg)"
run new
run reuse
