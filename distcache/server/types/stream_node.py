"""A stream's node: up to ``stream-node-max-entries`` entries shaped like one of
Redis's listpacks, and the listpack sizes that decide where Redis cuts them.

An id ``ms-seq`` is held as one int, ``ms << 64 | seq``. A :class:`Node` holds two
``array('Q')`` of its ids' halves and one ``bytearray`` with each entry's
field-value array already encoded as a RESP reply, so a range reply is a join
of slices. Nodes are cut where Redis cuts its listpacks (entry count including
deleted entries, and Redis's listpack byte size, estimated by
:func:`lp_entry_size`), so ``MAXLEN ~``/``MINID ~`` trim the same entries as
redis-server.
"""
from __future__ import annotations

import re
from array import array
from typing import Any, List, Optional

MASK = (1 << 64) - 1
MAX_ID = (1 << 128) - 1
#: Redis's STREAM_LISTPACK_MAX_SIZE: the cut when stream-node-max-bytes is 0.
LISTPACK_MAX_SIZE = 1 << 30


class NodeLimits:
    """stream-node-max-bytes and stream-node-max-entries (0: no limit), as the config
    sets them. Process-wide, as the command table: one server per process."""

    __slots__ = ("max_bytes", "max_entries", "fast_entries")

    def __init__(self) -> None:
        self.set(4096, 100)

    def set(self, max_bytes: int, max_entries: int) -> None:
        self.max_bytes = max_bytes if 0 < max_bytes <= LISTPACK_MAX_SIZE else LISTPACK_MAX_SIZE
        self.max_entries = max_entries
        #: Entries below which a node takes another one without further checks:
        #: under the limit, and with the counters on 2 bytes (Stream.append).
        self.fast_entries = min(max_entries or 127, 127)


limits = NodeLimits()


def install(server: Any) -> None:
    """Follow stream-node-max-bytes/-entries: new nodes are cut by their values."""
    def configure(name: str = "stream-node-max-bytes") -> None:
        if name.startswith("stream-node-max-"):
            config = server.config
            limits.set(config["stream-node-max-bytes"], config["stream-node-max-entries"])

    configure()
    server.config_hooks.append(configure)


I64_MIN = 1 << 63
I64_MAX = I64_MIN - 1


def wrap64(n: int) -> int:
    """``n`` as Redis's ``long long`` counters hold it: wrapped to 64 signed bits.

    entries_added, entries_read, lag and delivery counts can be set near the
    top (XSETID ENTRIESADDED, XGROUP ... ENTRIESREAD, XCLAIM RETRYCOUNT) and then
    grow: unwrapped, they became RESP integers no client parses and made every
    snapshot fail (struct.error)."""
    return ((n + I64_MIN) & MASK) - I64_MIN
#: First bytes of a value that may be an integer (Redis stores those as integers).
NUMERIC_FIRST = frozenset(bytes([c]) for c in b"-0123456789")
_INT64 = re.compile(rb"-?[1-9][0-9]{0,18}\Z|0\Z|-?9[0-9]{18}\Z")


#: The text of small sequence numbers (an id's text is its ms's, cached, and this).
SEQ_TEXT = [b"%d" % n for n in range(1024)]
#: Those texts with CRLF (the end of an id's bulk string).
SEQ_LINES = [text + b"\r\n" for text in SEQ_TEXT]
#: Those seqs as an array('Q')'s bytes: a run of them is a slice.
SEQ_BYTES = array("Q", range(len(SEQ_TEXT))).tobytes()
#: An entry's reply up to its id's text, by that text's length (at most 41).
_ENTRY_HEADS = [b"*2\r\n$%d\r\n" % n for n in range(42)]


def fmt_id(i: int) -> bytes:
    return b"%d-%d" % (i >> 64, i & MASK)


def int_size(n: int) -> int:
    """Bytes of a listpack integer element (encoding, data, backlen)."""
    if 0 <= n <= 127:
        return 2
    if -4096 <= n <= 4095:
        return 3
    if -32768 <= n <= 32767:
        return 4
    if -8388608 <= n <= 8388607:
        return 5
    if -2147483648 <= n <= 2147483647:
        return 6
    return 10


def lp_entry_size(s: bytes) -> int:
    """Bytes of a listpack element holding ``s`` (as Redis encodes it)."""
    size = len(s)
    if size <= 20 and _INT64.match(s):
        n = int(s)
        if -(1 << 63) <= n < 1 << 63:
            return int_size(n)
    if size < 64:
        return size + 2
    if size < 4096:
        return size + 2 + (1 if size + 2 <= 127 else 2)
    body = size + 5
    return body + (2 if body < 16383 else 3 if body < 2097151 else 4 if body < 268435455 else 5)


def diff_size(d: int) -> int:
    """Bytes of a listpack integer holding a seq-diff (Redis's int64 wrap included)."""
    if 0 <= d < 128:
        return 2
    return int_size(d + (1 << 64) if d < -(1 << 63) else d)


#: (low, high, bytes fewer than 10) of the integer encodings, widest first.
_INT_RANGES = ((-(1 << 31), 1 << 31, 4), (-8388608, 8388608, 1), (-32768, 32768, 1),
               (-4096, 4096, 1), (0, 128, 1))


