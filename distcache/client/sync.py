"""The blocking client: thread-safe, one connection pool per server.

>>> from distcache import CacheClient
>>> with CacheClient("127.0.0.1:2050") as client:
...     client.set("greeting", "hello", ttl=60)
...     client.get("greeting")
True
'hello'
"""
from __future__ import annotations

import inspect
import time
from typing import Any, Callable, Dict, List, Optional

from ..protocol import ReplyError, encode_command
from .base import BaseClient, run_sync
from .connection import ConnectionPool, auth_error, ping_server
from .errors import CacheError, ConnectionError, ResponseError
from .health import HealthMonitor

__all__ = ["CacheClient"]


class CacheClient(BaseClient):
    """Blocking cache client; safe to share between threads.

    ``CacheClient()`` uses ``DISTCACHE_SERVERS``, the ``server_pool`` of the
    ``DISTCACHE_CONFIG`` file, or 127.0.0.1:2050. See ``docs/client.md``.
    """

    def __init__(self, servers: Any = None, **options: Any) -> None:
        previous = options.pop("previous", None)  # the old pool while keys move
        super().__init__(servers, **options)
        if self._local is None:
            self._pools: Dict[Any, ConnectionPool] = {
                s: self._make_pool(s) for s in self._all_servers}
        else:
            self._enable_local_cache()
        # One server: skip routing entirely on the hot path.
        self._direct: Optional[ConnectionPool] = (
            self._pools[self._servers[0]] if len(self._all_servers) == 1 else None)
        if self._wants_monitor():
            self._monitor = HealthMonitor(self._all_servers, ping=self._ping_one,
                                          **self._monitor_kwargs()).start()
        self._start_sentinel()
        if previous is not None:  # docs/distribution.md, "Rebalancing"
            from .transition import enable
            enable(self, previous, options)

    def _make_pool(self, server: Any) -> ConnectionPool:
        """A pool for ``server``: tracked, with its invalidation listener, when the local
        cache is on (a primary Sentinel announces later gets one too)."""
        if self._local is None:
            return ConnectionPool(server, self._max_connections, **self._conn_kwargs)
        from .invalidation import ThreadListener, TrackingPool
        listener = self._listeners.get(server)
        if listener is None:
            listener = self._listeners[server] = ThreadListener(
                server, self._local, self._conn_kwargs, self._listen_interval())
        return TrackingPool(server, self._max_connections, listener, **self._conn_kwargs)

    def _ping_one(self, server: Any, timeout: float) -> None:
        ping_server(server, timeout, **self._conn_kwargs)

    # -- local cache (docs/client-caching.md) ---------------------------------------
    def _enable_local_cache(self) -> None:
        from .localreads import enable
        self._pools = {s: self._make_pool(s) for s in self._all_servers}
        enable(self, self._local)

    def _lc_listen(self, server: Any) -> None:
        self._listeners[server].ensure_started()

    @staticmethod
    def _lc_hit(key: bytes, value: Any, cb: Callable[[Any, Any], Any], arg: Any) -> Any:
        return value

    async def _lc_check_loop(self) -> None:
        pass

    # -- execution primitives used by CommandsMixin ---------------------------------
    def _single(self, key: Optional[bytes], args: Any, cb: Optional[Callable[[Any, Any], Any]],
                arg: Any, flags: int) -> Any:
        pool = self._direct
        if pool is None:
            pool = self._pool_for(key, flags)
            if pool is None:
                return self._retry_single(key, args, cb, arg, flags, None)
        try:
            conn = pool.get()
            reply = conn.request(encode_command(args))
        except CacheError as exc:
            self._note_failure(pool.server, exc)
            return self._retry_single(key, args, cb, arg, flags, exc)
        pool.put(conn)
        if reply.__class__ is ReplyError:
            raise auth_error(pool.server.address, reply) or ResponseError(str(reply))
        return reply if cb is None else cb(reply, arg)

    _sleep = staticmethod(time.sleep)
    _finish = staticmethod(run_sync)

    @staticmethod
    def _done(value: Any) -> Any:
        return value  # what run_sync of a coroutine returning it gives, without one

    @staticmethod
    async def _io_call(fn: Callable[..., Any], args: Any) -> Any:
        value = fn(*args)
        if inspect.isawaitable(value):
            value.close()
            raise TypeError("the sync client cannot await; pass a plain function")
        return value

    def _round_trip(self, requests: Dict[Any, List[tuple]]) -> Dict[Any, Any]:
        """Write every server's batch, then read them: the servers work in parallel."""
        out: Dict[Any, Any] = {}
        sent: List[Any] = []
        for server, cmds in requests.items():
            pool = self._pools[server]
            try:
                conn = pool.get()
                conn.send(cmds)
                sent.append((server, pool, conn, len(cmds)))
            except CacheError as exc:
                out[server] = self._failed(server, exc)
        for server, pool, conn, count in sent:
            try:
                replies = conn.read_replies(count)
            except CacheError as exc:
                out[server] = self._failed(server, exc)
                continue
            pool.put(conn)
            for reply in replies:
                if reply.__class__ is ReplyError:
                    err = auth_error(server.address, reply)
                    if err is not None:
                        raise err
            out[server] = replies
        return out

    def _failed(self, server: Any, exc: CacheError) -> CacheError:
        if not isinstance(exc, ConnectionError):
            raise exc
        self._note_failure(server, exc)
        return exc

    # -- lifecycle -----------------------------------------------------------------
    def close(self) -> None:
        """Close every connection and stop the health monitor."""
        self._closed = True
        self._stop_sentinel()
        if self._monitor is not None:
            self._monitor.stop()
        for listener in self._listeners.values():
            listener.close()
        for pool in self._pools.values():
            pool.close()

    def __enter__(self) -> "CacheClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

