"""The read hook that gives the stream a read's own bytes, in process: a real server
object and dispatcher, with recording transports and a loop run by hand (as
bench/instructions.py), so the stream's exact bytes can be compared."""
from __future__ import annotations

from typing import List

import pytest

from distcache.persistence.propagation import send_replies
from distcache.protocol import encode_command
from distcache.server.app import CacheServer
from distcache.server.connection import Client


class Transport:
    def __init__(self) -> None:
        self.written: List[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 1)

    def close(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class Loop:
    def __init__(self) -> None:
        self.ready: list = []

    def call_soon(self, callback: object, *args: object) -> None:
        self.ready.append((callback, args))

    def run(self) -> None:
        while self.ready:
            ready, self.ready = self.ready, []
            for callback, args in ready:
                callback(*args)  # type: ignore[operator]


def enc(*commands: List[bytes]) -> bytes:
    return b"".join(encode_command(list(c)) for c in commands)


@pytest.fixture(params=["stream", "stream+log"])
def setup(request, tmp_path):
    loop = Loop()
    both = request.param == "stream+log"
    server = CacheServer("127.0.0.1", 0, appendonly="yes" if both else "no", save="",
                         dir=str(tmp_path))
    server.loop = loop  # type: ignore[assignment]
    if both:
        server.persistence._on_started(server)  # opens the log
        loop.run()
    server.loading = False
    server.gated = False
    primary = server.replication.primary
    primary._create_backlog()
    replica = Client(server)
    replica.connection_made(Transport())
    link = primary.attach(replica, False)
    link.repl_state = "online"
    client = Client(server)
    client.connection_made(Transport())
    yield server, loop, client, replica.transport.written
    if both:
        server.persistence.close()


def test_reads_reach_the_stream_verbatim_or_encoded(setup):
    server, loop, client, stream = setup
    primary = server.replication.primary
    assert server.before_reply
    if server.persistence.log is None:
        assert server.log_read == primary.read_done
        assert server.defer_reply is send_replies
    plain = enc([b"SET", b"a", b"1"], [b"SET", b"b", b"2"], [b"RPUSH", b"l", b"x"])
    client.data_received(plain)
    loop.run()
    assert b"".join(stream) == enc([b"SELECT", b"0"]) + plain
    assert b"".join(client.transport.written) == b"+OK\r\n+OK\r\n:1\r\n"
    # A write made outside any read (an expiry's DEL) before a plain read: the read
    # is encoded after it, in order.
    stream.clear()
    server.keyspace.propagate(0, [[b"DEL", b"a"]])
    if server.persistence.log is not None:
        server.persistence.flush_log()  # the log's part is written: only the stream holds it
    client.data_received(plain)
    loop.run()
    assert b"".join(stream) == enc([b"DEL", b"a"]) + plain
    # Inline requests and empty multibulks are encoded; a rewritten write too.
    for read, expected in ((b"SET c 3\r\n", enc([b"SET", b"c", b"3"])),
                           (b"*0\r\n" + enc([b"SET", b"d", b"4"]), enc([b"SET", b"d", b"4"])),
                           (enc([b"SET", b"e", b"5"]) + b"\r\n", enc([b"SET", b"e", b"5"]))):
        stream.clear()
        client.data_received(read)
        loop.run()
        assert b"".join(stream) == expected
    # The offset counts exactly what the replica got.
    total = primary.backlog.since(1)
    assert primary.state.master_repl_offset == len(total)
    assert total.endswith(enc([b"SET", b"e", b"5"]))


def test_the_hook_follows_the_stream(setup):
    """REPLICAOF makes the stream stop taking reads; NO ONE takes them again."""
    server, loop, client, stream = setup
    primary = server.replication.primary
    logging_on = server.persistence.log is not None
    primary._free_backlog()
    assert server.before_reply == logging_on
    assert server.log_read != primary.read_done
    primary._create_backlog()
    assert server.before_reply
