"""Keyspace events of the string commands, compared with redis-server."""
from __future__ import annotations

import pytest

CASES = [
    [("SET", "k", "v")],
    [("SET", "k", "v"), ("SET", "k", "w")],
    [("SET", "k", "v", "EX", "100")],
    [("SET", "k", "v", "NX"), ("SET", "k", "v", "NX"), ("SET", "k", "v", "XX", "GET")],
    [("SET", "k", "v", "KEEPTTL"), ("SET", "k", "v", "PXAT", "99999999999999")],
    [("SETNX", "k", "v"), ("SETNX", "k", "v")],
    [("SETEX", "k", "10", "v"), ("PSETEX", "k", "1000", "v")],
    [("GETSET", "k", "v"), ("GETDEL", "k"), ("GETDEL", "k")],
    [("SET", "k", "v"), ("GETEX", "k", "EX", "100"), ("GETEX", "k", "PERSIST"),
     ("GETEX", "k", "PERSIST"), ("GETEX", "k", "PXAT", "1"), ("GETEX", "nokey", "EX", "5")],
    [("MSET", "a", "1", "b", "2"), ("MSETNX", "c", "3", "a", "1"), ("MSETNX", "c", "3", "d", "4")],
    [("APPEND", "k", "ab"), ("APPEND", "k", "cd"), ("SETRANGE", "k", "1", "zz"),
     ("SETRANGE", "x", "0", ""), ("SETRANGE", "y", "2", "q")],
    [("INCR", "n"), ("DECR", "n"), ("INCRBY", "n", "5"), ("DECRBY", "n", "2"),
     ("INCRBYFLOAT", "n", "1.5"), ("INCR", "n")],
    [("GET", "k"), ("MGET", "a", "b"), ("STRLEN", "k"), ("GETRANGE", "k", "0", "1")],
]


@pytest.mark.parametrize("commands", CASES, ids=lambda c: " ".join(c[0][:2]))
def test_string_events(pair, commands):
    pair.same_events(*commands)


def test_pipelined_sets_and_incrs_notify_each(pair):
    # The run handlers stand aside while events are on: one event per command.
    for side in pair.sides:
        side.client.flushall()
    msgs = []
    for side in pair.sides:
        pipe = side.client.pipeline(transaction=False)
        for i in range(5):
            pipe.set(f"k{i}", "v")
            pipe.incr("n")
        pipe.execute()
        msgs.append(side.run([])[1])
    assert msgs[0] == msgs[1]
    assert len(msgs[0]) == 2 * (5 * 2 + 6)  # set x5, incrby x5, new x6; space + event
