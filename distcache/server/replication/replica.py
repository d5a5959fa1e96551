"""The replica side of replication, in Redis 7.0's protocol.

A :class:`ReplicaLink` is one server's link to its primary: it connects, runs
Redis's handshake (PING, AUTH, REPLCONF listening-port / ip-address / capa,
PSYNC), loads a full sync into a fresh dataset (``replica_load.py``, off the
event loop) swapped in only once complete, then applies the command stream
through a :class:`MasterClient` whose replies go nowhere, counting the bytes
applied (the replication offset). It acknowledges that offset every second and
on ``REPLCONF GETACK``. A dropped link is retried once a second, with PSYNC of
the history it holds, so the primary may answer ``+CONTINUE``.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from ..connection import Client
from ..errors import CommandError
from . import history
from .local_keys import LocalExpires
from .replica_load import FullSyncLoader, ReplicationError, swap_in

if TYPE_CHECKING:
    from ..app import CacheServer

log = logging.getLogger("distcache.replication")

READONLY = "READONLY You can't write against a read only replica."
MASTERDOWN = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
#: Longest line (a status reply, a ``$`` header) accepted from a primary.
MAX_LINE = 64 * 1024
READ_SIZE = 64 * 1024
RETRY_SECONDS = 1.0


class _NullTransport:
    """Where the master client's replies go: nowhere, as Redis never answers its primary."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def resp_size(args: List[bytes]) -> int:
    """Bytes of one command in RESP multibulk form (what a primary sends)."""
    size = len(b"*%d\r\n" % len(args))
    for arg in args:
        size += len(b"$%d\r\n" % len(arg)) + len(arg) + 2
    return size


def _primary_user() -> Any:
    from ..acl import User
    user = User(b"(primary)")
    user.apply(b"on", False)
    for rule in (b"nopass", b"allkeys", b"allchannels", b"allcommands"):
        user.apply(rule, False)
    user.refresh()
    return user


class MasterClient(Client):
    """The primary's connection as a client: runs what it sends, replies to no one.

    Listed among the clients (CLIENT LIST, flags=M); closing it (CLIENT KILL TYPE
    master) drops the link, which is retried with PSYNC as Redis does."""

    is_primary_link = True

    def __init__(self, server: "CacheServer", addr: str,
                 writer: Optional[asyncio.StreamWriter] = None) -> None:
        super().__init__(server)
        self.transport = _NullTransport()  # type: ignore[assignment]
        self.writer = writer
        self.addr = addr
        self.name = b""
        # As Redis's master client: no ACL user limits what the primary sends.
        self.user = _primary_user()
        self.authenticated = True
        self.parser.authenticated = True
        self.restricted = True  # the general path: MULTI, SELECT, the replica gate
        #: Bytes of whole commands received (slave_read_repl_offset) and applied
        #: (slave_repl_offset: not inside a MULTI that has not run yet).
        self.read_offset = 0
        self.offset = 0
        #: Received bytes not applied yet (a part of a command, a MULTI waiting for
        #: its EXEC): they reach the backlog and sub-replicas once applied.
        self.unfed = bytearray()

    def update_restricted(self) -> None:
        super().update_restricted()
        self.restricted = True

    def apply(self, data: bytes) -> bool:
        """Run the whole commands of ``data``; True if one was ``REPLCONF GETACK``.

        Raises ReplicationError for bytes that are not the protocol.
        """
        from ...protocol import ProtocolError
        parser = self.parser
        before = parser.buffered()
        start = self.read_offset
        try:
            commands = parser.parse(data)
        except ProtocolError as exc:
            # As a client's: what came before the bad bytes runs, then the link drops.
            whole = list(getattr(exc, "commands", ()))
            self.read_offset += sum(map(resp_size, whole))
            self._run_from_primary(whole)
            self._advance(start, whole)
            raise ReplicationError(f"protocol error in the replication stream: {exc}")
        buffered = parser.buffered()
        if buffered > self.server.query_buffer_limit:  # a hostile primary's endless bulk
            raise ReplicationError("the master's stream is over client-query-buffer-limit")
        self.read_offset += len(data) + before - buffered
        getack = self._run_from_primary(commands) if commands else False
        self._advance(start, commands)
        return getack

    def _advance(self, start: int, commands: List[List[bytes]]) -> None:
        """The applied offset after ``commands`` (which began at ``start``) ran."""
        if not self.in_multi:
            self.offset = self.read_offset
            return
        # As Redis: the offset stops before a MULTI whose EXEC has not come, so a
        # snapshot or a PSYNC never splits a transaction.
        for i in range(len(commands) - 1, -1, -1):
            if commands[i][0].lower() == b"multi":
                self.offset = start + sum(resp_size(c) for c in commands[:i])
                return

    def _run_from_primary(self, commands: List[List[bytes]]) -> bool:
        """Run ``commands``, replies dropped, writes logged; True if one was GETACK."""
        getack = False
        run = []
        for args in commands:
            name = args[0]
            if len(name) == 8 and name.lower() == b"replconf":
                if len(args) > 1 and args[1].lower() == b"getack":
                    getack = True
                continue
            run.append(args)
        server = self.server
        server.stats["total_commands_processed"] += len(run)
        link = server.replication.link
        if link is not None and link.local_keys.pending:
            link.local_keys.settle()  # before the primary's commands touch those keys
        keyspace = server.keyspace
        keyspace.hold_expired = False  # the primary's commands see every key
        try:
            self.run(run, self.out)
        finally:
            keyspace.hold_expired = True
        self.out.clear()
        if server.before_reply:
            server.log_read(self, None, run)
        return getack

    def info_line(self, args: Optional[List[bytes]] = None) -> str:
        return super().info_line(args).replace(" flags=N ", " flags=M ", 1)

    @property  # type: ignore[override]
    def last_active(self) -> float:
        return self.server.clock  # never idle: ``timeout`` does not apply to a primary

    @last_active.setter
    def last_active(self, value: float) -> None:
        pass

    def close_now(self) -> None:
        if not self.closed:
            self.closed = True
            if self.writer is not None:
                self.writer.close()  # the link's read ends, and it is retried


