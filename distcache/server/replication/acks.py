"""The primary's view of its replicas' acknowledged offsets: REPLCONF ACK and WAIT.

A WAIT caller blocks until enough online replicas acknowledged the offset the
stream had when it asked; while any waits, one REPLCONF GETACK a loop turn
goes into the stream so the replicas answer soon.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

from ..connection import Client
from .replica_link import ONLINE, WAIT_ACK, ReplicaClient

if TYPE_CHECKING:
    from ..app import CacheServer
    from .backlog import Backlog
    from .guard import WriteGuard
    from .state import ReplicationState

_GETACK = [[b"REPLCONF", b"GETACK", b"*"]]


class AckTracking:
    """Primary's part that counts acknowledgements (a mixin: the state is the Primary's)."""

    server: "CacheServer"
    state: "ReplicationState"
    guard: "WriteGuard"
    backlog: Optional["Backlog"]
    replicas: List[ReplicaClient]
    #: WAIT callers: (client, offset to reach, replicas wanted).
    waiters: List[Tuple[Client, int, int]]
    getack_scheduled: bool
    flush: Callable[[], None]  # Primary's
    feed_raw: Callable[[List[List[bytes]]], None]  # Primary's
    _online: Callable[[ReplicaClient], None]  # FullSyncs'

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
