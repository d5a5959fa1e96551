"""maxmemory, eviction policies, OOM errors, MEMORY USAGE and INFO memory."""
from __future__ import annotations

import socket
import time

import pytest
import redis

from distcache.server.eviction import CLIENT_MEMORY, PYPY, gc_factor
from servers import distcache_server

KB = 1024
MB = 1024 * 1024
#: 4 MB of CPython's accounting: the policy tests keep as many keys on PyPy,
#: whose estimate counts its GC's heap growth on top.
FOUR_MB = str(int(4 * MB * gc_factor()))


def fill(r: redis.Redis, prefix: str, count: int, size: int = KB, start: int = 0,
         ttl_ms: int = 0, batch: int = 500) -> None:
    value = b"v" * size
    for first in range(start, start + count, batch):
        pipe = r.pipeline(transaction=False)
        for i in range(first, min(start + count, first + batch)):
            if ttl_ms:
                pipe.set(f"{prefix}{i}", value, px=ttl_ms)
            else:
                pipe.set(f"{prefix}{i}", value)
        pipe.execute()


def fast_fill(port: int, prefix: bytes, count: int, size: int, batch: int = 1000) -> None:
    """Pipelined SETs over a raw socket (much less client CPU than redis-py)."""
    value = b"v" * size
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for first in range(0, count, batch):
            n = min(count, first + batch) - first
            sock.sendall(b"".join(
                b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                % (len(key), key, size, value)
                for key in (prefix + b"%d" % i for i in range(first, first + n))))
            replies = b""
            while replies.count(b"\r\n") < n:
                chunk = sock.recv(65536)
                assert chunk, "connection closed"
                replies += chunk
            assert replies == b"+OK\r\n" * n, replies[:200]


def present(r: redis.Redis, keys) -> int:
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.exists(key)
    return sum(pipe.execute())


def test_noeviction_oom_rejects_writes_keeps_reads(tmp_path):
    with distcache_server(tmp_path, "--maxmemory", "2mb") as srv:
        r = redis.Redis(port=srv.port)
        assert r.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        written = 0
        value = b"x" * KB
        with pytest.raises(redis.ResponseError) as info:
            for written in range(100_000):
                r.set(f"k{written}", value)
        assert str(info.value) == "command not allowed when used memory > 'maxmemory'."
        assert 500 < written < 4000  # about 2mb of 1kb values, with per-key overhead
        assert r.get("k0") == value  # reads keep working
        assert r.exists("k1") == 1
        with pytest.raises(redis.ResponseError, match="^command not allowed when used memory"):
            r.lpush("list", "x")  # any denyoom command
        # inside MULTI nothing is queued while out of memory (as Redis), and EXEC aborts
        c = redis.Redis(port=srv.port, single_connection_client=True)
        conn = c.connection
        conn.send_command("MULTI")
        assert conn.read_response() == b"OK"
        conn.send_command("GET", "k0")
        with pytest.raises(redis.ResponseError, match="^command not allowed when used"):
            conn.read_response()
        conn.send_command("EXEC")
        with pytest.raises(redis.ResponseError, match="previous errors"):
            conn.read_response()
        c.close()
        # non-denyoom writes still run, and free memory
        assert r.delete(*[f"k{i}" for i in range(200)]) == 200
        assert r.set("fits", "again")
        info = r.info()
        assert info["evicted_keys"] == 0
        assert info["maxmemory"] == 2 * MB
        # (PyPy: used_memory also counts the garbage its GC holds)
        assert info["used_memory"] - info["mem_not_counted_for_evict"] <= 2 * MB + 64 * KB


def test_config_set_maxmemory_at_runtime(tmp_path):
    with distcache_server(tmp_path) as srv:
        r = redis.Redis(port=srv.port)
        fill(r, "k", 3000)
        assert r.info("memory")["maxmemory"] == 0
        r.config_set("maxmemory", "1mb")  # below the data: noeviction -> writes fail
        with pytest.raises(redis.ResponseError, match="OOM|command not allowed"):
            r.set("new", "v")
        r.config_set("maxmemory-policy", "allkeys-random")
        assert r.set("new", "v")  # evicts to make room
        # (PyPy: used_memory counts evicted values its GC has not collected yet)
        memory = r.info("memory")
        assert memory["used_memory"] - memory["mem_not_counted_for_evict"] <= MB + 64 * KB
        assert r.info("stats")["evicted_keys"] > 1000
        r.config_set("maxmemory", "0")
        fill(r, "again", 2000)
        assert r.dbsize() > 2000


def dataset(r: redis.Redis) -> int:
    """used_memory without the clients' share (a client closing is not the data) nor,
    on PyPy, the garbage its GC holds."""
    info = r.info()
    return (info["used_memory"] - CLIENT_MEMORY * info["connected_clients"]
            - info["mem_not_counted_for_evict"])


