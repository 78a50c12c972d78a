#!/usr/bin/env python3
"""A small stand-in for a k3s node's Kubernetes API server, used as a test fixture.

No k3s binary can run on the build machines, but our end-to-end tests must drive the
real `kubectl` through the tunnel.  This script serves just enough of the API for
`kubectl get`, `get --watch`, `logs -f`, `exec`, `port-forward` and `auth whoami` to
succeed, over TLS with a PKI it makes itself with the `openssl` CLI.  Like a real API
server it authenticates every request (client certificate or a service-account bearer
token), honours `Impersonate-*` headers only from identities allowed to impersonate, and
authorizes with a tiny RBAC table (see README.md).  Standard library only.

Usage: kube-apiserver-standin.py --dir DIR [--listen 127.0.0.1:0]
Prints `READY port=PORT` on stdout once it accepts connections; exits on SIGTERM/SIGINT.
See README-KUBE.md for what is and is not faithful.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import zlib
from urllib.parse import parse_qs, urlsplit

MAX_CONNECTIONS = 32
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
MAX_WS_MESSAGE_BYTES = 1024 * 1024
MAX_SPDY_STREAMS = 64
HANDSHAKE_TIMEOUT_S = 10
IDLE_TIMEOUT_S = 120  # keep-alive connections between requests
UPGRADED_IDLE_TIMEOUT_S = 3600  # exec/port-forward sessions may sit idle
STREAM_INTERVAL_S = 1.0
JOIN_TIMEOUT_S = 5
GRACE_S = 0.3  # lets streams send their last chunk; blocked readers are then shut down

SERVER_VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.5+k3s1",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2025-05-20T00:00:00Z", "goVersion": "go1.23.8", "compiler": "gc",
    "platform": "linux/amd64",
}

STOPPING = threading.Event()


class ConnectionClosed(Exception):
    """The peer went away (or we are shutting down); unwinds a connection handler."""


class BadRequest(Exception):
    """The peer sent something we refuse to parse; answered with 400 and a close."""


# --------------------------------------------------------------------------- PKI

def openssl(*args):
    """Run the openssl CLI; a failure here means the fixture cannot work, so raise."""
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def issue_certificate(pki_dir, name, subject, extensions):
    """Create NAME.key/NAME.crt signed by the cluster CA, with the given X.509v3 extensions."""
    key, csr, crt = (os.path.join(pki_dir, name + suffix) for suffix in (".key", ".csr", ".crt"))
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-subj", subject, "-out", csr)
    with tempfile.NamedTemporaryFile("w", dir=pki_dir, suffix=".ext") as ext:
        # Key identifiers, as Go's x509 (and so k3s) writes them: strict verifiers want them.
        ext.write(extensions + "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
        ext.flush()
        openssl("x509", "-req", "-in", csr, "-CA", os.path.join(pki_dir, "ca.crt"),
                "-CAkey", os.path.join(pki_dir, "ca.key"), "-set_serial",
                str(int.from_bytes(os.urandom(8), "big")), "-days", "825",
                "-extfile", ext.name, "-out", crt)
    os.remove(csr)


def ensure_pki(pki_dir):
    """Create the cluster CA, API server and admin client certificates unless present.

    The server certificate carries some of the names k3s puts on its own (kubernetes,
    kubernetes.default, localhost, 127.0.0.1) so a client that reaches us through a
    forward at another address can verify it with `tls-server-name: kubernetes`.
    """
    os.makedirs(pki_dir, exist_ok=True)
    names = ("ca.crt", "ca.key", "server.crt", "server.key", "admin.crt", "admin.key",
             "mallory.crt", "mallory.key")
    if all(os.path.exists(os.path.join(pki_dir, n)) for n in names):
        return
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", os.path.join(pki_dir, "ca.key"),
            "-out", os.path.join(pki_dir, "ca.crt"), "-days", "3650",
            "-subj", "/CN=k3s-standin-server-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    issue_certificate(pki_dir, "server", "/CN=kube-apiserver",
                      "basicConstraints=CA:FALSE\n"
                      "keyUsage=critical,digitalSignature,keyEncipherment\n"
                      "extendedKeyUsage=serverAuth\n"
                      "subjectAltName=DNS:kubernetes,DNS:kubernetes.default,"
                      "DNS:localhost,IP:127.0.0.1\n")
    client = ("basicConstraints=CA:FALSE\n"
              "keyUsage=critical,digitalSignature,keyEncipherment\n"
              "extendedKeyUsage=clientAuth\n")
    issue_certificate(pki_dir, "admin", "/O=system:masters/CN=admin", client)
    # A valid user of the cluster who may not impersonate: the "anyone else" of the tests.
    issue_certificate(pki_dir, "mallory", "/O=plant-staff/CN=mallory", client)


def ensure_token(path):
    """The service-account token of `kube-system/tunnel-node` (made once, 0600)."""
    if not os.path.exists(path):
        with open(path + ".tmp", "w") as f:
            f.write(base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=") + "\n")
        os.replace(path + ".tmp", path)
    with open(path) as f:
        return f.read().strip()


def write_file(path, text):
    """Replace a file atomically: a reader never sees half a kubeconfig."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def read_b64(pki_dir, name):
    """A PKI file as base64, for a kubeconfig's *-data fields."""
    with open(os.path.join(pki_dir, name), "rb") as f:
        return base64.b64encode(f.read()).decode()


def write_token_kubeconfig(pki_dir, path, port, token):
    """The kubeconfig a node's `tunnel client --kubernetes` uses: CA plus the service-account token."""
    write_file(path, (
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: standin\n  cluster:\n"
        f"    server: https://127.0.0.1:{port}\n"
        f"    certificate-authority-data: {read_b64(pki_dir, 'ca.crt')}\n"
        "contexts:\n- name: tunnel-node\n  context:\n    cluster: standin\n    user: tunnel-node\n"
        "current-context: tunnel-node\n"
        f"users:\n- name: tunnel-node\n  user:\n    token: {token}\n"))


