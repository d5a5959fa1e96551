"""Pub/sub test helpers shared by the channel and shard channel tests: reading
messages through redis-py, and exact wire transcripts compared with redis-server."""
from __future__ import annotations

import socket
import time
from pathlib import Path

from servers import distcache_server, recv_until


def next_message(pubsub, timeout: float = 5.0):
    """The next message of a redis-py PubSub (subscription confirmations included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=0.1)
        if msg is not None:
            return msg
    raise AssertionError("no message in time")


def raw_transcript(port: int, *commands: bytes) -> bytes:
    """Send commands (space-separated words) on a raw socket, then ECHO and RESET;
    everything read up to RESET's reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for cmd in commands + (b"ECHO DONE", b"RESET"):
            parts = cmd.split()
            s.sendall(b"*%d\r\n" % len(parts) +
                      b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in parts))
        return recv_until(s, b"+RESET\r\n")


def assert_wire_matches(tmp_path: Path, reference_port: int, transcript: list) -> None:
    """A fresh distcache and redis-server send the same bytes for ``transcript``
    (HELLO's own reply, which differs, left out)."""
    with distcache_server(tmp_path) as srv:
        ours = raw_transcript(srv.port, *transcript)
    theirs = raw_transcript(reference_port, *transcript)
    if transcript[0] == b"HELLO 3":  # HELLO's own reply differs (id, extra field)
        ours, theirs = ours.split(b">3", 1)[1], theirs.split(b">3", 1)[1]
    assert ours == theirs
