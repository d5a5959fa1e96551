"""Sorted-set commands through redis-py (and a raw client for RESP3 shapes)."""
from __future__ import annotations

import pytest
import redis

from types_resp import RawClient


def test_zadd_flags(r):
    assert r.zadd("z", {"a": 1, "b": 2}) == 2
    assert r.zadd("z", {"a": 5}, nx=True) == 0
    assert r.zscore("z", "a") == 1.0
    assert r.zadd("z", {"a": 5, "c": 3}, xx=True) == 0
    assert r.zscore("z", "a") == 5.0 and r.zscore("z", "c") is None
    assert r.zadd("z", {"a": 4, "b": 9}, gt=True, ch=True) == 1
    assert r.zscore("z", "a") == 5.0 and r.zscore("z", "b") == 9.0
    assert r.zadd("z", {"a": 4}, lt=True, ch=True) == 1
    assert r.zadd("z", {"a": 2}, incr=True) == 6.0
    assert r.zadd("z", {"a": 1}, incr=True, nx=True) is None
    assert r.zadd("missing", {"a": 1}, xx=True) == 0
    assert r.exists("missing") == 0
    errors = [(("ZADD", "z", "NX", "XX", 1, "a"), "XX and NX options"),
              (("ZADD", "z", "GT", "LT", 1, "a"), "GT, LT, and/or NX"),
              (("ZADD", "z", "INCR", 1, "a", 2, "b"), "INCR option supports a single"),
              (("ZADD", "z", 1, "a", 2), "syntax error"),
              (("ZADD", "z", "nan", "a"), "not a valid float"),
              (("ZADD", "z", "1e400", "a"), "not a valid float")]
    for args, text in errors:
        with pytest.raises(redis.ResponseError, match=text):
            r.execute_command(*args)


def test_zincrby_nan_and_inf(r):
    assert r.zincrby("z", 5, "a") == 5.0
    r.zadd("z", {"inf": float("inf")})
    with pytest.raises(redis.ResponseError, match="resulting score is not a number"):
        r.zincrby("z", float("-inf"), "inf")
    assert r.zscore("z", "inf") == float("inf")


def test_scores_ranks_and_counts(r):
    r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 3})
    assert r.zcard("z") == 4
    assert r.zmscore("z", ["a", "zz", "d"]) == [1.0, None, 3.0]
    assert r.zrank("z", "c") == 2 and r.zrevrank("z", "c") == 1
    assert r.zrank("z", "zz") is None
    assert r.zcount("z", 2, 3) == 3
    assert r.zcount("z", "(2", "+inf") == 2
    assert r.zcount("z", "(3", "3") == 0
    with pytest.raises(redis.ResponseError, match="min or max is not a float"):
        r.zcount("z", "x", 1)


def test_zrange_variants(r):
    r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    assert r.zrange("z", 0, 1) == [b"a", b"b"]
    assert r.zrange("z", -2, -1, withscores=True) == [(b"d", 4.0), (b"e", 5.0)]
    assert r.zrange("z", 0, 1, desc=True) == [b"e", b"d"]
    assert r.zrange("z", 10, 20) == []
    assert r.zrange("z", "(1", 4, byscore=True, offset=1, num=2) == [b"c", b"d"]
    assert r.zrange("z", 4, "(1", byscore=True, desc=True) == [b"d", b"c", b"b"]
    assert r.zrangebyscore("z", "-inf", "+inf", start=-1, num=2) == []
    assert r.zrangebyscore("z", "-inf", "+inf", start=3, num=-1) == [b"d", b"e"]
    assert r.zrevrangebyscore("z", 3, 1, withscores=True) == [(b"c", 3.0), (b"b", 2.0),
                                                              (b"a", 1.0)]
    assert r.zrevrange("z", 0, 0) == [b"e"]
    with pytest.raises(redis.ResponseError, match="LIMIT is only supported"):
        r.execute_command("ZRANGE", "z", 0, 1, "LIMIT", 0, 1)
    assert r.zrange("missing", 0, -1) == []


