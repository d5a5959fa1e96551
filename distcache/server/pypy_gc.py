"""PyPy only: the GC's defaults for a server, and major collections paced by
the dataset.

PyPy's GC starts a major collection when its heap reaches
``PYPY_GC_MAJOR_COLLECT`` (1.82) times what survived the last one, and RSS
keeps that peak. A lower factor for the whole process costs 2-3x CPU per
request even when nothing grows (the requests' short-lived objects promote
enough to trigger it), so the server collects itself only when the dataset
makes garbage or grows:

- loading: when the number of keys grew by ``GROWTH`` since the last
  collection (checked by the cron);
- eviction churn: when the keys evicted since the last collection add up to
  ``CHURN`` times maxmemory (counted by the eviction engine), since an evicted
  value is garbage until the next major collection.

A full collection stops the loop (about 15 ms of CPU per 300k keys on PyPy
7.3.11), so the server's collections take at most ``BUDGET`` of the time:
after one that took *t*, the next waits at least ``t / BUDGET`` -- unless the
keys evicted meanwhile reach ``CAP`` times maxmemory: maxmemory bounds memory, so
a churn faster than the budget costs CPU rather than RSS.

``PYPY_GC_NURSERY`` is 8 MB unless set (PyPy picks 1 MB from the L2 cache
here): a minor collection promotes the objects of the requests in flight,
which then die in the old generation; fewer minor collections promote fewer
(and cost less CPU). ``PYPY_GC_MIN`` (no major collection below it) follows at
8 nurseries, 64 MB: a fresh server keeps 14 MB more startup garbage in RSS, but
with 16 MB the one-key -P 16 benchmark cost 29-45% more CPU in one run against
PyPy's defaults (64 MB: none). PyPy reads these at start, so ``distcache
server`` re-executes itself with them (``distcache.pypy_start``).
"""
from __future__ import annotations

import gc
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, List, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from .app import CacheServer

log = logging.getLogger(__name__)

PYPY = sys.implementation.name == "pypy"
#: Collect when the keys grew by this fraction since the last collection.
GROWTH = 0.25
#: Below this many keys the GC's own pacing stands (the interpreter's heap dominates).
MIN_KEYS = 50_000
#: Collect when the evicted keys' estimated bytes reach this share of maxmemory.
CHURN = 0.5
#: Share of the wall time the server's own collections may take.
BUDGET = 0.05
#: Evicted bytes (times maxmemory) past which a collection ignores the budget:
#: maxmemory bounds RSS, so a churn faster than the budget costs CPU instead.
CAP = 1.0


