"""Keyspace events of the stream commands (class ``t``), compared with redis-server;
CLIENT TRACKING invalidations and WATCH for stream writes."""
from __future__ import annotations

import threading
import time

import pytest
import redis

from test_tracking import Conn

_GROUP = [("XADD", "s", "1-1", "f", "v"), ("XADD", "s", "2-1", "f", "v"),
          ("XGROUP", "CREATE", "s", "g", "0")]

CASES = {
    "xadd": [("XADD", "s", "1-1", "f", "v"), ("XADD", "s", "2", "f", "v"),
             ("XADD", "s", "1-1", "f", "v"), ("XADD", "s", "NOMKSTREAM", "5-*", "f", "v"),
             ("XADD", "none", "NOMKSTREAM", "*", "f", "v"), ("XADD", "s", "0-0", "f", "v"),
             ("XADD", "k2", "MAXLEN", "0", "3-1", "f", "v"), ("EXISTS", "k2")],
    "xadd_trims": [("XADD", "s", "MAXLEN", "2", "1-1", "f", "v"),
                   ("XADD", "s", "MAXLEN", "2", "2-1", "f", "v"),
                   ("XADD", "s", "MAXLEN", "2", "3-1", "f", "v"),
                   ("XADD", "s", "MINID", "3", "4-1", "f", "v"),
                   ("XADD", "s", "MAXLEN", "~", "1", "5-1", "f", "v"),
                   ("XADD", "s", "MINID", "=", "9", "LIMIT", "0", "6-1", "f", "v")],
    "xtrim": [("XADD", "s", "1-1", "f", "v"), ("XADD", "s", "2-1", "f", "v"),
              ("XTRIM", "s", "MAXLEN", "5"), ("XTRIM", "s", "MINID", "2"),
              ("XTRIM", "s", "MAXLEN", "0"), ("XTRIM", "s", "MAXLEN", "0"),
              ("XTRIM", "none", "MAXLEN", "0"), ("XTRIM", "s", "MAXLEN", "~", "0"),
              ("EXISTS", "s")],
    "xdel": [("XADD", "s", "1-1", "f", "v"), ("XDEL", "s", "9-9"), ("XDEL", "s", "1-1", "2-2"),
             ("XDEL", "s", "1-1"), ("XDEL", "none", "1-1"), ("EXISTS", "s")],
    "xsetid": [("XSETID", "none", "1-1"), ("XADD", "s", "5-1", "f", "v"),
               ("XSETID", "s", "1-1"), ("XSETID", "s", "9-9"),
               ("XSETID", "s", "10-0", "ENTRIESADDED", "3", "MAXDELETEDID", "2-2")],
    "xgroup": [("XGROUP", "CREATE", "s", "g", "$"), ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
               ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"), ("XGROUP", "CREATE", "s", "h", "0"),
               ("XGROUP", "SETID", "s", "g", "0"), ("XGROUP", "SETID", "s", "nope", "0"),
               ("XGROUP", "SETID", "s", "g", "$", "ENTRIESREAD", "0"),
               ("XGROUP", "CREATECONSUMER", "s", "g", "c"), ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
               ("XGROUP", "DELCONSUMER", "s", "g", "c"), ("XGROUP", "DELCONSUMER", "s", "g", "c"),
               ("XGROUP", "DESTROY", "s", "g"), ("XGROUP", "DESTROY", "s", "g"),
               ("XGROUP", "CREATECONSUMER", "none", "g", "c")],
    "xreadgroup": _GROUP + [
        ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c3", "STREAMS", "s", "0"),
        ("XREADGROUP", "GROUP", "g", "c4", "NOACK", "STREAMS", "s", "0"),
        ("XGROUP", "SETID", "s", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "c5", "NOACK", "STREAMS", "s", ">"),
        ("XACK", "s", "g", "1-1", "2-1"), ("XGROUP", "DELCONSUMER", "s", "g", "c1"),
        ("XADD", "t", "1-1", "f", "v"), ("XGROUP", "CREATE", "t", "g", "0"),
        ("XADD", "s", "3-1", "f", "v"),
        ("XREADGROUP", "GROUP", "g", "both", "STREAMS", "s", "t", ">", ">")],
    "xclaim": _GROUP + [
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
        ("XCLAIM", "s", "g", "c2", "0", "9-9"), ("XCLAIM", "s", "g", "c2", "0", "1-1"),
        ("XCLAIM", "s", "g", "c3", "0", "5-5", "FORCE"), ("XCLAIM", "s", "g", "c2", "0", "2-1"),
        ("XDEL", "s", "2-1"), ("XCLAIM", "s", "g", "c4", "0", "2-1"),
        ("XAUTOCLAIM", "s", "g", "c5", "999999", "0"), ("XAUTOCLAIM", "s", "g", "c6", "0", "0"),
        ("XAUTOCLAIM", "s", "g", "c6", "0", "0", "JUSTID")],
    "reads_and_generic": _GROUP + [
        ("XRANGE", "s", "-", "+"), ("XREVRANGE", "s", "+", "-"), ("XLEN", "s"),
        ("XREAD", "STREAMS", "s", "0"), ("XINFO", "STREAM", "s"), ("XPENDING", "s", "g"),
        ("EXPIRE", "s", "100"), ("RENAME", "s", "t"), ("COPY", "t", "u"), ("DEL", "t", "u")],
}


