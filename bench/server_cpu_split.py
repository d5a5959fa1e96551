#!/usr/bin/env python3
"""Server CPU per request, user and system apart, distcache against redis-server.

Both servers run side by side (pinned as in ``redis_benchmark.py``); each test
first warms distcache up (PyPy's JIT) with ``--warmup`` requests, then the two
are driven in turn by ``redis-benchmark -P N`` for ``--repeat`` rounds. Each
round reads the server's utime and stime from /proc/PID/stat before and after a
fixed number of requests: CPU per request does not depend on how busy the host
is the way ops/s does, and the split says which half is the server's own code
(user) and which the kernel's socket work that both servers pay (system).

    python bench/server_cpu_split.py --python /work/pypy-venv/bin/python -t get,incr
    python bench/server_cpu_split.py -t set,get,incr -P 1 -n 200000 --repeat 5
    git archive HEAD~1 distcache | tar -x -C /tmp/base   # then, interleaved with it:
    python bench/server_cpu_split.py -t get,incr --baseline /tmp/base
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redis_benchmark import (CLK_TCK, Server, distcache_server, free_port,  # noqa: E402
                             pinned, redis_server)


def user_sys(pid: int) -> Tuple[float, float]:
    """The process's user and system CPU seconds (children included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + cutime) / CLK_TCK, (stime + cstime) / CLK_TCK


def drive(server: Server, test: str, pipeline: int, clients: int, requests: int,
          core: int) -> Tuple[float, float]:
    """User and system µs of server CPU per request over one redis-benchmark run."""
    assert server.proc is not None
    argv = pinned(core, ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port),
                         "-t", test, "-P", str(pipeline), "-c", str(clients),
                         "-n", str(requests), "-q"])
    u0, s0 = user_sys(server.proc.pid)
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, timeout=1800)
    u1, s1 = user_sys(server.proc.pid)
    return (u1 - u0) * 1e6 / requests, (s1 - s0) * 1e6 / requests


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-t", "--tests", default="set,get,incr")
    p.add_argument("-P", "--pipeline", type=int, default=1)
    p.add_argument("-c", "--clients", type=int, default=50)
    p.add_argument("-n", "--requests", type=int, default=200_000)
    p.add_argument("--warmup", type=int, default=300_000,
                   help="requests run against distcache before measuring each test")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--python", default="/work/pypy-venv/bin/python",
                   help="interpreter for distcache")
    p.add_argument("--distcache-arg", action="append", default=[], metavar="ARG")
    p.add_argument("--baseline", metavar="DIR",
                   help="also measure the distcache package in DIR (another tree)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("redis", "distcache", "baseline"):
            os.mkdir(os.path.join(tmp, name))
        redis = redis_server(free_port(), os.path.join(tmp, "redis"), [], 0)
        dc = distcache_server("auto", free_port(), os.path.join(tmp, "distcache"),
                              args.distcache_arg, 0, args.python)
        named = [("distcache", dc)]
        if args.baseline:
            base = distcache_server("auto", free_port(), os.path.join(tmp, "baseline"),
                                    args.distcache_arg, None, args.python)
            # The tree's PYTHONPATH, ahead of the one Server.start puts first.
            base.argv = pinned(0, ["env", "PYTHONPATH=" + os.path.abspath(args.baseline)]
                               + base.argv)
            base.name = "baseline"
            named.append(("baseline", base))
        named.append(("redis", redis))
        servers = [server for _, server in named]
        try:
            for server in servers:
                server.start()
            print(f"# distcache under {args.python}, -c {args.clients} -P {args.pipeline}, "
                  f"{args.requests} requests x {args.repeat} (after {args.warmup} warm-up); "
                  "µs of server CPU per request: user + system = total")
            for test in args.tests.split(","):
                for name, server in named[:-1]:
                    drive(server, test, args.pipeline, args.clients, args.warmup, 1)
                samples: Dict[str, List[Tuple[float, float]]] = {name: [] for name, _ in named}
                for _ in range(args.repeat):
                    for name, server in named:
                        samples[name].append(drive(server, test, args.pipeline,
                                                   args.clients, args.requests, 1))
                for name, rows in samples.items():
                    user = statistics.median(u for u, _ in rows)
                    system = statistics.median(s for _, s in rows)
                    total = statistics.median(u + s for u, s in rows)
                    print(f"{test:5s} {name:9s} {user:6.2f} + {system:6.2f} = "
                          f"{total:6.2f}  (totals {min(u + s for u, s in rows):.2f}"
                          f"-{max(u + s for u, s in rows):.2f})")
                for name, _ in named[:-1]:
                    ratios = [r[0] + r[1] and (q[0] + q[1]) / (r[0] + r[1])
                              for q, r in zip(samples["redis"], samples[name])]
                    print(f"{test:5s} CPU ratio Redis/{name} (paired) median "
                          f"{statistics.median(ratios):.2f} "
                          f"({min(ratios):.2f}-{max(ratios):.2f})")
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
