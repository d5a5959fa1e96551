"""Timeouts and failures give clear exceptions within the timeout, never a hang."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time

import pytest

from servers import distcache_server, free_port

from distcache.client.errors import (AuthenticationError, CacheError, ConnectionError,
                                     TimeoutError)


@pytest.fixture
def black_hole():
    """A server that accepts connections and never replies."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield "127.0.0.1:%d" % listener.getsockname()[1]
    stop.set()
    thread.join(2)
    for sock in accepted:
        sock.close()
    listener.close()


def test_server_that_never_answers(black_hole, client_factory):
    c = client_factory(black_hole, timeout=0.3, retries=0)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no reply within"):
        c.get("k")
    assert time.monotonic() - started < 2
    started = time.monotonic()
    with pytest.raises(TimeoutError):  # a retried read still ends in bounded time
        client_factory(black_hole, timeout=0.2, retries=2).get("k")
    assert time.monotonic() - started < 3


def test_ignore_errors_turns_failures_into_misses(black_hole, client_factory):
    c = client_factory(black_hole, timeout=0.2, retries=0, ignore_errors=True)
    assert c.get("k", "dflt") == "dflt"
    assert c.set("k", 1) is False
    assert c.get_many(["a", "b"]) == {}
    assert c.incr("n") is None


def test_connection_refused(client_factory):
    c = client_factory(f"127.0.0.1:{free_port()}", connect_timeout=1, retries=1)
    with pytest.raises(ConnectionError, match="cannot connect"):
        c.get("k")
    with pytest.raises(CacheError):
        c.set("k", 1)


def test_stopped_server_times_out(tmp_path, client_factory):
    with distcache_server(tmp_path) as proc:
        c = client_factory(proc.address, timeout=0.5, retries=0)
        c.set("k", 1)
        os.kill(proc.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                c.get("k")
            assert time.monotonic() - started < 2.5
        finally:
            os.kill(proc.proc.pid, signal.SIGCONT)
        assert c.get("k") == 1  # the broken connection was dropped, a new one works


def test_server_killed_mid_request(tmp_path, client_factory):
    with distcache_server(tmp_path) as proc:
        c = client_factory(proc.address, timeout=5, retries=0)
        c.set("k", 1)
        os.kill(proc.proc.pid, signal.SIGSTOP)  # the request is in flight when it dies
        killer = threading.Timer(0.2, proc.kill)
        killer.start()
        started = time.monotonic()
        try:
            with pytest.raises(ConnectionError):
                c.get("k")
        finally:
            killer.join()
        assert time.monotonic() - started < 4
        with pytest.raises(ConnectionError):
            c.get("k")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    with distcache_server(tmp_path_factory.mktemp("auth"), "--requirepass", "s3cret") as proc:
        yield proc


def test_wrong_password(auth_server, client_factory):
    address = auth_server.address
    with pytest.raises(AuthenticationError):
        client_factory(address, password="wrong").get("k")
    with pytest.raises(AuthenticationError, match="NOAUTH"):
        client_factory(address).get("k")
    good = client_factory(address, password="s3cret", db=2)
    good.delete("k")
    assert good.set("k", 1) and good.get("k") == 1
    assert client_factory(address, password="s3cret").get("k") is None  # db 0


@pytest.fixture
def slammer():
    """A server that reads one request per connection, then hangs up; it counts
    the requests, so a test can tell which commands were retried."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    seen = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    seen.append(conn.recv(65536))
                except OSError:
                    pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield "127.0.0.1:%d" % listener.getsockname()[1], seen
    stop.set()
    thread.join(2)
    listener.close()


def test_only_idempotent_commands_are_retried(slammer, client_factory):
    address, seen = slammer
    c = client_factory(address, retries=2, timeout=2)
    with pytest.raises(ConnectionError, match="closed"):
        c.get("k")
    assert sum(b"GET" in r for r in seen) == 3       # first try + 2 retries
    seen.clear()
    with pytest.raises(ConnectionError):
        c.incr("k")
    assert sum(b"INCRBY" in r for r in seen) == 1    # never repeated
    seen.clear()
    with pytest.raises(ConnectionError):
        c.set("k", 1, nx=True)
    assert len(seen) == 1


def test_pooled_connection_to_a_restarted_server(tmp_path, client_factory, monkeypatch):
    from distcache.client import connection
    monkeypatch.setattr(connection, "STALE_CHECK_AFTER", 0.0)
    with distcache_server(tmp_path / "a") as proc:
        c = client_factory(proc.address, retries=0)
        assert c.incr("n") == 1
        port = proc.port
    with distcache_server(tmp_path / "b", port=port):
        # Not retried (INCR is not idempotent), yet it works: the dead pooled
        # connection is noticed before use (sync) or was closed by the loop (async).
        if hasattr(c, "loop"):  # a running loop notices the hang-up by itself
            shared = c._target._direct.shared
            deadline = time.monotonic() + 10
            while not shared.closed and time.monotonic() < deadline:
                c.loop.run_until_complete(asyncio.sleep(0.01))
        assert c.incr("n") == 1
