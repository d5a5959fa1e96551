"""XINFO STREAM [FULL [COUNT n]], GROUPS, CONSUMERS and HELP, as Redis 7.0 answers.

``radix-tree-keys`` is the number of nodes (Redis's listpacks: cut at the same
places); ``radix-tree-nodes`` is what Redis's radix tree over their keys would
have (Stream.rax_nodes).
"""
from __future__ import annotations

from typing import Any, Dict, List

from ...protocol import Raw

from ..errors import CommandError, NO_SUCH_KEY
from ..types.stream import INVALID_READ, Stream
from ..types.stream_node import MASK, fmt_id
from ..types.stream_pel import Group, wall_ms
from .args import to_int
from .stream_groups import _name, _subcommand_error
from .streams import entry_reply, range_reply, stream_of
from .table import command, container, help_reply

_XINFO = dict(group="stream", parent="xinfo")

container("xinfo", -2, group="stream", summary="A container for stream introspection commands",
          since="5.0.0")


def _stream(c: Any, key: bytes) -> Stream:
    s = stream_of(c.db, key)
    if s is None:
        raise CommandError(NO_SUCH_KEY)
    return s


def _map(c: Any, pairs: List[Any]) -> Any:
    """A RESP3 map or a RESP2 flat array of alternating names and values."""
    if c.resp3:
        return {pairs[i]: pairs[i + 1] for i in range(0, len(pairs), 2)}
    return pairs


def _entry(s: Stream, which: Any) -> Any:
    found = which()
    return None if found is None else Raw(entry_reply(*found))


@command("stream", -3, "readonly", (2, 2, 1), since="5.0.0", **_XINFO)
def xinfo_stream(c: Any, args: List[bytes]) -> Any:
    """Information about a stream ([FULL [COUNT n]])."""
    s = _stream(c, args[2])
    rest = args[3:]
    full = bool(rest)
    count = 10
    if rest:
        if len(rest) not in (1, 3) or rest[0].lower() != b"full":
            raise _subcommand_error(args)
        if len(rest) == 3:
            if rest[1].lower() != b"count":
                raise _subcommand_error(args)
            count = max(0, to_int(rest[2]))
    head = [b"length", s.length, b"radix-tree-keys", len(s.nodes),
            b"radix-tree-nodes", s.rax_nodes(),
            b"last-generated-id", fmt_id(s.last_id),
            b"max-deleted-entry-id", fmt_id(s.max_deleted),
            b"entries-added", s.entries_added,
            b"recorded-first-entry-id", fmt_id(s.first_id)]
    if not full:
        return _map(c, head + [b"groups", len(s.groups),
                               b"first-entry", _entry(s, s.first_entry),
                               b"last-entry", _entry(s, s.last_entry)])
    groups = []
    for group in s.groups.values():
        groups.append(_map(c, [b"name", group.name, b"last-delivered-id", fmt_id(group.last_id),
                               b"entries-read", _entries_read(group),
                               b"lag", s.lag(group), b"pel-count", len(group.pel),
                               b"pending", _pending(group.pel, count, True),
                               b"consumers", _full_consumers(c, group, count)]))
    entries = range_reply(s, 0, (1 << 128) - 1, count)
    return _map(c, head + [b"entries", entries, b"groups", groups])


def _entries_read(group: Group) -> Any:
    return None if group.entries_read == INVALID_READ else group.entries_read


def _pending(pel: Any, count: int, owner: bool) -> Raw:
    """The first ``count`` (0: all) pending entries of ``pel``, encoded at once (as
    nested lists, 50,000 pending entries held the loop 2.2 s; redis-server 0.2 s):
    [id, consumer name, delivery time, deliveries], without the name if not ``owner``."""
    items = pel.items
    parts: List[bytes] = []
    append = parts.append
    limit = count or len(items)
    for i in pel.order:  # ascending; ids no longer pending are skipped
        nack = items.get(i)
        if nack is None:
            continue
        text = b"%d-%d" % (i >> 64, i & MASK)
        if owner:
            name = nack.consumer.name
            append(b"*4\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n:%d\r\n:%d\r\n" % (
                len(text), text, len(name), name, nack.delivery_time, nack.delivery_count))
        else:
            append(b"*3\r\n$%d\r\n%s\r\n:%d\r\n:%d\r\n" % (
                len(text), text, nack.delivery_time, nack.delivery_count))
        if len(parts) == limit:
            break
    return Raw(b"*%d\r\n%s" % (len(parts), b"".join(parts)))


def _full_consumers(c: Any, group: Group, count: int) -> List[Any]:
    out = []
    for consumer in group.consumers.values():
        pending = _pending(consumer.pel, count, False)
        out.append(_map(c, [b"name", consumer.name, b"seen-time", consumer.seen_time,
                            b"pel-count", len(consumer.pel), b"pending", pending]))
    return out


@command("groups", 3, "readonly", (2, 2, 1), since="5.0.0", **_XINFO)
def xinfo_groups(c: Any, args: List[bytes]) -> Any:
    """The consumer groups of a stream."""
    s = _stream(c, args[2])
    return [_map(c, [b"name", g.name, b"consumers", len(g.consumers), b"pending", len(g.pel),
                     b"last-delivered-id", fmt_id(g.last_id),
                     b"entries-read", _entries_read(g), b"lag", s.lag(g)])
            for g in s.groups.values()]


@command("consumers", 4, "readonly", (2, 2, 1), since="5.0.0", **_XINFO)
def xinfo_consumers(c: Any, args: List[bytes]) -> Any:
    """The consumers of a group."""
    s = _stream(c, args[2])
    group = s.groups.get(args[3])
    if group is None:
        raise CommandError(f"NOGROUP No such consumer group '{_name(args[3])}' for key name "
                           f"'{_name(args[2])}'")
    now = wall_ms()
    out: List[Dict[bytes, Any]] = []
    for consumer in group.consumers.values():
        out.append(_map(c, [b"name", consumer.name, b"pending", len(consumer.pel),
                            b"idle", max(0, now - consumer.seen_time)]))
    return out


_HELP = [
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
]


@command("help", 2, "loading stale", since="5.0.0", **_XINFO)
def xinfo_help(c: Any, args: List[bytes]) -> Any:
    """Show XINFO's subcommands."""
    return help_reply("XINFO", _HELP)
