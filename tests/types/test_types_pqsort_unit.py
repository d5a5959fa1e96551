"""pqsort (Redis's partial quicksort, replayed for GEOSEARCH COUNT ties): its sorted
prefix, and its bound of work. Its order among ties is checked against redis-server in
test_types_geo.py."""
from __future__ import annotations

import random

from distcache.server.types.pqsort import pqsort


def test_the_positions_below_stop_are_sorted():
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randrange(1, 300)
        keys = [float(rng.randrange(40)) for _ in range(n)]  # many ties
        stop = rng.randrange(1, n + 1)
        for reverse in (False, True):
            items = list(range(n))
            assert pqsort(items, keys, stop, reverse, 10 ** 9)
            got = [keys[i] for i in items]
            assert sorted(got) == sorted(keys)  # a permutation
            assert got[:stop] == sorted(keys, reverse=reverse)[:stop]
            rest = got[stop:]
            if rest:  # nothing after the cut belongs before it
                assert (min(rest) >= got[stop - 1]) if not reverse else \
                    (max(rest) <= got[stop - 1])


def test_distinct_keys_give_the_stable_sort():
    rng = random.Random(8)
    keys = rng.sample(range(10 ** 6), 5000)
    items = [("m", k) for k in keys]
    assert pqsort(items, [float(k) for k in keys], 100, False, 10 ** 9)
    assert items[:100] == sorted(items, key=lambda p: p[1])[:100]


def test_work_is_bounded():
    """Past the budget it stops (the caller keeps its stable order): an input that drove
    the quicksort quadratic cannot hold the event loop."""
    keys = [float(i % 3) for i in range(10_000)]
    assert not pqsort(list(range(10_000)), keys, 9_999, False, 5_000)
    assert pqsort(list(range(10_000)), keys, 9_999, False, 10 ** 7)
