"""The client while keys move: ``CacheClient(NEW_POOL, previous=OLD_POOL)``.

``enable(client, previous)`` binds these methods over the class's on that one
instance (as ``localreads.py`` does), so a client without ``previous`` runs
exactly the code it ran before. Only keys whose owner differs between the
pools (their primaries' addresses) take the slower paths:

* reads (``get``, ``gets``, ``exists``, ``ttl``, ``get_many``) ask the new
  owner, on a miss the old one, and on a second miss the new one again: the
  rebalancer's MIGRATE puts a key on the new owner before deleting it from
  the old, so a key moved between the first two reads is found by the third;
* ``set`` and ``set_many`` write the new owner, then delete the old copy;
  ``delete`` and ``delete_many`` delete the old copy first (a MIGRATE between
  the two deletes cannot bring the key back), then the new;
* everything else that changes a key (``incr``, ``add``, ``touch``, ``cas``,
  ``execute``...) first pulls the key over with ``MIGRATE`` (no REPLACE; a
  BUSYKEY refusal means the new owner's copy is newer, and the old one is
  deleted), then runs on the new owner, so it sees the current value.

Pipelines run their commands one at a time through these paths. Written once
for both flavours, like ``commands.py``.
"""
from __future__ import annotations

import inspect
import types
from typing import Any, Dict, Iterable, List, Mapping, Optional

from .commands import IDEMPOTENT, IDEMPOTENT_WRITE, OWNER_ONLY, WRITE
from .errors import ConnectionError, ResponseError
from .pipeline import Pipeline
from .serde import encode_key

__all__ = ["enable", "primary_address"]

#: Read commands whose reply says "no such key", and that reply.
_MISS: Dict[bytes, Any] = {b"GET": None, b"EXISTS": 0, b"PTTL": -2}
#: SET options that make the write depend on the current value.
_CONDITIONAL = {b"NX", b"XX", b"GET", b"KEEPTTL"}
_OLD_WRITE = IDEMPOTENT_WRITE | OWNER_ONLY  # never on a stand-in of the old pool


def primary_address(client: Any, key: bytes) -> str:
    """``"host:port"`` of the primary that owns ``key`` in ``client``'s pool."""
    shards = client._shards
    if shards is not None:
        return shards.shard_for(key).primary.address
    return client._ring.get_server(key).address


