#!/usr/bin/env python3
"""Short requests that make a server work long: distcache vs redis-server.

    python bench/amplification_bench.py [--names 1000]

Each request below is a few kB on the wire and names one key, or a few keys, many
times (a hostile client's shape), or is a long request of short arguments. Both servers run side by side
(bench/redis_benchmark.py's helpers) with the same data; the script prints the
seconds each request held the server, and the ratio to Redis. A request here is a
stall of every other client on that server: the figures are what a denial of
service costs. Wall-clock numbers: compare within one run, on a quiet host.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import List, Sequence

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import redis_benchmark as rb  # noqa: E402


def load(r: redis.Redis) -> None:
    """The same data in both servers: a 20,000-member zset, sparse and dense HLLs,
    a 100,000-number list, a 1 MB string."""
    r.flushall()
    pipe = r.pipeline(transaction=False)
    for i in range(0, 20_000, 1000):
        pipe.zadd("z", {f"m{j}": j for j in range(i, i + 1000)})
    pipe.pfadd("sparse", *range(100))
    pipe.pfadd("dense", *range(5000))
    for i in range(40):
        pipe.pfadd(f"d{i}", *[f"{i}:{j}" for j in range(3000)])
    for i in range(0, 100_000, 10_000):
        pipe.rpush("l", *range(i, i + 10_000))
    pipe.set("b", b"U" * (1 << 20))
    pipe.execute()


def requests(names: int) -> List[Sequence[str]]:
    distinct = [f"d{i}" for i in range(40)]
    return [
        ("PFCOUNT", *(["sparse", "dense"] * (names // 2))),
        ("PFMERGE", "m1", *(["sparse"] * names)),
        ("PFMERGE", "m2", *(["dense"] * names)),
        ("PFMERGE", "m3", *(distinct * (names // 40))),
        ("ZUNIONSTORE", "zu", str(names), *(["z"] * names)),
        ("ZINTERSTORE", "zi", str(names), *(["z"] * names)),
        # Requests of many arguments (the parser), SORT's LIMIT and GET patterns.
        ("EXISTS", "l", *(["l"] * (names * 200))),
        ("BITFIELD", "b", *[w for i in range(names * 20) for w in ("INCRBY", "u63", f"#{i}", "1")]),
        ("SORT", "l", "LIMIT", str(1 << 40), "1"),
        ("SORT", "l", "LIMIT", "0", "10", *(["GET", "#"] * names)),
        ("MEMORY", "USAGE", "l", "SAMPLES", "0"),
    ]


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1000, help="key names per request")
    args = parser.parse_args(argv or None)
    workdir = tempfile.mkdtemp(prefix="amplification-")
    servers = [rb.distcache_server("fast", rb.free_port(), _dir(workdir, "distcache"), [],
                                   None, sys.executable)]
    if shutil.which("redis-server"):
        servers.append(rb.redis_server(rb.free_port(), _dir(workdir, "redis"), [], None))
    try:
        times = {}
        for server in servers:
            server.start()
            client = redis.Redis(port=server.port, socket_timeout=600)
            load(client)
            for index, request in enumerate(requests(args.names)):
                started = time.perf_counter()
                client.execute_command(*request)
                times[server.name, index] = time.perf_counter() - started
        print(f"| request ({args.names} names) | distcache s | redis-server s | ratio |")
        print("|---|---:|---:|---:|")
        for index, request in enumerate(requests(args.names)):
            ours = times[servers[0].name, index]
            theirs = times.get(("redis", index))
            label = f"{request[0]} {request[1]} {request[2]}... ({len(request)} args)"
            cells = (f"{theirs:.4f}", f"{ours / theirs:.2f}") if theirs else ("-", "-")
            print(f"| {label} | {ours:.4f} | {cells[0]} | {cells[1]} |")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _dir(parent: str, name: str) -> str:
    path = os.path.join(parent, name)
    os.makedirs(path)
    return path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
