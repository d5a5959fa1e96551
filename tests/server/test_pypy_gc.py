"""server/pypy_gc.py's pacing, on whatever runtime runs the tests (the server
installs the pacer on PyPy only; its arithmetic is the same on both)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from distcache.server.app import CacheServer
from distcache import pypy_start
from distcache.pypy_start import GC_DEFAULTS
from distcache.server import pypy_gc
from distcache.server.pypy_gc import CAP, CHURN, GROWTH, MIN_KEYS, GcPacer


@pytest.fixture
def server(tmp_path: Path) -> CacheServer:
    return CacheServer("127.0.0.1", 0, save="", appendonly="no", dir=str(tmp_path))


def test_installed_on_pypy_only(server: CacheServer) -> None:
    pacer = server.gc_pacer  # type: ignore[attr-defined]
    assert (pacer is not None) == (sys.implementation.name == "pypy")
    assert (pacer is not None and pacer.cron in server.cron_jobs) or pacer is None


def test_collects_as_the_keys_grow_within_its_budget(server: CacheServer) -> None:
    pacer = GcPacer(server)
    data = server.keyspace.dbs[0].data
    data.update((b"k%d" % i, b"v") for i in range(MIN_KEYS))
    pacer.cron()
    assert pacer.collections == 0  # under MIN_KEYS * (1 + GROWTH)
    data.update((b"k%d" % i, b"v") for i in range(MIN_KEYS, int(MIN_KEYS * (1 + GROWTH)) + 1))
    pacer.cron()
    assert pacer.collections == 1 and pacer.mark == len(data)
    assert pacer.next_allowed > 0
    grown = int(len(data) * (1 + GROWTH)) + 1
    data.update((b"k%d" % i, b"v") for i in range(len(data), grown))
    pacer.next_allowed = float("inf")  # the budget is spent: no collection
    pacer.cron()
    assert pacer.collections == 1
    pacer.next_allowed = 0.0
    pacer.cron()
    assert pacer.collections == 2 and pacer.mark == grown
    data.clear()  # FLUSHALL: the regrowth is paced from the floor again
    pacer.cron()
    assert pacer.mark == MIN_KEYS


def test_collects_after_evicting_a_share_of_maxmemory(server: CacheServer) -> None:
    pacer = GcPacer(server)
    maxmemory = 16 << 20
    pacer.evicted_bytes(maxmemory * CHURN * 0.6, maxmemory)
    assert pacer.collections == 0
    pacer.evicted_bytes(maxmemory * CHURN * 0.6, maxmemory)
    assert pacer.collections == 1 and pacer.evicted == 0


def test_eviction_churn_past_the_cap_collects_over_the_budget(server: CacheServer) -> None:
    """Within the budget's wait, evicted values pile up only to CAP x maxmemory:
    then the pacer collects anyway (RSS bounded by maxmemory, CPU gives)."""
    pacer = GcPacer(server)
    maxmemory = 16 << 20
    pacer.next_allowed = float("inf")  # the budget is spent
    pacer.evicted_bytes(maxmemory * CHURN, maxmemory)
    assert pacer.collections == 0
    pacer.evicted_bytes(maxmemory * (CAP - CHURN) * 0.9, maxmemory)
    assert pacer.collections == 0
    pacer.evicted_bytes(maxmemory * (CAP - CHURN) * 0.2, maxmemory)
    assert pacer.collections == 1 and pacer.evicted == 0


class _Stats:
    """PyPy's raw GC counters (gc._get_stats()), as the pacer reads them."""

    def __init__(self, heap: int, allocated: int) -> None:
        self.total_gc_memory = heap
        self.total_allocated_memory = allocated


def test_garbage_is_the_heap_growth_the_keys_do_not_explain(
        server: CacheServer, monkeypatch: pytest.MonkeyPatch) -> None:
    stats = [_Stats(50 << 20, 60 << 20)]
    monkeypatch.setattr(pypy_gc, "_stats", lambda: stats[0])
    pacer = GcPacer(server)
    assert pacer.allocated_start == 60 << 20 and pacer.heap_after == 50 << 20
    data = server.keyspace.dbs[0].data
    data.update((b"k%d" % i, b"v") for i in range(1000))  # 1000 keys of 1 kB
    stats[0] = _Stats((50 << 20) + 1000 * 1024 + 300_000, (60 << 20) + 2_000_000)
    assert pacer.garbage(1000 * 1024, 1024) == 300_000  # the requests' garbage
    assert pacer.allocated() == 2_000_000
    # no more than the data (past it: a FLUSHALL's dataset, not counted)...
    assert pacer.garbage(100_000, 1024) == 100_000
    # ...nor than what the GC allocated beyond the data (startup garbage refilled)
    stats[0] = _Stats((50 << 20) + 1000 * 1024 + 300_000, (60 << 20) + 1000 * 1024 + 50_000)
    assert pacer.garbage(1000 * 1024, 1024) == 50_000
    # an eviction-paced collection: what it freed counts until the next one
    stats[0] = _Stats(40 << 20, 70 << 20)
    pacer.collect(None)
    assert pacer.heap_after == 40 << 20 and pacer.cycle_garbage == 0  # the fake heap
    pacer.cycle_garbage = 3_000_000
    assert pacer.garbage(4_000_000, 1024) == 3_000_000
    monkeypatch.setattr(pypy_gc, "_stats", lambda: None)  # CPython
    assert pacer.garbage(4_000_000, 1024) == 0 and pacer.allocated() is None


def test_reexec_is_a_no_op_off_pypy_or_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # (On PyPy, test_runtime_memory.py checks the re-executed server's environment.)
    monkeypatch.setattr(pypy_start, "PYPY", False)
    for name in GC_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    pypy_start.reexec_with_gc_defaults(["server"])
    assert not set(GC_DEFAULTS) & set(os.environ)
    monkeypatch.setattr(pypy_start, "PYPY", True)
    for name in GC_DEFAULTS:
        monkeypatch.setenv(name, "4MB")
    pypy_start.reexec_with_gc_defaults(["server"])  # returns: nothing to set
    assert all(os.environ[name] == "4MB" for name in GC_DEFAULTS)
