"""The asyncio client: same methods as CacheClient, as coroutines.

Each server gets one shared connection that many tasks use at once: requests
written in the same loop iteration leave in one ``write`` and replies are
matched to waiting futures in order (automatic pipelining). WATCH-based
operations (``cas``) get a dedicated connection each.

>>> async def main():
...     async with AsyncCacheClient("127.0.0.1:2050") as client:
...         await client.set("k", [1, 2])
...         return await client.get("k")
"""
from __future__ import annotations

import asyncio
import inspect
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional

from ..protocol import NOT_ENOUGH, ProtocolError, ReplyError, encode_command, \
    make_reply_parser
from .base import BaseClient
from .connection import auth_error, check_handshake, check_ping, handshake_commands, \
    tls_context
from .errors import CacheError, ConnectionError, ResponseError, TimeoutError
from .health import AsyncHealthMonitor
from .ring import ServerSpec

__all__ = ["AsyncCacheClient", "AsyncConnection"]


class AsyncConnection(asyncio.Protocol):
    """One multiplexed connection; ``request()`` returns a future of the reply."""

    def __init__(self, server: ServerSpec, password: Optional[str] = None,
                 username: Optional[str] = None, db: int = 0, ssl_context: Any = None,
                 connect_timeout: Optional[float] = 5.0, timeout: Optional[float] = 5.0,
                 parser: str = "auto") -> None:
        self.server = server
        self.address = server.address
        self._handshake = handshake_commands(password, username, db)
        self._ssl = tls_context(server, ssl_context)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        parser_obj = make_reply_parser(parser)
        reader = getattr(parser_obj, "_reader", None)
        self._feed = (reader or parser_obj).feed
        self._get = reader.gets if reader is not None else parser_obj.get
        # Each waiter: [future, replies still expected, replies so far, deadline]
        self._waiters: Deque[list] = deque()
        self._out: List[bytes] = []
        self._transport: Any = None
        self._loop: Any = None
        self._timer: Any = None
        self.closed = False

    async def connect(self) -> "AsyncConnection":
        self._loop = loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(
                lambda: self, self.server.host, self.server.port, ssl=self._ssl,
                server_hostname=self.server.host if self._ssl else None),
                self.connect_timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{self.address}: connect timed out after "
                               f"{self.connect_timeout}s") from None
        except OSError as exc:
            raise ConnectionError(f"{self.address}: cannot connect: {exc}") from None
        if self._handshake:
            try:
                check_handshake(self.address, self._handshake,
                                await self.request_many(self._handshake))
            except BaseException:
                self.close()
                raise
        return self

    # -- protocol callbacks ------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._feed(data)
            waiters, get = self._waiters, self._get
            while True:
                reply = get()
                if reply is NOT_ENOUGH:
                    return
                if not waiters:
                    raise ProtocolError("reply without a request")
                waiter = waiters[0]
                if waiter[1] == 1 and waiter[2] is None:
                    waiters.popleft()
                    if not waiter[0].done():  # a cancelled caller's reply is dropped
                        waiter[0].set_result(reply)
                    continue
                waiter[2].append(reply)
                waiter[1] -= 1
                if not waiter[1]:
                    waiters.popleft()
                    if not waiter[0].done():
                        waiter[0].set_result(waiter[2])
        except ProtocolError as exc:
            self._abort(ConnectionError(f"{self.address}: protocol error: {exc}"))

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._abort(ConnectionError(f"{self.address}: connection lost: {exc}" if exc else
                                    f"{self.address}: server closed the connection"))

    def _abort(self, exc: BaseException) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter[0].done():
                waiter[0].set_exception(exc)

    # -- requests ------------------------------------------------------------------
    def request(self, data: bytes, count: int = 1) -> "asyncio.Future[Any]":
        """Queue ``count`` encoded commands; the future gets the reply (a list if count > 1)."""
        if self.closed:
            raise ConnectionError(f"{self.address}: connection closed")
        loop = self._loop
        fut = loop.create_future()
        deadline = loop.time() + self.timeout if self.timeout else None
        self._waiters.append([fut, count, None if count == 1 else [], deadline])
        out = self._out
        out.append(data)
        if len(out) == 1:  # first write this loop iteration: flush once at its end
            loop.call_soon(self._flush)
        if deadline is not None and self._timer is None:
            self._timer = loop.call_at(deadline, self._check_timeout)
        return fut

    async def request_many(self, cmds: List[Any]) -> List[Any]:
        """Send several commands in one write; the list of their replies."""
        if len(cmds) == 1:
            return [await self.request(encode_command(cmds[0]))]
        return await self.request(_encode_all(cmds), len(cmds))

    def _flush(self) -> None:
        out, self._out = self._out, []
        if not self.closed:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _check_timeout(self) -> None:
        # One timer per connection, not per request. Replies come in order, so
        # when the oldest is overdue the stream is stuck: fail everything.
        self._timer = None
        if not self._waiters:
            return
        deadline = self._waiters[0][3]
        if deadline is not None and deadline <= self._loop.time():
            self._abort(TimeoutError(f"{self.address}: no reply within {self.timeout}s"))
        else:
            self._timer = self._loop.call_at(deadline or self._loop.time() + 1,
                                              self._check_timeout)

    def close(self) -> None:
        if not self.closed:
            self._abort(ConnectionError(f"{self.address}: connection closed"))


