"""Plain radius searches from new centres (server/types/geoindex.py) against a real
redis-server: many seeded random centres and radii over a dense set, with writes
between searches (runs of searches, then a write before every search, and the key
replaced, renamed, deleted or restored between searches), in RESP2 and RESP3;
and, in-process, the index's replies against the general scan's and its bounds."""
from __future__ import annotations

import random

import pytest

from distcache.server.commands import geo
from distcache.server.types import geohash, geoindex
from distcache.server.types.zset import ZSet

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


def _every_write(rng, step, n, centre, last):
    """The write before search ``step``: a member moved (near the coming search's
    ``centre``), a new member there, a member of the ``last`` reply removed, moved
    away or re-scored (ZINCRBY), or now and then the key replaced, renamed away and
    back, deleted and refilled, copied over, stored over, or cut by rank (``n``: the
    members the set was filled with)."""
    kind = step % 23
    if kind == 5:
        return [["RENAME", "g", "g-away"], ["GEOSEARCH", "g", "FROMLONLAT", "14", "38",
                                             "BYRADIUS", "5", "km"], ["RENAME", "g-away", "g"]]
    if kind == 9:
        return [["COPY", "g", "g-copy"], ["ZREM", "g-copy", f"m{rng.randrange(n)}"],
                ["RENAME", "g-copy", "g"]]
    if kind == 12:  # a smaller set stored over the key (GEOSEARCHSTORE into itself)
        return [["GEOSEARCHSTORE", "g", "g", "FROMLONLAT", repr(14 + rng.uniform(-0.1, 0.1)),
                 repr(38 + rng.uniform(-0.1, 0.1)), "BYRADIUS", "14", "km"]]
    if kind == 15:
        return [["ZREMRANGEBYRANK", "g", "100", "160"], ["ZPOPMIN", "g", "2"]]
    if kind == 18:
        return [["ZUNIONSTORE", "g", "2", "g", "g-extra"]]
    if kind == 21:
        return [["DEL", "g"], ["GEOADD", "g", *_dense(rng, 1500)]]
    near = [repr(centre[0] + rng.uniform(-0.02, 0.02)), repr(centre[1] + rng.uniform(-0.02, 0.02))]
    member = rng.choice(last) if last and rng.random() < 0.8 else f"m{rng.randrange(n)}"
    choice = step % 5
    if choice == 0:  # a member moved here
        return [["GEOADD", "g", *near, f"m{rng.randrange(n)}"]]
    if choice == 1:
        return [["GEOADD", "g", *near, f"new{step}"]]
    if choice == 2:
        return [["ZREM", "g", member]]
    if choice == 3:  # a member of the last reply moved away
        return [["GEOADD", "g", repr(14 + rng.uniform(-0.15, 0.15)),
                 repr(38 + rng.uniform(-0.15, 0.15)), member]]
    return [["ZINCRBY", "g", repr(rng.choice([1, 16, 4096, -3.5, 1e9])), member]]


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_write_before_every_search_matches_redis(clients, protocol):
    """The ride-sharing mix: a write before every search (so the set's index keeps
    its cells, the writes put in), and the key replaced or moved between searches."""
    rng = random.Random(90 + protocol)
    ours, theirs = clients(protocol)
    for client in (ours, theirs):
        client.call("FLUSHALL")
    args = _dense(rng, 5000)
    extra = _dense(rng, 300, "x")
    for start in range(0, len(args), 3000):
        assert ours.call("GEOADD", "g", *args[start:start + 3000]) == \
            theirs.call("GEOADD", "g", *args[start:start + 3000])
    assert ours.call("GEOADD", "g-extra", *extra) == theirs.call("GEOADD", "g-extra", *extra)
    last = []
    for step in range(300):
        lon, lat = 14 + rng.uniform(-0.1, 0.1), 38 + rng.uniform(-0.1, 0.1)
        if step % 23 == 7:  # the set dumped and restored over itself
            for client in (ours, theirs):
                dump = client.call("DUMP", "g")
                assert client.call("RESTORE", "g", "0", dump[1], "REPLACE") == ("+", b"OK")
        else:
            for write in _every_write(rng, step, 5000, (lon, lat), last):
                assert ours.call(*write) == theirs.call(*write), write
        radius, unit = rng.choice(RADII[:-1])
        if rng.random() < 0.25:
            query = ["GEORADIUS", "g", repr(lon), repr(lat), radius, unit]
        else:
            query = ["GEOSEARCH", "g", "FROMLONLAT", repr(lon), repr(lat), "BYRADIUS", radius,
                     unit]
        reply = ours.call(*query)
        assert reply == theirs.call(*query), (step, query)
        last = [item[1].decode() for item in reply[1]][:50]