def write_kubeconfig(pki_dir, path, port):
    """Write a kubeconfig with inline certificate data, pointing at our loopback port."""
    def b64(name):
        return read_b64(pki_dir, name)

    text = (
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: standin\n  cluster:\n"
        f"    server: https://127.0.0.1:{port}\n"
        f"    certificate-authority-data: {b64('ca.crt')}\n"
        "contexts:\n- name: standin\n  context:\n    cluster: standin\n"
        "    user: admin\n    namespace: default\n"
        "current-context: standin\n"
        "users:\n- name: admin\n  user:\n"
        f"    client-certificate-data: {b64('admin.crt')}\n"
        f"    client-key-data: {b64('admin.key')}\n"
    )
    write_file(path, text)


# --------------------------------------------------------------------------- fake cluster

STARTED = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
CREATED = STARTED - datetime.timedelta(days=3)


def timestamp(moment):
    """Kubernetes' RFC 3339 form (second precision, Z suffix)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_object(resource_version="1000"):
    """The single node, shaped like a k3s control-plane node."""
    return {
        "kind": "Node", "apiVersion": "v1",
        "metadata": {
            "name": "node-17", "uid": "5b7f8a61-0c4e-4d55-9b43-000000000017",
            "resourceVersion": resource_version, "creationTimestamp": timestamp(CREATED),
            "labels": {"kubernetes.io/hostname": "node-17", "kubernetes.io/os": "linux",
                       "node-role.kubernetes.io/control-plane": "true",
                       "node-role.kubernetes.io/master": "true"},
        },
        "spec": {"podCIDR": "10.42.0.0/24"},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "lastHeartbeatTime": timestamp(STARTED),
                            "lastTransitionTime": timestamp(CREATED)}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.17"},
                          {"type": "Hostname", "address": "node-17"}],
            "nodeInfo": {"kubeletVersion": "v1.32.5+k3s1", "osImage": "Debian GNU/Linux 12",
                         "kernelVersion": "6.1.0", "containerRuntimeVersion":
                         "containerd://1.7.27-k3s1", "architecture": "amd64",
                         "operatingSystem": "linux"},
        },
    }


def pod_object(resource_version="1001"):
    """The single pod `demo` in namespace default, running one container with port 80."""
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": "demo", "namespace": "default",
            "uid": "0d6c3c1e-8f7a-4e0b-a1de-00000000de30",
            "resourceVersion": resource_version, "creationTimestamp": timestamp(CREATED),
            "labels": {"app": "demo"},
        },
        "spec": {"nodeName": "node-17", "containers": [{
            "name": "demo", "image": "docker.io/library/busybox:1.36",
            "ports": [{"containerPort": 80, "protocol": "TCP"}]}]},
        "status": {
            "phase": "Running", "podIP": "10.42.0.9", "hostIP": "10.0.0.17",
            "startTime": timestamp(CREATED),
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{
                "name": "demo", "ready": True, "started": True, "restartCount": 0,
                "image": "docker.io/library/busybox:1.36", "imageID": "",
                "state": {"running": {"startedAt": timestamp(CREATED)}}}],
        },
    }


def node_row(node):
    """Cells of `kubectl get nodes`' default columns."""
    return [node["metadata"]["name"], "Ready", "control-plane,master", "3d",
            node["status"]["nodeInfo"]["kubeletVersion"]]


def pod_row(pod):
    """Cells of `kubectl get pods`' default columns."""
    return [pod["metadata"]["name"], "1/1", pod["status"]["phase"], 0, "3d"]


NODE_COLUMNS = [("Name", "string", "name"), ("Status", "string", ""), ("Roles", "string", ""),
                ("Age", "string", ""), ("Version", "string", "")]
POD_COLUMNS = [("Name", "string", "name"), ("Ready", "string", ""), ("Status", "string", ""),
               ("Restarts", "string", ""), ("Age", "string", "")]


def as_table(columns, row_of, objects, resource_version):
    """Render objects as a meta.k8s.io/v1 Table: kubectl asks for server-side printing."""
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [{"name": n, "type": t, "format": f, "description": n, "priority": 0}
                              for n, t, f in columns],
        "rows": [{"cells": row_of(o), "object": {
            "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": o["metadata"]}} for o in objects],
    }


def as_list(kind, objects, resource_version):
    """Render objects as a plain v1 list, for clients that do not ask for a Table."""
    return {"kind": kind, "apiVersion": "v1",
            "metadata": {"resourceVersion": resource_version}, "items": objects}


# (resource, kind, namespaced, verbs, short names, {subresource: (kind, verbs)})
CORE_V1_RESOURCES = [
    ("nodes", "Node", False, ["get", "list", "watch"], ["no"], {}),
    ("pods", "Pod", True, ["get", "list", "watch"], ["po"], {
        "exec": ("PodExecOptions", ["create", "get"]),
        "log": ("Pod", ["get"]),
        "portforward": ("PodPortForwardOptions", ["create", "get"]),
    }),
]
AGGREGATED_DISCOVERY = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def legacy_resource_list():
    """/api/v1 as an APIResourceList, for clients without aggregated discovery."""
    entries = []
    for name, kind, namespaced, verbs, short, subresources in CORE_V1_RESOURCES:
        entries.append({"name": name, "singularName": kind.lower(), "namespaced": namespaced,
                        "kind": kind, "verbs": verbs, "shortNames": short})
        entries += [{"name": f"{name}/{sub}", "singularName": "", "namespaced": namespaced,
                     "kind": sub_kind, "verbs": sub_verbs}
                    for sub, (sub_kind, sub_verbs) in subresources.items()]
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": entries}


def aggregated_core_discovery():
    """/api as apidiscovery.k8s.io/v2, which kubectl 1.32 asks for first (as k3s serves it)."""
    def kind_ref(kind):
        return {"group": "", "version": "", "kind": kind}

    resources = [{
        "resource": name, "responseKind": kind_ref(kind), "singularResource": kind.lower(),
        "scope": "Namespaced" if namespaced else "Cluster", "verbs": verbs, "shortNames": short,
        "subresources": [{"subresource": sub, "responseKind": kind_ref(sub_kind), "verbs": sub_verbs}
                         for sub, (sub_kind, sub_verbs) in subresources.items()],
    } for name, kind, namespaced, verbs, short, subresources in CORE_V1_RESOURCES]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": [{"metadata": {"creationTimestamp": None}, "versions": [
                {"version": "v1", "resources": resources, "freshness": "Current"}]}]}


