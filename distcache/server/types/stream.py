"""The stream type: entries in id order, in nodes shaped like Redis's listpacks.

An id ``ms-seq`` is held as one int, ``ms << 64 | seq``. Entries live in
:class:`Node` s of at most ``stream-node-max-entries`` (100) entries: two
``array('Q')`` of the ids' halves and one ``bytearray`` holding each entry's
field-value array already encoded as a RESP reply, so a range reply is a join
of slices. A stream of a million small entries costs about 60 bytes an entry
(ids 16, offset 4, the RESP text), and every operation touches only the
node list (bisect over the nodes' first ids) and one or two nodes:
XADD is O(1), XRANGE O(log n + count), XDEL and trimming O(node size).

Nodes are cut where Redis cuts its listpacks (entry count including deleted
entries, and Redis's listpack byte size, estimated by :func:`_lp_entry_size`), so
``MAXLEN ~``/``MINID ~`` trim the same entries as redis-server.

Consumer groups keep pending entries lists (:class:`Pel`) of :class:`Nack` s,
shared between a group's list and its consumer's, as in Redis.
"""
from __future__ import annotations

import re
import struct
import sys
import time
from array import array
from bisect import bisect_left, bisect_right
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ...protocol.resp import BULK_HEADERS

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
#: Streams with more nodes get an estimate of their radix tree's node count.
RAX_EXACT_KEYS = 50_000
#: Redis's SCG_INVALID_ENTRIES_READ.
INVALID_READ = -1
_I64_MIN = 1 << 63
_I64_MAX = _I64_MIN - 1


def wrap64(n: int) -> int:
    """``n`` as Redis's ``long long`` counters hold it: wrapped to 64 signed bits.

    entries_added, entries_read, lag and delivery counts can be set near the
    top (XSETID ENTRIESADDED, XGROUP ... ENTRIESREAD, XCLAIM RETRYCOUNT) and then
    grow: unwrapped, they became RESP integers no client parses and made every
    snapshot fail (struct.error)."""
    return ((n + _I64_MIN) & MASK) - _I64_MIN
#: First bytes of a value that may be an integer (Redis stores those as integers).
_NUMERIC = frozenset(bytes([c]) for c in b"-0123456789")
_INT64 = re.compile(rb"-?[1-9][0-9]{0,18}\Z|0\Z|-?9[0-9]{18}\Z")


def wall_ms() -> int:
    """The clock for delivery and seen times. Not keyspace.now_ms: a log replay
    stops that one (nothing expires meanwhile), and a replayed XCLAIM ... TIME must
    keep its time, which is checked against now."""
    return int(time.time() * 1000)


#: The text of small sequence numbers (an id's text is its ms's, cached, and this).
SEQ_TEXT = [b"%d" % n for n in range(1024)]
#: Those seqs as an array('Q')'s bytes: a run of them is a slice.
_SEQ_BYTES = array("Q", range(len(SEQ_TEXT))).tobytes()
#: An entry's reply up to its id's text, by that text's length (at most 41).
_ENTRY_HEADS = [b"*2\r\n$%d\r\n" % n for n in range(42)]


def fmt_id(i: int) -> bytes:
    return b"%d-%d" % (i >> 64, i & MASK)


def _int_size(n: int) -> int:
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


def _lp_entry_size(s: bytes) -> int:
    """Bytes of a listpack element holding ``s`` (as Redis encodes it)."""
    size = len(s)
    if size <= 20 and _INT64.match(s):
        n = int(s)
        if -(1 << 63) <= n < 1 << 63:
            return _int_size(n)
    if size < 64:
        return size + 2
    if size < 4096:
        return size + 2 + (1 if size + 2 <= 127 else 2)
    body = size + 5
    return body + (2 if body < 16383 else 3 if body < 2097151 else 4 if body < 268435455 else 5)


def _diff_size(d: int) -> int:
    """Bytes of a listpack integer holding a seq-diff (Redis's int64 wrap included)."""
    if 0 <= d < 128:
        return 2
    return _int_size(d + (1 << 64) if d < -(1 << 63) else d)


#: (low, high, bytes fewer than 10) of the integer encodings, widest first.
_INT_RANGES = ((-(1 << 31), 1 << 31, 4), (-8388608, 8388608, 1), (-32768, 32768, 1),
               (-4096, 4096, 1), (0, 128, 1))


