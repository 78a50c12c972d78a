#!/usr/bin/env python3
"""Checks `--json` outputs against the shapes docs/JSON.md documents.

    json-shapes.py KIND FILE [KIND FILE ...]

KIND is one of the keys of SHAPES. Prints one line per file; exits 1 if any does not match.
A shape is a dict of field -> (type, required); a list shape is [item shape]. Fields the docs
mark optional may be absent or null; unknown fields are allowed (the shapes may grow).
"""
import json
import sys

NUMBER = (int, float)
STR_MAP = "str-map"

NODE = {
    "name": (str, True), "online": (bool, True), "labels": (STR_MAP, True), "services": ([str], True),
    "remoteAddress": (str, True), "version": (str, True), "connectedSince": (NUMBER, False),
    "lastKeepaliveSecondsAgo": (NUMBER, False), "previousSessionEnded": (str, False),
    "certificateNotAfter": (int, False), "lastSeen": (int, False), "revokedAt": (int, False),
}
TOKEN = {
    "id": (str, True), "nodeName": (str, False), "namePrefix": (str, False), "labels": (STR_MAP, True),
    "createdAt": (int, True), "expiresAt": (int, True), "usesAllowed": (int, True), "usesCount": (int, True),
    "createdBy": (str, True),
}
USER = {
    "name": (str, True), "roles": ([str], True), "createdAt": (int, True), "createdBy": (str, True),
    "certificateNotAfter": (int, False), "revokedAt": (int, False),
}
RECORD = {"seq": (int, True), "time": (str, True), "type": (str, True), "prev": (str, True)}

SHAPES = {
    "version": {"version": (str, True), "commit": (str, True), "swift": (str, True), "openssl": (str, True), "libuv": (str, True)},
    "nodes": {"nodes": ([NODE], True), "warnings": ([str], True), "gatewayTime": (int, False)},
    "node-ls": [NODE],
    "token-ls": [TOKEN],
    "user-ls": [USER],
    "policy-show": {"policy": (str, True)},
    "whoami": {
        "identity": (str, True), "name": (str, True), "gateway": (str, True), "serverName": (str, True),
        "notAfter": (int, True), "expired": (bool, True), "renewSoon": (bool, True),
    },
    "audit-ls": [{"outcome": (str, True), "open": (RECORD, True), "close": (RECORD, False)}],
    "audit-events": [RECORD],
    "audit-show": [RECORD],
    "audit-verify": {
        "valid": (bool, True), "problem": (str, False), "keyID": (str, True), "files": ([str], True),
        "records": (int, True), "firstSeq": (int, False), "lastSeq": (int, False), "checkpoints": (int, True),
        "recoveries": (int, True), "lastCheckpointSeq": (int, False), "unsignedTail": (int, True),
        "closedCleanly": (bool, True), "summary": (str, True),
    },
}


def check(value, shape, path):
    """Returns a list of problems with `value` against `shape`."""
    if shape == STR_MAP:
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return [f"{path}: not an object of strings"]
        return []
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{path}: not an array"]
        return [p for index, item in enumerate(value) for p in check(item, shape[0], f"{path}[{index}]")]
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        problems = []
        for field, (kind, required) in shape.items():
            if field not in value or value[field] is None:
                if required:
                    problems.append(f"{path}.{field}: missing")
                continue
            problems += check(value[field], kind, f"{path}.{field}")
        return problems
    # A Python type (or tuple of types); bool is not an int here.
    if isinstance(value, bool) and shape is not bool:
        return [f"{path}: a bool where {shape} belongs"]
    return [] if isinstance(value, shape) else [f"{path}: {type(value).__name__} where {shape} belongs"]


def main(arguments):
    failed = False
    for kind, path in zip(arguments[::2], arguments[1::2]):
        try:
            with open(path, encoding="utf-8") as file:
                value = json.load(file)
        except (OSError, ValueError) as error:
            print(f"FAIL {kind}: not JSON: {error}")
            failed = True
            continue
        problems = check(value, SHAPES[kind], kind)
        if isinstance(value, list) and not value:
            problems.append(f"{kind}: empty, so nothing was checked")
        if problems:
            failed = True
            print(f"FAIL {kind}: " + "; ".join(problems[:5]))
        else:
            print(f"ok {kind}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