class Transition:
    """Methods bound on a client instance by ``enable``; ``self`` is the client."""

    _previous: Any
    _pv_cls: Any

    def _pv_moved(self, key: bytes) -> bool:
        return primary_address(self, key) != primary_address(self._previous, key)

    def _single(self, key: Optional[bytes], args: Any, cb: Any, arg: Any, flags: int) -> Any:
        if key is None or not self._pv_moved(key):
            return self._pv_plain(key, args, cb, arg, flags)
        return self._finish(self._pv_single(key, args, cb, arg, flags))

    async def _pv_single(self, key: bytes, args: Any, cb: Any, arg: Any, flags: int) -> Any:
        io, plain, old = self._io_call, self._pv_plain, self._previous._single
        name = args[0].upper() if isinstance(args[0], bytes) else str(args[0]).upper().encode()
        if not flags & WRITE and flags & IDEMPOTENT and name in _MISS:
            miss = _MISS[name]
            raw = await io(plain, (key, args, None, None, flags))
            if raw == miss:
                raw = await io(old, (key, args, None, None, flags))
                if raw == miss:  # moved between the two reads: it is on the new owner now
                    raw = await io(plain, (key, args, None, None, flags))
            return raw if cb is None else cb(raw, arg)
        if name == b"SET" and not _CONDITIONAL.intersection(
                a.upper() for a in args[3:] if isinstance(a, bytes)):
            result = await io(plain, (key, args, cb, arg, flags))
            await io(old, (key, (b"DEL", key), None, None, _OLD_WRITE))
            return result
        if name == b"DEL" and len(args) == 2:
            gone = await io(old, (key, (b"DEL", key), None, None, _OLD_WRITE))
            here = await io(plain, (key, args, None, None, flags))
            raw = 1 if gone or here else 0
            return raw if cb is None else cb(raw, arg)
        await self._pv_pull(key)
        return await io(plain, (key, args, cb, arg, flags))

    async def _pv_pull(self, key: bytes) -> None:
        """Move ``key`` from its old owner to its new one (MIGRATE, atomic there)."""
        target = self._pv_target(key)
        kwargs = self._conn_kwargs
        auth: List[Any] = []
        if kwargs.get("password") is not None:
            auth = ([b"AUTH2", kwargs["username"], kwargs["password"]] if kwargs.get("username")
                    else [b"AUTH", kwargs["password"]])
        timeout_ms = max(1, int((self._timeout or 5.0) * 800))  # below our socket timeout
        migrate = (b"MIGRATE", target.host, target.port, key, kwargs.get("db", 0), timeout_ms,
                   *auth)
        old = self._previous._single
        try:
            await self._io_call(old, (key, migrate, None, None, _OLD_WRITE))
        except ResponseError as exc:
            if "BUSYKEY" not in str(exc):
                raise
            await self._io_call(old, (key, (b"DEL", key), None, None, _OLD_WRITE))
        except ConnectionError:
            pass  # the old owner is down: nothing to pull from it now

    def _pv_target(self, key: bytes) -> Any:
        shards = self._shards
        return shards.shard_for(key).primary if shards is not None else self._ring.get_server(key)

    # -- several keys ---------------------------------------------------------------
    def get_many(self, keys: Iterable[Any]) -> Any:
        return self._finish(self._pv_get_many(list(keys)))

    async def _pv_get_many(self, keys: List[Any]) -> Dict[Any, Any]:
        io, get_many = self._io_call, self._pv_cls.get_many
        found = await io(get_many, (self, keys))
        missing = [k for k in keys if k not in found and self._pv_moved(encode_key(k))]
        if missing:
            older = await io(self._previous.get_many, (missing,))
            found.update(older)
            again = [k for k in missing if k not in older]
            if again:
                found.update(await io(get_many, (self, again)))
        return found

    def set_many(self, mapping: Mapping[Any, Any], ttl: Optional[float] = None) -> Any:
        return self._finish(self._pv_set_many(dict(mapping), ttl))

    async def _pv_set_many(self, mapping: Dict[Any, Any], ttl: Optional[float]) -> Any:
        result = await self._io_call(self._pv_cls.set_many, (self, mapping, ttl))
        moved = [k for k in mapping if self._pv_moved(encode_key(k))]
        if moved:
            await self._io_call(self._previous.delete_many, (moved,))
        return result

    def delete_many(self, keys: Iterable[Any]) -> Any:
        return self._finish(self._pv_delete_many(list(keys)))

    async def _pv_delete_many(self, keys: List[Any]) -> Any:
        moved = [k for k in keys if self._pv_moved(encode_key(k))]
        gone = await self._io_call(self._previous.delete_many, (moved,)) if moved else 0
        return gone + await self._io_call(self._pv_cls.delete_many, (self, keys))

    # -- compound: the key is pulled over first --------------------------------------
    def cas(self, key: Any, value: Any, token: Optional[str], ttl: Optional[float] = None) -> Any:
        return self._finish(self._pv_pulled(key, self._pv_cls.cas, (self, key, value, token,
                                                                   ttl)))

    def cas_delete(self, key: Any, token: Optional[str]) -> Any:
        return self._finish(self._pv_pulled(key, self._pv_cls.cas_delete, (self, key, token)))

    def _then_wait(self, k: bytes, *rest: Any) -> Any:
        return self._finish(self._pv_pulled(k, self._pv_cls._then_wait, (self, k, *rest)))

    async def _pv_pulled(self, key: Any, fn: Any, args: Any) -> Any:
        k = encode_key(key)
        if self._pv_moved(k):
            await self._pv_pull(k)
        return await self._io_call(fn, args)

    def flush(self) -> Any:
        return self._finish(self._pv_both("flush"))

    def close(self) -> Any:
        return self._finish(self._pv_both("close"))

    async def _pv_both(self, name: str) -> Any:
        result = await self._io_call(getattr(self._pv_cls, name), (self,))
        await self._io_call(getattr(self._previous, name), ())
        return result

    def pipeline(self) -> Any:
        return SequentialPipeline(self)


class SequentialPipeline(Pipeline):
    """A pipeline whose commands run one by one through the transition's paths."""

    def execute(self, *args: Any, raise_on_error: bool = True) -> Any:  # type: ignore[override]
        if args:
            return Pipeline.execute(self, *args)
        entries, self._entries = self._entries, []
        return self._client._finish(_run_each(self._client, entries, raise_on_error))


async def _run_each(client: Any, entries: List[Any], raise_on_error: bool) -> List[Any]:
    out: List[Any] = []
    for entry in entries:
        try:
            out.append(await client._io_call(client._single, entry))
        except ResponseError as exc:
            if raise_on_error:
                raise
            out.append(exc)
    return out


_BOUND = ("_single", "_pv_single", "_pv_pull", "_pv_target", "_pv_moved", "get_many",
          "_pv_get_many", "set_many", "_pv_set_many", "delete_many", "_pv_delete_many", "cas",
          "cas_delete", "_then_wait", "_pv_pulled", "flush", "close", "_pv_both", "pipeline")


def enable(client: Any, pool: Any, options: Dict[str, Any]) -> None:
    """Route ``client``'s moved keys through a client of the old ``pool`` (made
    with the same ``options``)."""
    if client._local is not None:
        closing = client.close()
        if inspect.iscoroutine(closing):  # asyncio: nothing runs before a loop but Sentinel
            closing.close()
            client._stop_sentinel()
        raise ValueError("local_cache cannot be combined with previous= (a transition "
                         "is short: turn the local cache on again after it)")
    cls = type(client)
    client._previous = cls(pool, **options)
    client._pv_cls = cls
    client._pv_plain = types.MethodType(cls._single, client)
    for name in _BOUND:
        setattr(client, name, types.MethodType(getattr(Transition, name), client))
