"""One client connection: bytes in, commands dispatched, replies out.

Data flows one way: ``data_received`` feeds the request parser, every whole
command goes through :meth:`Client.execute` (table lookup, arity, auth and
mode checks, then the handler), and the replies of one read are written with
a single ``transport.write``. While the socket cannot take more output the
client stops reading, so a client that writes faster than it reads never
loses a reply and never grows the server's memory without bound.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional, Sequence, Set

from ..protocol import ProtocolError, UnauthenticatedLimit, make_request_parser
from ..protocol.resp import BULK_HEADERS, Raw, encode_reply, error_text
from . import errors
from .client_blocking import BLOCKED, Blocking
from .client_flow import FAIR_SHARE, FlowControl
from .client_gate import _MULTI_IMMEDIATE, Gate, _exec_rejected
from .client_info import ClientInfo, _format_addr, set_keepalive
from .errors import CommandError
from .stats import count_error
from .types.blocking import serve_ready

if TYPE_CHECKING:
    from .app import CacheServer

__all__ = ["BLOCKED", "FAIR_SHARE", "BufferedClient", "Client", "set_keepalive",
           "_format_addr"]

log = logging.getLogger("distcache.server")


#: Commands a blocked client may have waiting before the server stops reading from it.
_MAX_PENDING = 1024


class Client(Gate, Blocking, FlowControl, ClientInfo, asyncio.Protocol):
    """Connection state plus the dispatcher for its commands.

    The per-command gate (client_gate.py), blocking (client_blocking.py), flow
    control (client_flow.py) and CLIENT LIST's line (client_info.py) are mixins
    over this state; the read, dispatch and reply path stays here."""

    #: The replica's link to its primary (CLIENT KILL TYPE master; replication/replica.py).
    is_primary_link = False

    def __init__(self, server: "CacheServer") -> None:
        self.server = server
        self.keyspace = server.keyspace
        self.table = server.command_table
        self.id = server.next_client_id()
        self.transport: Optional[asyncio.Transport] = None
        self.parser = make_request_parser(server.config, server.parser_kind)
        self.addr = ""
        self.laddr = ""
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.db = self.keyspace.dbs[0]
        self.resp3 = False
        #: The ACL user (server/acl.py); authenticated at once when it needs no password.
        self.user = server.acl.default
        self.authenticated = self.user.enabled and "nopass" in self.user.flags
        self.created = time.time()
        self.last_active = time.monotonic()
        self.last_command: Any = None  # spec of the last command run
        self.closing = False
        self.closed = False
        #: Write propagation override: what the log should record for the current command.
        self.rewrite: Optional[List[List[bytes]]] = None
        # MULTI state (transactions module)
        self.in_multi = False
        self.multi_queue: List[List[bytes]] = []
        self.multi_error = False
        self.in_exec = False  # EXEC is running the queue
        self.exec_plain = False  # no gate for EXEC's commands (Gate.update_restricted)
        self.watching: Dict[Any, Set[bytes]] = {}  # database -> keys WATCHed there
        self.watch_dirty = False
        # Pub/sub state (pubsub module)
        self.channels: Set[bytes] = set()
        self.patterns: Set[bytes] = set()
        self.shard_channels: Set[bytes] = set()
        # CLIENT REPLY OFF / SKIP (commands/client_control.py), CLIENT NO-EVICT
        self.reply_off = False
        self.skip_next = False
        self.no_evict = False
        self.muting = False  # running a muted command (_muted)
        # Blocking state
        self.blocked = False
        self.block_state: Any = None
        self.pending: Deque[List[bytes]] = deque()
        self.reading_paused = False
        self.write_paused = False
        self.share_scheduled = False  # a share of a big read is due this loop turn
        #: CLIENT TRACKING state (server/tracking.py), None when off.
        self.tracking: Any = None
        #: True when any per-command gate applies (auth, ACL, MULTI, pub/sub, blocked,
        #: some client tracking keys, a replica's write gate).
        self.restricted = not self.authenticated or not self.user.full or server.tracking_on \
            or server.replica_gate is not None
        self.out: List[bytes] = []
        #: Bytes of an incomplete request the parser held after the last read.
        self.partial = 0

    # -- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is not None:
            # The loop's transport takes over from the PendingTransport this client
            # got at accept (sock_transport.attach_to_loop): admitted and counted then.
            self.transport = transport  # type: ignore[assignment]
            if self.closed:
                transport.close()
            return
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.addr = _format_addr(peer)
        self.laddr = _format_addr(sock)
        server = self.server
        refusal = server.admission_error(self, peer)
        if refusal:
            transport.write(b"-%s\r\n" % refusal.encode())
            transport.close()
            self.closed = True
            server.stats["rejected_connections"] += 1
            return
        server.clients[self.id] = self
        server.stats["total_connections_received"] += 1
        self.parser.authenticated = self.authenticated
        keepalive = server.config["tcp-keepalive"]
        if keepalive:
            set_keepalive(transport.get_extra_info("socket"), keepalive)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        self.pending.clear()  # as Redis frees a client: what it queued never runs
        self.server.client_gone(self)


    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        server = self.server
        self.last_active = server.clock
        parser = self.parser
        try:
            commands = parser.parse(data)
        except ProtocolError as exc:
            before = getattr(exc, "commands", ())
            ran = self.run(before, self.out)  # as Redis: run what came before
            if exc.__class__ is UnauthenticatedLimit and self.authenticated \
                    and not (self.closing or self.closed):
                # A pipelined AUTH authenticated the client: Redis checks each
                # request when it reaches it, so parsing resumes at this one.
                self.pending.extend(before[ran:])  # behind a blocked command
                self.partial = 1  # what follows is not this read's bytes alone
                self.data_received(b"")
                return
            self.protocol_error(str(exc))
            return
        buffered = parser.buffered()
        # ``data`` holds exactly ``commands`` when no request straddles either end.
        whole = not self.partial and not buffered
        self.partial = buffered
        if buffered > server.query_check:  # the lower of the two limits below
            if buffered > server.query_buffer_limit:
                log.warning("closing client %s: query buffer over client-query-buffer-limit",
                            self.addr)
                server.stats["client_query_buffer_limit_disconnections"] += 1
                self.close_now()
                return
            if server.client_memory.big_query(self):  # maxmemory-clients evicted it
                return
        if server.gated:
            # The memory limit counts request bytes too (every read's, a big value's
            # first parts too): once they pass the room left, the next write checks.
            left = server.oom_bytes = server.oom_bytes - len(data)
            if left < 0:
                server.oom_credit = 0
        if not commands:
            return
        server.stats["total_commands_processed"] += len(commands)
        if self.blocked or self.pending:
            self.pending.extend(commands)
            if len(self.pending) > _MAX_PENDING:
                self._pause_reading()
            return
        if len(commands) > FAIR_SHARE:
            # A big batch runs a share a loop turn, and this client is not read
            # meanwhile, so other clients' requests are served in between.
            self.pending.extend(commands[FAIR_SHARE:])
            commands = commands[:FAIR_SHARE]
            whole = False
            self._pause_reading()
            self._schedule_share()
        out = self.out
        ran = self.run(commands, out)
        if ran < len(commands):  # blocked or closing: the rest waits, before any share
            self.pending.extendleft(reversed(commands[ran:]))
            if len(self.pending) > _MAX_PENDING:
                self._pause_reading()
        if server.before_reply:
            # The log and the replication stream take this read's writes, then the
            # replies follow. The bytes can stand for the writes only if whole and
            # plain multibulk (see the parser's ``unusual``).
            if parser.unusual:
                parser.unusual = 0
                whole = False
            server.log_read(self, data if whole else None, commands)
        elif out and not (self.closing or self.closed):
            # flush(), inlined for the common case.
            reply = b"".join(out) if len(out) > 1 else out[0]
            out.clear()
            self.transport.write(reply)  # type: ignore[union-attr]
        else:
            self.flush()

    # -- output -----------------------------------------------------------------

    def flush(self) -> None:
        out = self.out
        if out:
            if self.server.before_reply:
                # Persistence (log on): replies wait until this batch's log record
                # is written (appendfsync always: and fsynced once, group commit);
                # then it sends them and closes the client if closing.
                self.server.defer_reply(self)
                return
            data = b"".join(out) if len(out) > 1 else out[0]
            out.clear()
            if not self.closed:
                self.transport.write(data)  # type: ignore[union-attr]
        if self.closing and not self.closed:
            self.close_now()

    def send(self, reply: Any) -> None:
        """Write one reply now (pub/sub messages, unblocked clients)."""
        if self.closed:
            return
        encode_reply(reply, self.out, self.resp3)
        self.flush()

    def close_now(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def protocol_error(self, text: str) -> None:
        count_error(self.server, "ERR")
        # The text may quote a byte of the request: as Redis, sent raw (latin-1),
        # with CR and LF as spaces so the reply stays one line.
        line = text.replace("\r", " ").replace("\n", " ").encode("latin-1", "replace")
        self.out.append(b"-ERR %s\r\n" % line)
        log.debug("protocol error from %s: %s", self.addr, text)
        self.closing = True
        self.flush()

    # -- dispatch ---------------------------------------------------------------

    def execute(self, args: List[bytes], out: List[bytes]) -> None:
        """Run one command and append its reply to ``out``."""
        self.run((args,), out)

    def run(self, commands: Sequence[List[bytes]], out: List[bytes]) -> int:
        """Run ``commands`` in order, appending each reply to ``out``.

        Returns how many ran: fewer than all when one blocked the client or
        made it close. One call per read rather than per command: on the
        pipelined path the call itself is a tenth of a command's cost.
        """
        table = self.table
        keyspace = self.keyspace
        server = self.server
        ran = 0
        count = len(commands)
        remaining = iter(commands)
        for args in remaining:
            ran += 1
            spec = table.get(args[0])
            if spec is None:
                name = args[0]
                if name.__class__ is not bytes:
                    self.protocol_error("Protocol error: expected '$', got something else")
                    return ran
                spec = table.get(name.lower())
                if spec is None:
                    if self.in_multi:
                        self.multi_error = True
                    unknown = errors.unknown_command(args)
                    count_error(server, unknown.text)
                    out.append(b"-%s\r\n" % error_text(unknown))
                    continue
            # A run handler for a run of two or more (one costs it more than it saves).
            if ran < count and spec.run_handler is not None and not self.restricted \
                    and not server.loading:
                done = spec.run_handler(self, commands, ran - 1, out)
                if done:
                    spec.calls += done
                    self.last_command = spec
                    if done > 1:  # skip what the run handler took
                        next(islice(remaining, done - 2, None), None)
                        ran += done - 1
                    continue
            try:
                arity = spec.arity
                argc = len(args)
                if (argc != arity) if arity > 0 else (argc < -arity):
                    if self.in_multi:
                        self.multi_error = True
                    if spec.name == "exec":
                        raise _exec_rejected(self, errors.wrong_arity(spec.fullname))
                    raise errors.wrong_arity(spec.fullname)
                if spec.subcommands and argc > 1:
                    spec = self._subcommand(spec, args)
                if self.restricted or server.gated:
                    if not self.restricted and not server.loading:
                        # Only the memory limit applies: spend the write credit the
                        # eviction module grants, and check for real when it runs out
                        # (the credit is meaningless, and harmless, without a limit).
                        if spec.denyoom:
                            credit = server.oom_credit - 1
                            server.oom_credit = credit
                            if credit < 0 and server.oom_check is not None:
                                server.oom_check(self)
                        # And a persistence error (MISCONF) refuses writes and PING.
                        if server.write_denied is not None \
                                and (spec.write or spec.fullname == "ping"):
                            raise CommandError(server.write_denied)
                    else:
                        try:
                            reply = self._gate(spec, args)
                        except CommandError as exc:
                            if spec.name == "exec":
                                raise _exec_rejected(self, exc) from None
                            raise
                        if reply is not None:
                            if reply is not BLOCKED:
                                encode_reply(reply, out, self.resp3)
                            if self.blocked or self.closing:
                                return ran
                            continue
                self.last_command = spec
                if spec.write:
                    dirty = keyspace.dirty
                    reply = spec.handler(self, args)
                    if keyspace.dirty != dirty:
                        if self.rewrite is None and self.db is keyspace.stage_db:
                            keyspace.stage.append(args)  # the log's shortcut, no call
                        else:  # Keyspace.propagate, inlined: this runs for every write
                            for propagate in keyspace.propagators:
                                propagate(self.db.id, self.rewrite or [args])
                            # Only here: keys are ready only while blocked clients'
                            # write watcher propagates, which turns the shortcut off.
                            if server.ready_keys and not self.in_exec:
                                serve_ready(server)  # as Redis: before the next command
                    self.rewrite = None
                else:
                    reply = spec.handler(self, args)
                spec.calls += 1
            except CommandError as exc:
                self.rewrite = None
                spec.failed += 1
                count_error(server, exc.text)
                if self.in_multi and spec.name not in _MULTI_IMMEDIATE:
                    self.multi_error = True
                out.append(b"-%s\r\n" % error_text(exc))
                if self.blocked or self.closing:
                    return ran
                continue
            except Exception:  # a bug must not take the server down
                log.exception("error running %r", args[:3])
                count_error(server, "ERR")
                out.append(b"-ERR internal error running '%s'\r\n" % spec.fullname.encode())
                if self.blocked or self.closing:
                    return ran
                continue
            cls = reply.__class__
            if cls is bytes:
                n = len(reply)
                # Pieces, joined once per read: cheaper than formatting each reply.
                out += (BULK_HEADERS[n] if n < 4096 else b"$%d\r\n" % n, reply, b"\r\n")
            elif cls is Raw:
                out.append(reply)
            elif cls is int:
                out.append(b":%d\r\n" % reply)
            elif reply is None:
                out.append(b"_\r\n" if self.resp3 else b"$-1\r\n")
            elif reply is not BLOCKED:
                encode_reply(reply, out, self.resp3)
            if self.blocked or self.closing:
                return ran
        return ran

    def _subcommand(self, spec: Any, args: List[bytes]) -> Any:
        sub = spec.subcommands.get(args[1]) or spec.subcommands.get(args[1].lower())
        if sub is None:
            raise errors.unknown_subcommand(args)
        arity = sub.arity
        if (len(args) != arity) if arity > 0 else (len(args) < -arity):
            raise errors.wrong_arity(sub.fullname)
        return sub


class BufferedClient(Client, asyncio.BufferedProtocol):
    """A Client whose reads land in its server's one receive buffer (PyPy's asyncio).

    asyncio's transport calls ``sock.recv(256 kB)`` per read, and on PyPy that
    is a 256 kB raw allocation per read, some of which wait for a major
    collection: 100k lone GETs ran 24 more major collections than this class
    does, at 21-22 against 13-16 CPU us per request (docs/pypy.md).
    ``recv_into`` a buffer allocated once, then a copy of what arrived, cost a
    small young object. One buffer serves every client of a server: asyncio
    fills it and calls ``buffer_updated`` before any other read.
    """

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server.read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.server.read_view[:nbytes].tobytes())
