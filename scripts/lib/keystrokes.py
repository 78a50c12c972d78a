"""Keystrokes next to a bulk download, for the shaped-link test and benchmark (issue #12).

Services (run on the node's side):
  keystrokes.py echo-server PORT            echoes every byte back
  keystrokes.py bulk-server PORT BYTES      sends BYTES of a fixed pseudo-random stream, then closes
  keystrokes.py sink-server PORT            reads to the end, then answers with the SHA-256 of it
Measurement (run on the operator's side):
  keystrokes.py measure --count N --bytes BYTES (--echo-tcp HOST:PORT | --echo-cmd CMD...)
                        [--bulk-tcp HOST:PORT | --bulk-cmd CMD... | --upload-tcp HOST:PORT | --upload-cmd CMD...]
    Starts the bulk download (if any), waits until 1 MiB of it has arrived, then sends N one-byte
    keystrokes one at a time, each after the previous echo, and prints one JSON line: the round
    trips' p50/p99/max in ms, how many echoes came back, whether the bulk download was still
    running when the last echo came back, whether it arrived whole and intact (its SHA-256), and
    its rate in Mbit/s from its start to its last byte. An upload (to sink-server) is the same the
    other way: BYTES of the stream sent, then the end, and the sink's SHA-256 read back.
Every wait is bounded; a stalled echo or download ends the run with an error in the JSON.
"""
import hashlib, json, os, random, shlex, socket, subprocess, sys, threading, time

BLOCK = 1 << 16
WARMUP = 1 << 20


def pattern_block():
    # One fixed 64 KiB block of random bytes (compressible by nothing on the way), repeated.
    return random.Random(12).randbytes(BLOCK)


def expected_digest(total):
    h, block, left = hashlib.sha256(), pattern_block(), total
    while left:
        h.update(block[:min(left, BLOCK)]); left -= min(left, BLOCK)
    return h.hexdigest()


def listen(port):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port)); server.listen(16)
    print("READY", flush=True)
    return server


def serve(port, handler):
    server = listen(port)
    while True:
        connection, _ = server.accept()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handler, args=(connection,), daemon=True).start()


def echo(connection):
    try:
        while data := connection.recv(4096):
            connection.sendall(data)
    except OSError:
        pass
    connection.close()


def bulk(total):
    def send(connection):
        block, left = pattern_block(), total
        try:
            while left:
                n = min(left, BLOCK); connection.sendall(block[:n]); left -= n
        except OSError:
            pass
        connection.close()
    return send


