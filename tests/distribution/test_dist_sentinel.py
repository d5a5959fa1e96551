"""Sentinel-backed pools: real redis-sentinel processes watching primary/replica pairs.

SIGKILL a primary: reads of its keys keep hitting (its replica), writes wait
for Sentinel's promotion and land on the new primary. Skips without
redis-sentinel (apt-get install redis-sentinel) or redis-server.
"""
from __future__ import annotations

import asyncio
import time

import pytest
import redis

from dist_helpers import needs_sentinel, server_kinds, start_server, start_watched, wait_until

from distcache import AsyncCacheClient, CacheClient
from distcache.client.sentinel import SentinelWatcher

pytestmark = needs_sentinel

SERVICES = ["shard-a", "shard-b"]
DOWN_AFTER_MS = 1000
KEYS = [f"key:{i}" for i in range(200)]


def _client(sentinels):
    return CacheClient(sentinels=[s.address for s in sentinels], services=SERVICES,
                       health_interval=0.4, timeout=2.0, connect_timeout=1.0,
                       failover_timeout=30)


@pytest.fixture(params=server_kinds())
def watched(request, tmp_path):
    """2 shards (primary + replica) and 3 sentinels that know each other."""
    procs = []
    try:
        shards, sentinels = start_watched(request.param, tmp_path, SERVICES, procs,
                                          down_after_ms=DOWN_AFTER_MS)
        yield shards, sentinels
    finally:
        for proc in procs:
            proc.stop()


def test_discovery_places_shards_by_service_name(watched):
    shards, sentinels = watched
    watcher = SentinelWatcher([s.address for s in sentinels], SERVICES)
    found = watcher.discover()
    assert [(s.name, s.primary.address, [r.address for r in s.replicas]) for s in found] == [
        (service, p.address, [r.address]) for service, p, r in shards]
    with CacheClient(sentinels=[s.address for s in sentinels], services=SERVICES,
                     health_interval=None) as client:
        assert {client.shard_for(f"k{i}").name for i in range(100)} == set(SERVICES)
        assert client.servers == [p.address for _, p, _ in shards]
    with pytest.raises(ValueError):
        CacheClient(["a:1"], sentinels=["b:2"], services=["x"])


def test_sentinel_failover_moves_writes_to_promoted_replica(watched):
    shards, sentinels = watched
    service, victim, replica = shards[0]
    client = _client(sentinels)
    try:
        for key in KEYS:
            assert client.set(key, key, replicas=1) == 1
        victim_keys = [k for k in KEYS if client.shard_for(k).name == service]
        assert victim_keys and client.server_for(victim_keys[0]) == victim.address
        victim.kill()
        started = time.monotonic()
        assert all(client.get(k) == k for k in KEYS)  # the replica answers
        # The write waits for Sentinel's promotion, then goes to the new primary.
        assert client.set(victim_keys[0], "after") is True
        assert time.monotonic() - started < 30
        assert client.server_for(victim_keys[0]) == replica.address
        assert redis.Redis(port=replica.port).get(victim_keys[0]) is not None
        assert client.get(victim_keys[0]) == "after"
        assert all(client.get(k) == k for k in victim_keys[1:])
        assert client.servers == [replica.address, shards[1][1].address]
    finally:
        client.close()


def test_id_generator_unique_across_promotion(watched):
    shards, sentinels = watched
    _, victim, replica = shards[0]
    client = _client(sentinels)
    try:
        ids = client.id_generator("orders", block=50)
        ids._first = 0  # reserve on shard-a's counter (slot 0), the one whose primary dies
        before = [ids() for _ in range(500)]
        # Every reserved block reached the replica before it was used.
        slot_key = ids._keys[0]
        assert int(redis.Redis(port=replica.port).get(slot_key)) > 0
        victim.kill()
        probe = next(f"p{i}" for i in range(1000) if client.shard_for(f"p{i}").name == SERVICES[0])
        assert client.set(probe, 1) is True  # waits for the promotion
        assert client.server_for(slot_key) == replica.address
        fresh = client.id_generator("orders", block=50)
        fresh._first = 0
        after = [fresh() for _ in range(500)] + [ids() for _ in range(500)]
        assert len(set(before + after)) == len(before) + len(after)
    finally:
        client.close()


