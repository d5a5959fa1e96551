"""The client methods that go through the local cache (``local_cache=...``).

``enable(client, cache)`` binds these over the class's methods on that one
instance, so a client without a local cache runs exactly the code it ran
before. Reads (``get``, ``gets``, ``get_many``, ``exists``) are served from
the cache or fetched with ``GET`` + ``PTTL`` (an entry never outlives the
key's TTL) on a tracked connection; writes through this client drop their
keys before they are sent and again after the reply, so the client reads its
own writes. Written once for both flavours, like ``commands.py``.
"""
from __future__ import annotations

import time
import types
from typing import Any, Dict, Iterable, List, Optional

from ..protocol import ReplyError
from .commands import IDEMPOTENT, READ, WRITE
from .connection import auth_error
from .errors import ConnectionError, ResponseError
from .localcache import ABSENT, IMMUTABLE, LocalCache
from .serde import encode_key

__all__ = ["enable", "written_keys"]


def written_keys(key: Optional[bytes], args: Any) -> List[bytes]:
    """The keys a write through ``_single`` may change."""
    if key is not None:
        return [key]
    name = args[0]
    if name == b"MSET":
        return list(args[1::2])
    if name == b"DEL":
        return list(args[1:])
    return []


def _exists(raw: Any, _: Any) -> bool:
    return raw is not None