@pytest.fixture(autouse=True)
def raw_stream_replies(pair):
    """Compare the stream commands' replies as sent, without redis-py's parsing."""
    for side in pair.sides:
        callbacks = side.client.response_callbacks
        for name in [n for n in callbacks if str(n).upper().startswith("X")]:
            del callbacks[name]


@pytest.mark.parametrize("name", list(CASES))
def test_stream_events(pair, name):
    pair.same_events(*CASES[name])


def test_stream_events_in_multi_and_scripts(pair):
    pair.same_events(("MULTI",), ("XADD", "s", "1-1", "f", "v"), ("XGROUP", "CREATE", "s", "g", "0"),
                     ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"), ("EXEC",))
    pair.same_events(("EVAL", "redis.call('XADD', KEYS[1], '1-1', 'f', 'v') "
                      "return redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)", "1", "s"))


def test_only_stream_class(pair):
    try:
        pair.config("Et")
        msgs = pair.same_events(("XADD", "s", "MAXLEN", "0", "1-1", "f", "v"),
                                ("XGROUP", "CREATE", "t", "g", "$", "MKSTREAM"), ("DEL", "s"))
        assert [ch for ch, _ in msgs] == [b"__keyevent@0__:xadd", b"__keyevent@0__:xtrim",
                                          b"__keyevent@0__:xgroup-create"]
    finally:
        pair.config("KEAn")


def _wait_blocked(client: redis.Redis, command: str) -> None:
    deadline = time.monotonic() + 10
    while not any(f"cmd={command}" in line and "flags=b" in line
                  for line in client.execute_command("CLIENT", "LIST").decode().splitlines()):
        assert time.monotonic() < deadline, "the waiter never blocked"


@pytest.mark.parametrize("blocking", [
    ("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
    ("XREADGROUP", "GROUP", "g", "new", "BLOCK", "0", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g", "new", "NOACK", "BLOCK", "0", "STREAMS", "s", ">")])
def test_events_of_a_served_blocked_read(pair, blocking):
    """A blocked XREADGROUP creates its consumer when it is served, with the event."""
    seqs = []
    for side in pair.sides:
        side.client.flushall()
        side.run([("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")])
        port = side.client.connection_pool.connection_kwargs["port"]
        waiter = redis.Redis(port=port, socket_timeout=10)
        result = []
        done = threading.Thread(target=lambda: result.append(waiter.execute_command(*blocking)))
        done.start()
        _wait_blocked(side.client, blocking[0].lower())
        replies, msgs = side.run([("XADD", "s", "1-1", "f", "v")])
        done.join(10)
        waiter.close()
        assert result, "the blocked read was not served"
        seqs.append(side.run([])[1] + msgs)
    assert seqs[0] == seqs[1]


#: Stream writes, each run by one connection while another tracks the stream (XLEN).
TRACKED_WRITES = [
    "XADD s 1-1 f v", "XADD s 2-1 f v", "XGROUP CREATE s g 0", "XGROUP CREATECONSUMER s g c0",
    "XREADGROUP GROUP g c1 COUNT 1 STREAMS s >", "XREADGROUP GROUP g c1 STREAMS s 0",
    "XREADGROUP GROUP g c1 STREAMS s >", "XACK s g 1-1", "XACK s g 1-1",
    "XCLAIM s g c2 0 2-1", "XCLAIM s g c2 0 9-1", "XAUTOCLAIM s g c3 0 0",
    "XGROUP SETID s g 0", "XGROUP DELCONSUMER s g c0", "XGROUP DELCONSUMER s g zz",
    "XDEL s 1-1", "XDEL s 1-1", "XTRIM s MAXLEN 5", "XTRIM s MAXLEN 0", "XSETID s 9-9",
    "XGROUP DESTROY s g", "XGROUP DESTROY s g", "XGROUP CREATE s g $",
    "XADD s MAXLEN 0 * a b", "DEL s", "XGROUP CREATE s g $ MKSTREAM",
]


def _invalidations(port: int) -> list:
    a, b = Conn(port), Conn(port)
    try:
        a.talk("FLUSHALL", "HELLO 3", "CLIENT TRACKING ON")
        seen = []
        for write in TRACKED_WRITES:
            a.talk("XLEN s")
            b.talk(write)
            seen.append((write, a.talk()))  # the push arrives before a PING's reply
        return seen
    finally:
        a.sock.close()
        b.sock.close()


def test_tracking_invalidations_of_stream_writes(pair):
    """As Redis 7.0.15: XADD, XDEL, a trim that removed entries and a stream created
    by XGROUP CREATE MKSTREAM invalidate; XSETID and the group commands do not."""
    ours, theirs = (_invalidations(side.client.connection_pool.connection_kwargs["port"])
                    for side in pair.sides)
    assert ours == theirs
    assert [w for w, data in ours if b"invalidate" in data] == [
        "XADD s 1-1 f v", "XADD s 2-1 f v", "XDEL s 1-1", "XTRIM s MAXLEN 0",
        "XADD s MAXLEN 0 * a b", "DEL s", "XGROUP CREATE s g $ MKSTREAM"]


@pytest.mark.parametrize("write", ["XGROUP CREATECONSUMER s g c9", "XSETID s 99-9",
                                   "XACK s g 1-1", "XGROUP SETID s g 0", "XADD s * f v"])
def test_watch_and_stream_writes(pair, write):
    """WATCH hangs on the same signal: a group command does not abort the EXEC."""
    results = []
    for side in pair.sides:
        r = side.client
        r.flushall()
        r.xadd("s", {"a": "b"}, id="1-1")
        r.xgroup_create("s", "g", "0")
        r.xreadgroup("g", "c1", {"s": ">"})
        other = redis.Redis(port=r.connection_pool.connection_kwargs["port"])
        with r.pipeline(transaction=True) as p:
            p.watch("s")
            other.execute_command(*write.split())
            p.multi()
            p.ping()
            try:
                results.append(p.execute())
            except redis.WatchError:
                results.append("aborted")
        other.close()
    assert results[0] == results[1]


def test_plain_xadd_events(pair):
    """XADD key * field value (its own fast path): ids differ, events do not."""
    seqs = []
    for side in pair.sides:
        side.client.flushall()
        side.run([])
        seqs.append(side.run([("XADD", "s", "*", "f", "v"), ("XADD", "s", "*", "f", "v")])[1])
    assert seqs[0] == seqs[1]
    assert [ch for ch, _ in seqs[0] if ch.startswith(b"__keyevent")] == [
        b"__keyevent@0__:new", b"__keyevent@0__:xadd", b"__keyevent@0__:xadd"]
