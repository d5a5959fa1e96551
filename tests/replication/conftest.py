"""Replication tests: a distcache primary and real redis-server replicas.

Each test gets its own primary (full syncs fork; state must not leak between
tests) and replicas started with ``--replicaof`` on it. Everything is polled with
deadlines; nothing sleeps to settle.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from servers import REDIS_SERVER, distcache_server, redis_server  # noqa: E402


@pytest.fixture
def primary(tmp_path):
    """A distcache primary whose diskless syncs start at once."""
    with distcache_server(tmp_path / "primary", "--repl-diskless-sync-delay", "0") as proc:
        yield proc


@pytest.fixture
def start_replica(tmp_path):
    """start_replica(primary_port, *flags) -> a running redis-server replica."""
    if not REDIS_SERVER:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    started = []

    def start(port: int, *flags: str):
        proc = redis_server(tmp_path / f"replica{len(started)}", "--replicaof", "127.0.0.1",
                            str(port), *flags)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()
