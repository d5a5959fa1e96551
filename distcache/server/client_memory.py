"""Per-client memory: CLIENT LIST's qbuf/omem/tot-mem, the clients' share of
INFO's memory fields and of used_memory, and client eviction
(``maxmemory-clients``, Redis 7.0).

What a client holds is read off state the server keeps anyway, never
counted per command: the request bytes its parser buffers (``partial``, set
by each read), the transport's unsent output (plus, for a replica, the
stream queued during a sync), the replies assembled in ``out``, the
arguments of its queued MULTI commands (``multi_mem``: a running sum, as
Redis's ``argv_len_sums``, that adds the commands queued since it was last
read, so queueing pays nothing), and its subscriptions. On top of these, a
fixed ``CLIENT_MEMORY`` per connection (protocol object, parser, transport)
that idle clients cost.

The cron re-measures a slice of the clients each tick, every client once a
second (``clients / hz`` of them a tick, at least 256, so 10,000 clients cost
about a thousand cheap visits a tick), and keeps each client's bytes beyond
the fixed part (``mem_extra``) and their sums: normal and pub/sub clients
(the primary link too) in ``normal``, replicas in ``replicas``. Once a
second the sums are recomputed from the clients, so nothing drifts.

With ``maxmemory-clients`` set, when the normal and pub/sub clients together
reach the limit, every client is measured afresh and the biggest are closed
until the rest fit, as Redis's evictClients does (which works down its
power-of-two buckets, i.e. roughly biggest first): not replicas, not the
primary link, not clients with CLIENT NO-EVICT on. Checked each cron tick and,
while a limit is set, whenever a command is queued in MULTI and after a read
that leaves more than half the limit in a client's query buffer (growth far
faster than the cron).
"""
from __future__ import annotations

import logging
from itertools import islice
from typing import TYPE_CHECKING, Any, List, Sequence, Tuple

from .memory_size import DICT_ENTRY

if TYPE_CHECKING:
    from .app import CacheServer

log = logging.getLogger("distcache.server")

#: Memory a connected client costs idle (protocol object, parser, transport, buffers).
CLIENT_MEMORY = 16 * 1024
#: Per argument of a queued or running command: Redis counts sizeof(robj *).
ARG_OVERHEAD = 8
#: Redis's reply block size: CLIENT LIST's oll counts unsent output in these.
REPLY_BLOCK = 16 * 1024
#: maxmemory-clients below this counts as this, as Redis (a typo must not lock
#: everyone out).
MIN_LIMIT = 128 * 1024
#: Clients the cron visits at least per tick (all of them when fewer).
SWEEP_MIN = 256
#: Seconds INFO's client_recent_max_input/output_buffer cover (Redis's 8 slots).
PEAK_SLOTS = 8


def args_bytes(args: Sequence[bytes]) -> int:
    """A command's argv-mem, as Redis counts it: the arguments' bytes plus a
    pointer each (byte counts, so CPython and PyPy agree)."""
    return sum(map(len, args)) + ARG_OVERHEAD * len(args)


def output_parts(c: Any) -> Tuple[int, int]:
    """(replies assembled but not handed to the transport, bytes the transport
    and a replica's sync queue hold unsent)."""
    out = c.out
    assembled = sum(map(len, out)) if out else 0
    unsent = getattr(c, "repl_pending_size", 0) or 0  # a replica mid-sync
    get_size = getattr(c.transport, "get_write_buffer_size", None)
    if get_size is not None:
        unsent += get_size()
    return assembled, unsent


def multi_bytes(c: Any) -> int:
    """multi-mem: the queued commands' argv-mem, a running sum brought up to date
    with the commands queued since it was last read (the transaction's end resets
    it), so queueing costs nothing and no reading re-sums the whole queue."""
    queue = c.multi_queue
    counted = c.multi_counted
    if len(queue) != counted:
        if len(queue) < counted:  # a new queue: count it afresh
            counted = c.multi_mem = 0
        c.multi_mem += sum(map(args_bytes, islice(queue, counted, None)))
        c.multi_counted = len(queue)
    return c.multi_mem


def usage(c: Any) -> Tuple[int, int, int, int]:
    """(query buffer, assembled output, unsent output, total) bytes of ``c``."""
    assembled, unsent = output_parts(c)
    qbuf = c.partial
    subs = len(c.channels) + len(c.patterns) + len(c.shard_channels)
    total = CLIENT_MEMORY + qbuf + assembled + unsent + multi_bytes(c) + subs * DICT_ENTRY
    return qbuf, assembled, unsent, total


def evictable(c: Any) -> bool:
    """Whether client eviction may close ``c`` (Redis's clientEvictionAllowed)."""
    return not (c.no_evict or c.is_primary_link or getattr(c, "is_replica", False))


def client_limit(value: int, maxmemory: int) -> int:
    """Bytes maxmemory-clients allows (its parsed value: bytes, or minus a percentage
    of maxmemory, off while maxmemory is 0); 0: off."""
    if value < 0:
        limit = maxmemory * -value // 100
    else:
        limit = value
    return max(limit, MIN_LIMIT) if limit else 0


