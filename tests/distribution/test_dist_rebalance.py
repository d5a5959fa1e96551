"""Rebalancing: ``distcache rebalance`` (and its Python API) moves exactly the
keys whose shard changes while clients given both pools keep reading with no
misses; an interrupted run finishes when run again; a second run moves nothing.

Four real distcache servers; each test flushes them and fills its pool.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest

from dist_helpers import wait_until
from servers import REDIS_SERVER, ROOT, distcache_server, redis_server

from distcache import AsyncCacheClient, CacheClient
from distcache.client.rebalance import rebalance

KEYS = [f"key:{i}" for i in range(20000)]
TTL_KEYS = KEYS[::50]  # 400 keys with a TTL
SOME = KEYS[:5000]  # the tests that need no 20,000
OPTIONS = dict(health_interval=None, timeout=10.0)


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    base = tmp_path_factory.mktemp("rebalance")
    servers = [distcache_server(base / f"s{i}").start(timeout=60) for i in range(4)]
    yield [s.address for s in servers]
    for server in servers:
        server.stop()


def _fill(pool: List[str], keys: List[str] = KEYS) -> float:
    """``keys`` (a prefix of KEYS) with their index as value; TTL_KEYS among them
    with a 600 s TTL. Returns the monotonic time the TTLs were set at."""
    with CacheClient(pool, **OPTIONS) as client:
        client.set_many({k: i for i, k in enumerate(keys)})
        ttl_set_at = time.monotonic()
        client.set_many({k: KEYS.index(k) for k in TTL_KEYS[:len(keys) // 50]}, ttl=600)
    return ttl_set_at


def _flush(addresses: List[str]) -> None:
    for address in addresses:
        with CacheClient(address, **OPTIONS) as one:
            one.flush()


def _holders(addresses: List[str], keys: List[str] = KEYS) -> Dict[str, str]:
    """key -> the one server holding it (asserting no key is on two)."""
    out: Dict[str, str] = {}
    for address in addresses:
        with CacheClient(address, **OPTIONS) as one:
            found = one.get_many(keys)
        for key in found:
            assert key not in out, f"{key} on {out[key]} and {address}"
            out[key] = address
    return out


class Reader(threading.Thread):
    """Reads every key in turn through ``CacheClient(new, previous=old)``,
    one by one and in get_many batches, counting misses, until stopped."""

    def __init__(self, new: List[str], old: List[str], keys: List[str]) -> None:
        super().__init__(daemon=True)
        self.client = CacheClient(new, previous=old, **OPTIONS)
        self.keys = keys
        self.misses: List[str] = []
        self.reads = 0
        self.stop = threading.Event()
        self.error: BaseException = None  # type: ignore[assignment]

    def run(self) -> None:
        try:
            i = 0
            while not self.stop.is_set():
                key = self.keys[i % len(self.keys)]
                if self.client.get(key) is None:
                    self.misses.append(key)
                batch = self.keys[i % len(self.keys):][:50]
                found = self.client.get_many(batch)
                self.misses += [k for k in batch if k not in found]
                self.reads += 1 + len(batch)
                i += 37
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.client.close()

    def finish(self) -> None:
        self.stop.set()
        self.join(30)
        assert self.error is None, repr(self.error)


def _owners(pool: List[str], keys: List[str] = KEYS) -> Dict[str, str]:
    with CacheClient(pool, **OPTIONS) as client:
        return {k: client.server_for(k) for k in keys}


def _check_ttls(pool: List[str], ttl_set_at: float, keys: List[str] = KEYS) -> None:
    """The moved TTLs are what is left of the 600 s, not reset and not lost
    (measured from the fill: a loaded PyPy run can take minutes)."""
    with CacheClient(pool, **OPTIONS) as client:
        for key in TTL_KEYS[:len(keys) // 50]:
            least = 600 - (time.monotonic() - ttl_set_at) - 2
            ttl = client.ttl(key)
            assert ttl is not None and least < ttl <= 600, (key, ttl, least)
        assert client.ttl(KEYS[1]) is None


def _transition(old: List[str], new: List[str]) -> None:
    """Rebalance ``old`` -> ``new`` under a reader; moved set and data checked."""
    _flush(new + old)
    ttl_set_at = _fill(old)
    before, after = _owners(old), _owners(new)
    expected = {k for k in KEYS if before[k] != after[k]}
    reader = Reader(new, old, KEYS)
    reader.start()
    assert wait_until(lambda: reader.reads > 200, 30)
    moved: List[bytes] = []
    reads_before = reader.reads
    result = rebalance(old, new, rate=20000, batch=200,
                       on_batch=lambda progress, keys: moved.extend(keys))
    reads_during = reader.reads - reads_before
    reader.finish()
    assert reader.misses == []
    assert reads_during > 0
    assert {k.decode() for k in moved} == expected
    assert result.moved == len(moved) == len(expected)
    assert _holders(sorted(set(old + new))) == after
    _check_ttls(new, ttl_set_at)
    assert rebalance(old, new).moved == 0  # idempotent


def test_adding_a_shard_moves_a_quarter_with_no_misses(four):
    old, new = four[:3], four
    _transition(old, new)
    share = sum(1 for k, o in _owners(new).items() if o == four[3]) / len(KEYS)
    assert 0.18 < share < 0.32


def test_removing_a_shard_with_no_misses(four):
    _transition(four, four[:2] + four[3:])


def test_writes_during_a_transition_leave_no_stale_value(four):
    old, new = four[:3], four
    _flush(four)
    _fill(old, SOME)
    client = CacheClient(new, previous=old, **OPTIONS)
    expected = {k: i for i, k in enumerate(SOME)}
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            key = SOME[(i * 7919) % len(SOME)]
            if i % 3 == 0:
                client.set(key, f"new:{i}")
                expected[key] = f"new:{i}"
            elif i % 3 == 1:
                client.delete(key)
                expected.pop(key, None)
            else:
                client.set_many({key: i})
                expected[key] = i
            i += 1

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    rebalance(old, new, rate=20000, batch=100)
    stop.set()
    writer.join(30)
    client.close()
    with CacheClient(new, **OPTIONS) as plain:  # the new pool alone has everything
        found = plain.get_many(SOME)
    assert found == expected
    assert set(_holders(four, SOME)) == set(expected)


def test_counters_and_conditional_writes_follow_the_key(four):
    old, new = four[:3], four
    _flush(four)
    new_owner, old_owner = _owners(new), _owners(old)
    n, a, r, c = [k for k in KEYS if new_owner[k] != old_owner[k]][:4]
    with CacheClient(old, **OPTIONS) as plain:
        plain.set_many({n: 5, a: "x", r: "y", c: "z"})
    client = CacheClient(new, previous=old, **OPTIONS)
    try:
        assert client.incr(n, 2) == 7
        assert client.add(a, "other") is False
        assert client.replace(r, "new") is True
        value, token = client.gets(c)
        assert value == "z" and client.cas(c, "zz", token) is True
        assert client.get_many([n, a, r, c]) == {n: 7, a: "x", r: "new", c: "zz"}
        with client.pipeline() as p:
            assert p.get(a).incr(n).execute() == ["x", 8]
    finally:
        client.close()
    assert rebalance(old, new).moved == 0  # each was pulled over by its write
    with CacheClient(new, **OPTIONS) as plain:
        assert plain.get_many([n, a, r, c]) == {n: 8, a: "x", r: "new", c: "zz"}


def test_async_client_reads_through_the_old_pool(four):
    old, new = four[:3], four
    _flush(four)
    _fill(old, SOME)
    done = threading.Event()

    def move() -> None:
        try:
            rebalance(old, new, rate=10000)
        finally:
            done.set()

    async def main() -> List[str]:
        misses: List[str] = []
        async with AsyncCacheClient(new, previous=old, **OPTIONS) as client:
            assert [await client.get(k) for k in SOME[:300]] == list(range(300))
            await client.set(SOME[0], "changed")
            await client.delete(SOME[1])
            mover = threading.Thread(target=move, daemon=True)
            mover.start()
            i = 2
            while not done.is_set():  # reads while the keys move
                batch = SOME[i:i + 40]
                found = await client.get_many(batch)
                misses += [k for k in batch if k not in found]
                if await client.get(SOME[i]) is None:
                    misses.append(SOME[i])
                i = 2 + (i + 41) % (len(SOME) - 50)
            mover.join(30)
        return misses
    assert asyncio.run(main()) == []
    with CacheClient(new, **OPTIONS) as plain:
        assert plain.get(SOME[0]) == "changed" and plain.get(SOME[1]) is None
        assert len(plain.get_many(SOME)) == len(SOME) - 1


def test_an_interrupted_run_finishes_when_run_again(four, tmp_path):
    old, new = four[:3], four
    _flush(four)
    ttl_set_at = _fill(old, SOME)
    before = _owners(old, SOME)
    expected = {k for k, o in _owners(new, SOME).items() if before[k] != o}
    state = str(tmp_path / "state.json")
    moved: List[bytes] = []

    def stop_half_way(progress, keys):
        moved.extend(keys)
        if len(moved) >= len(expected) // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rebalance(old, new, batch=100, state=state, on_batch=stop_half_way)
    saved = json.loads(Path(state).read_text())
    # Progress was saved: a source finished or part-way (the stop can fall in
    # a source's first batch, when the finished ones hold cursor 0).
    assert any(s["cursor"] or s["done"] for s in saved["sources"].values())
    assert sum(s["done"] for s in saved["sources"].values()) < len(old)
    first = len(moved)
    second = rebalance(old, new, batch=100, state=state,
                       on_batch=lambda progress, keys: moved.extend(keys))
    assert first + second.moved == len(expected)
    assert sorted(k.decode() for k in moved) == sorted(expected)  # none twice, none lost
    with CacheClient(new, **OPTIONS) as plain:
        assert plain.get_many(SOME) == {k: i for i, k in enumerate(SOME)}
    _check_ttls(new, ttl_set_at, SOME)
    assert rebalance(old, new, state=state).moved == 0


def test_cli_killed_then_run_again(four, tmp_path):
    old, new = four[:3], four
    _flush(four)
    ttl_set_at = _fill(old, SOME)
    state = tmp_path / "state.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "distcache", "rebalance", "--from", ",".join(old),
            "--to", ",".join(new), "--state", str(state), "--batch", "50"]
    proc = subprocess.Popen(argv + ["--rate", "2000"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        def some_progress() -> bool:
            try:
                saved = json.loads(state.read_text())
            except (OSError, ValueError):
                return False
            return any(s["cursor"] or s["done"] for s in saved["sources"].values())
        assert wait_until(some_progress, 60)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "keys/s" in done.stderr and "ETA" in done.stderr
    assert done.stdout.startswith("moved ")
    assert _holders(four, SOME) == _owners(new, SOME)
    _check_ttls(new, ttl_set_at, SOME)
    again = subprocess.run(argv + ["--quiet"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0 and again.stdout.startswith("moved 0 keys"), again.stdout


def test_a_copy_already_on_the_new_owner_wins(four):
    old, new = four[:3], four
    _flush(four)
    new_owner, old_owner = _owners(new), _owners(old)
    key = next(k for k in KEYS if new_owner[k] != old_owner[k])
    with CacheClient(old_owner[key], **OPTIONS) as source, \
            CacheClient(new_owner[key], **OPTIONS) as target:
        source.set(key, "old")
        target.set(key, "new")
        result = rebalance(old, new)
        assert (result.moved, result.superseded) == (0, 1)
        assert target.get(key) == "new" and source.get(key) is None


@pytest.mark.skipif(not REDIS_SERVER, reason="redis-server is not installed")
def test_between_redis_servers(tmp_path):
    servers = [redis_server(tmp_path / f"r{i}").start() for i in range(3)]
    try:
        old, new = [s.address for s in servers[:2]], [s.address for s in servers]
        ttl_set_at = _fill(old, SOME)
        before, after = _owners(old, SOME), _owners(new, SOME)
        reader = Reader(new, old, SOME)
        reader.start()
        result = rebalance(old, new, batch=500)
        reader.finish()
        assert reader.misses == []
        assert result.moved == sum(1 for k in SOME if before[k] != after[k])
        assert _holders(new, SOME) == after
        _check_ttls(new, ttl_set_at, SOME)
    finally:
        for server in servers:
            server.stop()


def test_previous_binds_nothing_unless_given():
    plain = CacheClient(["127.0.0.1:1", "127.0.0.1:2"], **OPTIONS)
    moving = CacheClient(["127.0.0.1:1", "127.0.0.1:2"], previous="127.0.0.1:1", **OPTIONS)
    try:
        assert not {"_single", "get_many", "close"} & set(vars(plain))  # the class's own code
        assert {"_single", "get_many", "close"} <= set(vars(moving))
    finally:
        plain.close()
        moving.close()
    with pytest.raises(ValueError, match="local_cache"):
        CacheClient("127.0.0.1:1", previous="127.0.0.1:2", local_cache=True, **OPTIONS)