def _diffs_size(lo: int, hi: int) -> int:
    """The sum of :func:`_diff_size` over ``range(lo, hi)``."""
    if 0 <= lo and hi <= 128:
        return 2 * (hi - lo)
    if lo < -(1 << 63) or hi > 1 << 63:  # wrapped diffs: one at a time
        return sum(map(_diff_size, range(lo, hi)))
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
        self.lp_base = 7 + _int_size(len(self.master)) + 2 + sum(
            _lp_entry_size(f) for f in self.master)

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
        heads, seq_text = _ENTRY_HEADS, SEQ_TEXT
        prev = -1
        ms_text = b""
        rows = zip(self.ms[lo:hi], self.seq[lo:hi], offs[lo:hi], offs[lo + 1:hi + 1])
        for m, q, a, b in (reversed(list(rows)) if rev else rows):
            if m != prev:
                prev = m
                ms_text = b"%d-" % m
            text = ms_text + (seq_text[q] if q < 1024 else b"%d" % q)
            add((heads[len(text)], text, b"\r\n", blob[a:b]))


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


class Stream:
    """A Redis stream: entries, the id bookkeeping of 7.0, and consumer groups."""

    __slots__ = ("nodes", "firsts", "length", "last_id", "first_id", "max_deleted",
                 "entries_added", "groups")

    def __init__(self) -> None:
        self.nodes: List[Node] = []
        self.firsts: List[int] = []  # first id of each node, for bisect
        self.length = 0
        self.last_id = 0
        self.first_id = 0
        self.max_deleted = 0
        self.entries_added = 0
        #: name -> Group (listed sorted by name, as Redis's rax)
        self.groups: Dict[bytes, Group] = {}

    def __len__(self) -> int:
        # Never falsy: an empty stream is still a key (remove_if_empty keeps it).
        return self.length

    def __bool__(self) -> bool:
        return True

    # -- writes ---------------------------------------------------------------------

    def append(self, entry_id: int, fields: List[bytes]) -> None:
        """Add an entry whose id is above last_id (checked by the caller)."""
        ms, seq = entry_id >> 64, entry_id & MASK
        if len(fields) == 2:
            self.append_pair(entry_id, ms, seq, fields[0], fields[1])
        else:
            self._append(entry_id, ms, seq, fields)

    def append_pair(self, entry_id: int, ms: int, seq: int, f: bytes, v: bytes) -> None:
        """:meth:`append` of a one-field entry, ``entry_id`` given as its halves too.

        The common entry, a short value not a number (its first byte not in
        _NUMERIC) named as the node's first entry (``node.fast``: no entry
        deleted, so ``ms[0]`` is the master entry the diffs are from), takes the
        general path's sizes folded: this is most of XADD's cost."""
        nodes = self.nodes
        if nodes:
            node = nodes[-1]
            n = len(v)
            nms = node.ms
            if len(nms) < limits.fast_entries and 0 < n < 64 and (v[0] > 57 or v[0] < 45) \
                    and node.fast == f:
                lp = node.lp_base + n
                if lp + 4 + len(f) < limits.max_bytes:
                    ms_diff = ms - nms[0]
                    seq_diff = seq - node.seq[0]
                    if seq_diff < -(1 << 63):
                        seq_diff += 1 << 64
                    # flags, ms-diff, seq-diff, value, lp-count
                    node.lp_base = lp + 6 + (2 if ms_diff < 128 else _int_size(ms_diff)) \
                        + (2 if 0 <= seq_diff < 128 else _int_size(seq_diff))
                    nms.append(ms)
                    node.seq.append(seq)
                    blob = node.blob
                    blob += b"".join((node.head, BULK_HEADERS[n], v, b"\r\n"))
                    node.offs.append(len(blob))
                    self.length += 1
                    added = self.entries_added
                    self.entries_added = added + 1 if added < _I64_MAX else -_I64_MIN
                    self.last_id = entry_id
                    return
        self._append(entry_id, ms, seq, [f, v])

    def append_run(self, ms: int, seq: int, requests: Sequence[List[bytes]], start: int,
                   stop: int, at: int) -> None:
        """Append one entry per request of ``requests[start:stop]`` (argument lists
        of at least ``at + 2`` items, the fields from index ``at``) with the ids
        ms-seq, ms-(seq+1)... The ids are above last_id and the seqs fit 64 bits
        (the caller's checks).

        :meth:`append_pair`'s folded path for a batch: the entries the last node
        takes as it would are found first (their sizes bounded by the largest
        seq-diff's), then written at once: the node's ms and seq arrays extended,
        values of one length joined in one go, the stream's counters set once."""
        nodes = self.nodes
        value_at = at + 1
        fields_end = at + 2
        k = start
        while k < stop:
            f = None
            if nodes:
                node = nodes[-1]
                f = node.fast
            if f is not None:
                nms = node.ms
                end = min(stop, k + limits.fast_entries - len(nms))
                ms_diff = ms - nms[0]
                # flags, ms-diff, the value's CRLF-less overhead and lp-count (append_pair's sum)
                fixed = 6 + (2 if ms_diff < 128 else _int_size(ms_diff))
                d0 = seq - node.seq[0]
                bound = fixed + max(_diff_size(d0), _diff_size(d0 + end - k - 1))
                room = limits.max_bytes - 4 - len(f)
                lp = node.lp_base
                n0 = len(requests[k][value_at])
                mixed = False
                taken = k
                while k < end:
                    args = requests[k]
                    v = args[value_at]
                    n = len(v)
                    if len(args) != fields_end or args[at] != f or not 0 < n < 64 \
                            or 44 < v[0] < 58 or lp + n >= room:
                        break
                    if n != n0:
                        mixed = True
                    lp += n + bound  # at least the entry's size: the room check holds
                    k += 1
                count = k - taken
                if count:
                    values = [r[value_at] for r in requests[taken:k]]
                    lp += _diffs_size(d0, d0 + count) - count * (bound - fixed)
                    self._write_run(node, ms, seq, values, -1 if mixed else n0, lp)
                    seq += count
                    continue
            # Not the folded entry (or no node takes it): the general append.
            self._append(ms << 64 | seq, ms, seq, requests[k][at:])
            seq += 1
            k += 1

    def _write_run(self, node: Node, ms: int, seq: int, values: List[bytes], size: int,
                   lp_base: int) -> None:
        """:meth:`append_run`'s writes of the ``values`` of one-field entries the
        last node takes (``size``: their common length, -1 if they differ)."""
        count = len(values)
        node.ms.extend(array("Q", (ms,)) * count)
        if seq + count <= len(SEQ_TEXT):
            node.seq.frombytes(_SEQ_BYTES[seq * 8:(seq + count) * 8])
        else:
            node.seq.extend(range(seq, seq + count))
        blob, head, offs = node.blob, node.head, node.offs
        if size >= 0:  # one join, and the offsets a progression
            prefix = head + BULK_HEADERS[size]
            blob += b"".join((prefix, (b"\r\n" + prefix).join(values), b"\r\n"))
            step = len(prefix) + size + 2
            pos = offs[-1]
            offs.extend(range(pos + step, pos + step * count + 1, step))
        else:
            add_off = offs.append
            for v in values:
                blob += b"".join((head, BULK_HEADERS[len(v)], v, b"\r\n"))
                add_off(len(blob))
        node.lp_base = lp_base
        added = self.entries_added + count
        self.entries_added = added if added <= _I64_MAX else wrap64(added)
        self.length += count
        self.last_id = ms << 64 | (seq + count - 1)

    def _append(self, entry_id: int, ms: int, seq: int, fields: List[bytes]) -> None:
        """The general append: any entry, a new node where Redis cuts one."""
        nodes = self.nodes
        if nodes:
            node = nodes[-1]
            live, deleted = len(node.ms), node.deleted
            # Redis's cut (streamAppendItem): the listpack's bytes (its two counters
            # included) plus the new elements' lengths, or live plus deleted entries.
            lp_bytes = node.lp_base + (2 if live < 128 else _int_size(live)) \
                + (2 if deleted < 128 else _int_size(deleted))
            new_node = lp_bytes + sum(map(len, fields)) >= limits.max_bytes \
                or 0 < limits.max_entries <= live + deleted
        else:
            new_node = True
        if new_node:
            node = Node(fields, entry_id)
            nodes.append(node)
            self.firsts.append(entry_id)
            ms_diff = seq_diff = 0
        else:
            ms_diff = ms - (node.key >> 64)  # from the master entry, deleted or not
            seq_diff = seq - (node.key & MASK)
            if seq_diff < -(1 << 63):
                seq_diff += 1 << 64
        # Redis's entry: flags, ms-diff, seq-diff, [count, fields+]values, lp-count.
        master = node.master
        if len(fields) == 2 and len(master) == 1 and fields[0] == master[0]:
            values: Any = (fields[1],)  # the common one-field entry: no slices
            size = 4
        elif fields[::2] == master:
            values = fields[1::2]
            size = 2 + _int_size(len(values) + 3)
        else:
            values = fields
            size = 2 + _int_size(len(fields) >> 1) + _int_size(len(fields) + 4)
        for v in values:
            n = len(v)
            size += n + 2 if n < 64 and v[:1] not in _NUMERIC else _lp_entry_size(v)
        node.lp_base += size + (2 if ms_diff < 128 else _int_size(ms_diff)) \
            + (2 if 0 <= seq_diff < 128 else _int_size(seq_diff))
        node.ms.append(ms)
        node.seq.append(seq)
        blob = node.blob
        if len(fields) == 2:  # resp_fields inlined for the common case
            f, v = fields
            blob += b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(f), f, len(v), v)
        else:
            blob += resp_fields(fields)
        node.offs.append(len(blob))
        self.length += 1
        # wraps as Redis's long long does (XSETID ENTRIESADDED can set the top)
        self.entries_added = self.entries_added + 1 if self.entries_added < _I64_MAX \
            else -_I64_MIN
        self.last_id = entry_id
        if self.length == 1:
            self.first_id = entry_id

    def _drop_node(self, ni: int) -> None:
        del self.nodes[ni]
        del self.firsts[ni]

    def _removed_from(self, ni: int) -> None:
        """Node ``ni`` lost entries: drop it if empty, refresh its first id."""
        node = self.nodes[ni]
        if not node.ms:
            self._drop_node(ni)
        else:
            self.firsts[ni] = node.first()

    def _refresh_first(self) -> None:
        self.first_id = self.nodes[0].first() if self.nodes else 0

    def delete(self, entry_id: int) -> bool:
        """XDEL of one id."""
        ni = bisect_right(self.firsts, entry_id) - 1
        if ni < 0:
            return False
        node = self.nodes[ni]
        i = node.lower(entry_id)
        if i >= len(node.ms) or node.id_at(i) != entry_id:
            return False
        node.remove(i)
        self._removed_from(ni)
        self.length -= 1
        if entry_id > self.max_deleted:
            self.max_deleted = entry_id
        if entry_id == self.first_id:
            self._refresh_first()
        return True

    def trim(self, maxlen: Optional[int], minid: Optional[int], approx: bool,
             limit: int) -> int:
        """Redis's streamTrim: by MAXLEN or MINID; ``approx`` removes only whole
        nodes; ``limit`` (0: none) bounds the entries removed."""
        deleted = 0
        nodes = self.nodes
        while nodes:
            node = nodes[0]
            entries = len(node.ms)
            if limit and deleted + entries > limit:
                break
            if maxlen is not None:
                remove_node = self.length - entries >= maxlen
            else:
                remove_node = node.last() < minid
            if remove_node:
                self._drop_node(0)
                self.length -= entries
                deleted += entries
                continue
            if approx:
                break
            if maxlen is not None:
                count = self.length - maxlen
            else:
                count = node.lower(minid)
            if count > 0:
                node.remove(0, count)
                self._removed_from(0)
                self.length -= count
                deleted += count
            break
        if deleted:
            self._refresh_first()
        return deleted

    # -- reads ----------------------------------------------------------------------

    def locate(self, entry_id: int) -> Tuple[int, int]:
        """(node, index) of the first entry with id >= entry_id."""
        firsts = self.firsts
        ni = bisect_right(firsts, entry_id) - 1
        if ni < 0:
            return 0, 0
        node = self.nodes[ni]
        i = node.lower(entry_id)
        if i >= len(node.ms):
            return ni + 1, 0
        return ni, i

    def find(self, entry_id: int) -> Optional[bytes]:
        """The RESP fields of the entry ``entry_id``, or None."""
        ni, i = self.locate(entry_id)
        if ni >= len(self.nodes):
            return None
        node = self.nodes[ni]
        if node.id_at(i) != entry_id:
            return None
        return node.entry(i)

    def range(self, start: int, end: int, count: int = 0, rev: bool = False
              ) -> Iterator[Tuple[int, bytes]]:
        """(id, RESP fields) of the entries in [start, end], at most ``count`` (0: all)."""
        if start > end:
            return
        nodes = self.nodes
        if not rev:
            ni, i = self.locate(start)
            while ni < len(nodes):
                node = nodes[ni]
                ms, seq, offs, blob = node.ms, node.seq, node.offs, node.blob
                n = len(ms)
                while i < n:
                    entry_id = ms[i] << 64 | seq[i]
                    if entry_id > end:
                        return
                    yield entry_id, blob[offs[i]:offs[i + 1]]
                    count -= 1
                    if count == 0:
                        return
                    i += 1
                ni += 1
                i = 0
        else:
            ni, i = self.locate(end)
            # the last entry <= end is just before (ni, i) unless (ni, i) equals end
            if ni < len(nodes) and nodes[ni].id_at(i) == end:
                i += 1
            i -= 1
            if i < 0:
                ni -= 1
                i = len(nodes[ni].ms) - 1 if ni >= 0 else -1
            while ni >= 0:
                node = nodes[ni]
                ms, seq, offs, blob = node.ms, node.seq, node.offs, node.blob
                while i >= 0:
                    entry_id = ms[i] << 64 | seq[i]
                    if entry_id < start:
                        return
                    yield entry_id, blob[offs[i]:offs[i + 1]]
                    count -= 1
                    if count == 0:
                        return
                    i -= 1
                ni -= 1
                if ni >= 0:
                    i = len(nodes[ni].ms) - 1

    def range_reply(self, start: int, end: int, count: int = 0, rev: bool = False
                    ) -> Tuple[int, List[bytes]]:
        """:meth:`range` as RESP: (entries, the parts of their replies), each node's
        run found by bisection and encoded by :meth:`Node.encode` (XRANGE's cost)."""
        parts: List[bytes] = []
        nodes = self.nodes
        if start > end or not nodes:
            return 0, parts
        n = 0
        if not rev:
            ni, i = self.locate(start)
            while ni < len(nodes):
                node = nodes[ni]
                j = len(node.ms)
                stop = node.last() > end
                if stop:
                    j = node.lower(end + 1)
                if count and j - i >= count - n:
                    j = i + count - n
                    stop = True
                if i < j:
                    node.encode(i, j, parts)
                    n += j - i
                if stop:
                    break
                ni += 1
                i = 0
            return n, parts
        ni, i = self.locate(end)
        if ni >= len(nodes):
            ni = len(nodes) - 1
            hi = len(nodes[ni].ms)
        else:
            hi = i + 1 if nodes[ni].id_at(i) == end else i  # past the last entry <= end
        while ni >= 0:
            node = nodes[ni]
            lo = 0
            stop = node.first() < start
            if stop:
                lo = node.lower(start)
            if count and hi - lo >= count - n:
                lo = hi - (count - n)
                stop = True
            if lo < hi:
                node.encode(lo, hi, parts, True)
                n += hi - lo
            if stop:
                break
            ni -= 1
            if ni >= 0:
                hi = len(nodes[ni].ms)
        return n, parts

    def top(self) -> int:
        """The id of the last entry (Redis's streamLastValidID), 0 when empty."""
        return self.nodes[-1].last() if self.nodes else 0

    def first_entry(self) -> Optional[Tuple[int, bytes]]:
        return next(self.range(0, MAX_ID, 1), None)

    def last_entry(self) -> Optional[Tuple[int, bytes]]:
        return next(self.range(0, MAX_ID, 1, rev=True), None)

    def rax_nodes(self) -> int:
        """Nodes of Redis's radix tree over the nodes' keys (XINFO's radix-tree-nodes).

        The rax of a set of 16-byte keys has a node at the root, at each key, at
        each branching prefix and at each prefix one byte past a branch: from the
        sorted keys, the common prefix of neighbours and its two one-byte
        extensions. Checked against redis-server after inserts, XDEL and trims.
        Past RAX_EXACT_KEYS keys, an estimate (this is O(keys)).
        """
        keys = [node.key for node in self.nodes]
        if len(keys) > RAX_EXACT_KEYS:
            return 1 + len(keys) * 2
        # A prefix of l bytes as an int: its value shifted left 8, plus l.
        seen = {0}
        add = seen.add
        for k in keys:
            add(k << 8 | 16)
        for a, b in zip(keys, keys[1:]):
            common = (128 - (a ^ b).bit_length()) >> 3
            shift = 120 - 8 * common  # the bits after common + 1 bytes
            add((a >> (shift + 8)) << 8 | common)
            add((a >> shift) << 8 | (common + 1))
            add((b >> shift) << 8 | (common + 1))
        return len(seen)

    # -- 7.0's read counters ----------------------------------------------------------

    def has_tombstones(self, start: int, end: int = MAX_ID) -> bool:
        """Redis's streamRangeHasTombstones."""
        if not self.length or not self.max_deleted:
            return False
        if self.first_id > self.max_deleted:
            return False
        return start <= self.max_deleted <= end

    def estimate_read(self, entry_id: int) -> int:
        """Redis's streamEstimateDistanceFromFirstEverEntry."""
        if not self.entries_added:
            return 0
        if not self.length and entry_id <= self.last_id:
            return self.entries_added
        if entry_id == self.last_id:
            return self.entries_added
        if entry_id > self.last_id:
            return INVALID_READ
        if not self.max_deleted or self.max_deleted < self.first_id:
            if entry_id < self.first_id:
                return wrap64(self.entries_added - self.length)
            if entry_id == self.first_id:
                return wrap64(self.entries_added - self.length + 1)
        return INVALID_READ

    def lag(self, group: Group) -> Optional[int]:
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_READ and not self.has_tombstones(group.last_id):
            return wrap64(self.entries_added - group.entries_read)
        read = self.estimate_read(group.last_id)
        return None if read == INVALID_READ else wrap64(self.entries_added - read)

    # -- whole-value operations -------------------------------------------------------

    def copy(self) -> "Stream":
        other = Stream()
        other.nodes = [node.copy() for node in self.nodes]
        other.firsts = list(self.firsts)
        other.length, other.last_id, other.first_id = self.length, self.last_id, self.first_id
        other.max_deleted, other.entries_added = self.max_deleted, self.entries_added
        for name, group in self.groups.items():
            g = other.groups[name] = Group(name, group.last_id, group.entries_read)
            for cname, consumer in group.consumers.items():
                c = g.consumers[cname] = Consumer(cname, consumer.seen_time)
                for entry_id in consumer.pel.ids_from():
                    nack = consumer.pel.items[entry_id]
                    copy = Nack(c, nack.delivery_time, nack.delivery_count)
                    c.pel.add(entry_id, copy)
            for entry_id in group.pel.ids_from():
                owner = group.pel.items[entry_id].consumer.name
                g.pel.add(entry_id, g.consumers[owner].pel.items[entry_id])
        return other

    def memory_estimate(self) -> int:
        """Bytes held (for eviction and MEMORY USAGE): nodes plus pending entries."""
        size = 200 + 80 * len(self.nodes)
        for node in self.nodes:
            size += len(node.blob) + 20 * len(node.ms) + 120
        for group in self.groups.values():
            size += 200 + 150 * len(group.pel) + 100 * len(group.consumers)
        return size


