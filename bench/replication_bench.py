"""Replication: a primary's write throughput with one replica, and full-sync time.

    python bench/replication_bench.py [--requests 200000] [--keys 1000000] [--rounds 3]

1. SET -P 16 (redis-benchmark, 50 clients) on a distcache primary with no replica,
   then with one redis-server replica attached; the same for a redis-server primary.
   Prints requests/s and the ratio with/without (target for distcache: >= 0.8).
2. A full sync of ``--keys`` small keys (``key:N`` -> ``value:N``): the time from a
   redis-server replica's start to its ``master_link_status:up`` with every key, from
   a distcache primary (diskless and disk-based) and from a redis-server primary.
Not a test: numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from servers import distcache_server, redis_server, wait_until  # noqa: E402


def set_rate(port: int, requests: int) -> float:
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-P", "16",
                          "-n", str(requests), "-r", "100000", "-q"],
                         capture_output=True, text=True, check=True).stdout
    match = re.search(r"SET: ([\d.]+) requests per second", out.replace("\r", "\n"))
    if match is None:
        raise RuntimeError(f"no rate in redis-benchmark output: {out[-500:]}")
    return float(match.group(1))


def synced(primary: redis.Redis, replica: redis.Redis) -> bool:
    info = replica.info("replication")
    return info.get("master_link_status") == "up" and \
        info["master_repl_offset"] == primary.info("replication")["master_repl_offset"]


def throughput(make_primary, work: Path, requests: int, rounds: int) -> "tuple[float, float]":
    alone, with_replica = [], []
    with make_primary(work / "p") as prim:
        p = redis.Redis(port=prim.port)
        for _ in range(rounds):
            alone.append(set_rate(prim.port, requests))
        with redis_server(work / "r", "--replicaof", "127.0.0.1", str(prim.port)) as rep:
            r = redis.Redis(port=rep.port)
            wait_until(lambda: synced(p, r), 120, 0.1, "replica synced")
            for _ in range(rounds):
                with_replica.append(set_rate(prim.port, requests))
            wait_until(lambda: synced(p, r), 120, 0.1, "replica caught up")
    return max(alone), max(with_replica)


def fill(port: int, keys: int) -> None:
    client = redis.Redis(port=port, socket_timeout=120)
    for start in range(0, keys, 10000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(keys, start + 10000)):
            pipe.set(f"key:{i}", f"value:{i}")
        pipe.execute()


def sync_time(make_primary, work: Path, keys: int) -> float:
    with make_primary(work / "p") as prim:
        p = redis.Redis(port=prim.port, socket_timeout=120)
        fill(prim.port, keys)
        started = time.perf_counter()
        with redis_server(work / "r", "--replicaof", "127.0.0.1", str(prim.port)) as rep:
            r = redis.Redis(port=rep.port, socket_timeout=120)
            wait_until(lambda: synced(p, r) and r.dbsize() == keys, 600, 0.05, "full sync")
            return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip", default="", help="throughput or sync")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def ours(*flags: str):
            return lambda d: distcache_server(d, "--repl-diskless-sync-delay", "0", *flags)

        def theirs(d: Path):
            return redis_server(d, "--repl-diskless-sync-delay", "0")

        if "throughput" not in args.skip:
            for name, make in (("distcache", ours()), ("redis-server", theirs)):
                alone, replicated = throughput(make, work / name, args.requests, args.rounds)
                print(f"SET -P 16 {name}: {alone:,.0f}/s alone, {replicated:,.0f}/s with a "
                      f"replica ({replicated / alone:.2f}x)", flush=True)
        if "sync" not in args.skip:
            times = {}
            for name, make in (("distcache diskless", ours()),
                               ("distcache disk", ours("--repl-diskless-sync", "no")),
                               ("redis-server", theirs)):
                times[name] = sync_time(make, work / name.replace(" ", "-"), args.keys)
                print(f"full sync of {args.keys:,} keys, {name}: {times[name]:.2f}s", flush=True)
            for name in ("distcache diskless", "distcache disk"):
                print(f"{name} / redis-server: {times[name] / times['redis-server']:.1f}x")


if __name__ == "__main__":
    main()
