"""Invalidation listeners and tracked pools: what keeps the local cache correct.

Per server, one listener connection (RESP2) runs ``CLIENT ID`` and
``SUBSCRIBE __redis__:invalidate``; every pooled connection to that server
runs ``CLIENT TRACKING ON REDIRECT <listener id>`` before its first use
after the listener (re)subscribed. The server then sends the listener the
keys that change among those read, and a null message on FLUSHDB/FLUSHALL.

A listener that drops (the server restarted, the network failed, no PONG
within ``timeout``) takes its server's entries with it, and reconnects with
backoff; until it is back, reads of that server are not cached. A quiet
listener sends PING every ``interval`` seconds, so a silent death is found.

The blocking client runs each listener in a daemon thread; the asyncio
client in a task of the loop that uses it.
"""
from __future__ import annotations

import asyncio
import logging
import select
import socket
import threading
import time
from typing import Any, Deque, List, Optional

from collections import deque

from ..protocol import NOT_ENOUGH, ProtocolError, ReplyError, encode_command, \
    make_reply_parser
from .aio import AsyncConnection, AsyncPool
from .connection import Connection, ConnectionPool, handshake_commands, tls_context
from .localcache import LocalCache
from .ring import ServerSpec

__all__ = ["ThreadListener", "AsyncListener", "TrackingPool", "TrackingAsyncPool"]

log = logging.getLogger("distcache.client")

CHANNEL = b"__redis__:invalidate"
_PING = encode_command((b"PING",))


def _subscribed(replies: List[Any]) -> int:
    """The listener's id from the replies of [CLIENT ID, SUBSCRIBE]."""
    client_id, sub = replies[-2], replies[-1]
    if client_id.__class__ is not int or not isinstance(sub, list) or sub[:1] != [b"subscribe"]:
        raise ConnectionError(f"cannot listen for invalidations: {client_id!r} {sub!r}")
    return client_id


class _ListenerBase:
    """The state a tracked pool reads: ``gen`` (None while not subscribed) and ``id``."""

    def __init__(self, server: ServerSpec, cache: LocalCache, conn_kwargs: dict,
                 interval: float) -> None:
        self.server = server
        self.cache = cache
        self.conn_kwargs = dict(conn_kwargs, db=0)  # tracking is not per db
        self.interval = max(0.05, interval)
        self.timeout = max(self.interval, conn_kwargs.get("timeout") or 5.0)
        self.gen: Optional[int] = None
        self.id = 0
        self._gens = 0
        self.closed = False

    def _up(self, client_id: int) -> None:
        # gen first, then the cache's epoch: a read whose token is valid always
        # finds the pool able to track its connection.
        self._gens += 1
        self.id, self.gen = client_id, self._gens
        self.cache.server_up(self.server)

    def _down(self) -> None:
        # the cache first: no read may start with a valid token on a dead listener
        if self.gen is not None:
            self.cache.server_down(self.server)
            self.gen = None

    def on_reply(self, reply: Any) -> bool:
        """Apply an invalidation message; False for anything else (PONG, confirms)."""
        if reply.__class__ is list and len(reply) == 3 and reply[0] == b"message":
            keys = reply[2]
            if keys is None:  # FLUSHDB / FLUSHALL: everything from this server
                self.cache.clear_server(self.server)
            elif keys.__class__ is list:
                self.cache.invalidate(keys)
            return True
        return False

    def tracking_command(self) -> bytes:
        return encode_command((b"CLIENT", b"TRACKING", b"ON", b"REDIRECT", self.id))


