"""Keyspace events of the sorted set and geo commands, compared with redis-server."""
from __future__ import annotations

import pytest

CASES = [
    [("ZADD", "z", "1", "a"), ("ZADD", "z", "1", "a"), ("ZADD", "z", "2", "a"),
     ("ZADD", "z", "NX", "5", "a"), ("ZADD", "z", "XX", "CH", "5", "a", "1", "b"),
     ("ZADD", "z", "INCR", "2", "a"), ("ZINCRBY", "z", "1", "q"), ("ZADD", "y", "XX", "1", "a"),
     ("ZADD", "z", "GT", "1", "a")],
    [("ZADD", "z", "1", "a", "2", "b"), ("ZREM", "z", "x"), ("ZREM", "z", "a"), ("ZREM", "z", "b")],
    [("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"), ("ZREMRANGEBYRANK", "z", "0", "0"),
     ("ZREMRANGEBYSCORE", "z", "2", "2"), ("ZREMRANGEBYSCORE", "z", "9", "10"),
     ("ZREMRANGEBYLEX", "z", "[c", "[c"), ("ZREMRANGEBYRANK", "z", "0", "-1")],
    [("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("ZPOPMIN", "z"), ("ZPOPMAX", "z", "1"),
     ("ZPOPMIN", "z", "0"), ("ZPOPMAX", "z", "9"), ("ZPOPMIN", "z")],
    [("ZADD", "z", "1", "a", "2", "b"), ("BZPOPMIN", "z", "0"), ("BZPOPMAX", "z", "0"),
     ("ZADD", "z", "1", "a"), ("ZMPOP", "1", "z", "MIN"), ("ZADD", "z", "1", "a", "2", "b"),
     ("BZMPOP", "0", "1", "z", "MAX", "COUNT", "5")],
    [("ZADD", "a", "1", "x", "2", "y"), ("ZADD", "b", "3", "y"), ("ZUNIONSTORE", "d", "2", "a", "b"),
     ("ZINTERSTORE", "d", "2", "a", "b"), ("ZDIFFSTORE", "d", "2", "a", "b"),
     ("ZINTERSTORE", "d", "2", "a", "nope"), ("ZINTERSTORE", "d", "2", "a", "nope"),
     ("ZRANGESTORE", "r", "a", "0", "-1"), ("ZRANGESTORE", "r", "a", "5", "6")],
    [("GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
     ("GEOADD", "g", "XX", "13.361389", "38.115556", "Palermo"),
     ("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"),
     ("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km"),
     ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "e"),
     ("GEORADIUS", "g", "15", "37", "200", "km", "STOREDIST", "e"),
     ("GEOSEARCHSTORE", "e", "nokey", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km")],
    [("ZADD", "z", "1", "a"), ("ZSCORE", "z", "a"), ("ZRANGE", "z", "0", "-1"), ("ZCARD", "z")],
]


@pytest.mark.parametrize("commands", CASES, ids=lambda c: c[-1][0])
def test_zset_events(pair, commands):
    pair.same_events(*commands)


def test_pipelined_geoadds_announce_each(pair):
    """Plain GEOADDs in one pipeline (a run for GEOADD's run handler, which steps
    aside while events are on) announce every change, as Redis."""
    commands = [("GEOADD", "g", "13.5", "38.1", "a"), ("GEOADD", "g", "13.6", "38.2", "b"),
                ("GEOADD", "g", "13.6", "38.2", "b"), ("GEOADD", "g", "14", "38", "a")]
    results = []
    for side in pair.sides:
        side.client.flushall()
        side.run([("GEOADD", "g", "1", "2", "x")])
        pipe = side.client.pipeline(transaction=False)
        for cmd in commands:
            pipe.execute_command(*cmd)
        replies = pipe.execute()
        results.append((replies, side.run([])[1]))
    assert results[0] == results[1]
    assert len(results[0][1]) == 6  # three changes: keyspace and keyevent each