def status(code, reason, message):
    """A metav1.Status body, the API's error shape."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def not_found(path):
    """404 worded like the API server: `pods "x" not found` for objects, generic otherwise."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"] and len(parts) in (4, 6) and parts[-2] in ("nodes", "pods"):
        body = status(404, "NotFound", f'{parts[-2]} "{parts[-1]}" not found')
        body["details"] = {"name": parts[-1], "kind": parts[-2]}
        return body
    return status(404, "NotFound", "the server could not find the requested resource")


# --------------------------------------------------------------------------- HTTP/1.1

class Connection:
    """A TLS connection with a read buffer: requests, websocket frames and raw bytes."""

    def __init__(self, tls_socket, peer):
        self.sock = tls_socket
        self.peer = peer
        self.buffer = b""
        self.subject = None  # (user, groups) from a verified client certificate

    def fill(self):
        """Read more bytes or raise ConnectionClosed on EOF, error or shutdown."""
        if STOPPING.is_set():
            raise ConnectionClosed()
        try:
            data = self.sock.recv(65536)
        except (OSError, ssl.SSLError) as error:
            raise ConnectionClosed() from error
        if not data:
            raise ConnectionClosed()
        self.buffer += data

    def read_exact(self, count):
        """Return exactly count bytes."""
        while len(self.buffer) < count:
            self.fill()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def read_head(self):
        """Return (method, target, headers, fields) of the next request: headers keyed
        lowercase with repeats joined by ", ", fields every (lowercase name, value) in order
        (Impersonate-Group repeats and must not be joined)."""
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > MAX_HEADER_BYTES:
                raise BadRequest("request head too large")
            self.fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        if len(head) > MAX_HEADER_BYTES:
            raise BadRequest("request head too large")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest("malformed request line")
        headers, fields = {}, []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip() or line[:1] in " \t":
                raise BadRequest("malformed header (Go's server refuses folded lines too)")
            key = name.lower()
            fields.append((key, value.strip()))
            headers[key] = (headers[key] + ", " if key in headers else "") + value.strip()
        return parts[0], parts[1], headers, fields

    def receive(self):
        """Whatever bytes are buffered or arrive next (raw SPDY after an upgrade)."""
        if not self.buffer:
            self.fill()
        data, self.buffer = self.buffer, b""
        return data

    def send(self, data):
        """Write all bytes, turning any failure into ConnectionClosed."""
        try:
            self.sock.sendall(data)
        except (OSError, ssl.SSLError) as error:
            raise ConnectionClosed() from error

    def respond(self, code, reason, body, content_type="application/json"):
        """Send a complete response with Content-Length (connection stays usable)."""
        if not isinstance(body, bytes):
            body = (json.dumps(body) + "\n").encode()
        self.send(f"HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\n"
                  f"Content-Length: {len(body)}\r\nCache-Control: no-cache, private\r\n"
                  "\r\n".encode() + body)

    def start_chunked(self, content_type):
        """Begin a streaming response; the body follows as chunks until we stop."""
        self.send(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                  "Transfer-Encoding: chunked\r\nCache-Control: no-cache, private\r\n\r\n".encode())

    def send_chunk(self, data):
        """Send one chunk of a chunked body."""
        self.send(b"%x\r\n%s\r\n" % (len(data), data))


