#!/usr/bin/env python3
"""An anonymous flood against a tunnel gateway, from loopback addresses other than 127.0.0.1
(each its own source to the gateway), for Tests/EndToEnd/hostile.sh and scripts/bench-hostile.sh.

  hostile_flood.py PORT SECONDS [--half-open N] [--idle-enroll N] [--redeem-threads N]
                   [--sources K] [--ready FILE]

--half-open N      N TCP connections that never send a byte, held open (spread over K sources,
                   127.0.0.2 onwards); when the gateway closes one it is opened again a second later
--idle-enroll N    N TLS sessions with ALPN tunnel-enroll/1 that send HELLO and then nothing,
                   each reopened as soon as the gateway closes it (from 127.0.0.100 onwards)
--redeem-threads N threads that redeem a made-up token at full speed, one connection each
                   (from 127.0.0.200 onwards)
--operator-claims N  N connections that send a ClientHello offering tunnel-operator/1 (as an
                   operator's does) and then nothing, each from its own source (127.0.2.1
                   onwards, up to 250 per /24), reopened a second after the gateway closes it
--ready FILE       written once every half-open connection was made the first time

Runs SECONDS, then prints one JSON line of counts. Every loop is bounded by SECONDS.
"""
import argparse, json, selectors, socket, ssl, struct, threading, time

HELLO = struct.pack(">BBHI", 0, 0, 16, 0) + struct.pack(">BBHIII", 1, 1, 0, 100, 262144, 67108864)
REDEEM = json.dumps({"redeem": {"_0": {"tokenID": "0123abcd", "secret": "0" * 32, "labels": {}, "csr": ""}}}).encode()
OPEN = struct.pack(">BBHI", 1, 0, len(REDEEM), 1) + REDEEM

counts = {"half_open_made": 0, "half_open_closed_by_gateway": 0, "operator_claims_made": 0,
          "operator_claims_closed_by_gateway": 0, "enroll_sessions_made": 0,
          "enroll_sessions_closed_by_gateway": 0, "enroll_handshakes_failed": 0,
          "redeems_sent": 0, "redeem_connections_refused": 0}
lock = threading.Lock()


def bump(key, by=1):
    with lock:
        counts[key] += by


def source(base, index, spread):
    return "127.0.0.%d" % (base + index % spread)


def reap_closed(sel, counter, reopen):
    """Reads and drops what the gateway sent; a connection it closed is counted, and due to be
    reopened a second later."""
    for key, _ in sel.select(timeout=0.2):
        try:
            data = key.fileobj.recv(65536)
        except OSError:
            data = b""
        if not data:
            sel.unregister(key.fileobj)
            key.fileobj.close()
            bump(counter)
            reopen.append((time.time() + 1, key.data))


def half_open(port, total, spread, deadline, ready):
    """Holds `total` idle TCP connections, reopening each one the gateway closes."""
    sel = selectors.DefaultSelector()

    def connect(index):
        s = socket.socket()
        s.setblocking(False)
        s.bind((source(2, index, spread), 0))
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return
        sel.register(s, selectors.EVENT_READ, index)
        bump("half_open_made")

    for index in range(total):
        connect(index)
    if ready:
        open(ready, "w").write("ready\n")
    reopen = []  # (when, index): a persistent attacker, not a tight loop
    while time.time() < deadline:
        now = time.time()
        while reopen and reopen[0][0] <= now:
            connect(reopen.pop(0)[1])
        reap_closed(sel, "half_open_closed_by_gateway", reopen)


