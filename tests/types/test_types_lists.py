"""List commands through redis-py against a real distcache process."""
from __future__ import annotations

import pytest
import redis


def test_push_pop_order_and_lengths(r):
    assert r.lpush("l", "a", "b") == 2  # b a
    assert r.rpush("l", "c", "d") == 4  # b a c d
    assert r.lrange("l", 0, -1) == [b"b", b"a", b"c", b"d"]
    assert r.lpop("l") == b"b"
    assert r.rpop("l") == b"d"
    assert r.llen("l") == 2
    assert r.lpop("l", 5) == [b"a", b"c"]
    assert r.exists("l") == 0  # emptied lists are deleted


def test_pop_counts_zero_negative_and_missing(r):
    r.rpush("l", "a", "b")
    assert r.lpop("l", 0) == []
    assert r.lpop("missing") is None
    assert r.lpop("missing", 2) is None
    with pytest.raises(redis.ResponseError, match="must be positive"):
        r.rpop("l", -1)
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("LPOP", "l", "1", "2")


def test_pushx_only_on_existing(r):
    assert r.lpushx("l", "a") == 0
    assert r.rpushx("l", "a") == 0
    assert r.exists("l") == 0
    r.rpush("l", "x")
    assert r.lpushx("l", "a", "b") == 3
    assert r.rpushx("l", "z") == 4
    assert r.lrange("l", 0, -1) == [b"b", b"a", b"x", b"z"]


def test_lrange_and_lindex_indexes(r):
    r.rpush("l", *"abcde")
    assert r.lrange("l", -2, -1) == [b"d", b"e"]
    assert r.lrange("l", -100, 1) == [b"a", b"b"]
    assert r.lrange("l", 3, 100) == [b"d", b"e"]
    assert r.lrange("l", 4, 2) == []
    assert r.lrange("l", 10, 20) == []
    assert r.lrange("missing", 0, -1) == []
    assert r.lindex("l", -1) == b"e"
    assert r.lindex("l", 5) is None
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.lindex("l", "x")


def test_lset_errors_and_update(r):
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.lset("l", 0, "x")
    r.rpush("l", "a", "b")
    assert r.lset("l", -1, "z") is True
    with pytest.raises(redis.ResponseError, match="index out of range"):
        r.lset("l", 2, "x")
    assert r.lrange("l", 0, -1) == [b"a", b"z"]


def test_lrem_directions(r):
    r.rpush("l", *"axbxcx")
    assert r.lrem("l", -2, "x") == 2
    assert r.lrange("l", 0, -1) == [b"a", b"x", b"b", b"c"]
    assert r.lrem("l", 1, "x") == 1
    assert r.lrem("l", 0, "nothing") == 0
    r.rpush("m", "x", "x")
    assert r.lrem("m", 0, "x") == 2
    assert r.exists("m") == 0


def test_ltrim_ranges(r):
    r.rpush("l", *"abcdef")
    assert r.ltrim("l", 1, -2) is True
    assert r.lrange("l", 0, -1) == [b"b", b"c", b"d", b"e"]
    r.ltrim("l", -1, 10)
    assert r.lrange("l", 0, -1) == [b"e"]
    r.ltrim("l", 5, 1)
    assert r.exists("l") == 0


def test_linsert(r):
    assert r.linsert("l", "BEFORE", "a", "x") == 0
    r.rpush("l", "a", "c")
    assert r.linsert("l", "AFTER", "a", "b") == 3
    assert r.linsert("l", "BEFORE", "a", "0") == 4
    assert r.linsert("l", "BEFORE", "zz", "x") == -1
    assert r.lrange("l", 0, -1) == [b"0", b"a", b"b", b"c"]
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("LINSERT", "l", "MIDDLE", "a", "x")


def test_lpos_options(r):
    r.rpush("l", *"abcabca")
    assert r.lpos("l", "a") == 0
    assert r.lpos("l", "a", rank=2) == 3
    assert r.lpos("l", "a", rank=-1) == 6
    assert r.lpos("l", "a", count=0) == [0, 3, 6]
    assert r.lpos("l", "a", rank=-2, count=0) == [3, 0]
    assert r.lpos("l", "a", count=2, maxlen=4) == [0, 3]
    assert r.lpos("l", "z") is None
    assert r.lpos("l", "z", count=1) == []
    with pytest.raises(redis.ResponseError, match="RANK can't be zero"):
        r.lpos("l", "a", rank=0)
    with pytest.raises(redis.ResponseError, match="COUNT can't be negative"):
        r.lpos("l", "a", count=-1)


def test_lmove_and_rpoplpush(r):
    r.rpush("src", "a", "b", "c")
    assert r.lmove("src", "dst", "RIGHT", "LEFT") == b"c"
    assert r.rpoplpush("src", "dst") == b"b"
    assert r.lrange("dst", 0, -1) == [b"b", b"c"]
    assert r.lmove("src", "src", "LEFT", "RIGHT") == b"a"  # rotation of a 1-element list
    assert r.lrange("src", 0, -1) == [b"a"]
    assert r.lmove("missing", "dst", "LEFT", "LEFT") is None
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.lmove("src", "str", "LEFT", "LEFT")
    assert r.lrange("src", 0, -1) == [b"a"]  # nothing moved on error


def test_lmpop(r):
    r.rpush("b", "1", "2", "3")
    assert r.lmpop(2, "a", "b", direction="LEFT", count=2) == [b"b", [b"1", b"2"]]
    assert r.lmpop(1, "b", direction="RIGHT") == [b"b", [b"3"]]
    assert r.lmpop(1, "b", direction="RIGHT") is None
    with pytest.raises(redis.ResponseError, match="numkeys should be greater than 0"):
        r.execute_command("LMPOP", 0, "a", "LEFT")
    with pytest.raises(redis.ResponseError, match="count should be greater than 0"):
        r.execute_command("LMPOP", 1, "a", "LEFT", "COUNT", 0)


def test_wrongtype_on_every_list_command(r):
    r.set("s", "v")
    calls = [("LPUSH", "s", "x"), ("RPUSHX", "s", "x"), ("LPOP", "s"), ("LLEN", "s"),
             ("LRANGE", "s", 0, -1), ("LINDEX", "s", 0), ("LSET", "s", 0, "x"),
             ("LREM", "s", 0, "x"), ("LTRIM", "s", 0, 1), ("LINSERT", "s", "BEFORE", "a", "b"),
             ("LPOS", "s", "x"), ("LMOVE", "s", "d", "LEFT", "LEFT"), ("LMPOP", 1, "s", "LEFT"),
             ("BLPOP", "s", 0.01)]
    for call in calls:
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            r.execute_command(*call)


def test_ttl_survives_push_and_pop(r):
    r.rpush("l", "a", "b")
    r.expire("l", 100)
    r.lpush("l", "c")
    r.lpop("l")
    r.lset("l", 0, "z")
    assert 0 < r.ttl("l") <= 100
    assert r.type("l") == b"list"
