"""The client's methods, written once for the sync and the asyncio flavour.

A method builds its command and names a reply callback, then hands both to
``_single`` (each flavour's lean one-command path), which returns either the
result (sync) or an awaitable (asyncio). Anything with several steps is a
generator *plan* that yields what it needs (requests, sleeps, calls), driven
by ``BaseClient``'s drivers; so routing, failover and retries live only here.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from ..protocol import ReplyError
from .errors import (AuthenticationError, ConnectionError, ResponseError, ServerDown,
                     TimeoutError)
from .serde import encode_key

log = logging.getLogger("distcache.client")

__all__ = ["CommandsMixin", "MISSING", "READ", "WRITE", "IDEMPOTENT", "SLEEP", "raise_reply",
           "parse_info"]

# Command flags: READ/WRITE decide failover treatment, IDEMPOTENT allows retries.
IDEMPOTENT = 1
WRITE = 2
READ = IDEMPOTENT
IDEMPOTENT_WRITE = IDEMPOTENT | WRITE
OWNER_ONLY = 4  # never fail over to a stand-in server (id_generator's counters)
ROUTED_AFTER_WAIT = 8  # _plan already waited for a Sentinel promotion
SLEEP = object()  # marker a compound plan yields to sleep: (SLEEP, seconds)


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def raise_reply(reply: ReplyError) -> None:
    raise ResponseError(str(reply))


def ttl_ms(ttl: Optional[float]) -> Optional[int]:
    """Seconds (int or float) -> milliseconds; None or 0 mean "no expiry"."""
    if ttl is None or ttl == 0:
        return None
    if ttl < 0:
        raise ValueError("ttl must be positive (or None/0 for no expiry)")
    return max(1, int(ttl * 1000))


def token_of(raw: bytes) -> str:
    """The CAS token of a stored value: a digest of its bytes."""
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def parse_info(text: Any) -> Dict[str, Any]:
    """INFO's ``key:value`` lines -> dict, numbers as int/float."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    info: Dict[str, Any] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, _, value = line.partition(":")
        for kind in (int, float):
            try:
                info[name] = kind(value)
                break
            except ValueError:
                continue
        else:
            info[name] = value
    return info


