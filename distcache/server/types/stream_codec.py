"""A stream as bytes: the snapshot's parts (everything, in the node layout) and
the RDB codec's plain form (DUMP, RDB files), both ways."""
from __future__ import annotations

import struct
import sys
from array import array
from typing import Any, List

from .stream import Stream
from .stream_node import MASK, MAX_ID, Node, parse_fields, resp_fields, wrap64
from .stream_pel import Consumer, Group, Nack


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
