"""A replica's connection on the primary: the client a SYNC or PSYNC turns it into.

A connection becomes a :class:`ReplicaClient` when it sends SYNC or PSYNC
(the object's class changes; nothing else of the connection does), so the
dispatcher and every other client pay nothing for replication. ``repl_state``
walks WAIT_BGSAVE (waiting for an RDB child), SEND_BULK (a disk RDB being
sent), WAIT_ACK (a diskless RDB sent, the first ACK awaited), ONLINE.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, List, Optional

from ...protocol import ProtocolError
from ..connection import BufferedClient, Client

if TYPE_CHECKING:
    from .rdbsync import SyncJob

log = logging.getLogger("distcache.replication")

WAIT_BGSAVE, SEND_BULK, WAIT_ACK, ONLINE = "wait_bgsave", "send_bulk", "wait_ack", "online"


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

    def info_line(self, args: Optional[List[bytes]] = None) -> str:
        return super().info_line(args).replace(" flags=N ", " flags=S ", 1)


class BufferedReplicaClient(ReplicaClient, BufferedClient):
    """A ReplicaClient that still reads through the server's shared buffer.

    The transport chose its read path (``get_buffer``/``buffer_updated`` or
    ``data_received``) from the protocol it was made with, and keeps it: a
    BufferedClient turned plain ReplicaClient lost ``get_buffer``, so its first
    ACK was a fatal read error and the link dropped (a PyPy replica's sync never
    finished)."""
