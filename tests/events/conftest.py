"""Fixtures of the keyspace event tests: distcache and redis-server, notifications on."""
from __future__ import annotations

import pytest

from events_helpers import EventPair
from servers import REDIS_SERVER, distcache_server, redis_server

#: Every class, new keys included (key misses aside: see docs/events.md).
ALL_CLASSES = "KEAn"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """An :class:`EventPair` with every event class on, on both servers."""
    if not REDIS_SERVER:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with distcache_server(tmp_path_factory.mktemp("ours"),
                          "--notify-keyspace-events", ALL_CLASSES) as ours, \
            redis_server(tmp_path_factory.mktemp("redis"),
                         "--notify-keyspace-events", ALL_CLASSES) as theirs:
        events = EventPair(ours.port, theirs.port)
        yield events
        events.close()
