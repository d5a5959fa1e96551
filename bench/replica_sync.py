#!/usr/bin/env python3
"""A full sync from a redis-server primary: a redis-server replica and a distcache
replica in turn, and how the replica answers while it loads.

The primary is filled with ``DEBUG POPULATE`` (small string keys); each replica
process is started with ``--replicaof`` and polled with INFO every 10 ms until
its link is up with every key. Reported: the time from the replica's start to
that point, and the INFO round trip's median and maximum meanwhile (the
distcache replica decodes the payload in a thread and keeps serving).

    python bench/replica_sync.py --keys 200000
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import redis  # noqa: E402

from servers import distcache_server, redis_server  # noqa: E402


def measure(name: str, proc, keys: int) -> None:
    start = time.monotonic()
    with proc as replica:
        client = redis.Redis(port=replica.port, socket_timeout=120)
        latencies = []
        while True:
            t = time.perf_counter()
            try:
                info = client.info("replication")
            except redis.BusyLoadingError:  # redis-server answers LOADING meanwhile
                info = {}
            latencies.append(time.perf_counter() - t)
            if info.get("master_link_status") == "up" and client.dbsize() == keys:
                break
            time.sleep(0.01)
        took = time.monotonic() - start
    latencies.sort()
    print(f"{name:12s} {keys} keys in {took:6.2f} s; INFO during the sync: median "
          f"{latencies[len(latencies) // 2] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms "
          f"({len(latencies)} calls)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=200_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="replica-sync-"))
    with redis_server(tmp / "primary", "--repl-diskless-sync-delay", "0",
                      "--enable-debug-command", "yes") as primary:
        redis.Redis(port=primary.port).execute_command("DEBUG", "POPULATE", args.keys, "key", 10)
        follow = ("--replicaof", "127.0.0.1", str(primary.port))
        measure("redis-server", redis_server(tmp / "redis", *follow), args.keys)
        measure("distcache", distcache_server(tmp / "distcache", *follow), args.keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