def test_lex_ranges(r):
    r.zadd("z", {m: 0 for m in "abcdefg"})
    assert r.zrangebylex("z", "-", "[c") == [b"a", b"b", b"c"]
    assert r.zrangebylex("z", "(c", "+", start=1, num=2) == [b"e", b"f"]
    assert r.zrevrangebylex("z", "[c", "(a") == [b"c", b"b"]
    assert r.zlexcount("z", "[b", "(e") == 3
    assert r.zlexcount("z", "+", "-") == 0
    assert r.zremrangebylex("z", "[f", "+") == 2
    with pytest.raises(redis.ResponseError, match="not valid string range item"):
        r.zrangebylex("z", "a", "+")
    with pytest.raises(redis.ResponseError, match="WITHSCORES not supported"):
        r.execute_command("ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES")


def test_remrange_and_store(r):
    r.zadd("z", {f"m{i}": i for i in range(10)})
    assert r.zremrangebyrank("z", 0, 1) == 2
    assert r.zremrangebyrank("z", -1, -1) == 1
    assert r.zremrangebyscore("z", "(2", 4) == 2
    assert r.zrange("z", 0, -1) == [b"m2", b"m5", b"m6", b"m7", b"m8"]
    assert r.zrangestore("dst", "z", 1, 6, byscore=True, offset=1, num=2) == 2
    assert r.zrange("dst", 0, -1, withscores=True) == [(b"m5", 5.0), (b"m6", 6.0)]
    assert r.zrangestore("dst", "z", 100, 200) == 0
    assert r.exists("dst") == 0
    assert r.zremrangebyrank("z", 0, -1) == 5
    assert r.exists("z") == 0


def test_pops(r):
    r.zadd("z", {"a": 1, "b": 2, "c": 3})
    assert r.zpopmin("z") == [(b"a", 1.0)]
    assert r.zpopmax("z", 5) == [(b"c", 3.0), (b"b", 2.0)]
    assert r.exists("z") == 0
    assert r.zpopmin("z") == []
    r.zadd("z", {"a": 1})
    assert r.zpopmin("z", 0) == []
    with pytest.raises(redis.ResponseError, match="must be positive"):
        r.zpopmin("z", -1)
    assert r.zmpop(2, ["nothing", "z"], min=True) == [b"z", [[b"a", b"1"]]]
    assert r.bzpopmin(["z"], timeout=0.01) is None


def test_union_inter_diff(r):
    r.zadd("a", {"x": 1, "y": 2})
    r.zadd("b", {"y": 3, "z": 4})
    r.sadd("s", "x", "z")
    assert r.zunionstore("u", ["a", "b"]) == 3
    assert r.zrange("u", 0, -1, withscores=True) == [(b"x", 1.0), (b"z", 4.0), (b"y", 5.0)]
    assert r.zinterstore("i", {"a": 2, "b": 3}, aggregate="MAX") == 1
    assert r.zscore("i", "y") == 9.0
    assert r.zunionstore("u", ["a", "s"], aggregate="MIN") == 3
    assert r.zrange("u", 0, -1, withscores=True) == [(b"x", 1.0), (b"z", 1.0), (b"y", 2.0)]
    assert r.zinter(["a", "b"], withscores=True) == [(b"y", 5.0)]
    assert r.zdiff(["a", "b"]) == [b"x"]
    assert r.zintercard(2, ["a", "s"]) == 1
    assert r.zinterstore("i", ["a", "missing"]) == 0
    assert r.exists("i") == 0
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.zunionstore("u", ["a", "str"])
    with pytest.raises(redis.ResponseError, match="at least 1 input key"):
        r.execute_command("ZUNIONSTORE", "u", 0, "a")
    with pytest.raises(redis.ResponseError, match="weight value is not a float"):
        r.execute_command("ZUNIONSTORE", "u", 1, "a", "WEIGHTS", "x")


def test_zrandmember(r):
    assert r.zrandmember("z") is None
    assert r.zrandmember("z", 3) == []
    r.zadd("z", {"a": 1, "b": 2})
    assert r.zrandmember("z") in (b"a", b"b")
    assert sorted(r.zrandmember("z", 5)) == [b"a", b"b"]
    assert len(r.zrandmember("z", -7)) == 7
    flat = r.zrandmember("z", -3, withscores=True)
    assert len(flat) == 6


