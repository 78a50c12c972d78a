#!/usr/bin/env python3
"""Lists Swift functions, initialisers and subscripts longer than a limit (default 60 lines).

    scripts/long-functions.py [--max N] DIR...

Prints "LINES PATH:LINE NAME", longest first, and exits 1 if there is any. The house rule
(docs/ARCHITECTURE.md) is about 60 lines a function: past that a function usually does two
things. The scan counts braces outside string literals and comments, which is enough for this
code base's style; it is a habit check, not a parser.
"""
import argparse
import os
import re
import sys

DECLARATION = re.compile(
    r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*"
    r"(?:(?:public|private|fileprivate|internal|package|static|class|final|override|mutating|"
    r"nonmutating|convenience|required|nonisolated)(?:\([^)]*\))?\s+)*"
    r"(func\s+[^\s(<]+|init[?!]?|deinit|subscript)\b"
)
STRING = re.compile(r'"(?:\\.|[^"\\])*"')


def code_of(line):
    """The line without string literals and a trailing // comment."""
    return STRING.sub('""', line).split("//")[0]


def body_length(lines, start):
    """Lines from the declaration at `start` to its closing brace, or None for a bodiless one."""
    depth, opened = 0, False
    for index in range(start, len(lines)):
        for char in code_of(lines[index]):
            if char == "{":
                depth, opened = depth + 1, True
            elif char == "}":
                depth -= 1
        if opened and depth <= 0:
            return index - start + 1
        if not opened and index > start + 15:
            return None
    return None


def long_functions(path, limit):
    with open(path, encoding="utf-8") as file:
        lines = file.read().split("\n")
    for index, line in enumerate(lines):
        match = DECLARATION.match(line)
        if not match or line.lstrip().startswith("//"):
            continue
        length = body_length(lines, index)
        if length and length > limit:
            yield length, f"{path}:{index + 1}", match.group(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=60)
    parser.add_argument("dirs", nargs="+")
    arguments = parser.parse_args()
    found = []
    for top in arguments.dirs:
        for root, _, files in os.walk(top):
            for name in files:
                if name.endswith(".swift"):
                    found.extend(long_functions(os.path.join(root, name), arguments.max))
    for length, place, name in sorted(found, reverse=True):
        print(length, place, name)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
