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
import socket
import time
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Any, Callable, Deque, List, Optional, Sequence, Set

from ..protocol import ProtocolError, ReplyError, UnauthenticatedLimit, make_request_parser
from ..protocol.resp import BULK_HEADERS, Raw, encode_reply, error_text
from . import errors
from .errors import CommandError
from .stats import count_error
from .types.blocking import serve_ready

if TYPE_CHECKING:
    from .app import CacheServer

log = logging.getLogger("distcache.server")


class _Blocked:
    """Returned by a handler that parks the client (BLPOP with no data)."""

    __slots__ = ()


BLOCKED = _Blocked()

#: Commands a client may send while subscribed in RESP2.
_PUBSUB_ALLOWED = frozenset(["subscribe", "unsubscribe", "psubscribe", "punsubscribe",
                             "ping", "quit", "reset", "ssubscribe", "sunsubscribe"])
#: Commands a blocked client may have waiting before the server stops reading from it.
_MAX_PENDING = 1024
#: Most commands of one client run in one loop turn: a read holding more runs them
#: in shares, one a turn, so a burst of tiny requests takes turns with the others.
FAIR_SHARE = 1000
#: Commands that run immediately inside MULTI instead of being queued.
_MULTI_IMMEDIATE = frozenset(["exec", "discard", "multi", "watch", "quit", "reset"])


