"""Cursors for SCAN, HSCAN, SSCAN and ZSCAN.

Python's dicts expose no bucket order to resume from, so a scan of a large
collection starts by taking a snapshot of its keys (one C-speed copy) and
the cursor names the snapshot and the position in it. Every element that
exists for the whole scan is returned exactly once; elements added during
the scan may or may not be. Snapshots are bounded in number and age; a
cursor whose snapshot was dropped restarts from a fresh snapshot at the same
position, which can repeat or skip elements, as a Redis rehash can repeat
them. Their total size is bounded too: a client opening many scans of a
large keyspace (SCAN 0 COUNT 1, over and over) would otherwise hold up to
MAX_SNAPSHOTS copies of it.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Iterable, List, Optional, Tuple

from .errors import CommandError, SYNTAX
from .glob import compile_glob
from .commands.args import to_int

POS_BITS = 32
MAX_SNAPSHOTS = 256
SNAPSHOT_TTL = 300.0  # seconds a snapshot lives without being used
#: Entries all snapshots may hold together: this many, or SNAPSHOT_FACTOR times
#: the snapshot in use, whichever is more (a few concurrent full scans).
SNAPSHOT_ENTRIES = 1 << 20
SNAPSHOT_FACTOR = 4


class ScanCursors:
    def __init__(self) -> None:
        self._snapshots: "OrderedDict[int, Tuple[List[Any], float]]" = OrderedDict()
        self._next_id = 1
        self._entries = 0  # items held by all snapshots

    def page(self, cursor: int, source: Callable[[], Iterable[Any]], count: int
             ) -> Tuple[int, List[Any]]:
        """Up to ``count`` items from ``source`` at ``cursor``; returns (next cursor, items)."""
        sid, pos = cursor >> POS_BITS, cursor & ((1 << POS_BITS) - 1)
        entry = self._snapshots.get(sid) if sid else None
        if entry is None:
            items = list(source())
            if cursor == 0 and len(items) <= count:
                return 0, items
            sid = self._new_id()
        else:
            items = entry[0]
        chunk = items[pos:pos + count]
        pos += count
        if pos >= len(items):
            self._drop(sid)
            return 0, chunk
        if entry is None:
            self._drop(sid)  # an id reused after wrapping around
            self._entries += len(items)
        self._snapshots[sid] = (items, time.monotonic())
        self._snapshots.move_to_end(sid)
        self._trim(max(SNAPSHOT_ENTRIES, SNAPSHOT_FACTOR * len(items)))
        return (sid << POS_BITS) | pos, chunk

    @property
    def held(self) -> int:
        """Entries held by all snapshots together."""
        return self._entries

    def _drop(self, sid: int) -> None:
        entry = self._snapshots.pop(sid, None)
        if entry is not None:
            self._entries -= len(entry[0])

    def _new_id(self) -> int:
        sid = self._next_id
        self._next_id = self._next_id % ((1 << 31) - 1) + 1
        return sid

    def _trim(self, budget: int) -> None:
        """Drop the least recently used snapshots while there are too many, too
        old, or holding more than ``budget`` entries (the newest always stays)."""
        now = time.monotonic()
        snapshots = self._snapshots
        while len(snapshots) > 1:
            oldest, (items, used) = next(iter(snapshots.items()))
            if len(snapshots) <= MAX_SNAPSHOTS and now - used <= SNAPSHOT_TTL \
                    and self._entries <= budget:
                break
            self._drop(oldest)


class ScanArgs:
    """Parsed MATCH / COUNT / TYPE / NOVALUES options of the SCAN family."""

    __slots__ = ("cursor", "match", "count", "type", "novalues")

    def __init__(self, args: List[bytes], start: int, allow_type: bool = False) -> None:
        self.cursor = parse_cursor(args[start - 1])
        self.match: Optional[Callable[[bytes], bool]] = None
        self.count = 10
        self.type: Optional[str] = None
        self.novalues = False
        i = start
        while i < len(args):
            opt = args[i].upper()
            if opt == b"COUNT" and i + 1 < len(args):
                self.count = to_int(args[i + 1])
                if self.count < 1:
                    raise CommandError(SYNTAX)
                i += 2
            elif opt == b"MATCH" and i + 1 < len(args):
                pattern = args[i + 1]
                self.match = None if pattern == b"*" else compile_glob(pattern)
                i += 2
            elif opt == b"TYPE" and allow_type and i + 1 < len(args):
                self.type = args[i + 1].decode("utf-8", "replace").lower()
                i += 2
            else:
                raise CommandError(SYNTAX)


def parse_cursor(arg: bytes) -> int:
    """A cursor as Redis reads it with strtoul: optional sign, "-1" wraps to 2**64-1."""
    digits = arg[1:] if arg[:1] in (b"+", b"-") else arg
    if arg and not digits.isdigit():
        raise CommandError("ERR invalid cursor")
    digits = digits.lstrip(b"0")  # strtoul takes any number of leading zeros
    # Past 20 digits it is out of range, and int() refuses past 4300 digits.
    value = int(digits or b"0") if len(digits) <= 20 else 1 << 64
    if value >= 1 << 64:
        raise CommandError("ERR invalid cursor")
    return (-value) % (1 << 64) if arg[:1] == b"-" else value
