"""Reads through the server's one shared receive buffer (SocketTransport, the
default on PyPy's asyncio loop, and BufferedClient on asyncio's transports)
against asyncio's own reads (Client): the same replies over real sockets,
whichever runtime runs the tests. One buffer serves every client, so the cases
interleave clients, and cross its size."""
from __future__ import annotations

import socket
import sys
from typing import Iterator

import pytest

from distcache.protocol import encode_command
from distcache.server.app import READ_BUFFER_SIZE, CacheServer
from distcache.server.connection import BufferedClient, Client
from distcache.server.sock_transport import SocketTransport
from servers import recv_exactly


def _connect(server: CacheServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


#: (socket_io, buffered_reads) of each read path.
PATHS = {"socket-io": (True, None), "buffered": (False, True), "asyncio-reads": (False, False)}


@pytest.fixture(params=list(PATHS))
def server(request: pytest.FixtureRequest) -> Iterator[CacheServer]:
    server = CacheServer("127.0.0.1", 0, appendonly="no", save="", **{"event-loop": "asyncio"})
    server.socket_io, server.buffered_reads = PATHS[request.param]
    with server:
        yield server


def test_client_class_follows_the_setting(server: CacheServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"CLIENT ID\r\n")
        reply = sock.recv(100)
        client = server.clients[int(reply[1:-2])]
        assert type(client) is (BufferedClient if server.buffered_reads else Client)
        assert isinstance(client.transport, SocketTransport) is server.socket_io


def test_interleaved_clients_get_their_own_replies(server: CacheServer) -> None:
    socks = [_connect(server) for _ in range(20)]
    try:
        for round_ in range(5):
            for i, sock in enumerate(socks):
                value = b"v%d-%d" % (i, round_) * (i + 1)
                sock.sendall(encode_command([b"SET", b"k%d" % i, value])
                             + encode_command([b"GET", b"k%d" % i]))
            for i, sock in enumerate(socks):
                value = b"v%d-%d" % (i, round_) * (i + 1)
                expected = b"+OK\r\n$%d\r\n%s\r\n" % (len(value), value)
                assert recv_exactly(sock, len(expected)) == expected
    finally:
        for sock in socks:
            sock.close()


def test_value_larger_than_the_buffer(server: CacheServer) -> None:
    value = bytes(range(256)) * (3 * READ_BUFFER_SIZE // 256 + 7)
    with _connect(server) as sock:
        sock.sendall(encode_command([b"SET", b"big", value]) + encode_command([b"GET", b"big"]))
        expected = b"+OK\r\n$%d\r\n%s\r\n" % (len(value), value)
        assert recv_exactly(sock, len(expected)) == expected


def test_pipeline_longer_than_the_buffer(server: CacheServer) -> None:
    count = 3 * READ_BUFFER_SIZE // 30
    requests = b"".join(encode_command([b"INCR", b"counter"]) for _ in range(count))
    with _connect(server) as sock:
        sock.sendall(requests + encode_command([b"GET", b"counter"]))
        expected = b"".join(b":%d\r\n" % n for n in range(1, count + 1))
        assert recv_exactly(sock, len(expected)) == expected
        tail = b"$%d\r\n%d\r\n" % (len(str(count)), count)
        assert recv_exactly(sock, len(tail)) == tail


def test_request_split_into_single_bytes(server: CacheServer) -> None:
    with _connect(server) as sock:
        for byte in encode_command([b"SET", b"split", b"value"]):
            sock.sendall(bytes((byte,)))
        assert recv_exactly(sock, 5) == b"+OK\r\n"
        sock.sendall(b"GET split\r\n")
        assert recv_exactly(sock, 11) == b"$5\r\nvalue\r\n"


@pytest.mark.parametrize("loop", ["auto", "asyncio"])
def test_default_is_socket_io_only_on_pypy_asyncio(loop: str) -> None:
    with CacheServer("127.0.0.1", 0, appendonly="no", save="",
                     **{"event-loop": loop}) as server:
        with _connect(server) as sock:
            sock.sendall(b"CLIENT ID\r\n")
            client = server.clients[int(sock.recv(100)[1:-2])]
        pypy_asyncio = server.loop_kind == "asyncio" and sys.implementation.name == "pypy"
        assert type(client) is Client
        assert isinstance(client.transport, SocketTransport) is pypy_asyncio
