"""Hot-key GET with and without the client's local cache (local_cache=True).

    python bench/local_cache_bench.py [--port 2050] [--seconds 1] [--keys 100]
    python bench/local_cache_bench.py --memory     # bytes per cached entry (tracemalloc)

Without --port a distcache server is started on a free port. Reads ``--keys``
keys round-robin (all cached after the first pass): sync GET, sync get_many
of 10, and asyncio GET from 50 tasks, each with and without the local cache.
Prints ops/s and the speedup. Not a test; wall-clock numbers depend on load.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from distcache import AsyncCacheClient, CacheClient  # noqa: E402
from distcache.client.localcache import ENTRY_OVERHEAD, LocalCache  # noqa: E402


def rate(fn, seconds: float, ops_per_call: int = 1) -> float:
    calls, start = 0, time.perf_counter()
    while True:
        for _ in range(50):
            fn()
        calls += 50
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * ops_per_call / elapsed


async def tasks(client, keys, n: int, seconds: float) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def work(offset: int) -> None:
        nonlocal count
        i = offset
        while time.perf_counter() < deadline:
            await client.get(keys[i % len(keys)])
            i += 1
            count += 1
    start = time.perf_counter()
    await asyncio.gather(*[work(i) for i in range(n)])
    return count / (time.perf_counter() - start)


def run(address: str, seconds: float, nkeys: int) -> None:
    keys = [f"hot:{i}" for i in range(nkeys)]
    values = {"str 100 B": lambda i: "v" * 100, "dict": lambda i: {"id": i, "name": f"u{i}"}}
    print(f"{'value':10} {'local cache':12} {'sync GET/s':>12} {'get_many keys/s':>16} "
          f"{'async GET/s':>12}")
    for kind, make in values.items():
        with CacheClient(address) as setup:
            setup.set_many({k: make(i) for i, k in enumerate(keys)})
        rows = []
        for option in (None, True):
            with CacheClient(address, local_cache=option) as client:
                it = iter(range(1 << 62))
                get = rate(lambda: client.get(keys[next(it) % nkeys]), seconds)
                batches = [keys[i:i + 10] for i in range(0, nkeys, 10)]
                it2 = iter(range(1 << 62))
                many = rate(lambda: client.get_many(batches[next(it2) % len(batches)]),
                            seconds, 10)

            async def amain() -> float:
                async with AsyncCacheClient(address, local_cache=option) as aclient:
                    for k in keys:  # warm: the timed part measures the hot keys
                        await aclient.get(k)
                    return await tasks(aclient, keys, 50, seconds)
            rows.append((get, many, asyncio.run(amain())))
        for label, (get, many, aget) in zip(("off", "on"), rows):
            print(f"{kind:10} {label:12} {get:12,.0f} {many:16,.0f} {aget:12,.0f}")
        ratios = [after / before for before, after in zip(*rows)]
        print(f"{kind:10} {'speedup':12} {ratios[0]:11.1f}x {ratios[1]:15.1f}x "
              f"{ratios[2]:11.1f}x")


def memory(entries: int = 20000) -> None:
    """Bytes Python allocates per entry (key 10 B, value 100 B) vs the charge."""
    cache = LocalCache(max_entries=entries, max_bytes=1 << 40)
    cache.server_up("s")
    keys = [b"key:%06d" % i for i in range(entries)]
    values = [os.urandom(100) for _ in range(entries)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    now = time.monotonic()
    for k, v in zip(keys, values):
        cache.store(cache.begin(k, "s"), v, -1, now)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # keys and values exist before they are cached (the reply's bytes): only the
    # entry structure is new; bytes objects cost ~33 B over their length
    print(f"{entries} entries: {used / entries:.0f} B of structure each "
          f"(+ ~33 B per bytes object); charged overhead {ENTRY_OVERHEAD} B")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    if args.memory:
        memory()
        return
    if args.port:
        run(f"127.0.0.1:{args.port}", args.seconds, args.keys)
        return
    from servers import distcache_server
    with distcache_server(Path(tempfile.mkdtemp())) as proc:
        run(proc.address, args.seconds, args.keys)


if __name__ == "__main__":
    main()
