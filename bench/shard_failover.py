#!/usr/bin/env python
"""Shard failover figures: misses, exceptions and time to replica reads after a SIGKILL.

    python bench/shard_failover.py [--kind redis|distcache] [--keys 3000] [--interval 0.4]
                                   [--sentinel [--down-after-ms 1000]]

Starts 3 shards (a primary + one ``--replicaof`` replica each, no
persistence), writes ``--keys`` keys with ``set(..., replicas=1)`` (WAIT),
SIGKILLs one primary and reads every key once, in random order, with
``CacheClient`` (health_interval ``--interval``). Prints the misses, the
exceptions, the time from the kill to the first read of a dead primary's key
answered by its replica, and to the primary being marked down.

With ``--sentinel`` three ``redis-sentinel`` processes watch the shards
(``down-after-milliseconds`` as given, failover-timeout 5 s), the client is
built from them, and a writer thread keeps writing the dead primary's keys
meanwhile: it also prints the writes' exceptions and the time from the kill
to the first write served by the promoted replica.
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
import threading
import time
from typing import List, Optional

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


def _sentinel(port: int, workdir: str, primaries: List[int], down_after_ms: int
              ) -> subprocess.Popen:
    os.makedirs(workdir, exist_ok=True)
    lines = [f"port {port}", "bind 127.0.0.1", f"dir {workdir}"]
    for i, primary in enumerate(primaries):
        lines += [f"sentinel monitor shard-{i} 127.0.0.1 {primary} 2",
                  f"sentinel down-after-milliseconds shard-{i} {down_after_ms}",
                  f"sentinel failover-timeout shard-{i} 5000"]
    conf = os.path.join(workdir, "sentinel.conf")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    log = open(os.path.join(workdir, "log"), "wb")
    return subprocess.Popen(["redis-sentinel", conf], cwd=workdir, stdout=log,
                            stderr=subprocess.STDOUT)


def _sentinels_ready(ports: List[int], shards: int, deadline: float) -> None:
    import redis
    while time.monotonic() < deadline:
        try:
            if all(redis.Redis(port=port).execute_command("SENTINEL", "REPLICAS", f"shard-{i}")
                   and len(redis.Redis(port=port).execute_command(
                       "SENTINEL", "SENTINELS", f"shard-{i}")) >= 2
                   for port in ports for i in range(shards)):
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError("sentinels did not discover the replicas and each other")


class Writer(threading.Thread):
    """Writes ``keys`` in a loop; notes the first write served by ``promoted``."""

    def __init__(self, client: CacheClient, keys: List[str], promoted: str,
                 killed: float) -> None:
        super().__init__(daemon=True)
        self.client, self.keys, self.promoted, self.killed = client, keys, promoted, killed
        self.errors = 0
        self.writes = 0
        self.first_promoted: Optional[float] = None

    def run(self) -> None:
        while self.first_promoted is None and time.monotonic() - self.killed < 60:
            key = self.keys[self.writes % len(self.keys)]
            try:
                self.client.set(key, key)
            except Exception:
                self.errors += 1
                continue
            self.writes += 1
            if self.client.server_for(key) == self.promoted:
                self.first_promoted = time.monotonic() - self.killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=("redis", "distcache"), default="redis")
    parser.add_argument("--keys", type=int, default=3000)
    parser.add_argument("--interval", type=float, default=0.4)
    parser.add_argument("--sentinel", action="store_true")
    parser.add_argument("--down-after-ms", type=int, default=1000)
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
        options = dict(health_interval=opts.interval, timeout=2.0, connect_timeout=1.0)
        if opts.sentinel:
            primaries = [int(p.split()[0].split(":")[1]) for p in pool]
            ports = [_free_port() for _ in range(3)]
            deadline = time.monotonic() + 60
            while not _linked_all(pool) and time.monotonic() < deadline:
                time.sleep(0.1)  # replicas linked first: the sentinels see them at once
            for i, port in enumerate(ports):
                procs.append(_sentinel(port, f"{top}/s{i}", primaries, opts.down_after_ms))
            _sentinels_ready(ports, 3, deadline)
            client = CacheClient(sentinels=[f"127.0.0.1:{p}" for p in ports],
                                 services=[f"shard-{i}" for i in range(3)],
                                 failover_timeout=30, **options)
        else:
            client = CacheClient(pool, **options)
        keys = [f"key:{i}" for i in range(opts.keys)]
        deadline = time.monotonic() + 60
        while client.set(keys[0], keys[0], replicas=1) != 1:  # replication links up
            if time.monotonic() > deadline:
                raise RuntimeError("replicas did not connect")
            time.sleep(0.1)
        for key in keys:
            client.set(key, key, replicas=1)
        victim = pool[0].split()[0]
        promoted = pool[0].split("replicas=")[1]
        victim_keys = [k for k in keys if client.server_for(k) == victim]
        killed = time.monotonic()
        procs[0].kill()
        procs[0].wait()
        writer = Writer(client, victim_keys, promoted, killed) if opts.sentinel else None
        if writer is not None:
            writer.start()
        misses = errors = 0
        first_replica_read = down = None
        for key in random.Random(1).sample(keys, len(keys)):
            try:
                value = client.get(key)
            except Exception:
                errors += 1
                continue
            misses += value != key
            if first_replica_read is None and client.shard_for(key).name in (victim, "shard-0") \
                    and value == key:
                first_replica_read = time.monotonic() - killed
            if down is None and client.health()[victim]["state"] == "down":
                down = time.monotonic() - killed
        total = time.monotonic() - killed
        if writer is not None:
            writer.join(70)
        client.close()
        print(f"{opts.kind}: {len(keys)} reads after SIGKILL of {victim}: misses {misses}, "
              f"exceptions {errors}; first replica read {first_replica_read * 1000:.0f} ms, "
              f"marked down {_ms(down)}, all reads {total:.2f} s "
              f"(health_interval {opts.interval} s)")
        if writer is not None:
            print(f"  Sentinel (down-after-milliseconds {opts.down_after_ms}): "
                  f"{writer.writes} writes, exceptions {writer.errors}; first write on the "
                  f"promoted replica {_ms(writer.first_promoted)} after the kill")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(top, ignore_errors=True)


def _ms(seconds: Optional[float]) -> str:
    return "never" if seconds is None else f"{seconds * 1000:.0f} ms"


def _linked_all(pool: List[str]) -> bool:
    import redis
    try:
        return all(redis.Redis(port=int(r.split(":")[1])).info("replication")
                   .get("master_link_status") == "up"
                   for r in (p.split("replicas=")[1] for p in pool))
    except (redis.RedisError, OSError):
        return False


if __name__ == "__main__":
    main()
