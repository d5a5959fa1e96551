"""The client's local cache: a bounded LRU of raw values kept correct by tracking.

A ``LocalCache`` holds the stored bytes of values this client read (and the
misses: a read of a missing key is tracked too), so a hit costs a dict lookup
and the serializer's ``loads`` and no round trip. It only stores what was
read on a connection tracked by the server (``CLIENT TRACKING ON REDIRECT``
to a listener connection, see ``invalidation.py``), so every entry has an
invalidation on its way when the key changes.

Reads race with invalidations: a read's reply and the invalidation of the
same key travel on two connections. Each read takes a token before it is
sent (``begin``); an invalidation of the key, or the loss of the server's
listener, cancels the token, and ``store`` refuses a cancelled one, so a
value invalidated while its read was in flight is never stored. Reads of
one key in flight together share a token: whichever reply comes first is
stored (each was current when the server ran it, and a later write's
invalidation cancels the token or drops the entry).

>>> from distcache import CacheClient
>>> from distcache.client.localcache import LocalCache
>>> client = CacheClient("127.0.0.1:2050", local_cache=LocalCache(max_entries=1000))
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Optional

__all__ = ["LocalCache", "make_local_cache", "ABSENT", "ENTRY_OVERHEAD", "IMMUTABLE"]

#: Bytes charged per entry on top of its key and value: the Python objects
#: that hold it (measured with tracemalloc: bench/local_cache_bench.py --memory).
ENTRY_OVERHEAD = 200


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()  # lookup(): not in the local cache (None is a cached miss)
_epochs = itertools.count(1)
#: Decoded values of these exact types are kept and returned as they are; others
#: (lists, dicts...) are decoded afresh on each hit, so a caller may mutate them.
IMMUTABLE = frozenset([str, bytes, int, float, bool, complex])


class LocalCache:
    """A bounded LRU of values read through a tracking client.

    ``max_entries`` and ``max_bytes`` bound it (bytes: key + value +
    ``ENTRY_OVERHEAD`` each); a value over ``max_bytes // 8`` is not cached,
    so one large value cannot empty it. ``ttl`` (seconds) caps how long an
    entry is served even if no invalidation comes (None: until invalidated,
    evicted, or the key's own TTL on the server runs out).
    """

    def __init__(self, max_entries: int = 10_000, max_bytes: int = 16 * 1024 * 1024,
                 ttl: Optional[float] = None) -> None:
        if int(max_entries) < 1 or int(max_bytes) < 1:
            raise ValueError("max_entries and max_bytes must be positive")
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be positive (or None)")
        self.max_entries = int(max_entries)
        self.max_bytes = int(max_bytes)
        self.max_item_bytes = max(1, self.max_bytes // 8)
        self.ttl = ttl
        # key -> [raw value or None, server, charged bytes, expiry or 0.0, decoded
        # value when immutable (str, int...: handed out as is) or ABSENT]
        self._data: "OrderedDict[bytes, List[Any]]" = OrderedDict()
        self._pending: Dict[bytes, tuple] = {}  # key -> token of its latest read
        self._epochs: Dict[Any, Optional[int]] = {}  # server -> epoch; None: not tracked
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = self.misses = self.invalidations = self.evictions = 0
        self.owner: Any = None

    # -- reads (no lock: dict operations are atomic) --------------------------------
    def find(self, key: bytes) -> Any:
        """The entry ``[raw or None, server, size, expiry, decoded or ABSENT]``, or None."""
        entry = self._data.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry[3] and entry[3] < time.monotonic():
            self._drop([key])
            self.misses += 1
            return None
        try:
            self._data.move_to_end(key)
        except KeyError:  # invalidated by another thread meanwhile: still a consistent hit
            pass
        self.hits += 1
        return entry

    def lookup(self, key: bytes) -> Any:
        """The raw value (None for a cached miss), or ABSENT."""
        entry = self.find(key)
        return ABSENT if entry is None else entry[0]

    # -- the read protocol ---------------------------------------------------------
    def begin(self, key: bytes, server: Any) -> Optional[tuple]:
        """A token for a read of ``key`` about to be sent to ``server``; None if
        the server's invalidations are not being received (do not store)."""
        epoch = self._epochs.get(server)
        if epoch is None:
            return None
        # Concurrent reads of one key share a token (the first reply stores),
        # so a stream of readers cannot keep cancelling each other's stores.
        token = self._pending.get(key)
        if token is None or token[1] != server or token[2] != epoch:
            token = self._pending[key] = (key, server, epoch)
        return token

    def store(self, token: tuple, raw: Any, pttl: Any, started: float) -> bool:
        """Keep ``raw`` (read with ``token``; the key's PTTL reply) unless the read
        was invalidated meanwhile. ``started``: monotonic time the read was sent."""
        key, server, epoch = token
        with self._lock:
            if self._pending.get(key) is not token:
                return False
            del self._pending[key]
            if self._epochs.get(server) != epoch or pttl.__class__ is not int:
                return False
            if (raw is None) != (pttl == -2):
                return False  # expired between GET and PTTL, or MGET's nil for another type
            size = len(key) + (len(raw) if raw is not None else 0) + ENTRY_OVERHEAD
            if size > self.max_item_bytes:
                return False
            expires = started + pttl / 1000.0 if pttl >= 0 else 0.0
            if self.ttl is not None and (not expires or started + self.ttl < expires):
                expires = started + self.ttl
            data = self._data
            old = data.pop(key, None)
            if old is not None:
                self.bytes -= old[2]
            data[key] = [raw, server, size, expires, ABSENT]
            self.bytes += size
            while len(data) > self.max_entries or self.bytes > self.max_bytes:
                _, evicted = data.popitem(last=False)
                self.bytes -= evicted[2]
                self.evictions += 1
            return True

    def abandon(self, token: Optional[tuple]) -> None:
        """The read failed: forget its token."""
        if token is not None:
            with self._lock:
                if self._pending.get(token[0]) is token:
                    del self._pending[token[0]]

    # -- invalidation --------------------------------------------------------------
    def invalidate(self, keys: Iterable[bytes]) -> None:
        """Drop ``keys`` and cancel their reads in flight."""
        with self._lock:
            pending = self._pending
            for key in keys:
                pending.pop(key, None)
        self._drop(keys, count=True)

    def _drop(self, keys: Iterable[bytes], count: bool = False) -> None:
        with self._lock:
            data = self._data
            for key in keys:
                entry = data.pop(key, None)
                if entry is not None:
                    self.bytes -= entry[2]
                    if count:
                        self.invalidations += 1

    def server_up(self, server: Any) -> None:
        """``server``'s listener is subscribed: its reads may be stored."""
        with self._lock:
            self._epochs[server] = next(_epochs)

    def server_down(self, server: Any) -> None:
        """``server``'s invalidations stopped: drop its entries, store nothing more."""
        with self._lock:
            self._epochs[server] = None
        self.clear_server(server, keep_epoch=True)

    def cancel(self, server: Any) -> None:
        """Refuse the stores of every read in flight to ``server``."""
        with self._lock:
            if self._epochs.get(server) is not None:
                self._epochs[server] = next(_epochs)

    def clear_server(self, server: Any, keep_epoch: bool = False) -> None:
        """Drop ``server``'s entries (a FLUSH, a lost listener, a failover)."""
        if not keep_epoch:
            self.cancel(server)
        # list() copies in C, under the GIL: safe beside lock-free lookups
        keys = [k for k, entry in list(self._data.items()) if entry[1] == server]
        self._drop(keys)

    def clear(self) -> None:
        """Drop every entry and cancel every read in flight."""
        with self._lock:
            for server, epoch in self._epochs.items():
                if epoch is not None:
                    self._epochs[server] = next(_epochs)
            self._pending.clear()
            self._data.clear()
            self.bytes = 0

    # -- introspection ------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Any) -> bool:
        from .serde import encode_key
        return encode_key(key) in self._data

    def stats(self) -> Dict[str, int]:
        """Counters: hits, misses, invalidations, evictions, entries, bytes."""
        return {"hits": self.hits, "misses": self.misses, "invalidations": self.invalidations,
                "evictions": self.evictions, "entries": len(self._data), "bytes": self.bytes}

    def __repr__(self) -> str:
        return (f"LocalCache(max_entries={self.max_entries}, max_bytes={self.max_bytes}, "
                f"ttl={self.ttl}, entries={len(self._data)})")


def make_local_cache(spec: Any) -> Optional[LocalCache]:
    """``local_cache=`` -> a LocalCache: None/False (off), True (defaults), a
    dict of LocalCache options, or a LocalCache (not shared by two clients)."""
    if spec is None or spec is False:
        return None
    if spec is True:
        return LocalCache()
    if isinstance(spec, dict):
        return LocalCache(**spec)
    if isinstance(spec, LocalCache):
        if spec.owner is not None:
            raise ValueError("this LocalCache already belongs to another client")
        return spec
    raise TypeError("local_cache must be True, a dict of options or a LocalCache")
