#!/usr/bin/env python
"""Shard failover figures: misses, exceptions and time to replica reads after a SIGKILL.

    python bench/shard_failover.py [--kind redis|distcache] [--keys 3000] [--interval 0.4]

Starts 3 shards (a primary + one ``--replicaof`` replica each, no
persistence), writes ``--keys`` keys with ``set(..., replicas=1)`` (WAIT),
SIGKILLs one primary and reads every key once, in random order, with
``CacheClient`` (health_interval ``--interval``). Prints the misses, the
exceptions, the time from the kill to the first read of a dead primary's key
answered by its replica, and to the primary being marked down.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distcache import CacheClient  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(kind: str, port: int, workdir: str, *flags: str) -> subprocess.Popen:
    os.makedirs(workdir, exist_ok=True)
    if kind == "redis":
        argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    else:
        argv = [sys.executable, "-m", "distcache", "server", "--port", str(port),
                "--appendonly", "no", "--save", ""]
    log = open(os.path.join(workdir, "log"), "wb")
    proc = subprocess.Popen(argv + ["--dir", workdir, *flags], cwd=workdir, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=("redis", "distcache"), default="redis")
    parser.add_argument("--keys", type=int, default=3000)
    parser.add_argument("--interval", type=float, default=0.4)
    opts = parser.parse_args()
    top = tempfile.mkdtemp(prefix="shard-failover-")
    procs: List[subprocess.Popen] = []
    try:
        pool = []
        for i in range(3):
            primary, replica = _free_port(), _free_port()
            procs.append(_start(opts.kind, primary, f"{top}/p{i}"))
            procs.append(_start(opts.kind, replica, f"{top}/r{i}",
                                "--replicaof", "127.0.0.1", str(primary)))
            pool.append(f"127.0.0.1:{primary} replicas=127.0.0.1:{replica}")
        client = CacheClient(pool, health_interval=opts.interval, timeout=2.0,
                             connect_timeout=1.0)
        keys = [f"key:{i}" for i in range(opts.keys)]
        deadline = time.monotonic() + 60
        while client.set(keys[0], keys[0], replicas=1) != 1:  # replication links up
            if time.monotonic() > deadline:
                raise RuntimeError("replicas did not connect")
            time.sleep(0.1)
        for key in keys:
            client.set(key, key, replicas=1)
        victim = pool[0].split()[0]
        killed = time.monotonic()
        procs[0].kill()
        procs[0].wait()
        misses = errors = 0
        first_replica_read = down = None
        for key in random.Random(1).sample(keys, len(keys)):
            try:
                value = client.get(key)
            except Exception:
                errors += 1
                continue
            misses += value != key
            if first_replica_read is None and client.server_for(key) == victim and value == key:
                first_replica_read = time.monotonic() - killed
            if down is None and client.health()[victim]["state"] == "down":
                down = time.monotonic() - killed
        total = time.monotonic() - killed
        client.close()
        print(f"{opts.kind}: {len(keys)} reads after SIGKILL of {victim}: misses {misses}, "
              f"exceptions {errors}; first replica read {first_replica_read * 1000:.0f} ms, "
              f"marked down {down * 1000:.0f} ms, all reads {total:.2f} s "
              f"(health_interval {opts.interval} s)")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
