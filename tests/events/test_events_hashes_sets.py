"""Keyspace events of the hash and set commands, compared with redis-server."""
from __future__ import annotations

import pytest

HASH_CASES = [
    [("HSET", "h", "a", "1", "b", "2"), ("HSET", "h", "a", "1"), ("HMSET", "h", "c", "3"),
     ("HSETNX", "h", "a", "9"), ("HSETNX", "h", "z", "9"), ("HSETNX", "new", "z", "9")],
    [("HSET", "h", "a", "1", "b", "2"), ("HDEL", "h", "nope"), ("HDEL", "h", "a"),
     ("HDEL", "h", "b", "c"), ("HDEL", "h", "b")],
    [("HINCRBY", "h", "n", "5"), ("HINCRBY", "h", "n", "-1"), ("HINCRBYFLOAT", "h", "f", "1.5"),
     ("HINCRBYFLOAT", "h2", "f", "2")],
    [("HSET", "h", "a", "1"), ("HGET", "h", "a"), ("HGETALL", "h"), ("HLEN", "h"),
     ("HKEYS", "h"), ("HEXISTS", "h", "a")],
]

SET_CASES = [
    [("SADD", "s", "a", "b"), ("SADD", "s", "a"), ("SREM", "s", "z"), ("SREM", "s", "a"),
     ("SREM", "s", "b")],
    [("SADD", "s", "a", "b"), ("SMOVE", "s", "d", "a"), ("SMOVE", "s", "d", "zz"),
     ("SADD", "d", "b"), ("SMOVE", "s", "d", "b"), ("SMOVE", "d", "d", "a")],
    [("SADD", "s", "a"), ("SPOP", "s"), ("SADD", "s", "a", "b", "c"), ("SPOP", "s", "0"),
     ("SREM", "s", "a", "b"), ("SPOP", "s", "5"), ("SPOP", "s")],
    [("SADD", "a", "1", "2"), ("SADD", "b", "2", "3"), ("SINTERSTORE", "d", "a", "b"),
     ("SUNIONSTORE", "d", "a", "b"), ("SDIFFSTORE", "d", "a", "b"), ("SINTERSTORE", "d", "a", "x"),
     ("SINTERSTORE", "d", "a", "x")],
    [("SADD", "s", "a"), ("SMEMBERS", "s"), ("SISMEMBER", "s", "a"), ("SCARD", "s"),
     ("SINTER", "s", "s")],
]


@pytest.mark.parametrize("commands", HASH_CASES, ids=lambda c: c[-1][0])
def test_hash_events(pair, commands):
    pair.same_events(*commands)


@pytest.mark.parametrize("commands", SET_CASES, ids=lambda c: c[-1][0])
def test_set_events(pair, commands):
    pair.same_events(*commands)


def test_spop_with_count_of_a_bigger_set(pair):
    # Random picks differ between servers: only the events are compared.
    seqs = []
    for side in pair.sides:
        side.client.flushall()
        side.run([("SADD", "s", *map(str, range(20)))])
        seqs.append(side.run([("SPOP", "s", "3")])[1])
    assert seqs[0] == seqs[1]