class CommandsMixin:
    """The public API. Subclasses provide the execution primitives."""

    # Set by the flavour's __init__ (see sync.CacheClient).
    _loads: Callable[[bytes], Any]
    _dumps: Callable[[Any], bytes]
    _shards: Any = None  # a shards.ShardMap when the pool has replicas or named shards

    # -- reply callbacks: (reply, arg) -> result ----------------------------
    def _cb_value(self, reply: Any, default: Any) -> Any:
        return default if reply is None else self._loads(reply)

    @staticmethod
    def _cb_ok(reply: Any, _: Any) -> bool:
        return reply is not None

    @staticmethod
    def _cb_bool(reply: Any, _: Any) -> bool:
        return bool(reply)

    @staticmethod
    def _cb_int(reply: Any, _: Any) -> Optional[int]:
        return reply

    @staticmethod
    def _cb_count(reply: Any, _: Any) -> int:
        return reply or 0

    def _cb_many(self, values: Any, originals: Dict[bytes, Any]) -> Dict[Any, Any]:
        if values is None:  # ignore_errors swallowed a failure
            return {}
        loads = self._loads
        return {key: loads(v) for key, v in zip(originals.values(), values) if v is not None}

    @staticmethod
    def _cb_ttl(reply: Any, _: Any) -> Optional[float]:
        return None if reply is None or reply < 0 else reply / 1000.0

    @staticmethod
    def _cb_gets(reply: Any, arg: Any) -> Tuple[Any, Optional[str]]:
        loads, default = arg
        if reply is None:
            return default, None
        return loads(reply), token_of(reply)

    # -- memcached-like ----------------------------------------------------
    def get(self, key: Any, default: Any = None) -> Any:
        """The value stored at ``key``, or ``default``. ``client.get("k", 0)``"""
        k = encode_key(key)
        return self._single(k, (b"GET", k), self._cb_value, default, READ)

    def set(self, key: Any, value: Any, ttl: Optional[float] = None, nx: bool = False,
            xx: bool = False, replicas: int = 0, replicas_timeout: float = 1.0) -> Any:
        """Store ``value``; ``ttl`` in seconds. With nx/xx: True if it was stored.

        With ``replicas=N`` the SET is followed by ``WAIT N`` (up to
        ``replicas_timeout`` seconds, capped below the client's timeout) and
        the result is the number of replicas that confirmed (an int; False
        when nx/xx stored nothing).

        >>> client.set("user:1", {"name": "ada"}, ttl=60)
        True
        """
        k = encode_key(key)
        args: List[Any] = [b"SET", k, self._dumps(value)]
        ms = ttl_ms(ttl)
        if ms is not None:
            args += (b"PX", ms)
        if nx:
            args.append(b"NX")
        if xx:
            args.append(b"XX")
        flags = WRITE if nx or xx else IDEMPOTENT_WRITE
        if replicas:
            return self._set_wait(k, args, flags, int(replicas), replicas_timeout)
        return self._single(k, args, self._cb_ok, None, flags)

    def _set_wait(self, k: bytes, args: List[Any], flags: int, replicas: int,
                  timeout: float) -> Any:
        return self._then_wait(k, args, flags, replicas, timeout, _set_waited, _only)

    def _then_wait(self, k: bytes, args: Any, flags: int, replicas: int, timeout: float,
                   extract: Callable[[List[Any], int], List[Any]],
                   finish: Callable[[List[Any]], Any]) -> Any:
        """``args`` then ``WAIT replicas`` on the same connection (one plan group)."""
        limit = getattr(self, "_timeout", None)
        if limit:  # a WAIT outlasting the socket timeout would look like a dead server
            timeout = min(timeout, limit * 0.8)
        wait = (b"WAIT", max(0, replicas), max(1, int(timeout * 1000)))
        plan = self._plan([k], lambda idx: [tuple(args), wait], extract, flags)
        return self._run(plan, finish)

    def _replica_counts(self, key: Any) -> Tuple[int, int]:
        """How many replicas ``key``'s shard has, and how many of them are up
        (0, 0 for plain pools)."""
        if self._shards is None:
            return 0, 0
        monitor = self._monitor
        replicas = self._shards.shard_for(encode_key(key)).replicas
        return len(replicas), sum(1 for r in replicas
                                  if monitor is None or _known_up(monitor, r))

    def add(self, key: Any, value: Any, ttl: Optional[float] = None) -> Any:
        """Store only if ``key`` does not exist; True if stored."""
        return self.set(key, value, ttl, nx=True)

    def replace(self, key: Any, value: Any, ttl: Optional[float] = None) -> Any:
        """Store only if ``key`` exists; True if stored."""
        return self.set(key, value, ttl, xx=True)

    def delete(self, key: Any) -> Any:
        """Remove ``key``; True if it existed."""
        k = encode_key(key)
        return self._single(k, (b"DEL", k), self._cb_bool, None, IDEMPOTENT_WRITE)

    def incr(self, key: Any, delta: int = 1) -> Any:
        """Add ``delta`` to the integer at ``key`` (created at 0); the new value."""
        k = encode_key(key)
        return self._single(k, (b"INCRBY", k, int(delta)), self._cb_int, None, WRITE)

    def decr(self, key: Any, delta: int = 1) -> Any:
        """Subtract ``delta``; the new value (may go negative, unlike memcached)."""
        k = encode_key(key)
        return self._single(k, (b"DECRBY", k, int(delta)), self._cb_int, None, WRITE)

    def touch(self, key: Any, ttl: Optional[float] = None) -> Any:
        """Reset ``key``'s TTL to ``ttl`` (or just mark it used); True if it exists."""
        k = encode_key(key)
        ms = ttl_ms(ttl)
        args = (b"TOUCH", k) if ms is None else (b"PEXPIRE", k, ms)
        return self._single(k, args, self._cb_bool, None, IDEMPOTENT_WRITE)

    # -- redis-like ----------------------------------------------------------
    def exists(self, key: Any) -> Any:
        """True if ``key`` exists."""
        k = encode_key(key)
        return self._single(k, (b"EXISTS", k), self._cb_bool, None, READ)

    def expire(self, key: Any, ttl: float) -> Any:
        """Set ``key``'s TTL (seconds); True if the key exists."""
        k = encode_key(key)
        ms = ttl_ms(ttl)
        if ms is None:
            raise ValueError("expire() needs a positive ttl; use persist() to remove it")
        return self._single(k, (b"PEXPIRE", k, ms), self._cb_bool, None, IDEMPOTENT_WRITE)

    def ttl(self, key: Any) -> Any:
        """Seconds left (float), or None if ``key`` has no TTL or does not exist."""
        k = encode_key(key)
        return self._single(k, (b"PTTL", k), self._cb_ttl, None, READ)

    def persist(self, key: Any) -> Any:
        """Remove ``key``'s TTL; True if it had one."""
        k = encode_key(key)
        return self._single(k, (b"PERSIST", k), self._cb_bool, None, IDEMPOTENT_WRITE)

    # -- several keys: one request per server, all servers at once -------------
    def get_many(self, keys: Iterable[Any]) -> Any:
        """``{key: value}`` for the keys that exist. ``client.get_many(["a", "b"])``"""
        originals = {encode_key(k): k for k in keys}
        if not originals:
            return self._done({})
        if self._direct is not None:  # one server: the lean single-command path
            return self._single(None, (b"MGET", *originals), self._cb_many, originals, READ)
        encoded = list(originals)

        def build(idx: List[int]) -> List[tuple]:
            return [(b"MGET", *[encoded[i] for i in idx])]

        return self._run(self._plan(encoded, build, _spread, READ),
                         lambda results: self._cb_many(results, originals))

    def set_many(self, mapping: Mapping[Any, Any], ttl: Optional[float] = None) -> Any:
        """Store every item (MSET, or SET PX with a ttl); returns True."""
        items = [(encode_key(k), self._dumps(v)) for k, v in mapping.items()]
        if not items:
            return self._done(True)
        ms = ttl_ms(ttl)
        if ms is None and self._direct is not None:
            mset: List[Any] = [b"MSET"]
            for item in items:
                mset += item
            return self._single(None, mset, self._cb_ok, None, IDEMPOTENT_WRITE)
        keys = [k for k, _ in items]

        def build(idx: List[int]) -> List[tuple]:
            if ms is None:
                mset: List[Any] = [b"MSET"]
                for i in idx:
                    mset += items[i]
                return [tuple(mset)]
            return [(b"SET", items[i][0], items[i][1], b"PX", ms) for i in idx]
        return self._run(self._plan(keys, build, _ok_each, IDEMPOTENT_WRITE), _all_true)

    def delete_many(self, keys: Iterable[Any]) -> Any:
        """Remove the keys; how many existed."""
        encoded = list(dict.fromkeys(encode_key(k) for k in keys))
        if not encoded:
            return self._done(0)
        if self._direct is not None:
            return self._single(None, (b"DEL", *encoded), self._cb_count, None,
                                IDEMPOTENT_WRITE)

        def build(idx: List[int]) -> List[tuple]:
            return [(b"DEL", *[encoded[i] for i in idx])]
        return self._run(self._plan(encoded, build, _count_first, IDEMPOTENT_WRITE),
                         _sum)

    # -- compound ------------------------------------------------------------------
    def get_or_set(self, key: Any, fn: Callable[[], Any], ttl: Optional[float] = None) -> Any:
        """The cached value, or ``fn()`` (awaited if it returns an awaitable) stored
        with ``ttl``. No stampede protection: see :meth:`cached` for that."""
        return self._drive(self._get_or_set(key, fn, ttl))

    def _get_or_set(self, key: Any, fn: Callable[[], Any], ttl: Optional[float]) -> Any:
        value = yield self.get, (key, MISSING)
        if value is MISSING:
            value = yield fn, ()
            yield self.set, (key, value, ttl)
        return value

    def gets(self, key: Any, default: Any = None) -> Any:
        """``(value, token)`` for :meth:`cas`; ``(default, None)`` if missing."""
        k = encode_key(key)
        return self._single(k, (b"GET", k), self._cb_gets, (self._loads, default), READ)

    def cas(self, key: Any, value: Any, token: Optional[str], ttl: Optional[float] = None) -> Any:
        """Store ``value`` only if ``key`` is unchanged since :meth:`gets` gave
        ``token``; True if stored. ``ttl=None`` keeps the current TTL.

        Built on WATCH/MULTI/EXEC. The token is a digest of the value's bytes,
        so a value changed and changed back counts as unchanged (ABA).

        >>> value, token = client.gets("counter")
        >>> client.cas("counter", value + 1, token)
        True
        """
        k = encode_key(key)
        ms = ttl_ms(ttl)
        args: List[Any] = [b"SET", k, self._dumps(value)]
        args += (b"PX", ms) if ms is not None else (b"KEEPTTL",)
        return self._transaction(k, self._check_and_write(k, token, tuple(args)))

    def cas_delete(self, key: Any, token: Optional[str]) -> Any:
        """Delete ``key`` only if unchanged since :meth:`gets` gave ``token``."""
        k = encode_key(key)
        return self._transaction(k, self._check_and_write(k, token, (b"DEL", k)))

    @staticmethod
    def _check_and_write(key: bytes, token: Optional[str], write: tuple) -> Any:
        """Transaction plan: yields command lists, receives their replies."""
        _, current = yield [(b"WATCH", key), (b"GET", key)]
        if token is None or current is None or token_of(current) != token:
            yield [(b"UNWATCH",)]
            return False
        replies = yield [(b"MULTI",), write, (b"EXEC",)]
        return replies[-1] is not None  # nil EXEC: someone wrote in between

    # -- whole cluster -----------------------------------------------------------
    def flush(self) -> Any:
        """Delete every key of the selected db on every server (FLUSHDB)."""
        return self._run(self._plan_broadcast((b"FLUSHDB",)), _all_ok)

    def ping(self) -> Any:
        """True if every server answers PING."""
        return self._run(self._plan_broadcast((b"PING",)), _all_ok)

    def stats(self) -> Any:
        """``{"host:port": {INFO fields}}`` for every server (None if unreachable
        and ``ignore_errors``)."""
        return self._run(self._plan_broadcast((b"INFO",)), self._stats)

    def _stats(self, results: Dict[Any, Any]) -> Dict[str, Any]:
        return {s.address: (None if r is None else parse_info(r)) for s, r in results.items()}

    def execute(self, *args: Any, owner_only: bool = False) -> Any:
        """Send any command and return the raw reply (bytes, int, list...).

        Routed by its second word (the first key of most commands); commands
        without one go to the first server. Never retried. With
        ``owner_only=True`` it never runs on a failover stand-in (ServerDown
        instead). ``client.execute("HSET", "h", "f", 1)``
        """
        key = encode_key(args[1]) if len(args) > 1 else None
        return self._single(key, args, None, None, OWNER_ONLY if owner_only else 0)

    def server_for(self, key: Any) -> str:
        """``"host:port"`` of the (current primary) server that owns ``key``
        (ignoring failover)."""
        if self._shards is not None:
            return self._shards.shard_for(encode_key(key)).primary.address
        return self._ring.get_server(encode_key(key)).address

    def shard_for(self, key: Any) -> Any:
        """The :class:`~distcache.client.shards.Shard` that owns ``key``: its
        ``name``, current ``primary`` and ``replicas`` (ServerSpecs)."""
        if self._shards is not None:
            return self._shards.shard_for(encode_key(key))
        from .shards import Shard
        return Shard(self._ring.get_server(encode_key(key)))

    def health(self) -> Dict[str, Dict[str, Any]]:
        """Per server: state ("up"/"down"), latency, failures, last error."""
        if self._monitor is None:
            return {s.address: {"state": "up", "latency": None, "consecutive_failures": 0,
                                "last_error": None, "last_seen_up": None}
                    for s in self._servers}
        return self._monitor.snapshot()

    # -- plans: routing, failover and retries -------------------------------------
    def _pool_for(self, key: Optional[bytes], flags: int) -> Any:
        """The pool for ``key``'s server; None when failover (slow path) applies."""
        try:
            server, failover = self._route(key, flags)
        except ConnectionError:
            if self._ignore_errors:
                return None
            raise
        return None if failover else self._pools[server]

    def _note_failure(self, server: Any, exc: BaseException) -> None:
        if isinstance(exc, ConnectionError):
            log.debug("request to %s failed: %s", server.address, exc)
            self._pools[server].close_idle()  # siblings of a dead connection are suspect
            if self._monitor is not None:
                self._monitor.record_failure(server, exc)

    def _retry_single(self, key: Optional[bytes], args: Any, cb: Any, arg: Any, flags: int,
                      error: Optional[BaseException]) -> Any:
        """The slow path of one command: failover, retries, ignore_errors."""
        if error is not None and not isinstance(error, ConnectionError):
            raise error
        return self._run(self._single_plan(key, args, flags, error),
                         lambda reply: self._finish_one(reply, cb, arg))

    def _single_plan(self, key: Optional[bytes], args: Any, flags: int,
                     error: Optional[BaseException]) -> Any:
        attempt = 0
        if error is not None:
            if not flags & IDEMPOTENT or self._retries < 1 or not self._retryable(error):
                if self._ignore_errors:
                    return None
                raise error
            attempt = 1
            yield self._backoff(1)
        try:
            results = yield from self._plan([key], lambda idx: [args], _first, flags,
                                            attempt)
        except ConnectionError:
            if self._ignore_errors:
                return None
            raise
        return results[0]

    def _retryable(self, exc: BaseException) -> bool:
        # A timeout already cost a full ``timeout``: repeating it would make the
        # call wait longer than that on a dead server, so only if asked.
        if isinstance(exc, AuthenticationError):
            return False  # a wrong password stays wrong
        return not isinstance(exc, TimeoutError) or self._retry_on_timeout

    @staticmethod
    def _finish_one(reply: Any, cb: Any, arg: Any) -> Any:
        if reply.__class__ is ReplyError:
            raise_reply(reply)
        return reply if cb is None else cb(reply, arg)

    def _route(self, key: Optional[bytes], flags: int = 0) -> Tuple[Any, bool]:
        """(server, in_failover) for ``key``; raises ServerDown per the policy."""
        if self._shards is not None:
            return self._shards.route(key, flags & WRITE == 0 and flags & IDEMPOTENT != 0,
                                      self._monitor, self._failover, bool(flags & OWNER_ONLY),
                                      not flags & ROUTED_AFTER_WAIT)
        if self._monitor is None:
            return (self._ring.get_server(key) if key is not None and len(self._servers) > 1
                    else self._servers[0]), False
        ring = self._ring
        if key is None:
            owner = self._servers[0]
            candidates: Iterable[Any] = self._servers
        else:
            owner = ring.get_server(key)
            candidates = ()
        monitor = self._monitor
        if monitor.is_up(owner):
            return owner, False
        if self._failover == "error" or flags & OWNER_ONLY:
            raise _server_down(owner)
        for server in candidates or ring.iter_servers(key):
            if monitor.is_up(server):
                return server, server is not owner
        raise _server_down(owner, "and no other server is up")

    def _plan(self, keys: List[Optional[bytes]], build: Callable[[List[int]], List[tuple]],
              extract: Callable[[List[Any], int], List[Any]], flags: int,
              attempt: int = 0, writes: Optional[List[bool]] = None) -> Any:
        """Send ``build(indices)`` to each key group's server at once.

        Yields ``{server: [command, ...]}`` and receives ``{server: [reply, ...]
        | exception}``; retries failed idempotent groups with backoff; returns
        one result per key (``None`` where errors were ignored).
        """
        results: List[Any] = [None] * len(keys)
        pending = list(range(len(keys)))
        while pending:
            if self._shards is not None and flags & WRITE:
                # A Sentinel shard's primary died: wait for the promotion.
                delay = self._shards.promotion_delay([keys[i] for i in pending], self._monitor)
                if delay:
                    yield delay
                    continue
            groups: Dict[Any, List[int]] = {}
            stand_in: List[int] = []  # keys routed away from their down owner
            if self._monitor is None and len(self._all_servers) == 1:  # nothing to route
                groups[self._servers[0]] = pending
            else:
                for i in pending:
                    try:
                        server, failover = self._route(keys[i], flags | ROUTED_AFTER_WAIT)
                    except ConnectionError:
                        if self._ignore_errors:
                            continue
                        raise
                    if failover:
                        stand_in.append(i)
                    groups.setdefault(server, []).append(i)
            pending = []
            requests = {}
            for server, idx in groups.items():
                cmds = build(idx)
                if stand_in and flags & WRITE:
                    # Cap the TTL of what lands on a stand-in server, so it
                    # expires soon after the owner is back.
                    capped = set(stand_in)
                    cmds = cmds + [(b"EXPIRE", keys[i], self._failover_ttl, b"LT")
                                   for i in idx if i in capped and keys[i] is not None
                                   and (writes is None or writes[i])]
                requests[server] = cmds
            if not requests:
                break
            replies = yield requests
            failed: Optional[BaseException] = None
            for server, reply in replies.items():
                idx = groups[server]
                if isinstance(reply, BaseException):
                    failed = reply
                    pending += idx
                    continue
                for i, value in zip(idx, extract(reply, len(idx))):
                    results[i] = value
            if failed is None:
                break
            if not (flags & IDEMPOTENT) or attempt >= self._retries or \
                    not self._retryable(failed):
                if self._ignore_errors:
                    log.debug("ignoring %r", failed)
                    break
                raise failed
            attempt += 1
            log.debug("retry %d/%d after %s", attempt, self._retries, failed)
            yield self._backoff(attempt)
        return results

    def _plan_broadcast(self, args: tuple) -> Any:
        """One command to every server; ``{server: reply}``."""
        replies = yield {server: [args] for server in self._servers}
        results = {}
        for server, reply in replies.items():
            if isinstance(reply, BaseException):
                if not self._ignore_errors:
                    raise reply
                reply = None
            else:
                reply = reply[0]
                if isinstance(reply, ReplyError):
                    raise_reply(reply)
            results[server] = reply
        return results


