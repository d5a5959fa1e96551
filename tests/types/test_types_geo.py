"""Geo commands against a real redis-server: random points (clusters, the poles' limits,
the antimeridian, duplicates), random radii and boxes and every option combination must
give byte-identical replies and stored sorted sets in RESP2 and RESP3. Where Redis's
order is unspecified (ties in distance under ASC/DESC), members are compared through
their scores, which fix every other field of a reply item."""
from __future__ import annotations

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from types_resp import RawClient

LAT_LIMIT = 85.05112878
MEMBERS = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]

lon_any = st.floats(-180, 180)
lat_any = st.floats(-LAT_LIMIT, LAT_LIMIT)
lon_edge = st.one_of(st.floats(179.9, 180), st.floats(-180, -179.9), st.sampled_from([180.0, -180.0, 0.0]))
lat_edge = st.one_of(st.floats(84.9, LAT_LIMIT), st.floats(-LAT_LIMIT, -84.9),
                     st.sampled_from([LAT_LIMIT, -LAT_LIMIT, 0.0]))
# A cluster near a random centre, so that searches find something.
CENTRES = [(13.36, 38.11), (179.99, 0.5), (-179.99, -10.0), (0.0, 84.99), (100.0, -84.99),
           (-73.98, 40.75)]


@st.composite
def point(draw):
    kind = draw(st.integers(0, 3))
    if kind == 0:
        lon, lat = draw(lon_any), draw(lat_any)
    elif kind == 1:
        lon, lat = draw(lon_edge), draw(lat_edge)
    else:
        clon, clat = draw(st.sampled_from(CENTRES))
        lon = max(-180.0, min(180.0, clon + draw(st.floats(-2, 2))))
        lat = max(-LAT_LIMIT, min(LAT_LIMIT, clat + draw(st.floats(-1, 1))))
    return repr(lon), repr(lat)


unit = st.sampled_from(["m", "km", "mi", "ft", "KM"])
size = st.one_of(st.sampled_from(["0", "1", "50", "1000", "100000", "20000000"]),
                 st.floats(0, 3e6).map(repr))
radius = st.tuples(size, unit).map(lambda t: ["BYRADIUS", *t])
box = st.tuples(size, size, unit).map(lambda t: ["BYBOX", *t])
centre_lonlat = st.one_of(point(), st.sampled_from(CENTRES).map(lambda c: (repr(c[0]), repr(c[1]))))
withs = st.lists(st.sampled_from(["WITHCOORD", "WITHDIST", "WITHHASH"]), max_size=3, unique=True)
order = st.sampled_from([[], ["ASC"], ["DESC"]])
count = st.one_of(st.just([]), st.integers(1, 6).map(lambda n: ["COUNT", str(n)]),
                  st.integers(1, 6).map(lambda n: ["COUNT", str(n), "ANY"]))


@st.composite
def search(draw):
    """A random search command (any of the six) over key ``g``."""
    command = draw(st.sampled_from(["GEOSEARCH", "GEOSEARCHSTORE", "GEORADIUS", "GEORADIUS_RO",
                                    "GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO"]))
    from_member = draw(st.booleans())
    member = draw(st.sampled_from(MEMBERS))
    centre = draw(centre_lonlat)
    options = draw(withs) + draw(order) + draw(count)
    store = command in ("GEORADIUS", "GEORADIUSBYMEMBER") and draw(st.integers(0, 2))
    if command.startswith("GEOSEARCH"):
        shape = draw(st.one_of(radius, box))
        origin = ["FROMMEMBER", member] if from_member else ["FROMLONLAT", *centre]
        args = [command] + (["dst"] if command == "GEOSEARCHSTORE" else []) + ["g"]
        if command == "GEOSEARCHSTORE":
            options = [o for o in options if not o.startswith("WITH")]
            if draw(st.booleans()):
                options.append("STOREDIST")
        return args + origin + shape + options
    r = draw(radius)[1:]
    origin = [member] if "MEMBER" in command else list(centre)
    if store:
        options = [o for o in options if not o.startswith("WITH")]
        options += ["STORE" if store == 1 else "STOREDIST", "dst"]
    return [command, "g"] + origin + r + options


