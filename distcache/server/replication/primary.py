"""The primary side of replication: SYNC/PSYNC, the write stream, the backlog, WAIT.

* A replica's connection becomes a :class:`ReplicaClient` when it sends SYNC or
  PSYNC (the object's class changes; nothing else of the connection does), so
  the dispatcher and every other client pay nothing for replication.
* The stream is what the append-only log gets: :meth:`Primary.feed` is a
  ``keyspace.propagators`` entry (added only while a backlog exists, so a
  server that never had a replica keeps the log's shortcut), with ``SELECT``
  when the database changes. Each write is encoded once; once per event-loop
  turn (or before anything reads the offset) the turn's bytes join the backlog
  and ``master_repl_offset`` and leave for the replicas, in one write each.
* Full resync: ``+FULLRESYNC <replid> <offset>``, the RDB from a forked child
  (rdbsync.py), then what was written since the fork. Partial: ``+CONTINUE``
  and the backlog from the asked offset, with PSYNC2's ``replid2``.
* Replicas' output is bounded by the ``replica`` class of
  ``client-output-buffer-limit`` (the stream queued during a sync included).
"""
from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ...persistence.aof import encode_commands, select_bytes
from ...persistence.propagation import rewire, send_replies, verbatim
from ...protocol import ProtocolError
from ..connection import BufferedClient, Client
from .backlog import Backlog
from .guard import WriteGuard
from .rdbsync import SyncJob

if TYPE_CHECKING:
    from ..app import CacheServer
    from .state import ReplicationState

log = logging.getLogger("distcache.replication")

WAIT_BGSAVE, SEND_BULK, WAIT_ACK, ONLINE = "wait_bgsave", "send_bulk", "wait_ack", "online"
_GETACK = [[b"REPLCONF", b"GETACK", b"*"]]
_PING = [[b"PING"]]


class ReplicaClient(Client):
    """A connection that became a replica: it gets the stream, never replies."""

    # Set by Primary.attach (the object already exists as a Client).
    repl_state: str
    repl_ack_offset: int
    repl_ack_time: float
    repl_pending: List[bytes]
    repl_pending_size: int
    repl_soft_since: float
    repl_job: Optional[SyncJob]
    repl_fd: int
    repl_old_protocol: bool
    is_replica = True

    def data_received(self, data: bytes) -> None:
        """REPLCONF ACK and the like: run, with replies dropped (as Redis)."""
        if self.closing or self.closed:
            return
        self.last_active = self.server.clock
        try:
            commands = self.parser.parse(data)
        except ProtocolError as exc:
            log.warning("protocol error from replica %s: %s", self.addr, exc)
            self.close_now()
            return
        if commands:
            self.run(commands, [])

    def flush(self) -> None:
        self.out.clear()
        if self.closing and not self.closed:
            self.close_now()

    def send(self, reply: Any) -> None:
        pass

    def pause_writing(self) -> None:
        # Keep reading: ACKs must still arrive while the replica's socket is full.
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.server.replication.primary.resumed(self)

    def info_line(self) -> str:
        return super().info_line().replace(" flags=N ", " flags=S ", 1)


class BufferedReplicaClient(ReplicaClient, BufferedClient):
    """A ReplicaClient that still reads through the server's shared buffer.

    The transport chose its read path (``get_buffer``/``buffer_updated`` or
    ``data_received``) from the protocol it was made with, and keeps it: a
    BufferedClient turned plain ReplicaClient lost ``get_buffer``, so its first
    ACK was a fatal read error and the link dropped (a PyPy replica's sync never
    finished)."""


