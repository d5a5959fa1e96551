"""Active expiry: frees keys whose TTL passed even if nobody reads them.

Lazy expiry on access catches keys that are read; this cycle catches the
rest. Like Redis's, it works in short slices under a time budget and keeps
going sooner while it keeps finding expired keys, so a mass expiry is
cleared in well under a second per 100k keys without a long stall.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, List, Optional

from .keyspace import now_ms

if TYPE_CHECKING:
    from .app import CacheServer

SLICE_KEYS = 256  # keys checked between clock reads


class ActiveExpiry:
    def __init__(self, server: "CacheServer") -> None:
        self.server = server
        self.db_index = 0
        self.keys: Optional[List[bytes]] = None  # snapshot of one db's keys with a TTL
        self.pos = 0
        self.scheduled = False

    def budget(self) -> float:
        """Seconds one slice may take: a few ms, more with active-expire-effort."""
        return 0.002 + 0.0005 * (self.server.config["active-expire-effort"] - 1)

    def cycle(self) -> bool:
        """Run one time-boxed slice; True when expired keys are likely left."""
        if self.server.keyspace.expiry_paused:  # CLIENT PAUSE: no key expires meanwhile
            return False
        if self.server.keyspace.hold_expired:  # a replica: its primary expires keys,
            link = self.server.replication.link  # but its own clients' are its own
            if link is not None:
                link.local_keys.expire()
            return False
        dbs = self.server.keyspace.dbs
        deadline = time.perf_counter() + self.budget()
        checked = expired = 0
        for _ in range(len(dbs)):
            db = dbs[self.db_index]
            expires = db.expires
            if expires:
                if self.keys is None:
                    self.keys = list(expires)
                    self.pos = 0
                keys = self.keys
                now = now_ms()
                while self.pos < len(keys):
                    end = self.pos + SLICE_KEYS
                    for key in keys[self.pos:end]:
                        when = expires.get(key)
                        if when is not None and when <= now:
                            db.expire_now(key)
                            expired += 1
                    checked += min(SLICE_KEYS, len(keys) - self.pos)
                    self.pos = end
                    if time.perf_counter() >= deadline:
                        return self._reschedule(expired, checked)
            self.keys = None
            self.db_index = (self.db_index + 1) % len(dbs)
            if time.perf_counter() >= deadline:
                break
        return self._reschedule(expired, checked)

    def _reschedule(self, expired: int, checked: int) -> bool:
        # Many expired keys found: run again soon rather than at the next tick.
        busy = checked > 0 and expired * 10 >= checked
        loop = self.server.loop
        if busy and not self.scheduled and loop is not None:
            self.scheduled = True
            loop.call_later(0.005, self._again)
        return busy

    def _again(self) -> None:
        self.scheduled = False
        self.cycle()