def test_zscan_scores_as_text(r):
    r.zadd("z", {"a": 1.5, "b": float("inf")})
    cursor, items = r.zscan("z", 0)
    assert cursor == 0 and dict(items) == {b"a": 1.5, b"b": float("inf")}
    big = {f"m{i}": i for i in range(500)}
    r.zadd("big", big)
    assert dict(r.zscan_iter("big", count=40)) == {k.encode(): float(v) for k, v in big.items()}


def test_resp3_reply_types(shared_server):
    with RawClient(shared_server.port, 3) as c:
        c.call("DEL", "z")
        c.call("ZADD", "z", "1", "a", "2.5", "b")
        assert c.call("ZSCORE", "z", "b") == (",", b"2.5")
        assert c.call("ZRANGE", "z", "0", "0", "WITHSCORES") == \
            ("*", [("*", [("$", b"a"), (",", b"1")])])
        assert c.call("ZPOPMIN", "z") == ("*", [("$", b"a"), (",", b"1")])
        assert c.call("ZINCRBY", "z", "1", "b") == (",", b"3.5")
        assert c.call("ZMSCORE", "z", "b", "x") == ("*", [(",", b"3.5"), ("_", b"")])


def test_double_text_is_redis_17g(shared_server):
    with RawClient(shared_server.port, 2) as c:
        c.call("DEL", "z")
        c.call("ZADD", "z", "0.1", "a")
        assert c.call("ZSCORE", "z", "a") == ("$", b"0.10000000000000001")


def test_wrongtype_on_zset_commands(r):
    r.rpush("l", "x")
    calls = [("ZADD", "l", 1, "a"), ("ZSCORE", "l", "a"), ("ZRANGE", "l", 0, -1),
             ("ZRANK", "l", "a"), ("ZPOPMIN", "l"), ("ZREM", "l", "a"), ("ZCARD", "l"),
             ("ZCOUNT", "l", 0, 1), ("ZINCRBY", "l", 1, "a"), ("ZRANGESTORE", "d", "l", 0, 1),
             ("ZREMRANGEBYRANK", "l", 0, 1), ("ZRANDMEMBER", "l"), ("ZSCAN", "l", 0),
             ("BZPOPMIN", "l", 0.01)]
    for call in calls:
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            r.execute_command(*call)


def test_large_zset_rank_and_window(r):
    pipe = r.pipeline(transaction=False)
    for start in range(0, 20000, 2000):
        pipe.zadd("big", {f"m{i:06d}": i for i in range(start, start + 2000)})
    pipe.execute()
    assert r.zcard("big") == 20000
    assert r.zrank("big", "m012345") == 12345
    assert r.zrange("big", 15000, 15002) == [b"m015000", b"m015001", b"m015002"]
    assert r.zcount("big", 100, "(200") == 100
    assert r.zrem("big", "m000000") == 1
    assert r.zrank("big", "m012345") == 12344


def test_bylex_with_mixed_scores_follows_redis_scan(r):
    # Undefined by Redis's docs, but deterministic on small sets: Redis scans in order.
    r.zadd("z", {"d": 0, "a": 1, "b": 2, "c": 3})
    assert r.zrangebylex("z", "[a", "[c") == []  # the first member, d, is past the max
    assert r.zrangebylex("z", "[b", "+") == [b"d", b"a", b"b", b"c"]  # from d, the first >= b
    assert r.zrevrangebylex("z", "[c", "-") == []  # d, the first member, is past the max
    assert r.zrevrangebylex("z", "+", "(a") == [b"c", b"b"]


def test_ttl_survives_zset_and_set_updates(r):
    r.zadd("z", {"a": 1, "b": 2})
    r.sadd("s", "a", "b")
    for key in ("z", "s"):
        r.expire(key, 100)
    r.zadd("z", {"c": 3})
    r.zincrby("z", 1, "a")
    r.zrem("z", "b")
    r.zpopmax("z")
    r.sadd("s", "c")
    r.srem("s", "a")
    assert 0 < r.ttl("z") <= 100 and 0 < r.ttl("s") <= 100
    r.zrem("z", "a")  # emptied: the key and its TTL go
    assert r.ttl("z") == -2
