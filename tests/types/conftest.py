"""Fixtures of the data-type tests."""
from __future__ import annotations

import pytest
import redis

from types_resp import RawClient


@pytest.fixture(scope="module")
def clients(shared_server, reference_redis):
    """``clients(protocol)``: raw clients on distcache and on redis-server, in that order."""
    made = {}

    def get(protocol):
        if protocol not in made:
            made[protocol] = (RawClient(shared_server.port, protocol),
                              RawClient(reference_redis.port, protocol))
        return made[protocol]

    yield get
    for ours, theirs in made.values():
        ours.close()
        theirs.close()


@pytest.fixture
def text_pair(r, reference_redis):
    """redis-py clients on distcache and redis-server (flushed), replies unparsed and in
    RESP2: scores as the servers wrote them (RESP3 floats read -0 and 0 as equal)."""
    clients = [redis.Redis(port=port, socket_timeout=60, protocol=2)
               for port in (r.connection_pool.connection_kwargs["port"], reference_redis.port)]
    for client in clients:
        client.response_callbacks.clear()
        client.flushall()
    yield clients
    for client in clients:
        client.close()