def skip_body(conn, headers):
    """Consume a request body (kubectl sends none for what we serve), bounded in size."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise BadRequest("chunked request bodies are not supported")
    length = headers.get("content-length", "0") or "0"
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        raise BadRequest("bad or too large Content-Length")
    conn.read_exact(int(length))


def wants_table(headers):
    """kubectl get asks for server-side printing with `as=Table` in Accept."""
    return "as=Table" in headers.get("accept", "")


def end_chunked(conn):
    """On shutdown, end a stream with the last chunk so clients see a clean end, then close."""
    conn.send_chunk(b"")
    raise ConnectionClosed()


def stream_logs(conn):
    """`logs -f`: one line per interval, chunked, until the client or the server stops."""
    conn.start_chunked("text/plain")
    number = 0
    while not STOPPING.is_set():
        number += 1
        now = timestamp(datetime.datetime.now(datetime.timezone.utc))
        conn.send_chunk(f"{now} demo: tick {number}\n".encode())
        STOPPING.wait(STREAM_INTERVAL_S)
    end_chunked(conn)


def stream_watch(conn, table, columns, row_of, make_object, first_version):
    """`get --watch`: a MODIFIED event per interval, chunked, until either side stops."""
    conn.start_chunked("application/json")
    version = first_version
    while not STOPPING.is_set():
        STOPPING.wait(STREAM_INTERVAL_S)
        version += 1
        obj = make_object(str(version))
        if table:
            obj = as_table(columns, row_of, [obj], str(version))
        conn.send_chunk((json.dumps({"type": "MODIFIED", "object": obj}) + "\n").encode())
    end_chunked(conn)


def serve_plain(conn, method, path, query, headers):
    """Answer an ordinary (non-upgrade) request; returns normally when the reply is sent."""
    table = wants_table(headers)
    aggregated = "g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" in headers.get("accept", "")
    watching = query.get("watch", [""])[0] in ("true", "1")
    if method != "GET":
        conn.respond(405, "Method Not Allowed", status(405, "MethodNotAllowed", "read-only stand-in"))
    elif path == "/version":
        conn.respond(200, "OK", SERVER_VERSION)
    elif path == "/api" and aggregated:
        conn.respond(200, "OK", aggregated_core_discovery(), AGGREGATED_DISCOVERY)
    elif path == "/api":
        conn.respond(200, "OK", {"kind": "APIVersions", "versions": ["v1"],
                                 "serverAddressByClientCIDRs": [
                                     {"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.17:6443"}]})
    elif path == "/apis" and aggregated:
        conn.respond(200, "OK", {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                                 "metadata": {}, "items": []}, AGGREGATED_DISCOVERY)
    elif path == "/apis":
        conn.respond(200, "OK", {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
    elif path == "/api/v1":
        conn.respond(200, "OK", legacy_resource_list())
    elif path == "/api/v1/nodes":
        if watching:
            stream_watch(conn, table, NODE_COLUMNS, node_row, node_object, 1000)
        nodes = [node_object()]
        conn.respond(200, "OK", as_table(NODE_COLUMNS, node_row, nodes, "1000") if table
                     else as_list("NodeList", nodes, "1000"))
    elif path == "/api/v1/nodes/node-17":
        conn.respond(200, "OK", as_table(NODE_COLUMNS, node_row, [node_object()], "1000")
                     if table else node_object())
    elif path in ("/api/v1/pods", "/api/v1/namespaces/default/pods"):
        if watching:
            stream_watch(conn, table, POD_COLUMNS, pod_row, pod_object, 1001)
        pods = [pod_object()]
        conn.respond(200, "OK", as_table(POD_COLUMNS, pod_row, pods, "1001") if table
                     else as_list("PodList", pods, "1001"))
    elif path == "/api/v1/namespaces/default/pods/demo":
        conn.respond(200, "OK", as_table(POD_COLUMNS, pod_row, [pod_object()], "1001")
                     if table else pod_object())
    elif path == "/api/v1/namespaces/default/pods/demo/log":
        if query.get("follow", [""])[0] in ("true", "1"):
            stream_logs(conn)
        conn.respond(200, "OK", b"demo: started\ndemo: serving on :80\n", "text/plain")
    else:
        conn.respond(404, "Not Found", not_found(path))


# --------------------------------------------------------------------------- websocket

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x2, 0x8, 0x9, 0xA


def unmask(payload, mask):
    """XOR the payload with the repeating 4-byte client mask (as one big integer: fast)."""
    key = (mask * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(len(payload), "big")


class WebSocket:
    """Server side of RFC 6455 over a Connection: reads masked frames, writes unmasked."""

    def __init__(self, conn):
        self.conn = conn
        self.closed = False

    def read_message(self):
        """Return the payload of the next data message; answers pings; None on close."""
        message, opcode = b"", None
        while True:
            first, second = self.conn.read_exact(2)
            fin, frame_op = first & 0x80, first & 0x0F
            if not second & 0x80:
                raise BadRequest("client websocket frames must be masked")
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self.conn.read_exact(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self.conn.read_exact(8))[0]
            if length > MAX_WS_MESSAGE_BYTES or len(message) + length > MAX_WS_MESSAGE_BYTES:
                raise BadRequest("websocket message too large")
            mask = self.conn.read_exact(4)
            payload = unmask(self.conn.read_exact(length), mask)
            if frame_op == OP_CLOSE:
                self.close()
                return None
            if frame_op == OP_PING:
                self.write_frame(OP_PONG, payload)
                continue
            if frame_op == OP_PONG:
                continue
            if frame_op != OP_CONTINUATION:
                opcode = frame_op
            message += payload
            if fin and opcode is not None:
                return message

    def write_frame(self, opcode, payload):
        """Send one unmasked frame (servers never mask)."""
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", 0x80 | opcode, length)
        elif length < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, length)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, length)
        self.conn.send(head + payload)

    def send_binary(self, payload):
        """Send one binary message."""
        self.write_frame(OP_BINARY, payload)

    def close(self):
        """Send a normal-closure close frame once."""
        if not self.closed:
            self.closed = True
            self.write_frame(OP_CLOSE, struct.pack("!H", 1000))


def accept_websocket(conn, headers, supported):
    """Complete the upgrade choosing the first of our supported subprotocols the client offers.

    Returns the WebSocket and chosen subprotocol, or None after answering 400, so a client
    that offers nothing we speak sees an explicit failure rather than a half-open stream.
    """
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    chosen = next((p for p in supported if p in offered), None)
    key = headers.get("sec-websocket-key")
    if chosen is None or key is None or headers.get("sec-websocket-version") != "13":
        conn.respond(400, "Bad Request", status(400, "BadRequest",
                                               f"unsupported websocket subprotocols {offered}"))
        return None
    accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
    conn.sock.settimeout(UPGRADED_IDLE_TIMEOUT_S)
    conn.send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {chosen}\r\n\r\n".encode())
    return WebSocket(conn), chosen


# --------------------------------------------------------------------------- SPDY/3.1

SPDY_VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, PING, GOAWAY = 1, 2, 3, 6, 7
FLAG_FIN = 0x01
REFUSED_STREAM = 3

# SPDY/3 header blocks are zlib streams primed with this dictionary (SPDY draft 3,
# section 2.6.10.1): length-prefixed common header words, then a run of common values.
SPDY_DICTIONARY_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding "
    "accept-language accept-ranges age allow authorization cache-control connection "
    "content-base content-encoding content-language content-length content-location "
    "content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
    "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
    "server te trailer transfer-encoding upgrade user-agent vary via warning "
    "www-authenticate method get status 200_OK version HTTP/1.1 url public set-cookie "
    "keep-alive origin").split()
SPDY_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
SPDY_DICTIONARY = b"".join(
    struct.pack("!I", len(w)) + w.replace("_", " ").encode() for w in SPDY_DICTIONARY_WORDS
) + SPDY_DICTIONARY_TAIL.encode()


def stream_id_of(data):
    """The 31-bit stream id at the start of a data frame or a stream control frame body."""
    return struct.unpack("!I", data[:4])[0] & 0x7FFFFFFF


class SpdySession:
    """Server half of the SPDY/3.1 session kubectl multiplexes its streams over.

    Transport-agnostic: `receive()` returns more bytes (None at the end) and `transmit()`
    sends; kubectl runs it raw after `Upgrade: SPDY/3.1`, or tunnelled in websocket
    messages.  Streams are accepted at once: kubectl waits for the SYN_REPLY before use.
    Flow control (WINDOW_UPDATE, SETTINGS) is ignored: we move far less than a window.
    """

    def __init__(self, receive, transmit):
        self.receive = receive
        self.transmit = transmit
        self.inflater = zlib.decompressobj(zdict=SPDY_DICTIONARY)
        self.deflater = zlib.compressobj(zdict=SPDY_DICTIONARY)
        self.pending = b""
        self.streams = {}  # open stream id -> its (lowercased) SYN_STREAM headers

    def next_event(self):
        """Next ("open", id, headers) / ("data", id, bytes, fin) / ("reset", id); None at end."""
        while True:
            frame = self.read_frame()
            if frame is None:
                return None
            flags, body = frame[4], frame[8:]
            if not frame[0] & 0x80:
                return ("data", stream_id_of(frame), body, bool(flags & FLAG_FIN))
            kind = struct.unpack("!H", frame[2:4])[0]
            if kind == SYN_STREAM:
                stream_id, headers = stream_id_of(body), self.decode_headers(body[10:])
                if len(self.streams) >= MAX_SPDY_STREAMS:
                    self.send_control(RST_STREAM, struct.pack("!II", stream_id, REFUSED_STREAM))
                    continue
                self.streams[stream_id] = headers
                self.send_control(SYN_REPLY, struct.pack("!I", stream_id) + self.encode_headers({}))
                return ("open", stream_id, headers)
            if kind == RST_STREAM:
                self.streams.pop(stream_id_of(body), None)
                return ("reset", stream_id_of(body))
            if kind == PING:
                self.send_control(PING, body)
            elif kind == GOAWAY:
                return None

    def read_frame(self):
        """One whole frame from the byte stream, whatever the transport's message boundaries."""
        while True:
            if len(self.pending) >= 8:
                length = int.from_bytes(self.pending[5:8], "big")
                if length > MAX_WS_MESSAGE_BYTES:
                    raise BadRequest("SPDY frame too large")
                if len(self.pending) >= 8 + length:
                    frame, self.pending = self.pending[:8 + length], self.pending[8 + length:]
                    return frame
            data = self.receive()
            if data is None:
                return None
            self.pending += data

    def decode_headers(self, block):
        """Inflate a name/value block: count, then length-prefixed name and value pairs."""
        raw = self.inflater.decompress(block, MAX_HEADER_BYTES)
        count, offset, headers = struct.unpack("!I", raw[:4])[0], 4, {}
        for _ in range(count):
            pair = []
            for _ in range(2):
                size = struct.unpack("!I", raw[offset:offset + 4])[0]
                pair.append(raw[offset + 4:offset + 4 + size].decode("latin-1"))
                offset += 4 + size
            headers[pair[0].lower()] = pair[1]
        return headers

    def encode_headers(self, headers):
        """Deflate a name/value block, flushing so the peer can decode it right away."""
        raw = struct.pack("!I", len(headers)) + b"".join(
            struct.pack("!I", len(n)) + n.encode() + struct.pack("!I", len(v)) + v.encode()
            for n, v in headers.items())
        return self.deflater.compress(raw) + self.deflater.flush(zlib.Z_SYNC_FLUSH)

    def send_control(self, kind, body):
        """Send a control frame (no flags needed by anything we send)."""
        self.transmit(struct.pack("!HHI", 0x8000 | SPDY_VERSION, kind, len(body)) + body)

    def send_data(self, stream_id, data, fin=False):
        """Send a data frame; fin half-closes the stream from our side."""
        self.transmit(struct.pack("!II", stream_id, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data)


def accept_spdy(conn, headers, supported):
    """Complete an `Upgrade: SPDY/3.1` choosing from X-Stream-Protocol-Version; or 400 + None."""
    offered = [p.strip() for p in headers.get("x-stream-protocol-version", "").split(",") if p.strip()]
    chosen = next((p for p in supported if p in offered), None)
    if chosen is None:
        conn.respond(400, "Bad Request", status(400, "BadRequest",
                                               f"unsupported stream protocols {offered}"))
        return None
    conn.sock.settimeout(UPGRADED_IDLE_TIMEOUT_S)
    conn.send("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
              f"X-Stream-Protocol-Version: {chosen}\r\n\r\n".encode())
    return SpdySession(conn.receive, conn.send), chosen


# --------------------------------------------------------------------------- exec

CHANNELS = {"stdin": 0, "stdout": 1, "stderr": 2, "error": 3}
CHANNEL_CLOSE = 255  # v5.channel.k8s.io: [255, channel] half-closes that channel
EXEC_WEBSOCKET_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
EXEC_SPDY_PROTOCOLS = ["v4.channel.k8s.io"]
SHELL_PROMPT = "/ # "
MAX_SHELL_LINE = 4096


def exit_status(code, command):
    """The v4/v5 error-channel document: Success, or NonZeroExitCode with the code as a cause."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"{command}, exit code {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


class WebSocketExec:
    """A pretend process's stdio over channel.k8s.io websocket messages ([channel] + data)."""

    def __init__(self, ws, flags):
        self.ws = ws
        self.flags = flags

    def read_stdin(self):
        """Next stdin bytes, or None once stdin ends (v5 close signal or websocket close)."""
        while True:
            message = self.ws.read_message()
            if message is None or message[:2] == bytes([CHANNEL_CLOSE, CHANNELS["stdin"]]):
                return None
            if message[:1] == bytes([CHANNELS["stdin"]]) and len(message) > 1:
                return message[1:]

    def write(self, name, data):
        """Write to stdout/stderr; with a TTY kubectl asks for no stderr, so it joins stdout."""
        if not self.flags[name]:
            name = "stdout"
        self.ws.send_binary(bytes([CHANNELS[name]]) + data)

    def finish(self, code, command):
        """Report the exit status on the error channel, then close the websocket."""
        self.ws.send_binary(bytes([CHANNELS["error"]]) + json.dumps(exit_status(code, command)).encode())
        self.ws.close()


class SpdyExec:
    """A pretend process's stdio over SPDY streams, one per stdio name (v4.channel.k8s.io)."""

    def __init__(self, session, flags):
        self.session = session
        self.flags = flags
        self.ids = {}
        self.stdin_done = False
        wanted = {"error"} | {name for name in ("stdin", "stdout", "stderr") if flags[name]}
        if flags["tty"]:
            wanted.add("resize")
        while not wanted <= set(self.ids):  # kubectl opens every stream before it starts
            event = session.next_event()
            if event is None:
                raise ConnectionClosed()
            if event[0] == "open":
                self.ids[event[2].get("streamtype")] = event[1]

    def read_stdin(self):
        """Next stdin bytes, or None once the stdin stream is finished or reset."""
        while not self.stdin_done:
            event = self.session.next_event()
            if event is None:
                return None
            if event[1] != self.ids.get("stdin") or event[0] == "open":
                continue
            self.stdin_done = event[0] == "reset" or event[3]
            if event[0] == "data" and event[2]:
                return event[2]
        return None

    def write(self, name, data):
        """Write to stdout/stderr (stdout when that stream was not asked for)."""
        self.session.send_data(self.ids.get(name, self.ids.get("stdout")), data)

    def finish(self, code, command):
        """Finish the output streams, then the exit status on the error stream."""
        for name in ("stdout", "stderr"):
            if name in self.ids:
                self.session.send_data(self.ids[name], b"", fin=True)
        self.session.send_data(self.ids["error"], json.dumps(exit_status(code, command)).encode(), fin=True)


def run_shell(stdio):
    """A toy interactive `sh` for `exec -it`: prompt, line editing, `echo` and `exit [N]`.

    With a TTY the remote terminal echoes what is typed (kubectl has put the local one in
    raw mode), so we echo too and answer CR/LF with CRLF.
    """
    def out(text):
        stdio.write("stdout", text.encode())

    out(SHELL_PROMPT)
    line, previous = "", ""
    while True:
        data = stdio.read_stdin()
        if data is None:
            return 0
        for char in data.decode("utf-8", "replace"):
            if char == "\n" and previous == "\r":
                pass
            elif char in "\r\n":
                out("\r\n")
                words, line = line.split(), ""
                if words[:1] == ["exit"]:
                    return int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
                if words[:1] == ["echo"]:
                    out(" ".join(words[1:]) + "\r\n")
                elif words:
                    out(f"sh: {words[0]}: not found\r\n")
                out(SHELL_PROMPT)
            elif char == "\x04" and not line:
                out("\r\n")
                return 0
            elif char in "\x7f\b":
                if line:
                    line = line[:-1]
                    out("\b \b")
            elif char >= " " and len(line) < MAX_SHELL_LINE:
                line += char
                out(char)
            previous = char


def run_command(command, flags, stdio):
    """Pretend to run a command in container `demo`; returns its exit code.

    `echo ARGS` prints them; `cat` copies stdin until it ends; `sh` with a TTY is a toy
    shell; anything else exits 127 like a missing binary.
    """
    if command[:1] == ["echo"]:
        stdio.write("stdout", (" ".join(command[1:]) + "\n").encode())
        return 0
    if command == ["cat"] and flags["stdin"]:
        while (data := stdio.read_stdin()) is not None:
            stdio.write("stdout", data)
        return 0
    if command == ["sh"] and flags["stdin"] and flags["tty"]:
        return run_shell(stdio)
    stdio.write("stderr", f"sh: {(command or [''])[0]}: not found\n".encode())
    return 127


def serve_exec(conn, headers, query, websocket):
    """Upgrade (websocket v5/v4, or SPDY/3.1 with v4) and run the pretend command."""
    flags = {name: query.get(name, [""])[0] in ("true", "1")
             for name in ("stdin", "stdout", "stderr", "tty")}
    command = query.get("command", [])
    if websocket:
        accepted = accept_websocket(conn, headers, EXEC_WEBSOCKET_PROTOCOLS)
        if accepted is None:
            return
        stdio, protocol = WebSocketExec(accepted[0], flags), "websocket " + accepted[1]
    else:
        accepted = accept_spdy(conn, headers, EXEC_SPDY_PROTOCOLS)
        if accepted is None:
            return
        stdio, protocol = SpdyExec(accepted[0], flags), "SPDY/3.1 " + accepted[1]
    code = run_command(command, flags, stdio)
    stdio.finish(code, command)
    log(f"exec {command} over {protocol}: exit {code}")


# --------------------------------------------------------------------------- port-forward

PORTFORWARD_WEBSOCKET_PROTOCOLS = ["SPDY/3.1+portforward.k8s.io"]
PORTFORWARD_SPDY_PROTOCOLS = ["portforward.k8s.io"]
DEMO_HTTP_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n"
                      b"Connection: close\r\n\r\nhello from demo\n")


