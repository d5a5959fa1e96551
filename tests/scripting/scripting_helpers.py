"""Script test helpers: exact reply bytes from a raw connection, and a data fingerprint."""
from __future__ import annotations

import socket
import threading
from typing import Any, Dict

import pytest
import redis

from persistence.persistence_helpers import dump

from distcache.protocol import NOT_ENOUGH, ReplyParser, encode_command


class RawConn:
    """One connection that returns each reply's exact bytes (RESP2, or RESP3 after HELLO 3)."""

    def __init__(self, port: int, resp3: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if resp3:
            self.call("HELLO", "3")

    def call(self, *args: Any) -> bytes:
        self.sock.sendall(encode_command([a if isinstance(a, bytes) else str(a).encode()
                                          for a in args]))
        data = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
            parser = ReplyParser()
            parser.feed(data)
            if parser.get() is not NOT_ENOUGH:
                return data

    def close(self) -> None:
        self.sock.close()


def fingerprint(client: Any) -> Dict[Any, Any]:
    """Every key of databases 0 and 1: type, value and whether it expires (not when:
    two servers running the same script a few milliseconds apart differ there)."""
    return {key: (kind, value, when > 0)
            for key, (kind, value, when) in dump(client, databases=2).items()}


class Background(threading.Thread):
    """Runs one command (EVAL, FCALL...) on its own connection in the background and
    keeps its reply or error text in ``outcome``."""

    def __init__(self, port: int, *command: Any) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=60)
        self.command = command
        self.outcome: Any = None
        self.start()

    def run(self) -> None:
        try:
            self.outcome = self.client.execute_command(*self.command)
        except (redis.ResponseError, redis.ConnectionError) as exc:
            self.outcome = f"{type(exc).__name__}: {exc}"


def error_text(call: Any) -> Any:
    """The call's reply, or its error's text."""
    try:
        return call()
    except redis.ResponseError as exc:
        return str(exc)


@pytest.fixture(scope="module")
def pair(shared_server, reference_redis):
    """(port, redis-py client) of the shared distcache server and of redis-server."""
    servers = []
    for proc in (shared_server, reference_redis):
        servers.append((proc.port, redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=10)))
    yield servers
    for _, client in servers:
        client.close()