class ThreadListener(_ListenerBase):
    """A daemon thread holding one server's listener connection."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._thread: Optional[threading.Thread] = None
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._first = threading.Event()  # set after the first attempt, good or bad
        self._conn: Optional[Connection] = None

    def ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self.closed:
                    self._thread = threading.Thread(
                        target=self._run, name=f"distcache-invalidations-{self.server.address}",
                        daemon=True)
                    self._thread.start()
            self._first.wait(self.conn_kwargs.get("connect_timeout") or 5.0)

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            try:
                self._session()
                delay = 0.0
            except Exception as exc:  # any failure: drop the server's entries, retry
                log.debug("invalidation listener %s: %s", self.server.address, exc)
            finally:
                self._down()
                self._first.set()
            delay = min(1.0, delay * 2 or 0.05)
            self._stop.wait(delay)

    def _session(self) -> None:
        conn = Connection(self.server, **self.conn_kwargs).connect()
        self._conn = conn
        try:
            if self._stop.is_set():
                return
            self._up(_subscribed(conn.request_many([(b"CLIENT", b"ID"),
                                                    (b"SUBSCRIBE", CHANNEL)])))
            self._first.set()
            conn.sock.settimeout(self.interval)  # type: ignore[union-attr]
            pinged = 0.0
            while not self._stop.is_set():
                try:
                    reply = conn.read_reply()
                except socket.timeout:
                    if pinged and time.monotonic() - pinged > self.timeout:
                        raise ConnectionError("no PONG from the invalidation listener")
                    if not pinged:
                        conn.sock.sendall(_PING)  # type: ignore[union-attr]
                        pinged = time.monotonic()
                    continue
                if not self.on_reply(reply):
                    pinged = 0.0
        finally:
            self._conn = None
            conn.close()

    def suspect(self) -> bool:
        """True if the listener's socket has unread bytes: maybe the EOF of a
        restarted server whose new process gave our listener's id to another
        client, so a REDIRECT to it must not be trusted yet."""
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is None:
            return True
        try:
            return bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        self.closed = True
        self._stop.set()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread's recv
            except OSError:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)


class TrackedConnection(Connection):
    __slots__ = ("lc_gen",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lc_gen: Optional[int] = None


class TrackingPool(ConnectionPool):
    """A pool whose connections track their reads for the server's listener."""

    connection_class = TrackedConnection

    def __init__(self, server: ServerSpec, max_idle: Optional[int], listener: ThreadListener,
                 **conn_kwargs: Any) -> None:
        super().__init__(server, max_idle, **conn_kwargs)
        self.listener = listener

    def get(self) -> Connection:
        conn = ConnectionPool.get(self)
        listener = self.listener
        gen = listener.gen
        if gen is not None and conn.lc_gen != gen:  # type: ignore[attr-defined]
            client_id = listener.id
            if listener.suspect():
                listener.cache.cancel(self.server)
                return conn
            reply = conn.request(listener.tracking_command())
            if reply.__class__ is ReplyError or listener.gen != gen or listener.id != client_id:
                log.debug("%s: tracking not enabled: %s", self.server.address, reply)
                listener.cache.cancel(self.server)
            else:
                conn.lc_gen = gen  # type: ignore[attr-defined]
        return conn

    get_dedicated = get


# -- asyncio ---------------------------------------------------------------------------

class _ListenerProtocol(asyncio.Protocol):
    def __init__(self, listener: "AsyncListener", parser: str) -> None:
        self.listener = listener
        p = make_reply_parser(parser)
        reader = getattr(p, "_reader", None)
        self._feed = (reader or p).feed
        self._get = reader.gets if reader is not None else p.get
        self.waiters: Deque["asyncio.Future[Any]"] = deque()
        self.transport: Any = None
        self.lost = asyncio.get_running_loop().create_future()
        self.activity = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.activity = True
        try:
            self._feed(data)
            while True:
                reply = self._get()
                if reply is NOT_ENOUGH:
                    return
                if not self.listener.on_reply(reply) and self.waiters:
                    fut = self.waiters.popleft()
                    if not fut.done():
                        fut.set_result(reply)
        except ProtocolError as exc:
            self._lost(exc)

    def eof_received(self) -> bool:
        self._lost(None)  # at once: before any new connection could trust our id
        return False

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._lost(exc)

    def _lost(self, exc: Optional[BaseException]) -> None:
        self.listener._down()
        if self.transport is not None:
            self.transport.abort()
        for fut in self.waiters:
            if not fut.done():
                fut.set_exception(ConnectionError("invalidation listener lost"))
        self.waiters.clear()
        if not self.lost.done():
            self.lost.set_result(exc)

    async def request(self, cmds: List[tuple]) -> List[Any]:
        futs = []
        for _ in cmds:
            fut = asyncio.get_running_loop().create_future()
            self.waiters.append(fut)
            futs.append(fut)
        self.transport.write(b"".join(encode_command(c) for c in cmds))
        return [await fut for fut in futs]


