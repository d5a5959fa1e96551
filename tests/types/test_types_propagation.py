"""What the append-only log is told: deterministic rewrites of random and blocking commands.

An in-process server (in a thread) lets the test subscribe to the keyspace's
propagators directly.
"""
from __future__ import annotations

import time

import pytest

from distcache.server.app import CacheServer
from types_resp import RawClient


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    directory = tmp_path_factory.mktemp("propagation")
    server = CacheServer("127.0.0.1", 0, save="", appendonly="no", dir=str(directory))
    log = []
    server.keyspace.propagators.append(lambda db, cmds: log.extend(cmds))
    with server:
        yield server, log


@pytest.fixture
def logged(embedded):
    server, log = embedded
    client = RawClient(server.port)
    client.call("FLUSHALL")
    log.clear()
    yield client, log, server
    client.close()


def wait_for(log, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while len(log) < count:
        assert time.monotonic() < deadline, f"only {log!r} propagated"
        time.sleep(0.005)


def test_spop_is_logged_as_srem_or_del(logged):
    client, log, _ = logged
    client.call("SADD", "s", "a", "b", "c")
    log.clear()
    popped = client.call("SPOP", "s")[1]
    assert log == [[b"SREM", b"s", popped]]
    log.clear()
    client.call("SPOP", "s", "10")
    assert log == [[b"DEL", b"s"]]


def test_hincrbyfloat_is_logged_as_hset(logged):
    client, log, _ = logged
    client.call("HINCRBYFLOAT", "h", "f", "1.5")
    assert log == [[b"HSET", b"h", b"f", b"1.5"]]


def test_immediate_blocking_pops_are_logged_as_plain_pops(logged):
    client, log, _ = logged
    client.call("RPUSH", "l", "a", "b", "c")
    client.call("ZADD", "z", "1", "m", "2", "n")
    log.clear()
    client.call("BLPOP", "l", "0")
    client.call("BLMOVE", "l", "d", "RIGHT", "LEFT", "0")
    client.call("BLMPOP", "0", "1", "l", "LEFT", "COUNT", "3")
    client.call("BZPOPMAX", "z", "0")
    client.call("ZMPOP", "1", "z", "MIN", "COUNT", "2")
    assert log == [[b"LPOP", b"l"], [b"LMOVE", b"l", b"d", b"RIGHT", b"LEFT"],
                   [b"LPOP", b"l", b"1"], [b"ZPOPMAX", b"z"], [b"ZPOPMIN", b"z", b"1"]]


def test_woken_pop_is_logged_after_the_push(logged):
    client, log, server = logged
    waiter = RawClient(server.port)
    try:
        waiter.send("BRPOP", "q", "0")
        deadline = time.monotonic() + 10
        while server.blocked_clients != 1:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        client.call("LPUSH", "q", "x", "y")
        assert waiter.read() == ("*", [("$", b"q"), ("$", b"x")])
        wait_for(log, 2)
        assert log == [[b"LPUSH", b"q", b"x", b"y"], [b"RPOP", b"q"]]
    finally:
        waiter.close()


def test_failed_and_no_op_writes_are_not_logged(logged):
    client, log, _ = logged
    client.call("SET", "str", "v")
    log.clear()
    client.call("LPUSH", "str", "x")  # WRONGTYPE
    client.call("SREM", "nothing", "x")
    client.call("ZADD", "z", "XX", "1", "a")
    client.call("LPOP", "missing")
    assert log == []