# -- serialization (snapshots) ----------------------------------------------------------

_META = struct.Struct("<16s16s16sqQII")  # entries_added is signed (wrap64)
_NODE = struct.Struct("<II")
_GROUP = struct.Struct("<16sqII")
_NACK = struct.Struct("<16sIqq")


def _id16(i: int) -> bytes:
    return i.to_bytes(16, "big")


def _le(a: array) -> bytes:
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _unle(code: str, data: bytes) -> array:
    a = array(code)
    a.frombytes(data)
    if sys.byteorder != "little":  # pragma: no cover
        a.byteswap()
    return a


def to_parts(s: Stream) -> List[bytes]:
    """A stream as byte strings: everything, groups and pending lists included."""
    parts = [_META.pack(_id16(s.last_id), _id16(s.first_id), _id16(s.max_deleted),
                        s.entries_added, s.length, len(s.nodes), len(s.groups))]
    for node in s.nodes:
        parts += [_NODE.pack(node.deleted, node.lp_base) + resp_fields(list(node.master)),
                  _le(node.ms), _le(node.seq), _le(node.offs), bytes(node.blob)]
    for group in s.groups.values():
        names = list(group.consumers)
        index = {name: i for i, name in enumerate(names)}
        parts += [group.name, _GROUP.pack(_id16(group.last_id), group.entries_read,
                                          len(names), len(group.pel))]
        parts += [struct.pack("<q", group.consumers[name].seen_time) + name for name in names]
        items = group.pel.items
        parts.append(b"".join(_NACK.pack(_id16(i), index[items[i].consumer.name],
                                         items[i].delivery_time, items[i].delivery_count)
                              for i in group.pel.ids_from()))
    return parts


