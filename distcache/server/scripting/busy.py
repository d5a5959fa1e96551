"""Serving other clients while a script runs past busy-reply-threshold.

A script runs inside a command handler, in the event-loop thread, so the
loop cannot run until it returns. Redis keeps reading its sockets from the
script's hook and answers -BUSY; this does the same without the loop: the
Lua count hook calls :meth:`BusyServer.poll` every few milliseconds, which
polls the connected clients' sockets with a selector of its own, reads what
is there with ``os.read`` on the socket's file descriptor, parses it, and
answers: SCRIPT KILL and FUNCTION KILL end a script that has not written
(else -UNKILLABLE), SHUTDOWN NOSAVE stops the server, and anything else gets
-BUSY. Replies go through the transport's ``write``, which sends at once
when the socket can take them.

Why not run the loop itself from the hook: asyncio's loop is not reentrant
(``run_until_complete`` inside a callback raises), and uvloop's neither. The
file descriptors of the transports work the same on both (uvloop's
transports give a pseudo-socket whose ``fileno()`` is the real one), and
since the loop is not running, nothing else reads them meanwhile. When the
script ends, the bytes of a request that was still incomplete are handed to
the client's own parser, so nothing a client sent is lost.
Connections that arrive meanwhile wait in the listen backlog.
"""
from __future__ import annotations

import logging
import os
import selectors
import socket
from typing import Any, List, Optional

from ...protocol import ProtocolError
from ...protocol.resp import RequestParser
from .. import errors
from ..errors import NOAUTH, CommandError
from ..stats import count_error

log = logging.getLogger("distcache.scripting")

BUSY = b"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
#: The same while a function (FCALL) runs.
BUSY_FUNCTION = (b"BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
                 b"SHUTDOWN NOSAVE.")
UNKILLABLE = (b"UNKILLABLE Sorry the script already executed write commands against the "
              b"dataset. You can either wait the script termination or kill the server in a "
              b"hard way using the SHUTDOWN NOSAVE command.")
#: allow_busy commands answered here rather than run.
_SPECIAL = frozenset([b"script", b"function", b"shutdown"])


class _SocketTransport:
    """Just enough of a transport for a Client accepted during the script."""

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

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Conn:
    """A client being answered during the script (``sock``: accepted meanwhile)."""

    __slots__ = ("client", "sock", "buf")

    def __init__(self, client: Any, sock: Optional[socket.socket] = None) -> None:
        self.client = client
        self.sock = sock
        self.buf = bytearray()

    def write(self, data: bytes) -> None:
        self.client.transport.write(data)