def diffs_size(lo: int, hi: int) -> int:
    """The sum of :func:`diff_size` over ``range(lo, hi)``."""
    if 0 <= lo and hi <= 128:
        return 2 * (hi - lo)
    if lo < -(1 << 63) or hi > 1 << 63:  # wrapped diffs: one at a time
        return sum(map(diff_size, range(lo, hi)))
    total = 10 * (hi - lo)
    for low, high, fewer in _INT_RANGES:
        overlap = min(hi, high) - max(lo, low)
        if overlap > 0:
            total -= fewer * overlap
    return total


def resp_fields(fields: List[bytes]) -> bytes:
    """An entry's field-value list as a RESP array of bulk strings."""
    if len(fields) == 2:
        f, v = fields
        return b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(f), f, len(v), v)
    return b"*%d\r\n%s" % (len(fields), b"".join(
        [b"$%d\r\n%s\r\n" % (len(f), f) for f in fields]))


def parse_fields(blob: bytes) -> List[bytes]:
    """The inverse of :func:`resp_fields`."""
    end = blob.index(b"\r\n")
    n = int(blob[1:end])
    pos = end + 2
    out: List[bytes] = []
    for _ in range(n):
        end = blob.index(b"\r\n", pos)
        size = int(blob[pos + 1:end])
        pos = end + 2
        out.append(bytes(blob[pos:pos + size]))
        pos += size + 2
    return out


class Node:
    """Up to NODE_MAX_ENTRIES consecutive entries (one Redis listpack)."""

    __slots__ = ("ms", "seq", "offs", "blob", "master", "deleted", "lp_base", "key", "head",
                 "fast")

    def __init__(self, fields: List[bytes], key: int) -> None:
        #: The id of the node's first entry ever (Redis's rax key and master id: it
        #: stays when that entry is deleted).
        self.key = key
        self.ms = array("Q")
        self.seq = array("Q")
        self.offs = array("I", [0])  # entry i is blob[offs[i]:offs[i + 1]]
        self.blob = bytearray()
        #: The field names of the node's first entry (Redis's master entry).
        self.master = fields[::2]
        #: An entry's RESP text up to its first value (for a one-field master).
        self.head = b"*2\r\n$%d\r\n%s\r\n" % (len(fields[0]), fields[0])
        #: The field a one-field entry names to take Stream.append_pair's folded
        #: path: the master's only field, while no entry was deleted; else None.
        self.fast: Optional[bytes] = fields[0] if len(fields) == 2 else None
        #: Entries Redis still holds flagged deleted (they count towards the cut).
        self.deleted = 0
        #: Redis's listpack size without the live/deleted counters.
        self.lp_base = 7 + int_size(len(self.master)) + 2 + sum(
            lp_entry_size(f) for f in self.master)

    def __len__(self) -> int:
        return len(self.ms)

    def first(self) -> int:
        return self.ms[0] << 64 | self.seq[0]

    def last(self) -> int:
        return self.ms[-1] << 64 | self.seq[-1]

    def id_at(self, i: int) -> int:
        return self.ms[i] << 64 | self.seq[i]

    def entry(self, i: int) -> bytes:
        offs = self.offs
        return bytes(self.blob[offs[i]:offs[i + 1]])

    def lower(self, target: int) -> int:
        """Index of the first entry with id >= target (len(self) if none)."""
        ms, seq = self.ms, self.seq
        tms, tseq = target >> 64, target & MASK
        lo, hi = 0, len(ms)
        while lo < hi:
            mid = (lo + hi) >> 1
            m = ms[mid]
            if m < tms or (m == tms and seq[mid] < tseq):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def remove(self, i: int, count: int = 1) -> None:
        """Drop entries i..i+count-1 (Redis flags them deleted in its listpack)."""
        offs = self.offs
        a, b = offs[i], offs[i + count]
        del self.blob[a:b]
        del self.ms[i:i + count]
        del self.seq[i:i + count]
        del offs[i + 1:i + count + 1]
        shift = b - a
        for j in range(i + 1, len(offs)):
            offs[j] -= shift
        self.deleted += count
        self.fast = None

    def copy(self) -> "Node":
        other = Node.__new__(Node)
        other.ms, other.seq, other.offs = array("Q", self.ms), array("Q", self.seq), \
            array("I", self.offs)
        other.blob = bytearray(self.blob)
        other.master, other.deleted, other.lp_base = self.master, self.deleted, self.lp_base
        other.key, other.head, other.fast = self.key, self.head, self.fast
        return other

    def encode(self, lo: int, hi: int, parts: List[bytes], rev: bool = False) -> None:
        """Append the entries lo..hi-1 (``rev``: from hi-1 down) as RESP [id, [field,
        value...]] to ``parts``: an id's ms text once while it repeats, small seqs
        from a table, the arrays read by slices rather than one index at a time."""
        offs, blob = self.offs, self.blob
        add = parts.extend
        seq_lines = SEQ_LINES
        prev = -1
        ms_text = b""
        heads: List[bytes] = []
        rows = zip(self.ms[lo:hi], self.seq[lo:hi], offs[lo:hi], offs[lo + 1:hi + 1])
        for m, q, a, b in (reversed(list(rows)) if rev else rows):
            if m != prev:
                prev = m
                ms_text = b"%d-" % m
                heads = [b""] * 23  # the reply up to the seq, by the seq's line length
            line = seq_lines[q] if q < 1024 else b"%d\r\n" % q
            head = heads[len(line)]
            if not head:
                head = heads[len(line)] = _ENTRY_HEADS[len(ms_text) + len(line) - 2] + ms_text
            add((head, line, blob[a:b]))
