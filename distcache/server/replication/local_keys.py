"""Keys with a TTL written on a writable replica (``replica-read-only no``) by its own
clients: the replica expires them itself, as Redis 7.0 does with its
``slaveKeysWithExpire`` (expireSlaveKeys), while the primary's keys still wait for
the primary's DEL.

Redis remembers a key when a client other than the primary gives it a TTL. Here a
write of such a client notes the expiries of its keys in every database before it
runs (its keys from the key specs; a transaction's at EXEC; a script's at each
``redis.call``); once it ran (at the next command, before the primary's next
commands, or at the next cycle) a key whose TTL it set or changed is remembered
with the databases it is in. The expiry cycle deletes the remembered keys whose TTL
passed (logged as DEL, like any expiry) and forgets the ones with no TTL any more.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ..commands.table import keys_with_access
from ..keyspace import now_ms

if TYPE_CHECKING:
    from ..app import CacheServer

#: Seconds one expiry cycle may spend on the remembered keys (Redis: about 1 ms).
BUDGET = 0.001


class LocalExpires:
    """The replica's own keys with a TTL: key -> bitmap of the databases."""

    def __init__(self, server: "CacheServer") -> None:
        self.server = server
        self.keys: Dict[bytes, int] = {}
        #: (key, its deadline in each database) noted before a write ran.
        self.pending: List[Tuple[bytes, List[Optional[int]]]] = []
        self._order: Optional[List[bytes]] = None  # the cycle's snapshot of ``keys``
        self._pos = 0

    def note(self, client: Any, spec: Any, args: List[bytes]) -> None:
        """Before a client's write (or EXEC) runs: its keys' deadlines as they are
        (the gate settled the previous write first)."""
        if spec.name == "exec" and client.in_multi:
            table = client.table
            for queued in client.multi_queue:
                qspec = table.get(queued[0]) or table.get(queued[0].lower())
                if qspec is not None and qspec.subcommands and len(queued) > 1:
                    qspec = qspec.subcommands.get(queued[1].lower(), qspec)
                if qspec is not None and qspec.write:
                    self._note_keys(qspec, queued)
        elif spec.write:
            self._note_keys(spec, args)

    def _note_keys(self, spec: Any, args: List[bytes]) -> None:
        dbs = self.server.keyspace.dbs
        for index, _ in keys_with_access(spec, args):
            if index < len(args):
                key = args[index]
                self.pending.append((key, [db.expires.get(key) for db in dbs]))

    def settle(self) -> None:
        """The noted writes ran: remember the keys whose TTL they set or changed."""
        pending, self.pending = self.pending, []
        dbs = self.server.keyspace.dbs
        keys = self.keys
        for key, before in pending:
            bits = 0
            for i, db in enumerate(dbs):
                when = db.expires.get(key)
                if when is not None and when != before[i]:
                    bits |= 1 << i
            if bits:
                keys[key] = keys.get(key, 0) | bits

    def clear(self) -> None:
        """The dataset was replaced (a full sync) or expiry is normal again (promoted)."""
        self.keys = {}
        self.pending = []
        self._order = None

    def expire(self) -> int:
        """One time-boxed pass over the remembered keys; returns how many expired."""
        if self.pending:
            self.settle()
        if not self.keys:
            return 0
        if self._order is None:
            self._order = list(self.keys)
            self._pos = 0
        keyspace = self.server.keyspace
        dbs = keyspace.dbs
        deadline = time.perf_counter() + BUDGET
        now = now_ms()
        expired = 0
        order = self._order
        held = keyspace.hold_expired
        keyspace.hold_expired = False  # these keys are ours to delete
        try:
            while self._pos < len(order):
                key = order[self._pos]
                self._pos += 1
                bits = self.keys.get(key, 0)
                left = 0
                for i, db in enumerate(dbs):
                    if not bits >> i & 1:
                        continue
                    when = db.expires.get(key)
                    if when is None:
                        continue  # gone or persisted: forgotten, as Redis
                    if when <= now:
                        db.expire_now(key)
                        expired += 1
                    else:
                        left |= 1 << i
                if left:
                    self.keys[key] = left
                else:
                    self.keys.pop(key, None)
                if not self._pos & 63 and time.perf_counter() >= deadline:
                    return expired
        finally:
            keyspace.hold_expired = held
        self._order = None
        return expired