class Endpoint:
    """A byte pipe to a service: a TCP connection, or a command's stdin/stdout (tunnel proxy)."""

    def __init__(self, tcp=None, cmd=None):
        self.process = None
        if tcp:
            host, port = tcp.rsplit(":", 1)
            self.sock = socket.create_connection((host, int(port)), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            self.process = subprocess.Popen(shlex.split(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)

    def send(self, data):
        if not self.process: return self.sock.sendall(data)
        view = memoryview(data)
        while view: view = view[self.process.stdin.write(view):]

    def finish(self):
        """Ends what is sent (stdin closed, or the socket half-closed); the reply can still come."""
        if self.process: self.process.stdin.close()
        else: self.sock.shutdown(socket.SHUT_WR)

    def recv(self, n):
        return os.read(self.process.stdout.fileno(), n) if self.process else self.sock.recv(n)

    def close(self):
        if self.process:
            for stream in (self.process.stdin, self.process.stdout):
                try: stream.close()
                except OSError: pass
            try: self.process.wait(timeout=10)
            except subprocess.TimeoutExpired: self.process.kill(); self.process.wait()
        else:
            self.sock.close()


def sink(connection):
    h = hashlib.sha256()
    try:
        while data := connection.recv(1 << 16): h.update(data)
        connection.sendall(h.hexdigest().encode())
    except OSError:
        pass
    connection.close()


def upload(endpoint, total, state):
    block, left = pattern_block(), total
    try:
        while left:
            n = min(left, BLOCK); endpoint.send(block[:n]); left -= n; state["bytes"] += n
            if state["bytes"] >= WARMUP: state["warm"].set()
        endpoint.finish()
        reply = b""
        while len(reply) < 64 and (data := endpoint.recv(64)): reply += data
        state["digest"] = reply.decode(errors="replace")
    except OSError as error:
        state["error"] = str(error)
    state["done_at"] = time.monotonic(); state["warm"].set()


def download(endpoint, state):
    h = hashlib.sha256()
    try:
        if endpoint.process: endpoint.process.stdin.close()  # nothing to send: EOF at once
        while data := endpoint.recv(1 << 16):
            h.update(data); state["bytes"] += len(data)
            if state["bytes"] >= WARMUP: state["warm"].set()
    except OSError as error:
        state["error"] = str(error)
    state["digest"] = h.hexdigest(); state["done_at"] = time.monotonic(); state["warm"].set()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] if xs else None


def measure(args):
    opts = {"count": 50, "bytes": 0, "echo-tcp": None, "echo-cmd": None, "bulk-tcp": None, "bulk-cmd": None,
            "upload-tcp": None, "upload-cmd": None, "timeout": 60}
    while args:
        key = args.pop(0).lstrip("-"); opts[key] = args.pop(0)
    count, total, limit = int(opts["count"]), int(opts["bytes"]), float(opts["timeout"])
    result = {"echoes": 0, "count": count}
    state = {"bytes": 0, "warm": threading.Event(), "done_at": None, "digest": None, "error": None}
    # The echo path is set up and used once before the download starts: a new `tunnel proxy`'s
    # start and stream open are not a keystroke's round trip.
    keys = Endpoint(opts["echo-tcp"], opts["echo-cmd"])
    keys.send(b"w")
    if keys.recv(1) != b"w":
        print(json.dumps({**result, "error": "the echo service did not answer"})); return 1
    downloader = None
    uploading = bool(opts["upload-tcp"] or opts["upload-cmd"])
    if uploading or opts["bulk-tcp"] or opts["bulk-cmd"]:
        source = Endpoint(opts["upload-tcp"], opts["upload-cmd"]) if uploading else Endpoint(opts["bulk-tcp"], opts["bulk-cmd"])
        state["started_at"] = time.monotonic()
        task, task_args = (upload, (source, total, state)) if uploading else (download, (source, state))
        downloader = threading.Thread(target=task, args=task_args, daemon=True); downloader.start()
        if not state["warm"].wait(limit):
            print(json.dumps({**result, "error": "the bulk transfer did not start within %ss" % limit})); return 1
    samples, deadline = [], time.monotonic() + limit
    try:
        for _ in range(count):
            if time.monotonic() > deadline: raise TimeoutError("echoes still missing after %ss" % limit)
            t0 = time.monotonic(); keys.send(b"k")
            if keys.recv(1) != b"k": raise RuntimeError("the echo connection closed")
            samples.append((time.monotonic() - t0) * 1000.0); result["echoes"] += 1
    except Exception as error:  # reported, not raised: the caller reads the JSON
        result["error"] = str(error)
    last_echo = time.monotonic()
    keys.close()
    result["samples_ms"] = [round(x, 1) for x in samples]
    result.update(p50_ms=pct(samples, 50), p99_ms=pct(samples, 99), max_ms=max(samples, default=None))
    if downloader:
        downloader.join(max(1.0, deadline + limit - time.monotonic()))
        result["bulk_running_at_last_echo"] = state["done_at"] is None or state["done_at"] > last_echo
        result["bulk_bytes"] = state["bytes"]
        if state["done_at"]: result["bulk_mbit_s"] = round(state["bytes"] * 8 / 1e6 / (state["done_at"] - state["started_at"]), 2)
        result["bulk_intact"] = state["bytes"] == total and state["digest"] == expected_digest(total)
        if state["error"]: result["bulk_error"] = state["error"]
        source.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "echo-server": serve(int(rest[0]), echo)
    elif mode == "bulk-server": serve(int(rest[0]), bulk(int(rest[1])))
    elif mode == "sink-server": serve(int(rest[0]), sink)
    elif mode == "measure": sys.exit(measure(rest))
    else: sys.exit("keystrokes.py: unknown mode %s" % mode)
