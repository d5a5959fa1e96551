"""``keymiss`` events (class ``m``) of read commands, compared with redis-server."""
from __future__ import annotations

import pytest

CASES = [
    [("GET", "nokey"), ("SET", "k", "v"), ("GET", "k"), ("MGET", "k", "a", "b")],
    [("EXISTS", "a", "b"), ("TYPE", "a"), ("TTL", "a"), ("PTTL", "a"), ("STRLEN", "a")],
    [("LRANGE", "l", "0", "-1"), ("LLEN", "l"), ("LINDEX", "l", "0")],
    [("HGET", "h", "f"), ("HGETALL", "h"), ("HLEN", "h"), ("SMEMBERS", "s"), ("SCARD", "s")],
    [("ZRANGE", "z", "0", "-1"), ("ZSCORE", "z", "m"), ("ZCARD", "z")],
    [("GETRANGE", "s", "0", "1"), ("GETBIT", "b", "1"), ("BITCOUNT", "b"), ("PFCOUNT", "p")],
    [("GETSET", "a", "1"), ("GETDEL", "b"), ("GETEX", "c")],
]


@pytest.fixture
def with_misses(pair):
    pair.config("KEAnm")
    yield pair
    pair.config("KEAn")


@pytest.mark.parametrize("commands", CASES, ids=lambda c: c[0][0])
def test_keymiss_events(with_misses, commands):
    with_misses.same_events(*commands)
