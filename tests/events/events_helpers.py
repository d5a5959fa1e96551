"""Keyspace event differential helpers: run the same commands on distcache and on
redis-server, each with a subscriber to every keyspace channel, and compare the
replies and the message sequences."""
from __future__ import annotations

import time
from typing import Any, List, Sequence, Tuple

import redis

#: Published after a case's commands: the subscriber reads up to it.
MARKER = "__keyspace@0__:__end_of_case__"


class EventSide:
    """One server: a command client and a pattern subscriber to ``__key*__:*``."""

    def __init__(self, port: int) -> None:
        self.client = redis.Redis(port=port, socket_timeout=10)
        self.pubsub = self.client.pubsub()
        self.pubsub.psubscribe("__key*__:*")
        self.cases = 0
        self._read_until(lambda m: m["type"] == "psubscribe")

    def _read_until(self, stop: Any, timeout: float = 10.0) -> List[dict]:
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.pubsub.get_message(timeout=0.2)
            if msg is None:
                continue
            if stop(msg):
                return seen
            seen.append(msg)
        raise AssertionError(f"no end of case in time; got {seen!r}")

    def run(self, commands: Sequence[Sequence[Any]]) -> Tuple[List[Any], List[Tuple[bytes, bytes]]]:
        """Replies (errors as text) and the (channel, data) messages they caused."""
        replies = []
        for cmd in commands:
            try:
                replies.append(self.client.execute_command(*cmd))
            except redis.ResponseError as exc:
                replies.append(("error", str(exc)))
        self.cases += 1  # a marker of its own: one another test left unread never stops it
        end = b"end %d" % self.cases
        self.client.publish(MARKER, end)
        msgs = self._read_until(lambda m: m["channel"] == MARKER.encode() and m["data"] == end)
        msgs = [m for m in msgs if m["channel"] != MARKER.encode()]
        return replies, [(m["channel"], m["data"]) for m in msgs]

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


class EventPair:
    """distcache and redis-server side by side."""

    def __init__(self, ours: int, theirs: int) -> None:
        self.sides = (EventSide(ours), EventSide(theirs))

    def config(self, classes: str) -> None:
        for side in self.sides:
            side.client.config_set("notify-keyspace-events", classes)

    def same_events(self, *commands: Sequence[Any], setup: Sequence[Sequence[Any]] = ()
                    ) -> List[Tuple[bytes, bytes]]:
        """Flush, run ``setup`` and then ``commands`` on both servers; require the
        same replies and the same messages for ``commands``; returns the messages."""
        results = []
        for side in self.sides:
            side.client.flushall()
            side.run(setup)
            results.append(side.run(commands))
        (our_replies, ours), (their_replies, theirs) = results
        assert our_replies == their_replies, f"replies differ for {commands!r}"
        assert ours == theirs, f"events differ for {commands!r}:\n ours   {ours}\n theirs {theirs}"
        return ours

    def close(self) -> None:
        for side in self.sides:
            side.close()


def events_of(messages: List[Tuple[bytes, bytes]]) -> List[bytes]:
    """The event names of keyevent messages, in order."""
    return [ch.split(b":", 1)[1] for ch, _ in messages if ch.startswith(b"__keyevent")]
