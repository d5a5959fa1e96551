"""Hostile input, part B (issue #12): collection commands whose cost one request
could make proportional to a whole large collection where Redis's is not.

Each case is timed through a real server on a collection large enough that
the old code took 5-20 times the bound, and its replies are compared with a
real redis-server where Redis's reply is the spec.
"""
from __future__ import annotations

import importlib.util
import socket
from typing import Any

import pytest
import redis
from servers import REDIS_SERVER, distcache_server, redis_server, wait_until

from timing import assert_fast  # the fastest run, retried past a loaded host's pauses

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

    assert_fast(head, 0.008, "LREM at the head")
    assert_fast(tail, 0.008, "LREM at the tail")
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
    assert_fast(lambda: r.zlexcount("z", low, high), 0.010, "ZLEXCOUNT")
    assert_fast(lambda: r.zrangebylex("z", low, high), 0.010, "ZRANGEBYLEX")
    assert_fast(lambda: r.zrevrangebylex("z", high, low), 0.010, "ZREVRANGEBYLEX")
    assert_fast(lambda: r.zremrangebylex("z", "(zzz", "+"), 0.010, "ZREMRANGEBYLEX")
    # Members ordered as their scores here, so the bisection is exact.
    assert r.zlexcount("z", low, high) == 10
    assert r.zrangebylex("z", low, high, start=2, num=2) == [
        b"m%07d" % (ZSET_LEN // 2 + 2), b"m%07d" % (ZSET_LEN // 2 + 3)]


def _request(*args: Any) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def _read_exactly(sock: socket.socket, expected: bytes) -> None:
    data = b""
    while len(data) < len(expected):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    assert data == expected


def _blocked(r: redis.Redis, count: int) -> None:
    wait_until(lambda: r.info("clients")["blocked_clients"] == count,
               message=f"{count} blocked clients")


def test_a_client_blocked_on_many_keys_does_not_slow_other_writes(r, shared_server):
    """Waited keys are looked at through each write's own arguments: one client
    blocked on 200,000 keys, 5,000 of which then hold strings, used to make
    every other write scan them all and mark the strings ready in O(n^2)
    (over a second per SET); now a SET costs what it costs alone."""
    keys = [b"w%d" % i for i in range(200_000)]
    with socket.create_connection(("127.0.0.1", shared_server.port), timeout=10) as sock:
        sock.sendall(_request("BLPOP", *keys, 0))
        _blocked(r, 1)
        pipe = r.pipeline(transaction=False)
        for i in range(0, 5000, 1000):
            pipe.mset({key: b"s" for key in keys[i:i + 1000]})
        pipe.execute()
        assert_fast(lambda: r.set("other", "x"), 0.005, "SET")
        r.rpush(keys[-1], "v")  # a waited key that becomes a list still serves it
        _read_exactly(sock, b"*2\r\n$7\r\nw199999\r\n$1\r\nv\r\n")
    assert r.exists(keys[-1]) == 0


def _fill_waited_keys(port: int) -> None:
    """Keys filled by commands that do not signal them themselves (RENAME and COPY
    are in test_types_blocking), in the waiter's database or from another, wake
    the waiter, as on Redis."""
    r = redis.Redis(port=port, socket_timeout=10)
    r.flushall()
    cases = [  # (waiter's db, waited key, commands that fill it from db 0)
        (1, "moved", [("RPUSH", "moved", "v"), ("MOVE", "moved", 1)]),
        (1, "copied", [("RPUSH", "src", "v"), ("COPY", "src", "copied", "DB", 1)]),
        (1, "swapped", [("RPUSH", "swapped", "v"), ("SWAPDB", 0, 1)]),
    ]
    for db, key, commands in cases:
        r.flushall()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(_request("SELECT", db) + _request("BLPOP", key, 0))
            _read_exactly(sock, b"+OK\r\n")
            _blocked(r, 1)
            for command in commands:
                r.execute_command(*command)
            _read_exactly(sock, b"*2\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(key), key.encode()))
        _blocked(r, 0)


def test_keys_filled_without_a_signal_wake_waiters(shared_server, reference_redis):
    for port in (reference_redis.port, shared_server.port):
        _fill_waited_keys(port)


def _exchange(port: int, payload: bytes) -> bytes:
    """Send ``payload`` and read until the server goes quiet or closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload + _request("PING", "END"))
        data = b""
        while not data.endswith((b"$3\r\nEND\r\n", b"bulk length\r\n", b"multibulk length\r\n")):
            chunk = sock.recv(65536)
            if not chunk:
                return data + b"<closed>"
            data += chunk
        return data


@pytest.mark.parametrize("parser", ["python", pytest.param("hiredis", marks=pytest.mark.skipif(
    importlib.util.find_spec("hiredis") is None, reason="hiredis is not installed (PyPy)"))])
def test_a_pipelined_auth_lifts_the_unauthenticated_limits_for_what_follows(tmp_path, parser):
    """CVE-2021-32675's limits (10 arguments, 16 KB bulks before AUTH) apply to
    each request when Redis reaches it, after the ones before it ran: AUTH
    pipelined with a larger request in one write works on Redis, and used to
    close the connection here. A failed AUTH still closes it."""
    if not REDIS_SERVER:
        pytest.skip("redis-server is not installed")
    (tmp_path / "ours").mkdir()
    (tmp_path / "redis").mkdir()
    ours = distcache_server(tmp_path / "ours", "--requirepass", "pw", "--parser", parser)
    theirs = redis_server(tmp_path / "redis", "--requirepass", "pw")
    with ours, theirs:
        for payload in (
                _request("AUTH", "pw") + _request("ECHO", *["a"] * 10),
                _request("AUTH", "pw") + _request("ECHO", "y" * 20000),
                _request("AUTH", "pw") + _request("RPUSH", "l", *["a"] * 20)
                + _request("LLEN", "l"),
                _request("AUTH", "bad") + _request("ECHO", *["a"] * 10),
                _request("AUTH", "bad") + _request("ECHO", "y" * 20000)):
            assert _exchange(ours.port, payload) == _exchange(theirs.port, payload), payload[:40]
