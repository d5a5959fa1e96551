"""The stream type: entries in id order, in :class:`~.stream_node.Node` s shaped
like Redis's listpacks, and the 7.0 id bookkeeping and consumer groups.

A stream of a million small entries costs about 60 bytes an entry (ids 16,
offset 4, the RESP text), and every operation touches only the node list
(bisect over the nodes' first ids) and one or two nodes: XADD is O(1), XRANGE
O(log n + count), XDEL and trimming O(node size).

The node layout and its sizes are in stream_node.py, consumer groups' pending
lists in stream_pel.py, snapshots and the RDB form in stream_codec.py.
"""
from __future__ import annotations

from array import array
from bisect import bisect_right
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ...protocol.resp import BULK_HEADERS
from .stream_node import (I64_MAX, I64_MIN, MASK, MAX_ID, NUMERIC_FIRST, SEQ_BYTES, SEQ_TEXT,
                          Node, diff_size, diffs_size, int_size, limits, lp_entry_size,
                          resp_fields, wrap64)
from .stream_pel import Consumer, Group, Nack

#: Streams with more nodes get an estimate of their radix tree's node count.
RAX_EXACT_KEYS = 50_000
#: Redis's SCG_INVALID_ENTRIES_READ.
INVALID_READ = -1


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
        NUMERIC_FIRST) named as the node's first entry (``node.fast``: no entry
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
                    node.lp_base = lp + 6 + (2 if ms_diff < 128 else int_size(ms_diff)) \
                        + (2 if 0 <= seq_diff < 128 else int_size(seq_diff))
                    nms.append(ms)
                    node.seq.append(seq)
                    blob = node.blob
                    blob += b"".join((node.head, BULK_HEADERS[n], v, b"\r\n"))
                    node.offs.append(len(blob))
                    self.length += 1
                    added = self.entries_added
                    self.entries_added = added + 1 if added < I64_MAX else -I64_MIN
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
                fixed = 6 + (2 if ms_diff < 128 else int_size(ms_diff))
                d0 = seq - node.seq[0]
                bound = fixed + max(diff_size(d0), diff_size(d0 + end - k - 1))
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
                    lp += diffs_size(d0, d0 + count) - count * (bound - fixed)
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
            node.seq.frombytes(SEQ_BYTES[seq * 8:(seq + count) * 8])
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
        self.entries_added = added if added <= I64_MAX else wrap64(added)
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
            lp_bytes = node.lp_base + (2 if live < 128 else int_size(live)) \
                + (2 if deleted < 128 else int_size(deleted))
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
            size = 2 + int_size(len(values) + 3)
        else:
            values = fields
            size = 2 + int_size(len(fields) >> 1) + int_size(len(fields) + 4)
        for v in values:
            n = len(v)
            size += n + 2 if n < 64 and v[:1] not in NUMERIC_FIRST else lp_entry_size(v)
        node.lp_base += size + (2 if ms_diff < 128 else int_size(ms_diff)) \
            + (2 if 0 <= seq_diff < 128 else int_size(seq_diff))
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
        self.entries_added = self.entries_added + 1 if self.entries_added < I64_MAX \
            else -I64_MIN
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
            # From the first entry, to the last: no search (XRANGE - + COUNT n)
            ni, i = (0, 0) if start <= self.firsts[0] else self.locate(start)
            while ni < len(nodes):
                node = nodes[ni]
                j = len(node.ms)
                stop = end != MAX_ID and node.last() > end
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
