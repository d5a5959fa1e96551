"""Helpers for the distribution tests: polling with deadlines (no fixed sleeps),
the server kinds that replication tests run over."""
from __future__ import annotations

import asyncio
import importlib.util
import time
from typing import Callable

import pytest

from servers import (REDIS_SENTINEL, REDIS_SERVER, SentinelProcess, ServerProcess,
                     distcache_server, free_port, redis_server)

needs_sentinel = pytest.mark.skipif(not REDIS_SENTINEL,
                                    reason="needs redis-sentinel (apt-get install redis-sentinel)")


def wait_until(predicate: Callable[[], object], timeout: float = 10.0,
               step: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


async def async_wait_until(predicate: Callable[[], object], timeout: float = 10.0,
                           step: float = 0.01) -> bool:
    """:func:`wait_until` that lets the event loop run meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


def distcache_replicates() -> bool:
    """True once distcache servers speak replication (REPLICAOF, WAIT)."""
    return importlib.util.find_spec("distcache.server.commands.replica") is not None


def server_kinds():
    """The server kinds to run primary/replica pairs of."""
    return [pytest.param("redis", marks=pytest.mark.skipif(
                not REDIS_SERVER, reason="redis-server is not installed")),
            pytest.param("distcache", marks=pytest.mark.skipif(
                not distcache_replicates(), reason="distcache has no replication yet"))]


def start_server(kind, workdir, *flags):
    """A started redis-server or distcache server process."""
    if kind == "redis":
        return redis_server(workdir, *flags).start()
    return distcache_server(workdir, *flags).start(timeout=60)


def start_sentinel(workdir, monitored, down_after_ms: int = 1000,
                   failover_timeout_ms: int = 10000) -> ServerProcess:
    """A redis-sentinel watching ``monitored``: [(service, primary process)]."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    lines = [f"port {port}", "bind 127.0.0.1", f"dir {workdir}"]
    for service, primary in monitored:
        lines += [f"sentinel monitor {service} 127.0.0.1 {primary.port} 2",
                  f"sentinel down-after-milliseconds {service} {down_after_ms}",
                  f"sentinel failover-timeout {service} {failover_timeout_ms}"]
    conf = workdir / "sentinel.conf"
    conf.write_text("\n".join(lines) + "\n")  # sentinel rewrites it: a file of its own
    return SentinelProcess(conf, port).start()


def replica_linked(port: int) -> bool:
    import redis
    try:
        info = redis.Redis(port=port, socket_timeout=5).info("replication")
    except (redis.RedisError, OSError):
        return False
    return info.get("master_link_status") == "up"


def start_watched(kind, tmp_path, services, procs, **sentinel_options):
    """A primary + replica per service and 3 sentinels that know them all and
    each other; every process is appended to ``procs`` (the caller stops them).
    Returns ([(service, primary, replica)], [sentinel])."""
    import redis
    shards = []
    for i, service in enumerate(services):
        primary = start_server(kind, tmp_path / f"p{i}")
        procs.append(primary)
        replica = start_server(kind, tmp_path / f"r{i}", "--replicaof", "127.0.0.1",
                               str(primary.port))
        procs.append(replica)
        shards.append((service, primary, replica))
    monitored = [(s, p) for s, p, _ in shards]
    sentinels = []
    for i in range(3):
        sentinels.append(start_sentinel(tmp_path / f"s{i}", monitored, **sentinel_options))
        procs.append(sentinels[-1])

    def ready():
        if not all(replica_linked(r.port) for _, _, r in shards):
            return False
        for sentinel in sentinels:
            conn = redis.Redis(port=sentinel.port, socket_timeout=5)
            for service in services:
                if not conn.execute_command("SENTINEL", "REPLICAS", service) or \
                        len(conn.execute_command("SENTINEL", "SENTINELS", service)) < 2:
                    return False
        return True
    assert wait_until(ready, timeout=30, step=0.1)
    return shards, sentinels
