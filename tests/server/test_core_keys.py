"""Generic key and TTL commands: exact replies of Redis 7.0.

Runs against distcache and a real redis-server (when installed).
"""
from __future__ import annotations

import time

import pytest
import redis

from core_helpers import (NIL, NOT_INT, OK, SYNTAX, bulk, num,  # noqa: F401
                          run_steps, ttl_about,
                          target_server, tr, traw, wait_until)

INT32 = b"-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
DB_RANGE = b"-ERR DB index is out of range\r\n"
SAME = b"-ERR source and destination objects are the same\r\n"


def test_del_unlink_exists_touch(traw):
    run_steps(traw, [
        (("MSET", "a", "1", "b", "2", "c", "3"), OK),
        (("EXISTS", "a", "b", "a", "zz"), num(3)),
        (("TOUCH", "a", "zz", "b"), num(2)),
        (("DEL", "a", "zz"), num(1)),
        (("UNLINK", "b", "c", "b"), num(2)),
        (("EXISTS", "a", "b", "c"), num(0)),
        (("DEL",), b"-ERR wrong number of arguments for 'del' command\r\n"),
        (("EXISTS",), b"-ERR wrong number of arguments for 'exists' command\r\n"),
    ])


def test_type(traw):
    traw.call("SET", "s", "v")
    assert traw.call("TYPE", "s") == b"+string\r\n"
    assert traw.call("TYPE", "missing") == b"+none\r\n"


def test_keys_patterns(tr):
    tr.mset({"hello": 1, "hallo": 1, "hxllo": 1, "hllo": 1, "heeeello": 1, "a*b": 1,
             "x[y": 1, "x]": 1})
    assert sorted(tr.keys("*")) == sorted([b"hello", b"hallo", b"hxllo", b"hllo", b"heeeello",
                                           b"a*b", b"x[y", b"x]"])
    assert sorted(tr.keys("h?llo")) == [b"hallo", b"hello", b"hxllo"]
    assert sorted(tr.keys("h*llo")) == [b"hallo", b"heeeello", b"hello", b"hllo", b"hxllo"]
    assert sorted(tr.keys("h[ae]llo")) == [b"hallo", b"hello"]
    assert sorted(tr.keys("h[^e]llo")) == [b"hallo", b"hxllo"]
    assert sorted(tr.keys("h[a-b]llo")) == [b"hallo"]
    assert tr.keys("a\\*b") == [b"a*b"]
    assert tr.keys("x\\[y") == [b"x[y"]
    assert tr.keys("nomatch*") == []
    tr.set("", "empty key")
    assert b"" in tr.keys("*")
    assert b"" not in tr.keys("**") and b"" not in tr.keys("*?*")  # Redis's matcher
    assert b"" in [k for k in tr.scan_iter(match="*")]
    assert b"" not in [k for k in tr.scan_iter(match="**")]


def test_scan_options(tr):
    tr.mset({f"user:{i}": i for i in range(30)})
    tr.mset({f"other:{i}": i for i in range(5)})
    assert sorted(tr.scan_iter(match="user:*", count=7)) == \
        sorted(f"user:{i}".encode() for i in range(30))
    assert len(list(tr.scan_iter(count=1000))) == 35
    assert sorted(tr.scan_iter(_type="string", match="other:*")) == \
        sorted(f"other:{i}".encode() for i in range(5))
    assert list(tr.scan_iter(_type="list")) == []
    cursor, keys = tr.scan(0, count=1000)
    assert cursor == 0 and len(keys) == 35


@pytest.mark.parametrize("args, expected", [
    (("abc",), b"-ERR invalid cursor\r\n"),
    ((" 1",), b"-ERR invalid cursor\r\n"),
    (("18446744073709551616",), b"-ERR invalid cursor\r\n"),
    (("0", "COUNT", "0"), SYNTAX),
    (("0", "COUNT", "-1"), SYNTAX),
    (("0", "COUNT", "abc"), NOT_INT),
    (("0", "MATCH"), SYNTAX),
    (("0", "FOO", "bar"), SYNTAX),
    (("0", "TYPE", "nosuchtype"), b"*2\r\n$1\r\n0\r\n*0\r\n"),
])
def test_scan_errors(traw, args, expected):
    traw.call("SET", "k", "v")
    assert traw.call("SCAN", *args) == expected


def test_scan_sees_every_stable_key_while_keys_change(target_server, tr):
    """A full SCAN returns each key that existed throughout, while another
    client adds and deletes other keys between the calls."""
    stable = {f"stable:{i}".encode() for i in range(2000)}
    pipe = tr.pipeline(transaction=False)
    for key in stable:
        pipe.set(key, 1)
    for i in range(1000):
        pipe.set(f"doomed:{i}", 1)
    pipe.execute()
    writer = redis.Redis(port=target_server.port, socket_timeout=10)
    seen = []
    cursor = 0
    step = 0
    try:
        while True:
            cursor, keys = tr.scan(cursor, count=50)
            seen.extend(keys)
            pipe = writer.pipeline(transaction=False)
            for i in range(20):
                pipe.set(f"new:{step}:{i}", 1)
                pipe.delete(f"doomed:{(step * 20 + i) % 1000}")
            pipe.execute()
            step += 1
            if cursor == 0:
                break
    finally:
        writer.close()
    assert stable <= set(seen)
    assert step > 10  # the iteration really was interleaved with writes


