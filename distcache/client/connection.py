"""Blocking connections to one server, and a thread-safe pool of them.

The request path is kept lean: the caller encodes once, ``sendall`` sends
once, and replies are parsed from a reusable buffer filled by ``recv_into``.
A connection that timed out or failed is closed, never reused: its stream
may hold a late reply that would be taken for the next one.
"""
from __future__ import annotations

import os
import select
import socket
import time
import ssl as _ssl
from typing import Any, List, Optional, Sequence

from ..protocol import NOT_ENOUGH, ProtocolError, ReplyError, encode_command, \
    make_reply_parser
from .errors import AuthenticationError, ConnectionError, ResponseError, TimeoutError
from .ring import ServerSpec

__all__ = ["Connection", "ConnectionPool", "handshake_commands", "check_handshake"]

_BUFSIZE = 64 * 1024
STALE_CHECK_AFTER = 1.0  # seconds idle before a pooled connection is checked


def handshake_commands(password: Optional[str], username: Optional[str],
                       db: int) -> List[tuple]:
    cmds: List[tuple] = []
    if password is not None:
        cmds.append((b"AUTH", username, password) if username else (b"AUTH", password))
    if db:
        cmds.append((b"SELECT", db))
    return cmds


def check_handshake(address: str, cmds: List[tuple], replies: List[Any]) -> None:
    for cmd, reply in zip(cmds, replies):
        if isinstance(reply, ReplyError):
            if cmd[0] == b"AUTH":
                raise AuthenticationError(f"{address}: {reply}")
            raise ResponseError(f"{address}: {cmd[0].decode()} failed: {reply}")


def auth_error(address: str, reply: ReplyError) -> Optional[AuthenticationError]:
    """NOAUTH/WRONGPASS replies mean a configuration problem, not a bad command."""
    text = str(reply)
    if text.startswith(("NOAUTH", "WRONGPASS")):
        return AuthenticationError(f"{address}: {text}")
    return None


class Connection:
    """One socket to one server. Not thread-safe: the pool hands it to one thread."""

    __slots__ = ("server", "address", "password", "username", "db", "ssl_context",
                 "connect_timeout", "timeout", "parser_kind", "sock", "_buf", "_parser",
                 "_feed", "_get", "_hiredis", "pid", "idle_since")

    def __init__(self, server: ServerSpec, password: Optional[str] = None,
                 username: Optional[str] = None, db: int = 0,
                 ssl_context: Optional[_ssl.SSLContext] = None,
                 connect_timeout: Optional[float] = 5.0, timeout: Optional[float] = 5.0,
                 parser: str = "auto") -> None:
        self.server = server
        self.address = server.address
        self.password = password
        self.username = username
        self.db = db
        self.ssl_context = tls_context(server, ssl_context)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.parser_kind = parser
        self.sock: Optional[socket.socket] = None
        self._buf = bytearray(_BUFSIZE)
        self.pid = os.getpid()
        self.idle_since = 0.0

    def connect(self) -> "Connection":
        try:
            sock = socket.create_connection((self.server.host, self.server.port),
                                            timeout=self.connect_timeout)
        except socket.timeout:
            raise TimeoutError(f"{self.address}: connect timed out after "
                               f"{self.connect_timeout}s") from None
        except OSError as exc:
            raise ConnectionError(f"{self.address}: cannot connect: {exc}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.server.host)
            sock.settimeout(self.timeout)
        except (OSError, _ssl.SSLError) as exc:
            sock.close()
            raise ConnectionError(f"{self.address}: TLS handshake failed: {exc}") from None
        self.sock = sock
        parser = make_reply_parser(self.parser_kind)
        reader = getattr(parser, "_reader", None)
        self._hiredis = reader is not None
        if reader is not None:  # hiredis reads straight from our buffer, no copy
            self._feed, self._get = reader.feed, reader.gets
        else:
            self._feed, self._get = parser.feed, parser.get
        cmds = handshake_commands(self.password, self.username, self.db)
        if cmds:
            try:
                check_handshake(self.address, cmds, self.request_many(cmds))
            except BaseException:
                self.close()
                raise
        return self

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:  # pragma: no cover
                pass

    def is_stale(self) -> bool:
        """True if an idle connection is readable: the server closed it (a
        restart, an idle timeout) or sent something nobody asked for."""
        try:
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError, TypeError):
            return True

    def _fail(self, exc: BaseException) -> BaseException:
        """Close and translate a socket error."""
        self.close()
        if isinstance(exc, socket.timeout):
            return TimeoutError(f"{self.address}: no reply within {self.timeout}s")
        if isinstance(exc, ProtocolError):
            return ConnectionError(f"{self.address}: protocol error: {exc}")
        if isinstance(exc, ConnectionError):
            return exc
        return ConnectionError(f"{self.address}: {exc or type(exc).__name__}")

    def read_reply(self) -> Any:
        get = self._get
        reply = get()
        if reply is not NOT_ENOUGH:
            return reply
        buf, sock, feed = self._buf, self.sock, self._feed
        while True:
            n = sock.recv_into(buf)  # type: ignore[union-attr]
            if not n:
                raise ConnectionError(f"{self.address}: server closed the connection")
            if self._hiredis:
                feed(buf, 0, n)
            else:
                feed(bytes(buf[:n]))  # the Python parser keeps references
            reply = get()
            if reply is not NOT_ENOUGH:
                return reply

    def request(self, data: bytes) -> Any:
        """Send one encoded command and return its reply (ReplyError not raised)."""
        try:
            self.sock.sendall(data)  # type: ignore[union-attr]
            return self.read_reply()
        except (OSError, ProtocolError, ConnectionError, AttributeError) as exc:
            raise self._fail(exc) from None

    def send(self, commands: Sequence[Sequence[Any]]) -> None:
        try:
            self.sock.sendall(b"".join([encode_command(c) for c in commands]))  # type: ignore
        except (OSError, AttributeError) as exc:
            raise self._fail(exc) from None

    def read_replies(self, count: int) -> List[Any]:
        try:
            read = self.read_reply
            return [read() for _ in range(count)]
        except (OSError, ProtocolError, ConnectionError, AttributeError) as exc:
            raise self._fail(exc) from None

    def request_many(self, commands: Sequence[Sequence[Any]]) -> List[Any]:
        self.send(commands)
        return self.read_replies(len(commands))


