"""Keyspace events of the generic key commands, compared with redis-server."""
from __future__ import annotations

import time

import pytest

from events_helpers import events_of

CASES = [
    [("SET", "a", "1"), ("SET", "b", "2"), ("DEL", "a", "b", "c"), ("UNLINK", "a")],
    [("SET", "a", "1"), ("UNLINK", "a", "z")],
    [("SET", "a", "1"), ("EXPIRE", "a", "100"), ("PEXPIRE", "a", "200000", "GT"),
     ("EXPIREAT", "a", "99999999999"), ("PEXPIREAT", "a", "99999999999999", "NX"),
     ("PERSIST", "a"), ("PERSIST", "a"), ("EXPIRE", "nokey", "10")],
    [("SET", "a", "1"), ("EXPIRE", "a", "-1"), ("SET", "b", "1"), ("PEXPIREAT", "b", "1")],
    [("SET", "a", "1"), ("RENAME", "a", "b"), ("SET", "c", "x"), ("RENAME", "b", "c"),
     ("RENAME", "c", "c"), ("RENAME", "nokey", "x")],
    [("SET", "a", "1"), ("SET", "b", "2"), ("RENAMENX", "a", "b"), ("RENAMENX", "a", "c")],
    [("SET", "a", "1"), ("EXPIRE", "a", "100"), ("RENAME", "a", "b")],
    [("SET", "a", "1"), ("MOVE", "a", "1"), ("SET", "a", "1"), ("MOVE", "a", "1"),
     ("SELECT", "1"), ("DEL", "a"), ("SELECT", "0")],
    [("SET", "a", "1"), ("COPY", "a", "b"), ("COPY", "a", "b"), ("COPY", "a", "b", "REPLACE"),
     ("COPY", "a", "c", "DB", "2"), ("SELECT", "2"), ("DEL", "c"), ("SELECT", "0")],
    [("SET", "a", "1"), ("EXISTS", "a"), ("TYPE", "a"), ("TTL", "a"), ("TOUCH", "a"),
     ("KEYS", "*"), ("DBSIZE",), ("FLUSHDB",), ("SET", "a", "1"), ("SWAPDB", "0", "1"),
     ("FLUSHALL",)],
]


@pytest.mark.parametrize("commands", CASES, ids=lambda c: " ".join(c[-1][:1] + c[1][:1]))
def test_key_events(pair, commands):
    pair.same_events(*commands)


def _expire_by_polling(side, key: str) -> None:
    deadline = time.monotonic() + 10
    while side.client.get(key) is not None:  # a GET past the deadline expires it lazily
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_expired_event(pair):
    seqs = []
    for side in pair.sides:
        side.client.flushall()
        side.run([])
        side.client.set("k", "v", px=50)
        _expire_by_polling(side, "k")
        seqs.append(side.run([])[1])
    assert seqs[0] == seqs[1]
    assert events_of(seqs[0]) == [b"new", b"set", b"expire", b"expired"]
