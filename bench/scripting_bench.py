#!/usr/bin/env python3
"""EVALSHA of a one-command script, distcache against redis-server, side by side.

Both servers run in the same run (distcache pinned to core 0, redis-server
too, ``redis-benchmark`` to core 1, as bench/redis_benchmark.py does); the
script ``return redis.call('GET', KEYS[1])`` is loaded on both (same SHA1)
and ``redis-benchmark ... EVALSHA <sha> 1 key`` drives each in turn, for
every pipeline depth and repeat. Prints ops/s, the distcache/Redis ratio
(median of paired repeats) against the issue's targets (0.5x at -P 1, 0.3x
at -P 16) and each server's CPU us per call::

    python bench/scripting_bench.py                      # -P 1,16, 3 repeats, config fast
    python bench/scripting_bench.py -P 16 --repeat 5 --config stdlib
    python bench/scripting_bench.py --py-spy /tmp/evalsha.txt   # also profile distcache

``--py-spy FILE`` records distcache with py-spy (``--format raw``) during the
-P 16 runs and writes the 25 hottest functions to FILE (needs py-spy).
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from redis_benchmark import (CONFIGS, Server, command, distcache_server,  # noqa: E402
                             free_port, parse_csv, pinned, redis_server)

SCRIPT = "return redis.call('GET', KEYS[1])"
TARGETS = {1: 0.5, 16: 0.3}


def prepare(server: Server) -> str:
    """Load the script and set its key; the script's SHA1."""
    command(server.port, "SET", "key", "value")
    reply = command(server.port, "SCRIPT", "LOAD", SCRIPT)
    return reply.split(b"\r\n")[1].decode()


def run(server: Server, sha: str, pipeline: int, clients: int, requests: int,
        core: Optional[int]) -> Tuple[float, float]:
    """One redis-benchmark run: (ops/s, server CPU us per call)."""
    argv = pinned(core, ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port),
                         "-P", str(pipeline), "-c", str(clients), "-n", str(requests),
                         "--csv", "-q", "EVALSHA", sha, "1", "key"])
    cpu0 = server.cpu()
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=1800)
    cpu1 = server.cpu()
    rows = parse_csv(done.stdout)
    if done.returncode != 0 or not rows or "Error" in done.stdout + done.stderr:
        raise RuntimeError(f"redis-benchmark failed against {server.name}:\n{done.stdout}\n"
                           f"{done.stderr}\n{server.tail()}")
    return rows[-1][1], (cpu1 - cpu0) * 1e6 / requests


def profile(pid: int, raw_path: str) -> subprocess.Popen:
    return subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--format", "raw",
                             "--rate", "200", "--output", raw_path, "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize(raw_path: str, out_path: str, top: int = 25) -> None:
    """Self and total time per function from py-spy's raw (collapsed) stacks."""
    self_time: Dict[str, int] = collections.Counter()
    total: Dict[str, int] = collections.Counter()
    samples = 0
    with open(raw_path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = [fr.split(" (")[0] + " " + fr.rsplit("/", 1)[-1].split(":")[0].rstrip(")")
                      for fr in stack.split(";")]
            n = int(count)
            samples += n
            self_time[frames[-1]] += n
            for fr in set(frames):
                total[fr] += n
    with open(out_path, "w") as out:
        out.write(f"{samples} samples\n\nself%  total%  function\n")
        for name, n in sorted(self_time.items(), key=lambda kv: -kv[1])[:top]:
            out.write(f"{100 * n / samples:5.1f}  {100 * total[name] / samples:6.1f}  {name}\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-P", default="1,16", help="pipeline depths (comma-separated)")
    p.add_argument("-c", "--clients", type=int, default=50)
    p.add_argument("-n", "--requests", type=int, default=0, help="per run (default: by -P)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--config", choices=sorted(CONFIGS), default="fast")
    p.add_argument("--py-spy", dest="py_spy", default="", help="profile output file")
    args = p.parse_args(argv)
    if shutil.which("redis-benchmark") is None or shutil.which("redis-server") is None:
        print("redis-benchmark and redis-server are needed", file=sys.stderr)
        return 2
    pipelines = [int(x) for x in args.P.split(",")]
    server_core, bench_core = (0, 1) if (os.cpu_count() or 1) > 1 else (None, None)
    work = tempfile.mkdtemp(prefix="scripting-bench-")
    servers = []
    for name in ("distcache", "redis"):
        d = os.path.join(work, name)
        os.makedirs(d)
        if name == "redis":
            servers.append(redis_server(free_port(), d, [], server_core))
        else:
            servers.append(distcache_server(args.config, free_port(), d, [], server_core,
                                            sys.executable))
    spy = None
    try:
        for s in servers:
            s.start()
        shas = {prepare(s) for s in servers}
        assert len(shas) == 1, shas
        sha = shas.pop()
        results: Dict[Tuple[str, int], List[Tuple[float, float]]] = collections.defaultdict(list)
        for pipeline in pipelines:
            requests = args.requests or (50_000 if pipeline == 1 else 400_000)
            if args.py_spy and pipeline == max(pipelines) and spy is None:
                spy = profile(servers[0].proc.pid, args.py_spy + ".raw")
            for _ in range(args.repeat):
                for s in servers:
                    results[(s.name, pipeline)].append(
                        run(s, sha, pipeline, args.clients, requests, bench_core))
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            spy.wait(60)
            time.sleep(0.5)
            summarize(args.py_spy + ".raw", args.py_spy)
        ours = servers[0].name
        print(f"EVALSHA of {SCRIPT!r}, -c {args.clients}, {args.repeat} repeats, "
              f"distcache config {args.config}")
        print("| -P | distcache ops/s | redis ops/s | ratio (min-max) | target | "
              "CPU us/call distcache | redis |")
        print("|---|---|---|---|---|---|---|")
        for pipeline in pipelines:
            mine, theirs = results[(ours, pipeline)], results[("redis", pipeline)]
            ratios = [a[0] / b[0] for a, b in zip(mine, theirs)]
            print(f"| {pipeline} | {statistics.median(r for r, _ in mine):,.0f} | "
                  f"{statistics.median(r for r, _ in theirs):,.0f} | "
                  f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | "
                  f"{TARGETS.get(pipeline, 0):.1f} | "
                  f"{statistics.median(c for _, c in mine):.1f} | "
                  f"{statistics.median(c for _, c in theirs):.1f} |")
        if args.py_spy:
            print(f"profile: {args.py_spy}")
        return 0
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
