"""Keyspace events of bitmaps, HyperLogLogs, SORT STORE, RESTORE, MIGRATE and scripts,
compared with redis-server."""
from __future__ import annotations

import pytest

CASES = [
    [("SETBIT", "b", "7", "1"), ("SETBIT", "b", "7", "1"), ("SETBIT", "b", "100", "0"),
     ("GETBIT", "b", "7"), ("BITCOUNT", "b")],
    [("SET", "a", "x"), ("SET", "b", "y"), ("BITOP", "AND", "d", "a", "b"),
     ("BITOP", "NOT", "d", "a"), ("BITOP", "OR", "d", "nokey"), ("BITOP", "OR", "d", "nokey")],
    [("BITFIELD", "f", "SET", "u8", "0", "5"), ("BITFIELD", "f", "SET", "u8", "0", "5"),
     ("BITFIELD", "f", "GET", "u8", "0"), ("BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9"),
     ("BITFIELD", "f", "INCRBY", "u8", "8", "1"), ("BITFIELD_RO", "f", "GET", "u8", "0")],
    [("PFADD", "h", "a", "b"), ("PFADD", "h", "a"), ("PFADD", "e"), ("PFADD", "e"),
     ("PFCOUNT", "h"), ("PFMERGE", "m", "h", "e"), ("PFMERGE", "m")],
    [("RPUSH", "l", "3", "1", "2"), ("SORT", "l", "STORE", "d"), ("SORT", "nokey", "STORE", "d"),
     ("SORT", "nokey", "STORE", "d"), ("SORT", "l"), ("SORT_RO", "l")],
    [("EVAL", "redis.call('SET', KEYS[1], 'v'); redis.call('LPUSH', KEYS[2], 'a'); "
              "return redis.call('DEL', KEYS[1], KEYS[2])", "2", "k", "l")],
]


@pytest.mark.parametrize("commands", CASES, ids=lambda c: c[-1][0])
def test_more_events(pair, commands):
    pair.same_events(*commands)


def test_restore_events(pair):
    dumps = []
    for side in pair.sides:
        side.client.flushall()
        side.client.rpush("src", "a", "b")
        dumps.append(side.client.dump("src"))
    assert dumps[0] == dumps[1]
    payload = dumps[0]
    pair.same_events(("RESTORE", "k", "0", payload), ("RESTORE", "k", "0", payload),
                     ("RESTORE", "k", "0", payload, "REPLACE"),
                     ("RESTORE", "t", "100000", payload),
                     ("RESTORE", "k", "1", payload, "REPLACE", "ABSTTL"),
                     ("RESTORE", "k", "1", payload, "REPLACE", "ABSTTL"))


def test_migrate_events(pair, tmp_path):
    # Each side migrates to a second server of its own kind; the source's events compared.
    from servers import distcache_server, redis_server
    with distcache_server(tmp_path / "a") as ours, redis_server(tmp_path) as theirs:
        targets = (ours.port, theirs.port)
        seqs = []
        for side, port in zip(pair.sides, targets):
            side.client.flushall()
            side.run([("SET", "a", "1"), ("SET", "b", "2")])
            seqs.append(side.run([
                ("MIGRATE", "127.0.0.1", str(port), "", "0", "5000", "KEYS", "a", "b"),
                ("SET", "c", "3"),
                ("MIGRATE", "127.0.0.1", str(port), "c", "0", "5000", "COPY")]))
        assert seqs[0] == seqs[1]