def end_forwarded_connection(session, request_id, error):
    """Finish one forwarded connection: error text (may be empty) on its error stream, FIN on both."""
    for stream_id, headers in list(session.streams.items()):
        if headers.get("requestid") == request_id:
            session.send_data(stream_id, error if headers.get("streamtype") == "error" else b"", fin=True)
            del session.streams[stream_id]


def run_portforward(session):
    """Play the pod's port 80 for each forwarded connection kubectl opens.

    Each connection is an `error` and a `data` stream sharing a `requestid`.  Port 80 is
    a one-shot HTTP server answering `hello from demo`, after which both streams are
    finished, which makes kubectl close the local socket.  Other ports are refused.
    """
    received = {}  # data stream id -> request bytes so far
    while (event := session.next_event()) is not None:
        kind, stream_id = event[0], event[1]
        if kind == "open" and event[2].get("streamtype") == "data":
            if event[2].get("port") == "80":
                received[stream_id] = b""
            else:
                end_forwarded_connection(session, event[2].get("requestid"),
                                         f"port {event[2].get('port')}: connection refused".encode())
        elif kind == "data" and stream_id in received:
            received[stream_id] += event[2]
            request_id = session.streams[stream_id].get("requestid")
            if b"\r\n\r\n" in received[stream_id]:
                session.send_data(stream_id, DEMO_HTTP_RESPONSE)
                end_forwarded_connection(session, request_id, b"")
                log(f"port-forward request {request_id}: answered GET on port 80")
            elif event[3] or len(received[stream_id]) > MAX_HEADER_BYTES:
                end_forwarded_connection(session, request_id, b"incomplete HTTP request")
            else:
                continue
            del received[stream_id]
        elif kind == "reset":
            received.pop(stream_id, None)


