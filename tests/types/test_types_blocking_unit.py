"""Blocked clients in process, with fake transports, where timing over TCP can't be
controlled: a disconnect noticed in the same loop turn as the push that serves it."""
from __future__ import annotations

import asyncio
from typing import List

from distcache.protocol import encode_command
from distcache.server.app import CacheServer
from distcache.server.connection import Client


class FakeTransport:
    def __init__(self) -> None:
        self.data: List[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data.append(data)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 1)

    def is_closing(self) -> bool:
        return self.closed


def test_a_client_gone_while_served_runs_nothing_it_queued(tmp_path):
    async def scenario() -> None:
        server = CacheServer("127.0.0.1", 0, save="", appendonly="no", dir=str(tmp_path))
        server.loading = False
        pusher, waiter = Client(server), Client(server)
        pusher.connection_made(FakeTransport())
        waiter.connection_made(FakeTransport())
        waiter.data_received(encode_command([b"BLPOP", b"k1", b"0"])
                             + encode_command([b"BLPOP", b"k2", b"0"])
                             + encode_command([b"SET", b"after", b"1"]))
        assert waiter.blocked and len(waiter.pending) == 2
        # The peer is gone (connection_lost is queued) and, in the same loop turn,
        # a push serves the waiter.
        asyncio.get_running_loop().call_soon(waiter.connection_lost, None)
        pusher.data_received(encode_command([b"RPUSH", b"k1", b"x"]))
        for _ in range(3):
            await asyncio.sleep(0)
        assert waiter.closed and not waiter.blocked
        assert server.blocked_clients == 0
        assert not server.keyspace.dbs[0].blocking
        assert server.keyspace.dbs[0].peek(b"after") is None

    asyncio.run(scenario())