class ConnectionPool:
    """Idle connections to one server; ``get()``/``put()`` are thread-safe.

    list.append/pop are atomic under the GIL, so no lock is needed. After a
    fork the child drops the parent's sockets instead of sharing them.
    """

    connection_class = Connection  # TrackingPool's connections remember their tracking

    def __init__(self, server: ServerSpec, max_idle: Optional[int] = None,
                 **conn_kwargs: Any) -> None:
        self.server = server
        self.conn_kwargs = conn_kwargs
        self.max_idle = max_idle or 64
        self._idle: List[Connection] = []
        self._pid = os.getpid()
        self.closed = False

    def get(self) -> Connection:
        if self._pid != os.getpid():
            self._idle = []
            self._pid = os.getpid()
        idle = self._idle
        while idle:
            try:
                conn = idle.pop()
            except IndexError:  # another thread took the last one
                break
            # A connection idle for a while may have been closed by the server:
            # check it, so a non-idempotent command is not lost on a dead socket.
            if time.monotonic() - conn.idle_since < STALE_CHECK_AFTER or not conn.is_stale():
                return conn
            conn.close()
        if self.closed:
            raise ConnectionError("the client is closed")
        return self.connection_class(self.server, **self.conn_kwargs).connect()

    def put(self, conn: Connection) -> None:
        if conn.sock is None:
            return
        if self.closed or len(self._idle) >= self.max_idle or conn.pid != self._pid:
            conn.close()
        else:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)

    # Transactions (WATCH) just hold a pooled connection for their duration.
    get_dedicated = get
    put_dedicated = put

    def close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def close(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


_default_tls: Optional[_ssl.SSLContext] = None


def tls_context(server: ServerSpec, ssl_context: Optional[_ssl.SSLContext]) -> Any:
    """The context for ``server``: the client's ``ssl=``, else for a
    ``rediss://`` server one that verifies against the system's CAs."""
    global _default_tls
    if ssl_context is not None or not server.tls:
        return ssl_context
    if _default_tls is None:
        _default_tls = _ssl.create_default_context()
    return _default_tls


def check_ping(server: ServerSpec, reply: Any) -> None:
    """A health check passes on PONG, or NOAUTH (alive, just wants a password), or
    NOPERM (alive; an ACL user without +ping)."""
    if isinstance(reply, ReplyError) and not str(reply).startswith(("NOAUTH", "NOPERM")):
        raise ConnectionError(f"{server.address}: {reply}")


def ping_server(server: ServerSpec, probe_timeout: float, **conn_kwargs: Any) -> None:
    """A fresh connection's PING (health checks): raises unless answered."""
    kwargs = dict(conn_kwargs, connect_timeout=probe_timeout, timeout=probe_timeout)
    conn = Connection(server, **kwargs).connect()
    try:
        check_ping(server, conn.request(encode_command((b"PING",))))
    finally:
        conn.close()