def serve_portforward(conn, headers, websocket):
    """Upgrade (SPDY tunnelled in a websocket, or plain SPDY/3.1) and run the session."""
    if websocket:
        accepted = accept_websocket(conn, headers, PORTFORWARD_WEBSOCKET_PROTOCOLS)
        if accepted is None:
            return
        ws, subprotocol = accepted
        log(f"port-forward over websocket {subprotocol}")
        run_portforward(SpdySession(ws.read_message, ws.send_binary))
        ws.close()
    else:
        accepted = accept_spdy(conn, headers, PORTFORWARD_SPDY_PROTOCOLS)
        if accepted is None:
            return
        session, subprotocol = accepted
        log(f"port-forward over SPDY/3.1 {subprotocol}")
        run_portforward(session)


# --------------------------------------------------------------------------- authn, impersonation, RBAC

SERVICE_ACCOUNT = "system:serviceaccount:kube-system:tunnel-node"
SERVICE_ACCOUNT_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
NODE_TOKEN = None  # set by main(): the bearer token of SERVICE_ACCOUNT

# Who may send Impersonate-* headers (as the `impersonate` verb on users and groups would
# allow): cluster admins, and the node's service account through the ClusterRole of
# docs/KUBERNETES.md.  Everyone else gets 403, as from a real API server.
IMPERSONATORS_BY_USER = {SERVICE_ACCOUNT}
IMPERSONATORS_BY_GROUP = {"system:masters"}

