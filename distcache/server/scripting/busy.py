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

Connections that arrive meanwhile are accepted here, from the server's own
listeners (sock_transport.SocketListener), and answered the same way; the
loop's transport takes them over afterwards. A connection the loop accepted just
before the script started is already a registered client (the listener makes it
at accept), so it is answered too, as Redis answers it.
"""
from __future__ import annotations

import logging
import os
import selectors
from typing import Any, Dict, List, Optional

from ...protocol import ProtocolError
from ...protocol.resp import RequestParser
from .. import errors
from ..errors import NOAUTH, CommandError
from ..sock_transport import SocketListener
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


class _Conn:
    """A client being answered during the script."""

    __slots__ = ("client", "buf")

    def __init__(self, client: Any) -> None:
        self.client = client
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
        for client in list(server.clients.values()):
            # A client whose parser holds part of a request waits: its next bytes
            # only make sense to that parser.
            if client is run.caller or client.partial:
                continue
            self._add(client)
        # The plain-text listeners; a TLS port's clients wait for the script's end,
        # as their TLS layer is the loop's.
        self.listeners: Dict[int, SocketListener] = {}
        for listener in getattr(server, "_servers", ()):
            if isinstance(listener, SocketListener):
                try:
                    self.selector.register(listener.fileno(), selectors.EVENT_READ, None)
                except (ValueError, OSError):
                    continue
                self.listeners[listener.fileno()] = listener

    def _add(self, client: Any) -> None:
        """Answer ``client`` from here on, if its bytes can be read here."""
        transport = client.transport
        if client.closed or client.closing or transport is None \
                or transport.get_extra_info("ssl_object") is not None:
            return  # a TLS client's bytes need its TLS layer: it waits for the script
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._register(sock.fileno(), _Conn(client))

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
                self._accept(key.fd)
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

    def _accept(self, fd: int) -> None:
        for client in self.listeners[fd].accept_ready():  # admitted and listed there
            self._add(client)

    def _drop(self, fd: int, conn: _Conn) -> None:
        """Stop reading ``fd``; the loop sees its end, or its close, afterwards."""
        self.selector.unregister(fd)
        conn.buf = bytearray()

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
        loop = self.server.loop
        for conn in self.conns:
            leftover = bytes(conn.buf)
            client = conn.client
            if leftover and not client.closed:
                loop.call_soon(client.data_received, leftover)


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
