"""A plain search's cached reply (commands/geo.py ``_plain_reply``) against a real
redis-server: every kind of write to the searched key between two identical
searches must show in the next reply, byte for byte, in RESP2 and RESP3. And the
cache's key (``ZSet.stamp``) and bound, in-process."""
from __future__ import annotations

import random
import time

import pytest
from types_resp import RawClient

from distcache.server.commands import geo
from distcache.server.types import geohash
from distcache.server.types.zset import ZSet, stamp

SEARCHES = [["GEOSEARCH", "g", "FROMLONLAT", "14", "38", "BYRADIUS", "2", "km"],
            ["GEORADIUS", "g", "14", "38", "2000", "m"],
            ["GEOSEARCH", "g", "FROMLONLAT", "14", "38", "BYBOX", "3", "3", "km"],
            ["GEOSEARCH", "g", "FROMMEMBER", "centre", "BYRADIUS", "1", "km"]]


def _points(rng, prefix, n, spread=0.05):
    args = []
    for i in range(n):
        args += [repr(14 + rng.uniform(-spread, spread)), repr(38 + rng.uniform(-spread, spread)),
                 f"{prefix}{i}"]
    return args


def _writes():
    """(name, [commands]) of the writes, each run on both servers in turn."""
    rng = random.Random(3)
    other = _points(rng, "o", 400)
    return [
        ("geoadd inside", [["GEOADD", "g", "14.0001", "38.0001", "new1"]]),
        ("geoadd outside", [["GEOADD", "g", "15.5", "38.5", "far1"]]),
        ("geoadd moves a member out", [["GEOADD", "g", "15.1", "38.1", "c1"]]),
        ("geoadd moves a member in", [["GEOADD", "g", "14.0003", "37.9998", "far1"]]),
        ("zadd", [["ZADD", "g", "0", "c2"]]),
        ("zadd xx ch", [["ZADD", "g", "XX", "CH", "3471579339700058", "c3"]]),
        ("zincrby", [["ZINCRBY", "g", "1", "c4"]]),
        ("zrem", [["ZREM", "g", "c5", "c6"]]),
        ("zremrangebyscore", [["ZREMRANGEBYSCORE", "g", "-inf", "3471578000000000"]]),
        ("zremrangebyrank", [["ZREMRANGEBYRANK", "g", "100", "400"]]),
        ("zpopmin", [["ZPOPMIN", "g", "50"]]),
        ("zpopmax", [["ZPOPMAX", "g", "50"]]),
        ("multi/exec", [["MULTI"], ["GEOADD", "g", "14.0002", "38.0002", "m1"],
                        ["ZREM", "g", "c7"], ["EXEC"]]),
        ("eval", [["EVAL", "redis.call('GEOADD', KEYS[1], '14.0004', '38.0004', 'lua1') "
                   "redis.call('ZREM', KEYS[1], 'c8') return 1", "1", "g"]]),
        ("rename onto", [["GEOADD", "g2", *other], ["RENAME", "g2", "g"]]),
        ("copy replace", [["GEOADD", "g3", *_points(rng, "p", 300)],
                          ["COPY", "g3", "g", "REPLACE"]]),
        ("geosearchstore onto", [["GEOADD", "g3", "14.0005", "38.0005", "c0"],
                                 ["GEOSEARCHSTORE", "g", "g3", "FROMLONLAT", "14", "38",
                                  "BYRADIUS", "1.5", "km"]]),
        ("zunionstore onto", [["GEOADD", "g4", *_points(rng, "q", 200)],
                              ["ZUNIONSTORE", "g", "2", "g", "g4"]]),
        ("del and geoadd", [["DEL", "g"], ["GEOADD", "g", *_points(rng, "c", 500)]]),
        ("flushdb and geoadd", [["FLUSHDB"], ["GEOADD", "g", *_points(rng, "c", 700)]]),
        ("swapdb", [["SELECT", "1"], ["GEOADD", "g", *_points(rng, "c", 250)],
                    ["SELECT", "0"], ["SWAPDB", "0", "1"]]),
        ("move", [["DEL", "g"], ["SELECT", "1"], ["MOVE", "g", "0"], ["SELECT", "0"]]),
        ("unlink and geoadd", [["UNLINK", "g"], ["GEOADD", "g", *_points(rng, "c", 100)]]),
    ]


def _same(ours, theirs, when):
    for search in SEARCHES:
        expected = theirs.call(*search)
        for _ in range(2):  # a plan's first use, then its cached reply
            got = ours.call(*search)
            assert got == expected, f"after {when}: {search}: {got!r} != {expected!r}"