# group -> [(verbs, resources)]: what an (impersonated) identity may do in namespace default
# and on nodes; a tiny stand-in for the cluster's RBAC.  system:masters may do everything.
READ = {"get", "list", "watch"}
RBAC = {
    "edge-viewers": [(READ, {"pods", "nodes", "pods/log"})],
    "edge-operators": [(READ, {"pods", "nodes", "pods/log"}),
                       ({"create", "get"}, {"pods/exec", "pods/portforward", "pods/attach"})],
}
# Paths every authenticated identity may GET (system:discovery and system:basic-user).
DISCOVERY_PATHS = ("/api", "/apis", "/version", "/api/v1")
SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


class Refused(Exception):
    """A request the API server answers with an error Status before serving it."""

    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def authenticate(conn, headers):
    """(user, groups) from the bearer token or the client certificate; 401 otherwise.

    As k3s runs it: anonymous requests are refused, a bearer token must be a known one.
    """
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and NODE_TOKEN and token.strip() == NODE_TOKEN:
            return SERVICE_ACCOUNT, list(SERVICE_ACCOUNT_GROUPS)
        raise Refused(401, "Unauthorized", "Unauthorized")
    if conn.subject is None:
        raise Refused(401, "Unauthorized", "Unauthorized")
    user, groups = conn.subject
    return user, groups + ["system:authenticated"]


def impersonate(user, groups, fields):
    """Apply Impersonate-User/-Group (and refuse -Uid/-Extra-*) if present and allowed."""
    wanted_user = [v for k, v in fields if k == "impersonate-user"]
    wanted_groups = [v for k, v in fields if k == "impersonate-group"]
    others = [k for k, _ in fields if k.startswith("impersonate-") and k not in ("impersonate-user", "impersonate-group")]
    if not (wanted_user or wanted_groups or others):
        return user, groups, None
    if len(wanted_user) != 1 or not wanted_user[0]:
        raise Refused(400, "BadRequest", "requested impersonation without exactly one Impersonate-User")
    if others:
        raise Refused(403, "Forbidden", f"impersonating {others[0]} is not allowed by this stand-in")
    if user not in IMPERSONATORS_BY_USER and not IMPERSONATORS_BY_GROUP & set(groups):
        raise Refused(403, "Forbidden", f'users "{wanted_user[0]}" is forbidden: User "{user}" cannot '
                      'impersonate resource "users" in API group "" at the cluster scope')
    return wanted_user[0], wanted_groups + ["system:authenticated"], user


def request_attributes(method, path, query):
    """(verb, resource with /subresource, namespace, name) of a resource request, or None."""
    parts = path.strip("/").split("/")
    if parts[:2] != ["api", "v1"] or len(parts) < 3:
        return None
    namespace = None
    rest = parts[2:]
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, name = rest[0], rest[1] if len(rest) > 1 else None
    if len(rest) > 2:
        resource += "/" + rest[2]
    watching = query.get("watch", [""])[0] in ("true", "1")
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)
    if verb is None and method == "DELETE":
        verb = "delete" if name else "deletecollection"
    if verb is None:
        verb = "watch" if watching else ("get" if name else "list")
    return verb, resource, namespace, name


def authorize(method, path, query, user, groups):
    """Raise 403, worded as the API server words it, unless the RBAC table allows the request."""
    if "system:masters" in groups:
        return
    if (method == "GET" and path in DISCOVERY_PATHS) or (method == "POST" and path == SELF_SUBJECT_REVIEWS):
        return
    attributes = request_attributes(method, path, query)
    if attributes is None:
        raise Refused(403, "Forbidden", f'forbidden: User "{user}" cannot {method.lower()} path "{path}"')
    verb, resource, namespace, name = attributes
    for group in groups:
        for verbs, resources in RBAC.get(group, []):
            if verb in verbs and resource in resources:
                return
    subject = f'{resource.split("/")[0]} "{name}"' if name else resource.split("/")[0]
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    raise Refused(403, "Forbidden", f'{subject} is forbidden: User "{user}" cannot {verb} resource '
                  f'"{resource}" in API group "" {scope}')