class AsyncListener(_ListenerBase):
    """A task of the running loop holding one server's listener connection."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.loop: Any = None
        self._task: Any = None
        self._first: Any = None
        self._proto: Optional[_ListenerProtocol] = None

    async def ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            if self.closed:
                return
            self._down()  # one made by an earlier loop is gone with it
            self.loop = loop
            self._first = loop.create_future()
            self._task = loop.create_task(self._run())
        if not self._first.done():
            timeout = self.conn_kwargs.get("connect_timeout") or 5.0
            await asyncio.wait([self._first], timeout=timeout)

    async def _run(self) -> None:
        delay = 0.0
        while not self.closed:
            try:
                await self._session()
                delay = 0.0
            except asyncio.CancelledError:
                self._down()
                raise
            except Exception as exc:
                log.debug("invalidation listener %s: %s", self.server.address, exc)
            finally:
                self._down()
                if not self._first.done():
                    self._first.set_result(None)
            delay = min(1.0, delay * 2 or 0.05)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        kw = self.conn_kwargs
        server = self.server
        ssl = tls_context(server, kw.get("ssl_context"))
        loop = asyncio.get_running_loop()
        _, proto = await asyncio.wait_for(loop.create_connection(
            lambda: _ListenerProtocol(self, kw.get("parser", "auto")), server.host, server.port,
            ssl=ssl, server_hostname=server.host if ssl else None), kw.get("connect_timeout"))
        self._proto = proto
        try:
            cmds = handshake_commands(kw.get("password"), kw.get("username"), 0)
            replies = await asyncio.wait_for(
                proto.request(cmds + [(b"CLIENT", b"ID"), (b"SUBSCRIBE", CHANNEL)]), self.timeout)
            for reply in replies[:-2]:
                if reply.__class__ is ReplyError:
                    raise ConnectionError(f"{server.address}: {reply}")
            self._up(_subscribed(replies))
            if not self._first.done():
                self._first.set_result(None)
            pinged = 0.0
            while not proto.lost.done():
                proto.activity = False
                await asyncio.wait([proto.lost], timeout=self.interval)
                if proto.lost.done():
                    break
                if proto.activity:
                    pinged = 0.0
                elif not pinged:
                    proto.transport.write(_PING)
                    pinged = loop.time()
                elif loop.time() - pinged > self.timeout:
                    raise ConnectionError("no PONG from the invalidation listener")
        finally:
            self._proto = None
            proto._lost(None)

    def close(self) -> None:
        self.closed = True
        proto = self._proto
        if proto is not None and proto.transport is not None:
            try:
                proto.transport.abort()
            except RuntimeError:  # its loop is closed
                pass
        if self._task is not None and not self._task.done():
            try:
                self._task.cancel()
            except RuntimeError:  # its loop is closed
                pass
        self._down()

    async def aclose(self) -> None:
        """close(), then wait for the task to end if it runs on this loop."""
        self.close()
        task = self._task
        if task is not None and self.loop is asyncio.get_running_loop():
            await asyncio.gather(task, return_exceptions=True)


class TrackingAsyncPool(AsyncPool):
    """The asyncio pool whose connections track their reads for the listener."""

    def __init__(self, server: ServerSpec, listener: AsyncListener, **conn_kwargs: Any) -> None:
        super().__init__(server, **conn_kwargs)
        self.listener = listener

    async def get(self) -> AsyncConnection:
        return await self._track(await AsyncPool.get(self))

    async def get_dedicated(self) -> AsyncConnection:
        return await self._track(await AsyncPool.get_dedicated(self))

    async def _track(self, conn: AsyncConnection) -> AsyncConnection:
        listener = self.listener
        gen = listener.gen
        if gen is not None and getattr(conn, "lc_gen", None) != gen:
            # Set before the reply: requests queued after this one on the same
            # connection run after it, tracked.
            conn.lc_gen = gen  # type: ignore[attr-defined]
            reply = await conn.request(listener.tracking_command())
            if reply.__class__ is ReplyError or listener.gen != gen:
                log.debug("%s: tracking not enabled: %s", self.server.address, reply)
                conn.lc_gen = None  # type: ignore[attr-defined]
                listener.cache.cancel(self.server)
        return conn
