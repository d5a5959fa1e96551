"""Fixtures of the data-type tests."""
from __future__ import annotations

import pytest

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
