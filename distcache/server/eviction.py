"""Memory limit (``maxmemory``) and eviction (``maxmemory-policy``).

Nothing here runs unless ``maxmemory`` is set: then ``server.oom_check`` runs
before every ``denyoom`` command (and ``server.gated`` routes commands through
the dispatcher's gate). The default configuration pays nothing per key and
nothing per command.

Memory accounting
    ``used_memory`` is an estimate of the dataset: the number of keys (exact,
    O(1)) times an average cost per key (key object, value, dict entry, policy
    bookkeeping), plus the expiry entries. The average comes from each
    database's estimated bytes, kept up to date by refreshes every few hundred
    writes and every cron tick: keys added since the last refresh count as
    themselves (the newest 16 measured; the end of a dict has no holes), keys
    removed at the average; about once a second, and whenever an eviction
    sample is drawn, a uniform sample of the keys (one C-speed pass over the
    key dict) corrects the rest (overwrites, deletions). Databases of at most
    256 keys are measured whole. Sizes are measured with ``sys.getsizeof``
    rounded to the allocator's granularity (on PyPy, which has no
    ``getsizeof``, from its object layouts, times the heap growth its GC
    allows: see ``memory_size``), containers from a few sampled elements, as
    ``MEMORY USAGE`` does. So writes cost nothing extra, a key count change is
    seen at once, new keys' sizes at the next refresh, and an overwrite's
    within seconds. Between two full checks, writes are bounded both in
    number (a credit of average keys that still fit) and in request bytes
    (the room left, counted per read by the connection), so bigger values than
    the average cannot run far past the limit before the next check measures
    them. The clients count as client_memory.py last measured them (16 KB
    each plus their buffers and MULTI queues; replicas' output only in INFO's
    used_memory, not against the limit, as Redis's replication buffers), so a
    client holding a big output buffer makes room by evicting keys, as in Redis.

Eviction
    As Redis's approximate LRU/LFU: every eviction draws ``maxmemory-samples``
    random keys into a pool of the 16 best candidates and evicts the best one
    (idlest for LRU, least frequent for LFU, soonest to expire for
    volatile-ttl). Python dicts have no O(1) random access, so random keys
    come from a reservoir: every k-th key from a random start (one C-speed
    ``islice`` pass, about an eighth of the keys), drawn from at random and
    refilled when used up, so a sample costs O(1) amortized. Keys created
    after a refill are not candidates until the next one, which, like
    Redis's LFU_INIT_VAL, shields brand-new keys.

    Access times (LRU) and counters (LFU, Redis's logarithmic counter with
    decay) are kept in a per-database side dict only while maxmemory is set
    with an LRU/LFU policy; the databases' class is switched to a subclass
    whose ``get``/``modified`` stamp the key, so the plain classes stay
    untouched. For LRU each database's subclass carries copies of
    ``Database.get``/``set``/``modified`` with the stamp inlined (closures
    over its side dict, used only while Database's methods are unchanged):
    below the limit the policy then adds one dict store per access (mostly
    its cache misses) to what the memory limit itself costs. Access
    times use a coarse shared clock (10 ms ticks), so the side dict holds
    references to shared int objects and costs one dict entry per key. Keys
    without a stamp (written by a path that bypasses ``modified``) are
    stamped when first sampled, i.e. treated as new.

    Considered and measured first: "move to end on access" in the key dict
    itself gives exact LRU order with no memory, but it costs a pop and a
    re-insert on every read even below the limit, reorders the dict under
    iterators, and evicting from the front of a dict rescans the holes left
    by earlier deletions, a cost that grows with the dict (measured: 18 us
    at 60k keys and 36 us at 1M per insert+eviction, versus a flat cost per
    sampled eviction, and periodic compaction did not help).

    Evicted keys are deleted through ``Database.delete`` (so WATCH sees
    them), counted in ``evicted_keys`` and propagated as ``DEL``.
"""
from __future__ import annotations

import logging
import random
import time
from bisect import insort
from itertools import islice
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from . import eviction_stamps as stamps
from .client_memory import CLIENT_MEMORY
from .errors import OOM, CommandError
from .keyspace import Database
# Sizes (memory_size.py) and access stamps (eviction_stamps.py) are modules of their
# own; their names stay importable from here.
from .eviction_stamps import (LFU_INIT_VAL, LfuDatabase, LruDatabase, _db_class,  # noqa: F401
                              _lru_methods, idle_ms, lfu_decayed, lfu_frequency, lru_clock,
                              set_frequency, set_idle, tick)
