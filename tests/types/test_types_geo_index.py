"""Plain radius searches from new centres (server/types/geoindex.py) against a real
redis-server: many seeded random centres and radii over a dense set, with writes
between searches (the index is dropped by the set's stamp), in RESP2 and RESP3;
and, in-process, the index's replies against the general scan's and its bounds."""
from __future__ import annotations

import random

import pytest

from distcache.server.commands import geo
from distcache.server.types import geohash, geoindex
from distcache.server.types.zset import ZSet, stamp

RADII = [("30", "m"), ("400", "m"), ("1", "km"), ("2", "km"), ("2", "km"), ("3500", "ft"),
         ("5", "km"), ("12", "km"), ("2.5", "mi"), ("60", "km")]


def _dense(rng, n, prefix="m"):
    """GEOADD arguments: ``n`` points in a 0.3 x 0.3 degree square around (14, 38)."""
    args = []
    for i in range(n):
        args += [repr(14 + rng.uniform(-0.15, 0.15)), repr(38 + rng.uniform(-0.15, 0.15)),
                 f"{prefix}{i}"]
    return args


def _write(rng, step):
    """One write to the searched set (both servers get the same)."""
    kind = step % 5
    if kind == 0:
        return ["GEOADD", "g", *_dense(rng, 3, f"w{step}-")]
    if kind == 1:  # a member moved
        return ["GEOADD", "g", repr(14 + rng.uniform(-0.15, 0.15)),
                repr(38 + rng.uniform(-0.15, 0.15)), f"m{rng.randrange(6000)}"]
    if kind == 2:
        return ["ZREM", "g", *(f"m{rng.randrange(6000)}" for _ in range(5))]
    if kind == 3:  # a score that is not a whole geohash, inside the square's cells
        return ["ZADD", "g", repr(3471579339700058 + rng.random() * 1e9 + 0.5), f"z{step}"]
    return ["ZINCRBY", "g", "1", f"m{rng.randrange(6000)}"]


@pytest.mark.parametrize("protocol", [2, 3])
def test_new_centres_with_writes_between_match_redis(clients, protocol):
    rng = random.Random(70 + protocol)
    ours, theirs = clients(protocol)
    for client in (ours, theirs):
        client.call("FLUSHALL")
    args = _dense(rng, 6000)
    for start in range(0, len(args), 3000):
        assert ours.call("GEOADD", "g", *args[start:start + 3000]) == \
            theirs.call("GEOADD", "g", *args[start:start + 3000])
    for step in range(160):
        lon, lat = 14 + rng.uniform(-0.2, 0.2), 38 + rng.uniform(-0.2, 0.2)
        radius, unit = rng.choice(RADII)
        if rng.random() < 0.25:
            query = ["GEORADIUS", "g", repr(lon), repr(lat), radius, unit]
        else:
            query = ["GEOSEARCH", "g", "FROMLONLAT", repr(lon), repr(lat), "BYRADIUS", radius,
                     unit]
        expected = theirs.call(*query)
        assert ours.call(*query) == expected, query
        if step % 4 == 3:  # runs of searches on one state of the set, then a write
            write = _write(rng, step)
            assert ours.call(*write) == theirs.call(*write)


def _zset(rng, n):
    z = ZSet()
    for i in range(n):
        lon, lat = 14 + rng.uniform(-0.3, 0.3), 38 + rng.uniform(-0.3, 0.3)
        z.add(b"p%d" % i, float(geohash.lonlat_to_score(lon, lat)))
    return z


def _indexed(z, shape):
    """geo._index_reply, the set marked as searched before (the index's condition)."""
    st = z.stamp or stamp(z)
    geoindex.see(st)
    return geo._index_reply(z, st, shape, shape.radius * shape.unit)


def _general(z, shape):
    geo._PLANS.clear()
    return bytes(geo._members_reply(geo._find(z, shape, 0, 0, True, geo._plan(shape))))


def test_index_replies_are_the_general_scans():
    """Byte for byte the general path's replies (themselves checked against Redis), from
    random centres and radii; most searches are answered by the index."""
    rng = random.Random(5)
    z = _zset(rng, 20000)
    answered = 0
    for _ in range(400):
        shape = geo._Shape()
        shape.lon, shape.lat = 14 + rng.uniform(-0.35, 0.35), 38 + rng.uniform(-0.35, 0.35)
        shape.radius, shape.unit = rng.choice([0.01, 0.2, 0.9, 2.0, 3.3, 8.0, 25.0]), 1000.0
        reply = _indexed(z, shape)
        if reply is not None:
            answered += 1
            assert bytes(reply) == _general(z, shape)
    assert answered > 300


def test_index_bounds(monkeypatch):
    """Crowded cells are not indexed; the points held stay within POINTS_MAX; a write
    (a new stamp) means the next search reads the set again."""
    rng = random.Random(6)
    z = _zset(rng, 20000)
    monkeypatch.setattr(geoindex, "_INDEX", {})
    monkeypatch.setattr(geoindex, "_held", [0])
    monkeypatch.setattr(geoindex, "POINTS_MAX", 3000)
    shape = geo._Shape()
    shape.lon, shape.lat, shape.radius, shape.unit = 14.0, 38.0, 2.0, 1000.0
    for _ in range(50):
        shape.lon, shape.lat = 14 + rng.uniform(-0.3, 0.3), 38 + rng.uniform(-0.3, 0.3)
        reply = _indexed(z, shape)
        assert reply is not None and bytes(reply) == _general(z, shape)
        assert geoindex._held[0] <= 3000
        assert sum(len(s[0]) for cell in geoindex._INDEX.values() for s in cell if s) \
            == geoindex._held[0]
    before = bytes(_indexed(z, shape))
    first = before.split(b"\r\n")[2]
    z.remove(first)
    assert geo._index_reply(z, z.stamp or stamp(z), shape, 2000.0) is None  # a new stamp
    after = bytes(_indexed(z, shape))
    assert first not in after.split(b"\r\n") and after == _general(z, shape)
    monkeypatch.setattr(geoindex, "CELL_MAX", 10)
    shape.radius = 30.0  # cells of hundreds of members: the general path answers
    assert _indexed(z, shape) is None


def test_index_exact_path_alone(monkeypatch):
    """With the plane's limits made useless (nothing surely inside, nothing surely
    outside), every point is measured with Redis's float operations: the replies stay
    the general scan's."""
    rng = random.Random(8)
    z = _zset(rng, 5000)
    real = geoindex.search

    def blind(z_, st, grid, lon, lat, radius, band, plane):
        plane = plane[:5] + (-1.0, float("inf"), 1.0)
        return real(z_, st, grid, lon, lat, radius, band, plane)

    monkeypatch.setattr(geoindex, "search", blind)
    for _ in range(60):
        shape = geo._Shape()
        shape.lon, shape.lat = 14 + rng.uniform(-0.3, 0.3), 38 + rng.uniform(-0.3, 0.3)
        shape.radius, shape.unit = rng.choice([0.3, 2.0, 5.0]), 1000.0
        reply = _indexed(z, shape)
        assert reply is not None and bytes(reply) == _general(z, shape)