def _setup(client, points, members):
    client.call("FLUSHALL")
    args = [x for (lon, lat), m in zip(points, members) for x in (lon, lat, m)]
    reply = client.call("GEOADD", "g", *args) if args else None
    client.call("SET", "dst", "old")
    return reply


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(protocol=st.sampled_from([2, 3]), points=st.lists(point(), max_size=12),
       members=st.lists(st.sampled_from(MEMBERS), min_size=12, max_size=12),
       duplicate=st.booleans(), args=search())
def test_geo_search_matches_redis(clients, protocol, points, members, duplicate, args):
    ours, theirs = clients(protocol)
    if duplicate and points:  # the same place under several names
        points = points + [points[0]] * 3
        members = members[:len(points) - 3] + ["x", "y", "z"]
    assert _setup(ours, points, members) == _setup(theirs, points, members)
    expected, got = theirs.call(*args), ours.call(*args)
    # Exact, ties included: equal distances come in Redis's order (its sorts replayed)
    assert got == expected, f"{args}: distcache {got!r} != redis {expected!r}"
    stored = [c.call("ZRANGE", "dst", "0", "-1", "WITHSCORES") if c.call("TYPE", "dst")[1]
              == b"zset" else c.call("TYPE", "dst") for c in (ours, theirs)]
    assert stored[0] == stored[1], args


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(protocol=st.sampled_from([2, 3]), points=st.lists(point(), min_size=1, max_size=8),
       members=st.lists(st.sampled_from(MEMBERS), min_size=8, max_size=8),
       flags=st.lists(st.sampled_from(["NX", "XX", "CH", "nx"]), max_size=2),
       more=st.lists(point(), max_size=4), asked=st.lists(st.sampled_from(MEMBERS + ["nope"]),
                                                          max_size=4),
       units=st.lists(st.sampled_from(["m", "km", "mi", "ft", "M", "yd", ""]), max_size=1))
def test_geo_add_pos_hash_dist_match_redis(clients, protocol, points, members, flags, more,
                                           asked, units):
    ours, theirs = clients(protocol)
    assert _setup(ours, points, members) == _setup(theirs, points, members)
    added = [x for (lon, lat), m in zip(more, reversed(members)) for x in (lon, lat, m)]
    for args in (["GEOADD", "g", *flags, *added], ["ZRANGE", "g", "0", "-1", "WITHSCORES"],
                 ["GEOPOS", "g", *asked], ["GEOHASH", "g", *asked], ["GEOPOS", "nokey", *asked],
                 ["GEOHASH", "nokey", *asked], ["GEODIST", "g", *(asked + ["a", "b"])[:2], *units],
                 ["GEODIST", "nokey", "a", "b"]):
        assert ours.call(*args) == theirs.call(*args), args


