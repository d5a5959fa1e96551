"""The primary side of replication: SYNC/PSYNC, the write stream, the backlog.

* A replica's connection becomes a :class:`ReplicaClient` (replica_link.py)
  when it sends SYNC or PSYNC, so the dispatcher and every other client pay
  nothing for replication.
* The stream is what the append-only log gets: :meth:`Primary.feed` is a
  ``keyspace.propagators`` entry (added only while a backlog exists, so a
  server that never had a replica keeps the log's shortcut), with ``SELECT``
  when the database changes. Each write is encoded once; once per event-loop
  turn (or before anything reads the offset) the turn's bytes join the backlog
  and ``master_repl_offset`` and leave for the replicas, in one write each.
* Full resync: ``+FULLRESYNC <replid> <offset>``, the RDB from a forked child
  (full_sync.py, rdbsync.py), then what was written since the fork. Partial: ``+CONTINUE``
  and the backlog from the asked offset, with PSYNC2's ``replid2``.
* Replicas' output is bounded by the ``replica`` class of
  ``client-output-buffer-limit`` (the stream queued during a sync included).
* The replicas' acknowledged offsets and WAIT are acks.py's.
"""
from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ...persistence.aof import encode_commands, select_bytes
from ...persistence.propagation import rewire, send_replies, verbatim
from ..connection import BufferedClient, Client
from .acks import AckTracking
from .backlog import Backlog
from .full_sync import FullSyncs
from .guard import WriteGuard
from .rdbsync import SyncJob
from .replica_link import (ONLINE, SEND_BULK, WAIT_ACK, WAIT_BGSAVE, BufferedReplicaClient,
                           ReplicaClient)

if TYPE_CHECKING:
    from ..app import CacheServer
    from .state import ReplicationState

log = logging.getLogger("distcache.replication")

_PING = [[b"PING"]]


class Primary(FullSyncs, AckTracking):
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
            if backlog is not None and text == state.replid2:
                # Redis's words: the replica followed the old primary further than we did.
                log.info("Partial resynchronization not accepted: Requested offset for "
                         "second ID was %d, but I can reply up to %d",
                         offset, state.second_replid_offset)
            elif replid != b"?":
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
