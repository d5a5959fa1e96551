"""Hash and set commands through redis-py against a real distcache process."""
from __future__ import annotations

import pytest
import redis

from types_resp import RawClient

WRONGTYPE = "WRONGTYPE"


# -- hashes ----------------------------------------------------------------------------------

def test_hset_family(r):
    assert r.hset("h", mapping={"a": "1", "b": "2"}) == 2
    assert r.hset("h", "a", "9") == 0
    assert r.hsetnx("h", "a", "x") == 0
    assert r.hsetnx("h", "c", "3") == 1
    assert r.execute_command("HMSET", "h", "d", "4") is True  # +OK
    assert r.hget("h", "a") == b"9"
    assert r.hmget("h", "a", "zz", "d") == [b"9", None, b"4"]
    assert r.hlen("h") == 4
    assert r.hexists("h", "c") == 1
    assert r.hstrlen("h", "a") == 1 and r.hstrlen("h", "zz") == 0
    assert r.hgetall("h") == {b"a": b"9", b"b": b"2", b"c": b"3", b"d": b"4"}
    assert r.hkeys("h") == [b"a", b"b", b"c", b"d"]
    assert r.hvals("h") == [b"9", b"2", b"3", b"4"]
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'hset'"):
        r.execute_command("HSET", "h", "a", "1", "b")


def test_hdel_deletes_empty_hash_and_keeps_ttl(r):
    r.hset("h", mapping={"a": "1", "b": "2"})
    r.expire("h", 100)
    r.hset("h", "c", "3")
    assert r.hdel("h", "a", "zz") == 1
    assert 0 < r.ttl("h") <= 100
    assert r.hdel("h", "b", "c") == 2
    assert r.exists("h") == 0
    assert r.hdel("h", "a") == 0


def test_hincrby_and_float(r):
    assert r.hincrby("h", "n", 5) == 5
    assert r.hincrby("h", "n", -7) == -2
    assert r.hincrbyfloat("h", "f", "10.5") == 10.5
    assert r.hincrbyfloat("h", "f", "0.1") == pytest.approx(10.6)
    assert r.hget("h", "f") == b"10.6"
    r.hset("h", "s", "abc")
    with pytest.raises(redis.ResponseError, match="hash value is not an integer"):
        r.hincrby("h", "s", 1)
    with pytest.raises(redis.ResponseError, match="hash value is not a float"):
        r.hincrbyfloat("h", "s", 1)
    r.hset("h", "big", str(2 ** 63 - 1))
    with pytest.raises(redis.ResponseError, match="would overflow"):
        r.hincrby("h", "big", 1)
    with pytest.raises(redis.ResponseError, match="NaN or Infinity"):
        r.hincrbyfloat("h", "f", "inf")


def test_hrandfield_counts(r):
    assert r.hrandfield("h") is None
    assert r.hrandfield("h", 3) == []
    fields = {b"a": b"1", b"b": b"2", b"c": b"3"}
    r.hset("h", mapping=fields)
    assert r.hrandfield("h") in fields
    assert r.hrandfield("h", 0) == []
    assert sorted(r.hrandfield("h", 10)) == sorted(fields)
    two = r.hrandfield("h", 2)
    assert len(set(two)) == 2 and set(two) <= set(fields)
    repeats = r.hrandfield("h", -20)
    assert len(repeats) == 20 and set(repeats) <= set(fields)
    flat = r.hrandfield("h", -4, withvalues=True)
    assert len(flat) == 8
    assert all(fields[f] == v for f, v in zip(flat[::2], flat[1::2]))


def test_hrandfield_resp3_pairs(shared_server):
    with RawClient(shared_server.port, 3) as c:
        c.call("DEL", "h")
        c.call("HSET", "h", "a", "1")
        assert c.call("HRANDFIELD", "h", "1", "WITHVALUES") == \
            ("*", [("*", [("$", b"a"), ("$", b"1")])])
        assert c.call("HGETALL", "h") == ("%", [("$", b"a"), ("$", b"1")])


def test_hscan_returns_everything_once(r):
    mapping = {f"f{i}": str(i) for i in range(600)}  # past 512: a hashtable, paged
    r.hset("h", mapping=mapping)
    seen = {}
    cursor = 0
    while True:
        cursor, page = r.hscan("h", cursor, count=50)
        for field, value in page.items():
            assert field not in seen
            seen[field] = value
        if cursor == 0:
            break
    assert seen == {k.encode(): v.encode() for k, v in mapping.items()}
    assert r.hscan("h", 0, match="f29*", count=1000)[1] == {
        b"f29": b"29", **{f"f29{i}".encode(): f"29{i}".encode() for i in range(10)}}


# -- sets --------------------------------------------------------------------------------------