class BusyServer:
    """Answers the other clients for one script that runs too long."""

    def __init__(self, server: Any, run: Any) -> None:
        self.server = server
        self.run = run
        self.selector = selectors.DefaultSelector()
        self.conns: List[_Conn] = []
        self.listeners: List[socket.socket] = []
        for client in list(server.clients.values()):
            # A client whose parser holds part of a request waits: its next bytes
            # only make sense to that parser.
            if client is run.caller or client.closed or client.closing or client.partial:
                continue
            transport = client.transport
            if transport is None or transport.get_extra_info("ssl_object") is not None:
                continue  # a TLS client's bytes need its TLS layer: it waits for the script
            sock = transport.get_extra_info("socket")
            if sock is not None:
                self._register(sock.fileno(), _Conn(client))
        for listening in _listening_sockets(server):
            try:
                # A duplicate: uvloop's listening sockets cannot accept from Python.
                sock = socket.socket(fileno=os.dup(listening.fileno()))
                sock.setblocking(False)
                self.selector.register(sock.fileno(), selectors.EVENT_READ, None)
                self.listeners.append(sock)
            except (ValueError, OSError):
                continue

    def _register(self, fd: int, conn: _Conn) -> None:
        try:
            self.selector.register(fd, selectors.EVENT_READ, conn)
            self.conns.append(conn)
        except (ValueError, OSError):
            pass

    def poll(self) -> None:
        """Accept, read and answer what arrived since the last poll."""
        for key, _ in self.selector.select(0):
            conn = key.data
            if conn is None:
                self._accept(key.fileobj)
                continue
            try:
                data = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # gone: the loop sees the end of the stream afterwards
                self._drop(key.fd, conn)
                continue
            self._serve(key.fd, conn, data)

    def _accept(self, listener: Any) -> None:
        for sock in self.listeners:
            if sock.fileno() == listener:
                break
        else:
            return
        while True:
            try:
                new, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            new.setblocking(False)
            from ..connection import Client
            client = Client(self.server)
            client.connection_made(_SocketTransport(new))  # admission checks, CLIENT LIST
            if client.closed:
                new.close()
                continue
            self._register(new.fileno(), _Conn(client, new))

    def _drop(self, fd: int, conn: _Conn) -> None:
        self.selector.unregister(fd)
        conn.buf = bytearray()
        if conn.sock is not None:
            self.conns.remove(conn)
            conn.client.connection_lost(None)
            conn.sock.close()

    def _serve(self, fd: int, conn: _Conn, data: bytes) -> None:
        buf = conn.buf
        buf += data
        parser = RequestParser()
        parser.authenticated = conn.client.authenticated
        try:
            commands = parser.parse(bytes(buf))
        except ProtocolError as exc:
            conn.write(b"-ERR %s\r\n" % str(exc).encode())
            self._drop(fd, conn)
            conn.client.close_now()
            return
        del buf[:len(buf) - parser.buffered()]
        if len(buf) > self.server.query_buffer_limit:
            self._drop(fd, conn)
            conn.client.close_now()
            return
        for args in commands:
            # After a SCRIPT KILL the rest of the read still gets BUSY, as in Redis:
            # the script has not ended yet.
            self._answer(conn, args)

    def _answer(self, conn: _Conn, args: List[bytes]) -> None:
        """Answer one command from a client."""
        name = args[0].lower()
        sub = args[1].lower() if len(args) > 1 else b""
        spec = self.server.command_table.get(name)
        if spec is not None and "allow_busy" in spec.flags and name not in _SPECIAL:
            # As Redis: AUTH, HELLO, MULTI, WATCH, QUIT, RESET... run during a script.
            client = conn.client
            client.execute(args, client.out)
            client.flush()
            return
        if not conn.client.authenticated:
            self._reply(conn, NOAUTH.encode())
            return
        # As Redis: an unknown command or a wrong arity is answered before BUSY (clients
        # such as redis-py probe subcommands on connect and expect those errors).
        error = _lookup_error(self.server.command_table, args)
        run = self.run
        busy = BUSY_FUNCTION if run.function else BUSY
        if error is not None:
            self._reply(conn, error.text.encode())
        elif name in (b"script", b"function") and sub == b"kill":
            # As Redis's scriptKill: SCRIPT KILL ends an EVAL, FUNCTION KILL a function.
            if run.wrote:
                self._reply(conn, UNKILLABLE)
            elif (name == b"script") != (not run.function):
                self._reply(conn, busy)
            else:
                run.kill = True
                conn.write(b"+OK\r\n")
        elif name == b"function" and sub == b"stats":  # allow_busy: it reports the script
            client = conn.client
            client.execute(args, client.out)
            client.flush()
        elif name == b"shutdown" and any(arg.lower() == b"nosave" for arg in args[1:]):
            log.warning("SHUTDOWN NOSAVE while a script runs: stopping it and the server")
            self.run.kill = self.run.shutdown = True
        else:
            self._reply(conn, busy)

    def _reply(self, conn: _Conn, error: bytes) -> None:
        count_error(self.server, error.split(b" ", 1)[0].decode())
        conn.write(b"-%s\r\n" % error)

    def finish(self) -> None:
        """The script ended: hand the connections back to the loop, with what they
        sent that was not answered yet."""
        self.selector.close()
        for sock in self.listeners:
            sock.close()
        server = self.server
        loop = server.loop
        for conn in self.conns:
            leftover = bytes(conn.buf)
            client = conn.client
            if conn.sock is None:
                if leftover and not client.closed:
                    loop.call_soon(client.data_received, leftover)
            elif self.run.shutdown or client.closed or client.closing:
                client.connection_lost(None)
                conn.sock.close()
            else:
                loop.create_task(_adopt(server, client, conn.sock, leftover))


def _lookup_error(table: Any, args: List[bytes]) -> Optional[CommandError]:
    """The error the dispatcher gives before running ``args``, if any."""
    spec = table.get(args[0]) or table.get(args[0].lower())
    if spec is None:
        return errors.unknown_command(args)
    subs = spec.subcommands
    sub = (subs.get(args[1]) or subs.get(args[1].lower())) if subs and len(args) > 1 else spec
    if sub is None:
        return errors.unknown_subcommand(args)
    if len(args) < abs(sub.arity) or 0 < sub.arity != len(args):
        return errors.wrong_arity(sub.fullname)
    return None


def _listening_sockets(server: Any) -> List[Any]:
    """The plain-text sockets the server listens on (asyncio.Server.sockets, on both
    loops); a TLS port's clients wait for the script's end, as its TLS layer is the loop's."""
    tls_port = getattr(server, "tls_port", 0)
    return [sock for srv in getattr(server, "_servers", ()) for sock in (srv.sockets or ())
            if not tls_port or sock.getsockname()[1] != tls_port]


async def _adopt(server: Any, client: Any, sock: socket.socket, leftover: bytes) -> None:
    """A client accepted during the script gets a real transport from the loop."""
    server.stats["total_connections_received"] -= 1  # connection_made counts it again
    try:
        await server.loop.connect_accepted_socket(lambda: client, sock)
    except OSError:
        client.connection_lost(None)
        sock.close()
        return
    if leftover and not client.closed:
        client.data_received(leftover)