def _zset(rng, n):
    z = ZSet()
    for i in range(n):
        lon, lat = 14 + rng.uniform(-0.3, 0.3), 38 + rng.uniform(-0.3, 0.3)
        z.add(b"p%d" % i, float(geohash.lonlat_to_score(lon, lat)))
    return z


def _indexed(z, shape):
    """geo._index_reply, the set given its index (as its first search does)."""
    if z.geo is None:
        z.geo = geoindex.SetIndex()
    return geo._index_reply(z, shape, shape.radius * shape.unit)


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


def _counted(ix):
    """The points (and cells) ``ix`` holds, as geoindex counts them."""
    for cell in ix.cells.values():
        assert cell[geoindex._COUNT] == sum(len(sub[1]) for sub in cell[:geoindex._COUNT])
    assert geoindex._EMPTY == ([], [], [])  # (shared: never written)
    return sum(cell[geoindex._COUNT] + 1 for cell in ix.cells.values())


def test_index_bounds(monkeypatch):
    """Crowded cells are not indexed; the points held stay within POINTS_MAX; a write
    is put in the cells holding the element, and the next search reads nothing again."""
    rng = random.Random(6)
    z = _zset(rng, 20000)
    real_build = geoindex._build
    monkeypatch.setattr(geoindex, "_LISTED", [])
    monkeypatch.setattr(geoindex, "_held", [0])
    monkeypatch.setattr(geoindex, "POINTS_MAX", 3000)
    shape = geo._Shape()
    shape.lon, shape.lat, shape.radius, shape.unit = 14.0, 38.0, 2.0, 1000.0
    for _ in range(50):
        shape.lon, shape.lat = 14 + rng.uniform(-0.3, 0.3), 38 + rng.uniform(-0.3, 0.3)
        reply = _indexed(z, shape)
        assert reply is not None and bytes(reply) == _general(z, shape)
        assert geoindex._held[0] <= 3000
        assert _counted(z.geo) == z.geo.held == geoindex._held[0]
    before = bytes(_indexed(z, shape))
    first = before.split(b"\r\n")[2]
    cells = dict(z.geo.cells)
    z.remove(first)
    assert z.geo.cells == cells  # the same cells, one point fewer in one of them
    assert _counted(z.geo) == z.geo.held == geoindex._held[0]
    monkeypatch.setattr(geoindex, "_build", None)  # (nothing is read again)
    after = bytes(_indexed(z, shape))
    assert first not in after.split(b"\r\n") and after == _general(z, shape)
    monkeypatch.setattr(geoindex, "_build", real_build)
    monkeypatch.setattr(geoindex, "CELL_MAX", 10)
    shape.radius = 30.0  # cells of hundreds of members: the general path answers
    assert _indexed(z, shape) is None


def _fresh(z, ix):
    """``ix``'s cells as read from the set now (by an index dropped after)."""
    other = geoindex.SetIndex()
    cells = {key: geoindex._build(z, other, key) for key in list(ix.cells)}
    other.reset()
    return cells