from .memory_size import (DICT_ENTRY, EXPIRE_ENTRY, PYPY, PYPY_EVICT_PAD, _GC_FACTOR,  # noqa: F401
                          _getsizeof,
                          alloc, gc_factor, key_cost, pypy_sizeof, size_of)
from .notify import EVICTED, notify

if TYPE_CHECKING:
    from .app import CacheServer

log = logging.getLogger("distcache.server")

#: Fixed server overhead reported in used_memory besides the dataset.
BASE_MEMORY = 256 * 1024
POOL_SIZE = 16
#: Most keys evicted by one command before letting it run anyway (as Redis's
#: eviction time limit); the rest is evicted by the next commands and the cron.
MAX_EVICT_PER_CALL = 2000
#: Most denyoom commands between two full memory checks; up to CHECK_EVERY_FAR
#: while the commands allowed are at most 1/FAR of the average keys that still fit
#: (a check costs ~10 us: every 256 writes, about 1% of a pipelined SET).
CHECK_EVERY = 256
CHECK_EVERY_FAR = 1024
FAR = 64
#: The estimate measures at most this many of the keys added since its last refresh
#: (the newest), a uniform sample of this many keys per database about once a
#: second, and databases of at most EXACT_BELOW keys whole.
NEW_SAMPLE = 16
UNIFORM_SAMPLE = 32
EXACT_BELOW = 256


def random_keys(d: Dict[bytes, Any], m: int) -> List[bytes]:
    """About ``m`` keys of ``d``, each equally likely: every k-th key from a random
    start (one C-speed pass; the caller draws from the result at random)."""
    n = len(d)
    if n <= m:
        return list(d)
    step = n // m
    return list(islice(d, random.randrange(step), None, step))


# -- the eviction engine ------------------------------------------------------------

