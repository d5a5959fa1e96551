#!/usr/bin/env python3
"""SETBIT, BITCOUNT, PFADD, PFCOUNT, GEOADD and GEOSEARCH: distcache vs redis-server.

    python bench/families_bench.py [-P 16] [-n 100000] [--repeat 1] [--points 100000]

Both servers run side by side (bench/redis_benchmark.py's helpers: pinned cores,
``--event-loop uvloop --parser hiredis``); each command runs through
``redis-benchmark`` with the same arguments against one server then the other,
and the script prints ops/s and the distcache/Redis ratio. GEOSEARCH runs over
``--points`` random points in a 2 x 2 degree square, preloaded with GEOADD:
a 20 km radius with ``COUNT 10 ASC``, and a 2 km radius, both from the square's
centre. Wall-clock numbers: compare within one run, on a quiet host.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import sys
import subprocess
import tempfile
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import redis_benchmark as rb  # noqa: E402

#: name -> the command redis-benchmark repeats (__rand_int__ varies with -r).
COMMANDS: Dict[str, List[str]] = {
    "SETBIT": ["SETBIT", "bits:__rand_int__", "1000", "1"],  # (Redis refuses 0-padded offsets)
    "BITCOUNT": ["BITCOUNT", "bits"],
    "PFADD": ["PFADD", "hll", "element:__rand_int__"],
    "PFCOUNT": ["PFCOUNT", "hll"],
    "GEOADD": ["GEOADD", "geo-w", "13.__rand_int__", "38.__rand_int__", "p:__rand_int__"],
    "GEOSEARCH 20km COUNT 10": ["GEOSEARCH", "geo", "FROMLONLAT", "14", "38", "BYRADIUS",
                                "20", "km", "COUNT", "10", "ASC"],
    "GEOSEARCH 2km": ["GEOSEARCH", "geo", "FROMLONLAT", "14", "38", "BYRADIUS", "2", "km"],
    # A new centre each time: no plan or reply kept from an earlier search applies
    # (micro-degrees apart, so the same cells: bench/geosearch_spread.py spreads them).
    "GEOSEARCH 2km new centre": ["GEOSEARCH", "geo", "FROMLONLAT", "14.__rand_int__", "38",
                                 "BYRADIUS", "2", "km"],
}


def preload(port: int, points: int) -> None:
    """The same random points into both servers (one pipelined connection)."""
    rng = random.Random(1)
    args: List[bytes] = [b"GEOADD", b"geo"]
    for i in range(points):
        args += [b"%.6f" % (13 + 2 * rng.random()), b"%.6f" % (37 + 2 * rng.random()),
                 b"p%d" % i]
    payload = b"".join(b"*%d\r\n" % len(cmd) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a)
                                                     for a in cmd)
                       for cmd in (args, [b"SETBIT", b"bits", b"1000000", b"1"]))
    with socket.create_connection(("127.0.0.1", port), timeout=300) as s:
        s.sendall(payload)
        got = b""
        while got.count(b"\r\n") < 2:
            got += s.recv(65536)


def server_pair(tmp: str) -> List[rb.Server]:
    """distcache (fast config) and redis-server, on free ports under ``tmp``."""
    return [rb.distcache_server("fast", rb.free_port(), tempfile.mkdtemp(dir=tmp), [], 0,
                                sys.executable),
            rb.redis_server(rb.free_port(), tempfile.mkdtemp(dir=tmp), [], 0)]


def start_preloaded(servers: List[rb.Server], points: int) -> None:
    """Start ``servers`` and give each the same ``points`` random geo points."""
    for server in servers:
        server.start()
        preload(server.port, points)


def run(server: rb.Server, cmd: List[str], pipeline: int, requests: int) -> float:
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port), "-P", str(pipeline),
            "-c", "50", "-n", str(requests), "-r", "100000", "--csv", "-q"] + cmd
    done = subprocess.run(rb.pinned(1, argv), capture_output=True, text=True, timeout=1800)
    rows = rb.parse_csv(done.stdout)
    if done.returncode or not rows:
        raise RuntimeError(f"redis-benchmark failed on {server.name}: {done.stderr}")
    return rows[-1][1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-P", type=int, default=16)
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated names to run")
    args = parser.parse_args()
    if not shutil.which("redis-server") or not shutil.which("redis-benchmark"):
        print("needs redis-server and redis-benchmark")
        return 1
    tmp = tempfile.mkdtemp(prefix="families-")
    servers = server_pair(tmp)
    try:
        start_preloaded(servers, args.points)
        print(f"{'command':<26} {'distcache':>10} {'redis':>10} {'ratio':>6}   (-P {args.P})")
        only = [n.strip() for n in args.only.split(",") if n.strip()]
        for name, cmd in COMMANDS.items():
            if only and not any(name.startswith(o) for o in only):
                continue
            n = args.n if not name.startswith("GEOSEARCH 20") else max(1000, args.n // 20)
            ours, theirs = [], []
            for _ in range(args.repeat):
                ours.append(run(servers[0], cmd, args.P, n))
                theirs.append(run(servers[1], cmd, args.P, n))
            o, t = max(ours), max(theirs)
            print(f"{name:<26} {o:10,.0f} {t:10,.0f} {o / t:6.2f}", flush=True)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