def test_a_switch_to_big_values_meets_the_limit_soon(tmp_path):
    # The estimate is keys x a sampled average: request bytes bound what may arrive
    # before it is re-sampled. Redis 7.0 takes 7 of these SETs; without the byte
    # bound distcache took 75 (7.5 MB past a 1 MB room). A refresh of the estimate
    # (INFO's, as a cron tick's at any point) must count the big values as
    # themselves: weighting the newest keys as typical once refused the 4th SET.
    value = b"x" * 100_000
    with distcache_server(tmp_path) as srv:
        r = redis.Redis(port=srv.port)
        fill(r, "small", 100, size=1)
        base = dataset(r)
        r.config_set("maxmemory", base + CLIENT_MEMORY + 1_000_000)
        stored = 0
        grew = []
        with pytest.raises(redis.ResponseError, match="command not allowed when used memory"):
            for i in range(300):
                r.set(f"big{i}", value)
                stored += 1
                grew.append(dataset(r) - base)
        # PyPy's eviction counts each value times its GC's heap growth
        # (memory_size.gc_factor); INFO's used_memory the value as it is.
        assert 5 / gc_factor() <= stored <= 15
        for n, used in enumerate(grew, 1):
            assert n * 100_000 <= used <= n * 105_000 + 2 * KB, (n, grew)


def test_allkeys_lru_bounds_rss_and_keeps_recent_keys(tmp_path):
    # On PyPy the evicted values are garbage until a major collection, and then sit
    # in malloc's free lists: the server's GC pacer (server/pypy_gc.py) collects
    # and trims after each half maxmemory evicted (3.4x the limit without it), and
    # past a whole maxmemory even when its CPU budget is spent (~3x without that).
    maxmemory = 16 * MB
    with distcache_server(tmp_path, "--maxmemory", str(maxmemory),
                          "--maxmemory-policy", "allkeys-lru") as srv:
        r = redis.Redis(port=srv.port)
        rss0 = r.info("memory")["used_memory_rss"]
        size = 4 * KB
        total = 10 * maxmemory // size  # write 10x maxmemory
        fast_fill(srv.port, b"key:", total, size)
        info = r.info()
        assert info["used_memory"] - info["mem_not_counted_for_evict"] <= maxmemory + 64 * KB
        assert info["evicted_keys"] > total // 2
        assert info["used_memory_rss"] - rss0 < 2 * maxmemory, info["used_memory_rss"]
        assert info["used_memory_rss"] < 2 * maxmemory + rss0
        # the most recently written keys survive
        recent = [f"key:{i}" for i in range(total - 1000, total)]
        assert present(r, recent) == len(recent)
        # the oldest are gone
        assert present(r, [f"key:{i}" for i in range(2000)]) < 100
        keys = info["db0"]["keys"]
        # ~4.1-4.3 kB per 4 kB value; PyPy counts each times its GC's heap growth
        assert 3_000 / gc_factor() < keys < 4_200


@pytest.mark.xfail(PYPY, reason="PyPy keeps ~100 more of these keys than the test's "
                   "eviction count assumes (open: docs/pypy.md)", strict=False)
def test_lru_keeps_recently_read_keys(tmp_path):
    with distcache_server(tmp_path, "--maxmemory", FOUR_MB, "--maxmemory-policy",
                          "allkeys-lru") as srv:
        r = redis.Redis(port=srv.port)
        fill(r, "old:", 2000)
        assert r.info("stats")["evicted_keys"] == 0
        hot = [f"old:{i}" for i in range(0, 2000, 10)]  # 200 keys among the oldest
        pipe = r.pipeline(transaction=False)
        for key in hot:
            pipe.get(key)
        pipe.execute()
        fill(r, "new:", 2500)  # forces most of the cold old keys out
        assert r.info("stats")["evicted_keys"] > 900
        cold = [f"old:{i}" for i in range(2000) if i % 10]
        hot_rate, cold_rate = present(r, hot) / len(hot), present(r, cold) / len(cold)
        # approximate LRU (5 sampled keys an eviction, as Redis): the hot keys' survival
        # varies by a few points run to run (0.745 once), far above the cold ones'
        assert hot_rate >= 0.7 and cold_rate <= 0.55, (hot_rate, cold_rate)
        assert hot_rate - cold_rate >= 0.25, (hot_rate, cold_rate)


@pytest.mark.xfail(PYPY, reason="PyPy keeps ~100 more of these keys than the test's "
                   "eviction count assumes (open: docs/pypy.md)", strict=False)
def test_allkeys_lfu_keeps_frequent_keys(tmp_path):
    with distcache_server(tmp_path, "--maxmemory", FOUR_MB, "--maxmemory-policy",
                          "allkeys-lfu") as srv:
        r = redis.Redis(port=srv.port)
        fill(r, "k:", 2000)
        hot = [f"k:{i}" for i in range(0, 2000, 20)]
        for _ in range(20):
            pipe = r.pipeline(transaction=False)
            for key in hot:
                pipe.get(key)
            pipe.execute()
        fill(r, "n:", 2500)
        assert r.info("stats")["evicted_keys"] > 900
        assert present(r, hot) >= len(hot) * 0.9


