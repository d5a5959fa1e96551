"""The client's local cache (local_cache=...): served locally, never stale once
the server's invalidation has been received, bounded, cleared when tracking is
lost. Real servers; each case runs with the sync and the asyncio client."""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from servers import distcache_server, wait_until

from distcache import CacheClient
from distcache.client.localcache import ENTRY_OVERHEAD, LocalCache
from distcache.client.errors import CacheError, ResponseError


def pump(client: Any) -> None:
    """Let an asyncio client's listener task read what arrived (the Blocking
    adapter runs the loop only during calls); a thread needs nothing."""
    loop = getattr(client, "loop", None)
    if loop is not None:
        loop.run_until_complete(asyncio.sleep(0.005))


def wait_gone(client: Any, key: str, timeout: float = 10.0) -> None:
    def gone() -> bool:
        pump(client)
        return key not in client.local_cache
    wait_until(gone, timeout, message=f"invalidation of {key!r}")


def commands_seen(server_client: Any, name: str) -> int:
    """calls of ``name`` on the server (INFO commandstats)."""
    text = server_client.execute("INFO", "commandstats").decode()
    for line in text.splitlines():
        if line.startswith(f"cmdstat_{name}:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


@pytest.fixture
def pair(backend, client_factory):
    """(caching client, writing client) on one server of each kind."""
    writer = client_factory(backend.address)
    writer.flush()
    reader = client_factory(backend.address, local_cache=True)
    return reader, writer


def test_hits_are_served_locally(pair, backend):
    reader, writer = pair
    writer.set("k", {"a": [1, 2]})
    writer.execute("CONFIG", "RESETSTAT")
    for _ in range(20):
        assert reader.get("k") == {"a": [1, 2]}
    stats = reader.local_cache.stats()
    assert stats["hits"] == 19 and stats["misses"] == 1
    assert commands_seen(writer, "get") == 1  # one GET reached the server
    # a miss is cached too (the server tracks the read of a missing key)
    assert reader.get("absent", "d") == "d" and reader.get("absent", "d") == "d"
    assert reader.exists("k") is True and reader.exists("absent") is False
    assert reader.gets("k")[0] == {"a": [1, 2]}
    # the returned object is a fresh copy: mutating it does not touch the cache
    reader.get("k")["a"].append(3)
    assert reader.get("k") == {"a": [1, 2]}


def test_never_stale_after_the_invalidation_arrived(pair):
    reader, writer = pair
    writer.set("k", "old")
    assert reader.get("k") == "old" and "k" in reader.local_cache
    writer.set("k", "new")
    wait_gone(reader, "k")
    assert reader.get("k") == "new"
    writer.delete("k")
    wait_gone(reader, "k")
    assert reader.get("k") is None
    writer.set("k", "back")  # the cached miss is invalidated too
    wait_gone(reader, "k")
    assert reader.get("k") == "back"
    assert reader.local_cache.stats()["invalidations"] >= 3


def test_get_many_mixes_hits_and_misses(pair):
    reader, writer = pair
    writer.set_many({"a": 1, "b": 2})
    assert reader.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    hits = reader.local_cache.hits
    assert reader.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    assert reader.local_cache.hits == hits + 3
    writer.set("b", 20)
    wait_gone(reader, "b")
    assert reader.get_many(["a", "b", "c"]) == {"a": 1, "b": 20}
    writer.execute("RPUSH", "list", "x")  # MGET's nil for a list is not a cached miss
    assert reader.get_many(["a", "list"]) == {"a": 1} and "list" not in reader.local_cache
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        reader.get("list")


def test_own_writes_are_read_at_once(client_factory, dc_server):
    c = client_factory(dc_server.address, local_cache=True)
    c.flush()
    for i in range(30):  # no waiting: every write drops its own key
        assert c.get("k") == (i - 1 if i else None)
        c.set("k", i)
        assert c.get("k") == i
    c.incr("n"), c.get("n"), c.incr("n", 5)
    assert c.get("n") == 6
    c.set_many({"x": 1, "y": 2}), c.get_many(["x", "y"]), c.delete_many(["x"])
    assert c.get_many(["x", "y"]) == {"y": 2}
    value, token = c.gets("y")
    assert c.cas("y", 3, token) and c.get("y") == 3
    c.execute("APPEND", "s", "ab"), c.get("s"), c.execute("APPEND", "s", "c")
    assert c.execute("GET", "s") == b"abc"
    with c.pipeline() as p:
        p.set("y", 4).get("y")
        p.execute()
    assert c.get("y") == 4
    c.flush()
    assert c.get("y") is None


def test_entry_follows_the_key_ttl(pair):
    reader, writer = pair
    writer.set("t", "v", ttl=0.3)
    assert reader.get("t") == "v"
    # served locally no longer than the key lives on the server, even if the
    # server's expiry has not run (nobody touches the key there)
    wait_until(lambda: reader.get("t") is None, 5, message="local expiry")


def test_bounded_by_entries_and_bytes(client_factory, dc_server):
    writer = client_factory(dc_server.address)
    writer.flush()
    writer.set_many({f"k{i}": "x" * 1000 for i in range(60)})
    small = client_factory(dc_server.address, local_cache=LocalCache(max_entries=10))
    for i in range(60):
        small.get(f"k{i}")
    assert len(small.local_cache) == 10 and small.local_cache.evictions == 50
    assert "k59" in small.local_cache and "k0" not in small.local_cache  # LRU order

    limit = 8 * (1000 + 3 + 8 + ENTRY_OVERHEAD)
    tight = client_factory(dc_server.address, local_cache={"max_bytes": limit})
    for i in range(60):
        assert tight.get(f"k{i}") == "x" * 1000
        assert tight.local_cache.bytes <= limit
    assert 0 < len(tight.local_cache) <= 8
    writer.set("big", "y" * limit)  # over max_bytes / 8: not cached at all
    assert tight.get("big") == "y" * limit and "big" not in tight.local_cache

    lived = client_factory(dc_server.address, local_cache=LocalCache(ttl=0.2))
    lived.get("k1"), lived.get("k1")
    misses = lived.local_cache.misses
    assert lived.local_cache.hits == 1
    # an entry lives at most ttl seconds, even with no invalidation
    wait_until(lambda: (lived.get("k1"), lived.local_cache.misses > misses)[1], 5,
               message="local ttl")


def test_flushall_by_another_client_clears(pair):
    reader, writer = pair
    writer.set_many({"a": 1, "b": 2})
    reader.get_many(["a", "b"])
    assert len(reader.local_cache) == 2
    writer.execute("FLUSHALL")
    wait_until(lambda: (pump(reader), len(reader.local_cache) == 0)[1], 10)
    assert reader.get_many(["a", "b"]) == {}


def test_listener_drop_clears_and_tracking_comes_back(pair):
    reader, writer = pair
    writer.set("k", 1)
    reader.get("k")
    killed = writer.execute("CLIENT", "KILL", "TYPE", "pubsub")
    assert killed >= 1
    wait_until(lambda: (pump(reader), len(reader.local_cache) == 0)[1], 10)
    # back: reads are cached again, and invalidations arrive on the new listener
    wait_until(lambda: (reader.get("k"), "k" in reader.local_cache)[1], 10)
    writer.set("k", 2)
    wait_gone(reader, "k")
    assert reader.get("k") == 2


def test_server_restart_clears(tmp_path, client_factory):
    with distcache_server(tmp_path / "a") as proc:
        port = proc.port
        reader = client_factory(proc.address, local_cache=True, retries=3)
        reader.set("k", "before")
        assert reader.get("k") == "before" and "k" in reader.local_cache
    wait_until(lambda: (pump(reader), len(reader.local_cache) == 0)[1], 10)
    with distcache_server(tmp_path / "b", port=port) as proc:
        writer = client_factory(proc.address)
        writer.set("k", "after")

        def fresh() -> bool:
            try:
                return reader.get("k") == "after" and "k" in reader.local_cache
            except CacheError:
                return False
        wait_until(fresh, 15, message="cached again after the restart")
        writer.set("k", "later")
        wait_gone(reader, "k")
        assert reader.get("k") == "later"


def test_each_server_clears_only_its_keys(tmp_path, client_factory):
    with distcache_server(tmp_path / "a") as one, distcache_server(tmp_path / "b") as two:
        reader = client_factory([one.address, two.address], local_cache=True,
                                health_interval=None)
        keys = [f"key{i}" for i in range(40)]
        reader.set_many({k: k for k in keys})
        assert reader.get_many(keys) == {k: k for k in keys}
        mine = {k for k in keys if reader.server_for(k) == one.address}
        assert 0 < len(mine) < len(keys)
        with CacheClient(one.address) as direct:
            direct.execute("FLUSHDB")
        wait_until(lambda: (pump(reader), not any(k in reader.local_cache for k in mine))[1],
                   10)
        assert all(k in reader.local_cache for k in keys if k not in mine)
        with CacheClient(two.address) as direct:
            direct.execute("CLIENT", "KILL", "TYPE", "pubsub")
        wait_until(lambda: (pump(reader), len(reader.local_cache) == 0)[1], 10)


def test_concurrent_writer_never_goes_backwards(pair):
    """A counter raced by another client: the cached reader's values never go
    back (a read invalidated in flight is not stored) and end at the last."""
    reader, writer = pair
    writer.set("n", 0)
    stop = threading.Event()
    final = []

    def write() -> None:
        with CacheClient(reader.servers) as w:
            n = 0
            while not stop.is_set():
                n = w.incr("n")
            final.append(n)
    thread = threading.Thread(target=write)
    thread.start()
    try:
        seen = -1
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            value = reader.get("n")
            assert value >= seen
            seen = value
    finally:
        stop.set()
        thread.join(10)
    wait_until(lambda: reader.get("n") == final[0], 10, message="the last value")


def test_read_invalidated_in_flight_is_not_stored():
    cache = LocalCache()
    cache.server_up("s")
    token = cache.begin(b"k", "s")
    cache.invalidate([b"k"])  # arrived before the reply
    assert cache.store(token, b"v", -1, time.monotonic()) is False and len(cache) == 0
    token = cache.begin(b"k", "s")
    cache.server_down("s")  # the listener dropped while the read was in flight
    assert cache.store(token, b"v", -1, time.monotonic()) is False
    assert cache.begin(b"k", "s") is None  # and nothing starts until it is back
    cache.server_up("s")
    token = cache.begin(b"k", "s")
    assert cache.store(token, b"v", -1, time.monotonic()) and cache.lookup(b"k") == b"v"


def test_off_costs_nothing(dc_server):
    with CacheClient(dc_server.address) as plain:
        assert plain.local_cache is None
        assert "get" not in vars(plain) and "_single" not in vars(plain)
    with pytest.raises(ValueError):
        LocalCache(max_entries=0)
    shared = LocalCache()
    with CacheClient(dc_server.address, local_cache=shared):
        with pytest.raises(ValueError, match="another client"):
            CacheClient(dc_server.address, local_cache=shared)


def test_failover_reads_are_not_cached(tmp_path, client_factory):
    with distcache_server(tmp_path / "a") as one, distcache_server(tmp_path / "b") as two:
        reader = client_factory([one.address, two.address], local_cache=True,
                                health_interval=0.1, failure_threshold=1, retries=0)
        keys = [f"key{i}" for i in range(30)]
        reader.set_many({k: k for k in keys})
        reader.get_many(keys)
        mine = [k for k in keys if reader.server_for(k) == one.address]
        others = [k for k in keys if k not in mine]
        one.stop()

        def failed_over() -> bool:
            pump(reader)
            try:
                return reader.get(mine[0], "gone") == "gone"
            except CacheError:
                return False
        wait_until(failed_over, 15, message="failover to the other server")
        assert not any(k in reader.local_cache for k in mine)
        reader.set(mine[0], "stand-in")
        assert reader.get(mine[0]) == "stand-in" and reader.get(mine[0]) == "stand-in"
        assert mine[0] not in reader.local_cache  # a stand-in's copy is not kept
        assert reader.get(others[0]) == others[0] and others[0] in reader.local_cache


def test_with_a_password(tmp_path, client_factory):
    with distcache_server(tmp_path, "--requirepass", "s3cret") as proc:
        reader = client_factory(proc.address, password="s3cret", local_cache=True)
        writer = client_factory(proc.address, password="s3cret")
        writer.set("k", 1)
        assert reader.get("k") == 1 and reader.get("k") == 1
        assert reader.local_cache.hits == 1
        writer.set("k", 2)
        wait_gone(reader, "k")
        assert reader.get("k") == 2
