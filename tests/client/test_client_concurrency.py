"""One client shared by many threads, or by many asyncio tasks."""
from __future__ import annotations

import asyncio

from client_helpers import run_threads

from distcache import AsyncCacheClient, CacheClient


def test_threads_share_one_client(backend):
    errors = []
    with CacheClient(backend.address) as c:
        def worker(n):
            try:
                for i in range(100):
                    key = f"t{n}:{i}"
                    c.set(key, [n, i])
                    assert c.get(key) == [n, i]
                    assert c.get_many([key, "nope"]) == {key: [n, i]}
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
        run_threads(worker, [(n,) for n in range(8)])
    assert not errors


def test_tasks_share_one_connection_and_survive_cancellation(backend):
    async def main():
        async with AsyncCacheClient(backend.address) as c:
            async def worker(n):
                for i in range(20):
                    await c.set(f"a{n}:{i}", (n, i))
                    assert await c.get(f"a{n}:{i}") == (n, i)
                return n
            assert await asyncio.gather(*[worker(n) for n in range(100)]) == list(range(100))
            # Cancel tasks while their requests are in flight: the replies still
            # arrive and are dropped, and the connection stays in step.
            for _ in range(5):
                tasks = [asyncio.ensure_future(c.get(f"a{n}:0")) for n in range(50)]
                await asyncio.sleep(0)
                for t in tasks[::2]:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                assert await c.get("a7:3") == (7, 3)
            pipe = c.pipeline()
            for n in range(100):
                pipe.get(f"a{n}:1")
            assert await pipe.execute() == [(n, 1) for n in range(100)]
            return True
    assert asyncio.run(main())


def test_async_client_reused_across_event_loops(backend):
    c = AsyncCacheClient(backend.address)
    assert asyncio.run(c.set("loop", 1)) is True
    assert asyncio.run(c.get("loop")) == 1        # a new loop: reconnects
    asyncio.run(c.close())