class Primary:
    """Replicas, the backlog, the stream and full syncs of one server."""

    def __init__(self, server: "CacheServer", state: "ReplicationState") -> None:
        self.server = server
        self.state = state
        self.config = server.config
        self.replicas: List[ReplicaClient] = []
        self.backlog: Optional[Backlog] = None
        self.no_replicas_since = time.monotonic()
        #: The database the stream last selected (-1: the next write selects).
        self.seldb = -1
        self.outq: List[bytes] = []
        #: Writes fed this loop turn, not encoded yet (see feed).
        self.staged: List[List[bytes]] = []
        self.flush_scheduled = False
        #: The dispatcher appends to ``staged`` itself until the flush (see feed).
        self.lent = False
        self.jobs: List[SyncJob] = []
        self.waiting_since = 0.0  # when the first replica began to wait for a diskless sync
        #: WAIT callers: (client, offset to reach, replicas wanted).
        self.waiters: List[Tuple[Client, int, int]] = []
        self.getack_scheduled = False
        self.last_ping = time.monotonic()
        self.sync_full = self.sync_partial_ok = self.sync_partial_err = 0
        self.guard = WriteGuard(self)
        self.limits = (0, 0, 0)  # client-output-buffer-limit's replica class
        self.on_config("client-output-buffer-limit")
        server.cron_jobs.append(self.cron)
        server.disconnect_hooks.append(self.client_gone)
        server.config_hooks.append(self.on_config)
        server.shutdown_hooks.append(self.on_shutdown)
        state.full_sync_hooks.append(self.on_full_sync)
        state.stream_listeners.append(self.feed_stream)
        state.role_hooks.append(self.on_role)
        state.continue_hooks.append(self.on_continue)
        server.info_providers["stats"].append(lambda: {
            "sync_full": self.sync_full, "sync_partial_ok": self.sync_partial_ok,
            "sync_partial_err": self.sync_partial_err})

    # -- the stream ----------------------------------------------------------------

    def feed(self, db_id: int, commands: List[List[bytes]]) -> None:
        """The write hook: stage the write; it is encoded, put in the backlog and
        counted in the offset at :meth:`flush` (which whatever reads the offset
        calls first), the turn's writes in one loop.

        When the stream is the only propagator, the second write of a loop turn
        (more may follow; a lone write need not pay for it) lends the dispatcher
        the log's shortcut (``keyspace.stage``): until the flush, the turn's plain
        writes to this database are appended to ``staged`` by the dispatcher and
        the run handlers, without a call."""
        if db_id != self.seldb:
            self._select(db_id)
        self.staged += commands
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.server.loop.call_soon(self.flush)
        elif not self.lent:
            keyspace = self.server.keyspace
            propagators = keyspace.propagators
            # Not while EXEC or a script collects the writes (a PUBLISH calls feed).
            if len(propagators) == 1 and propagators[0] == self.feed:
                self.lent = True
                keyspace.stage = self.staged
                keyspace.stage_db = keyspace.dbs[db_id]

    def read_done(self, client: Client, data: Optional[bytes], commands: List[Any]) -> None:
        """After a client's read ran (the stream on, the log off): its writes join
        the turn's stream, as the read's own bytes when they were exactly its
        commands (``propagation.verbatim``), then its replies leave."""
        staged = self.staged
        if staged:
            if verbatim(staged, data, commands):
                self.outq.append(data)  # type: ignore[arg-type]
                staged.clear()
            else:
                self._encode_staged()
        out = client.out
        if out and not (client.closing or client.closed):  # send_replies, inlined
            client.transport.write(b"".join(out) if len(out) > 1 else out[0])
            out.clear()
        elif out or client.closing:
            send_replies(client)

    def _select(self, db_id: int) -> None:
        if self.lent:  # the shortcut holds one database's writes
            self.lent = False
            self.server.keyspace.stage_db = None
        self._encode_staged()
        self.outq.append(select_bytes(db_id))
        self.seldb = db_id

    def _encode_staged(self) -> None:
        if self.staged:
            encode_commands(self.staged, self.outq)
            self.staged.clear()

    def feed_raw(self, commands: List[List[bytes]]) -> None:
        """Replicas only, in the selected database (PING, REPLCONF GETACK).

        Not on a replica: its sub-replicas get its primary's PINGs and GETACKs."""
        if self.backlog is None or self.state.link is not None:
            return
        pieces: List[bytes] = []
        encode_commands(commands, pieces)
        self._append(b"".join(pieces))

    def feed_stream(self, data: bytes) -> None:
        """A replica's stream listener: its primary's stream, as applied, byte for
        byte into the backlog and to the sub-replicas at once (Redis's
        replicationFeedStreamFromMasterStream), so all share one history. The
        replica side counts the offset; nothing is staged on a replica."""
        if self.backlog is not None:
            self.flush()
            self.backlog.append(data)
            self._send(data)

    def _append(self, data: bytes) -> None:
        self._encode_staged()  # in order after the writes staged before
        self.outq.append(data)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.server.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Move what the stream got this loop turn into the backlog and the offset,
        and send it to every replica, in one write each."""
        self.flush_scheduled = False
        if self.lent:
            self.lent = False
            self.server.keyspace.stage_db = None  # the next turn's writes schedule a flush
        self._encode_staged()
        if not self.outq:
            return
        data = b"".join(self.outq) if len(self.outq) > 1 else self.outq[0]
        self.outq.clear()
        self.backlog.append(data)  # type: ignore[union-attr]
        self.state.master_repl_offset += len(data)
        self._send(data)

    def _send(self, data: bytes) -> None:
        for link in list(self.replicas):
            if link.closed:
                continue
            state = link.repl_state
            if state == ONLINE:
                link.transport.write(data)  # type: ignore[union-attr]
                self.check_limits(link, 0)
            elif link.repl_job is not None or state in (SEND_BULK, WAIT_ACK):
                link.repl_pending.append(data)
                link.repl_pending_size += len(data)
                self.check_limits(link, link.repl_pending_size)
            # Waiting for a child to start: its RDB will hold these writes.

    def check_limits(self, link: ReplicaClient, queued: int) -> None:
        """The ``replica`` class of client-output-buffer-limit, as Redis checks it."""
        hard, soft, seconds = self.limits
        used = queued + link.transport.get_write_buffer_size()  # type: ignore[union-attr]
        if hard and used >= hard:
            self._cut_off(link, used)
        elif soft and used >= soft:
            now = time.monotonic()
            if not link.repl_soft_since:
                link.repl_soft_since = now
            elif now - link.repl_soft_since > seconds:
                self._cut_off(link, used)
        else:
            link.repl_soft_since = 0.0

    def _cut_off(self, link: ReplicaClient, used: int) -> None:
        log.warning("Client id=%d addr=%s closed for overcoming of output buffer limits "
                    "(replica, %d bytes buffered).", link.id, link.addr, used)
        self.server.stats["client_output_buffer_limit_disconnections"] += 1
        link.closed = True
        link.transport.abort()  # type: ignore[union-attr]  # drop the unsent output now
        self.server.client_gone(link)

    # -- SYNC / PSYNC ------------------------------------------------------------------

    def attach(self, c: Client, old_protocol: bool) -> ReplicaClient:
        # Keep the read path the transport was set up with (BufferedReplicaClient).
        c.__class__ = BufferedReplicaClient if isinstance(c, BufferedClient) else ReplicaClient
        link: ReplicaClient = c  # type: ignore[assignment]
        link.repl_state = WAIT_BGSAVE
        link.repl_ack_offset = 0
        link.repl_ack_time = time.monotonic()
        link.repl_pending = []
        link.repl_pending_size = 0
        link.repl_soft_since = 0.0
        link.repl_job = None
        link.repl_fd = -1
        link.repl_old_protocol = old_protocol
        conf = getattr(c, "repl_conf", None) or {}
        link.repl_conf = conf  # type: ignore[attr-defined]
        self.replicas.append(link)
        return link

    def psync(self, c: Client, replid: Optional[bytes], offset: int) -> None:
        """SYNC (``replid`` None) or PSYNC: +CONTINUE or a full resync."""
        if replid is not None and self._try_partial(c, replid, offset):
            return
        if not any(link.repl_state == WAIT_BGSAVE and link.repl_job is None
                   for link in self.replicas):
            self.waiting_since = time.monotonic()  # repl-diskless-sync-delay counts from here
        self.attach(c, replid is None)
        if replid is not None and replid != b"?":
            self.sync_partial_err += 1
        self.sync_full += 1
        log.info("Replica %s asks for synchronization; full resync", c.addr)
        if self.backlog is None and self.state.link is not None:
            self.ensure_backlog()  # a replica's history is its primary's
        elif self.backlog is None:
            # A history without a backlog cannot be continued: start a new one.
            self.state.replid = _new_replid()
            self.state.clear_replid2()
            self._create_backlog()
        self.start_syncs()

    def _try_partial(self, c: Client, replid: bytes, offset: int) -> bool:
        state = self.state
        backlog = self.backlog
        text = replid.decode("latin-1")
        if backlog is None or (text != state.replid and (
                text != state.replid2 or offset > state.second_replid_offset)):
            if replid != b"?":
                log.info("Partial resynchronization not accepted: replication ID mismatch "
                         "(replica asked for '%s', my IDs are '%s' and '%s')",
                         text, state.replid, state.replid2)
            return False
        self.flush()  # this loop turn's writes join the backlog, and leave for the others
        missed = backlog.since(offset)
        if missed is None:
            log.info("Unable to partial resync with replica %s for lack of backlog "
                     "(replica request was: %d).", c.addr, offset)
            return False
        link = self.attach(c, False)
        link.repl_state = ONLINE
        conf = link.repl_conf  # type: ignore[attr-defined]
        head = b"+CONTINUE %s\r\n" % state.replid.encode() if conf.get("psync2") \
            else b"+CONTINUE\r\n"
        link.transport.write(head + missed)  # type: ignore[union-attr]
        link.repl_ack_offset = offset - 1
        self.sync_partial_ok += 1
        log.info("Partial resynchronization request from %s accepted. Sending %d bytes "
                 "of backlog starting from offset %d.", c.addr, len(missed), offset)
        return True

    def _create_backlog(self) -> None:
        self.backlog = Backlog(self.config["repl-backlog-size"], self.state.master_repl_offset)
        self.seldb = -1
        if self.state.link is None and self.feed not in self.server.keyspace.propagators:
            self.server.keyspace.add_propagator(self.feed)
            rewire(self.server)

    def ensure_backlog(self) -> None:
        """A replica keeps a backlog with or without sub-replicas, as Redis does, so
        that once promoted its former siblings can continue from it."""
        if self.backlog is None:
            self._create_backlog()

    # -- chained replication and role changes (hooks of the replica side) ---------------

    def disconnect_replicas(self) -> None:
        """Redis's disconnectSlaves: they reconnect and learn the new history."""
        self.flush()
        for link in list(self.replicas):
            link.close_now()

    def on_full_sync(self) -> None:
        """Our dataset and history were replaced: sub-replicas must sync again, and
        the backlog starts at the new offset (no PSYNC into the old history)."""
        self.disconnect_replicas()
        for job in list(self.jobs):
            job.kill()
        self.jobs.clear()
        self.backlog = None
        self._create_backlog()

    def on_continue(self, new_replid: bool) -> None:
        """+CONTINUE from our primary: keep a backlog; a new replid is news for the
        sub-replicas (they reconnect and continue through replid2)."""
        self.ensure_backlog()
        if new_replid:
            self.disconnect_replicas()

    def on_role(self) -> None:
        """REPLICAOF: as a replica the stream comes from our primary, never from the
        writes we apply; promoted, our own writes feed the stream again."""
        propagators = self.server.keyspace.propagators
        self.disconnect_replicas()
        if self.state.link is not None:
            if self.feed in propagators:
                self.server.keyspace.remove_propagator(self.feed)
        else:
            self.seldb = -1  # the new history's first write selects its database
            self.ensure_backlog()
            if self.feed not in propagators:
                self.server.keyspace.add_propagator(self.feed)
        rewire(self.server)  # the stream takes each read's writes, or no longer
        self.guard.refresh()  # min-replicas-to-write binds a primary only

    def _free_backlog(self) -> None:
        log.info("Replication backlog freed after %d seconds without connected replicas.",
                 self.config["repl-backlog-ttl"])
        self.backlog = None
        self.server.keyspace.remove_propagator(self.feed)
        rewire(self.server)
        # As Redis: a new id, so no replica continues a history we forgot.
        self.state.replid = _new_replid()
        self.state.clear_replid2()

    def waiting_links(self, diskless: bool) -> List[ReplicaClient]:
        return [link for link in self.replicas if link.repl_state == WAIT_BGSAVE
                and link.repl_job is None and not link.closed
                and self._wants_diskless(link) == diskless]

    def _wants_diskless(self, link: ReplicaClient) -> bool:
        return bool(self.config["repl-diskless-sync"]) and hasattr(os, "fork") \
            and bool(link.repl_conf.get("eof"))  # type: ignore[attr-defined]

    def start_syncs(self) -> None:
        """Start a child for the replicas waiting, when none is running (as Redis:
        one RDB child at a time; a diskless one waits repl-diskless-sync-delay)."""
        if self.jobs:
            return
        for diskless in (False, True):
            links = self.waiting_links(diskless)
            if not links:
                continue
            if diskless:
                delay = self.config["repl-diskless-sync-delay"]
                most = self.config["repl-diskless-sync-max-replicas"]
                waited = time.monotonic() - self.waiting_since
                if delay and waited < delay and not (most and len(links) >= most):
                    continue  # the cron tries again
            self._start_job(links, diskless)
            return

    def _start_job(self, links: List[ReplicaClient], diskless: bool) -> None:
        self.flush()  # writes before the fork go to online replicas, not these
        self.seldb = -1  # the stream after the RDB starts with a SELECT
        state = self.state
        for link in links:
            link.repl_pending = []
            link.repl_pending_size = 0
            if not link.repl_old_protocol:
                link.transport.write(b"+FULLRESYNC %s %d\r\n" % (  # type: ignore[union-attr]
                    state.replid.encode(), state.master_repl_offset))
        try:
            job = SyncJob(self, links, diskless, self._job_done)
        except OSError as exc:
            log.warning("Can't start the replication RDB child: %s", exc)
            for link in links:
                link.close_now()
            return
        for link in links:
            link.repl_job = job
        self.jobs.append(job)

    def _job_done(self, job: SyncJob, ok: bool) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        for link in job.links:
            link.repl_job = None
            if link.closed:
                continue
            if not ok:
                link.close_now()
                continue
            if job.diskless:
                link.transport.write(job.mark)  # type: ignore[union-attr]
                # As Redis: the stream waits for the replica's first ACK, or the
                # replica could read stream bytes as part of the payload.
                link.repl_state = WAIT_ACK
                link.repl_ack_time = time.monotonic()
                if link.repl_old_protocol:
                    self._online(link)
            else:
                link.repl_fd = job.open_file()
                if link.repl_fd < 0:
                    link.close_now()
                    continue
                size = os.fstat(link.repl_fd).st_size
                link.transport.write(b"$%d\r\n" % size)  # type: ignore[union-attr]
                link.repl_state = SEND_BULK
                self._send_file(link)
        if not job.diskless:
            job._unlink()  # the replicas hold descriptors on it
        self.start_syncs()

    def _send_file(self, link: ReplicaClient) -> None:
        while not link.write_paused and not link.closed:
            chunk = os.read(link.repl_fd, 256 * 1024)
            if not chunk:
                os.close(link.repl_fd)
                link.repl_fd = -1
                self._online(link)
                return
            link.transport.write(chunk)  # type: ignore[union-attr]

    def _online(self, link: ReplicaClient) -> None:
        link.repl_state = ONLINE
        link.repl_ack_time = time.monotonic()
        if link.repl_pending:
            link.transport.write(b"".join(link.repl_pending))  # type: ignore[union-attr]
            link.repl_pending = []
            link.repl_pending_size = 0
        log.info("Synchronization with replica %s succeeded", link.addr)
        self.guard.refresh()

    def resumed(self, link: ReplicaClient) -> None:
        """A replica's socket drained: go on with its RDB."""
        if link.repl_state == SEND_BULK and link.repl_fd >= 0:
            self._send_file(link)
        elif link.repl_job is not None:
            link.repl_job.resume()

    def ack(self, link: Client, offset: int) -> None:
        """REPLCONF ACK <offset> from a replica."""
        if not isinstance(link, ReplicaClient):
            return
        if offset > link.repl_ack_offset:
            link.repl_ack_offset = offset
        link.repl_ack_time = time.monotonic()
        if link.repl_state == WAIT_ACK:
            self._online(link)
        if self.waiters:
            self._serve_waiters()
        if self.guard.refusing:
            self.guard.refresh()

    def client_gone(self, c: Client) -> None:
        if isinstance(c, ReplicaClient):
            if c in self.replicas:
                self.replicas.remove(c)
                log.info("Connection with replica %s lost.", c.addr)
            if c.repl_fd >= 0:
                os.close(c.repl_fd)
                c.repl_fd = -1
            job = c.repl_job
            if job is not None and not job.live_links():
                job.kill()
                if job in self.jobs:
                    self.jobs.remove(job)
                self.start_syncs()
            elif job is not None:
                job.resume()  # the one holding the pipe back may be this one
            if not self.replicas:
                self.no_replicas_since = time.monotonic()
            self.guard.refresh()
        elif self.waiters:
            self.waiters = [w for w in self.waiters if w[0] is not c]

    # -- WAIT --------------------------------------------------------------------------

    def acked(self, offset: int) -> int:
        return sum(1 for link in self.replicas
                   if link.repl_state == ONLINE and link.repl_ack_offset >= offset)

    def wait(self, c: Client, numreplicas: int, timeout_ms: int) -> Any:
        self.flush()  # the offset counts this loop turn's writes
        offset = self.state.master_repl_offset
        count = self.acked(offset)
        if count >= numreplicas or c.in_exec:
            return count
        entry = (c, offset, numreplicas)
        self.waiters.append(entry)
        self.request_acks()

        def on_timeout() -> int:
            if entry in self.waiters:
                self.waiters.remove(entry)
            return self.acked(offset)

        return c.block(timeout_ms / 1000.0, on_timeout, entry)

    def request_acks(self) -> None:
        """One REPLCONF GETACK into the stream per loop turn while WAIT callers wait."""
        if not self.getack_scheduled and self.backlog is not None:
            self.getack_scheduled = True

            def send() -> None:
                self.getack_scheduled = False
                self.feed_raw(_GETACK)
                self.flush()

            self.server.loop.call_soon(send)

    def _serve_waiters(self) -> None:
        still = []
        for entry in self.waiters:
            c, offset, wanted = entry
            count = self.acked(offset)
            if count >= wanted and c.blocked:
                c.unblock(count)  # cancels the timeout
            elif c.blocked:
                still.append(entry)
        self.waiters = still

    # -- cron, config, INFO --------------------------------------------------------------

    def cron(self) -> None:
        now = time.monotonic()
        config = self.config
        if self.replicas and now - self.last_ping >= config["repl-ping-replica-period"]:
            self.last_ping = now
            self.feed_raw(_PING)
        timeout = config["repl-timeout"]
        for link in list(self.replicas):
            if link.repl_state in (ONLINE, WAIT_ACK) and not link.repl_old_protocol \
                    and now - link.repl_ack_time > timeout:
                log.warning("Disconnecting timedout replica: %s", link.addr)
                link.close_now()
            elif link.repl_state in (ONLINE, SEND_BULK, WAIT_BGSAVE) and not link.closed:
                self.check_limits(link, link.repl_pending_size)  # the soft limit's clock
        ttl = config["repl-backlog-ttl"]
        if self.backlog is not None and not self.replicas and ttl \
                and now - self.no_replicas_since > ttl and self.state.link is None:
            self._free_backlog()
        if not self.jobs and self.replicas:
            self.start_syncs()
        if self.waiters:
            self.request_acks()
        self.guard.refresh()

    def on_config(self, name: str) -> None:
        if name == "client-output-buffer-limit":
            self.limits = self.config[name].get("replica", (256 << 20, 64 << 20, 60))
        elif name == "repl-backlog-size" and self.backlog is not None:
            self.backlog.resize(self.config["repl-backlog-size"])
        elif name in ("min-replicas-to-write", "min-replicas-max-lag"):
            self.guard.refresh()

    def on_shutdown(self, save: Optional[bool]) -> None:
        self.guard._allow()  # an embedded server's table is shared with the next one
        self.flush()
        for job in list(self.jobs):
            job.kill()
        self.jobs.clear()

    def replica_fields(self) -> List[Tuple[str, Any]]:
        """``slaveN:ip=...,port=...,state=...,offset=...,lag=...`` lines."""
        self.flush()  # INFO's offsets count this loop turn's writes
        now = time.monotonic()
        fields = []
        for i, link in enumerate(self.replicas):
            conf: Dict[str, Any] = link.repl_conf  # type: ignore[attr-defined]
            ip = conf.get("ip") or link.addr.rsplit(":", 1)[0].strip("[]")
            state = ONLINE if link.repl_state == WAIT_ACK else link.repl_state
            fields.append((f"slave{i}", f"ip={ip},port={conf.get('port', 0)},state={state},"
                                        f"offset={link.repl_ack_offset},"
                                        f"lag={int(now - link.repl_ack_time)}"))
        return fields

    def role_replicas(self) -> List[List[bytes]]:
        """ROLE's list of online replicas: [ip, port, acked offset]."""
        self.flush()
        out = []
        for link in self.replicas:
            if link.repl_state != ONLINE:
                continue
            conf = link.repl_conf  # type: ignore[attr-defined]
            ip = conf.get("ip") or link.addr.rsplit(":", 1)[0].strip("[]")
            out.append([ip.encode(), b"%d" % conf.get("port", 0),
                        b"%d" % link.repl_ack_offset])
        return out


def _new_replid() -> str:
    from .state import new_replid
    return new_replid()