def self_subject_review(user, groups):
    """`kubectl auth whoami`: who the server thinks the (impersonated) caller is."""
    return {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": {"username": user, "groups": groups}}}


# --------------------------------------------------------------------------- server

def log(message):
    """Diagnostics go to stderr so stdout carries only the READY line."""
    print(f"standin: {message}", file=sys.stderr, flush=True)


def handle_connection(conn):
    """Serve requests on one connection until it closes, upgrades, or we stop."""
    while True:
        try:
            method, target, headers, fields = conn.read_head()
            skip_body(conn, headers)
        except BadRequest as error:
            conn.respond(400, "Bad Request", status(400, "BadRequest", str(error)))
            return
        url = urlsplit(target)
        path, query = url.path.rstrip("/") or "/", parse_qs(url.query)
        try:
            user, groups = authenticate(conn, headers)
            user, groups, by = impersonate(user, groups, fields)
            authorize(method, path, query, user, groups)
        except Refused as refusal:
            log(f"{conn.peer} {method} {target} refused {refusal.code}: {refusal.message}")
            conn.respond(refusal.code, refusal.reason, status(refusal.code, refusal.reason, refusal.message))
            if refusal.code == 400:
                return
            continue
        via = f" impersonated-by={by}" if by else ""
        log(f"{conn.peer} {method} {target} user={user} groups={','.join(groups)}{via}")
        if method == "POST" and path == SELF_SUBJECT_REVIEWS:
            conn.respond(201, "Created", self_subject_review(user, groups))
            continue
        upgrade = headers.get("upgrade", "").lower()
        base = "/api/v1/namespaces/default/pods/demo/"
        if path in (base + "exec", base + "portforward"):
            if upgrade not in ("websocket", "spdy/3.1"):
                conn.respond(400, "Bad Request", status(
                    400, "BadRequest", "Upgrade: websocket or SPDY/3.1 required"))
            elif path.endswith("exec"):
                serve_exec(conn, headers, query, upgrade == "websocket")
            else:
                serve_portforward(conn, headers, upgrade == "websocket")
            return
        serve_plain(conn, method, path, query, headers)
        if headers.get("connection", "").lower() == "close":
            return


class Server:
    """Accept loop plus a bounded set of per-connection threads, all joined on stop."""

    def __init__(self, host, port, context):
        self.listener = socket.create_server((host, port))
        self.listener.settimeout(0.2)
        self.context = context
        self.lock = threading.Lock()
        self.active = {}  # thread -> raw socket, so stop() can unblock reads

    @property
    def port(self):
        """The bound port (useful with port 0)."""
        return self.listener.getsockname()[1]

    def serve_forever(self):
        """Accept until STOPPING is set; refuse connections beyond MAX_CONNECTIONS."""
        while not STOPPING.is_set():
            try:
                raw, peer = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if STOPPING.is_set():
                    break
                raise
            with self.lock:
                if len(self.active) >= MAX_CONNECTIONS:
                    raw.close()
                    continue
                thread = threading.Thread(target=self.run_connection, args=(raw, peer))
                self.active[thread] = raw
            thread.start()
        self.stop()

    def run_connection(self, raw, peer):
        """Handshake (client certificate required), serve, and always clean up."""
        try:
            raw.settimeout(HANDSHAKE_TIMEOUT_S)
            tls = self.context.wrap_socket(raw, server_side=True)
            raw = tls
            with self.lock:  # stop() shuts down what it finds here, so register or bail out
                if STOPPING.is_set():
                    raise ConnectionClosed()
                self.active[threading.current_thread()] = tls
            tls.settimeout(IDLE_TIMEOUT_S)
            certificate = tls.getpeercert()
            conn = Connection(tls, f"{peer[0]}:{peer[1]}")
            if certificate:  # a verified client certificate: CN is the user, O the groups
                names = [item[0] for item in certificate["subject"]]
                conn.subject = (next((v for k, v in names if k == "commonName"), ""),
                                [v for k, v in names if k == "organizationName"])
            handle_connection(conn)
        except (ssl.SSLError, OSError) as error:
            log(f"{peer[0]}:{peer[1]} rejected or dropped: {error}")
        except ConnectionClosed:
            pass
        except (BadRequest, zlib.error, struct.error, KeyError, ValueError) as error:
            log(f"{peer[0]}:{peer[1]} protocol error, closing: {error!r}")
        finally:
            raw.close()
            with self.lock:
                self.active.pop(threading.current_thread(), None)

    def stop(self):
        """Close the listener, shut every connection down, and join their threads."""
        STOPPING.set()
        self.listener.close()
        with self.lock:
            pending = list(self.active.items())
        for thread, _ in pending:  # grace period: streams end their chunked bodies
            thread.join(GRACE_S / len(pending))
        for _, raw in pending:
            try:
                socket.socket.shutdown(raw, socket.SHUT_RDWR)
            except OSError:
                pass
        for thread, _ in pending:
            thread.join(JOIN_TIMEOUT_S)


def make_context(pki_dir):
    """TLS 1.2+ server context; a client certificate, if sent, must come from the cluster CA
    (without one, a request needs a bearer token, as on a real API server)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(os.path.join(pki_dir, "server.crt"), os.path.join(pki_dir, "server.key"))
    context.load_verify_locations(os.path.join(pki_dir, "ca.crt"))
    context.verify_mode = ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])
    return context


def main():
    """Parse arguments, prepare PKI and kubeconfig, serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, help="state directory (PKI, kubeconfig)")
    parser.add_argument("--listen", default="127.0.0.1:0", help="loopback HOST:PORT")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    if host != "127.0.0.1" or not port.isdigit():
        parser.error("--listen must be 127.0.0.1:PORT (loopback; the certificate names 127.0.0.1)")
    os.umask(0o077)  # private keys and the kubeconfig are for this user only
    pki_dir = os.path.join(args.dir, "pki")
    ensure_pki(pki_dir)
    global NODE_TOKEN
    NODE_TOKEN = ensure_token(os.path.join(args.dir, "tunnel-node.token"))
    server = Server(host, int(port), make_context(pki_dir))
    write_kubeconfig(pki_dir, os.path.join(args.dir, "kubeconfig"), server.port)
    write_token_kubeconfig(pki_dir, os.path.join(args.dir, "node-kubeconfig"), server.port, NODE_TOKEN)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: STOPPING.set())
    print(f"READY port={server.port}", flush=True)
    server.serve_forever()
    log("stopped")


if __name__ == "__main__":
    main()
