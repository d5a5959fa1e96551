"""What the primary and replica sides share: the replication ids and offsets.

As in Redis (PSYNC2), a server has a replication id and an offset into that history;
after a promotion it keeps its former primary's id as ``replid2``, valid up to
``second_replid_offset``, so its former siblings can continue from it partially.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, List, Tuple

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
        #: The primary side: replicas, backlog, stream (primary.py).
        from .primary import Primary
        self.primary = Primary(server, self)

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
        return [("role", self.role), ("connected_slaves", len(replicas)),
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
    return server.replication
