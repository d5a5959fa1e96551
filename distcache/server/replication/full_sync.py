"""The primary's full resyncs: RDB children for the waiting replicas, and the RDB's way out.

As Redis: one RDB child at a time, for every replica waiting when it starts;
a diskless one waits repl-diskless-sync-delay for more to join. A disk RDB is
sent from the file in chunks as the replica's socket drains; a diskless one
streams from the child (rdbsync.py). Either way the stream written meanwhile
is queued on the link and follows the RDB.
"""
from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List

from .rdbsync import SyncJob
from .replica_link import ONLINE, SEND_BULK, WAIT_ACK, WAIT_BGSAVE, ReplicaClient

if TYPE_CHECKING:
    from .guard import WriteGuard
    from .state import ReplicationState

log = logging.getLogger("distcache.replication")


class FullSyncs:
    """Primary's part that runs full resyncs (a mixin: the state is the Primary's)."""

    config: Dict[str, Any]
    state: "ReplicationState"
    guard: "WriteGuard"
    replicas: List[ReplicaClient]
    jobs: List[SyncJob]
    waiting_since: float
    seldb: int
    flush: Callable[[], None]  # Primary's

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
