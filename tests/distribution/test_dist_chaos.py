"""Chaos: 3 persistent servers under steady client load, SIGKILL one.

With the default policy (failover="next") no exception reaches the
application, the death shows in client.health() within 2 health intervals,
keys on the other servers keep hitting, and once the server is restarted it is
re-admitted and serves its persisted data again. Same for AsyncCacheClient.
"""
from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest
import redis

from dist_helpers import async_wait_until, wait_until
from servers import distcache_server

try:
    from distcache import AsyncCacheClient, CacheClient
except ImportError:  # pragma: no cover - the client is not there yet
    CacheClient = AsyncCacheClient = None

pytestmark = pytest.mark.skipif(CacheClient is None, reason="distcache.CacheClient is missing")

INTERVAL = 0.4
#: Slack over 2 intervals for a 2-core machine shared with other work.
SLACK = 0.3
STABLE = 240
OPTIONS = dict(health_interval=INTERVAL, timeout=2.0, connect_timeout=1.0)


def _start_servers(tmp_path):
    procs = []
    try:
        for i in range(3):
            # appendfsync always: every acknowledged write survives SIGKILL.
            procs.append(distcache_server(tmp_path / f"s{i}", "--appendfsync", "always",
                                          "--save", "", persistence=True).start(timeout=60))
    except Exception:
        for proc in procs:
            proc.stop()
        raise
    return procs


class Load:
    """What the load saw: operations done, exceptions, misses of live keys."""

    def __init__(self, client, victim, stable):
        self.victim = victim
        self.alive_keys = [k for k in stable if client.server_for(k) != victim]
        self.victim_keys = [k for k in stable if client.server_for(k) == victim]
        assert self.alive_keys and self.victim_keys
        self.ops = 0
        self.errors = []
        self.misses = []
        self.rng = random.Random(5)

    def step_args(self):
        n = self.ops
        return (f"load:{n % 500}", n, self.rng.choice(self.alive_keys),
                self.rng.choice(self.victim_keys), self.rng.sample(self.alive_keys, 5))

    def check(self, key, value, wanted, many):
        if value != int(key.split(":")[1]):
            self.misses.append((key, value))
        for k in wanted:
            if many.get(k) != int(k.split(":")[1]):
                self.misses.append((k, many.get(k)))
        self.ops += 1


def _stable_keys():
    return {f"stable:{i}": i for i in range(STABLE)}


def test_sync_client_survives_a_killed_server(tmp_path):
    procs = _start_servers(tmp_path)
    client = CacheClient([p.address for p in procs], **OPTIONS)
    stop = threading.Event()
    try:
        stable = _stable_keys()
        assert client.set_many(stable) is True
        victim = procs[1]
        load = Load(client, victim.address, stable)

        def run():
            deadline = time.monotonic() + 90
            while not stop.is_set() and time.monotonic() < deadline:
                key, n, alive, dead, many = load.step_args()
                try:
                    client.set(key, n)
                    value = client.get(alive)
                    client.get(dead)  # a miss while its server is down; never an error
                    load.check(alive, value, many, client.get_many(many))
                except Exception as exc:  # noqa: BLE001 - the test counts them
                    load.errors.append(repr(exc))
                    load.ops += 1
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert wait_until(lambda: load.ops >= 30, 30)

        victim.kill()
        killed = time.monotonic()
        assert wait_until(lambda: client.health()[victim.address]["state"] == "down", 10)
        detected = time.monotonic() - killed
        assert detected <= 2 * INTERVAL + SLACK, detected
        ops = load.ops
        assert wait_until(lambda: load.ops >= ops + 30, 30)  # steady load while it is down

        victim.start(timeout=60)
        assert wait_until(lambda: client.health()[victim.address]["state"] == "up", 20)
        ops = load.ops
        assert wait_until(lambda: load.ops >= ops + 30, 30)
        stop.set()
        thread.join(30)

        assert load.errors == []
        assert load.misses == []
        # Re-admitted, and its data (persisted before the crash) is served again.
        assert client.get_many(load.victim_keys) == {k: stable[k] for k in load.victim_keys}
        assert redis.Redis(port=victim.port).dbsize() >= len(load.victim_keys)
    finally:
        stop.set()
        client.close()
        for proc in procs:
            proc.stop()


def test_async_client_survives_a_killed_server(tmp_path):
    procs = _start_servers(tmp_path)
    victim = procs[1]

    async def main():
        loop = asyncio.get_running_loop()
        client = AsyncCacheClient([p.address for p in procs], **OPTIONS)
        stopping = asyncio.Event()

        def state(proc):
            return client.health()[proc.address]["state"]
        try:
            stable = _stable_keys()
            assert await client.set_many(stable) is True
            load = Load(client, victim.address, stable)

            async def run():
                deadline = time.monotonic() + 90
                while not stopping.is_set() and time.monotonic() < deadline:
                    key, n, alive, dead, many = load.step_args()
                    try:
                        await client.set(key, n)
                        value = await client.get(alive)
                        await client.get(dead)
                        load.check(alive, value, many, await client.get_many(many))
                    except Exception as exc:  # noqa: BLE001
                        load.errors.append(repr(exc))
                        load.ops += 1
            # Several concurrent tasks, as an asyncio application would have.
            tasks = [asyncio.ensure_future(run()) for _ in range(3)]
            assert await async_wait_until(lambda: load.ops >= 30, 30)

            victim.kill()
            killed = time.monotonic()
            assert await async_wait_until(lambda: state(victim) == "down", 10)
            detected = time.monotonic() - killed
            assert detected <= 2 * INTERVAL + SLACK, detected
            ops = load.ops
            assert await async_wait_until(lambda: load.ops >= ops + 30, 30)

            await loop.run_in_executor(None, lambda: victim.start(timeout=60))
            assert await async_wait_until(lambda: state(victim) == "up", 20)
            ops = load.ops
            assert await async_wait_until(lambda: load.ops >= ops + 30, 30)
            stopping.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)

            assert load.errors == []
            assert load.misses == []
            assert await client.get_many(load.victim_keys) == {
                k: stable[k] for k in load.victim_keys}
        finally:
            stopping.set()
            await client.close()

    try:
        asyncio.run(main())
    finally:
        for proc in procs:
            proc.stop()