def from_parts(parts: List[bytes]) -> Stream:
    """The inverse of :func:`to_parts`."""
    s = Stream()
    last, first, deleted, s.entries_added, s.length, nnodes, ngroups = _META.unpack(parts[0])
    s.last_id, s.first_id = int.from_bytes(last, "big"), int.from_bytes(first, "big")
    s.max_deleted = int.from_bytes(deleted, "big")
    p = 1
    for _ in range(nnodes):
        head, ms, seq, offs, blob = parts[p:p + 5]
        p += 5
        node = Node.__new__(Node)
        node.deleted, node.lp_base = _NODE.unpack_from(head)
        node.master = parse_fields(head[_NODE.size:])
        node.ms, node.seq, node.offs = _unle("Q", ms), _unle("Q", seq), _unle("I", offs)
        node.blob = bytearray(blob)
        node.key = node.first()  # not in the format: a deleted first entry is forgotten
        node.head = b"*2\r\n$%d\r\n%s\r\n" % (len(node.master[0]), node.master[0])
        node.fast = node.master[0] if len(node.master) == 1 and not node.deleted else None
        s.nodes.append(node)
        s.firsts.append(node.first())
    for _ in range(ngroups):
        name, head = parts[p:p + 2]
        p += 2
        last, entries_read, nconsumers, npel = _GROUP.unpack(head)
        group = s.groups[name] = Group(name, int.from_bytes(last, "big"), entries_read)
        consumers = []
        for raw in parts[p:p + nconsumers]:
            consumer = Consumer(raw[8:], struct.unpack_from("<q", raw)[0])
            group.consumers[consumer.name] = consumer
            consumers.append(consumer)
        p += nconsumers
        pel = parts[p]
        p += 1
        for k in range(npel):
            raw_id, who, when, count = _NACK.unpack_from(pel, k * _NACK.size)
            entry_id = int.from_bytes(raw_id, "big")
            nack = Nack(consumers[who], when, count)
            group.pel.add(entry_id, nack)
            consumers[who].pel.add(entry_id, nack)
    return s


