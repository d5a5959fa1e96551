"""Helpers for the server-core tests: a raw RESP socket client and fixtures
that run the same test against distcache and, when installed, a real
redis-server (so every expected value is checked against Redis itself)."""
from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Callable, List, Optional, Union

import pytest
import redis

from servers import REDIS_SERVER, ServerProcess, distcache_server, redis_server, wait_until  # noqa: F401

Arg = Union[str, bytes, int]


def encode(*args: Arg) -> bytes:
    """One request as a RESP multibulk."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, int):
            arg = b"%d" % arg
        elif isinstance(arg, str):
            arg = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class RawClient:
    """A socket that sends bytes and reads back whole raw RESP replies."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise EOFError("connection closed by the server")
        self.buf += data

    def _end_of(self, pos: int) -> int:
        """Index just past the reply starting at ``pos`` (reads more as needed)."""
        while True:
            nl = self.buf.find(b"\r\n", pos)
            if nl >= 0:
                break
            self._fill()
        kind, head = self.buf[pos:pos + 1], self.buf[pos + 1:nl]
        if kind in (b"$", b"=", b"!"):
            size = int(head)
            if size < 0:
                return nl + 2
            while len(self.buf) < nl + 4 + size:
                self._fill()
            return nl + 4 + size
        if kind in (b"*", b"~", b">", b"%", b"|"):
            count = int(head) * (2 if kind in (b"%", b"|") else 1)
            pos = nl + 2
            for _ in range(max(count, 0)):
                pos = self._end_of(pos)
            return pos
        return nl + 2

    def read_reply(self) -> bytes:
        end = self._end_of(0)
        reply, self.buf = self.buf[:end], self.buf[end:]
        return reply

    def call(self, *args: Arg) -> bytes:
        self.send(encode(*args))
        return self.read_reply()

    def read_until_closed(self, timeout: float = 10.0) -> bytes:
        """Everything the server sends until it closes the connection."""
        deadline = time.monotonic() + timeout
        data, self.buf = self.buf, b""
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                break
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk
        raise AssertionError(f"connection still open after {timeout}s; got {data[:200]!r}")


# -- exact replies ------------------------------------------------------------------

NIL = b"$-1\r\n"
OK = b"+OK\r\n"
SYNTAX = b"-ERR syntax error\r\n"
NOT_INT = b"-ERR value is not an integer or out of range\r\n"


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def num(value: int) -> bytes:
    return b":%d\r\n" % value


class ttl_about:
    """Matches the reply ``:N`` or ``:N-1``: a TTL read back right after it was
    set, with room for a slow machine to cross a rounding boundary."""

    def __init__(self, seconds: int) -> None:
        self.replies = (num(seconds), num(seconds - 1))

    def __eq__(self, other: object) -> bool:
        return other in self.replies

    def __repr__(self) -> str:
        return f"ttl_about({self.replies[0]!r})"


def run_steps(raw: "RawClient", steps: List[tuple]) -> None:
    """Send each ``(args, expected raw reply)`` in turn and compare."""
    for args, expected in steps:
        assert raw.call(*args) == expected, args


def start_target(kind: str, workdir: Path, *flags: str) -> ServerProcess:
    """A started distcache or redis-server process (skips when redis is missing)."""
    if kind == "redis":
        if not REDIS_SERVER:
            pytest.skip("redis-server is not installed (reference for expected values)")
        return redis_server(workdir, *flags).start()
    return distcache_server(workdir, *flags).start()


@pytest.fixture(scope="module", params=["distcache", "redis"])
def target_server(request, tmp_path_factory):
    """distcache, then the real redis-server: each test runs on both."""
    proc = start_target(request.param, tmp_path_factory.mktemp(request.param))
    proc.kind = request.param
    yield proc
    proc.stop()


@pytest.fixture
def tr(target_server):
    """A redis-py client on the parametrized server, every database flushed."""
    client = redis.Redis(port=target_server.port, socket_timeout=10)
    client.flushall()
    client.kind = target_server.kind
    yield client
    client.close()


@pytest.fixture
def traw(target_server, tr):
    """A raw RESP client on the parametrized server (flushed by ``tr``)."""
    with RawClient(target_server.port) as raw:
        yield raw


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def server_alive(port: int, password: Optional[str] = None) -> bool:
    client = redis.Redis(port=port, password=password, socket_timeout=10)
    try:
        return client.ping() is True
    finally:
        client.close()
