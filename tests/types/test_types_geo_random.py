"""Geo searches against a real redis-server, seeded random cases over dense data: many
centres, radii and boxes (up to infinite widths), COUNT, ANY, ASC/DESC and the WITH
options, each run three times (a new plan, then its sub-cell tables), RESP2 and 3;
and a box as wide as the earth with COUNT measures the nearest few, not every member."""
from __future__ import annotations

import random
import time

import pytest

LAT_LIMIT = 85.05112878


def _load(clients_, n: int, seed: int) -> None:
    rng = random.Random(seed)
    args = []
    for i in range(n):  # a dense square, and some points anywhere (no two at one place)
        if i % 10:
            lon, lat = 14 + rng.uniform(-0.5, 0.5), 38 + rng.uniform(-0.5, 0.5)
        else:
            lon, lat = rng.uniform(-180, 180), rng.uniform(-LAT_LIMIT, LAT_LIMIT)
        args += [repr(lon), repr(lat), f"m{i}"]
    for start in range(0, len(args), 3000):
        replies = [c.call("GEOADD", "g", *args[start:start + 3000]) for c in clients_]
        assert replies[0] == replies[1]


@pytest.mark.parametrize("protocol", [2, 3])
def test_geo_random_searches_match_redis(clients, protocol):
    rng = random.Random(500 + protocol)
    ours, theirs = clients(protocol)
    for client in (ours, theirs):
        client.call("FLUSHALL")
    _load((ours, theirs), 6000, 5)
    sizes = ["0", "30", "700", "2000", "2500", "9000", "60000", "1e6", "2e7", "1e300", "inf"]
    for _ in range(60):
        centre = ["FROMLONLAT", repr(14 + rng.uniform(-0.6, 0.6)), repr(38 + rng.uniform(-0.6, 0.6))]
        if rng.random() < 0.2:
            centre = ["FROMMEMBER", f"m{rng.randrange(6000)}"]
        if rng.random() < 0.5:
            shape = ["BYRADIUS", rng.choice(sizes[:9]), rng.choice(["m", "km", "ft"])]
        else:
            shape = ["BYBOX", rng.choice(sizes), rng.choice(sizes), rng.choice(["m", "km", "mi"])]
        extras = []
        if rng.random() < 0.6:
            extras += ["COUNT", str(rng.choice([1, 3, 10, 50, 1500]))]
            if rng.random() < 0.3:
                extras.append("ANY")
        extras += rng.sample(["WITHDIST", "WITHHASH", "WITHCOORD"], rng.randrange(4))
        extras += rng.choice([[], ["ASC"], ["DESC"]])
        query = ["GEOSEARCH", "g", *centre, *shape, *extras]
        expected = theirs.call(*query)
        for _ in range(3):
            assert ours.call(*query) == expected, query


def test_geo_box_over_the_earth_with_count_is_cheap(clients):
    """BYBOX inf/1e300/40000 km with COUNT (sorted: the nearest) matches Redis and costs
    a small part of the full search (which measures every member), not all of it."""
    ours, theirs = clients(2)
    for client in (ours, theirs):
        client.call("FLUSHALL")
    _load((ours, theirs), 30000, 9)
    for sides in (["inf", "inf", "m"], ["1e300", "1e300", "m"], ["40000", "40000", "km"],
                  ["inf", "10", "km"]):
        for extra in (["COUNT", "10"], ["COUNT", "10", "ASC", "WITHDIST", "WITHCOORD"],
                      ["COUNT", "5", "DESC"]):
            query = ["GEOSEARCH", "g", "FROMLONLAT", "14", "38", "BYBOX", *sides, *extra]
            assert ours.call(*query) == theirs.call(*query), query

    def took(query):
        start = time.perf_counter()
        ours.call(*query)
        return time.perf_counter() - start

    full = min(took(["GEOSEARCH", "g", "FROMLONLAT", "14", "38", "BYBOX", "inf", "inf", "m",
                     "WITHDIST"]) for _ in range(2))
    nearest = min(took(["GEOSEARCH", "g", "FROMLONLAT", "14", "38", "BYBOX", "inf", "inf", "m",
                        "COUNT", "10"]) for _ in range(5))
    assert nearest * 10 < full, (nearest, full)
