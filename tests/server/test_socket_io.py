"""Edge cases of SocketTransport (the server's own recv_into/send on the loop's
reader callbacks; the default on PyPy's asyncio loop), forced on, so that they
run on either runtime: partial sends to slow readers, the pub/sub output limit,
a client leaving mid-pipeline, CLIENT KILL, maxclients, replies bigger than the
socket buffers."""
from __future__ import annotations

import socket
import time
from typing import Callable, Iterator

import pytest

from distcache.protocol import encode_command
from distcache.server.app import CacheServer
from distcache.server.sock_transport import SocketTransport
from servers import recv_exactly


def _wait(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _connect(server: CacheServer, rcvbuf: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:  # before connecting, so the window starts small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", server.port))
    return sock


def _call(sock: socket.socket, *args: bytes) -> bytes:
    sock.sendall(encode_command(list(args)))
    return sock.recv(1 << 16)


@pytest.fixture
def server() -> Iterator[CacheServer]:
    server = CacheServer("127.0.0.1", 0, appendonly="no", save="", **{"event-loop": "asyncio"})
    server.socket_io = True
    with server:
        yield server


def _client_of(server: CacheServer, sock: socket.socket):  # type: ignore[no-untyped-def]
    client_id = int(_call(sock, b"CLIENT", b"ID")[1:-2])
    client = server.clients[client_id]
    assert isinstance(client.transport, SocketTransport)
    return client


def test_slow_reader_gets_every_byte_and_the_server_pauses_it(server: CacheServer) -> None:
    value = bytes(range(256)) * 4096  # 1 MB
    with _connect(server) as writer:
        assert _call(writer, b"SET", b"big", value) == b"+OK\r\n"
    with _connect(server, rcvbuf=4096) as slow, _connect(server) as other:
        client = _client_of(server, slow)
        count = 20
        slow.sendall(encode_command([b"GET", b"big"]) * count)
        # The replies outgrow the socket: the rest waits in the transport, and
        # the client is not read meanwhile.
        _wait(lambda: client.transport.get_write_buffer_size() > 0)
        _wait(lambda: client.write_paused and client.reading_paused)
        assert _call(other, b"PING") == b"+PONG\r\n"  # the others are still served
        expected = b"$%d\r\n%s\r\n" % (len(value), value)
        for _ in range(count):
            assert recv_exactly(slow, len(expected)) == expected
        _wait(lambda: not client.write_paused and not client.reading_paused)
        assert client.transport.get_write_buffer_size() == 0
        assert _call(slow, b"PING") == b"+PONG\r\n"


def test_pubsub_output_limit_drops_a_subscriber_that_does_not_read(server: CacheServer) -> None:
    with _connect(server) as admin:
        assert _call(admin, b"CONFIG", b"SET", b"client-output-buffer-limit",
                     b"pubsub 256kb 0 0") == b"+OK\r\n"
        with _connect(server, rcvbuf=4096) as sub:
            client = _client_of(server, sub)
            assert _call(sub, b"SUBSCRIBE", b"ch").startswith(b"*3\r\n")
            payload = b"x" * 65536
            for _ in range(64):
                assert _call(admin, b"PUBLISH", b"ch", payload) in (b":1\r\n", b":0\r\n")
                if client.closed:
                    break
            _wait(lambda: client.closed and client.id not in server.clients)
            assert server.stats["client_output_buffer_limit_disconnections"] == 1
        assert _call(admin, b"PING") == b"+PONG\r\n"


def test_client_closing_mid_pipeline(server: CacheServer) -> None:
    with _connect(server) as sock:
        client = _client_of(server, sock)
        pipeline = b"".join(encode_command([b"INCR", b"n"]) for _ in range(5000))
        sock.sendall(pipeline)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    # Reset while its replies were being written: the server drops the client
    # and keeps serving others.
    _wait(lambda: client.closed and client.id not in server.clients)
    with _connect(server) as other:
        reply = _call(other, b"GET", b"n")
        assert reply.startswith(b"$") and int(reply.split(b"\r\n")[1]) > 0


def test_client_kill_closes_the_socket(server: CacheServer) -> None:
    with _connect(server) as victim, _connect(server) as admin:
        client = _client_of(server, victim)
        assert _call(admin, b"CLIENT", b"KILL", b"ID", b"%d" % client.id) == b":1\r\n"
        assert victim.recv(100) == b""
        _wait(lambda: client.id not in server.clients)


def test_maxclients_refuses_with_an_error() -> None:
    server = CacheServer("127.0.0.1", 0, appendonly="no", save="", maxclients="1",
                         **{"event-loop": "asyncio"})
    server.socket_io = True
    with server, _connect(server) as first, _connect(server) as second:
        assert _call(first, b"PING") == b"+PONG\r\n"
        assert second.recv(100).startswith(b"-ERR max number of clients reached")
        assert second.recv(100) == b""
        assert server.stats["rejected_connections"] == 1


def test_quit_sends_its_reply_before_closing(server: CacheServer) -> None:
    with _connect(server) as sock:
        sock.sendall(encode_command([b"SET", b"k", b"v" * 100000]) + encode_command([b"GET", b"k"])
                     + encode_command([b"QUIT"]))
        expected = b"+OK\r\n$100000\r\n" + b"v" * 100000 + b"\r\n+OK\r\n"
        assert recv_exactly(sock, len(expected)) == expected
        assert sock.recv(100) == b""
