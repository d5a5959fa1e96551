"""Throughput of the RDB codec's pure-Python parts (a benchmark, not a test).

    python bench/rdb_codec.py [--mb 10]

CRC64 over a random payload, LZF compress/decompress of random and of
repetitive data, and DUMP/RESTORE-payload encode/decode of a large list.
"""
from __future__ import annotations

import argparse
import os
import time

from distcache.rdb import crc64, dump_payload, load_payload, lzf


def rate(label: str, size: int, fn) -> None:
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<34} {size / 1e6 / elapsed:8.2f} MB/s  ({elapsed:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=10)
    mb = parser.parse_args().mb
    n = int(mb * 1024 * 1024)
    rand = os.urandom(n)
    text = (b"user:%d some text that repeats, more or less; " * (n // 40 + 1))[:n]
    small = n // 10
    from distcache.rdb.crc64 import _slice8_crc
    rate(f"crc64 lanes ({mb:g} MB random)", n, lambda: crc64(rand))
    rate(f"crc64 slice-by-8 ({mb:g} MB random)", n, lambda: _slice8_crc(0, rand))
    packed = lzf.compress(text[:small], small)
    rate(f"lzf compress ({small} B text)", small,
         lambda: lzf.compress(text[:small], small))
    rate(f"lzf compress ({small} B random)", small,
         lambda: lzf.compress(rand[:small], small - 4))
    rate(f"lzf decompress ({small} B text)", small, lambda: lzf.decompress(packed, small))
    items = [b"item:%d" % i for i in range(small // 10)]
    payload = dump_payload("list", items)
    rate(f"dump list ({len(items)} items)", len(payload), lambda: dump_payload("list", items))
    rate(f"restore list ({len(items)} items)", len(payload), lambda: load_payload(payload))


if __name__ == "__main__":
    main()
