"""Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB.

Confirmations are one reply per channel, as in Redis: ``[kind, channel,
subscription count]``, pushes (``>``) in RESP3 and arrays in RESP2. As in
Redis 7.0 the count in a (P)SUBSCRIBE/(P)UNSUBSCRIBE confirmation is the
client's channels plus patterns, and in an SSUBSCRIBE/SUNSUBSCRIBE one its
shard channels only; a RESP2 client stays in subscriber mode while it has
any of the three. The registry and delivery live in
:mod:`distcache.server.pubsub`.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from ...protocol import Raw
from ..errors import CommandError, subcommand_syntax
from ..glob import compile_glob
from .table import command, container, help_reply

_PS = dict(group="pubsub")


def _plain_count(c: Any) -> int:
    return len(c.channels) + len(c.patterns)


def _shard_count(c: Any) -> int:
    return len(c.shard_channels)


def _confirm(c: Any, kind: bytes, name: Optional[bytes],
             count_of: Callable[[Any], int] = _plain_count) -> bytes:
    count = count_of(c)
    head = b">3\r\n" if c.resp3 else b"*3\r\n"
    if name is None:
        target = b"_\r\n" if c.resp3 else b"$-1\r\n"
    else:
        target = b"$%d\r\n%s\r\n" % (len(name), name)
    return b"%s$%d\r\n%s\r\n%s:%d\r\n" % (head, len(kind), kind, target, count)


def _subscribe_many(c: Any, names: List[bytes], kind: bytes,
                    action: Callable[[Any, bytes], bool],
                    count_of: Callable[[Any], int] = _plain_count) -> Raw:
    """Apply ``action`` (subscribe or unsubscribe) to each name; one reply per name."""
    out = []
    for name in names:
        action(c, name)
        out.append(_confirm(c, kind, name, count_of))
    c.update_restricted()
    return Raw(b"".join(out))


def _unsubscribe_many(c: Any, names: List[bytes], current: Any, kind: bytes,
                      action: Callable[[Any, bytes], bool],
                      count_of: Callable[[Any], int] = _plain_count) -> Raw:
    if not names:
        names = list(current)
        if not names:
            return Raw(_confirm(c, kind, None, count_of))
    return _subscribe_many(c, names, kind, action, count_of)


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
    _to_replicas(c, args)
    return c.server.pubsub.publish(args[1], args[2])


def _to_replicas(c: Any, args: List[bytes]) -> None:
    """As Redis: PUBLISH and SPUBLISH reach replicas (their subscribers), not the log.

    Not from a replica: its sub-replicas get its primary's stream only (a PUBLISH
    there, such as Sentinel's hello, would fork the shared history)."""
    replication = c.server.replication
    if replication.primary.backlog is not None and replication.link is None:
        replication.primary.feed(c.db.id, [args])


# -- sharded pub/sub (Redis 7.0): one shard, so every shard channel is local ----------

@command("ssubscribe", -2, "pubsub noscript loading stale not_key", (1, -1, 1), since="7.0.0",
         complexity="O(N) where N is the number of shard channels to subscribe to.", **_PS)
def ssubscribe(c: Any, args: List[bytes]) -> Any:
    """Listen for messages published to shard channels."""
    if c.in_exec:  # as Redis 7.0: unlike SUBSCRIBE, not allowed inside MULTI ... EXEC
        raise CommandError("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
    return _subscribe_many(c, args[1:], b"ssubscribe", c.server.pubsub.ssubscribe,
                           _shard_count)


@command("sunsubscribe", -1, "pubsub noscript loading stale not_key", (1, -1, 1),
         since="7.0.0", complexity="O(N) where N is the number of shard channels.", **_PS)
def sunsubscribe(c: Any, args: List[bytes]) -> Any:
    """Stop listening to shard channels (all of them without arguments)."""
    return _unsubscribe_many(c, args[1:], c.shard_channels, b"sunsubscribe",
                             c.server.pubsub.sunsubscribe, _shard_count)


@command("spublish", 3, "pubsub loading stale fast may_replicate not_key", (1, 1, 1),
         since="7.0.0", complexity="O(N) where N is the number of receiving clients.", **_PS)
def spublish(c: Any, args: List[bytes]) -> Any:
    """Post a message to a shard channel; returns how many clients received it."""
    _to_replicas(c, args)
    return c.server.pubsub.spublish(args[1], args[2])


container("pubsub", -2, group="pubsub", summary="A container for Pub/Sub commands",
          since="2.8.0")


def _active(args: List[bytes], registry: Dict[bytes, Any]) -> List[bytes]:
    """CHANNELS / SHARDCHANNELS: names in ``registry``, optionally matching a pattern."""
    if len(args) > 3:
        raise CommandError(subcommand_syntax(args))
    channels = list(registry)
    if len(args) == 3:
        match = compile_glob(args[2])
        channels = [ch for ch in channels if match(ch)]
    return channels


def _numsub(args: List[bytes], registry: Dict[bytes, Any]) -> List[Any]:
    """NUMSUB / SHARDNUMSUB: (name, subscriber count) for each name asked."""
    out: List[Any] = []
    for channel in args[2:]:
        out += (channel, len(registry.get(channel, ())))
    return out


@command("channels", -2, "pubsub loading stale", since="2.8.0", parent="pubsub", **_PS)
def pubsub_channels(c: Any, args: List[bytes]) -> Any:
    """Active channels, optionally only those matching a pattern."""
    return _active(args, c.server.pubsub.channels)


@command("numsub", -2, "pubsub loading stale", since="2.8.0", parent="pubsub", **_PS)
def pubsub_numsub(c: Any, args: List[bytes]) -> Any:
    """Subscriber counts of channels (pattern subscribers not included)."""
    return _numsub(args, c.server.pubsub.channels)


@command("numpat", 2, "pubsub loading stale", since="2.8.0", parent="pubsub", **_PS)
def pubsub_numpat(c: Any, args: List[bytes]) -> Any:
    """Number of patterns with subscribers."""
    return len(c.server.pubsub.patterns)


@command("shardchannels", -2, "pubsub loading stale", since="7.0.0", parent="pubsub", **_PS)
def pubsub_shardchannels(c: Any, args: List[bytes]) -> Any:
    """Active shard channels, optionally only those matching a pattern."""
    return _active(args, c.server.pubsub.shard_channels)


@command("shardnumsub", -2, "pubsub loading stale", since="7.0.0", parent="pubsub", **_PS)
def pubsub_shardnumsub(c: Any, args: List[bytes]) -> Any:
    """Subscriber counts of shard channels."""
    return _numsub(args, c.server.pubsub.shard_channels)


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