def test_volatile_policies_only_evict_keys_with_ttl(tmp_path):
    for policy in ("volatile-lru", "volatile-random", "volatile-ttl", "volatile-lfu"):
        with distcache_server(tmp_path / policy, "--maxmemory", "4mb", "--maxmemory-policy",
                              policy) as srv:
            r = redis.Redis(port=srv.port)
            fill(r, "perm:", 1000)
            fill(r, "ttl:", 1500, ttl_ms=3_600_000)
            fill(r, "more:", 1000, ttl_ms=3_600_000)
            assert r.info("stats")["evicted_keys"] > 0
            assert present(r, [f"perm:{i}" for i in range(1000)]) == 1000, policy
            # once no key has a TTL left, writes fail with OOM
            with pytest.raises(redis.ResponseError, match="command not allowed"):
                fill(r, "perm2:", 5000)
            assert present(r, [f"perm:{i}" for i in range(1000)]) == 1000, policy


def test_volatile_ttl_evicts_soonest_expiring_first(tmp_path):
    with distcache_server(tmp_path, "--maxmemory", FOUR_MB, "--maxmemory-policy",
                          "volatile-ttl") as srv:
        r = redis.Redis(port=srv.port)
        fill(r, "long:", 1000, ttl_ms=10_000_000)
        fill(r, "short:", 1000, ttl_ms=1_000_000)
        fill(r, "fill:", 2000, ttl_ms=50_000_000)
        evicted = r.info("stats")["evicted_keys"]
        assert evicted > 300
        short_left = present(r, [f"short:{i}" for i in range(1000)])
        long_left = present(r, [f"long:{i}" for i in range(1000)])
        assert long_left > short_left


def test_eviction_invalidates_watch(tmp_path):
    with distcache_server(tmp_path, "--maxmemory", "2mb", "--maxmemory-policy",
                          "allkeys-lru") as srv:
        watcher = redis.Redis(port=srv.port, single_connection_client=True)
        watcher.set("watched", "v")
        conn = watcher.connection
        conn.send_command("WATCH", "watched")
        assert conn.read_response() == b"OK"
        r = redis.Redis(port=srv.port)
        i = 0
        deadline = time.monotonic() + 30
        while r.memory_usage("watched") is not None:  # does not touch the key
            assert time.monotonic() < deadline
            fill(r, "f:", 200, start=i)
            i += 200
        for cmd in (("MULTI",), ("SET", "watched", "again")):
            conn.send_command(*cmd)
            conn.read_response()
        conn.send_command("EXEC")
        assert conn.read_response() is None
        assert r.info("stats")["evicted_keys"] > 0


def test_memory_usage(tmp_path):
    with distcache_server(tmp_path) as srv:
        r = redis.Redis(port=srv.port)
        r.set("small", "x")
        r.set("big", "x" * 10_000)
        small, big = r.memory_usage("small"), r.memory_usage("big")
        assert 30 < small < 300
        assert 10_000 < big < 10_400
        assert r.memory_usage("missing") is None
        r.rpush("list", *[f"item-{i}" for i in range(1000)])
        usage = r.memory_usage("list")
        assert 20_000 < usage < 200_000
        assert r.memory_usage("list", samples=0) > 20_000
        for bad in (["SAMPLES"], ["SAMPLES", "-1"], ["FOO", "1"]):
            with pytest.raises(redis.ResponseError, match="syntax error"):
                r.execute_command("MEMORY", "USAGE", "small", *bad)
        with pytest.raises(redis.ResponseError, match="not an integer"):
            r.execute_command("MEMORY", "USAGE", "small", "SAMPLES", "x")
        stats = r.memory_stats()
        assert stats["keys.count"] == 3
        assert "Sam" in r.execute_command("MEMORY", "DOCTOR").decode()
        assert r.execute_command("MEMORY", "PURGE") in (True, b"OK")


def test_info_memory_tracks_dataset(tmp_path):
    with distcache_server(tmp_path) as srv:
        r = redis.Redis(port=srv.port)
        before = r.info("memory")
        for field in ("used_memory", "used_memory_rss", "maxmemory", "maxmemory_policy",
                      "used_memory_human", "used_memory_peak"):
            assert field in before
        fill(r, "k", 20_000)  # ~24 MB
        after = r.info("memory")
        grew = after["used_memory"] - before["used_memory"]
        # PyPy counts the heap growth its GC allows (eviction.gc_factor) on top.
        assert 15 * MB < grew < 40 * MB * gc_factor()
        rss_grew = after["used_memory_rss"] - before["used_memory_rss"]
        assert 0.5 < grew / rss_grew < 2.0
        r.flushall()
        assert r.info("memory")["used_memory"] < before["used_memory"] + MB
        assert r.info("stats")["evicted_keys"] == 0
