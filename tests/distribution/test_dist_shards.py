"""Shards with replicas: placement, replica reads after a primary's SIGKILL, WAIT.

Placement tests need no server. The failover tests run real primary/replica
pairs (``--replicaof``) of each server kind available: redis-server, and
distcache once it speaks replication.
"""
from __future__ import annotations

import asyncio
import random

import pytest
import redis

from dist_helpers import async_wait_until, server_kinds, start_server, wait_until

from distcache import AsyncCacheClient, CacheClient
from distcache.client.base import resolve_servers, resolve_shards
from distcache.client.errors import ServerDown
from distcache.client.ring import KetamaRing
from distcache.client.shards import parse_shards

INTERVAL = 0.4
OPTIONS = dict(health_interval=INTERVAL, timeout=2.0, connect_timeout=1.0)
KEYS = [f"key:{i}" for i in range(300)]


# -- placement --------------------------------------------------------------------
def test_replicas_keep_ketama_placement():
    plain = ["10.0.0.1:2050", "10.0.0.2:2050", "10.0.0.3:2050 weight=2"]
    pool = ["10.0.0.1:2050 replicas=10.0.1.1:2050",
            "10.0.0.2:2050 replicas=10.0.1.2:2050+10.0.2.2:2050",
            "10.0.0.3:2050 weight=2 replicas=10.0.1.3:2050"]
    ring = KetamaRing(plain)
    with CacheClient(pool, health_interval=None) as client:
        for i in range(3000):
            key = f"k{i}"
            assert client.server_for(key) == ring.get_server(key).address
            shard = client.shard_for(key)
            assert shard.primary.address == client.server_for(key)
            assert shard.name == shard.primary.address
        assert client.servers == [s.split()[0] for s in plain]
        assert [r.address for r in client.shard_for("k1").replicas] in (
            ["10.0.1.1:2050"], ["10.0.1.2:2050", "10.0.2.2:2050"], ["10.0.1.3:2050"])


def test_named_shards_are_placed_by_name():
    a = CacheClient(["10.0.0.1:1 name=alpha", "10.0.0.2:1 name=beta"], health_interval=None)
    b = CacheClient(["10.9.0.1:7 name=alpha replicas=10.9.0.3:7", "10.9.0.2:7 name=beta"],
                    health_interval=None)
    try:
        for i in range(2000):
            assert a.shard_for(f"k{i}").name == b.shard_for(f"k{i}").name
        names = {a.shard_for(f"k{i}").name for i in range(200)}
        assert names == {"alpha", "beta"}
    finally:
        a.close()
        b.close()


def test_pool_from_environment_and_config_file(tmp_path):
    env = {"DISTCACHE_SERVERS": "a:1 replicas=a2:1,b:2 weight=2 replicas=b2:2+b3:2"}
    shards = resolve_shards(None, env)
    assert [(s.primary.address, s.primary.weight, [r.address for r in s.replicas])
            for s in shards] == [("a:1", 1, ["a2:1"]), ("b:2", 2, ["b2:2", "b3:2"])]
    assert [s.address for s in resolve_servers(None, env)] == ["a:1", "b:2"]
    conf = tmp_path / "client.conf"
    conf.write_text("server_pool a:1 replicas=a2:1 b:2 name=bee replicas=b2:2\n")
    shards = resolve_shards(None, {"DISTCACHE_CONFIG": str(conf)})
    assert [(s.name, [r.address for r in s.replicas]) for s in shards] == [
        ("a:1", ["a2:1"]), ("bee", ["b2:2"])]


def test_bad_pools_are_refused():
    with pytest.raises(ValueError, match="listed twice"):
        parse_shards(["a:1 replicas=b:1", "b:1"])
    with pytest.raises(ValueError, match="empty shard name"):
        parse_shards(["a:1 name="])
    with pytest.raises(ValueError):
        parse_shards(["a:1 replicas=b:notaport"])


# -- real primary/replica pairs ------------------------------------------------------
def _linked(port):
    info = redis.Redis(port=port, socket_timeout=5).info("replication")
    return info.get("master_link_status") == "up"