BAD = [
    ["GEOADD", "g", "181", "0", "m"], ["GEOADD", "g", "0", "85.06", "m"],
    ["GEOADD", "g", "-180.0001", "-85.06", "m"], ["GEOADD", "g", "inf", "0", "m"],
    ["GEOADD", "g", "nan", "0", "m"], ["GEOADD", "g", "1", "x", "m"],
    ["GEOADD", "g", "1", "2", "m", "3"], ["GEOADD", "g", "NX", "XX", "1", "2", "m"],
    ["GEOADD", "g", "CH", "CH", "CH"], ["GEOADD", "g", "1", "2"], ["GEOADD", "str", "1", "2", "m"],
    ["GEODIST", "g", "a", "b", "parsec"], ["GEODIST", "g", "a", "b", "km", "x"],
    ["GEODIST", "str", "a", "b"], ["GEOPOS", "str", "a"], ["GEOHASH", "str"], ["GEOPOS", "g"],
    ["GEORADIUS", "g", "0", "0", "-1", "km"], ["GEORADIUS", "g", "0", "0", "x", "km"],
    ["GEORADIUS", "g", "0", "0", "1", "yd"], ["GEORADIUS", "g", "200", "0", "1", "km"],
    ["GEORADIUS", "g", "0", "0", "1", "km", "COUNT", "0"],
    ["GEORADIUS", "g", "0", "0", "1", "km", "COUNT", "-3"],
    ["GEORADIUS", "g", "0", "0", "1", "km", "COUNT", "x"],
    ["GEORADIUS", "g", "0", "0", "1", "km", "COUNT"], ["GEORADIUS", "g", "0", "0", "1", "km", "ANY"],
    ["GEORADIUS", "g", "0", "0", "1", "km", "STORE", "d", "WITHDIST"],
    ["GEORADIUS", "g", "0", "0", "1", "km", "WITHHASH", "STOREDIST", "d"],
    ["GEORADIUS", "g", "0", "0", "1", "km", "STORE"], ["GEORADIUS_RO", "g", "0", "0", "1", "km", "STORE", "d"],
    ["GEORADIUS", "g", "0", "0", "1", "km", "FROMMEMBER", "a"], ["GEORADIUS", "g", "0", "0", "1"],
    ["GEORADIUSBYMEMBER", "g", "nope", "1", "km"], ["GEORADIUSBYMEMBER", "g", "a", "-1", "km"],
    ["GEORADIUSBYMEMBER", "nokey", "nope", "-1", "zz", "STORE", "dst"],
    ["GEORADIUSBYMEMBER", "nokey", "nope", "-1", "zz", "WITHDIST"],
    ["GEORADIUSBYMEMBER", "nokey", "nope", "-1", "zz", "STORE", "dst", "WITHDIST"],
    ["GEORADIUSBYMEMBER", "str", "a", "1", "km"], ["GEORADIUSBYMEMBER_RO", "g", "a", "1", "km", "STOREDIST", "d"],
    ["GEOSEARCH", "g", "FROMMEMBER", "a", "ASC"], ["GEOSEARCH", "g", "BYRADIUS", "1", "km"],
    ["geosearch", "g", "BYRADIUS", "1", "km", "WITHDIST"],
    ["GEOSEARCH", "g", "FROMMEMBER", "a", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "FROMMEMBER", "a", "BYRADIUS", "1", "km"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km", "BYBOX", "1", "1", "km"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "1", "1", "km", "BYRADIUS", "1", "km"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "-1", "1", "km"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "x", "1", "km"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "1", "x", "km"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "1", "1", "yd"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "1", "1"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "95", "BYRADIUS", "1", "km"],
    ["GEOSEARCH", "g", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"],
    ["GEOSEARCH", "nokey", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"],
    ["GEOSEARCH", "nokey", "FROMMEMBER", "nope", "BYRADIUS", "-1", "km"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km", "STORE", "d"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km", "STOREDIST"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km", "ANY"],
    ["GEOSEARCH", "str", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"],
    ["GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km", "WITHCOORD"],
    ["GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km", "STORE", "x"],
    ["GEOSEARCHSTORE", "d", "nokey", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"],
    ["GEOSEARCHSTORE", "d", "g", "BYRADIUS", "1", "km", "ASC"],
    ["GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1"],
    # strtod's ERANGE is an error, infinity is not: C's NaN maths then finds every point
    ["GEOADD", "g", "1e-400", "0", "z"], ["GEOADD", "g", "1e400", "0", "z"],
    ["GEOADD", "g", "-0", "-0", "z"], ["GEOPOS", "g", "z"],
    ["GEORADIUS", "g", "0", "0", "1e-400", "km"], ["GEORADIUS", "g", "0", "0", "inf", "km", "WITHDIST"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1e308", "km", "WITHDIST"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "inf", "1", "m"],
    ["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "1e308", "1e308", "km", "WITHDIST"],
    ["GEOADD", "g", "180", "-85.05112878", "antipode"],
    ["GEORADIUSBYMEMBER", "g", "antipode", "20037", "km", "WITHDIST"],
    ["GEORADIUS", "g", "0", "0", "50000", "km", "WITHDIST", "WITHHASH", "WITHCOORD"],
    ["GEODIST", "g", "antipode", "a", "mi"],
    ["ZADD", "g", "-5", "neg", "1e300", "huge", "inf", "posinf", "4503599627370496", "top"],
    ["GEOPOS", "g", "neg", "huge", "posinf", "top"], ["GEOHASH", "g", "neg", "huge", "posinf", "top"],
    ["GEODIST", "g", "neg", "top"], ["GEOSEARCH", "g", "FROMMEMBER", "top", "BYRADIUS", "10", "km"],
]


@pytest.mark.parametrize("protocol", [2, 3])
def test_geo_errors_and_edges_match_redis(clients, protocol):
    ours, theirs = clients(protocol)
    for client in (ours, theirs):
        client.call("FLUSHALL")
        client.call("GEOADD", "g", "0.1", "0.1", "a", "0.2", "0.2", "b")
        client.call("SET", "str", "x")
        client.call("SET", "d", "x")
    for args in BAD:
        assert ours.call(*args) == theirs.call(*args), args
        assert ours.call("TYPE", "d") == theirs.call("TYPE", "d"), args
        assert ours.call("EXISTS", "dst") == theirs.call("EXISTS", "dst"), args


def test_geo_through_redis_py(shared_server):
    """redis-py's geo methods as an application calls them."""
    r = redis.Redis(port=shared_server.port, decode_responses=True)
    r.flushall()
    assert r.geoadd("Sicily", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669,
                               "Catania"]) == 2
    assert r.geodist("Sicily", "Palermo", "Catania", unit="km") == 166.2742
    assert r.geohash("Sicily", "Palermo", "Catania") == ["sqc8b49rny0", "sqdtr74hyu0"]
    (lon, lat), = r.geopos("Sicily", "Palermo")
    assert (round(lon, 6), round(lat, 6)) == (13.361389, 38.115556)
    assert r.geosearch("Sicily", longitude=15, latitude=37, radius=200, unit="km",
                       withdist=True, sort="ASC") == [["Catania", 56.4413], ["Palermo", 190.4424]]
    assert r.geosearch("Sicily", member="Palermo", width=400, height=400, unit="km",
                       sort="DESC", count=1) == ["Catania"]
    assert r.geosearchstore("near", "Sicily", longitude=15, latitude=37, radius=100,
                            unit="km", storedist=True) == 1
    assert r.zrange("near", 0, -1, withscores=True) == [("Catania", 56.4412578701582)]
    assert r.georadius("Sicily", 15, 37, 200, unit="km", withcoord=True, count=1)[0][0] == \
        "Catania"
    assert r.geoadd("Sicily", [13.5, 38.0, "Palermo"], xx=True, ch=True) == 1
    with pytest.raises(redis.ResponseError, match="invalid longitude,latitude pair"):
        r.geoadd("Sicily", [200, 0, "x"])
    r.close()


DENSE_CENTRES = [(13.36, 38.11), (179.95, 0.5), (-179.95, -60.0), (20.0, 84.5), (100.0, -84.5),
                 (-73.98, 40.75), (0.0, -70.5), (45.0, -80.5)]


def test_geo_dense_search_order_matches_redis(clients):
    """Hundreds of points around each centre: unsorted searches (whose order is the
    cells' and scores' order), ANY cut-offs and box/radius edges must be Redis's exactly."""
    import random
    rng = random.Random(13)
    ours, theirs = clients(2)
    for client in (ours, theirs):
        client.call("FLUSHALL")
    args = []
    for n, (clon, clat) in enumerate(DENSE_CENTRES):
        for i in range(150):
            spread = rng.choice([0.01, 0.3, 3.0])
            lon = clon + rng.uniform(-spread, spread) * (1 if i % 7 else 0)  # some on its meridian
            lat = clat + rng.uniform(-spread, spread)
            lon = lon - 360 if lon > 180 else lon + 360 if lon < -180 else lon
            lat = max(-LAT_LIMIT, min(LAT_LIMIT, lat))
            args += [repr(lon), repr(lat), f"p{n}_{i}"]
    assert ours.call("GEOADD", "g", *args) == theirs.call("GEOADD", "g", *args)
    checked = 0
    for clon, clat in DENSE_CENTRES:
        for size in ("500", "5000", "40000", "150000", "400000", "2500000", "7000000"):
            origin = ["FROMLONLAT", repr(clon + rng.uniform(-0.05, 0.05)),
                      repr(clat + rng.uniform(-0.05, 0.05))]
            for shape in (["BYRADIUS", size, "m"], ["BYBOX", size, str(int(size) // 2), "m"],
                          ["BYBOX", str(int(size) // 3), size, "m"]):
                for extra in ([], ["WITHDIST", "WITHHASH"], ["COUNT", "7", "ANY"],
                              ["COUNT", "3", "ANY", "WITHCOORD"],
                              # the nearest COUNT (geonearest.nearest for radii)
                              ["COUNT", "1", "ASC", "WITHDIST"], ["COUNT", "25"],
                              ["COUNT", "6", "ASC", "WITHCOORD", "WITHHASH"]):
                    query = ["GEOSEARCH", "g", *origin, *shape, *extra]
                    expected = theirs.call(*query)
                    # twice: a repeated search runs on its plan's sub-cell tables
                    assert ours.call(*query) == expected, query
                    assert ours.call(*query) == expected, query
                    checked += len(expected[1])
    assert checked > 5000


def test_geo_equal_distances_come_in_redis_order(clients):
    """Members at one point, or mirrored about the centre, tie on distance: a sorted
    search keeps them in Redis's order, whose COUNT cut runs its partial quicksort
    (unstable: another order than a stable sort's) and whose full sort is stable."""
    import random
    ours, theirs = clients(3)
    checked = ties = 0
    for seed in range(12):
        rng = random.Random(seed)
        spots = [(10 + rng.randrange(-3, 4) * 0.001, 45 + rng.randrange(-3, 4) * 0.001)
                 for _ in range(rng.randrange(2, 10))]
        args = []
        for i in range(rng.randrange(20, 300)):
            lon, lat = rng.choice(spots)
            args += [repr(lon), repr(lat), f"m{rng.randrange(10 ** 6)}"]
        for i in range(rng.randrange(0, 40)):
            dx = rng.choice([0.001, 0.002])
            args += [repr(10 + dx), "45", f"e{i}", repr(10 - dx), "45", f"w{i}"]
        for client in (ours, theirs):
            client.call("FLUSHALL")
            client.call("GEOADD", "g", *args)
        for count in ("1", "2", "5", "7", "8", "41", "100", "1000"):
            for order in ([], ["ASC"], ["DESC"]):
                for shape in (["BYRADIUS", "5", "km"], ["BYBOX", "8", "8", "km"]):
                    query = ["GEOSEARCH", "g", "FROMLONLAT", "10", "45", *shape,
                             "COUNT", count, "WITHDIST", *order]
                    expected = theirs.call(*query)
                    assert ours.call(*query) == expected, query
                    distances = [repr(item[1][1]) for item in expected[1]]
                    ties += len(distances) - len(set(distances))
                    store = ["GEOSEARCHSTORE", "dst", "g", "FROMLONLAT", "10", "45",
                             *shape, "COUNT", count, *order]
                    assert ours.call(*store) == theirs.call(*store), store
                    assert ours.call("ZRANGE", "dst", "0", "-1", "WITHSCORES") == \
                        theirs.call("ZRANGE", "dst", "0", "-1", "WITHSCORES"), store
                    checked += 1
    assert checked == 12 * 8 * 3 * 2 and ties > 1000


def test_geo_points_on_the_search_edge_match_redis(clients):
    """Points within a millionth of the radius (or the box's half sides) of the edge:
    the sub-cells a search skips must never hold one that Redis finds."""
    import math
    import random
    rng = random.Random(29)
    ours, theirs = clients(2)
    for client in (ours, theirs):
        client.call("FLUSHALL")
    queries = []
    for n, (clon, clat) in enumerate(DENSE_CENTRES[:5]):
        for size in (800.0, 30000.0, 900000.0):
            args = []
            for i in range(120):
                angle = rng.uniform(0, 2 * math.pi)
                d = size * (1 + rng.uniform(-1e-6, 1e-6))
                dlat = d * math.sin(angle) / 6372797.560856 / (math.pi / 180)
                dlon = d * math.cos(angle) / 6372797.560856 / (math.pi / 180) \
                    / max(math.cos(clat * math.pi / 180), 1e-3)
                lon = clon + (dlon if i % 3 else 0.0)
                lat = max(-LAT_LIMIT, min(LAT_LIMIT, clat + (dlat if i % 5 else 0.0)))
                lon = lon - 360 if lon > 180 else lon + 360 if lon < -180 else lon
                args += [repr(lon), repr(lat), f"e{n}_{int(size)}_{i}"]
            assert ours.call("GEOADD", "g", *args) == theirs.call("GEOADD", "g", *args)
            origin = ["FROMLONLAT", repr(clon), repr(clat)]
            queries += [["GEOSEARCH", "g", *origin, "BYRADIUS", repr(size), "m", "WITHDIST"],
                        ["GEOSEARCH", "g", *origin, "BYRADIUS", repr(size), "m"],
                        ["GEOSEARCH", "g", *origin, "BYBOX", repr(2 * size), repr(2 * size),
                         "m", "WITHCOORD"]]
    found = 0
    for query in queries:
        expected = theirs.call(*query)
        for _ in range(2):  # the second: on the plan's sub-cell tables
            assert ours.call(*query) == expected, query
        found += len(expected[1])
    assert found > 300


def test_geo_nearest_count_matches_redis(clients):
    """COUNT n ASC over thousands of points, from points and from members: the
    best-first search keeps what Redis's sort keeps."""
    import random
    rng = random.Random(41)
    ours, theirs = clients(2)
    for client in (ours, theirs):
        client.call("FLUSHALL")
    args = []
    for i in range(4000):  # (no two at one place: Redis's qsort orders ties its own way)
        args += [repr(13 + rng.random()), repr(37.5 + rng.random()), f"m{i}"]
    assert ours.call("GEOADD", "g", *args) == theirs.call("GEOADD", "g", *args)
    for _ in range(40):
        origin = ["FROMLONLAT", repr(13 + rng.random()), repr(37.5 + rng.random())]
        radius = rng.choice(["300", "2000", "20000", "150000"])
        n = str(rng.choice([1, 2, 5, 10, 60]))
        for extra in (["COUNT", n], ["COUNT", n, "ASC", "WITHDIST"],
                      ["COUNT", n, "DESC", "WITHCOORD"]):
            query = ["GEOSEARCH", "g", *origin, "BYRADIUS", radius, "m", *extra]
            assert ours.call(*query) == theirs.call(*query), query
            member = ["GEORADIUSBYMEMBER", "g", f"m{rng.randrange(4000)}", radius, "m", *extra]
            assert ours.call(*member) == theirs.call(*member), member


def test_geo_writes_replay_from_the_log(tmp_path):
    """GEOADD and the search stores are logged and replayed to the same sorted sets."""
    from servers import distcache_server
    with distcache_server(tmp_path, persistence=True) as proc:
        r = redis.Redis(port=proc.port)
        r.geoadd("g", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania",
                       179.99, -85.05, "edge"])
        r.geosearchstore("s", "g", longitude=15, latitude=37, radius=300, unit="km",
                         storedist=True)
        r.execute_command("GEORADIUS", "g", "15", "37", "300", "km", "STORE", "h")
        before = [r.zrange(k, 0, -1, withscores=True) for k in ("g", "s", "h")]
    with distcache_server(tmp_path, persistence=True, port=proc.port) as again:
        r = redis.Redis(port=again.port)
        assert [r.zrange(k, 0, -1, withscores=True) for k in ("g", "s", "h")] == before
    assert len(before[0]) == 3 and len(before[1]) == 2


GETKEYS = [["GEORADIUS", "g", "0", "0", "1", "km", "STORE", "a", "STOREDIST", "b"],
           ["GEORADIUS", "g", "0", "0", "1", "km", "STOREDIST", "a", "STORE", "b", "STORE", "c"],
           ["GEORADIUS", "g", "0", "0", "1", "km", "store", "store", "store", "x"],
           ["GEORADIUSBYMEMBER", "g", "m", "1", "km", "COUNT", "1", "STORE"],
           ["GEORADIUSBYMEMBER", "g", "m", "1", "km", "STOREDIST", "d"],
           ["GEOSEARCHSTORE", "d", "s", "FROMMEMBER", "m", "BYRADIUS", "1", "km"]]


def test_geo_store_keys_and_acl_match_redis(shared_server, reference_redis):
    """GEORADIUS's STORE/STOREDIST keys are found as Redis's keyword key specs find them,
    for COMMAND GETKEYS and for ACL key permissions."""
    results = []
    for port in (shared_server.port, reference_redis.port):
        admin = redis.Redis(port=port)
        admin.flushall()
        admin.geoadd("g1", [1, 1, "m"])
        admin.acl_setuser("geo", enabled=True, nopass=True, keys=["g*"], commands=["+@all"])
        user = redis.Redis(port=port, username="geo", password="x")
        with RawClient(port) as raw:
            seen = [raw.call("COMMAND", "GETKEYS", *args) for args in GETKEYS]
        for args in (["GEORADIUS", "g1", "1", "1", "10", "km", "STORE", "g2"],
                     ["GEORADIUS", "g1", "1", "1", "10", "km", "STORE", "other"],
                     ["GEORADIUSBYMEMBER", "g1", "m", "10", "km", "STOREDIST", "other"],
                     ["GEOSEARCHSTORE", "other", "g1", "FROMMEMBER", "m", "BYRADIUS", "1", "km"]):
            try:
                seen.append(user.execute_command(*args))
            except redis.ResponseError as exc:
                seen.append(str(exc))
        admin.acl_deluser("geo")
        user.close()
        results.append(seen)
    assert results[0] == results[1]
    assert results[0][6] == 1 and "no permissions" in results[0][7]


NUMBERS = ["14", "-0.5", ".5", "5.", "0", "-0", "0.0", "00014", "1-2", "1..2", "-", "--1",
           "14 ", " 14", "1e1", "0." + "0" * 400 + "1", "1" * 320, "-" + "1" * 320, "0x1p3"]


@pytest.mark.parametrize("protocol", [2, 3])
def test_geo_search_fast_paths_match_redis(clients, protocol):
    """The search's shortcuts against Redis: plain decimals read by float() (and the
    forms that take the general parser: zero, underflow, overflow, junk), a member
    reply encoded in one join (long members, empty replies), points spread over
    several of the sorted set's blocks, and a search run from a script."""
    import random
    rng = random.Random(7)
    ours, theirs = clients(protocol)
    args = []
    for i in range(5000):  # several blocks of the sorted set around one centre
        args += [repr(14 + rng.uniform(-0.05, 0.05)), repr(38 + rng.uniform(-0.05, 0.05)),
                 f"m{i}"]
    args += ["14.001", "38.001", "L" * 5000, "14.002", "38.002", ""]
    for client in (ours, theirs):
        client.call("FLUSHALL")
    assert ours.call("GEOADD", "g", *args) == theirs.call("GEOADD", "g", *args)
    queries = []
    for number in NUMBERS:
        queries += [["GEOSEARCH", "g", "FROMLONLAT", number, "38", "BYRADIUS", "1", "km"],
                    ["GEOSEARCH", "g", "FROMLONLAT", "14", number, "BYBOX", "1", "1", "km"],
                    ["GEOSEARCH", "g", "FROMLONLAT", "14", "38", "BYRADIUS", number, "m"],
                    ["GEOSEARCH", "g", "FROMLONLAT", "14", "38", "BYBOX", number, "9", "m"],
                    ["GEORADIUS", "g", number, "38", "2", "km"]]
    for size in ("1", "300", "2000", "9000"):
        for shape in (["BYRADIUS", size, "m"], ["BYBOX", size, size, "m"]):
            for extra in ([], ["COUNT", "3", "ANY"], ["ASC"], ["WITHHASH"]):
                queries.append(["GEOSEARCH", "g", "FROMLONLAT", "14.0015", "38.0015",
                                *shape, *extra])
    queries += [["GEOSEARCH", "g", "FROMMEMBER", "L" * 5000, "BYRADIUS", "200", "m"],
                ["GEOSEARCH", "g", "FROMLONLAT", "-120", "-50", "BYRADIUS", "2", "km"],
                ["EVAL", "return redis.call('GEOSEARCH', 'g', 'FROMLONLAT', '14.0015',"
                 " '38.0015', 'BYRADIUS', '300', 'm')", "0"]]
    for query in queries:
        expected = theirs.call(*query)
        for _ in range(3):  # a new plan, then its sub-cell tables
            assert ours.call(*query) == expected, query