class LocalReads:
    """Methods bound on a client instance by ``enable``; ``self`` is the client."""

    _local: LocalCache

    def get(self, key: Any, default: Any = None) -> Any:
        k = encode_key(key)
        entry = self._local.find(k)
        if entry is not None:
            value = entry[4]
            if value is ABSENT:
                value = default if entry[0] is None else self._lc_decode(entry)
            return self._lc_hit(k, value, self._cb_value, default)
        return self._finish(self._lc_fetch(k, self._cb_value, default))

    def _lc_decode(self, entry: List[Any]) -> Any:
        value = self._loads(entry[0])
        if value.__class__ in IMMUTABLE:
            entry[4] = value  # hand out the same object next time: it cannot change
        return value

    def gets(self, key: Any, default: Any = None) -> Any:
        k = encode_key(key)
        arg = (self._loads, default)
        raw = self._local.lookup(k)
        if raw is not ABSENT:
            return self._lc_hit(k, self._cb_gets(raw, arg), self._cb_gets, arg)
        return self._finish(self._lc_fetch(k, self._cb_gets, arg))

    def exists(self, key: Any) -> Any:
        k = encode_key(key)
        raw = self._local.lookup(k)
        if raw is not ABSENT:
            return self._lc_hit(k, raw is not None, _exists, None)
        return self._finish(self._lc_fetch(k, _exists, None))

    def get_many(self, keys: Iterable[Any]) -> Any:
        originals = {encode_key(k): k for k in keys}
        find = self._local.find
        entries = {k: find(k) for k in originals}
        return self._finish(self._lc_many(originals, entries))

    async def _lc_many(self, originals: Dict[bytes, Any], entries: Dict[bytes, Any]) -> Dict:
        await self._lc_check_loop()  # entries of an earlier event loop are dropped
        missing = [k for k, entry in entries.items() if entry is None]
        fetched = await self._lc_fetch_raw(missing) if missing else {}
        loads, decode = self._loads, self._lc_decode
        out = {}
        for k, entry in entries.items():
            if entry is None:
                raw = fetched[k]
                if raw is not None:
                    out[originals[k]] = loads(raw)
            elif entry[0] is not None:
                value = entry[4]
                out[originals[k]] = decode(entry) if value is ABSENT else value
        return out

    async def _lc_fetch(self, k: bytes, cb: Any, arg: Any) -> Any:
        await self._lc_check_loop()
        raws = await self._lc_fetch_raw([k], many=False)
        return cb(raws[k], arg)

    async def _lc_fetch_raw(self, keys: List[bytes], many: bool = True) -> Dict[bytes, Any]:
        """Stored bytes (None: no key) for ``keys``, from their servers, kept in
        the cache when the read was tracked and not invalidated meanwhile. With
        ``many`` it reads with MGET (nil for a key of another type), else GET."""
        local, io = self._local, self._io_call
        groups: Dict[Any, List[bytes]] = {}
        fallback: List[bytes] = []
        for k in keys:
            try:
                server, failover = self._route(k, READ)
            except ConnectionError:
                fallback.append(k)  # the plain path raises or ignores, per the policy
                continue
            if failover:
                fallback.append(k)  # a stand-in's copy is not cached
            else:
                groups.setdefault(server, []).append(k)
        out: Dict[bytes, Any] = {}
        tokens: Dict[bytes, Any] = {}
        try:
            requests = {}
            for server, ks in groups.items():
                await io(self._lc_listen, (server,))
                for k in ks:
                    tokens[k] = local.begin(k, server)
                cmds: List[tuple] = [(b"MGET", *ks)] if many else [(b"GET", ks[0])]
                requests[server] = cmds + [(b"PTTL", k) for k in ks]
            started = time.monotonic()
            results = await io(self._round_trip, (requests,)) if requests else {}
            for server, replies in results.items():
                ks = groups[server]
                if isinstance(replies, BaseException):
                    fallback += ks
                    continue
                first = replies[0]
                if first.__class__ is ReplyError:  # WRONGTYPE for GET, NOAUTH...
                    raise auth_error(server.address, first) or ResponseError(str(first))
                values = first if many else [first]
                for k, raw, pttl in zip(ks, values, replies[1:]):
                    out[k] = raw
                    token = tokens.pop(k)
                    if token is not None:
                        local.store(token, raw, pttl, started)
        finally:
            for token in tokens.values():
                local.abandon(token)
        for k in fallback:  # failover, retries, ignore_errors: the plain path, not cached
            out[k] = await io(self._lc_plain_raw, (k,))
        return out

    def _lc_plain_raw(self, k: bytes) -> Any:
        return self._lc_plain(k, (b"GET", k), None, None, READ)

    # -- writes -----------------------------------------------------------------------
    def _single(self, key: Optional[bytes], args: Any, cb: Any, arg: Any, flags: int) -> Any:
        if flags & WRITE or not flags & IDEMPOTENT:  # writes, and execute()'s raw commands
            keys = written_keys(key, args)
            self._local.invalidate(keys)
            return self._finish(self._lc_around(keys, self._lc_plain, (key, args, cb, arg, flags)))
        return self._lc_plain(key, args, cb, arg, flags)

    async def _lc_around(self, keys: Optional[List[bytes]], fn: Any, args: Any) -> Any:
        """Run a write; drop ``keys`` (None: everything) before and after it, so a
        read that raced with it cannot keep the old value."""
        local = self._local
        if keys is None:
            local.clear()
        else:
            local.invalidate(keys)
        try:
            return await self._io_call(fn, args)
        finally:
            if keys is None:
                local.clear()
            else:
                local.invalidate(keys)

    def set_many(self, mapping: Any, ttl: Optional[float] = None) -> Any:
        mapping = dict(mapping)
        keys = [encode_key(k) for k in mapping]
        return self._finish(self._lc_around(keys, self._lc_cls.set_many, (self, mapping, ttl)))

    def delete_many(self, keys: Iterable[Any]) -> Any:
        keys = list(keys)
        encoded = [encode_key(k) for k in keys]
        return self._finish(self._lc_around(encoded, self._lc_cls.delete_many, (self, keys)))

    def cas(self, key: Any, value: Any, token: Optional[str], ttl: Optional[float] = None) -> Any:
        return self._finish(self._lc_around([encode_key(key)], self._lc_cls.cas,
                                            (self, key, value, token, ttl)))

    def cas_delete(self, key: Any, token: Optional[str]) -> Any:
        return self._finish(self._lc_around([encode_key(key)], self._lc_cls.cas_delete,
                                            (self, key, token)))

    def flush(self) -> Any:
        return self._finish(self._lc_around(None, self._lc_cls.flush, (self,)))

    def _state_changed(self, server: Any, old: str, new: str) -> None:
        # Down or back up: reads of its keys went elsewhere meanwhile.
        self._local.clear_server(server)
        self._lc_cls._state_changed(self, server, old, new)


_BOUND = ("get", "gets", "exists", "get_many", "set_many", "delete_many", "cas", "cas_delete",
          "flush", "_single", "_state_changed", "_lc_many", "_lc_fetch", "_lc_fetch_raw",
          "_lc_plain_raw", "_lc_around", "_lc_decode")


def enable(client: Any, cache: LocalCache) -> None:
    """Route ``client``'s reads through ``cache`` and its writes around it."""
    cls = type(client)
    client._local = cache
    client._lc_cls = cls
    client._lc_plain = types.MethodType(cls._single, client)
    for name in _BOUND:
        setattr(client, name, types.MethodType(getattr(LocalReads, name), client))
    cache.owner = client