def test_sentinel_failover_async_client(watched):
    shards, sentinels = watched
    service, victim, replica = shards[1]

    async def scenario():
        client = AsyncCacheClient(sentinels=[s.address for s in sentinels], services=SERVICES,
                                  health_interval=0.4, timeout=2.0, connect_timeout=1.0,
                                  failover_timeout=30)
        try:
            for key in KEYS:
                assert await client.set(key, key, replicas=1) == 1
            mine = [k for k in KEYS if client.shard_for(k).name == service]
            victim.kill()
            values = await asyncio.gather(*(client.get(k) for k in KEYS))
            assert values == KEYS  # the replica answers
            assert await client.set(mine[0], "after") is True  # after the promotion
            assert client.server_for(mine[0]) == replica.address
            assert await client.get(mine[0]) == "after"
        finally:
            await client.close()

    asyncio.run(scenario())


def _str(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _late_replica(shards, sentinels, tmp_path, started):
    """A replica of shard-a started after the client's discovery, known to every sentinel,
    with shard-a's first replica dead and seen down: Sentinel's only choice. The new
    process goes into ``started``, for the caller to stop."""
    service, victim, replica = shards[0]
    kind = "redis" if "redis-server" in victim.argv[0] else "distcache"
    late = start_server(kind, tmp_path / "late", "--replicaof", "127.0.0.1", str(victim.port))
    started.append(late)

    def known(flag=None, address=late.address):
        for sentinel in sentinels:
            found = False
            for fields in redis.Redis(port=sentinel.port, socket_timeout=5).execute_command(
                    "SENTINEL", "REPLICAS", service):
                if not isinstance(fields, dict):  # redis-py parses it into a dict
                    fields = dict(zip(fields[::2], fields[1::2]))
                info = {_str(k): _str(v) for k, v in fields.items()}
                if f"{info['ip']}:{info['port']}" == address:
                    found = flag is None or flag in info["flags"]
            if not found:
                return False
        return True
    assert wait_until(known, timeout=40, step=0.2)  # sentinels ask the primary every 10 s
    replica.kill()
    assert wait_until(lambda: known("s_down", replica.address), timeout=20, step=0.1)
    return victim, late


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_local_cache_follows_a_primary_discovered_later(watched, tmp_path, kind):
    """Sentinel promotes a server the client did not know: its keys are cached, and
    dropped when another client changes them there (the listener is subscribed)."""
    shards, sentinels = watched
    service = shards[0][0]
    options = dict(sentinels=[s.address for s in sentinels], services=SERVICES,
                   health_interval=0.4, timeout=2.0, connect_timeout=1.0,
                   failover_timeout=40, local_cache=True)
    probe = CacheClient(**dict(options, local_cache=None, health_interval=None))
    key = next(k for k in KEYS if probe.shard_for(k).name == service)
    probe.close()
    started = []

    def steps(client, pause):
        """The scenario as generator steps: each yields an awaitable or a value."""
        assert (yield client.set(key, "v1")) is True
        assert (yield client.get(key)) == "v1"
        victim, late = _late_replica(shards, sentinels, tmp_path, started)
        victim.kill()
        assert (yield client.set(key, "v2")) is True  # waits for the promotion
        assert client.server_for(key) == late.address
        assert (yield client.get(key)) == "v2"
        hits = client.local_cache.stats()["hits"]
        assert (yield client.get(key)) == "v2"
        assert client.local_cache.stats()["hits"] == hits + 1  # cached from the new primary
        other = CacheClient([late.address], health_interval=None)
        try:
            other.set(key, "v3")
        finally:
            other.close()
        deadline = time.monotonic() + 10
        while (yield client.get(key)) != "v3":
            assert time.monotonic() < deadline, "the change never reached the local cache"
            yield pause()  # the asyncio client's listener runs in the loop meanwhile

    def run_sync():
        client = CacheClient(**options)
        try:
            gen = steps(client, lambda: time.sleep(0.05))
            value = next(gen)
            while True:
                value = gen.send(value)
        except StopIteration:
            pass
        finally:
            client.close()

    async def run():
        client = AsyncCacheClient(**options)
        try:
            gen = steps(client, lambda: asyncio.sleep(0.05))
            try:
                value = await next(gen)
                while True:
                    value = await gen.send(value)
            except StopIteration:
                pass
        finally:
            await client.close()
    try:
        run_sync() if kind == "sync" else asyncio.run(run())
    finally:
        for proc in started:
            proc.stop()