def test_set_membership(r):
    assert r.sadd("s", "a", "b", "a") == 2
    assert r.sadd("s", "b") == 0
    assert r.sismember("s", "a") == 1
    assert r.smismember("s", ["a", "z"]) == [1, 0]
    assert r.scard("s") == 2
    assert r.smembers("s") == {b"a", b"b"}
    assert r.srem("s", "a", "z") == 1
    assert r.srem("s", "b") == 1
    assert r.exists("s") == 0
    assert r.smembers("s") == set()


def test_spop_and_srandmember_counts(r):
    members = {b"a", b"b", b"c", b"d"}
    r.sadd("s", *members)
    assert r.srandmember("s") in members
    assert r.srandmember("s", 0) == []
    assert set(r.srandmember("s", 10)) == members
    assert len(r.srandmember("s", -10)) == 10
    assert set(r.srandmember("s", -10)) <= members
    assert r.spop("s", 0) == [] or r.spop("s", 0) == set()
    popped = r.spop("s", 3)
    assert len(popped) == 3 and set(popped) <= members
    last = r.spop("s")
    assert {last, *popped} == members
    assert r.exists("s") == 0
    assert r.spop("s") is None
    with pytest.raises(redis.ResponseError, match="must be positive"):
        r.spop("s", -1)


def test_random_picks_on_large_set(r):
    members = {f"m{i}".encode() for i in range(3000)}
    r.sadd("s", *members)
    few = r.srandmember("s", 5)
    assert len(set(few)) == 5 and set(few) <= members
    assert set(r.srandmember("s", -5)) <= members
    pipe = r.pipeline(transaction=False)
    for _ in range(2990):
        pipe.spop("s")
    popped = pipe.execute()
    assert len(set(popped)) == 2990 and set(popped) <= members  # never the same twice
    r.sadd("s", "late")
    rest = r.spop("s", 20)
    assert set(rest) | set(popped) == members | {b"late"}
    assert r.exists("s") == 0


def test_smove(r):
    r.sadd("a", "x", "y")
    assert r.smove("a", "b", "x") == 1
    assert r.smove("a", "b", "zz") == 0
    assert r.smove("missing", "b", "x") == 0
    assert r.smove("a", "a", "y") == 1
    assert r.smembers("b") == {b"x"}
    r.smove("a", "b", "y")
    assert r.exists("a") == 0
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.smove("b", "str", "x")


def test_set_algebra_and_store(r):
    r.sadd("a", "1", "2", "3")
    r.sadd("b", "2", "3", "4")
    assert r.sinter("a", "b") == {b"2", b"3"}
    assert r.sunion("a", "b") == {b"1", b"2", b"3", b"4"}
    assert r.sdiff("a", "b") == {b"1"}
    assert r.sinter("a", "missing") == set()
    assert r.sdiff("missing", "a") == set()
    r.set("dst", "old")
    r.expire("dst", 100)
    assert r.sinterstore("dst", "a", "b") == 2
    assert r.smembers("dst") == {b"2", b"3"} and r.ttl("dst") == -1
    assert r.sunionstore("dst", "a", "b") == 4
    assert r.sdiffstore("dst", "a", "a") == 0
    assert r.exists("dst") == 0
    assert r.sintercard(2, ["a", "b"]) == 2
    assert r.sintercard(2, ["a", "b"], limit=1) == 1
    with pytest.raises(redis.ResponseError, match="numkeys should be greater than 0"):
        r.execute_command("SINTERCARD", 0, "a")
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.sinter("missing", "str")


def test_sscan_with_match(r):
    r.sadd("s", *[f"m{i}" for i in range(200)])
    found = set()
    for member in r.sscan_iter("s", match="m1*", count=20):
        found.add(member)
    assert found == {f"m{i}".encode() for i in range(200) if str(i).startswith("1")}


def test_wrongtype_on_hash_and_set_commands(r):
    r.rpush("l", "x")
    calls = [("HSET", "l", "a", "1"), ("HGET", "l", "a"), ("HGETALL", "l"), ("HDEL", "l", "a"),
             ("HINCRBY", "l", "a", 1), ("HRANDFIELD", "l"), ("HSCAN", "l", 0), ("HLEN", "l"),
             ("SADD", "l", "a"), ("SMEMBERS", "l"), ("SPOP", "l"), ("SRANDMEMBER", "l", 2),
             ("SCARD", "l"), ("SUNIONSTORE", "d", "l"), ("SSCAN", "l", 0), ("SREM", "l", "x")]
    for call in calls:
        with pytest.raises(redis.ResponseError, match=WRONGTYPE):
            r.execute_command(*call)


def test_small_integer_sets_list_in_intset_order(shared_server):
    with RawClient(shared_server.port) as c:
        c.call("DEL", "s")
        c.call("SADD", "s", "30", "-2", "100", "7")
        expected = [("$", b"-2"), ("$", b"7"), ("$", b"30"), ("$", b"100")]
        assert c.call("SMEMBERS", "s") == ("*", expected)
        assert c.call("SSCAN", "s", "0", "COUNT", "1") == ("*", [("$", b"0"), ("*", expected)])
        assert c.call("SRANDMEMBER", "s", "10") == ("*", expected)
