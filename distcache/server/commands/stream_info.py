"""XINFO STREAM [FULL [COUNT n]], GROUPS, CONSUMERS and HELP, as Redis 7.0 answers.

``radix-tree-keys`` is the number of nodes (Redis's listpacks: cut at the same
places); ``radix-tree-nodes`` is what Redis's radix tree over their keys would
have (Stream.rax_nodes).
"""
from __future__ import annotations

from typing import Any, Dict, List

from ..errors import CommandError, NO_SUCH_KEY
from ..types.stream import INVALID_READ, Stream
from ..types.stream_node import fmt_id
from ..types.stream_pel import Group, wall_ms
from .args import to_int
from .stream_groups import _name, _subcommand_error
from .streams import entries_reply, entry_reply, stream_of
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
    from ...protocol import Raw
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
                               b"pending", _group_pending(group, count),
                               b"consumers", _full_consumers(c, group, count)]))
    entries = entries_reply(list(s.range(0, (1 << 128) - 1, count)))
    return _map(c, head + [b"entries", entries, b"groups", groups])


def _entries_read(group: Group) -> Any:
    return None if group.entries_read == INVALID_READ else group.entries_read


def _limited(pel: Any, count: int) -> List[int]:
    out = []
    for entry_id in pel.ids_from():
        if count and len(out) >= count:
            break
        out.append(entry_id)
    return out


def _group_pending(group: Group, count: int) -> List[Any]:
    items = group.pel.items
    return [[fmt_id(i), items[i].consumer.name, items[i].delivery_time, items[i].delivery_count]
            for i in _limited(group.pel, count)]


def _full_consumers(c: Any, group: Group, count: int) -> List[Any]:
    out = []
    for consumer in group.consumers.values():
        items = consumer.pel.items
        pending = [[fmt_id(i), items[i].delivery_time, items[i].delivery_count]
                   for i in _limited(consumer.pel, count)]
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
