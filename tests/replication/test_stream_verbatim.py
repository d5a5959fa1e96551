"""The stream carries a read's own bytes when they are exactly its writes.

Pipelined batches mixing writes that propagate unchanged with reads, rewritten
writes (SET EX -> PXAT, INCRBYFLOAT, SPOP, scripts), failing writes, SELECT,
MULTI, inline and split requests go to a distcache primary over a raw socket (one
send, one read each); a real redis-server replica and a distcache replica must
end with the primary's dataset (values and TTLs) and its offset. A fake replica
reading the raw stream checks that the plain batches travel byte for byte.
"""
from __future__ import annotations

import re
import socket
import threading
import time
from typing import List, Sequence

import pytest
import redis

from repl_helpers import assert_same_data, info, wait_synced
from servers import distcache_server, wait_until

FAST_SYNC = ("--repl-diskless-sync-delay", "0")


def encode(*commands: Sequence[object]) -> bytes:
    out = []
    for command in commands:
        args = [a if isinstance(a, bytes) else str(a).encode() for a in command]
        out.append(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a)
                                                      for a in args))
    return b"".join(out)


def plain_sets(prefix: str, n: int = 16) -> bytes:
    return encode(*[("SET", f"{prefix}{i}", f"v{i}") for i in range(n)])


#: Each entry is one send; a tuple of two is one batch split mid-request.
BATCHES: List[object] = [
    plain_sets("a"),
    encode(("RPUSH", "list", "a", "b"), ("HSET", "hash", "f", "v", "g", "w"),
           ("ZADD", "zset", "1", "x", "2", "y"), ("SADD", "set", "a", "b", "c", "d"),
           ("INCR", "counter"), ("APPEND", "a0", "more"), ("DEL", "a1")),
    encode(("SET", "b1", "v"), ("GET", "b1"), ("SET", "b2", "v"), ("EXISTS", "b1")),
    encode(("SET", "ttl1", "v", "EX", "1000"), ("SET", "b3", "v"),
           ("EXPIRE", "a2", "500"), ("PEXPIRE", "a3", "700000")),
    encode(("SET", "str", "v"), ("LPUSH", "str", "x"), ("INCR", "str"), ("SET", "b4", "v")),
    encode(("INCRBYFLOAT", "float", "1.5"), ("SPOP", "set"), ("SET", "b5", "v")),
    encode(("DEL", "missing"), ("SETNX", "b5", "other"), ("SET", "b6", "v")),
    encode(("SELECT", "2"), ("SET", "c1", "v"), ("SET", "c2", "v")),
    plain_sets("d"),  # database 2, whole
    encode(("SELECT", "0")),
    plain_sets("e"),
    encode(("MULTI",), ("SET", "t1", "v"), ("INCR", "t2"), ("EXPIRE", "t1", "900"),
           ("EXEC",)),
    encode(("EVAL", "redis.call('set', KEYS[1], ARGV[1]) return 1", "1", "s1", "v"),
           ("SET", "b7", "v")),
    b"SET inline1 v1\r\nSET inline2 v2\r\n",
    plain_sets("f", 3) + b"SET inline3 v3\r\n",
    b"*0\r\n" + plain_sets("g", 3),
    plain_sets("h", 3) + b"*0\r\n",
    (plain_sets("i", 8)[:50], plain_sets("i", 8)[50:]),
    encode(("SET", "px", "v", "PX", "800000"), ("GETEX", "a4", "EX", "600")),
    plain_sets("j"),
]