class Eviction:
    """maxmemory accounting, the OOM check and the eviction policies."""

    def __init__(self, server: "CacheServer") -> None:
        self.server = server
        self.keyspace = server.keyspace
        self.maxmemory = 0
        self.policy = "noeviction"
        self.samples = 5
        self.avg_key = 0.0  # estimated bytes per key, as eviction counts them
        self.live_avg = 0.0  # the same without the GC's heap growth (PyPy)
        # db id -> (id of its key dict, keys, estimated bytes) at the last refresh
        self.db_bytes: Dict[int, Tuple[int, int, float]] = {}
        self.checks = 0
        self.last_uniform = 0.0
        self.pool: List[Tuple[float, int, bytes]] = []  # (score, db id, key): lower is better
        self.reservoirs: Dict[Tuple[int, bool], List[bytes]] = {}
        self.active: List[Database] = []
        self.side = False
        self.configure()

    # -- configuration --------------------------------------------------------------

    def configure(self) -> None:
        config = self.server.config
        self.maxmemory = config["maxmemory"]
        self.policy = config["maxmemory-policy"]
        self.samples = config["maxmemory-samples"]
        server = self.server
        kind = None
        if self.maxmemory:
            if self.policy.endswith("-lru"):
                kind = "lru"
            elif self.policy.endswith("-lfu"):
                kind = "lfu"
        self.side = kind is not None
        self.volatile = self.policy.startswith("volatile-")
        self.score_of = self._scorer(self.policy)
        for db in self.keyspace.dbs:
            self._set_db_class(db, kind)
        self.pool = []
        self.reservoirs = {}
        self.db_bytes = {}  # measured afresh: the policy's bookkeeping is part of a key
        server.oom_credit = self.last_credit = 0  # type: ignore[attr-defined]
        if self.maxmemory:
            server.oom_check = self.oom_check
            server.gated = True
            self.refresh_estimate(uniform=True)
        else:
            server.oom_check = None
            server.gated = bool(server.loading)

    def _set_db_class(self, db: Database, kind: Optional[str]) -> None:
        current = db.__class__
        if kind == "lru":
            if not issubclass(current, LruDatabase):
                lru: Dict[bytes, int] = {}
                db.__class__ = _db_class(LruDatabase, db.id, lru=lru, **_lru_methods(lru))
        elif kind == "lfu":
            if not issubclass(current, LfuDatabase):
                db.__class__ = _db_class(LfuDatabase, db.id, lfu={})
            config = self.server.config
            db.__class__.log_factor = config["lfu-log-factor"]  # type: ignore[attr-defined]
            db.__class__.decay_time = config["lfu-decay-time"]  # type: ignore[attr-defined]
        elif current is not Database:
            db.__class__ = Database

    # -- accounting -----------------------------------------------------------------

    def used_memory(self) -> int:
        """INFO's used_memory: the live dataset, re-measured, over every database;
        on PyPy plus the garbage its GC holds (eviction counts each key times the
        GC's heap growth instead: ``_estimate``), at most what the GC allocated
        since the server started (``GcPacer.allocated``)."""
        self.refresh_estimate(uniform=time.monotonic() - self.last_uniform > 1.0
                              or not self.avg_key)
        self.server.client_memory.fresh()
        replicas = self.server.client_memory.replicas  # their output, not counted for eviction
        if _GC_FACTOR == 1.0:
            return self._estimate(None) + replicas
        used = self._estimate(None, self.live_avg) + self._garbage()
        pacer = self.server.gc_pacer
        allocated = pacer.allocated() if pacer is not None else None
        return replicas + (used if allocated is None else min(used, BASE_MEMORY + allocated))

    def _garbage(self) -> int:
        """PyPy: the garbage its GC's heap holds (``GcPacer.garbage``)."""
        pacer = self.server.gc_pacer
        if pacer is None:
            return 0
        return pacer.garbage(self._estimate(None, self.live_avg) - BASE_MEMORY, self.live_avg)

    def _estimate(self, current: Optional[Database], avg: Optional[float] = None) -> int:
        keys = expires = 0
        for db in self.active:
            keys += len(db.data)
            expires += len(db.expires)
        if current is not None and current not in self.active:
            self.active.append(current)
            keys += len(current.data)
            expires += len(current.expires)
        # Clients as last measured (client_memory.py); replicas' output not, as
        # Redis leaves it out of what eviction counts (mem_not_counted_for_evict).
        clients = self.server.client_memory
        return (BASE_MEMORY + CLIENT_MEMORY * len(self.server.clients) + clients.normal
                + int(keys * (self.avg_key if avg is None else avg)) + expires * EXPIRE_ENTRY
                + self.server.script_memory)

    def refresh_estimate(self, uniform: bool = False) -> None:
        """Re-estimate each database's bytes, and from them the average key.

        Keys added since the last refresh count as themselves (the newest
        ``NEW_SAMPLE`` of them measured), keys removed at the database's average;
        a uniform sample, when asked, corrects the rest (overwrites, deletions of
        keys bigger or smaller than the average): all keys of a database of at
        most ``EXACT_BELOW``. A database not seen before is sampled afresh."""
        dbs = [db for db in self.keyspace.dbs if db.data]
        self.active = dbs
        side = self.side
        old = self.db_bytes
        new: Dict[int, Tuple[int, int, float]] = {}
        for db in dbs:
            data = db.data
            n = len(data)
            known = old.get(db.id)
            if known is not None and known[0] == id(data):
                _, before, est = known
                grew = n - before
                if grew > 0:
                    newest = [key_cost(k, data[k], side)
                              for k in islice(reversed(data), min(grew, NEW_SAMPLE))]
                    est += grew * sum(newest) / len(newest)
                elif grew < 0:
                    est += grew * est / before
                if uniform:
                    est = self._uniform(data, side, est)
            else:  # new, emptied and refilled, or replaced (FLUSHDB, SWAPDB, a load)
                est = self._uniform(data, side, None)
            new[db.id] = (id(data), n, est)
        self.db_bytes = new
        if uniform:
            self.last_uniform = time.monotonic()
        self._set_average()

    def _uniform(self, data: Dict[bytes, Any], side: bool, est: Optional[float]) -> float:
        """A database's bytes from a uniform sample, blended into ``est`` if known
        (one sample of heterogeneous keys is noisy); small ones measured whole."""
        n = len(data)
        if n <= EXACT_BELOW:
            return float(sum(key_cost(k, v, side) for k, v in data.items()))
        picked = random_keys(data, UNIFORM_SAMPLE)[:UNIFORM_SAMPLE]
        sampled = n * sum(key_cost(k, data[k], side) for k in picked) / len(picked)
        return sampled if est is None else 0.7 * est + 0.3 * sampled

    def _set_average(self) -> None:
        """avg_key from the databases' bytes: what the keys written next are counted
        at until the next refresh (for eviction, times the GC's heap growth on PyPy)."""
        keys = 0
        total = 0.0
        for _, n, est in self.db_bytes.values():
            keys += n
            total += est
        if keys:
            self.live_avg = total / keys
            self.avg_key = (self.live_avg + PYPY_EVICT_PAD) * _GC_FACTOR

    # -- the check before denyoom commands ------------------------------------------

    def oom_check(self, c: Any) -> None:
        """Before a denyoom command: evict if over maxmemory, else OOM.

        The dispatcher calls this only when ``server.oom_credit`` (denyoom
        commands allowed before the next full check) runs out; the credit is
        the number of average keys that still fit, at most 256 (1024 while
        that is at most 1/64 of them), so a full check runs at least every
        256 writes near the limit and before the limit is reached.
        """
        self.checks += 1
        tick()
        if self.last_credit or not self.checks & 63 or not self.avg_key:
            # the keys written on the last credit count as themselves; the steady
            # eviction state (no credit: one check per write, each write replacing
            # an evicted key) re-measures every 64 checks (12k instructions a refresh)
            self.refresh_estimate(uniform=time.monotonic() - self.last_uniform > 1.0)
        ok = self._estimate(c.db) <= self.maxmemory or self.evict()
        self._set_credit()
        if not ok:
            raise CommandError(OOM)

    def _set_credit(self) -> None:
        """How many denyoom commands may run before the next full check."""
        room = self.maxmemory - self._estimate(None)
        credit = 0
        if room > 0 and self.avg_key:
            fit = int(room / (self.avg_key + EXPIRE_ENTRY))  # average keys that still fit
            credit = max(min(CHECK_EVERY, fit), min(CHECK_EVERY_FAR, fit // FAR))
        self.server.oom_credit = self.last_credit = credit
        self.server.oom_bytes = max(room, 0)

    def cron(self) -> None:
        if not self.maxmemory:
            return
        tick()
        self.refresh_estimate(uniform=time.monotonic() - self.last_uniform > 1.0)
        if self._estimate(None) > self.maxmemory:
            self.evict()
        self._set_credit()
        self._prune_side()

    def _prune_side(self) -> None:
        """Drop stamps of deleted keys once they are a sizeable share."""
        for db in self.keyspace.dbs:
            side = getattr(db.__class__, "lru", None)
            if side is None:
                side = getattr(db.__class__, "lfu", None)
            if side is not None and len(side) > len(db.data) * 5 // 4 + 1024:
                data = db.data
                keep = {k: v for k, v in side.items() if k in data}
                side.clear()  # in place: the inlined stamps hold this dict
                side.update(keep)

    # -- eviction -------------------------------------------------------------------

    def evict(self) -> bool:
        """Evict until under maxmemory; False when nothing can be evicted (OOM)."""
        if self.policy == "noeviction":
            return False
        ok, evicted = self._evict()
        pacer = self.server.gc_pacer  # PyPy: an evicted value is garbage until collected
        if pacer is not None and evicted:
            pacer.evicted_bytes(evicted * self.avg_key, self.maxmemory)
        return ok

    def _evict(self) -> Tuple[bool, int]:
        evicted = 0
        volatile = self.volatile
        dbs = [db for db in self.keyspace.dbs if (db.expires if volatile else db.data)]
        while self._estimate(None) > self.maxmemory:
            if evicted >= MAX_EVICT_PER_CALL:
                return True, evicted  # let the command run; the rest goes on later
            if evicted and not evicted & 63:
                dbs = [db for db in dbs if (db.expires if volatile else db.data)]
            if not dbs:
                return False, evicted
            victim = self._pick(dbs)
            if victim is None:
                return False, evicted
            db, key = victim
            self._evict_key(db, key)
            evicted += 1
        return True, evicted

    def _evict_key(self, db: Database, key: bytes) -> None:
        ks = self.keyspace
        if db.delete(key):
            ks.evicted_keys += 1
            if ks.events:
                notify(db, EVICTED, b"evicted", key)
            ks.propagate(db.id, [[b"DEL", key]])
        side = getattr(db.__class__, "lru", None)
        if side is None:
            side = getattr(db.__class__, "lfu", None)
        if side is not None:
            side.pop(key, None)

    def info(self) -> Dict[str, Any]:
        # As Redis's buffers, PyPy's uncollected garbage is in used_memory but not
        # what eviction frees (eviction counts keys times the GC factor instead).
        clients = self.server.client_memory
        fields = {"mem_not_counted_for_evict": self._garbage() + clients.replicas}
        fields.update(clients.info())
        return fields

    def _draw(self, db: Database, volatile: bool, count: int) -> List[bytes]:
        """Up to ``count`` random keys of ``db`` (keys with a TTL if ``volatile``)."""
        source = db.expires if volatile else db.data
        count = min(count, len(source))  # maxmemory-samples may be up to 2**31 - 1
        slot = (db.id, volatile)
        res = self.reservoirs.get(slot)
        rand = random.random
        out: List[bytes] = []
        tries = 0
        while len(out) < count and tries < 4 * count + 16:
            tries += 1
            if not res:
                if not source:
                    break
                res = random_keys(source, max(1024, len(source) >> 3))
                self.reservoirs[slot] = res
                if not volatile:  # a uniform sample: reuse it for the size estimate
                    self._sample_sizes(db, res)
            i = int(rand() * len(res))
            key = res[i]
            res[i] = res[-1]
            res.pop()
            if key in source:
                out.append(key)
        return out

    def _sample_sizes(self, db: Database, keys: List[bytes]) -> None:
        """Blend a uniform sample (an eviction reservoir) into the database's bytes."""
        data = db.data
        known = self.db_bytes.get(db.id)
        picked = [key_cost(k, data[k], self.side) for k in keys[:16] if k in data]
        if picked and known is not None and known[0] == id(data):
            sampled = known[1] * sum(picked) / len(picked)
            self.db_bytes[db.id] = (known[0], known[1], 0.7 * known[2] + 0.3 * sampled)
            self._set_average()

    def _pick(self, dbs: List[Database]) -> Optional[Tuple[Database, bytes]]:
        volatile = self.volatile
        draw = self._draw
        if self.policy.endswith("-random"):
            for _ in range(4):
                db = random.choice(dbs) if len(dbs) > 1 else dbs[0]
                keys = draw(db, volatile, 1)
                if keys:
                    return db, keys[0]
            return None
        # LRU / LFU / TTL: sample every db into the pool, evict the best candidate
        pool = self.pool
        score_of = self.score_of
        lru = self.policy.endswith("-lru")
        for db in dbs:
            keys = draw(db, volatile, self.samples)
            db_id = db.id
            side = getattr(db.__class__, "lru", None) if lru else None
            if side is not None:  # the common case, inlined
                clock = stamps._clock
                entries = [(side.get(key) or clock, db_id, key) for key in keys]
            else:
                entries = []
                for key in keys:
                    score = score_of(db, key)
                    if score is not None:
                        entries.append((score, db_id, key))
            for entry in entries:
                if len(pool) < POOL_SIZE:
                    insort(pool, entry)
                elif entry < pool[-1]:
                    pool.pop()
                    insort(pool, entry)
        all_dbs = self.keyspace.dbs
        while pool:
            score, db_id, key = pool.pop(0)
            db = all_dbs[db_id]
            if key not in (db.expires if volatile else db.data):
                continue
            now = score_of(db, key)
            if now is None or now > score:  # used since it was sampled
                continue
            return db, key
        for db in dbs:  # every pool entry was stale: a plain random key
            keys = draw(db, volatile, 1)
            if keys:
                return db, keys[0]
        return None

    def _scorer(self, policy: str) -> Any:
        """score(db, key): lower evicts first (access time, counter, deadline)."""
        if policy.endswith("-lru"):
            def lru_score(db: Database, key: bytes) -> Optional[float]:
                side = getattr(db.__class__, "lru", None)
                if side is None:
                    return 0
                stamp = side.get(key)
                if stamp is None:  # written by a path that bypassed modified(): new
                    side[key] = stamp = stamps._clock
                return stamp
            return lru_score
        if policy.endswith("-lfu"):
            def lfu_score(db: Database, key: bytes) -> Optional[float]:
                now_min = (int(time.time()) // 60) & 0xFFFF
                cls = db.__class__
                side = getattr(cls, "lfu", None)
                if side is None:
                    return 0
                entry = side.get(key)
                if entry is None:
                    side[key] = entry = (now_min << 8) | LFU_INIT_VAL
                return lfu_decayed(entry, now_min, cls.decay_time)  # type: ignore
            return lfu_score

        def ttl_score(db: Database, key: bytes) -> Optional[float]:
            return db.expires.get(key)
        return ttl_score


def install(server: "CacheServer") -> Eviction:
    engine = Eviction(server)
    server.eviction = engine  # type: ignore[attr-defined]
    server.used_memory = engine.used_memory  # type: ignore[assignment]
    server.cron_jobs.append(engine.cron)

    def on_config(name: str) -> None:
        if name in ("maxmemory", "maxmemory-policy", "maxmemory-samples", "lfu-log-factor",
                    "lfu-decay-time"):
            engine.configure()
            if engine.maxmemory and engine._estimate(None) > engine.maxmemory:
                engine.evict()

    server.config_hooks.append(on_config)
    server.info_providers["memory"].append(engine.info)
    return engine