@pytest.fixture(params=server_kinds())
def pairs(request, tmp_path):
    """3 shards: (primary, replica) processes, replication link up."""
    procs, shards = [], []
    try:
        for i in range(3):
            primary = start_server(request.param, tmp_path / f"p{i}")
            procs.append(primary)
            replica = start_server(request.param, tmp_path / f"r{i}",
                             "--replicaof", "127.0.0.1", str(primary.port))
            procs.append(replica)
            shards.append((primary, replica))
        for _, replica in shards:
            assert wait_until(lambda: _linked(replica.port), timeout=30)
        yield shards
    finally:
        for proc in procs:
            proc.stop()


def _pool(shards):
    return [f"{p.address} replicas={r.address}" for p, r in shards]


def _get_calls(port, command="get"):
    stats = redis.Redis(port=port, socket_timeout=5).info("commandstats")
    return stats.get(f"cmdstat_{command}", {}).get("calls", 0)


def test_set_with_wait_reports_replicas(pairs):
    with CacheClient(_pool(pairs), **OPTIONS) as client:
        assert client.set("w", 1, replicas=1) == 1
        assert client.set("w", 2, nx=True, replicas=1) is False
        assert client.set("w", 3, replicas=2, replicas_timeout=0.05) == 1  # only one exists
        primary = client.shard_for("w").replicas[0]
        assert redis.Redis(port=primary.port).get("w") is not None
        with pytest.raises(TypeError):
            client.pipeline().set("w", 1, replicas=1)


def test_pipeline_with_replicas_waits_per_server(pairs):
    with CacheClient(_pool(pairs), **OPTIONS) as client:
        keys = KEYS[:30]
        with client.pipeline(replicas=1) as p:
            for key in keys:
                p.set(key, key)
            p.get(keys[0]).incr("counter")
            assert p.execute() == [True] * len(keys) + [keys[0], 1]
            written = {client.server_for(k) for k in keys + ["counter"]}
            assert p.confirmed == {address: 1 for address in written}
        for key in keys:  # confirmed: every replica holds its shard's keys
            replica = client.shard_for(key).replicas[0]
            assert redis.Redis(port=replica.port).get(key) is not None
        with client.pipeline(replicas=1) as p:  # reads only: no WAIT
            assert p.get(keys[0]).execute() == [keys[0]]
            assert p.confirmed == {}
        with client.pipeline(replicas=2, replicas_timeout=0.05) as p:
            assert p.set(keys[0], "x").execute() == [True]
            assert p.confirmed == {client.server_for(keys[0]): 1}  # only one replica exists

    async def scenario():
        aclient = AsyncCacheClient(_pool(pairs), **OPTIONS)
        try:
            p = aclient.pipeline(replicas=1)
            for key in keys:
                p.set(key, "async")
            assert await p.execute() == [True] * len(keys)
            assert set(p.confirmed.values()) == {1}
            assert set(p.confirmed) == {aclient.server_for(k) for k in keys}
        finally:
            await aclient.close()

    asyncio.run(scenario())


def test_read_from_replicas_spreads_reads(pairs):
    with CacheClient(_pool(pairs), read_from_replicas=True, **OPTIONS) as client:
        for key in KEYS[:60]:
            client.set(key, key, replicas=1)
        for key in KEYS[:60]:
            assert client.get(key) == key
    assert sum(_get_calls(p.port) for p, _ in pairs) == 0
    assert sum(_get_calls(r.port) for _, r in pairs) == 60


def test_id_blocks_reach_replicas_the_client_sees_down(pairs):
    """A replica the client's pings missed (a busy host) may still be linked and be
    promoted: it gets every id block before the block is used. One really down
    costs the WAIT's time, and ids keep coming."""
    (primary, live), (_, dead) = pairs[0], pairs[1]
    with CacheClient(_pool(pairs), **OPTIONS) as client:
        client._monitor.stop()  # no ping re-admits them: the client's view stays
        for replica in (live, dead):
            spec = next(s for s in client._all_servers if s.address == replica.address)
            for _ in range(2):  # failure_threshold
                client._monitor.record_failure(spec)
            assert client.health()[replica.address]["state"] == "down"
        dead.kill()
        ids = client.id_generator("ids", block=10)
        slot = client.servers.index(primary.address)
        ids._first = slot
        key = ids._keys[slot]
        waits = _get_calls(primary.port, "wait")
        for _ in range(5):
            for _ in range(10):
                ids()
            # Read at once, no polling: the block was confirmed before its first id.
            assert int(redis.Redis(port=live.port).get(key)) == \
                int(redis.Redis(port=primary.port).get(key))
        assert _get_calls(primary.port, "wait") == waits + 5  # one WAIT per block
        other = client.id_generator("ids", block=10)
        other._first = client.servers.index(pairs[1][0].address)
        values = [other() for _ in range(20)]
        assert len(set(values)) == 20