def test_writes_are_put_in_the_cells(monkeypatch):
    """Moving, adding, removing and re-scoring members (at every step the index holds)
    leaves the cells as read from the set afresh; scores naming no cell are let be;
    ranges removed empty the index; WRITES_MAX writes more than WRITES_SEARCH a search
    empty it and send the next search to the general path; a set copied starts without one."""
    monkeypatch.setattr(geoindex, "_LISTED", [])
    monkeypatch.setattr(geoindex, "_held", [0])
    rng = random.Random(9)
    z = _zset(rng, 8000)
    shapes = []
    for _ in range(40):
        shape = geo._Shape()
        shape.lon, shape.lat = 14 + rng.uniform(-0.3, 0.3), 38 + rng.uniform(-0.3, 0.3)
        shape.radius, shape.unit = rng.choice([0.5, 2.0, 6.0]), 1000.0
        shapes.append(shape)
    for shape in shapes:
        _indexed(z, shape)
    assert len(z.geo.steps) == 3
    for i in range(200):
        member = b"p%d" % rng.randrange(8000)
        kind = i % 5
        if kind == 0:
            z.add(member, float(geohash.lonlat_to_score(14 + rng.uniform(-0.3, 0.3),
                                                        38 + rng.uniform(-0.3, 0.3))))
        elif kind == 1:
            z.remove(member)
        elif kind == 2:
            z.add(b"new%d" % i, float(geohash.lonlat_to_score(14.1, 38.1)) + 0.5)
        elif kind == 3:
            z.add(member, (z.score(member) or 0.0) + 1.0)
        else:
            z.add(b"far", rng.choice([-1.0, float("inf"), float("-inf"), 2.0 ** 52, -0.0]))
        if i % 20 == 0:
            assert z.geo.cells == _fresh(z, z.geo)
        shape = shapes[i % len(shapes)]
        reply = _indexed(z, shape)
        assert reply is not None and bytes(reply) == _general(z, shape)
    assert z.geo.cells == _fresh(z, z.geo) and _counted(z.geo) == z.geo.held
    assert z.copy().geo is None
    z.delete_range(0, 10)
    assert not z.geo.cells and z.geo.held == 0
    for shape in shapes[:5]:
        assert bytes(_indexed(z, shape)) == _general(z, shape)
    for i in range(geoindex.WRITES_MAX + 1):  # (no search: the count is not lowered)
        z.add(b"p%d" % i, float(geohash.lonlat_to_score(14.2, 38.2)))
    assert not z.geo.cells and z.geo.cold
    for _ in range(geoindex.WRITES_MAX // geoindex.WRITES_SEARCH - 1):
        assert _indexed(z, shapes[0]) is None  # (cold: the general path)
    assert bytes(_indexed(z, shapes[0])) == _general(z, shapes[0])
    assert z.geo.cells and not z.geo.cold


def test_a_write_past_the_bounds_drops_its_cell(monkeypatch):
    """A member added to a cell at CELL_MAX, or with the indexes at POINTS_MAX, drops
    the cell (its next search finds it crowded, or reads it again)."""
    monkeypatch.setattr(geoindex, "_LISTED", [])
    monkeypatch.setattr(geoindex, "_held", [0])
    rng = random.Random(11)
    z = _zset(rng, 5000)
    shape = geo._Shape()
    shape.lon, shape.lat, shape.radius, shape.unit = 14.0, 38.0, 2.0, 1000.0
    _indexed(z, shape)
    assert _indexed(z, shape) is not None
    score = float(geohash.lonlat_to_score(14.0, 38.0))
    (key, slots), = [(k, c) for k, c in z.geo.cells.items()
                     if k == (k[0], *geohash.search_grid(14.0, 38.0, 2e3, 2e3, 2e3)[1:5:3])]
    monkeypatch.setattr(geoindex, "CELL_MAX", slots[geoindex._COUNT])
    z.add(b"crowd", score)
    assert key not in z.geo.cells and _counted(z.geo) == z.geo.held == geoindex._held[0]
    assert _indexed(z, shape) is None  # crowded now: the general path
    monkeypatch.setattr(geoindex, "CELL_MAX", 4096)
    assert bytes(_indexed(z, shape)) == _general(z, shape)
    monkeypatch.setattr(geoindex, "POINTS_MAX", geoindex._held[0])
    z.add(b"more", score)
    assert key not in z.geo.cells and _counted(z.geo) == z.geo.held == geoindex._held[0]
    monkeypatch.setattr(geoindex, "POINTS_MAX", 1 << 17)
    assert bytes(_indexed(z, shape)) == _general(z, shape)


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
