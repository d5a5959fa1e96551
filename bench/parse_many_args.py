#!/usr/bin/env python3
"""The request parser alone on long requests: microseconds an argument.

    PYTHONPATH=$PWD python bench/parse_many_args.py

Each request is fed in 64 kB reads to a fresh ``RequestParser``; the best of 5
runs is printed. The cases are the common one (short arguments) and the ones
the block path (``resp._take_bulks``) must not make slower: arguments holding a
CRLF, long bulks between short ones, an odd argument every 50th.
"""
from __future__ import annotations

import time

from distcache.protocol.resp import RequestParser


def encode(*args: bytes) -> bytes:
    return b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args])


CASES = {
    "short": encode(b"BITFIELD", b"b", *[w for i in range(50_000)
                                         for w in (b"INCRBY", b"u63", b"#%d" % i, b"1")]),
    "crlf-args": encode(b"RPUSH", b"l", *[b"a\r\nb"] * 200_000),
    "alt-long": encode(b"RPUSH", b"l", *[b"x" * (5000 if i % 2 else 3) for i in range(40_000)]),
    "alt-crlf": encode(b"RPUSH", b"l", *[b"a\r\nb" if i % 50 == 0 else b"v"
                                         for i in range(200_000)]),
}


def main() -> None:
    for name, request in CASES.items():
        best = float("inf")
        for _ in range(5):
            parser = RequestParser()
            started = time.perf_counter()
            got = []
            for i in range(0, len(request), 65536):
                got += parser.parse(request[i:i + 65536])
            best = min(best, time.perf_counter() - started)
        print(f"{name:10s} {best / len(got[0]) * 1e6:6.2f} us/arg")


if __name__ == "__main__":
    main()