def test_randomkey(traw):
    assert traw.call("RANDOMKEY") == NIL
    traw.call("MSET", "a", "1", "b", "2")
    for _ in range(10):
        assert traw.call("RANDOMKEY") in (bulk(b"a"), bulk(b"b"))


def test_rename_renamenx(traw):
    run_steps(traw, [
        (("RENAME", "missing", "x"), b"-ERR no such key\r\n"),
        (("RENAMENX", "missing", "x"), b"-ERR no such key\r\n"),
        (("SETEX", "a", "100", "1"), OK),
        (("RENAME", "a", "a"), OK),
        (("RENAME", "a", "b"), OK),
        (("EXISTS", "a"), num(0)),
        (("TTL", "b"), ttl_about(100)),  # the TTL moves with the value
        (("SET", "c", "3"), OK),
        (("RENAMENX", "b", "c"), num(0)),
        (("RENAMENX", "b", "b"), num(0)),
        (("RENAMENX", "b", "d"), num(1)),
        (("GET", "d"), bulk(b"1")),
        (("SET", "e", "5"), OK),
        (("RENAME", "d", "e"), OK),
        (("GET", "e"), bulk(b"1")),
    ])


def test_copy(traw):
    run_steps(traw, [
        (("SETEX", "src", "100", "v"), OK),
        (("COPY", "src", "src"), SAME),
        (("COPY", "missing", "dst"), num(0)),
        (("COPY", "src", "dst"), num(1)),
        (("TTL", "dst"), ttl_about(100)),
        (("SET", "other", "o"), OK),
        (("COPY", "other", "dst"), num(0)),
        (("COPY", "other", "dst", "REPLACE"), num(1)),
        (("GET", "dst"), bulk(b"o")),
        (("COPY", "src", "dst", "DB", "1"), num(1)),
        (("COPY", "src", "src", "DB", "1"), num(1)),
        (("COPY", "src", "src", "DB", "1"), num(0)),
        (("COPY", "src", "src", "DB", "0"), SAME),
        (("COPY", "src", "dst", "DB", "16"), DB_RANGE),
        (("COPY", "src", "dst", "DB", "-1"), DB_RANGE),
        (("COPY", "src", "dst", "DB", "abc"), NOT_INT),
        (("COPY", "src", "dst", "DB", "4294967296"), INT32),
        (("COPY", "src", "dst", "FOO"), SYNTAX),
        (("SELECT", "1"), OK),
        (("GET", "dst"), bulk(b"v")),
        (("TTL", "dst"), ttl_about(100)),
    ])


def test_move(traw):
    run_steps(traw, [
        (("SET", "k", "v"), OK),
        (("MOVE", "k", "0"), SAME),
        (("MOVE", "k", "1"), num(1)),
        (("MOVE", "k", "1"), num(0)),
        (("SET", "k", "again"), OK),
        (("MOVE", "k", "1"), num(0)),  # exists in the target: not moved
        (("MOVE", "k", "16"), DB_RANGE),
        (("MOVE", "k", "abc"), NOT_INT),
        (("MOVE", "k", "4294967296"), INT32),
        (("SELECT", "1"), OK),
        (("GET", "k"), bulk(b"v")),
    ])


def test_select_dbsize_flush(traw):
    run_steps(traw, [
        (("SELECT", "15"), OK),
        (("SET", "a", "1"), OK),
        (("DBSIZE",), num(1)),
        (("SELECT", "16"), DB_RANGE),
        (("SELECT", "-1"), DB_RANGE),
        (("SELECT", "abc"), NOT_INT),
        (("SELECT", "4294967296"), INT32),
        (("SELECT", "0"), OK),
        (("DBSIZE",), num(0)),
        (("SET", "b", "1"), OK),
        (("FLUSHDB", "FOO"), SYNTAX),
        (("FLUSHDB", "ASYNC"), OK),
        (("DBSIZE",), num(0)),
        (("SELECT", "15"), OK),
        (("DBSIZE",), num(1)),
        (("FLUSHALL", "SYNC"), OK),
        (("DBSIZE",), num(0)),
        (("FLUSHALL", "x", "y"), SYNTAX),
        (("SWAPDB", "0", "abc"), b"-ERR invalid second DB index\r\n"),
        (("SWAPDB", "abc", "0"), b"-ERR invalid first DB index\r\n"),
        (("SWAPDB", "0", "16"), DB_RANGE),
    ])