def operator_hello():
    """The first flight of a TLS 1.3 client offering the operator protocol, made by OpenSSL itself."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["tunnel-operator/1"])
    outgoing = ssl.MemoryBIO()
    try:
        context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="localhost").do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def operator_claims(port, total, deadline):
    """Holds `total` connections that claim the operator protocol in their ClientHello and then
    stall, each from its own source, reopening each one the gateway closes a second later."""
    sel = selectors.DefaultSelector()
    hello = operator_hello()

    def connect(index):
        address = "127.0.%d.%d" % (2 + index // 250, 1 + index % 250)
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(address, 0))
            s.sendall(hello)
        except OSError:
            return False
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, index)
        bump("operator_claims_made")
        return True

    reopen = [(0, index) for index in range(total)]
    while time.time() < deadline:
        now = time.time()
        while reopen and reopen[0][0] <= now:
            index = reopen.pop(0)[1]
            if not connect(index):
                reopen.append((now + 1, index))
        reap_closed(sel, "operator_claims_closed_by_gateway", reopen)


def tls_context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.set_alpn_protocols(["tunnel-enroll/1"])
    return context


def enroll_connection(port, address, context):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(address, 0))
    try:
        return context.wrap_socket(raw)
    except (OSError, ssl.SSLError):
        raw.close()
        raise


def idle_enroll(port, index, spread, deadline, context):
    """One idle enrollment session at a time: HELLO, then silence until the gateway closes it."""
    while time.time() < deadline:
        try:
            tls = enroll_connection(port, source(100, index, spread), context)
        except (OSError, ssl.SSLError):
            bump("enroll_handshakes_failed")
            time.sleep(0.2)
            continue
        bump("enroll_sessions_made")
        try:
            tls.sendall(HELLO)
            tls.settimeout(max(0.1, deadline - time.time()))
            while tls.recv(4096):
                pass  # pings are answered by nobody: the session is idle
            bump("enroll_sessions_closed_by_gateway")
        except (OSError, ssl.SSLError):
            bump("enroll_sessions_closed_by_gateway")
        finally:
            tls.close()
        time.sleep(0.05)


def redeem(port, index, deadline, context):
    """Refused redeems at full speed: connect, HELLO, OPEN with a made-up token, read, repeat."""
    while time.time() < deadline:
        try:
            tls = enroll_connection(port, "127.0.0.%d" % (200 + index), context)
        except (OSError, ssl.SSLError):
            bump("redeem_connections_refused")
            continue
        try:
            tls.sendall(HELLO + OPEN)
            bump("redeems_sent")
            tls.settimeout(5)
            read_reply(tls)
        except (OSError, ssl.SSLError):
            pass
        finally:
            tls.close()


def read_reply(tls):
    """Reads frames until the reply on stream 1 is finished (DATA or ACCEPT with FIN), a RESET
    or a GOAWAY arrives, or the connection ends: an attacker does not wait for more."""
    buffer = b""
    while True:
        while len(buffer) >= 8:
            kind, flags, length, stream = struct.unpack(">BBHI", buffer[:8])
            if len(buffer) < 8 + length:
                break
            buffer = buffer[8 + length:]
            if kind == 7 or (stream == 1 and (kind == 5 or (kind in (2, 3) and flags & 1))):
                return
        data = tls.recv(65536)
        if not data:
            return
        buffer += data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("--half-open", type=int, default=0)
    parser.add_argument("--idle-enroll", type=int, default=0)
    parser.add_argument("--redeem-threads", type=int, default=0)
    parser.add_argument("--operator-claims", type=int, default=0)
    parser.add_argument("--sources", type=int, default=10)
    parser.add_argument("--ready")
    args = parser.parse_args()
    deadline = time.time() + args.seconds
    context = tls_context()
    threads = [threading.Thread(target=half_open, args=(args.port, args.half_open, args.sources, deadline, args.ready), daemon=True)]
    threads += [threading.Thread(target=idle_enroll, args=(args.port, i, args.sources, deadline, context), daemon=True)
                for i in range(args.idle_enroll)]
    if args.operator_claims:
        threads.append(threading.Thread(target=operator_claims, args=(args.port, args.operator_claims, deadline), daemon=True))
    threads += [threading.Thread(target=redeem, args=(args.port, i, deadline, context), daemon=True)
                for i in range(args.redeem_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.1, deadline - time.time() + 15))
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