# -- the RDB codec's plain form ------------------------------------------------------------

def to_plain(s: Stream) -> Any:
    """The :class:`distcache.rdb.streams.StreamData` of a stream (DUMP, RDB files)."""
    from ...rdb.streams import StreamData
    out = StreamData()
    out.entries = [(entry_id, parse_fields(fields)) for entry_id, fields in s.range(0, MAX_ID)]
    out.length, out.last_id, out.first_id = s.length, s.last_id, s.first_id
    out.max_deleted, out.entries_added = s.max_deleted, s.entries_added & MASK
    for group in s.groups.values():
        items = group.pel.items
        pel = [(i, items[i].delivery_time, items[i].delivery_count & MASK)
               for i in group.pel.ids_from()]
        consumers = [(c.name, c.seen_time, list(c.pel.ids_from()))
                     for c in group.consumers.values()]
        out.groups.append((group.name, group.last_id, group.entries_read, pel, consumers))
    return out


def from_plain(data: Any) -> Stream:
    """A stream from the codec's plain form (checked for consistency first)."""
    from ...rdb.errors import RdbError
    from ...rdb.streams import check_owned
    problem = check_owned(data)
    if problem is not None:
        raise RdbError(problem, 0)
    s = Stream()
    previous = -1
    for entry_id, fields in data.entries:
        if entry_id <= previous or not fields or len(fields) % 2:
            raise RdbError("stream entries out of order or malformed", 0)
        s.append(entry_id, fields)
        previous = entry_id
    s.length, s.last_id, s.first_id = data.length, data.last_id, data.first_id
    # An RDB holds these as uint64; Redis reads them into long longs.
    s.max_deleted, s.entries_added = data.max_deleted, wrap64(data.entries_added)
    if previous > s.last_id:
        raise RdbError("stream entry above the stream's last id", 0)
    for name, last_id, entries_read, pel, consumers in sorted(data.groups):
        group = s.groups[name] = Group(name, last_id, wrap64(entries_read))
        nacks = {}
        for entry_id, when, count in pel:
            nacks[entry_id] = (when, wrap64(count))
        for cname, seen, ids in sorted(consumers):
            consumer = group.consumers[cname] = Consumer(cname, seen)
            for entry_id in ids:
                when, count = nacks[entry_id]
                nack = Nack(consumer, when, count)
                consumer.pel.add(entry_id, nack)
                group.pel.add(entry_id, nack)
    return s
