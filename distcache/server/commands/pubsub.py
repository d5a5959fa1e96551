"""Pub/sub commands: (P)SUBSCRIBE, (P)UNSUBSCRIBE, PUBLISH, PUBSUB.

Confirmations are one reply per channel, as in Redis: ``[kind, channel,
subscription count]``, pushes (``>``) in RESP3 and arrays in RESP2. The
registry and delivery live in :mod:`distcache.server.pubsub`.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional

from ...protocol import Raw
from ..errors import CommandError
from ..glob import compile_glob
from .table import command, container, help_reply

_PS = dict(group="pubsub")


def _confirm(c: Any, kind: bytes, name: Optional[bytes]) -> bytes:
    count = len(c.channels) + len(c.patterns)
    head = b">3\r\n" if c.resp3 else b"*3\r\n"
    if name is None:
        target = b"_\r\n" if c.resp3 else b"$-1\r\n"
    else:
        target = b"$%d\r\n%s\r\n" % (len(name), name)
    return b"%s$%d\r\n%s\r\n%s:%d\r\n" % (head, len(kind), kind, target, count)


def _subscribe_many(c: Any, names: List[bytes], kind: bytes,
                    action: Callable[[Any, bytes], bool]) -> Raw:
    """Apply ``action`` (subscribe or unsubscribe) to each name; one reply per name."""
    out = []
    for name in names:
        action(c, name)
        out.append(_confirm(c, kind, name))
    c.update_restricted()
    return Raw(b"".join(out))


def _unsubscribe_many(c: Any, names: List[bytes], current: Any, kind: bytes,
                      action: Callable[[Any, bytes], bool]) -> Raw:
    if not names:
        names = list(current)
        if not names:
            return Raw(_confirm(c, kind, None))
    return _subscribe_many(c, names, kind, action)


@command("subscribe", -2, "pubsub noscript loading stale", since="2.0.0", **_PS)
def subscribe(c: Any, args: List[bytes]) -> Any:
    """Listen for messages published to channels."""
    return _subscribe_many(c, args[1:], b"subscribe", c.server.pubsub.subscribe)


@command("unsubscribe", -1, "pubsub noscript loading stale", since="2.0.0", **_PS)
def unsubscribe(c: Any, args: List[bytes]) -> Any:
    """Stop listening to channels (all of them without arguments)."""
    return _unsubscribe_many(c, args[1:], c.channels, b"unsubscribe",
                             c.server.pubsub.unsubscribe)


@command("psubscribe", -2, "pubsub noscript loading stale", since="2.0.0", **_PS)
def psubscribe(c: Any, args: List[bytes]) -> Any:
    """Listen for messages published to channels matching glob patterns."""
    return _subscribe_many(c, args[1:], b"psubscribe", c.server.pubsub.psubscribe)


@command("punsubscribe", -1, "pubsub noscript loading stale", since="2.0.0", **_PS)
def punsubscribe(c: Any, args: List[bytes]) -> Any:
    """Stop listening to patterns (all of them without arguments)."""
    return _unsubscribe_many(c, args[1:], c.patterns, b"punsubscribe",
                             c.server.pubsub.punsubscribe)


@command("publish", 3, "pubsub loading stale fast may_replicate", since="2.0.0", **_PS)
def publish(c: Any, args: List[bytes]) -> Any:
    """Post a message to a channel; returns how many clients received it."""
    return c.server.pubsub.publish(args[1], args[2])


container("pubsub", -2, group="pubsub", summary="A container for Pub/Sub commands",
          since="2.8.0")


@command("channels", -2, "pubsub loading stale", since="2.8.0", parent="pubsub", **_PS)
def pubsub_channels(c: Any, args: List[bytes]) -> Any:
    """Active channels, optionally only those matching a pattern."""
    if len(args) > 3:
        raise CommandError("ERR unknown subcommand or wrong number of arguments for "
                           f"'{args[1].decode('utf-8', 'replace')}'. Try PUBSUB HELP.")
    channels = list(c.server.pubsub.channels)
    if len(args) == 3:
        match = compile_glob(args[2])
        channels = [ch for ch in channels if match(ch)]
    return channels


@command("numsub", -2, "pubsub loading stale", since="2.8.0", parent="pubsub", **_PS)
def pubsub_numsub(c: Any, args: List[bytes]) -> Any:
    """Subscriber counts of channels (pattern subscribers not included)."""
    registry = c.server.pubsub.channels
    out: List[Any] = []
    for channel in args[2:]:
        out += (channel, len(registry.get(channel, ())))
    return out


@command("numpat", 2, "pubsub loading stale", since="2.8.0", parent="pubsub", **_PS)
def pubsub_numpat(c: Any, args: List[bytes]) -> Any:
    """Number of patterns with subscribers."""
    return len(c.server.pubsub.patterns)


@command("shardchannels", -2, "pubsub loading stale", since="7.0.0", parent="pubsub", **_PS)
def pubsub_shardchannels(c: Any, args: List[bytes]) -> Any:
    """Active shard channels (sharded pub/sub is not supported: always empty)."""
    return []


@command("shardnumsub", -2, "pubsub loading stale", since="7.0.0", parent="pubsub", **_PS)
def pubsub_shardnumsub(c: Any, args: List[bytes]) -> Any:
    """Subscriber counts of shard channels (always 0)."""
    out: List[Any] = []
    for channel in args[2:]:
        out += (channel, 0)
    return out


_HELP = [
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
]


@command("help", 2, "loading stale", since="6.2.0", parent="pubsub", **_PS)
def pubsub_help(c: Any, args: List[bytes]) -> Any:
    """Show PUBSUB's subcommands."""
    return help_reply("PUBSUB", _HELP)