class Client(asyncio.Protocol):
    """Connection state plus the dispatcher for its commands."""

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
        self.watching: Set[Any] = set()
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

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.transport is not None and not self.reading_paused:
            self.transport.pause_reading()
            self.reading_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.pending and not self.blocked:
            self._schedule_share()  # it reads again once nothing waits
            return
        if self.transport is not None and self.reading_paused and not self.blocked:
            self.reading_paused = False
            self.transport.resume_reading()

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
        if buffered > server.query_buffer_limit:
            log.warning("closing client %s: query buffer over client-query-buffer-limit",
                        self.addr)
            server.stats["client_query_buffer_limit_disconnections"] += 1
            self.close_now()
            return
        if not commands:
            return
        if server.gated:
            # The memory limit counts request bytes too: once a read brings more
            # than the room left, the next write checks for real.
            left = server.oom_bytes = server.oom_bytes - len(data)
            if left < 0:
                server.oom_credit = 0
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
            # Persistence: the log takes this read's writes, then the replies follow.
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

    def _schedule_share(self) -> None:
        if not self.share_scheduled:
            self.share_scheduled = True
            self.server.loop.call_soon(self._run_share)

    def _run_share(self) -> None:
        """Run the next FAIR_SHARE waiting commands; read again once none wait."""
        self.share_scheduled = False
        if self.closed or self.closing or self.blocked or self.write_paused:
            return  # unblock() or resume_writing() carries on
        pending = self.pending
        batch = [pending.popleft() for _ in range(min(FAIR_SHARE, len(pending)))]
        if batch:
            ran = self.run(batch, self.out)
            if ran < len(batch):
                pending.extendleft(reversed(batch[ran:]))
            if self.server.before_reply:
                self.server.log_read(self, None, batch)
            else:
                self.flush()
        if pending:
            if not (self.blocked or self.closing):
                self._schedule_share()
        elif self.reading_paused and not (self.write_paused or self.closed
                                          or self.transport is None):
            self.reading_paused = False
            self.transport.resume_reading()

    def _pause_reading(self) -> None:
        if self.transport is not None and not self.reading_paused:
            self.transport.pause_reading()
            self.reading_paused = True

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

    def _gate(self, spec: Any, args: List[bytes]) -> Any:
        """Checks that only apply in some states; returns a reply to stop the command."""
        server = self.server
        if (self.reply_off or self.skip_next) and not self.muting:
            return self._muted(args)
        if server.tracking_on:  # which client runs, for NOLOOP and deferred invalidations
            server.tracking.enter(self)
        if not self.authenticated and not spec.no_auth:
            raise CommandError(errors.NOAUTH)
        if server.loading and not spec.loading_ok:
            raise CommandError(errors.LOADING)
        if not self.user.full:
            self._acl_check(spec, args)
        if server.replica_gate is not None and not self.in_exec:
            server.replica_gate(self, spec, args)  # READONLY, MASTERDOWN (replication/replica.py)
        name = (spec.parent or spec).name
        denied = server.write_denied  # a persistence error (MISCONF): no writes, no PING
        if self.in_multi and name not in _MULTI_IMMEDIATE and not self.in_exec:
            if spec.no_multi:
                raise CommandError("ERR Command not allowed inside a transaction")
            if server.pause.mode is not None and server.pause.holds(spec, self):
                return server.pause.park(self, args)  # as Redis: before it is queued
            if server.oom_check is not None:  # as Redis: no queueing while out of memory
                server.oom_check(self)
            if denied is not None and (spec.write or name == "ping"):
                raise CommandError(denied)  # not queued; EXEC will abort
            if server.replicas_refusal is not None:
                from .replication.guard import check_queued
                check_queued(self, spec, args)  # NOREPLICAS: not queued; EXEC will abort
            self.multi_queue.append(args)
            return _QUEUED
        if denied is not None and not self.in_exec:
            if spec.write or name == "ping":
                raise CommandError(denied)
            if name == "exec" and self.in_multi:  # as Redis: EXEC of a queued write
                from .commands.transactions import queue_has
                if queue_has(self, self.multi_queue, "write"):
                    raise CommandError(denied)
        if server.replicas_refusal is not None and name == "exec" and self.in_multi \
                and not self.in_exec:
            from .replication.guard import check_exec
            check_exec(self)  # NOREPLICAS: EXECABORT, as Redis's processCommand
        if (self.channels or self.patterns or self.shard_channels) and not self.resp3 \
                and name not in _PUBSUB_ALLOWED:
            raise CommandError(
                f"ERR Can't execute '{spec.fullname}': only (P|S)SUBSCRIBE / "
                "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
        if spec.denyoom and server.oom_check is not None and not self.in_exec:
            server.oom_check(self)
        if self.tracking is not None:
            server.tracking.remember(self, spec, args)
        return None

    def _muted(self, args: List[bytes]) -> Any:
        """Run a command whose reply CLIENT REPLY OFF or SKIP drops."""
        skipping = self.skip_next and not self.reply_off
        if skipping:
            self.skip_next = False
        self.muting = True
        out: List[bytes] = []
        try:
            self.execute(args, out)
        finally:
            self.muting = False
            self.update_restricted()
        if not self.reply_off and not skipping:  # CLIENT REPLY ON ended OFF: its OK goes out
            return Raw(b"".join(out))
        return BLOCKED

    def _acl_check(self, spec: Any, args: List[bytes]) -> None:
        """A limited user's permission check: NOPERM and an ACL LOG entry if denied."""
        from . import acl
        result, index = acl.ACL.check(self.user, spec, args)
        if result == acl.OK:
            return
        obj = spec.fullname.encode() if result == acl.DENIED_CMD else args[index]
        self.server.acl.add_log(self, result, obj, self.user.name)
        if self.in_exec:  # queued while allowed: Redis re-checks at EXEC
            raise CommandError(acl.exec_denied_text(result))
        raise CommandError(acl.noperm_text(result, spec))

    def update_restricted(self) -> None:
        self.restricted = (not self.authenticated or not self.user.full or self.in_multi
                           or bool(self.channels or self.patterns or self.shard_channels)
                           or self.reply_off or self.skip_next or self.server.tracking_on
                           or self.server.replica_gate is not None)
        self.parser.authenticated = self.authenticated

    # -- blocking (used by blocking list/zset commands) -------------------------

    def block(self, timeout: float, on_timeout: Callable[[], Any], state: Any = None) -> Any:
        """Park this client until :meth:`unblock` or the timeout (0: forever)."""
        # Reading goes on while blocked (commands wait in ``pending``), so a
        # client that disconnects while blocked is noticed, as in Redis.
        self.blocked = True
        handle = None
        if timeout > 0:
            loop = asyncio.get_event_loop()
            handle = loop.call_later(timeout, self._block_timeout, on_timeout)
        self.block_state = (state, handle, on_timeout)
        self.server.blocked_clients += 1
        return BLOCKED

    def _block_timeout(self, on_timeout: Callable[[], Any]) -> None:
        if self.blocked:
            self.unblock(on_timeout())

    def unblock_now(self, error: Optional[str] = None) -> bool:
        """CLIENT UNBLOCK: end the wait as a timeout would, or with ``error``."""
        if not self.blocked or self.block_state is None or self.block_state[0] == "pause":
            return False
        reply = self.block_state[2]()  # detaches the waiter; the timeout reply
        self.unblock(reply if error is None else ReplyError(error))
        return True

    def unblock(self, reply: Any) -> None:
        """Deliver the reply a parked client waited for and resume its commands."""
        if not self.blocked:
            return
        state = self.block_state
        if state and state[1] is not None:
            state[1].cancel()
        self.blocked = False
        self.block_state = None
        self.server.blocked_clients -= 1
        if reply.__class__ is ReplyError:
            count_error(self.server, reply.code)
        encode_reply(reply, self.out, self.resp3)
        self.flush()
        if self.pending:
            # What it sent meanwhile runs once every ready key has been served,
            # not before other waiters (Redis's processUnblockedClients).
            asyncio.get_event_loop().call_soon(self._resume)
        else:
            self._resume()

    def _resume(self) -> None:
        """Run the commands that waited while this client was blocked."""
        while self.pending and not self.blocked and not self.closing and not self.closed:
            self.execute(self.pending.popleft(), self.out)
        self.flush()
        if not self.blocked and not self.pending and self.reading_paused \
                and not self.write_paused and self.transport is not None and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()

    # -- introspection ------------------------------------------------------------

    def info_line(self) -> str:
        """One CLIENT LIST line, with Redis's fields."""
        now = time.time()
        flags = "N"
        if self.in_multi:
            flags = "x"
        elif self.blocked:
            flags = "b"
        elif self.channels or self.patterns or self.shard_channels:
            flags = "P"
        elif self in self.server.monitoring.monitors:
            flags = "O"
        cmd = self.last_command.fullname if self.last_command is not None else "NULL"
        return (f"id={self.id} addr={self.addr} laddr={self.laddr} fd=-1 "
                f"name={self.name.decode('utf-8', 'replace')} age={int(now - self.created)} "
                f"idle={int(time.monotonic() - self.last_active)} flags={flags} "
                f"db={self.db.id} sub={len(self.channels)} psub={len(self.patterns)} "
                f"ssub={len(self.shard_channels)} "
                f"multi={len(self.multi_queue) if self.in_multi else -1} qbuf=0 qbuf-free=0 "
                f"argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 "
                f"events=r cmd={cmd} user={self.user.name.decode('utf-8', 'replace')} "
                f"redir={self.tracking.redirect if self.tracking else -1} "
                f"resp={3 if self.resp3 else 2} "
                f"lib-name={self.lib_name.decode('utf-8', 'replace')} "
                f"lib-ver={self.lib_ver.decode('utf-8', 'replace')}")


def _exec_rejected(c: Client, exc: CommandError) -> CommandError:
    """EXEC refused before it runs (arity, auth, MISCONF, subscriber mode...): Redis
    answers EXECABORT and discards the transaction and the watches, in MULTI or not."""
    from .commands.transactions import exec_abort
    return exec_abort(c, exc)


def set_keepalive(sock: Any, interval: int) -> None:
    """TCP keepalive as Redis's anetKeepAlive sets it: the first probe after
    ``interval`` idle seconds, then every third of it, three before giving up."""
    if not hasattr(sock, "setsockopt"):  # no socket (test and benchmark transports)
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", interval), ("TCP_KEEPINTVL", max(interval // 3, 1)),
                            ("TCP_KEEPCNT", 3)):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError as exc:  # not a TCP socket, or refused
        log.debug("tcp-keepalive not applied: %s", exc)


def _format_addr(addr: Any) -> str:
    if not addr:
        return ""
    if isinstance(addr, tuple):
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(addr)


from ..protocol.resp import QUEUED as _QUEUED  # noqa: E402