class ClientMemory:
    """The clients' memory sums, the recent peaks, and client eviction."""

    def __init__(self, server: "CacheServer") -> None:
        self.server = server
        #: Bytes beyond CLIENT_MEMORY of normal and pub/sub clients (and the primary
        #: link), and of replicas, as last measured.
        self.normal = 0
        self.replicas = 0
        self.limit = 0  # bytes (0: no client eviction)
        self.todo: List[Any] = []  # this sweep's clients not yet visited
        #: Over the limit with nothing left to evict: wait for the next sweep.
        self.stuck = False
        self.second = 0
        self.peak_in = [0] * PEAK_SLOTS
        self.peak_out = [0] * PEAK_SLOTS
        self._take_limit()

    def _take_limit(self) -> None:
        config = self.server.config
        self.limit = client_limit(config["maxmemory-clients"], config["maxmemory"])
        self.stuck = False
        self.set_checks()

    def configure(self) -> None:
        """maxmemory-clients or maxmemory changed."""
        self._take_limit()
        if self.limit:  # as Redis when it is turned on: measure everyone now
            self.measure_all()
            self.check()

    # -- measuring ------------------------------------------------------------------

    def update(self, c: Any) -> int:
        """Re-measure ``c``; returns its total."""
        qbuf, assembled, unsent, total = usage(c)
        extra = total - CLIENT_MEMORY
        if c.mem_replica:
            self.replicas -= c.mem_extra
        else:
            self.normal -= c.mem_extra
        replica = c.mem_replica = getattr(c, "is_replica", False)
        c.mem_extra = extra
        if replica:
            self.replicas += extra
        else:
            self.normal += extra
        slot = self.second % PEAK_SLOTS
        if qbuf > self.peak_in[slot]:
            self.peak_in[slot] = qbuf
        if unsent + assembled > self.peak_out[slot]:
            self.peak_out[slot] = unsent + assembled
        return total

    def measure_all(self) -> None:
        for c in list(self.server.clients.values()):
            if not c.closed:
                self.update(c)
        self._resum()

    def _resum(self) -> None:
        """The sums from the clients' last measures (drops clients gone unnoticed)."""
        normal = replicas = 0
        for c in self.server.clients.values():
            if c.mem_replica:
                replicas += c.mem_extra
            else:
                normal += c.mem_extra
        self.normal, self.replicas = normal, replicas

    def gone(self, c: Any) -> None:
        if c.mem_replica:
            self.replicas -= c.mem_extra
        else:
            self.normal -= c.mem_extra
        c.mem_extra = 0

    def totals(self) -> Tuple[int, int]:
        """(normal and pub/sub clients' bytes, replicas' bytes), fixed part included."""
        server = self.server
        replication = getattr(server, "replication", None)  # None while starting
        n_replicas = len(replication.primary.replicas) if replication is not None else 0
        n_normal = len(server.clients) - n_replicas
        return (CLIENT_MEMORY * n_normal + self.normal,
                CLIENT_MEMORY * n_replicas + self.replicas)

    def recent_peaks(self) -> Tuple[int, int]:
        return max(self.peak_in), max(self.peak_out)

    def fresh(self) -> None:
        """Before INFO: everyone measured now when that is cheap."""
        if len(self.server.clients) <= SWEEP_MIN:
            self.measure_all()

    # -- the cron -------------------------------------------------------------------

    def cron(self) -> None:
        server = self.server
        second = int(server.clock)
        if second != self.second:
            for s in range(max(self.second + 1, second - PEAK_SLOTS + 1), second + 1):
                self.peak_in[s % PEAK_SLOTS] = self.peak_out[s % PEAK_SLOTS] = 0
            self.second = second
        todo = self.todo
        if not todo:  # a new sweep
            self._resum()
            self.stuck = False
            todo.extend(server.clients.values())
        budget = max(SWEEP_MIN, len(server.clients) // max(server.hz, 1) + 1)
        batch = todo[-budget:]
        del todo[-budget:]
        for c in batch:
            if not c.closed:
                self.update(c)
        self.check()

    # -- eviction -------------------------------------------------------------------

    def set_checks(self) -> None:
        """While there is a limit, a command queued in MULTI checks it, and so does a
        read leaving more than half of it buffered (a big request or a long queue
        can grow far faster than the cron runs)."""
        server = self.server
        server.query_check = min(server.query_buffer_limit, self.limit // 2) if self.limit \
            else server.query_buffer_limit
        server.multi_check = self.queued if self.limit else None

    def big_query(self, c: Any) -> bool:
        """After a read that left ``c`` a big query buffer: True if it was evicted."""
        self.update(c)
        self.check()
        return c.closed

    def queued(self, c: Any) -> None:
        """A command was queued in MULTI (maxmemory-clients on): evict if that went over."""
        if not c.closed:
            self.update(c)
            self.check()

    def check(self) -> None:
        if self.limit and not self.stuck and self.totals()[0] >= self.limit:
            self.evict()

    def evict(self) -> None:
        """Close the biggest evictable clients until the others fit in the limit."""
        self.measure_all()
        used = self.totals()[0]
        if used < self.limit:
            return
        server = self.server
        candidates = sorted((c for c in server.clients.values() if evictable(c)),
                            key=lambda c: c.mem_extra, reverse=True)
        for c in candidates:
            if used < self.limit:
                return
            used -= CLIENT_MEMORY + c.mem_extra
            log.info("Evicting client: %s", c.info_line())
            server.stats["evicted_clients"] += 1
            c.closing = c.closed = True
            c.transport.abort()  # its unsent output goes too
            server.client_gone(c)
        self.stuck = used >= self.limit  # the rest is no-evict, replicas, the primary

    def info(self) -> List[Tuple[str, Any]]:
        normal, replicas = self.totals()
        return [("mem_clients_slaves", replicas), ("mem_clients_normal", normal)]


def install(server: "CacheServer") -> ClientMemory:
    tracker = ClientMemory(server)
    server.client_memory = tracker  # type: ignore[attr-defined]
    server.cron_jobs.append(tracker.cron)
    server.disconnect_hooks.append(tracker.gone)

    def on_config(name: str) -> None:
        if name in ("maxmemory-clients", "maxmemory"):
            tracker.configure()
        else:  # CacheServer._apply_config reset it
            tracker.set_checks()

    server.config_hooks.append(on_config)
    return tracker