class GcPacer:
    """Major collections paced by the dataset's growth and eviction (PyPy only)."""

    def __init__(self, server: "CacheServer") -> None:
        self.server = server
        self.mark = MIN_KEYS  # collect when the keys reach mark * (1 + GROWTH)
        self.evicted = 0.0  # estimated bytes evicted since the last collection
        self.next_allowed = 0.0  # monotonic time before which the budget is spent
        self.collections = 0
        self.heap_after = 0  # the GC's heap after the last collection (gc_heap)
        self.keys_after = 0  # and the keys then
        self.cycle_garbage = 0  # what the last collection paced by eviction freed
        stats = _stats()
        # what the GC had allocated (arenas, holes included) when the server started
        self.allocated_start = stats.total_allocated_memory if stats is not None else 0
        if stats is not None:
            self.heap_after = stats.total_gc_memory

    def keys(self) -> int:
        keys = 0
        for db in self.server.keyspace.dbs:
            keys += len(db.data)
        return keys

    def garbage(self, data: int, per_key: float) -> int:
        """Bytes of garbage the GC's heap holds (INFO's ``mem_not_counted_for_evict``),
        given the dataset's estimate ``data`` and its bytes ``per_key``.

        The heap's growth since the last collection beyond the keys added (the
        requests' promoted objects, overwritten values), up to ``data`` (more is
        the dataset's own past, a FLUSHALL or a big DEL: used_memory follows the
        data at once, as Redis's does); under eviction churn at least what the
        last collection freed (RSS keeps a cycle's peak). At most what the GC
        allocated since the server started beyond ``data``: the empty server's
        startup garbage (about 20 MB) is resident already, and what a collection
        frees of it is refilled without growing RSS."""
        stats = _stats()
        if stats is None:
            return 0
        grown = stats.total_gc_memory - self.heap_after \
            - max(0, self.keys() - self.keys_after) * per_key
        room = stats.total_allocated_memory - self.allocated_start - data
        return int(max(0, min(max(min(grown, data), self.cycle_garbage), room)))

    def allocated(self) -> "int | None":
        """What the GC allocated since the server started (arenas, holes included,
        raw-malloced objects): RSS's growth, about (None without PyPy's counters). A load first fills what a
        collection frees of the startup garbage, which is resident already: after
        300k keys of 32 B values the data (153 B a key) was 1.17-1.48x this."""
        stats = _stats()
        if stats is None:
            return None
        return max(0, stats.total_allocated_memory - self.allocated_start)

    def cron(self) -> None:
        keys = self.keys()
        if keys * (1 + GROWTH) < self.mark:
            self.mark = max(MIN_KEYS, keys)  # deletions, FLUSHALL: pace the regrowth too
        elif keys >= self.mark * (1 + GROWTH):
            self.collect(keys)

    def evicted_bytes(self, nbytes: float, maxmemory: int) -> None:
        """The eviction engine freed about ``nbytes`` (its estimate)."""
        self.evicted += nbytes
        if self.evicted >= maxmemory * CHURN:
            self.collect(None, force=self.evicted >= maxmemory * CAP)

    def collect(self, keys: "int | None", force: bool = False) -> None:
        now = time.monotonic()
        if now < self.next_allowed and not force:
            return
        cpu = time.process_time()
        before = gc_heap()
        gc.collect()
        trim = _malloc_trim()
        if trim is not None:
            trim(0)
        self.heap_after = gc_heap()
        self.cycle_garbage = before - self.heap_after if keys is None else 0
        # CPU time, not wall time: on a loaded host the wall clock would stretch it
        self.next_allowed = time.monotonic() + (time.process_time() - cpu) / BUDGET
        self.collections += 1
        self.evicted = 0.0
        if keys is None:
            keys = self.keys()
        self.keys_after = keys
        self.mark = max(MIN_KEYS, keys)


def _stats() -> Any:
    """PyPy's GC counters in bytes (``gc.get_stats`` formats them), None elsewhere:
    ``total_gc_memory`` is its heap (arenas in use, raw-malloced objects, the
    nursery) garbage included, ``total_allocated_memory`` also the arenas' holes."""
    get = getattr(gc, "_get_stats", None)
    return get() if get is not None else None


def gc_heap() -> int:
    """PyPy: the GC's heap in bytes, garbage not yet collected included; 0 elsewhere."""
    stats = _stats()
    return stats.total_gc_memory if stats is not None else 0


def gc_heap_fields() -> List[Tuple[str, int]]:
    """INFO memory fields of PyPy's GC heap (Redis's allocator fields: what its
    allocator holds); none on CPython."""
    stats = _stats()
    if stats is None:
        return []
    return [("allocator_allocated", stats.total_gc_memory),
            ("allocator_active", stats.total_allocated_memory)]


_TRIM: List[Any] = []


def _malloc_trim() -> Any:
    """glibc's ``malloc_trim`` (None elsewhere): what a major collection frees goes
    back to malloc's free lists, which keep it in RSS (4 kB values evicted from a
    16 MB maxmemory kept 3.4x the limit there; trimmed, 0.8x)."""
    if not _TRIM:
        try:
            import ctypes
            _TRIM.append(ctypes.CDLL("libc.so.6").malloc_trim)
        except (ImportError, OSError, AttributeError):
            _TRIM.append(None)
    return _TRIM[0]


def install(server: "CacheServer") -> None:
    server.gc_pacer = None  # type: ignore[attr-defined]
    if PYPY:
        pacer = server.gc_pacer = GcPacer(server)  # type: ignore[attr-defined]
        server.cron_jobs.append(pacer.cron)
