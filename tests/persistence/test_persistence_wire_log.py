"""The log records a read's own bytes when they are exactly the writes it ran.

These tests drive that shortcut and its fallbacks (reads mixing reads and
writes, rewritten commands, requests split across reads, inline requests,
SELECT, expiry) through raw sockets, then SIGKILL the server and require the
restarted one to hold exactly the same dataset.
"""
from __future__ import annotations

import os
import random
import socket
from typing import List, Optional

import pytest

from persistence_helpers import aof_dir, client, crash_restart, start
from servers import wait_until

from distcache.protocol import NOT_ENOUGH, HAVE_HIREDIS, ReplyError, ReplyParser, encode_command

PARSERS = ["python"] + (["hiredis"] if HAVE_HIREDIS else [])


class RawClient:
    """A socket that sends exact bytes and counts the replies back."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.replies = ReplyParser()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_replies(self, count: int) -> List[object]:
        got: List[object] = []
        while len(got) < count:
            reply = self.replies.get()
            if reply is NOT_ENOUGH:
                data = self.sock.recv(65536)
                assert data, "server closed the connection"
                self.replies.feed(data)
                continue
            got.append(reply)
        return got

    def close(self) -> None:
        self.sock.close()


def _random_command(rng: random.Random) -> List[bytes]:
    k = b"k%d" % rng.randrange(8)
    n = b"%d" % rng.randrange(-5, 50)
    choices = [
        [b"SET", k, b"v%d" % rng.randrange(100)],
        [b"set", k, b"v x"],  # a space: only valid as multibulk
        [b"SET", k, b"nx", b"NX"],
        [b"SET", k, b"ex", b"EX", b"500"],  # rewritten to an absolute expiry
        [b"GET", k],
        [b"INCR", b"n%d" % rng.randrange(3)],
        [b"INCRBY", b"n%d" % rng.randrange(3), n],
        [b"DEL", k],
        [b"APPEND", k, b"+"],
        [b"EXPIRE", k, b"300"],
        [b"PERSIST", k],
        [b"LPUSH", b"list", n],
        [b"RPOP", b"list"],
        [b"HSET", b"hash", k, n],
        [b"SADD", b"set", n],
        [b"SPOP", b"set"],  # random: logged as what it removed
        [b"MSET", k, n, b"k9", n],
        [b"SELECT", b"%d" % rng.randrange(3)],
        [b"PING"],
    ]
    return rng.choice(choices)


def _wire(args: List[bytes], rng: random.Random) -> bytes:
    if rng.random() < 0.2 and all(a and b" " not in a for a in args):
        return b" ".join(args) + b"\r\n"  # an inline request
    return encode_command(args)


def _cuts(data: bytes, rng: random.Random, pieces: int) -> List[bytes]:
    points = sorted(rng.sample(range(1, len(data)), min(pieces, len(data) - 1)))
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


def _errors(replies: List[object]) -> List[object]:
    return [r for r in replies if isinstance(r, ReplyError)]


def _run(proc, rng: random.Random, batches: int, split: bool) -> None:
    raw = RawClient(proc.port)
    try:
        for _ in range(batches):
            commands = [_random_command(rng) for _ in range(rng.randrange(1, 20))]
            data = b"".join(_wire(c, rng) for c in commands)
            if split:
                for piece in _cuts(data, rng, rng.randrange(1, 6)):
                    raw.send(piece)
            else:
                raw.send(data)
            replies = raw.read_replies(len(commands))
            # WRONGTYPE and "not an integer" are fine; anything else is a bug here.
            for err in _errors(replies):
                assert str(err).startswith(("WRONGTYPE", "ERR value is not")), err
    finally:
        raw.close()


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("split", [False, True], ids=["whole-reads", "split-reads"])
@pytest.mark.parametrize("seed", range(int(os.environ.get("WIRE_LOG_SEEDS", "2"))))
def test_random_reads_replay_to_the_same_dataset(tmp_path, parser, split, seed):
    proc = start(tmp_path, "--parser", parser, "--appendfsync", "everysec")
    try:
        _run(proc, random.Random(f"{parser}-{split}-{seed}"), batches=150, split=split)
        proc = crash_restart(tmp_path, proc, "--parser", parser)
    finally:
        proc.stop()


def test_whole_read_of_writes_is_logged_as_sent(tmp_path):
    """A read of plain multibulk writes is logged byte for byte; one holding an
    inline request is encoded (the replication stream's decision: a replica
    refuses inline requests); a restart replays both."""
    proc = start(tmp_path, "--appendfsync", "always")
    raw: Optional[RawClient] = None
    try:
        raw = RawClient(proc.port)
        data = encode_command([b"SET", b"multi-key", b"two words"]) \
            + encode_command([b"SET", b"k2", b"2"])
        raw.send(data)
        assert raw.read_replies(2) == [b"OK", b"OK"]
        inline = b"SET inline-key 1\r\n" + encode_command([b"SET", b"k3", b"3"])
        raw.send(inline)
        assert raw.read_replies(2) == [b"OK", b"OK"]
        logged = b"".join(p.read_bytes() for p in aof_dir(tmp_path).glob("*.incr.*"))
        assert data in logged
        assert b"SET inline-key" not in logged
        assert encode_command([b"SET", b"inline-key", b"1"]) in logged
        raw.close()
        raw = None
        proc = crash_restart(tmp_path, proc)
        r = client(proc)
        assert r.get("inline-key") == b"1" and r.get("multi-key") == b"two words"
    finally:
        if raw is not None:
            raw.close()
        proc.stop()


def test_read_with_a_rewritten_command_is_not_logged_as_sent(tmp_path):
    """SET ... EX is logged with an absolute expiry, so the read's bytes can't be used."""
    proc = start(tmp_path, "--appendfsync", "always")
    try:
        raw = RawClient(proc.port)
        data = encode_command([b"SET", b"a", b"1"]) + encode_command([b"SET", b"b", b"2", b"EX", b"100"])
        raw.send(data)
        assert raw.read_replies(2) == [b"OK", b"OK"]
        raw.close()
        logged = b"".join(p.read_bytes() for p in aof_dir(tmp_path).glob("*.incr.*"))
        assert data not in logged and b"PXAT" in logged.upper()
        deadline = client(proc).execute_command("PEXPIRETIME", "b")
        proc = crash_restart(tmp_path, proc)
        assert client(proc).execute_command("PEXPIRETIME", "b") == deadline
    finally:
        proc.stop()


def test_transactions_and_blocked_clients_are_logged_through_the_shortcut(tmp_path):
    """The dispatcher stages plain writes for the log itself; a transaction in
    the same read must still reach the log wrapped in MULTI/EXEC, and a write
    that wakes a blocked client must still wake it."""
    proc = start(tmp_path, "--appendfsync", "always")
    try:
        r = client(proc)
        raw = RawClient(proc.port)
        data = b"".join(encode_command(c) for c in (
            [b"SET", b"a", b"1"], [b"MULTI"], [b"INCR", b"a"], [b"SET", b"b", b"x"],
            [b"EXEC"], [b"SET", b"c", b"3"]))
        raw.send(data)
        replies = raw.read_replies(6)
        assert replies[0] == b"OK" and replies[4] == [2, b"OK"] and replies[5] == b"OK"
        raw.close()
        logged = b"".join(p.read_bytes() for p in aof_dir(tmp_path).glob("*.incr.*"))
        assert b"MULTI" in logged.upper() and b"EXEC" in logged.upper()
        waiter = RawClient(proc.port)
        waiter.send(encode_command([b"BLPOP", b"queue", b"0"]))
        wait_until(lambda: r.info("clients")["blocked_clients"] == 1, 10, 0.01, "BLPOP to block")
        r.rpush("queue", "job")
        assert waiter.read_replies(1) == [[b"queue", b"job"]]
        waiter.close()
        proc = crash_restart(tmp_path, proc)
        r = client(proc)
        assert r.mget("a", "b", "c") == [b"2", b"x", b"3"] and r.llen("queue") == 0
    finally:
        proc.stop()