def _server_down(server: Any, extra: str = "") -> ServerDown:
    return ServerDown(f"server {server.address} is down {extra}".strip())


# Per-server reply extractors for _plan: (replies, n) -> n results.
def _first(replies: List[Any], n: int) -> List[Any]:
    return [replies[0]]


def _spread(replies: List[Any], n: int) -> List[Any]:
    values = replies[0]
    if isinstance(values, ReplyError):
        raise_reply(values)
    return values


def _ok_each(replies: List[Any], n: int) -> List[Any]:
    for reply in replies:
        if isinstance(reply, ReplyError):
            raise_reply(reply)
    return [True] * n


def _count_first(replies: List[Any], n: int) -> List[Any]:
    if isinstance(replies[0], ReplyError):
        raise_reply(replies[0])
    return [replies[0]] + [0] * (n - 1)


def _set_waited(replies: List[Any], n: int) -> List[Any]:
    stored, acked = replies[0], replies[1]
    for reply in (stored, acked):
        if isinstance(reply, ReplyError):
            raise_reply(reply)
    return [False if stored is None else acked]


def _known_up(monitor: Any, server: Any) -> bool:
    try:
        return monitor.is_up(server)
    except KeyError:  # announced by Sentinel after the monitor started
        return False


def _only(results: List[Any]) -> Any:
    return results[0]


def _all_true(results: List[Any]) -> bool:
    return all(r is True for r in results)


def _sum(results: List[Any]) -> int:
    return sum(r or 0 for r in results)


def _all_ok(results: Dict[Any, Any]) -> bool:
    return all(r is not None for r in results.values())
