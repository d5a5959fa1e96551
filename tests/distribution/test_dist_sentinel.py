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

from dist_helpers import needs_sentinel, server_kinds, start_watched

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
