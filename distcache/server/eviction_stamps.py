"""Access stamps for the LRU and LFU policies: databases that record each key's
last access (LRU, a coarse 10 ms clock) or Redis's logarithmic access counter
(LFU) in a side dict, and read-only views of them (OBJECT IDLETIME / FREQ,
RESTORE's IDLETIME / FREQ). Installed by eviction.py only while maxmemory is
set with such a policy; the plain Database pays nothing.
"""
from __future__ import annotations

import random
import time
from typing import Any, Dict, Optional

from .keyspace import INLINE_SAFE, Database, now_ms

LFU_INIT_VAL = 5

#: The coarse LRU clock: 10 ms ticks, advanced by tick() (the memory check and the
#: cron); one shared int object per tick, so a stamp costs a dict entry and no int.
_clock = 0


def tick() -> int:
    global _clock
    now = int(time.monotonic() * 100)
    if now != _clock:
        _clock = now
    return _clock


def lru_clock() -> int:
    """The current tick: what a stamp holds (for code that stamps inline)."""
    return _clock


class LruDatabase(Database):
    """A Database whose reads and writes record the access time in ``lru``.

    These are the general (always correct) methods; each database's class gets
    faster copies from :func:`_lru_methods` where Database's are unchanged."""

    __slots__ = ()
    lru: Dict[bytes, int] = {}

    def get(self, key: bytes) -> Any:
        value = Database.get(self, key)
        if value is not None:
            self.lru[key] = _clock
        return value

    def modified(self, key: bytes) -> None:
        self.lru[key] = _clock
        Database.modified(self, key)


# Inlined, a stamp costs one dict store; the general methods above add a call (get)
# and a class-attribute lookup per access, which cost more than the store
# (cachegrind, pipelined SET/GET through a Client over 100k keys, instructions per
# command above noeviction: SET +781 general vs +85 inlined, set() inlining
# modified() too; GET +1408 vs +469). Storing unconditionally beats first checking
# whether the stamp already holds the current tick (SET +618, GET +560).

def _lru_methods(lru: Dict[bytes, int]) -> Dict[str, Any]:
    """Database's get/set/modified with the stamp into ``lru`` inlined: the
    references in keyspace.py plus one store (set also inlines modified). Only the
    methods whose Database version still matches its reference. They hold
    ``lru`` itself, so a side dict is only ever changed in place."""

    def get(self: Any, key: bytes) -> Any:
        value = self.data.get(key)
        if value is None:
            self.keyspace.misses += 1
            return None
        if self.expires and key in self.expires and self.expires[key] <= now_ms():
            self.expire_now(key)
            self.keyspace.misses += 1
            return None
        self.keyspace.hits += 1
        lru[key] = _clock
        return value

    def set(self: Any, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        self.data[key] = value
        if self.expires and not keep_ttl:
            self.expires.pop(key, None)
        lru[key] = _clock
        ks = self.keyspace
        ks.dirty += 1
        if self.watched:
            ks.key_modified(self, key)

    def modified(self: Any, key: bytes) -> None:
        lru[key] = _clock
        ks = self.keyspace
        ks.dirty += 1
        if self.watched:
            ks.key_modified(self, key)

    methods = {"get": get, "set": set, "modified": modified}
    if not INLINE_SAFE["modified"]:
        del methods["set"]  # it inlines modified too
    return {name: fn for name, fn in methods.items() if INLINE_SAFE[name]}


def lfu_decayed(entry: int, now_min: int, decay_time: int) -> int:
    """Redis's LFUDecrAndReturn: the counter minus one per ``decay_time`` minutes idle."""
    counter = entry & 255
    if decay_time:
        elapsed = (now_min - (entry >> 8)) & 0xFFFF
        periods = elapsed // decay_time
        if periods:
            counter = counter - periods if periods < counter else 0
    return counter


class LfuDatabase(Database):
    """A Database keeping Redis's logarithmic access counter in ``lfu``:
    ``(minutes << 8) | counter``."""

    __slots__ = ()
    lfu: Dict[bytes, int] = {}
    log_factor = 10
    decay_time = 1

    def _touch(self, key: bytes) -> None:
        lfu = self.lfu
        now_min = (int(time.time()) // 60) & 0xFFFF
        entry = lfu.get(key)
        if entry is None:
            counter = LFU_INIT_VAL
        else:
            counter = lfu_decayed(entry, now_min, self.decay_time)
        if counter < 255:
            base = counter - LFU_INIT_VAL if counter > LFU_INIT_VAL else 0
            if random.random() < 1.0 / (base * self.log_factor + 1):
                counter += 1
        lfu[key] = (now_min << 8) | counter

    def get(self, key: bytes) -> Any:
        value = Database.get(self, key)
        if value is not None:
            self._touch(key)
        return value

    def modified(self, key: bytes) -> None:
        if key not in self.lfu:
            self.lfu[key] = (((int(time.time()) // 60) & 0xFFFF) << 8) | LFU_INIT_VAL
        else:
            self._touch(key)
        Database.modified(self, key)


# -- read-only views of the stamps (OBJECT IDLETIME / FREQ); they never stamp ------------

def idle_ms(db: Database, key: bytes) -> Optional[int]:
    """Milliseconds since ``key`` was last read or written, from the LRU stamps; None
    while no LRU stamps are kept. A key without a stamp counts as new (0), as the
    eviction pool treats it."""
    side = getattr(db.__class__, "lru", None)
    if side is None:
        return None
    stamp = side.get(key)
    if stamp is None:
        return 0
    return max(0, int(time.monotonic() * 100) - stamp) * 10


def lfu_frequency(db: Database, key: bytes) -> Optional[int]:
    """The decayed LFU counter of ``key`` (LFU_INIT_VAL without a stamp: new); None
    while no LFU counters are kept."""
    cls = db.__class__
    side = getattr(cls, "lfu", None)
    if side is None:
        return None
    entry = side.get(key)
    if entry is None:
        return LFU_INIT_VAL
    return lfu_decayed(entry, (int(time.time()) // 60) & 0xFFFF, cls.decay_time)


def set_idle(db: Database, key: bytes, seconds: int) -> None:
    """Back-date ``key``'s LRU stamp by ``seconds`` (RESTORE ... IDLETIME); a no-op
    while no LRU stamps are kept."""
    side = getattr(db.__class__, "lru", None)
    if side is not None:
        side[key] = int(time.monotonic() * 100) - seconds * 100


def set_frequency(db: Database, key: bytes, counter: int) -> None:
    """Set ``key``'s LFU counter (RESTORE ... FREQ); a no-op while none are kept."""
    side = getattr(db.__class__, "lfu", None)
    if side is not None:
        side[key] = (((int(time.time()) // 60) & 0xFFFF) << 8) | counter


def _db_class(base: type, db_id: int, **attrs: Any) -> type:
    return type(f"{base.__name__}{db_id}", (base,), dict(attrs, __slots__=()))

