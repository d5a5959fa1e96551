"""Streams in Redis's RDB encoding: STREAM_LISTPACKS_2 (19, what 7.0 writes), and
STREAM_LISTPACKS (15, Redis 5 and 6) read too.

The plain form is :class:`StreamData`. Entries are written in listpacks laid out
as Redis's t_stream.c lays them out (a master entry, then flags, id deltas,
values or fields and values, and each entry's element count), cut at 100
entries or 4096 bytes as Redis cuts them. Deleted entries are not kept here,
so a listpack holds only live ones: a payload restores in redis-server to the
same stream, but is not byte for byte what Redis would dump after deletions.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

from .packed import lp_build, lp_decode, lp_entry

TYPE_STREAM_LISTPACKS = 15
TYPE_STREAM_LISTPACKS_2 = 19
_SAMEFIELDS, _DELETED = 2, 1
_NODE_ENTRIES, _NODE_BYTES = 100, 4096
_U64 = (1 << 64) - 1
#: (name, delivery time, delivery count) in a group; a consumer's are ids only.
Nack = Tuple[int, int, int]


class StreamData:
    """A stream as plain data: ids are ``ms << 64 | seq`` ints."""

    __slots__ = ("entries", "length", "last_id", "first_id", "max_deleted", "entries_added",
                 "groups")

    def __init__(self) -> None:
        self.entries: List[Tuple[int, List[bytes]]] = []
        self.length = 0
        self.last_id = self.first_id = self.max_deleted = self.entries_added = 0
        #: (name, last id, entries read (-1: unknown), [(id, time, count)],
        #:  [(consumer name, seen time, [id...])])
        self.groups: List[Tuple[bytes, int, int, List[Nack], List[Tuple[bytes, int, List[int]]]]] = []


# -- writing ---------------------------------------------------------------------------

def _listpack(entries: List[Tuple[int, List[bytes]]]) -> bytes:
    master_id, master_fields = entries[0]
    names = master_fields[::2]
    parts = [lp_entry(len(entries)), lp_entry(0), lp_entry(len(names))]
    parts += [lp_entry(f) for f in names]
    parts.append(lp_entry(0))
    for entry_id, fields in entries:
        ms_diff = (entry_id >> 64) - (master_id >> 64)
        seq_diff = (entry_id & _U64) - (master_id & _U64)
        same = fields[::2] == names
        parts += [lp_entry(_SAMEFIELDS if same else 0), lp_entry(ms_diff), lp_entry(seq_diff)]
        if same:
            parts += [lp_entry(v) for v in fields[1::2]]
            count = len(fields) // 2 + 3
        else:
            parts.append(lp_entry(len(fields) // 2))
            parts += [lp_entry(v) for v in fields]
            count = len(fields) + 4
        parts.append(lp_entry(count))
    return lp_build(parts)


def _nodes(entries: List[Tuple[int, List[bytes]]]) -> List[Tuple[int, bytes]]:
    """(master id, listpack) per node, cut as Redis cuts them when appending."""
    out: List[Tuple[int, bytes]] = []
    node: List[Tuple[int, List[bytes]]] = []
    size = 0
    for entry in entries:
        grow = sum(map(len, entry[1]))
        if node and (len(node) >= _NODE_ENTRIES or size + grow >= _NODE_BYTES):
            out.append((node[0][0], _listpack(node)))
            node, size = [], 0
        node.append(entry)
        size += grow + 8 * (len(entry[1]) + 4)  # a bound of the entry's listpack bytes
    if node:
        out.append((node[0][0], _listpack(node)))
    return out


def encode_stream(value: StreamData, string: Callable[[bytes], bytes],
                  length: Callable[[int], bytes]) -> bytes:
    """The body of a STREAM_LISTPACKS_2 object (``string``/``length``: the codec's)."""
    def ms_seq(i: int) -> List[bytes]:
        return [length(i >> 64), length(i & _U64)]

    nodes = _nodes(value.entries)
    parts = [length(len(nodes))]
    for master_id, lp in nodes:
        parts += [string(master_id.to_bytes(16, "big")), string(lp)]
    parts.append(length(value.length))
    parts += ms_seq(value.last_id) + ms_seq(value.first_id) + ms_seq(value.max_deleted)
    parts.append(length(value.entries_added))
    parts.append(length(len(value.groups)))
    for name, last_id, entries_read, pel, consumers in value.groups:
        parts += [string(name), *ms_seq(last_id), length(entries_read & _U64), length(len(pel))]
        for entry_id, when, count in pel:
            parts += [entry_id.to_bytes(16, "big"), when.to_bytes(8, "little", signed=True),
                      length(count)]
        parts.append(length(len(consumers)))
        for cname, seen, ids in consumers:
            parts += [string(cname), seen.to_bytes(8, "little", signed=True), length(len(ids))]
            parts += [i.to_bytes(16, "big") for i in ids]
    return b"".join(parts)


# -- reading ---------------------------------------------------------------------------

def _int(r: Any, text: bytes) -> int:
    try:
        return int(text)
    except ValueError:
        raise r.fail("a stream listpack field that should be a number is not") from None


def _read_node(r: Any, key: bytes, lp: bytes, out: StreamData) -> None:
    if len(key) != 16:
        raise r.fail("stream node key is not a 128-bit id")
    master = int.from_bytes(key, "big")
    items = lp_decode(lp)
    try:
        nfields = _int(r, items[2])
        names = items[3:3 + nfields]
        p = 3 + nfields + 1
        while p < len(items):
            flags = _int(r, items[p])
            ms = (master >> 64) + _int(r, items[p + 1])
            seq = ((master & _U64) + _int(r, items[p + 2])) & _U64
            p += 3
            if flags & _SAMEFIELDS:
                values = items[p:p + nfields]
                fields = [x for pair in zip(names, values) for x in pair]
                p += nfields
            else:
                n = _int(r, items[p])
                fields = items[p + 1:p + 1 + 2 * n]
                p += 1 + 2 * n
            p += 1  # lp-count
            if not flags & _DELETED:
                out.entries.append((ms << 64 | seq, fields))
    except IndexError:
        raise r.fail("truncated stream listpack") from None


def _id(r: Any) -> int:
    return r.length() << 64 | r.length()


def read_stream(r: Any, rdb_type: int) -> Tuple[str, Any]:
    """A stream object from an RdbReader."""
    out = StreamData()
    nodes = r.length()
    r.need(nodes, 2)
    for _ in range(nodes):
        key = r.string()
        _read_node(r, key, r.string(), out)
    out.length = r.length()
    out.last_id = _id(r)
    v2 = rdb_type == TYPE_STREAM_LISTPACKS_2
    if v2:
        out.first_id, out.max_deleted = _id(r), _id(r)
        out.entries_added = r.length()
    else:
        out.first_id = out.entries[0][0] if out.entries else 0
        out.entries_added = out.length
    if out.length != len(out.entries):
        raise r.fail(f"stream says {out.length} entries, its listpacks hold {len(out.entries)}")
    ngroups = r.length()
    r.need(ngroups, 4)
    for _ in range(ngroups):
        name = r.string()
        last_id = _id(r)
        entries_read = r.length() if v2 else -1
        if entries_read == _U64:
            entries_read = -1
        npel = r.length()
        r.need(npel, 25)
        pel = [(int.from_bytes(r.read(16), "big"), int.from_bytes(r.read(8), "little",
                                                                  signed=True), r.length())
               for _ in range(npel)]
        nconsumers = r.length()
        r.need(nconsumers, 10)
        consumers = []
        for _ in range(nconsumers):
            cname = r.string()
            seen = int.from_bytes(r.read(8), "little", signed=True)
            nids = r.length()
            r.need(nids, 16)
            consumers.append((cname, seen, [int.from_bytes(r.read(16), "big")
                                            for _ in range(nids)]))
        out.groups.append((name, last_id, entries_read, pel, consumers))
    return "stream", out


def check_owned(value: StreamData) -> Optional[str]:
    """Why a decoded stream is inconsistent (a consumer's id not in its group's
    pending list, or owned twice), or None."""
    for name, _, _, pel, consumers in value.groups:
        pending = {entry_id for entry_id, _, _ in pel}
        owned = set()
        for _, _, ids in consumers:
            for entry_id in ids:
                if entry_id not in pending or entry_id in owned:
                    return f"group {name!r}: bad consumer pending entry"
                owned.add(entry_id)
        if owned != pending:
            return f"group {name!r}: pending entries without a consumer"
    return None
