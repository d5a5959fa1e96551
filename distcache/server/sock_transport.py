"""Plain-TCP clients served from the loop's reader callbacks (PyPy's asyncio).

asyncio's selector transport wraps each read in ``_read_ready`` ->
``_read_ready__get_buffer`` -> ``get_buffer`` -> ``buffer_updated`` and each
write in checks for states the server never uses (EOF written, drain waiters).
:class:`SocketTransport` is the smallest ``asyncio.Transport`` the server needs:
``loop.add_reader`` on the non-blocking socket, ``recv_into`` the server's one
read buffer, ``data_received`` with a copy, and ``send`` straight from
``write``; only a partial send buffers the rest and waits with
``loop.add_writer``. The rest of the server sees an ordinary transport: write,
close, abort, pause/resume reading, write-buffer size and limits (flow control,
client-output-buffer-limit), extra info.

:class:`SocketListener` accepts from a listening socket through ``add_reader``
and stands in for ``asyncio.Server`` (``sockets``, ``close``, ``wait_closed``).
It serves every plain-text port, whatever the transport: a loop's own
``create_server`` makes the connection's protocol in a later loop turn than its
accept (asyncio in a task, uvloop through ``call_soon``), and a script that
starts in between would leave that connection in no list the busy-script hook
polls (scripting/busy.py). Here the client exists, registered, the moment its
socket is accepted: on a :class:`SocketTransport`, or on a
:class:`PendingTransport` until the loop's transport takes over
(:func:`attach_to_loop`).
"""
from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any, Callable, List, Optional, Set

log = logging.getLogger("distcache.server")

#: asyncio's defaults for a transport's write buffer.
HIGH_WATER = 64 * 1024

#: Errors of a peer going away: closed quietly, as asyncio does.
_PEER_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)

#: accept() errors that mean "out of descriptors or memory": stop accepting a while.
_ACCEPT_LIMITS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class SocketTransport(asyncio.Transport):
    """One accepted TCP socket; its protocol is a :class:`~.connection.Client`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 protocol: Any, view: memoryview) -> None:
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
        super().__init__({"socket": sock, "peername": peer, "sockname": sock.getsockname()})
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._view = view
        self._buffer = bytearray()
        self._high = HIGH_WATER
        self._low = HIGH_WATER // 4
        self._protocol_paused = False
        self._closing = False
        self._lost = False  # connection_lost is scheduled or done
        self._reading = False
        # DirectReaderLoop (PyPy) runs the reader straight from the poll.
        self._add_reader = getattr(loop, "add_direct_reader", loop.add_reader)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover - not TCP
            pass
        protocol.connection_made(self)
        if not self._closing:
            self._reading = True
            self._add_reader(self._fd, self._read_ready)

    # -- reads --------------------------------------------------------------------------

    def _read_ready(self) -> None:
        try:
            nbytes = self._sock.recv_into(self._view)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        try:
            if nbytes:
                # A copy: the buffer is the next ready client's as soon as this returns.
                self._protocol.data_received(self._view[:nbytes].tobytes())
            elif not self._protocol.eof_received():
                self.close()
            else:
                self.pause_reading()
        except Exception as exc:  # a bug must not take the loop down with it
            log.exception("error handling a read from %s", self._extra.get("peername"))
            self._fatal(exc)

    def pause_reading(self) -> None:
        if self._reading and not self._closing:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def resume_reading(self) -> None:
        if not self._reading and not self._closing:
            self._reading = True
            self._add_reader(self._fd, self._read_ready)

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    # -- writes -------------------------------------------------------------------------

    def write(self, data: Any) -> None:
        if self._lost or not data:
            return
        buffer = self._buffer
        if not buffer:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal(exc)
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            self._loop.add_writer(self._fd, self._write_ready)
        buffer += data
        if not self._protocol_paused and len(buffer) > self._high:
            self._protocol_paused = True
            self._protocol.pause_writing()

    def _write_ready(self) -> None:
        buffer = self._buffer
        try:
            sent = self._sock.send(buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        del buffer[:sent]
        if self._protocol_paused and len(buffer) <= self._low:
            self._protocol_paused = False
            try:
                self._protocol.resume_writing()
            except Exception as exc:
                log.exception("error resuming %s", self._extra.get("peername"))
                self._fatal(exc)
                return
        if not buffer:
            self._loop.remove_writer(self._fd)
            if self._closing and not self._lost:
                self._connection_lost(None)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def get_write_buffer_limits(self) -> "tuple[int, int]":
        return self._low, self._high

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        if high is None:
            high = HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low

    def can_write_eof(self) -> bool:
        return False

    # -- closing ------------------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; connection_lost once the buffered output is sent."""
        if self._closing:
            return
        self.pause_reading()
        self._closing = True
        if not self._buffer and not self._lost:
            self._connection_lost(None)

    def abort(self) -> None:
        """Close now, dropping unsent output."""
        self._force_close(None)

    def _fatal(self, exc: BaseException) -> None:
        if not isinstance(exc, _PEER_GONE):
            log.debug("connection %s failed: %r", self._extra.get("peername"), exc)
        self._force_close(exc)

    def _force_close(self, exc: Optional[BaseException]) -> None:
        if self._lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._loop.remove_writer(self._fd)
        self.pause_reading()
        self._closing = True
        self._connection_lost(exc)

    def _connection_lost(self, exc: Optional[BaseException]) -> None:
        # As asyncio: the protocol hears of it on the next loop turn, never from
        # inside its own write or close.
        self._lost = True
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: Optional[BaseException]) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._sock.close()


