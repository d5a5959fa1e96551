"""The pub/sub registry: who listens to which channel, pattern and shard channel,
and delivery.

Shard channels (SSUBSCRIBE, SPUBLISH) are a namespace of their own, as in
Redis 7.0: a shard message (``smessage``) reaches only the subscribers of that
shard channel, never pattern subscribers nor those of a plain channel of the
same name. With a single server every shard channel lives here.

A message is encoded once per protocol (``*3 message`` in RESP2, ``>3`` push
in RESP3) and written straight to each subscriber's transport, so publishing
costs one ``transport.write`` per receiver. A subscriber that does not read
cannot grow the server's memory without bound: after each write the
transport's buffered bytes are checked against the ``pubsub`` class of
``client-output-buffer-limit`` (hard limit: disconnect at once; soft limit:
disconnect when exceeded continuously for the configured seconds), as Redis
does, and the client is dropped with its buffer discarded. Messages a client
publishes to itself (RESP3) wait in its reply list with the command's other
replies; they count against the same limit.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Dict, Set, Tuple

from .glob import compile_glob

if TYPE_CHECKING:
    from .app import CacheServer
    from .connection import Client

log = logging.getLogger("distcache.server")


class PubSub:
    """Channel, pattern and shard channel subscriptions of one server."""

    def __init__(self, server: "CacheServer") -> None:
        self.server = server
        #: channel -> subscribed clients (a dict used as an ordered set).
        self.channels: Dict[bytes, Dict["Client", None]] = {}
        #: pattern -> (matcher, subscribed clients).
        self.patterns: Dict[bytes, Tuple[Callable[[bytes], bool], Dict["Client", None]]] = {}
        #: shard channel -> subscribed clients.
        self.shard_channels: Dict[bytes, Dict["Client", None]] = {}
        #: clients over the soft limit -> when they went over.
        self.soft_since: Dict["Client", float] = {}
        #: clients that published to themselves -> (index in c.out of the last
        #: message queued there, that message, bytes in c.out up to it).
        self.queued: Dict["Client", Tuple[int, bytes, int]] = {}
        self.hard = self.soft = self.soft_seconds = 0
        self.configure()

    def configure(self) -> None:
        """Take the ``pubsub`` class of client-output-buffer-limit (checked by config)."""
        limits = self.server.config["client-output-buffer-limit"]
        self.hard, self.soft, self.soft_seconds = limits.get("pubsub", (32 << 20, 8 << 20, 60))

    def counts(self) -> Tuple[int, int, int]:
        return len(self.channels), len(self.patterns), len(self.shard_channels)

    # -- subscriptions --------------------------------------------------------------

    def subscribe(self, c: "Client", channel: bytes) -> bool:
        return _join(self.channels, c.channels, c, channel)

    def unsubscribe(self, c: "Client", channel: bytes) -> bool:
        return _leave(self.channels, c.channels, c, channel)

    def ssubscribe(self, c: "Client", channel: bytes) -> bool:
        return _join(self.shard_channels, c.shard_channels, c, channel)

    def sunsubscribe(self, c: "Client", channel: bytes) -> bool:
        return _leave(self.shard_channels, c.shard_channels, c, channel)

    def psubscribe(self, c: "Client", pattern: bytes) -> bool:
        if pattern in c.patterns:
            return False
        c.patterns.add(pattern)
        entry = self.patterns.get(pattern)
        if entry is None:
            self.patterns[pattern] = entry = (compile_glob(pattern), {})
        entry[1][c] = None
        return True

    def punsubscribe(self, c: "Client", pattern: bytes) -> bool:
        if pattern not in c.patterns:
            return False
        c.patterns.discard(pattern)
        entry = self.patterns.get(pattern)
        if entry is not None:
            entry[1].pop(c, None)
            if not entry[1]:
                del self.patterns[pattern]
        return True

    def drop_client(self, c: "Client") -> None:
        """Forget every subscription of ``c`` (RESET, disconnect)."""
        for channel in list(c.channels):
            self.unsubscribe(c, channel)
        for pattern in list(c.patterns):
            self.punsubscribe(c, pattern)
        for channel in list(c.shard_channels):
            self.sunsubscribe(c, channel)
        self.soft_since.pop(c, None)
        self.queued.pop(c, None)
        c.update_restricted()

    # -- delivery -------------------------------------------------------------------

    def publish(self, channel: bytes, message: bytes) -> int:
        """Send ``message`` to every subscriber of ``channel``; returns the receiver count."""
        clients = self.channels.get(channel)
        receivers = self._fan_out(clients, b"$7\r\nmessage\r\n", channel, message) \
            if clients else 0
        if self.patterns:
            tail = b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(channel), channel, len(message), message)
            for pattern, (match, subs) in list(self.patterns.items()):
                if not subs or not match(channel):
                    continue
                head = b""
                for c in list(subs):
                    receivers += 1
                    if c.closed:  # cut off by an earlier message: no copy to make
                        continue
                    head = head or b"$8\r\npmessage\r\n$%d\r\n%s\r\n%s" % (
                        len(pattern), pattern, tail)
                    self.deliver(c, (b">4\r\n" if c.resp3 else b"*4\r\n") + head)
        return receivers

    def spublish(self, channel: bytes, message: bytes) -> int:
        """Send ``message`` to the subscribers of shard channel ``channel``."""
        clients = self.shard_channels.get(channel)
        return self._fan_out(clients, b"$8\r\nsmessage\r\n", channel, message) \
            if clients else 0

    def _fan_out(self, clients: Dict["Client", None], kind: bytes, channel: bytes,
                 message: bytes) -> int:
        """Deliver ``[kind, channel, message]`` to ``clients`` (``kind`` already encoded
        as a bulk string), encoded at most once per protocol; returns the count."""
        head = b"%s$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            kind, len(channel), channel, len(message), message)
        resp2 = resp3 = b""
        receivers = list(clients)  # a dropped slow subscriber leaves ``clients``
        for c in receivers:
            if c.resp3:
                data = resp3 = resp3 or b">3\r\n" + head
            else:
                data = resp2 = resp2 or b"*3\r\n" + head
            self.deliver(c, data)
        return len(receivers)

    def deliver(self, c: "Client", data: bytes) -> None:
        if c.closed or c.transport is None:
            return
        transport = c.transport
        if c.out:  # the client is mid-reply (it published to itself): keep the order
            queued = self._queued_bytes(c, data)
            c.out.append(data)
            if self.hard or self.soft:
                self.check_limits(c, transport.get_write_buffer_size() + queued)
            return
        transport.write(data)
        if self.hard or self.soft:
            self.check_limits(c, transport.get_write_buffer_size())

    def _queued_bytes(self, c: "Client", data: bytes) -> int:
        """Bytes in ``c.out`` once ``data`` is added, counted once each: the last
        message queued marks how far the previous count went (a message is a new
        object, so finding it there means ``c.out`` was not flushed since)."""
        out = c.out
        mark = self.queued.get(c)
        if mark is not None and mark[0] < len(out) and out[mark[0]] is mark[1]:
            total = mark[2] + sum(map(len, out[mark[0] + 1:]))
        else:
            total = sum(map(len, out))
        total += len(data)
        self.queued[c] = (len(out), data, total)
        return total

    def check_limits(self, c: "Client", used: int) -> None:
        hard, soft = self.hard, self.soft
        if hard and used >= hard:
            self.disconnect(c, used)
        elif soft and used >= soft:
            now = time.monotonic()
            since = self.soft_since.setdefault(c, now)
            if now - since > self.soft_seconds:
                self.disconnect(c, used)
        elif self.soft_since:
            self.soft_since.pop(c, None)

    def disconnect(self, c: "Client", used: int) -> None:
        log.warning("Client id=%d addr=%s closed for overcoming of output buffer limits "
                    "(pubsub, %d bytes buffered).", c.id, c.addr, used)
        self.server.stats["client_output_buffer_limit_disconnections"] += 1
        self.soft_since.pop(c, None)
        c.closed = True
        c.transport.abort()  # type: ignore[union-attr]  # drop the unsent output now
        self.drop_client(c)


def subscribed(c: "Client") -> bool:
    """Whether ``c`` has any subscription (channel, pattern or shard channel)."""
    return bool(c.channels or c.patterns or c.shard_channels)


def _join(registry: Dict[bytes, Dict["Client", None]], own: Set[bytes], c: "Client",
          channel: bytes) -> bool:
    """Add ``c`` to ``channel`` in ``registry`` and to its own set ``own``."""
    if channel in own:
        return False
    own.add(channel)
    clients = registry.get(channel)
    if clients is None:
        registry[channel] = clients = {}
    clients[c] = None
    return True


def _leave(registry: Dict[bytes, Dict["Client", None]], own: Set[bytes], c: "Client",
           channel: bytes) -> bool:
    """Undo :func:`_join`; a channel left without subscribers is forgotten."""
    if channel not in own:
        return False
    own.discard(channel)
    clients = registry.get(channel)
    if clients is not None:
        clients.pop(c, None)
        if not clients:
            del registry[channel]
    return True


def install(server: "CacheServer") -> PubSub:
    registry = PubSub(server)
    server.pubsub = registry  # type: ignore[attr-defined]
    server.pubsub_counts = registry.counts  # type: ignore[assignment]
    server.reset_hooks.append(registry.drop_client)
    server.disconnect_hooks.append(registry.drop_client)

    def on_config(name: str) -> None:
        if name == "client-output-buffer-limit":
            registry.configure()

    server.config_hooks.append(on_config)
    return registry