@pytest.mark.parametrize("protocol", [2, 3])
def test_writes_between_identical_searches_match_redis(clients, protocol):
    ours, theirs = clients(protocol)
    rng = random.Random(11)
    points = _points(rng, "c", 3000)
    for client in (ours, theirs):
        client.call("FLUSHALL")
        assert client.call("GEOADD", "g", *points, "14", "38", "centre") == (":", b"3001")
    _same(ours, theirs, "the load")
    for name, commands in _writes():
        for command in commands:
            assert ours.call(*command) == theirs.call(*command), (name, command)
        _same(ours, theirs, name)
    for client in (ours, theirs):
        client.call("SELECT", "0")


def test_expiry_between_identical_searches_matches_redis(clients):
    ours, theirs = clients(2)
    rng = random.Random(12)
    points = _points(rng, "c", 1000)
    for client in (ours, theirs):
        client.call("FLUSHALL")
        client.call("GEOADD", "g", *points, "14", "38", "centre")
    _same(ours, theirs, "the load")
    for client in (ours, theirs):
        assert client.call("PEXPIRE", "g", "50") == (":", b"1")
    deadline = time.monotonic() + 10
    while any(c.call("EXISTS", "g") != (":", b"0") for c in (ours, theirs)):
        assert time.monotonic() < deadline, "the key never expired"
        time.sleep(0.01)
    _same(ours, theirs, "expiry")
    for client in (ours, theirs):  # a new set under the key, with the old one's members
        client.call("GEOADD", "g", *points[:1500], "14", "38", "centre")
    _same(ours, theirs, "a new set")


def test_replica_sees_primary_writes(tmp_path):
    """A replica's searches after writes applied from the replication stream."""
    from servers import distcache_server
    with distcache_server(tmp_path / "p", "--repl-diskless-sync-delay", "0") as primary, \
            distcache_server(tmp_path / "r") as replica:
        p, r = RawClient(primary.port), RawClient(replica.port)
        try:
            rng = random.Random(13)
            p.call("GEOADD", "g", *_points(rng, "c", 800), "14", "38", "c0")
            assert r.call("REPLICAOF", "127.0.0.1", str(primary.port))[0] == "+"
            search = SEARCHES[0]

            def synced(want):
                deadline = time.monotonic() + 20
                while r.call(*search) != want:
                    assert time.monotonic() < deadline, "the replica never caught up"
                    time.sleep(0.02)
            want = p.call(*search)
            synced(want)
            assert r.call(*search) == want  # the replica's cached reply
            for write in (["GEOADD", "g", "14.0001", "38.0001", "new1"], ["ZREM", "g", "c0"],
                          ["ZREMRANGEBYRANK", "g", "0", "300"]):
                p.call(*write)
                want = p.call(*search)
                synced(want)
                assert r.call(*search) == want, write
        finally:
            p.close()
            r.close()


def test_every_change_of_a_set_resets_its_stamp():
    z = ZSet()
    assert z.stamp == 0
    first = stamp(z)
    assert first and stamp(z) == first
    changes = [lambda: z.add(b"a", 1.0), lambda: z.add(b"a", 2.0), lambda: z.add(b"b", 3.0),
               lambda: z.remove(b"a"), lambda: z.delete_range(0, 1)]
    seen = {first}
    for change in changes:
        stamp(z)
        change()
        assert z.stamp == 0
        new = stamp(z)
        assert new not in seen
        seen.add(new)
    z.add(b"c", 1.0)
    stamp(z)
    assert z.copy().stamp == 0  # a copy is another set
    before = stamp(z)
    z.add(b"c", 1.0)  # no change: the stamp stays
    z.remove(b"missing")
    assert z.stamp == before


def test_cached_replies_stay_within_their_bound(monkeypatch):
    rng = random.Random(14)
    z = ZSet()
    for i in range(4000):
        lon, lat = 14 + rng.uniform(-0.05, 0.05), 38 + rng.uniform(-0.05, 0.05)
        z.add(b"member-%d" % i, float(geohash.lonlat_to_score(lon, lat)))
    monkeypatch.setattr(geo, "_PLANS", {})
    monkeypatch.setattr(geo, "_REPLIES", {})
    monkeypatch.setattr(geo, "_reply_bytes", [0])
    monkeypatch.setattr(geo, "REPLY_BUDGET", 6000)
    monkeypatch.setattr(geo, "REPLY_MAX", 3000)
    sizes = []
    for radius in (100.0, 200.0, 300.0, 400.0, 500.0, 700.0, 1000.0, 2000.0):
        shape = geo._Shape()
        shape.lon, shape.lat, shape.radius = 14.0, 38.0, radius
        reply = geo._plain_reply(z, shape)
        assert geo._plain_reply(z, shape) == reply
        sizes.append(len(reply))
        held = sum(len(reply) for _, reply in geo._REPLIES.values())
        assert held == geo._reply_bytes[0] <= 6000
        assert all(len(reply) <= 3000 for _, reply in geo._REPLIES.values())
    assert max(sizes) > 6000 and min(sizes) < 3000  # both kinds were asked for