def _encode_all(cmds: List[Any]) -> bytes:
    return b"".join([encode_command(c) for c in cmds])


def _discard(conn: AsyncConnection) -> None:
    try:
        conn.close()
    except RuntimeError:  # its event loop is closed already
        pass


class AsyncPool:
    """A shared multiplexed connection plus dedicated ones for transactions."""

    def __init__(self, server: ServerSpec, **conn_kwargs: Any) -> None:
        self.server = server
        self.conn_kwargs = conn_kwargs
        self.shared: Optional[AsyncConnection] = None
        self._connecting: Optional["asyncio.Future[AsyncConnection]"] = None
        self._idle: List[AsyncConnection] = []
        self.closed = False

    async def get(self) -> AsyncConnection:
        """The shared connection, (re)connecting once for all waiting tasks."""
        conn = self.shared
        if conn is not None and not conn.closed:
            if conn._loop is asyncio.get_running_loop():
                return conn
            self.shared = None  # made by an earlier event loop (asyncio.run twice)
            _discard(conn)
        if self.closed:
            raise ConnectionError("the client is closed")
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._new())
            try:
                self.shared = await asyncio.shield(self._connecting)
            finally:
                self._connecting = None
            return self.shared
        return await asyncio.shield(self._connecting)

    async def _new(self) -> AsyncConnection:
        return await AsyncConnection(self.server, **self.conn_kwargs).connect()

    async def get_dedicated(self) -> AsyncConnection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn._loop is asyncio.get_running_loop():
                return conn
            _discard(conn)
        return await self._new()

    def put_dedicated(self, conn: AsyncConnection) -> None:
        if self.closed or len(self._idle) >= 16:
            conn.close()
        elif not conn.closed:
            self._idle.append(conn)

    def close_idle(self) -> None:
        for conn in self._idle + ([self.shared] if self.shared else []):
            if not conn._waiters:  # in-flight requests finish (or fail) on their own
                _discard(conn)
        self._idle = []

    def close(self) -> None:
        self.closed = True
        for conn in self._idle + ([self.shared] if self.shared else []):
            _discard(conn)
        self._idle = []
        self.shared = None


