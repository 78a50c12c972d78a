#!/usr/bin/env python3
"""Writes the seed corpus in Fuzz/corpus/: small, valid frame sequences that give the fuzzers a
start in every frame type and stream state. Run again after a wire-format change."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fuzz", "corpus")
HELLO, OPEN, ACCEPT, DATA, WINDOW, RESET, PING, GOAWAY = range(8)
FIN, INTERACTIVE, ACK = 1, 2, 1


def frame(kind, stream=0, payload=b"", flags=0):
    return struct.pack(">BBHI", kind, flags, len(payload), stream) + payload


def hello(max_streams=100, window=262144, connection=1 << 26):
    return frame(HELLO, 0, struct.pack(">BBHIII", 1, 1, 0, max_streams, window, connection))


conversations = {
    "open-data-fin": [frame(OPEN, 1, b"ssh"), frame(DATA, 1, b"hello"), frame(DATA, 1, b"", FIN)],
    "open-reset": [frame(OPEN, 1, b"k3s", INTERACTIVE), frame(RESET, 1, struct.pack(">I", 5))],
    "pings": [frame(PING, 0, struct.pack(">Q", 7)), frame(PING, 0, struct.pack(">Q", 1), ACK)],
    "window-updates": [frame(OPEN, 3, b""), frame(WINDOW, 3, struct.pack(">I", 1000)),
                       frame(WINDOW, 0, struct.pack(">I", 65536))],
    "accept-own": [frame(ACCEPT, 2, b"ok"), frame(DATA, 2, b"x" * 100, FIN)],
    "goaway": [frame(OPEN, 1, b"logs"), frame(GOAWAY, 0, struct.pack(">II", 1, 0) + b"bye")],
    "many-opens": [frame(OPEN, 2 * i + 1, b"s") for i in range(8)],
    "big-data": [frame(OPEN, 1, b""), frame(DATA, 1, bytes(range(256)) * 64)],
}


def write(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


for name, frames in conversations.items():
    body = b"".join(frames)
    # Frame decoder: first byte is the chunk size, the rest wire bytes (HELLO included).
    write(os.path.join(ROOT, "frames"), name, bytes([7]) + hello() + body)
    # Session: first byte selects role and behaviour; bit 0 asks the harness to supply HELLO.
    write(os.path.join(ROOT, "session"), name, bytes([0x01]) + body)
    write(os.path.join(ROOT, "session"), name + "-dialer", bytes([0x23]) + body)
    write(os.path.join(ROOT, "session"), name + "-own-hello", bytes([0x10]) + hello(3, 16384, 32768) + body)
