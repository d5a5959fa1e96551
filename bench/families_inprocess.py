#!/usr/bin/env python3
"""PFADD, GEOSEARCH and LZF compression in-process: CPU time per operation (a benchmark).

    python bench/families_inprocess.py

Handlers are called directly on a Keyspace (no network), timed with
``time.process_time`` and the best of a few repeats, so a loaded host
disturbs the figures less than ``bench/families_bench.py``'s ops/s. Compare
two trees by running the script from each (``PYTHONPATH=<tree>``).

- PFADD of one element: the first 1,500 (sparse) and 40,000 more (dense);
- GEOSEARCH over 100,000 random points in a 2 x 2 degree square: 2 km, and
  20 km with ``COUNT 10 ASC``;
- LZF compression of 200 KB of random bytes and of text.
"""
from __future__ import annotations

import os
import random
import time
from types import SimpleNamespace

# (no sys.path change: PYTHONPATH picks the tree measured)
from distcache.rdb import lzf
from distcache.server.commands.table import COMMANDS
from distcache.server.keyspace import Keyspace


def best(fn, repeat: int = 3) -> float:
    out = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        out = min(out, time.process_time() - start)
    return out


def main() -> None:
    ks = Keyspace(16)
    c = SimpleNamespace(db=ks.dbs[0], server=SimpleNamespace(config={"hll-sparse-max-bytes": 3000}),
                        resp=2, protocol=2)
    pfadd = COMMANDS["pfadd"].handler
    rng = random.Random(1)
    els = [b"element:%012d" % rng.randrange(100000) for _ in range(60000)]

    def sparse() -> None:
        ks.dbs[0].data.pop(b"hll", None)
        for e in els[:1500]:
            pfadd(c, [b"PFADD", b"hll", e])

    for e in els[1500:20000]:
        pfadd(c, [b"PFADD", b"hll", e])

    def dense() -> None:
        for e in els[20000:]:
            pfadd(c, [b"PFADD", b"hll2", e])

    for e in els[:20000]:
        pfadd(c, [b"PFADD", b"hll2", e])
    print(f"PFADD sparse {best(sparse) / 1500 * 1e6:8.2f} us")
    print(f"PFADD dense  {best(dense) / 40000 * 1e6:8.2f} us")

    args = [b"GEOADD", b"geo"]
    for i in range(100000):
        args += [b"%.6f" % (13 + 2 * rng.random()), b"%.6f" % (37 + 2 * rng.random()), b"p%d" % i]
    COMMANDS["geoadd"].handler(c, args)
    search = COMMANDS["geosearch"].handler
    for label, query, n in (("GEOSEARCH 2 km", b"GEOSEARCH geo FROMLONLAT 14 38 BYRADIUS 2 km",
                             300),
                            ("GEOSEARCH 20 km COUNT 10 ASC",
                             b"GEOSEARCH geo FROMLONLAT 14 38 BYRADIUS 20 km COUNT 10 ASC", 5)):
        q = query.split()
        print(f"{label:<28} {best(lambda: [search(c, q) for _ in range(n)]) / n * 1e6:8.0f} us")

    rand = os.urandom(200000)
    text = (b"user:%d some text that repeats, more or less; " * 6000)[:200000]
    for label, data in (("random", rand), ("text", text)):
        took = best(lambda: lzf.compress(data, len(data) - 4))
        print(f"LZF compress {label:<6} {len(data) / took / 1e6:8.2f} MB/s")


if __name__ == "__main__":
    main()
