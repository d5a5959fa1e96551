#!/usr/bin/env python
"""Rebalance figures: keys moved per second while a client keeps its load, and
the client's throughput during the transition against a steady pool.

    python bench/rebalance_bench.py [--kind distcache|redis] [--keys 50000]
                                    [--seconds 5] [--rate 0] [--batch 100]

Starts 4 servers (no persistence), fills ``--keys`` keys (100-byte values)
into the first 3, then measures, with the load in a child process (90% get,
10% set over random keys, one connection, no pipelining):

1. steady: ``CacheClient(OLD)`` for ``--seconds``;
2. transition: ``CacheClient(NEW, previous=OLD)`` while ``rebalance(OLD, NEW)``
   runs (``--rate`` keys/s, 0 = unlimited); the rebalance's keys/s and the
   client's ops/s and misses during it;
3. after: ``CacheClient(NEW, previous=OLD)`` once every key has moved, and
   ``CacheClient(NEW)``, each for ``--seconds``.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from distcache import CacheClient  # noqa: E402
from distcache.client.rebalance import rebalance  # noqa: E402
from servers import distcache_server, redis_server  # noqa: E402


def _load(pool: List[str], previous: Optional[List[str]], keys: int, seconds: Optional[float],
          stop: Any, ready: Any, out: Any) -> None:
    """The client's loop in a child process: ops, misses, seconds (counted from
    when ``ready`` is set, after a first warm-up round)."""
    options: Dict[str, Any] = dict(health_interval=None, timeout=10.0)
    if previous is not None:
        options["previous"] = previous
    client = CacheClient(pool, **options)
    rng = random.Random(1)
    value = "v" * 100
    for _ in range(50):
        client.get(f"key:{rng.randrange(keys)}")
    ready.set()
    ops = misses = 0
    started = time.perf_counter()
    deadline = started + seconds if seconds else None
    while not stop.is_set() and (deadline is None or time.perf_counter() < deadline):
        for _ in range(50):
            key = f"key:{rng.randrange(keys)}"
            if rng.random() < 0.1:
                client.set(key, value)
            elif client.get(key) is None:
                misses += 1
        ops += 50
    out.put((ops, misses, time.perf_counter() - started))
    client.close()


def _run_load(pool: List[str], previous: Optional[List[str]], keys: int,
              seconds: Optional[float] = None, during: Any = None) -> Dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_load, args=(pool, previous, keys, seconds, stop, ready, out))
    proc.start()
    result: Dict[str, float] = {}
    if during is not None:
        ready.wait(120)  # the child imported, connected and warmed up
        result.update(during())
        stop.set()
    ops, misses, elapsed = out.get(timeout=600)
    proc.join(60)
    result.update(ops_s=ops / elapsed, misses=misses)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=("distcache", "redis"), default="distcache")
    parser.add_argument("--keys", type=int, default=50000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="rebalance-bench-")
    make = redis_server if args.kind == "redis" else distcache_server
    servers = []
    try:
        from pathlib import Path
        for i in range(4):
            servers.append(make(Path(workdir) / f"s{i}").start(timeout=60))
        addresses = [s.address for s in servers]
        old, new = addresses[:3], addresses
        with CacheClient(old, health_interval=None) as client:
            for start in range(0, args.keys, 5000):
                client.set_many({f"key:{i}": "v" * 100
                                 for i in range(start, min(args.keys, start + 5000))})
        steady = _run_load(old, None, args.keys, args.seconds)
        print(f"steady pool ({args.kind}, {args.keys} keys): {steady['ops_s']:,.0f} ops/s")

        def move() -> Dict[str, float]:
            t0 = time.perf_counter()
            report = rebalance(old, new, rate=args.rate or None, batch=args.batch)
            took = time.perf_counter() - t0
            return dict(moved=report.moved, took=took, keys_s=report.moved / took)

        during = _run_load(new, old, args.keys, during=move)
        print(f"rebalance under load: {during['moved']:,.0f} keys moved in "
              f"{during['took']:.1f} s = {during['keys_s']:,.0f} keys/s "
              f"(rate limit: {args.rate or 'none'}, batch {args.batch})")
        print(f"client during the transition: {during['ops_s']:,.0f} ops/s "
              f"({during['ops_s'] / steady['ops_s']:.2f}x steady), "
              f"misses {during['misses']:.0f}")
        after = _run_load(new, old, args.keys, args.seconds)
        plain = _run_load(new, None, args.keys, args.seconds)
        print(f"after the move, previous= still given: {after['ops_s']:,.0f} ops/s "
              f"({after['ops_s'] / steady['ops_s']:.2f}x); new pool alone: "
              f"{plain['ops_s']:,.0f} ops/s ({plain['ops_s'] / steady['ops_s']:.2f}x)")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
