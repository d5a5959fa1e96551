"""Recipes built only on the public client API: memoizing, locks, id generators.

Each recipe's logic is a generator plan yielding ``(callable, args)`` steps
that call public client methods (get, set, gets, cas, cas_delete, execute).
The client's step runner (``_drive``) executes them, so the same code serves
``CacheClient`` (plain calls, ``time.sleep``) and ``AsyncCacheClient``
(awaits, ``asyncio.sleep``).

>>> @client.cached(ttl=60)
... def profile(user_id): ...
>>> with client.lock("report", timeout=30):
...     ...
>>> ids = client.id_generator("orders"); ids.next()
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import math
import random
import secrets
import threading
import time
from typing import Any, Callable, List, Optional

from ..protocol import ReplyError
from .commands import MISSING, OWNER_ONLY, SLEEP
from .errors import CacheError, ResponseError
from .serde import encode_key

__all__ = ["cached", "Lock", "LockError", "IdGenerator"]


class LockError(CacheError):
    """The lock could not be acquired in time, or is no longer ours."""


def _is_async(client: Any) -> bool:
    return inspect.iscoroutinefunction(client.close)


# -- cached ----------------------------------------------------------------------

def _default_key(fn: Callable[..., Any], args: tuple, kwargs: dict) -> str:
    text = repr((args, sorted(kwargs.items())))
    digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return f"cached:{fn.__module__}.{fn.__qualname__}:{digest}"


def cached(client: Any, ttl: Optional[float] = None, key: Any = None,
           lock_timeout: float = 10.0, wait_timeout: float = 10.0, poll: float = 0.02,
           beta: float = 0.0) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: memoize ``fn(*args, **kwargs)`` in the cache for ``ttl`` seconds.

    ``key``: a prefix string or ``callable(*args, **kwargs) -> key`` (default:
    module.qualname plus a digest of the arguments' repr). On a miss one caller
    computes under a short lock (``lock_timeout``); the others poll (every
    ``poll`` s) for the result, computing it themselves after ``wait_timeout``.
    ``beta > 0`` turns on probabilistic early recomputation (XFetch): the
    closer to expiry and the slower the function, the likelier a caller
    refreshes the value before it expires. Works with async functions on
    AsyncCacheClient.
    """
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        def cache_key(args: tuple, kwargs: dict) -> Any:
            if callable(key):
                return key(*args, **kwargs)
            if isinstance(key, str):
                return key + ":" + _default_key(fn, args, kwargs).rsplit(":", 1)[1]
            return _default_key(fn, args, kwargs)

        def plan(args: tuple, kwargs: dict) -> Any:
            k = cache_key(args, kwargs)
            lock_key = k + b":lock" if isinstance(k, bytes) else f"{k}:lock"
            deadline = time.monotonic() + wait_timeout
            while True:
                entry = yield client.get, (k, MISSING)
                if not (isinstance(entry, (tuple, list)) and len(entry) == 3):
                    entry = MISSING  # absent, or not written by this decorator
                stale = entry is not MISSING
                if stale:
                    value, delta, expires = entry
                    early = beta > 0 and expires and (
                        time.time() - delta * beta * math.log(random.random() or 1e-12)
                        >= expires)
                    if not early:
                        return value
                token = secrets.token_hex(8)
                locked = yield client.set, (lock_key, token, lock_timeout, True)
                if locked and not stale:
                    # Double-check: the previous holder may have stored the value
                    # between our miss and our lock.
                    fresh = yield client.get, (k, MISSING)
                    if isinstance(fresh, (tuple, list)) and len(fresh) == 3:
                        yield from _release(client, lock_key, token, strict=False)
                        return fresh[0]
                if locked or time.monotonic() >= deadline:
                    try:
                        started = time.monotonic()
                        value = yield (lambda: fn(*args, **kwargs)), ()
                        delta = time.monotonic() - started
                        expires = time.time() + ttl if ttl else 0
                        yield client.set, (k, (value, delta, expires), ttl)
                    finally:
                        if locked:
                            yield from _release(client, lock_key, token, strict=False)
                    return value
                if stale:  # someone else is refreshing: serve the current value
                    return entry[0]
                yield SLEEP, poll

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await client._drive(plan(args, kwargs))
            async_wrapper.cache_key = lambda *a, **kw: cache_key(a, kw)  # type: ignore
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return client._drive(plan(args, kwargs))
        wrapper.cache_key = lambda *a, **kw: cache_key(a, kw)  # type: ignore[attr-defined]
        return wrapper
    return decorate


