"""Several servers: ketama routing, split multi-key ops, health and failover policies."""
from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
import redis

from servers import distcache_server

from distcache.client.errors import ServerDown
from distcache.client.ring import KetamaRing


@contextlib.contextmanager
def cluster(tmp_path, n=3):
    procs = []
    try:
        for i in range(n):
            procs.append(distcache_server(tmp_path / f"s{i}").start())
        yield procs
    finally:
        for proc in procs:
            proc.stop()


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    with cluster(tmp_path_factory.mktemp("cluster")) as procs:
        yield procs


def raw(proc):
    return redis.Redis(port=proc.port)


def wait_for(predicate, client, timeout=10.0):
    """Poll with a deadline; an asyncio client's loop runs meanwhile (its health
    monitor is a task)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        if getattr(client, "loop", None) is not None:
            client.loop.run_until_complete(asyncio.sleep(0.02))
        else:
            time.sleep(0.02)


def test_routing_follows_the_ring(three, client_factory):
    specs = [three[0].address, f"{three[1].address} weight=2", ("127.0.0.1", three[2].port, 1)]
    c = client_factory(specs)
    c.flush()
    ring = KetamaRing(specs)
    keys = [f"key:{i}" for i in range(200)]
    assert c.set_many({k: i for i, k in enumerate(keys)}) is True
    by_port = {p.port: p for p in three}
    for k in keys[:40]:
        owner = c.server_for(k)
        assert owner == ring.get_server(k.encode()).address
        assert raw(by_port[int(owner.rsplit(":", 1)[1])]).get(k) is not None
    assert sum(raw(p).dbsize() for p in three) == 200
    assert all(raw(p).dbsize() > 20 for p in three)   # really spread
    assert c.get_many(keys + ["missing"]) == {k: i for i, k in enumerate(keys)}
    assert c.set("{user1}:a", 1) and c.set("{user1}:b", 2)
    assert c.server_for("{user1}:a") == c.server_for("{user1}:b")
    p = c.pipeline()
    for k in keys:
        p.incr(k)
    assert p.execute() == list(range(1, 201))
    assert c.delete_many(keys) == 200
    assert c.ping() is True and len(c.stats()) == 3
    assert set(c.health()) == {p.address for p in three}


def test_failover_policies_and_readmission(tmp_path, client_factory):
    with cluster(tmp_path, 2) as procs:
        states = []
        opts = dict(health_interval=0.1, failure_threshold=2, timeout=1, connect_timeout=0.5,
                    retries=0)
        c = client_factory([p.address for p in procs], failover_ttl=30,
                           on_server_state=lambda *a: states.append(a), **opts)
        strict = client_factory([p.address for p in procs], failover="error", **opts)
        quiet = client_factory([p.address for p in procs], failover="error",
                               ignore_errors=True, **opts)
        c.flush()
        assert strict.ping() and quiet.ping()  # (an asyncio client's monitor starts on use)
        victim = procs[0]
        keys = [k for k in (f"k{i}" for i in range(300)) if c.server_for(k) == victim.address]
        assert keys
        c.set(keys[0], "before")
        ids = c.id_generator("ids", block=5)
        seen = {ids.next() for _ in range(40)}
        victim.kill()
        wait_for(lambda: c.health()[victim.address]["state"] == "down", c)
        wait_for(lambda: strict.health()[victim.address]["state"] == "down", strict)
        wait_for(lambda: quiet.health()[victim.address]["state"] == "down", quiet)
        assert (victim.address, "up", "down") in states
        # failover="next": the keys go to the next live server, with capped TTLs.
        assert c.get(keys[0]) is None
        assert c.set(keys[1], "during") is True
        assert c.get(keys[1]) == "during"
        assert 0 < c.ttl(keys[1]) <= 30
        assert c.set_many({k: 1 for k in keys[:5]}) is True
        assert c.get_many(keys[:5]) == {k: 1 for k in keys[:5]}
        others = [k for k in (f"o{i}" for i in range(50)) if c.server_for(k) != victim.address]
        c.set(others[0], "stays")
        assert c.ttl(others[0]) is None   # no cap away from the failover
        p = c.pipeline()
        p.set(keys[2], "piped").get(keys[2]).set(others[1], "x").get(others[0])
        assert p.execute() == [True, "piped", True, "stays"]
        assert 0 < c.ttl(keys[2]) <= 30 and c.ttl(others[1]) is None
        started = time.monotonic()
        with pytest.raises(ServerDown):
            strict.get(keys[0])
        assert time.monotonic() - started < 1.0   # no waiting on a dead server
        assert quiet.get(keys[0], "dflt") == "dflt" and quiet.set(keys[0], 1) is False
        assert quiet.get(others[0]) == "stays"
        # id_generator: counters never move on a stand-in, so ids stay unique.
        for gen in [ids] + [c.id_generator("ids", block=5) for _ in range(3)]:
            for _ in range(20):
                value = gen.next()
                assert value not in seen
                seen.add(value)
        # The server comes back on its port: it is probed and re-admitted.
        revived = distcache_server(tmp_path / "revived", port=victim.port).start()
        procs.append(revived)
        wait_for(lambda: c.health()[victim.address]["state"] == "up", c)
        assert (victim.address, "down", "up") in states
        assert c.get(keys[1]) is None      # the owner is back (it lost its data)
        assert c.set(keys[1], "after") and c.ttl(keys[1]) is None