def _write_all(client):
    for key in KEYS:
        assert client.set(key, key, replicas=1) == 1


def test_sigkill_primary_reads_hit_replica(pairs):
    victim, _ = pairs[1]
    with CacheClient(_pool(pairs), **OPTIONS) as client:
        _write_all(client)
        victim_keys = [k for k in KEYS if client.server_for(k) == victim.address]
        assert victim_keys
        victim.kill()
        rng = random.Random(3)
        # Every read hits, before, during and after the detection window.
        for _ in range(3):
            for key in rng.sample(KEYS, len(KEYS)):
                assert client.get(key) == key
        assert wait_until(lambda: client.health()[victim.address]["state"] == "down",
                          timeout=2 * INTERVAL + 2)
        assert all(client.get(k) == k for k in victim_keys)
        # Writes follow the failover policy: "next" puts them on another shard.
        assert client.set(victim_keys[0], "new") is True
        assert client.get(victim_keys[0]) == victim_keys[0]  # reads still go to the replica
    with CacheClient(_pool(pairs), failover="error", **OPTIONS) as strict:
        assert wait_until(lambda: strict.health()[victim.address]["state"] == "down",
                          timeout=4 * INTERVAL + 2)
        assert strict.get(victim_keys[1]) == victim_keys[1]
        with pytest.raises(ServerDown):
            strict.set(victim_keys[1], "x")
    with CacheClient(_pool(pairs), failover="error", ignore_errors=True, **OPTIONS) as lax:
        assert wait_until(lambda: lax.health()[victim.address]["state"] == "down",
                          timeout=4 * INTERVAL + 2)
        assert lax.set(victim_keys[1], "x") is False  # as docs/distribution.md says
        assert lax.get(victim_keys[1]) == victim_keys[1]


def test_sigkill_primary_async_reads_hit_replica(pairs):
    victim, _ = pairs[0]

    async def scenario():
        client = AsyncCacheClient(_pool(pairs), **OPTIONS)
        try:
            for key in KEYS:
                assert await client.set(key, key, replicas=1) == 1
            victim_keys = [k for k in KEYS if client.server_for(k) == victim.address]
            victim.kill()
            for _ in range(3):
                values = await asyncio.gather(*(client.get(k) for k in KEYS))
                assert values == KEYS
            assert await async_wait_until(
                lambda: client.health()[victim.address]["state"] == "down",
                timeout=2 * INTERVAL + 2)
            assert await client.get_many(victim_keys) == {k: k for k in victim_keys}
        finally:
            await client.close()

    asyncio.run(scenario())


def test_sigkill_primary_under_load_no_errors_no_misses(pairs):
    """Steady get/set load from 2 threads; SIGKILL a primary: no exception reaches
    the application and no key written (WAIT-confirmed) before the kill misses."""
    import threading
    victim, _ = pairs[2]
    with CacheClient(_pool(pairs), **OPTIONS) as client:
        _write_all(client)
        stop = threading.Event()
        errors, misses, ops = [], [], [0]

        def load(seed):
            rng = random.Random(seed)
            n = 0
            while not stop.is_set():
                key = rng.choice(KEYS)
                try:
                    if client.get(key) != key:
                        misses.append(key)
                    client.set(f"new:{seed}:{n}", n)
                except Exception as exc:  # anything reaching the application counts
                    errors.append(repr(exc))
                n += 1
                ops[0] += 1

        threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        try:
            assert wait_until(lambda: ops[0] > 200, timeout=20)
            victim.kill()
            assert wait_until(lambda: client.health()[victim.address]["state"] == "down",
                              timeout=2 * INTERVAL + 2)
            seen = ops[0]
            assert wait_until(lambda: ops[0] > seen + 200, timeout=20)
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
        assert errors == [] and misses == []
