"""Consumer groups' state: groups, consumers and their pending entries lists
(:class:`Pel`) of :class:`Nack` s, a nack shared between a group's list and its
consumer's, as in Redis.
"""
from __future__ import annotations

import time
from bisect import bisect_left
from typing import Dict, Iterator, List, Optional, Tuple

from .stream_node import MAX_ID


def wall_ms() -> int:
    """The clock for delivery and seen times. Not keyspace.now_ms: a log replay
    stops that one (nothing expires meanwhile), and a replayed XCLAIM ... TIME must
    keep its time, which is checked against now."""
    return int(time.time() * 1000)


class Nack:
    """A pending entry: who has it, since when, and how many deliveries."""

    __slots__ = ("consumer", "delivery_time", "delivery_count")

    def __init__(self, consumer: "Consumer", delivery_time: int, delivery_count: int = 1) -> None:
        self.consumer = consumer
        self.delivery_time = delivery_time
        self.delivery_count = delivery_count


class Pel:
    """A pending entries list: id -> Nack, iterable in id order.

    ``order`` is sorted and may keep ids already removed from ``items``
    (skipped when iterating, compacted once they are half of it), so an
    acknowledgement is O(1) and a delivery of a new id an append.
    """

    __slots__ = ("items", "order")

    def __init__(self) -> None:
        self.items: Dict[int, Nack] = {}
        self.order: List[int] = []

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, entry_id: int) -> bool:
        return entry_id in self.items

    def get(self, entry_id: int) -> Optional[Nack]:
        return self.items.get(entry_id)

    def add(self, entry_id: int, nack: Nack) -> None:
        if entry_id not in self.items:
            order = self.order
            if not order or order[-1] < entry_id:
                order.append(entry_id)
            else:
                i = bisect_left(order, entry_id)
                if i == len(order) or order[i] != entry_id:
                    order.insert(i, entry_id)
        self.items[entry_id] = nack

    def remove(self, entry_id: int) -> Optional[Nack]:
        nack = self.items.pop(entry_id, None)
        if nack is not None and len(self.order) > 2 * len(self.items) + 32:
            items = self.items
            self.order = [i for i in self.order if i in items]
        return nack

    def ids_from(self, start: int = 0, end: int = MAX_ID) -> Iterator[int]:
        """Pending ids in [start, end], ascending (a snapshot: safe to change meanwhile)."""
        order, items = self.order, self.items
        i = bisect_left(order, start)
        while i < len(order):
            entry_id = order[i]
            i += 1
            if entry_id > end:
                return
            if entry_id in items:
                yield entry_id

    def first_last(self) -> Tuple[int, int]:
        """The lowest and highest pending ids (the list is not empty)."""
        items = self.items
        first = next(i for i in self.order if i in items)
        last = next(i for i in reversed(self.order) if i in items)
        return first, last


class Consumer:
    __slots__ = ("name", "seen_time", "pel")

    def __init__(self, name: bytes, now: int) -> None:
        self.name = name
        self.seen_time = now
        self.pel = Pel()


class Group:
    __slots__ = ("name", "last_id", "entries_read", "pel", "consumers")

    def __init__(self, name: bytes, last_id: int, entries_read: int) -> None:
        self.name = name
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel = Pel()
        #: name -> Consumer (listed sorted by name, as Redis's rax)
        self.consumers: Dict[bytes, Consumer] = {}
