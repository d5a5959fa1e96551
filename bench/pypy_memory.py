#!/usr/bin/env python3
"""INFO's used_memory against RSS growth, per runtime (issue #18; docs/pypy.md, "Memory").

Four cases, each on a fresh server (RSS growth is over the server just started):

- load 300k keys of 32 B values (16 B keys), no maxmemory;
- load 30k keys of 4 kB values;
- churn: 5x 16 MB of 4 kB values through a 16 MB maxmemory, allkeys-lru;
- churn: 5x 8 MB of 32 B values (counted as 48 B a key: 875k SETs) through 8 MB.

Prints, per case: RSS growth, used_memory, their ratio, mem_not_counted_for_evict
(PyPy: the garbage its GC holds) and, under maxmemory, RSS growth over maxmemory.

    python bench/pypy_memory.py --python python --python /work/pypy-venv/bin/python
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory_per_key import REPO, free_port, rss, runtime, wait_ready  # noqa: E402

MB = 2**20
#: (name, keys written, value size, maxmemory or 0)
CASES: List[Tuple[str, int, int, int]] = [
    ("load 300k x 32 B", 300_000, 32, 0),
    ("load 30k x 4 kB", 30_000, 4096, 0),
    ("churn 5x 16 MB of 4 kB", 5 * 16 * MB // 4096, 4096, 16 * MB),
    ("churn 5x 8 MB of 32 B", 5 * 8 * MB // 48, 32, 8 * MB),
]


def fill(port: int, count: int, size: int, batch: int = 1000) -> None:
    """Pipelined SETs of ``key:<i>`` keys, every reply read and checked."""
    value = b"v" * size
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        for first in range(0, count, batch):
            n = min(count, first + batch) - first
            sock.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                                  % (len(key), key, size, value)
                                  for key in (b"key:%012d" % i for i in range(first, first + n))))
            replies = b""
            while replies.count(b"\r\n") < n:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed")
                replies += chunk
            if replies != b"+OK\r\n" * n:
                raise RuntimeError(replies[:200])


def info(port: int) -> Dict[str, str]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"*2\r\n$4\r\nINFO\r\n$3\r\nall\r\n")
        data = b""
        while b"# Keyspace" not in data or not data.endswith(b"\r\n"):
            data += sock.recv(1 << 16)
    return dict(line.split(":", 1) for line in data.decode().splitlines()
                if ":" in line and not line.startswith("#"))


def run_case(python: str, case: Tuple[str, int, int, int], tmp: str) -> Dict[str, float]:
    _, count, size, maxmemory = case
    port = free_port()
    argv = [python, "-m", "distcache", "server", "--port", str(port), "--save", "",
            "--appendonly", "no", "--dir", tmp]
    if maxmemory:
        argv += ["--maxmemory", str(maxmemory), "--maxmemory-policy", "allkeys-lru"]
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_ready(port, proc)
        before = rss(proc.pid)
        fill(port, count, size)
        fields = info(port)
        grown = rss(proc.pid) - before
    finally:
        proc.terminate()
        proc.wait(10)
    used = int(fields["used_memory"])
    return {"grown": grown, "used": used, "ratio": used / grown if grown > 0 else 0.0,
                        "garbage": int(fields.get("mem_not_counted_for_evict", 0)),
            "keys": int(fields["db0"].split(",")[0].split("=")[1]) if "db0" in fields else 0,
            "over_max": grown / maxmemory if maxmemory else 0.0}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", action="append", default=[],
                    help="interpreter to run distcache with (repeatable; default: this one)")
    ap.add_argument("--case", action="append", type=int, default=[],
                    help="only this case (0-3; repeatable)")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="pypymem-")
    print(f"{'runtime':<14}{'case':<26}{'keys':>9}{'RSS growth':>12}{'used_memory':>13}"
          f"{'used/RSS':>10}{'not evict':>11}{'RSS/max':>9}")
    for python in args.python or [sys.executable]:
        name = runtime(python)
        for i, case in enumerate(CASES):
            if args.case and i not in args.case:
                continue
            for _ in range(args.runs):
                r = run_case(python, case, tmp)
                print(f"{name:<14}{case[0]:<26}{r['keys']:>9}{r['grown'] / MB:>10.1f}MB"
                      f"{r['used'] / MB:>11.1f}MB{r['ratio']:>10.2f}{r['garbage'] / MB:>9.1f}MB"
                      + (f"{r['over_max']:>9.2f}" if r["over_max"] else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
