#!/usr/bin/env python3
"""Large sorted set: load N members with ZADD, then ZRANK and ZRANGE windows, vs redis-server.

Each server starts fresh on a free loopback port (pinned to ``--server-core``
with taskset when available); the client (redis-py + hiredis) runs on
``--bench-core``. Phases, timed from the client:

* load: N members in pipelined ZADDs of ``--batch`` members each
  (scores are random floats, so inserts land everywhere in the order);
* ZRANK of random members, one round trip each;
* ZRANGE of a ``--window``-member window at a random rank, one round trip each;
* ZRANGEBYSCORE of a window by score, with LIMIT;
* ZADD of one new member into the full set (single round trips);
* RSS growth of the server per member.

    python bench/zset_bench.py                    # 1M members
    python bench/zset_bench.py --members 200000 --no-redis
    python bench/zset_bench.py --structure        # the ZSet alone, in-process, 10k..1M
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

from memory_per_key import free_port, rss  # same folder: run as a script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(kind: str, core: Optional[int], workdir: str) -> "tuple[subprocess.Popen, int]":
    port = free_port()
    if kind == "redis":
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", workdir]
    else:
        argv = [sys.executable, "-m", "distcache", "server", "--port", str(port),
                "--save", "", "--appendonly", "no", "--dir", workdir]
    if core is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(core)] + argv
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    import redis
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis(port=port).ping()
            return proc, port
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{kind} did not start")
            time.sleep(0.05)


def server_pid(proc: subprocess.Popen) -> int:
    """The server's pid (taskset execs, so it is the child's own pid)."""
    return proc.pid


def timed_calls(fn, count: int) -> float:
    """Mean microseconds per call of ``fn()`` over ``count`` calls."""
    t0 = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - t0) / count * 1e6


def run(kind: str, args: argparse.Namespace) -> Dict[str, float]:
    import redis
    workdir = tempfile.mkdtemp(prefix=f"zbench-{kind}-")
    proc, port = start(kind, args.server_core, workdir)
    try:
        r = redis.Redis(port=port, socket_timeout=600)
        rng = random.Random(42)
        base = rss(server_pid(proc))
        names = [b"member:%09d" % i for i in range(args.members)]
        scores = [rng.random() * 1e6 for _ in range(args.members)]
        t0 = time.perf_counter()
        pipe = r.pipeline(transaction=False)
        for start_at in range(0, args.members, args.batch):
            chunk = {names[i]: scores[i]
                     for i in range(start_at, min(args.members, start_at + args.batch))}
            pipe.zadd("big", chunk)
            if len(pipe) >= 16:
                pipe.execute()
        pipe.execute()
        load = time.perf_counter() - t0
        assert r.zcard("big") == args.members
        grown = rss(server_pid(proc)) - base
        probes = [names[rng.randrange(args.members)] for _ in range(args.ops)]
        it = iter(probes * 2)
        zrank = timed_calls(lambda: r.zrank("big", next(it)), args.ops)
        starts = [rng.randrange(args.members - args.window) for _ in range(args.ops)]
        it2 = iter(starts * 2)

        def window() -> None:
            s = next(it2)
            assert len(r.zrange("big", s, s + args.window - 1)) == args.window

        zrange = timed_calls(window, args.ops)
        it3 = iter(starts * 2)

        def by_score() -> None:
            low = next(it3) / args.members * 1e6
            r.zrangebyscore("big", low, "+inf", start=0, num=args.window)

        zbyscore = timed_calls(by_score, args.ops)
        counter = iter(range(10 ** 9))
        zadd_one = timed_calls(lambda: r.zadd("big", {b"new:%d" % next(counter):
                                                       rng.random() * 1e6}), args.ops)
        ping = timed_calls(r.ping, args.ops)
        return {"load_s": load, "load_rate": args.members / load,
                "zrank_us": zrank, "zrange_us": zrange, "zrangebyscore_us": zbyscore,
                "zadd1_us": zadd_one, "ping_us": ping, "bytes_per_member": grown / args.members}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def structure_scaling(sizes: List[int], ops: int) -> None:
    """In-process cost of the ZSet structure itself at several sizes (no network)."""
    sys.path.insert(0, REPO)
    from distcache.server.types.zset import ZSet
    rng = random.Random(7)
    print("| members | add (µs) | rank (µs) | 100-window by rank (µs) | "
          "count by score (µs) | re-score (µs) | remove (µs) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        names = [b"member:%09d" % i for i in range(size)]
        z = ZSet()
        t0 = time.perf_counter()
        for name in names:
            z.add(name, rng.random() * 1e6)
        add = (time.perf_counter() - t0) / size * 1e6
        probes = [names[rng.randrange(size)] for _ in range(ops)]

        def per_op(fn, items) -> float:
            t = time.perf_counter()
            for item in items:
                fn(item)
            return (time.perf_counter() - t) / len(items) * 1e6

        rank = per_op(z.rank, probes)
        starts = [rng.randrange(size - 100) for _ in range(ops)]
        window = per_op(lambda s: list(z.iter_range(s, s + 100)), starts)
        count = per_op(lambda v: z.count_below(v, False), [rng.random() * 1e6
                                                              for _ in range(ops)])
        rescore = per_op(lambda m: z.add(m, rng.random() * 1e6), probes)
        remove = per_op(z.remove, list(dict.fromkeys(probes)))
        print(f"| {size:,} | {add:.1f} | {rank:.1f} | {window:.1f} | {count:.1f} | "
              f"{rescore:.1f} | {remove:.1f} |")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="members per ZADD")
    parser.add_argument("--ops", type=int, default=2000, help="calls per latency phase")
    parser.add_argument("--window", type=int, default=100, help="ZRANGE window size")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--bench-core", type=int, default=1)
    parser.add_argument("--structure", action="store_true",
                        help="only time the ZSet structure in-process at 10k/100k/1M members")
    args = parser.parse_args(argv)
    if args.structure:
        structure_scaling([10_000, 100_000, args.members], args.ops)
        return 0
    if args.bench_core is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {args.bench_core})
        except OSError:
            pass
    kinds = ["distcache"] + ([] if args.no_redis or not shutil.which("redis-server")
                             else ["redis"])
    results = {kind: run(kind, args) for kind in kinds}
    rows = [("load (s)", "load_s", "%.2f"), ("load (members/s)", "load_rate", "%.0f"),
            ("ZRANK (µs/call)", "zrank_us", "%.0f"),
            (f"ZRANGE {args.window}-window (µs/call)", "zrange_us", "%.0f"),
            (f"ZRANGEBYSCORE LIMIT {args.window} (µs/call)", "zrangebyscore_us", "%.0f"),
            ("ZADD 1 member into full set (µs/call)", "zadd1_us", "%.0f"),
            ("PING (µs/call, round-trip floor)", "ping_us", "%.0f"),
            ("RSS growth (bytes/member)", "bytes_per_member", "%.0f")]
    print(f"| {args.members:,} members | " + " | ".join(kinds) +
          (" | ratio |" if len(kinds) == 2 else " |"))
    print("|---" * (len(kinds) + 1 + (len(kinds) == 2)) + "|")
    for label, key, fmt in rows:
        cells = [fmt % results[k][key] for k in kinds]
        ratio = ""
        if len(kinds) == 2 and results["redis"][key]:
            ratio = " | %.2f" % (results["distcache"][key] / results["redis"][key])
        print(f"| {label} | " + " | ".join(cells) + ratio + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