class AsyncCacheClient(BaseClient):
    """asyncio cache client; one instance can serve many tasks at once."""

    def __init__(self, servers: Any = None, **options: Any) -> None:
        previous = options.pop("previous", None)  # the old pool while keys move
        super().__init__(servers, **options)
        self._lc_loop: Any = None
        if self._local is None:
            self._pools: Dict[Any, AsyncPool] = {s: self._make_pool(s)
                                                 for s in self._all_servers}
        else:
            self._enable_local_cache()
        self._direct: Optional[AsyncPool] = (
            self._pools[self._servers[0]] if len(self._all_servers) == 1 else None)
        self._monitor_loop: Any = None
        if self._wants_monitor():
            self._monitor = AsyncHealthMonitor(self._all_servers, ping=self._ping_one,
                                               **self._monitor_kwargs())
        self._start_sentinel()  # a thread: announcements only flip the shard's primary
        if previous is not None:  # docs/distribution.md, "Rebalancing"
            from .transition import enable
            enable(self, previous, options)

    def _make_pool(self, server: Any) -> AsyncPool:
        """A pool for ``server``: tracked, with its invalidation listener, when the local
        cache is on (a primary Sentinel announces later gets one too)."""
        if self._local is None:
            return AsyncPool(server, **self._conn_kwargs)
        from .invalidation import AsyncListener, TrackingAsyncPool
        listener = self._listeners.get(server)
        if listener is None:
            listener = self._listeners[server] = AsyncListener(
                server, self._local, self._conn_kwargs, self._listen_interval())
        return TrackingAsyncPool(server, listener, **self._conn_kwargs)

    async def _ping_one(self, server: ServerSpec, timeout: float) -> None:
        kwargs = dict(self._conn_kwargs, connect_timeout=timeout, timeout=timeout)
        conn = await AsyncConnection(server, **kwargs).connect()
        try:
            check_ping(server, await conn.request(encode_command((b"PING",))))
        finally:
            conn.close()

    # -- local cache (docs/client-caching.md) ---------------------------------------
    def _enable_local_cache(self) -> None:
        from .localreads import enable
        self._pools = {s: self._make_pool(s) for s in self._all_servers}
        enable(self, self._local)

    async def _lc_listen(self, server: ServerSpec) -> None:
        await self._listeners[server].ensure_started()

    def _lc_hit(self, key: bytes, value: Any, cb: Callable[[Any, Any], Any], arg: Any) -> Any:
        return self._lc_hit_async(key, value, cb, arg)

    async def _lc_hit_async(self, key: bytes, value: Any, cb: Callable[[Any, Any], Any],
                            arg: Any) -> Any:
        if self._lc_loop is not asyncio.get_running_loop():
            # the entry outlived its listener's loop: read again
            return await self._lc_fetch(key, cb, arg)  # type: ignore[attr-defined]
        return value

    async def _lc_check_loop(self) -> None:
        # Entries kept under an earlier event loop lost their listener with it.
        loop = asyncio.get_running_loop()
        if self._lc_loop is not loop:
            if self._lc_loop is not None:
                self._local.clear()  # type: ignore[union-attr]
            self._lc_loop = loop

    def _start_monitor(self) -> None:
        # The monitor needs a running loop, which __init__ may not have; a
        # client reused under a new loop (asyncio.run twice) restarts it.
        loop = asyncio.get_running_loop()
        if self._monitor_loop is loop or self._monitor is None:
            return
        if self._monitor_loop is not None:
            try:
                self._monitor.stop()
            except RuntimeError:
                pass
        self._monitor_loop = loop
        self._monitor.start()

    # -- execution primitives used by CommandsMixin ---------------------------------
    async def _single(self, key: Optional[bytes], args: Any,
                      cb: Optional[Callable[[Any, Any], Any]], arg: Any, flags: int) -> Any:
        pool = self._direct
        if pool is None:
            if self._monitor_loop is not asyncio.get_running_loop():
                self._start_monitor()
            pool = self._pool_for(key, flags)
            if pool is None:
                return await self._retry_single(key, args, cb, arg, flags, None)
        try:
            conn = pool.shared
            if conn is None or conn.closed or conn._loop is not asyncio.get_running_loop():
                conn = await pool.get()
            reply = await conn.request(encode_command(args))
        except CacheError as exc:
            self._note_failure(pool.server, exc)
            return await self._retry_single(key, args, cb, arg, flags, exc)
        if reply.__class__ is ReplyError:
            raise auth_error(pool.server.address, reply) or ResponseError(str(reply))
        return reply if cb is None else cb(reply, arg)

    _sleep = staticmethod(asyncio.sleep)

    @staticmethod
    def _finish(coro: Any) -> Any:
        return coro

    @staticmethod
    async def _io_call(fn: Callable[..., Any], args: Any) -> Any:
        value = fn(*args)
        if inspect.isawaitable(value):
            value = await value
        return value

    async def _round_trip(self, requests: Dict[Any, List[tuple]]) -> Dict[Any, Any]:
        """Every server's batch at once (gather)."""
        self._start_monitor()
        servers = list(requests)
        results = await asyncio.gather(*[self._batch(s, requests[s]) for s in servers])
        return dict(zip(servers, results))

    async def _batch(self, server: ServerSpec, cmds: List[tuple]) -> Any:
        """One server's commands in one write; the replies, or the ConnectionError."""
        pool = self._pools[server]
        try:
            conn = await pool.get()
            replies = await conn.request_many(cmds)
        except ConnectionError as exc:
            self._note_failure(server, exc)
            return exc
        for reply in replies:
            if reply.__class__ is ReplyError:
                err = auth_error(server.address, reply)
                if err is not None:
                    raise err
        return replies

    # -- lifecycle -----------------------------------------------------------------
    async def close(self) -> None:
        """Close every connection and stop the health monitor."""
        self._closed = True
        self._stop_sentinel()
        if self._monitor is not None and self._monitor_loop is asyncio.get_running_loop():
            await self._monitor.stop()
        for listener in self._listeners.values():
            await listener.aclose()
        for pool in self._pools.values():
            pool.close()

    async def __aenter__(self) -> "AsyncCacheClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
