"""Recipes: cached (stampede protection), lock, id_generator; sync and asyncio."""
from __future__ import annotations

import asyncio
import time

import pytest

from client_helpers import run_threads, supports_watch

from distcache import AsyncCacheClient, CacheClient
from distcache.client.recipes import LockError


@pytest.fixture
def wclient(client):
    """A client whose server has WATCH/MULTI (needed by lock release and cas)."""
    if not supports_watch(client):
        pytest.skip("this server has no WATCH/MULTI yet")
    return client


def test_cached_memoizes_per_arguments(client):
    calls = []

    @client.cached(ttl=30)
    def square(x, scale=1):
        calls.append(x)
        return x * x * scale
    assert square(3) == 9 and square(3) == 9 and square(3, scale=2) == 18
    assert calls == [3, 3]

    @client.cached(ttl=30, key=lambda user: f"user:{user}")
    def profile(user):
        return {"user": user}
    assert profile(7) == {"user": 7}
    assert client.get("user:7")[0] == {"user": 7}


def test_cached_stampede_one_computation(backend):
    calls = []

    with CacheClient(backend.address) as c:
        c.flush()

        @c.cached(ttl=30, wait_timeout=5)
        def slow():
            calls.append(1)
            time.sleep(0.2)
            return "result"
        results = []
        run_threads(lambda: results.append(slow()), [()] * 8)
        assert results == ["result"] * 8 and len(calls) == 1


def test_cached_stampede_async(backend):
    calls = []

    async def main():
        async with AsyncCacheClient(backend.address) as c:
            await c.flush()

            @c.cached(ttl=30)
            async def slow(x):
                calls.append(x)
                await asyncio.sleep(0.2)
                return x + 1
            return await asyncio.gather(*[slow(1) for _ in range(20)])
    assert asyncio.run(main()) == [2] * 20 and calls == [1]


def test_lock_exclusive_and_safe_release(wclient):
    lock = wclient.lock("L", timeout=5)
    assert lock.acquire() is True
    other = wclient.lock("L", timeout=5)
    assert other.acquire(blocking=False) is False
    assert other.acquire(blocking_timeout=0.1) is False
    assert lock.locked() is True
    lock.release()
    assert lock.locked() is False
    with pytest.raises(LockError):
        lock.release()
    # An expired holder cannot release the next holder's lock.
    short = wclient.lock("M", timeout=0.1)
    assert short.acquire()
    deadline = time.monotonic() + 5
    while wclient.exists("M") and time.monotonic() < deadline:  # poll until it expires
        time.sleep(0.01)
    taker = wclient.lock("M", timeout=5)
    assert taker.acquire(blocking_timeout=1)
    with pytest.raises(LockError):
        short.release()
    assert wclient.exists("M")
    assert taker.extend(10) is True
    assert wclient.ttl("M") > 9
    taker.release()
    with wclient.lock("N", timeout=5):
        assert wclient.exists("N")
    assert not wclient.exists("N")


def test_lock_mutual_exclusion_threads(backend):
    with CacheClient(backend.address) as c:
        if not supports_watch(c):
            pytest.skip("this server has no WATCH/MULTI yet")
        inside, overlaps = [], []

        def worker():
            for _ in range(5):
                with c.lock("crit", timeout=5, blocking_timeout=10):
                    inside.append(1)
                    if len(inside) > 1:
                        overlaps.append(1)
                    time.sleep(0.005)
                    inside.pop()
        run_threads(worker, [()] * 4)
        assert not overlaps


def test_id_generator_unique(client):
    gen = client.id_generator("orders", block=7)
    ids = [gen.next() for _ in range(50)]
    assert len(set(ids)) == 50 and ids == sorted(ids)
    other = client.id_generator("orders", block=7)
    assert not set(other.next() for _ in range(20)) & set(ids)


def test_id_generator_threads_and_processes_share_nothing(backend):
    seen = []
    with CacheClient(backend.address) as a, CacheClient(backend.address) as b:
        gens = [a.id_generator("ids", block=10), b.id_generator("ids", block=10)]

        def worker(gen):
            seen.extend(gen.next() for _ in range(100))
        run_threads(worker, [(gens[i % 2],) for i in range(4)])
    assert len(seen) == 400 and len(set(seen)) == 400


def test_cached_probabilistic_early_recompute(client):
    calls = []

    @client.cached(ttl=60, beta=1e12)   # absurd beta: always "about to expire"
    def eager():
        calls.append(1)
        time.sleep(0.001)
        return len(calls)
    assert eager() == 1
    assert eager() == 2                  # recomputed before expiry
    calls_before = len(calls)

    @client.cached(ttl=60, beta=0)
    def lazy():
        calls.append(1)
        return "same"
    assert lazy() == lazy() == "same" and len(calls) == calls_before + 1


def test_get_or_set_with_coroutine_function(backend):
    async def main():
        async with AsyncCacheClient(backend.address) as c:
            await c.delete("gos")

            async def compute():
                await asyncio.sleep(0)
                return {"computed": True}
            first = await c.get_or_set("gos", compute, ttl=10)
            return first, await c.get("gos")
    assert asyncio.run(main()) == ({"computed": True}, {"computed": True})
    with CacheClient(backend.address) as c:
        async def not_here():
            return 1
        with pytest.raises(TypeError, match="cannot await"):
            c.get_or_set("gos2", not_here)


def test_cached_odd_keys_and_foreign_values(client):
    @client.cached(ttl=30, key=lambda n: n)      # an int key
    def ident(n):
        return [n]
    client.set(41, "written by someone else")    # not a cached entry: recomputed
    assert ident(41) == [41] and ident(41) == [41]

    @client.cached(ttl=30, key=lambda: b"raw-key")
    def raw():
        return "r"
    assert raw() == "r" and client.get(b"raw-key")[0] == "r"


def test_sync_with_on_async_lock_is_an_error(backend):
    c = AsyncCacheClient(backend.address)
    with pytest.raises(TypeError, match="async with"):
        with c.lock("x"):
            pass
    asyncio.run(c.close())
