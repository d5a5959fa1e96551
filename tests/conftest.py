"""Shared fixtures: real server processes on free ports in temp directories."""
from __future__ import annotations

import pytest

from servers import REDIS_SERVER, distcache_server, redis_server


@pytest.fixture
def server(tmp_path):
    """A fresh distcache server process (no persistence)."""
    with distcache_server(tmp_path) as proc:
        yield proc


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One distcache server per test module, for tests that FLUSHALL first."""
    with distcache_server(tmp_path_factory.mktemp("shared")) as proc:
        yield proc


@pytest.fixture(scope="module")
def reference_redis(tmp_path_factory):
    """A real redis-server, or skip when it is not installed."""
    if not REDIS_SERVER:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with redis_server(tmp_path_factory.mktemp("redis")) as proc:
        yield proc


@pytest.fixture
def r(shared_server):
    """A redis-py client on the shared server, with every database flushed."""
    import redis
    client = redis.Redis(port=shared_server.port, socket_timeout=10)
    client.flushall()
    yield client
    client.close()
