"""Hostile input, part B (issue #12): collection commands whose cost one request
could make proportional to a whole large collection where Redis's is not.

Each case is timed through a real server on a collection large enough that
the old code took 5-20 times the bound, and its replies are compared with a
real redis-server where Redis's reply is the spec.
"""
from __future__ import annotations

import redis

from test_core_hostile import _best_of  # the fastest of n runs

#: Large enough that a walk of the whole collection costs well over the bounds below.
LIST_LEN = 400_000
ZSET_LEN = 300_000


def _fill_list(r: redis.Redis, key: str, n: int) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(0, n, 2000):
        pipe.rpush(key, *[b"e%d" % j for j in range(i, min(n, i + 2000))])
    pipe.execute()


def test_lrem_near_an_end_walks_only_that_far(r):
    """LREM key 1 x with x at the head (-1 at the tail) of a long list stops at
    x, as Redis does; it used to copy and rebuild the whole list (~30 ms here)."""
    _fill_list(r, "l", LIST_LEN)

    def head() -> None:
        pipe = r.pipeline(transaction=False)
        pipe.lpush("l", "x")
        pipe.lrem("l", 1, "x")
        assert pipe.execute() == [LIST_LEN + 1, 1]

    def tail() -> None:
        pipe = r.pipeline(transaction=False)
        pipe.rpush("l", "x")
        pipe.lrem("l", -1, "x")
        assert pipe.execute() == [LIST_LEN + 1, 1]

    assert _best_of(5, head) < 0.008
    assert _best_of(5, tail) < 0.008
    assert r.llen("l") == LIST_LEN
    assert r.lrange("l", 0, 1) == [b"e0", b"e1"]
    assert r.lrange("l", -2, -1) == [b"e%d" % (LIST_LEN - 2), b"e%d" % (LIST_LEN - 1)]


def test_lrem_matches_redis(r, reference_redis):
    """Every count, from either end, removes what Redis removes and keeps the order."""
    ref = redis.Redis(port=reference_redis.port, socket_timeout=10)
    ref.flushall()
    items = ["a", "x", "b", "x", "x", "c", "x", "d", "x"]
    counts = [1, 2, 3, 5, 9, -1, -2, -3, -5, 0, 9223372036854775807, -9223372036854775808]
    for count in counts:
        for element in ("x", "a", "d", "zz"):
            for client in (r, ref):
                client.delete("l")
                client.rpush("l", *items)
            replies = [(c.lrem("l", count, element), c.lrange("l", 0, -1), c.exists("l"))
                       for c in (r, ref)]
            assert replies[0] == replies[1], (count, element)
    for client in (r, ref):  # emptied: the key goes
        client.delete("l")
        client.rpush("l", "x", "x")
    assert [(c.lrem("l", -2, "x"), c.exists("l")) for c in (r, ref)] == [(2, 0), (2, 0)]


def test_bylex_on_a_large_set_with_mixed_scores_is_not_a_scan(r):
    """ZLEXCOUNT/ZRANGEBYLEX on a big sorted set whose scores differ (Redis's order
    is undefined there) answer in O(log n), as Redis's skiplist does; they used
    to replay a listpack walk over the whole set (~50 ms here)."""
    pipe = r.pipeline(transaction=False)
    for i in range(0, ZSET_LEN, 2000):
        pipe.zadd("z", {b"m%07d" % j: j for j in range(i, min(ZSET_LEN, i + 2000))})
    pipe.execute()
    low, high = b"[m%07d" % (ZSET_LEN // 2), b"[m%07d" % (ZSET_LEN // 2 + 9)
    assert _best_of(5, lambda: r.zlexcount("z", low, high)) < 0.010
    assert _best_of(5, lambda: r.zrangebylex("z", low, high)) < 0.010
    assert _best_of(5, lambda: r.zrevrangebylex("z", high, low)) < 0.010
    assert _best_of(5, lambda: r.zremrangebylex("z", "(zzz", "+")) < 0.010
    # Members ordered as their scores here, so the bisection is exact.
    assert r.zlexcount("z", low, high) == 10
    assert r.zrangebylex("z", low, high, start=2, num=2) == [
        b"m%07d" % (ZSET_LEN // 2 + 2), b"m%07d" % (ZSET_LEN // 2 + 3)]