class ReplicaLink:
    """The link to one primary: connect, handshake, sync, stream; retried until stopped."""

    def __init__(self, server: "CacheServer", host: str, port: int) -> None:
        self.server = server
        self.host = host
        self.port = port
        #: Redis's repl_state, as ROLE names it: connect, connecting, handshake, sync,
        #: connected.
        self.state = "connect"
        self.client: Optional[MasterClient] = None
        self.writer: Optional[asyncio.StreamWriter] = None
        self.last_io = 0.0
        self.down_since = 0.0  # 0: never was up
        self.loader: Optional[FullSyncLoader] = None
        self.task: Optional[asyncio.Task] = None
        self.stopped = False
        #: Made by the ``replicaof`` directive: the snapshot loaded may name its
        #: place in the primary's history (history.py).
        self.from_startup = False
        #: Keys our own clients gave a TTL (a writable replica expires them).
        self.local_keys = LocalExpires(server)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        self.task = self.server.loop.create_task(self._run())

    def stop(self) -> None:
        self.stopped = True
        if self.task is not None:
            self.task.cancel()
        self._drop()

    async def _run(self) -> None:
        while self.server.loading:  # the dataset being loaded is what PSYNC offers
            await asyncio.sleep(0.05)
        if self.from_startup:
            history.restore(self.server)
        while not self.stopped:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                    asyncio.LimitOverrunError, ReplicationError, ValueError) as exc:
                log.warning("replication from %s:%d: %s", self.host, self.port,
                            exc or exc.__class__.__name__)
            except Exception:  # a bug must not end the retries
                log.exception("replication from %s:%d failed", self.host, self.port)
            self._drop()
            if self.stopped:
                return
            self.state = "connect"
            await asyncio.sleep(RETRY_SECONDS)

    def _drop(self) -> None:
        if self.state == "connected":
            self.down_since = time.time()
            self._keep_history()
        if self.loader is not None:
            self.loader.abort()
            self.loader = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        client, self.client = self.client, None
        if client is not None:
            client.closed = True
            self.server.client_gone(client)
        if not self.stopped:
            self.state = "connect"

    def _keep_history(self) -> None:
        """What a later PSYNC offers: the history applied so far (Redis's cached master)."""
        client = self.client
        if client is not None:
            self.server.replication.master_repl_offset = client.offset

    # -- one connection -------------------------------------------------------------

    async def _session(self) -> None:
        config = self.server.config
        timeout = config["repl-timeout"]
        self.state = "connecting"
        log.info("connecting to MASTER %s:%d", self.host, self.port)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=MAX_LINE), timeout)
        self.writer = writer
        self.last_io = time.monotonic()
        self.state = "handshake"
        log.info("MASTER <-> REPLICA sync started")
        reply = await self._call(reader, [b"PING"], timeout)
        if reply.startswith(b"-") and not reply.startswith(
                (b"-NOAUTH", b"-NOPERM", b"-ERR operation not permitted")):
            raise ReplicationError(f"error reply to PING from master: {_text(reply)}")
        if config["masterauth"]:
            auth = [b"AUTH", config["masterauth"].encode()]
            if config["masteruser"]:
                auth.insert(1, config["masteruser"].encode())
            reply = await self._call(reader, auth, timeout)
            if reply.startswith(b"-"):
                raise ReplicationError(f"unable to AUTH to MASTER: {_text(reply)}")
        port = config["replica-announce-port"] or self.server.port
        await self._call(reader, [b"REPLCONF", b"listening-port", b"%d" % port], timeout)
        if config["replica-announce-ip"]:
            await self._call(reader, [b"REPLCONF", b"ip-address",
                                      config["replica-announce-ip"].encode()], timeout)
        await self._call(reader, [b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"], timeout)
        state = self.server.replication
        if state.has_history():
            offer = [state.replid.encode(), b"%d" % (state.master_repl_offset + 1)]
        else:
            offer = [b"?", b"-1"]
        log.info("trying a partial resynchronization (request %s:%s)",
                 offer[0].decode(), offer[1].decode())
        reply = await self._call(reader, [b"PSYNC"] + offer, timeout)
        if reply.startswith(b"+FULLRESYNC"):
            words = reply.split()
            if len(words) != 3 or len(words[1]) != 40:
                raise ReplicationError(f"bad FULLRESYNC reply: {_text(reply)}")
            leftover = await self._full_sync(reader, words[1].decode(), int(words[2]), timeout)
        elif reply.startswith(b"+CONTINUE"):
            leftover = b""
            self._continue(reply)
        else:
            raise ReplicationError(f"unexpected reply to PSYNC from master: {_text(reply)}")
        await self._stream(reader, leftover, timeout)

    async def _call(self, reader: asyncio.StreamReader, args: List[bytes],
                    timeout: float) -> bytes:
        """Send one command, return its one-line reply (keepalive newlines skipped)."""
        assert self.writer is not None
        self.writer.write(b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        return await self._line(reader, timeout)

    async def _line(self, reader: asyncio.StreamReader, timeout: float) -> bytes:
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout)
            if not line:
                raise EOFError("connection closed by the master")
            self.last_io = time.monotonic()
            line = line.rstrip(b"\r\n")
            if line:  # a bare newline keeps the link alive while the primary prepares
                return line

    def _continue(self, reply: bytes) -> None:
        """+CONTINUE [new replid]: a partial resync; a new id means the primary was
        promoted: our history so far becomes replid2 (PSYNC2)."""
        state = self.server.replication
        words = reply.split()
        changed = len(words) > 1 and len(words[1]) == 40 and words[1].decode() != state.replid
        if changed:
            new = words[1].decode()
            state.replid2 = state.replid
            state.second_replid_offset = state.master_repl_offset + 1
            state.replid = new
            log.info("master replication ID changed to %s", new)
        self._connected(state.master_repl_offset)
        for hook in state.continue_hooks:
            hook(changed)
        log.info("MASTER <-> REPLICA sync: master accepted a partial resynchronization")

    async def _full_sync(self, reader: asyncio.StreamReader, replid: str, offset: int,
                         timeout: float) -> bytes:
        """Receive the RDB payload, load it aside, swap it in; returns stream bytes
        that came after it."""
        self.state = "sync"
        log.info("full resync from master: %s:%d", replid, offset)
        header = await self._line(reader, timeout)
        if not header.startswith(b"$"):
            raise ReplicationError(f"bad protocol from MASTER, the first byte is not '$': "
                                   f"{_text(header[:80])}")
        loader = self.loader = FullSyncLoader(self.server)
        leftover = await loader.receive(reader, header, timeout, self._touch)
        dbs = await loader.result()
        stream_db = loader.stream_db()
        self.loader = None
        swap_in(self.server, dbs, loader.functions)
        self.local_keys.clear()
        state = self.server.replication
        state.replid = replid
        state.clear_replid2()
        state.master_repl_offset = offset
        state.synced = True
        for hook in state.full_sync_hooks:
            hook()
        self._after_full_sync()
        self._connected(offset)
        assert self.client is not None
        self.client.db = self.server.keyspace.dbs[stream_db]
        log.info("MASTER <-> REPLICA sync: finished with success (%d keys)",
                 self.server.keyspace.total_keys())
        return leftover

    def _after_full_sync(self) -> None:
        """The log and snapshots must start from the new dataset (Redis restarts its AOF)."""
        persistence = getattr(self.server, "persistence", None)
        if persistence is None:
            return
        try:
            if persistence.log is not None:
                persistence._kill_job()
                persistence.rewrite()
            elif self.server.config["save"]:
                persistence._kill_job()
                persistence.bgsave()
        except Exception as exc:  # the data is in memory; saving is retried by the rules
            log.warning("could not persist the dataset after a full sync: %s", exc)

    def _touch(self) -> None:
        self.last_io = time.monotonic()

    def _connected(self, offset: int) -> None:
        client = self.client = MasterClient(self.server, f"{self.host}:{self.port}",
                                            self.writer)
        client.read_offset = client.offset = offset
        self.server.clients[client.id] = client
        self.state = "connected"
        self.down_since = 0.0

    async def _stream(self, reader: asyncio.StreamReader, data: bytes, timeout: float) -> None:
        """Apply the stream until the link drops; ACK once a second and on GETACK."""
        ack = asyncio.get_running_loop().create_task(self._ack_loop())
        try:
            while True:
                if data:
                    self._apply(data)
                data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
                if not data:
                    raise EOFError("connection closed by the master")
                self.last_io = time.monotonic()
        finally:
            ack.cancel()

    def _apply(self, data: bytes) -> None:
        client = self.client
        assert client is not None
        before = client.offset
        try:
            getack = client.apply(data)
        finally:  # what ran before bad bytes is history too
            self._fed(client, before, data)
        if getack:
            self._ack()

    def _fed(self, client: MasterClient, before: int, data: bytes) -> None:
        state = self.server.replication
        state.master_repl_offset = client.offset
        # The listeners get exactly the bytes applied, so their offsets are ours.
        applied = client.offset - before
        unfed = client.unfed
        if not unfed and applied == len(data):
            chunk = data
        else:
            unfed += data
            chunk = bytes(unfed[:applied])
            del unfed[:applied]
        if chunk:
            for listener in state.stream_listeners:
                listener(chunk)

    def _ack(self) -> None:
        if self.writer is not None and self.client is not None:
            off = b"%d" % self.client.offset
            self.writer.write(b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$%d\r\n%s\r\n" % (len(off), off))

    async def _ack_loop(self) -> None:
        while True:
            self._ack()
            await asyncio.sleep(1.0)

    # -- introspection --------------------------------------------------------------

    def offset(self) -> int:
        return self.client.offset if self.client is not None else -1

    def info_fields(self) -> List[Tuple[str, Any]]:
        """INFO's replica lines, in Redis 7.0's order."""
        config = self.server.config
        up = self.state == "connected"
        state = self.server.replication
        client = self.client
        read_off = client.read_offset if client is not None else state.master_repl_offset
        applied = client.offset if client is not None else state.master_repl_offset
        fields: List[Tuple[str, Any]] = [
            ("master_host", self.host), ("master_port", self.port),
            ("master_link_status", "up" if up else "down"),
            ("master_last_io_seconds_ago",
             int(time.monotonic() - self.last_io) if up else -1),
            ("master_sync_in_progress", 1 if self.state == "sync" else 0),
            ("slave_read_repl_offset", read_off), ("slave_repl_offset", applied)]
        loader = self.loader
        if self.state == "sync":
            # As Redis from +FULLRESYNC on: -1 bytes until the payload's header came.
            total, received = -1, 0
            if loader is not None:
                total = loader.size if loader.size is not None else -1
                received = loader.received
            fields += [("master_sync_total_bytes", total),
                       ("master_sync_read_bytes", received),
                       ("master_sync_left_bytes", total - received if total >= 0 else -1),
                       ("master_sync_perc", "%.2f" % (100 * received / total)
                        if total > 0 else "-1.00"),
                       ("master_sync_last_io_seconds_ago",
                        int(time.monotonic() - self.last_io))]
        if not up:
            fields.append(("master_link_down_since_seconds",
                           int(time.time() - self.down_since) if self.down_since else -1))
        fields += [("slave_priority", config["replica-priority"]),
                   ("slave_read_only", 1 if config["replica-read-only"] else 0),
                   ("replica_announced", 1 if config["replica-announced"] else 0)]
        return fields

    def role_reply(self) -> List[Any]:
        """ROLE's replica form: ["slave", host, port, state, offset]."""
        state = self.state.encode()
        return [b"slave", self.host.encode(), self.port, state, self.offset()]

    # -- the replica gate -------------------------------------------------------------

    def gate(self, client: Any, spec: Any, args: List[bytes]) -> None:
        """READONLY and MASTERDOWN, for every client but the primary's (dispatcher's gate);
        on a writable replica, notes the keys a write may give a TTL (local_keys.py)."""
        if client is self.client:
            return
        config = self.server.config
        if spec.write and config["replica-read-only"]:
            raise CommandError(READONLY)
        if self.state != "connected" and not config["replica-serve-stale-data"] \
                and "stale" not in spec.flags and "stale" not in (spec.parent or spec).flags:
            raise CommandError(MASTERDOWN)
        if self.local_keys.pending:
            self.local_keys.settle()  # the previous write ran
        if (spec.write and not client.in_multi) or (spec.name == "exec" and client.in_multi):
            self.local_keys.note(client, spec, args)


def _text(reply: bytes) -> str:
    return reply.decode("utf-8", "replace")


# -- becoming a replica, or a primary again -----------------------------------------------

def set_primary(server: "CacheServer", host: str, port: int, startup: bool = False) -> bool:
    """Follow ``host:port``; False if already following it (nothing changes).

    At run time a primary that becomes a replica offers its own history in PSYNC;
    at start-up only a snapshot's replication fields make one (replica_state.py)."""
    state = server.replication
    link = state.link
    if link is not None and link.host == host and link.port == port:
        return False
    if link is not None:
        link.stop()
    elif state.role == "master" and not startup:
        state.was_master()
    link = state.link = ReplicaLink(server, host, port)
    link.from_startup = startup
    state.role = "slave"
    server.keyspace.hold_expired = True
    server.replica_gate = link.gate
    for client in list(server.clients.values()):
        client.update_restricted()
    server.config.set("replicaof", f"{host} {port}")
    for hook in state.role_hooks:
        hook()
    if server.loop is not None and server.loop.is_running():
        link.start()
    log.info("REPLICAOF %s:%d enabled", host, port)
    return True


def unset_primary(server: "CacheServer") -> None:
    """REPLICAOF NO ONE: stop following, keep the data, start a new history."""
    state = server.replication
    link = state.link
    if link is None:
        return
    link._keep_history()
    link.stop()
    state.link = None
    state.role = "master"
    state.shift_replid()
    server.keyspace.hold_expired = False
    server.replica_gate = None
    for client in list(server.clients.values()):
        client.update_restricted()
    server.config.set("replicaof", "")
    for hook in state.role_hooks:
        hook()
    log.info("MASTER MODE enabled (user request)")


def install(server: "CacheServer") -> None:
    """The ``replicaof`` directive: follow the primary once the server runs."""
    target = server.config["replicaof"]
    if target:
        host, port = target.split()
        set_primary(server, host, int(port), startup=True)
        server.on_started.append(lambda s: s.replication.link.start()
                                 if s.replication.link is not None else None)
    server.shutdown_hooks.insert(0, lambda save: _stop_link(server))


def _stop_link(server: "CacheServer") -> None:
    link = server.replication.link
    if link is not None:
        link._keep_history()
        link.stop()
        link.stopped = True
