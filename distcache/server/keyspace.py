"""The keyspace: numbered databases of keys, with TTLs and expiry.

A value's Python type is its Redis type: ``bytes`` is a string, and the
container types register themselves in :data:`TYPE_NAMES`. The keyspace
knows nothing of the network or of persistence: every change is announced
through :meth:`Keyspace.key_modified` and every write command's effect
through :meth:`Keyspace.propagate`, which WATCH, the append-only log and
snapshots subscribe to.
"""
from __future__ import annotations

import random
import time
from itertools import islice
from typing import Any, Callable, Dict, List, Optional, Tuple

from .errors import CommandError, WRONGTYPE
from .notify import EXPIRED, notify

#: Python type of a stored value -> Redis type name (TYPE, SCAN TYPE).
TYPE_NAMES: Dict[type, str] = {bytes: "string"}

Propagator = Callable[[int, List[List[bytes]]], None]


def now_ms() -> int:
    return int(time.time() * 1000)


class Database:
    """One numbered database: ``data`` maps keys to values, ``expires`` to ms deadlines."""

    __slots__ = ("id", "data", "expires", "keyspace", "watched", "blocking")

    #: key -> LRU clock tick of the last access, while an LRU policy stamps them
    #: (the eviction module's per-database subclasses set it).
    lru: Optional[Dict[bytes, int]] = None

    def __init__(self, db_id: int, keyspace: "Keyspace") -> None:
        self.id = db_id
        self.data: Dict[bytes, Any] = {}
        self.expires: Dict[bytes, int] = {}
        self.keyspace = keyspace
        #: key -> the client WATCHing it, or a set of clients when several do;
        #: filled by the transactions module.
        self.watched: Dict[bytes, Any] = {}
        #: key -> clients blocked on it (BLPOP and friends).
        self.blocking: Dict[bytes, List[Any]] = {}

    # -- lookups --------------------------------------------------------------

    def get(self, key: bytes) -> Any:
        """The live value of ``key`` or None, expiring it first if due. Counts hits."""
        value = self.data.get(key)
        if value is None:
            self.keyspace.misses += 1
            return None
        if self.expires and key in self.expires and self.expires[key] <= now_ms():
            self.expire_now(key)
            self.keyspace.misses += 1
            return None
        self.keyspace.hits += 1
        return value

    #: Like :meth:`get` (hits and misses counted) but never an access for the
    #: eviction policy's stamps (Redis's LOOKUP_NOTOUCH: TYPE, EXISTS, TTL...):
    #: the LRU/LFU subclasses override ``get`` only, so this stays Database's.
    get_untouched = get

    def peek(self, key: bytes) -> Any:
        """Like :meth:`get` but without touching the hit/miss statistics."""
        value = self.data.get(key)
        if value is not None and self.expires and key in self.expires \
                and self.expires[key] <= now_ms():
            self.expire_now(key)
            return None
        return value

    def get_typed(self, key: bytes, kind: type) -> Any:
        """The value of ``key`` if it has type ``kind``; None if missing; WRONGTYPE otherwise."""
        value = self.get(key)
        if value is not None and value.__class__ is not kind:
            raise CommandError(WRONGTYPE)
        return value

    def peek_typed(self, key: bytes, kind: type) -> Any:
        value = self.peek(key)
        if value is not None and value.__class__ is not kind:
            raise CommandError(WRONGTYPE)
        return value

    def exists(self, key: bytes) -> bool:
        return self.peek(key) is not None

    # -- changes --------------------------------------------------------------

    def set(self, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        """Store ``value``; clears any TTL unless ``keep_ttl``. (While keys' creation
        is listened to, the class announcing it replaces this: see Keyspace.hook.)"""
        self.data[key] = value
        if self.expires and not keep_ttl:
            self.expires.pop(key, None)
        self.modified(key)

    def add(self, key: bytes, value: Any) -> None:
        """Create ``key`` (Redis's dbAdd), announced to the ``new`` listeners."""
        self.data[key] = value
        for listener in self.keyspace.new_listeners:
            listener(self, key)
        self.modified(key)

    def delete(self, key: bytes) -> bool:
        """Remove ``key`` (ignoring whether it expired); True if it was there."""
        if self.peek(key) is None:
            return False
        del self.data[key]
        if self.expires:
            self.expires.pop(key, None)
        self.modified(key)
        return True

    def modified(self, key: bytes) -> None:
        """Announce that ``key`` changed. Every write ends here."""
        ks = self.keyspace
        ks.dirty += 1
        if self.watched:
            ks.key_modified(self, key)

    def set_expire(self, key: bytes, when_ms: int) -> None:
        self.expires[key] = when_ms
        self.modified(key)

    def persist(self, key: bytes) -> bool:
        if self.expires.pop(key, None) is None:
            return False
        self.modified(key)
        return True

    def ttl_ms(self, key: bytes) -> int:
        """Milliseconds to live: -2 for no key, -1 for no TTL."""
        if self.peek(key) is None:
            return -2
        when = self.expires.get(key)
        if when is None:
            return -1
        return max(0, when - now_ms())

    def expire_now(self, key: bytes) -> None:
        """Remove a key whose TTL passed, and log it as a DEL."""
        ks = self.keyspace
        # CLIENT PAUSE (server/pause.py): reads miss it, nothing deletes it yet; a
        # replica: hidden from reads, deleted by its primary's DEL.
        if ks.expiry_paused or ks.hold_expired:
            return
        self.data.pop(key, None)
        self.expires.pop(key, None)
        ks.expired_keys += 1
        if ks.events:
            notify(self, EXPIRED, b"expired", key)
        self.modified(key)
        ks.propagate(self.id, [[b"DEL", key]])

    def remove_if_empty(self, key: bytes, value: Any) -> None:
        """Containers that become empty are deleted, as in Redis."""
        if not value:
            del self.data[key]
            if self.expires:
                self.expires.pop(key, None)

    def flush(self) -> None:
        # Only watched keys that exist are changed by a flush (Redis 7.0 too).
        for key in [k for k in self.watched if k in self.data]:
            self.keyspace.key_modified(self, key)
        self.data = {}
        self.expires = {}
        self.keyspace.dirty += 1

    def random_key(self) -> Optional[bytes]:
        """A random live key, or None; bounded tries when most keys are expired."""
        for _ in range(100):
            if not self.data:
                return None
            key = _random_dict_key(self.data)
            if self.peek(key) is not None:
                return key
        return key if self.data else None

    def __len__(self) -> int:
        return len(self.data)



_LISTENERS = {"new": "new_listeners", "modified": "key_listeners", "miss": "miss_listeners"}


class HookedDict(dict):  # type: ignore[type-arg]
    """A ``Database.watched`` that is true even when empty (see Keyspace.hook)."""

    def __bool__(self) -> bool:
        return True


#: announcing class -> (the class it wraps, announces new keys, announces misses)
_ANNOUNCING_BASES: Dict[type, Tuple[type, bool, bool]] = {}
_ANNOUNCING: Dict[Tuple[type, bool, bool], type] = {}


def _announcing(cls: type, new: bool, miss: bool) -> type:
    """``cls`` with a ``set`` that creates new keys through ``Database.add`` (``new``)
    and lookups that tell the ``miss`` listeners of keys not found (``miss``)."""
    wrapped = _ANNOUNCING.get((cls, new, miss))
    if wrapped is None:
        methods: Dict[str, Any] = {"__slots__": ()}
        if new:
            base_set = cls.set  # type: ignore[attr-defined]

            def set(self: Any, key: bytes, value: Any, keep_ttl: bool = False) -> None:
                if key in self.data:
                    base_set(self, key, value, keep_ttl)
                else:
                    self.add(key, value)
            methods["set"] = set
        if miss:
            for name in ("get", "get_untouched"):
                methods[name] = _missing_told(getattr(cls, name))
        wrapped = type(cls.__name__, (cls,), methods)
        _ANNOUNCING[(cls, new, miss)] = wrapped
        _ANNOUNCING_BASES[wrapped] = (cls, new, miss)
    return wrapped


def _missing_told(lookup: Callable[[Any, bytes], Any]) -> Callable[[Any, bytes], Any]:
    def told(self: Any, key: bytes) -> Any:
        value = lookup(self, key)
        if value is None:
            for listener in self.keyspace.miss_listeners:
                listener(self, key)
        return value
    return told


def _random_dict_key(d: Dict[bytes, Any]) -> bytes:
    # Dicts have no random access; skipping through the keys in C is O(n)
    # but fast (a few ms per million keys), and RANDOMKEY is rare.
    return next(islice(iter(d), random.randrange(len(d)), None))


class Keyspace:
    """All databases, the write counter, and the hooks writes flow through."""

    def __init__(self, databases: int = 16) -> None:
        self.dbs = [Database(i, self) for i in range(databases)]
        self.dirty = 0  # changes since the last snapshot
        self.hits = 0
        self.misses = 0
        self.expired_keys = 0
        self.evicted_keys = 0
        #: CLIENT PAUSE holds writes: expired keys stay until it ends (server/pause.py).
        self.expiry_paused = False
        #: A replica's keys do not expire here: it waits for its primary's DEL.
        self.hold_expired = False
        #: Called with (db id, commands) for every write; the AOF hangs here.
        #: Change it through add_/remove_propagator (they end the shortcut below).
        self.propagators: List[Propagator] = []
        #: The log's shortcut: while ``stage_db`` is set, the log is the only
        #: propagator and a command that wrote to that database unchanged (no
        #: rewrite) is appended to ``stage`` by the dispatcher, without a call.
        self.stage: List[List[bytes]] = []
        self.stage_db: Optional[Database] = None
        #: Called with (db, key) when a watched key changes.
        self.watch_listeners: List[Callable[[Database, bytes], None]] = []
        #: Called with (db, key) when any key changes, or a key is created; set
        #: through add_listener, which hooks the databases (see :meth:`hook`).
        self.key_listeners: List[Callable[[Database, bytes], None]] = []
        self.new_listeners: List[Callable[[Database, bytes], None]] = []
        #: Called with (db, key) when a read finds no key (``keymiss`` events).
        self.miss_listeners: List[Callable[[Database, bytes], None]] = []
        #: Keyspace notification classes enabled (server/notify.py), 0 when off,
        #: and how they are published (the pub/sub registry's publish).
        self.events = 0
        self.publish: Optional[Callable[[bytes, bytes], int]] = None

    def key_modified(self, db: Database, key: bytes) -> None:
        for listener in self.watch_listeners:
            listener(db, key)
        for listener in self.key_listeners:
            listener(db, key)

    def add_listener(self, kind: str, listener: Callable[[Database, bytes], None]) -> None:
        """Hear of every change (``kind`` "modified"), new key ("new") or read of
        a missing key ("miss")."""
        name = _LISTENERS[kind]
        current = getattr(self, name)
        if listener not in current:  # a new list: a running loop keeps its copy
            setattr(self, name, current + [listener])
        self.hook()

    def remove_listener(self, kind: str, listener: Callable[[Database, bytes], None]) -> None:
        name = _LISTENERS[kind]
        setattr(self, name, [fn for fn in getattr(self, name) if fn != listener])
        self.hook()

    def hook(self) -> None:
        """Route writes to the listeners while there are any, at no cost otherwise.

        ``Database.modified`` tests one thing, ``watched``, which is empty unless
        a client WATCHes. While tracking needs every write, each database's
        ``watched`` is a dict that is always true, so the same test takes the
        slow path. While key creation is listened to (``new`` events), each
        database's class is one whose ``set`` announces new keys; the eviction
        module may replace the class, so this runs again after a config change."""
        hooked = bool(self.key_listeners or self.new_listeners)
        for db in self.dbs:
            if hooked != (db.watched.__class__ is HookedDict):
                db.watched = HookedDict(db.watched) if hooked else dict(db.watched)
            cls = db.__class__
            base, new, miss = _ANNOUNCING_BASES.get(cls, (cls, False, False))
            wanted = (bool(self.new_listeners), bool(self.miss_listeners))
            if (new, miss) != wanted:
                db.__class__ = _announcing(base, *wanted) if any(wanted) else base

    def propagate(self, db_id: int, commands: List[List[bytes]]) -> None:
        for propagator in self.propagators:
            propagator(db_id, commands)

    def add_propagator(self, propagator: Propagator) -> None:
        self.stage_db = None
        self.propagators = self.propagators + [propagator]

    def remove_propagator(self, propagator: Propagator) -> None:
        self.stage_db = None
        self.propagators = [p for p in self.propagators if p != propagator]

    def total_keys(self) -> int:
        return sum(len(db.data) for db in self.dbs)

    def flush_all(self) -> None:
        for db in self.dbs:
            db.flush()

    def swap(self, a: int, b: int) -> None:
        """SWAPDB: the keys change databases; watches and blocked clients stay."""
        da, dbb = self.dbs[a], self.dbs[b]
        # A watched key changes if it exists on either side (Redis's
        # touchAllWatchedKeysInDb); listeners unwatch, so collect first.
        for one, other in ((da, dbb), (dbb, da)):
            for key in [k for k in one.watched if k in one.data or k in other.data]:
                self.key_modified(one, key)
        da.data, dbb.data = dbb.data, da.data
        da.expires, dbb.expires = dbb.expires, da.expires
        # A database's class may carry its keys' eviction stamps (eviction_stamps.py):
        # they go with the keys.
        da.__class__, dbb.__class__ = dbb.__class__, da.__class__


# -- reference copies for inlining ------------------------------------------------
# Hot paths elsewhere inline Database's get/set/modified, because a Python call
# costs more than their bodies: eviction's LRU stamps and the GET run handler.
# They were written from these copies. INLINE_SAFE says which of Database's
# methods still match theirs, so changing one turns its inlined copies off
# (back to a call) instead of leaving them stale.

def _reference_get(self: Any, key: bytes) -> Any:
    value = self.data.get(key)
    if value is None:
        self.keyspace.misses += 1
        return None
    if self.expires and key in self.expires and self.expires[key] <= now_ms():
        self.expire_now(key)
        self.keyspace.misses += 1
        return None
    self.keyspace.hits += 1
    return value


def _reference_set(self: Any, key: bytes, value: Any, keep_ttl: bool = False) -> None:
    self.data[key] = value
    if self.expires and not keep_ttl:
        self.expires.pop(key, None)
    self.modified(key)


def _reference_modified(self: Any, key: bytes) -> None:
    ks = self.keyspace
    ks.dirty += 1
    if self.watched:
        ks.key_modified(self, key)


def _same_code(a: Any, b: Any) -> bool:
    import dis

    def ops(f: Any) -> List[Tuple[str, Any]]:
        return [(i.opname, i.argval) for i in dis.get_instructions(f)]
    try:
        return ops(a) == ops(b)
    except Exception:  # pragma: no cover - exotic interpreters: keep the safe version
        return False


#: Method name -> whether Database's still matches the reference (checked once).
INLINE_SAFE: Dict[str, bool] = {name: _same_code(getattr(Database, name), ref) for name, ref in (
    ("get", _reference_get), ("set", _reference_set), ("modified", _reference_modified))}
