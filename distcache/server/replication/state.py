"""What the primary and replica sides share: the replication ids and offsets.

As in Redis (PSYNC2), a server has a replication id and an offset into that history;
after a promotion it keeps its former primary's id as ``replid2``, valid up to
``second_replid_offset``, so its former siblings can continue from it partially.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, List, Tuple

if TYPE_CHECKING:
    from ..app import CacheServer

Fields = List[Tuple[str, Any]]
NO_REPLID = "0" * 40


def new_replid() -> str:
    """A fresh 40-hex-digit replication id, as Redis makes them."""
    return os.urandom(20).hex()


class ReplicationState:
    """One server's place in a replication history, and its role."""

    def __init__(self, server: "CacheServer") -> None:
        self.server = server
        self.role = "master"
        self.replid = new_replid()
        self.replid2 = NO_REPLID
        self.master_repl_offset = 0
        self.second_replid_offset = -1
        #: The replica side (replica.py): the link to our primary, or None.
        self.link: Any = None
        #: Whether replid/master_repl_offset name data we hold (a sync happened, a
        #: snapshot told us, or we were a primary): PSYNC offers them, else ``? -1``.
        self.synced = False
        #: Called after a full sync replaced the dataset and the history (the
        #: primary side resets its backlog and drops its own replicas).
        self.full_sync_hooks: List[Callable[[], None]] = []
        #: Called with the bytes of the primary's stream as they are applied
        #: (chained replication: the primary side feeds its backlog with them).
        self.stream_listeners: List[Callable[[bytes], None]] = []
        #: Called after the role changed (REPLICAOF).
        self.role_hooks: List[Callable[[], None]] = []
        #: Called after a +CONTINUE, with whether the primary's replid changed.
        self.continue_hooks: List[Callable[[bool], None]] = []
        #: The primary side: replicas, backlog, stream (primary.py); it hooks itself
        #: on the lists above (chained replication, promotion).
        from .primary import Primary
        self.primary = Primary(server, self)

    def has_history(self) -> bool:
        return self.synced

    def was_master(self) -> None:
        """A primary becoming a replica offers its own history (Redis's
        replicationCacheMasterUsingMyself), so a promoted sibling may continue it."""
        self.synced = True

    def shift_replid(self) -> None:
        """Start a new history, remembering the old one as ``replid2`` (a promotion)."""
        self.primary.flush()
        self.replid2 = self.replid
        self.second_replid_offset = self.master_repl_offset + 1
        self.replid = new_replid()

    def clear_replid2(self) -> None:
        self.replid2 = NO_REPLID
        self.second_replid_offset = -1

    def role_reply(self) -> List[Any]:
        """ROLE, the primary's form: offset and the online replicas."""
        replicas = self.primary.role_replicas()  # first: it brings the offset up to date
        return [b"master", self.master_repl_offset, replicas]

    def info_fields(self) -> Fields:
        """INFO's replication section, as Redis 7.0 lays it out."""
        primary = self.primary
        backlog = primary.backlog
        replicas = primary.replica_fields()
        link = self.link.info_fields() if self.link is not None else []
        return [("role", self.role), *link, ("connected_slaves", len(replicas)),
                *primary.guard.info_fields(), *replicas,
                ("master_failover_state", "no-failover"),
                ("master_replid", self.replid), ("master_replid2", self.replid2),
                ("master_repl_offset", self.master_repl_offset),
                ("second_repl_offset", self.second_replid_offset),
                ("repl_backlog_active", int(backlog is not None)),
                ("repl_backlog_size", self.server.config["repl-backlog-size"]),
                ("repl_backlog_first_byte_offset",
                 backlog.first_byte_offset if backlog is not None else 0),
                ("repl_backlog_histlen", backlog.histlen if backlog is not None else 0)]


def install(server: "CacheServer") -> ReplicationState:
    server.replication = ReplicationState(server)
    from .replica import install as install_replica  # the replicaof directive
    install_replica(server)
    return server.replication