#: How a listener hands an accepted socket to its protocol: (socket, protocol).
Attach = Callable[[socket.socket, Any], None]


def attach_socket_transport(loop: asyncio.AbstractEventLoop, view: memoryview) -> Attach:
    """Accepted sockets get a :class:`SocketTransport` (PyPy's asyncio)."""
    def attach(conn: socket.socket, protocol: Any) -> None:
        SocketTransport(loop, conn, protocol, view)
    return attach


def attach_to_loop(loop: asyncio.AbstractEventLoop) -> Attach:
    """Accepted sockets get the loop's own transport (``connect_accepted_socket``,
    in a task), and a :class:`PendingTransport` until then."""
    def attach(conn: socket.socket, protocol: Any) -> None:
        pending = PendingTransport(conn)
        protocol.connection_made(pending)  # admission, CLIENT LIST, the busy hook
        if pending.closed:  # refused (maxclients, protected mode...)
            conn.close()
            protocol.connection_lost(None)
            return
        task = loop.create_task(_hand_over(loop, protocol, conn, pending))
        _HANDING_OVER.add(task)  # the loop keeps tasks weakly
        task.add_done_callback(_HANDING_OVER.discard)
    return attach


_HANDING_OVER: Set["asyncio.Task[None]"] = set()


async def _hand_over(loop: asyncio.AbstractEventLoop, protocol: Any, conn: socket.socket,
                     pending: "PendingTransport") -> None:
    """The loop's transport takes over: the protocol's second ``connection_made``."""
    if pending.closed:  # closed, killed or cut before the loop got to it
        conn.close()
        protocol.connection_lost(None)
        return
    try:
        await loop.connect_accepted_socket(lambda: protocol, conn)
    except OSError:
        conn.close()
        protocol.connection_lost(None)


class PendingTransport:
    """Just enough of a transport for a client the loop has not taken over yet:
    accepted, or answered by a busy script's hook. Replies go out at once with a
    short blocking send; reads are the busy hook's or, later, the loop's."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.sock.settimeout(1.0)  # small replies; a client that reads nothing is cut
            self.sock.sendall(data)
        except OSError:
            self.closed = True
        finally:
            self.sock.setblocking(False)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        try:
            return {"peername": self.sock.getpeername, "sockname": self.sock.getsockname,
                    "socket": lambda: self.sock}[name]()
        except (KeyError, OSError):
            return default

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True

    abort = close

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class SocketListener:
    """Accepts on one listening socket; ``attach`` gives each connection its transport."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 factory: Callable[[], Any], attach: Attach, backlog: int) -> None:
        self.loop = loop
        self.sockets: List[socket.socket] = [sock]
        self._sock = sock
        self._factory = factory
        self._attach = attach
        self._backlog = max(backlog, 1)
        self._closed = False
        self._paused = False
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._accept)

    def fileno(self) -> int:
        return self._sock.fileno()

    def _accept(self) -> None:
        self.accept_ready()

    def accept_ready(self) -> List[Any]:
        """Accept what waits (a backlog's worth at most); returns the protocols made."""
        made: List[Any] = []
        if self._paused or self._closed:
            return made
        for _ in range(self._backlog):
            try:
                conn, _addr = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                break
            except OSError as exc:
                if exc.errno not in _ACCEPT_LIMITS:
                    log.warning("accept failed: %s", exc)
                    break
                # Out of descriptors: as asyncio, stop accepting for a second
                # (the listening socket stays readable: not spinning meanwhile).
                log.error("accept failed (%s); pausing accepts for 1 s", exc)
                self._paused = True
                self.loop.remove_reader(self._sock.fileno())
                self.loop.call_later(1.0, self._resume)
                break
            conn.setblocking(False)
            protocol = self._factory()
            try:
                self._attach(conn, protocol)
            except OSError:  # the peer left before we could look at it
                conn.close()
                continue
            made.append(protocol)
        return made

    def _resume(self) -> None:
        self._paused = False
        if not self._closed:
            self.loop.add_reader(self._sock.fileno(), self._accept)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.loop.remove_reader(self._sock.fileno())
            self._sock.close()

    async def wait_closed(self) -> None:
        return None


def listening_sockets(host: str, port: int, backlog: int) -> List[socket.socket]:
    """Bound, listening sockets for ``host`` (every address it resolves to)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    socks: List[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port:  # port 0: every address shares the first one picked
                address = (address[0], port) + tuple(address[2:])
            sock.bind(address)
            sock.listen(backlog)
            port = sock.getsockname()[1]
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks
