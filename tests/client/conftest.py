"""Client fixtures: every API case runs against distcache and redis-server,
with the sync client and with the asyncio client (through a blocking adapter
that runs its coroutines on a private event loop)."""
from __future__ import annotations

from typing import Any

import pytest

from client_helpers import close_client, make_client
from servers import REDIS_SERVER, distcache_server, redis_server


# Session-scoped: one server of each kind per xdist worker (tests flush first).
@pytest.fixture(scope="session")
def dc_server(tmp_path_factory):
    with distcache_server(tmp_path_factory.mktemp("dc")) as proc:
        yield proc


@pytest.fixture(scope="session", params=["distcache", "redis"])
def backend(request, tmp_path_factory):
    """A server process of each kind (redis skipped when not installed)."""
    if request.param == "redis":
        if not REDIS_SERVER:
            pytest.skip("redis-server is not installed")
        with redis_server(tmp_path_factory.mktemp("redis")) as proc:
            proc.kind = "redis"
            yield proc
    else:
        with distcache_server(tmp_path_factory.mktemp("dc")) as proc:
            proc.kind = "distcache"
            yield proc


@pytest.fixture(params=["sync", "async"])
def flavour(request):
    return request.param


@pytest.fixture
def client_factory(flavour):
    """``client_factory(servers, **options)``; everything made is closed after."""
    made = []

    def factory(servers: Any, **options: Any) -> Any:
        client = make_client(flavour, servers, **options)
        made.append(client)
        return client
    yield factory
    for client in made:
        close_client(client)


@pytest.fixture
def client(backend, client_factory):
    """A flushed client of each flavour on each backend."""
    c = client_factory(backend.address)
    c.flush()
    return c