def send_batches(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for batch in BATCHES:
            parts = batch if isinstance(batch, tuple) else (batch,)
            for part in parts:
                sock.sendall(part)
            _drain(sock)


def _drain(sock: socket.socket) -> None:
    """Read the batch's replies: a PING on the same socket answers last."""
    sock.sendall(encode(("PING", "end-of-batch")))
    got = b""
    while not got.endswith(b"$12\r\nend-of-batch\r\n"):
        chunk = sock.recv(65536)
        assert chunk, "the primary closed the connection"
        got += chunk


@pytest.fixture
def distcache_replica(tmp_path):
    procs = []

    def start(port: int):
        proc = distcache_server(tmp_path / f"dc-replica{len(procs)}", "--replicaof",
                                "127.0.0.1", str(port))
        procs.append(proc)
        return proc.start()

    yield start
    for proc in procs:
        proc.stop()


@pytest.mark.parametrize("appendonly", ["no", "yes"])
def test_mixed_batches_reach_both_replicas(tmp_path, start_replica, distcache_replica,
                                           appendonly):
    with distcache_server(tmp_path / "p", *FAST_SYNC, "--appendonly", appendonly) as proc:
        p = redis.Redis(port=proc.port, socket_timeout=30)
        real = redis.Redis(port=start_replica(proc.port).port, socket_timeout=30)
        ours = redis.Redis(port=distcache_replica(proc.port).port, socket_timeout=30)
        for replica in (real, ours):
            wait_synced(p, replica)
        # A client blocked on a list: the write that serves it is staged with
        # the pop it causes, which the read's bytes do not hold.
        blocked = redis.Redis(port=proc.port, socket_timeout=30)
        blocked.execute_command("CLIENT", "SETNAME", "blocked")
        popped: List[object] = []
        waiter = threading.Thread(target=lambda: popped.append(blocked.blpop("wake", 30)))
        waiter.start()
        wait_until(lambda: info(p, "clients")["blocked_clients"] == 1, 10,
                   message="the BLPOP blocked")
        send_batches(proc.port)
        with socket.create_connection(("127.0.0.1", proc.port), timeout=30) as sock:
            sock.sendall(encode(("RPUSH", "wake", "x", "y")))
            assert sock.recv(100) == b":2\r\n"
        waiter.join(30)
        assert popped == [(b"wake", b"x")]
        send_batches(proc.port)  # again: now every key exists, other branches
        for replica in (real, ours):
            wait_synced(p, replica)
            assert info(replica)["master_repl_offset"] == info(p)["master_repl_offset"]
            assert assert_same_data(p, replica) > 80
        # The replicas acknowledge the primary's offset (WAIT counts both), and
        # followed the stream without a break (a replica drops a link that sends
        # it something it can't parse, and syncs again).
        assert p.execute_command("WAIT", 2, 10000) == 2
        stats = info(p, "stats")
        assert (stats["sync_full"], stats["sync_partial_ok"]) == (2, 0)


def _read_until(sock: socket.socket, buf: bytearray, done, timeout: float = 20) -> None:
    """Read the fake replica's socket into ``buf`` until ``done(buf)``."""
    deadline = time.monotonic() + timeout
    while not done(buf):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; read so far: {bytes(buf[-200:])!r}"
        sock.settimeout(left)
        chunk = sock.recv(65536)
        assert chunk, "the primary closed the link"
        buf.extend(chunk)


def test_plain_batch_travels_byte_for_byte(primary):
    """A fake replica: after the sync, a read of plain writes is its own bytes in
    the stream, a rewritten one is encoded, and the offset counts what it read."""
    p = redis.Redis(port=primary.port, socket_timeout=30)
    p.config_set("repl-ping-replica-period", 3600)  # no PING in the stream
    p.set("before", "v")
    sock = socket.create_connection(("127.0.0.1", primary.port), timeout=30)
    try:
        sock.sendall(encode(("REPLCONF", "capa", "psync2"), ("PSYNC", "?", "-1")))
        buf = bytearray()
        # +OK (REPLCONF), +FULLRESYNC <id> <offset>, $<len> and the RDB
        _read_until(sock, buf, lambda b: re.search(rb"\$(\d+)\r\n", b) is not None)
        start = int(re.search(rb"\+FULLRESYNC \S+ (\d+)\r\n", buf).group(1))
        header = re.search(rb"\$(\d+)\r\n", buf)
        size = int(header.group(1))
        del buf[:header.end()]
        _read_until(sock, buf, lambda b: len(b) >= size)
        del buf[:size]
        wait_until(lambda: info(p)["slave0"]["state"] == "online", 10, message="online")
        batch = plain_sets("raw", 16)
        rewritten = encode(("SET", "rw", "v", "EX", "100"), ("SET", "rw2", "v"))
        with socket.create_connection(("127.0.0.1", primary.port), timeout=30) as client:
            for read in (batch, rewritten):
                client.sendall(read)
                _drain(client)
        last = encode(("SET", "rw2", "v"))
        _read_until(sock, buf, lambda b: b.endswith(last))
        assert buf.startswith(encode(("SELECT", "0")) + batch)
        assert rewritten not in buf and b"PXAT" in buf
        assert info(p)["master_repl_offset"] - start == len(buf)
    finally:
        sock.close()