def _release(client: Any, name: Any, token: str, strict: bool = True) -> Any:
    """Compare-and-delete: only the holder's token may remove the lock."""
    value, version = yield client.gets, (name,)
    if value != token:
        if strict:
            raise LockError(f"lock {name!r} is not held (expired or taken over)")
        return False
    deleted = yield client.cas_delete, (name, version)
    if not deleted and strict:
        raise LockError(f"lock {name!r} changed while releasing it")
    return deleted


# -- lock ----------------------------------------------------------------------------

class Lock:
    """A distributed lock: ``SET name token NX PX timeout``, released by
    compare-and-delete (WATCH/MULTI), so a holder whose lock expired and was
    taken by someone else cannot release the new holder's lock.

    ``blocking_timeout``: how long ``acquire()`` waits (None: forever).
    Use ``with`` (sync) or ``async with`` (asyncio); LockError if not acquired.
    """

    def __init__(self, client: Any, name: Any, timeout: float = 10.0,
                 blocking: bool = True, blocking_timeout: Optional[float] = None,
                 poll: float = 0.02) -> None:
        self.client = client
        self.name = name
        self.timeout = timeout
        self.blocking = blocking
        self.blocking_timeout = blocking_timeout
        self.poll = poll
        self.token: Optional[str] = None

    def _acquire(self, blocking: Optional[bool], blocking_timeout: Optional[float]) -> Any:
        blocking = self.blocking if blocking is None else blocking
        wait = self.blocking_timeout if blocking_timeout is None else blocking_timeout
        deadline = None if wait is None else time.monotonic() + wait
        token = secrets.token_hex(16)
        while True:
            if (yield self.client.set, (self.name, token, self.timeout, True)):
                self.token = token
                return True
            if not blocking or (deadline is not None and time.monotonic() >= deadline):
                return False
            yield SLEEP, self.poll * (0.5 + random.random())

    def acquire(self, blocking: Optional[bool] = None,
                blocking_timeout: Optional[float] = None) -> Any:
        """True once acquired; False if non-blocking or timed out."""
        return self.client._drive(self._acquire(blocking, blocking_timeout))

    def release(self) -> Any:
        """Release; LockError if the lock expired or is held by someone else."""
        token, self.token = self.token, None
        if token is None:
            raise LockError("release() of a lock that is not acquired")
        return self.client._drive(_release(self.client, self.name, token))

    def _extend(self, ttl: Optional[float]) -> Any:
        value, version = yield self.client.gets, (self.name,)
        if self.token is None or value != self.token:
            raise LockError(f"lock {self.name!r} is not held")
        ok = yield self.client.cas, (self.name, self.token, version, ttl or self.timeout)
        if not ok:
            raise LockError(f"lock {self.name!r} changed while extending it")
        return True

    def extend(self, ttl: Optional[float] = None) -> Any:
        """Reset the lock's TTL to ``ttl`` (default: ``timeout``) if still held."""
        return self.client._drive(self._extend(ttl))

    def locked(self) -> Any:
        """Whether anyone holds the lock."""
        return self.client.exists(self.name)

    def __enter__(self) -> "Lock":
        if _is_async(self.client):
            raise TypeError("use 'async with' for a lock of an AsyncCacheClient")
        if not self.acquire():
            raise LockError(f"could not acquire lock {self.name!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    async def __aenter__(self) -> "Lock":
        if not await self.acquire():
            raise LockError(f"could not acquire lock {self.name!r}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


# -- id generator ------------------------------------------------------------------------

class IdGenerator:
    """Unique, increasing-per-block integer ids across processes and servers.

    There is one counter per server, ``{name}:{slot}``, with a suffix chosen
    so the ring places it on server ``slot``. A block of ``block`` values is
    reserved with INCRBY on one counter, executed only on its own server
    (``execute(..., owner_only=True)``: never on a failover stand-in); a
    value ``v`` of counter ``slot`` becomes the id ``v * N + slot`` (N =
    number of servers). Different slots never collide (different residues),
    and a counter only ever moves on one server, so a failover cannot fork it.
    A new counter starts at the current time in microseconds, so a counter
    lost with its server's memory restarts above the ids it gave out
    (assuming fewer than a million values per second were reserved on it).
    On a shard with replicas the INCRBY is followed by WAIT for every live
    replica and the block is used only if they all confirmed (else the next
    counter is tried), so a promoted replica continues above every value
    handed out.
    """

    def __init__(self, client: Any, name: Any, block: int = 1000) -> None:
        if block < 1:
            raise ValueError("block must be >= 1")
        self.client = client
        self.name = name if isinstance(name, str) else bytes(name).decode()
        self.block = block
        self._lock = threading.Lock()
        self._next = 0
        self._end = 0  # ids are _next, _next + N, ... below _end
        servers: List[str] = client.servers
        self._n = len(servers)
        self._keys: List[str] = []
        for slot, address in enumerate(servers):
            for salt in range(100000):
                key = f"{self.name}:id:{slot}:{salt}"
                if client.server_for(key) == address:
                    break
            self._keys.append(key)
        self._first = random.randrange(self._n)  # spread processes over the counters

    def _take(self) -> Optional[int]:
        with self._lock:  # threads share the block; no I/O under the lock
            if self._next < self._end:
                value = self._next
                self._next += self._n
                return value
        return None

    def _plan(self) -> Any:
        while True:
            value = self._take()
            if value is not None:
                return value
            last: Optional[BaseException] = None
            for i in range(self._n):
                slot = (self._first + i) % self._n
                key = self._keys[slot]
                try:
                    floor = int(time.time() * 1e6)
                    yield _set_nx, (self.client, key, floor)
                    hi = yield _incr, (self.client, key, self.block)
                except CacheError as exc:
                    last = exc
                    continue
                if hi is None:  # ignore_errors swallowed a failure
                    continue
                with self._lock:
                    self._next = (hi - self.block + 1) * self._n + slot
                    self._end = (hi + 1) * self._n + slot
                    self._first = slot
                break
            else:
                raise last or CacheError("no server could reserve ids")

    def next(self) -> Any:
        """The next id (an int; a coroutine with AsyncCacheClient)."""
        return self.client._drive(self._plan())

    __call__ = next


def _set_nx(client: Any, key: str, floor: int) -> Any:
    return client.execute("SET", key, floor, "NX", owner_only=True)


def _incr(client: Any, key: str, block: int) -> Any:
    known, live = client._replica_counts(key)
    if not known:
        return client.execute("INCRBY", key, block, owner_only=True)
    # A shard with replicas: the block counts only once every live replica has
    # it, so a promoted replica can never hand out the same values again. WAIT
    # asks for all of them: a replica the client's pings missed (a busy host)
    # may still be linked to the primary and be promoted, so it gets the block
    # too; one really down costs the WAIT's second.
    k = encode_key(key)

    def confirmed(results: List[Any]) -> Any:
        hi, acked = results[0]
        if acked < live:
            raise CacheError(f"id block of {key} reached {acked} of {live} live replicas")
        return hi
    return client._then_wait(k, (b"INCRBY", k, block), OWNER_ONLY, known, 1.0,
                             _incr_waited, confirmed)


def _incr_waited(replies: List[Any], n: int) -> List[Any]:
    for reply in replies[:2]:
        if isinstance(reply, ReplyError):
            raise ResponseError(str(reply))
    return [(replies[0], replies[1])]
