"""Shards: a primary with zero or more replicas, the unit the ring places keys on.

A pool entry is ``"h1:2050 replicas=h1b:2050"`` (repeat ``replicas=`` or
join addresses with ``+`` for more than one), optionally ``name=shard-a``.
An unnamed shard is placed on the ring by its primary's address, so a pool
without replicas places keys exactly as before (ketama-identical); a named
shard is placed by its name, so replacing its servers never moves keys.
Failover inside a shard (a replica answering reads, a promoted replica
taking writes) never changes placement.
"""
from __future__ import annotations

import random
import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

from .errors import ServerDown
from .ring import KetamaRing, ServerSpec, parse_servers, pool_items

__all__ = ["Shard", "ShardMap", "parse_shards", "SHARD_OPTIONS"]

#: Options of a pool entry that belong to the shard, not to its primary's spec.
SHARD_OPTIONS = ("replicas=", "name=")


class Shard:
    """A primary (current; it changes on a promotion) and its replicas.

    ``placement`` is the ring's spec for the shard: the first primary's
    spec, or ``ServerSpec(name, 0, weight)`` for a named shard (its points
    are named ``name-N``).
    """

    __slots__ = ("name", "placement", "primary", "replicas", "service")

    def __init__(self, primary: ServerSpec, replicas: Iterable[ServerSpec] = (),
                 name: Optional[str] = None, service: Optional[str] = None) -> None:
        self.primary = primary
        self.replicas: List[ServerSpec] = list(replicas)
        self.service = service
        self.name = name or primary.address
        self.placement = (ServerSpec(name, 0, primary.weight) if name
                          else primary)

    @property
    def servers(self) -> List[ServerSpec]:
        """The primary, then the replicas."""
        return [self.primary] + [r for r in self.replicas if r != self.primary]

    def __repr__(self) -> str:
        replicas = " ".join(f"replicas={r.address}" for r in self.replicas)
        return f"Shard({self.name!r}: {self.primary.address} {replicas})".replace(" )", ")")


def _parse_entry(item: Any) -> Shard:
    if isinstance(item, Shard):
        return item
    if isinstance(item, bytes):
        item = item.decode()
    if not isinstance(item, str):
        return Shard(parse_servers([item])[0])
    words, replicas, name = [], [], None
    for word in item.split():
        lower = word.lower()
        if lower.startswith("replicas=") or lower.startswith("replica="):
            value = word.split("=", 1)[1]
            replicas += parse_servers([part for part in value.split("+") if part])
        elif lower.startswith("name="):
            name = word.split("=", 1)[1]
            if not name:
                raise ValueError(f"empty shard name in {item!r}")
        else:
            words.append(word)
    primary = parse_servers([" ".join(words)])[0]
    return Shard(primary, replicas, name)


def parse_shards(value: Any) -> List[Shard]:
    """Normalise a pool: anything :func:`parse_servers` takes, where string
    entries may add ``replicas=ADDR[+ADDR...]`` and ``name=NAME``."""
    shards = [_parse_entry(item) for item in pool_items(value, (Shard,))]
    seen: set = set()
    for shard in shards:
        for key in {shard.placement.address, *(s.address for s in shard.servers)}:
            if key in seen:
                raise ValueError(f"server {key} is listed twice")
            seen.add(key)
    return shards


class ShardMap:
    """The ring over shards plus the routing decisions that involve replicas."""

    def __init__(self, shards: List[Shard], read_from_replicas: bool = False,
                 failover_timeout: float = 0.0) -> None:
        self.shards = shards
        self.ring = KetamaRing([s.placement for s in shards])
        self.by_placement: Dict[ServerSpec, Shard] = {s.placement: s for s in shards}
        self.by_name: Dict[str, Shard] = {s.name: s for s in shards}
        self.read_from_replicas = read_from_replicas
        #: How long writes to a Sentinel shard wait for a promotion.
        self.failover_timeout = failover_timeout
        self._down_since: Dict[str, float] = {}

    # -- promotions (Sentinel shards) ---------------------------------------------
    def mark(self, server: ServerSpec, state: str) -> None:
        """Health state changes: when each server went down."""
        if state == "down":
            self._down_since.setdefault(server.address, time.monotonic())
        else:
            self._down_since.pop(server.address, None)

    def promoting(self, shard: Shard, monitor: Any) -> bool:
        """True while writes to ``shard`` should wait for Sentinel to promote a
        replica: its primary is down for less than ``failover_timeout``."""
        if shard.service is None or monitor is None or _is_up(monitor, shard.primary):
            return False
        since = self._down_since.setdefault(shard.primary.address, time.monotonic())
        return time.monotonic() - since < self.failover_timeout

    def promotion_delay(self, keys: Iterable[Optional[bytes]], monitor: Any) -> float:
        """Seconds to sleep before routing writes of ``keys`` (0.0: route now)."""
        for key in keys:
            if self.promoting(self.shard_for(key), monitor):
                return 0.05
        return 0.0

    def switch(self, name: str, new: ServerSpec, known: List[ServerSpec]) -> Optional[Shard]:
        """Sentinel promoted ``new`` in shard ``name``; the old primary becomes a
        replica (Sentinel reconfigures it when it returns)."""
        shard = self.by_name.get(name)
        if shard is None or shard.primary.address == new.address:
            return None
        new = next((s for s in known if s.address == new.address), new)
        old = shard.primary
        shard.replicas = [r for r in shard.replicas if r.address != new.address] + [old]
        shard.primary = new
        return shard

    def all_servers(self) -> List[ServerSpec]:
        """Every server of every shard, primaries first."""
        out = [s.primary for s in self.shards]
        out += [r for s in self.shards for r in s.replicas if r not in out]
        return out

    def primaries(self) -> List[ServerSpec]:
        return [s.primary for s in self.shards]

    def shard_for(self, key: Optional[bytes]) -> Shard:
        if key is None:
            return self.shards[0]
        return self.by_placement[self.ring.get_server(key)]

    def route(self, key: Optional[bytes], reading: bool, monitor: Any, failover: str,
              owner_only: bool, wait: bool = True) -> Tuple[ServerSpec, bool]:
        """(server, on_a_stand_in_shard) for ``key``; raises ServerDown.

        A write to a Sentinel shard whose primary is being replaced gets
        ``(primary, True)`` with ``wait``: the caller's slow path waits
        (:meth:`promotion_delay`) and routes again without ``wait``."""
        shard = self.shard_for(key)
        primary = shard.primary
        if wait and not reading and self.promoting(shard, monitor):
            return primary, True
        up = (lambda s: True) if monitor is None else (lambda s: _is_up(monitor, s))
        if reading and self.read_from_replicas and shard.replicas:
            live = [r for r in shard.replicas if up(r)]
            if live:
                return random.choice(live), False
        if up(primary):
            return primary, False
        if reading:  # the primary is down: its replicas hold its keys
            for replica in shard.replicas:
                if up(replica):
                    return replica, False
        if failover == "error" or owner_only:
            raise _down(primary)
        if key is None:
            order: Iterable[Shard] = self.shards
        else:
            order = (self.by_placement[p] for p in self.ring.iter_servers(key))
        for other in order:
            if up(other.primary):
                return other.primary, other is not shard
        raise _down(primary, "and no other server is up")


def _is_up(monitor: Any, server: ServerSpec) -> bool:
    try:
        return monitor.is_up(server)
    except KeyError:  # a server Sentinel announced after the monitor started
        return True


def _down(server: ServerSpec, extra: str = "") -> ServerDown:
    return ServerDown(f"server {server.address} is down {extra}".strip())
