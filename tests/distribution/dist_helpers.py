"""Helpers for the distribution tests: polling with deadlines (no fixed sleeps),
the server kinds that replication tests run over."""
from __future__ import annotations

import asyncio
import importlib.util
import time
from typing import Callable

import pytest

from servers import REDIS_SERVER, distcache_server, redis_server


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
