"""Keyspace events of the list commands, blocking pops included, compared with redis-server."""
from __future__ import annotations

import threading

import pytest
import redis

CASES = [
    [("LPUSH", "l", "a", "b"), ("RPUSH", "l", "c"), ("LPUSHX", "l", "d"), ("RPUSHX", "l", "e"),
     ("LPUSHX", "none", "x"), ("RPUSHX", "none", "x")],
    [("RPUSH", "l", "a", "b", "c"), ("LPOP", "l"), ("RPOP", "l", "1"), ("LPOP", "l", "5"),
     ("LPOP", "l"), ("RPOP", "l", "0")],
    [("RPUSH", "l", "a", "b", "a"), ("LSET", "l", "0", "z"), ("LINSERT", "l", "BEFORE", "b", "y"),
     ("LINSERT", "l", "AFTER", "nope", "y"), ("LREM", "l", "0", "a"), ("LREM", "l", "0", "q"),
     ("LREM", "l", "0", "z"), ("LREM", "l", "-1", "y"), ("LREM", "l", "1", "b")],
    [("RPUSH", "l", "a", "b", "c"), ("LTRIM", "l", "0", "1"), ("LTRIM", "l", "0", "-1"),
     ("LTRIM", "l", "5", "10"), ("LTRIM", "l", "0", "1")],
    [("RPUSH", "s", "a", "b"), ("LMOVE", "s", "d", "LEFT", "RIGHT"), ("RPOPLPUSH", "s", "d"),
     ("RPOPLPUSH", "s", "d"), ("LMOVE", "d", "d", "LEFT", "LEFT")],
    [("RPUSH", "a", "1", "2"), ("LMPOP", "2", "x", "a", "LEFT", "COUNT", "1"),
     ("LMPOP", "1", "a", "RIGHT", "COUNT", "5"), ("LMPOP", "1", "a", "RIGHT")],
    [("RPUSH", "a", "1", "2"), ("BLPOP", "x", "a", "0"), ("BRPOP", "a", "0"),
     ("BLMOVE", "a", "b", "LEFT", "LEFT", "0.01"), ("RPUSH", "a", "9"),
     ("BRPOPLPUSH", "a", "b", "0"), ("BLMPOP", "0", "1", "b", "LEFT", "COUNT", "9")],
    [("LLEN", "l"), ("LRANGE", "l", "0", "-1"), ("LINDEX", "l", "0"), ("LPOS", "l", "a")],
]


@pytest.mark.parametrize("commands", CASES, ids=lambda c: c[-1][0])
def test_list_events(pair, commands):
    pair.same_events(*commands)


@pytest.mark.parametrize("blocking", [("BLPOP", "q", "0"), ("BLMOVE", "q", "d", "RIGHT", "LEFT", "0"),
                                      ("BLMPOP", "0", "1", "q", "LEFT", "COUNT", "2")])
def test_events_of_a_served_blocked_pop(pair, blocking):
    seqs = []
    for side in pair.sides:
        side.client.flushall()
        side.run([])
        port = side.client.connection_pool.connection_kwargs["port"]
        waiter = redis.Redis(port=port, socket_timeout=10)
        done = threading.Thread(target=waiter.execute_command, args=blocking)
        done.start()
        while not any(b"cmd=" + blocking[0].lower().encode() in line.encode()
                      for line in side.client.execute_command("CLIENT", "LIST").decode().splitlines()
                      if "flags=b" in line):
            pass  # poll until the waiter is blocked (the socket read bounds each turn)
        side.client.rpush("q", "a")
        done.join(10)
        waiter.close()
        seqs.append(side.run([])[1])
    assert seqs[0] == seqs[1]