def test_expire_options(traw):
    run_steps(traw, [
        (("SET", "k", "v"), OK),
        (("EXPIRE", "k", "100", "XX"), num(0)),
        (("EXPIRE", "k", "100", "GT"), num(0)),  # no TTL counts as infinite
        (("EXPIRE", "k", "100", "LT"), num(1)),
        (("EXPIRE", "k", "200", "NX"), num(0)),
        (("EXPIRE", "k", "50", "XX"), num(1)),
        (("TTL", "k"), ttl_about(50)),
        (("EXPIRE", "k", "40", "GT"), num(0)),
        (("EXPIRE", "k", "60", "GT"), num(1)),
        (("EXPIRE", "k", "70", "LT"), num(0)),
        (("EXPIRE", "k", "30", "lt"), num(1)),
        (("TTL", "k"), ttl_about(30)),
        (("PEXPIRE", "k", "100000", "xx"), num(1)),
        (("TTL", "k"), ttl_about(100)),
        (("EXPIRE", "k", "10", "NX", "XX"),
         b"-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"),
        (("EXPIRE", "k", "10", "GT", "LT"),
         b"-ERR GT and LT options at the same time are not compatible\r\n"),
        (("EXPIRE", "k", "10", "FOO"), b"-ERR Unsupported option FOO\r\n"),
        (("EXPIRE", "k", "abc"), NOT_INT),
        (("EXPIRE", "missing", "10"), num(0)),
        (("EXPIRE", "k"), b"-ERR wrong number of arguments for 'expire' command\r\n"),
    ])


def test_expire_invalid_times(traw):
    traw.call("SET", "k", "v")
    for cmd, amount in (("EXPIRE", "9223372036854775807"), ("PEXPIRE", "9223372036854775807"),
                        ("EXPIREAT", "9223372036854775807"), ("EXPIRE", "-9223372036854775808")):
        assert traw.call(cmd, "k", amount) == \
            b"-ERR invalid expire time in '%s' command\r\n" % cmd.lower().encode()
    assert traw.call("TTL", "k") == num(-1)


def test_expire_in_the_past_deletes(traw):
    for cmd, amount in (("EXPIRE", "-1"), ("PEXPIRE", "0"), ("EXPIREAT", "1"),
                        ("PEXPIREAT", "1")):
        traw.call("SET", "k", "v")
        assert traw.call(cmd, "k", amount) == num(1)
        assert traw.call("EXISTS", "k") == num(0)


def test_ttl_pttl_expiretime_persist(traw):
    at = int(time.time()) + 1000
    run_steps(traw, [
        (("TTL", "missing"), num(-2)),
        (("PTTL", "missing"), num(-2)),
        (("EXPIRETIME", "missing"), num(-2)),
        (("PEXPIRETIME", "missing"), num(-2)),
        (("SET", "k", "v"), OK),
        (("TTL", "k"), num(-1)),
        (("PTTL", "k"), num(-1)),
        (("EXPIRETIME", "k"), num(-1)),
        (("PEXPIRETIME", "k"), num(-1)),
        (("EXPIREAT", "k", str(at)), num(1)),
        (("EXPIRETIME", "k"), num(at)),
        (("PEXPIRETIME", "k"), num(at * 1000)),
        (("PEXPIREAT", "k", str(at * 1000 + 499)), num(1)),
        (("EXPIRETIME", "k"), num(at)),
        (("PEXPIREAT", "k", str(at * 1000 + 500)), num(1)),
        (("EXPIRETIME", "k"), num(at + 1)),  # rounded to the nearest second
        (("PERSIST", "k"), num(1)),
        (("PERSIST", "k"), num(0)),
        (("PERSIST", "missing"), num(0)),
        (("TTL", "k"), num(-1)),
    ])
    traw.call("PEXPIRE", "k", "5000")
    pttl = int(traw.call("PTTL", "k")[1:-2])
    assert 3000 < pttl <= 5000


def test_keys_expire_lazily_and_actively(tr):
    tr.set("short", "v", px=100)
    tr.set("other", "v", px=100)
    wait_until(lambda: tr.get("short") is None, 10, message="lazy expiry")
    assert tr.ttl("short") == -2
    # Never read: the active cycle removes it.
    wait_until(lambda: tr.dbsize() == 0, 10, message="active expiry")


def test_wrong_arity_and_unknown_commands(traw):
    run_steps(traw, [
        (("FOO",), b"-ERR unknown command 'FOO', with args beginning with: \r\n"),
        (("foo", "bar", "baz"),
         b"-ERR unknown command 'foo', with args beginning with: 'bar' 'baz' \r\n"),
        (("CLIENT", "FOO"), b"-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n"),
        (("config", "foo", "bar"), b"-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n"),
        (("CLIENT",), b"-ERR wrong number of arguments for 'client' command\r\n"),
        (("KEYS",), b"-ERR wrong number of arguments for 'keys' command\r\n"),
        (("TTL", "a", "b"), b"-ERR wrong number of arguments for 'ttl' command\r\n"),
        (("DBSIZE", "x"), b"-ERR wrong number of arguments for 'dbsize' command\r\n"),
        (("CLIENT", "ID", "x"), b"-ERR wrong number of arguments for 'client|id' command\r\n"),
    ])
