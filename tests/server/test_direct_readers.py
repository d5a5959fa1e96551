"""DirectReaderLoop (server/pypy_loop.py): the server's loop on PyPy, on either runtime.

The loop runs SocketTransport's readers straight from the poll; these tests check
that asyncio's other machinery still works beside them (timers, call_soon from
another thread, signals, subprocesses), that queued callbacks keep their place,
and that the server's blocking, pub/sub, MONITOR, CLIENT KILL and shutdown paths
behave on it.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Iterator, List

import pytest

from distcache.protocol import encode_command
from distcache.server.app import CacheServer
from distcache.server.pypy_loop import DirectReaderLoop
from distcache.server.sock_transport import SocketTransport
from servers import free_port, recv_exactly, wait_for_ping, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def loop() -> Iterator[DirectReaderLoop]:
    loop = DirectReaderLoop()
    yield loop
    loop.close()


def test_direct_reader_runs_from_the_poll_and_stops_when_removed(loop: DirectReaderLoop) -> None:
    ours, theirs = socket.socketpair()
    got: List[bytes] = []

    def ready() -> None:
        got.append(theirs.recv(100))
        if len(got) == 2:
            loop.stop()

    theirs.setblocking(False)
    loop.add_direct_reader(theirs.fileno(), ready)
    ours.send(b"a")
    loop.call_later(0.05, ours.send, b"b")
    loop.call_later(20, loop.stop)  # a deadline, not a wait
    loop.run_forever()
    assert got == [b"a", b"b"]
    assert loop.remove_reader(theirs.fileno())
    ours.send(b"c")
    loop.run_until_complete(asyncio.sleep(0.05))
    assert got == [b"a", b"b"]
    ours.close()
    theirs.close()


def test_queued_callbacks_run_before_a_direct_reader(loop: DirectReaderLoop) -> None:
    ours, theirs = socket.socketpair()
    order: List[str] = []
    theirs.setblocking(False)
    ours.send(b"x")  # readable before the turn starts

    def ready() -> None:
        order.append("reader:" + theirs.recv(10).decode())
        loop.call_soon(order.append, "scheduled by reader")
        loop.remove_reader(theirs.fileno())

    loop.add_direct_reader(theirs.fileno(), ready)
    loop.call_soon(order.append, "queued first")
    loop.run_until_complete(asyncio.sleep(0.05))
    assert order == ["queued first", "reader:x", "scheduled by reader"]
    ours.close()
    theirs.close()


def test_a_failing_direct_reader_reaches_the_exception_handler(loop: DirectReaderLoop) -> None:
    ours, theirs = socket.socketpair()
    seen: List[BaseException] = []

    def ready() -> None:
        loop.remove_reader(theirs.fileno())
        raise ValueError("boom")

    loop.set_exception_handler(lambda _loop, context: seen.append(context["exception"]))
    loop.add_direct_reader(theirs.fileno(), ready)
    ours.send(b"x")
    loop.run_until_complete(asyncio.sleep(0.05))
    assert [type(exc) for exc in seen] == [ValueError]
    ours.close()
    theirs.close()


def test_what_a_direct_reader_schedules_runs_before_other_descriptors(
        loop: DirectReaderLoop) -> None:
    direct_ours, direct_theirs = socket.socketpair()
    plain_ours, plain_theirs = socket.socketpair()
    order: List[str] = []
    for sock in (direct_theirs, plain_theirs):
        sock.setblocking(False)

    def direct_ready() -> None:
        order.append("direct:" + direct_theirs.recv(10).decode())
        loop.call_soon(order.append, "scheduled by direct")
        loop.remove_reader(direct_theirs.fileno())

    def plain_ready() -> None:
        order.append("plain:" + plain_theirs.recv(10).decode())
        loop.remove_reader(plain_theirs.fileno())
        loop.stop()  # the rest of this turn still runs

    loop.add_reader(plain_theirs.fileno(), plain_ready)
    loop.add_direct_reader(direct_theirs.fileno(), direct_ready)

    def send() -> None:  # both readable at the next poll, the plain one first
        plain_ours.send(b"p")
        direct_ours.send(b"d")

    # From a timer: the turn after it polls with nothing queued, as a server's does
    # (no other timer, which a loaded host could make come due on the same turn).
    loop.call_later(0.01, send)
    deadline = loop.call_later(20, loop.stop)
    loop.run_forever()
    deadline.cancel()
    assert order == ["direct:d", "scheduled by direct", "plain:p"]
    for sock in (direct_ours, direct_theirs, plain_ours, plain_theirs):
        sock.close()


def test_a_plain_reader_replaces_a_direct_one(loop: DirectReaderLoop) -> None:
    ours, theirs = socket.socketpair()
    got: List[str] = []
    theirs.setblocking(False)
    loop.add_direct_reader(theirs.fileno(), lambda: got.append("direct"))
    loop.add_reader(theirs, lambda: got.append("plain:" + theirs.recv(10).decode()))
    ours.send(b"x")
    loop.run_until_complete(asyncio.sleep(0.05))
    assert got == ["plain:x"]
    # Removed by the socket object rather than its descriptor: no longer called.
    loop.add_direct_reader(theirs.fileno(), lambda: got.append("direct:" + theirs.recv(10).decode()))
    assert loop.remove_reader(theirs)
    ours.send(b"y")
    loop.run_until_complete(asyncio.sleep(0.05))
    assert got == ["plain:x"]
    ours.close()
    theirs.close()


def test_a_direct_reader_beside_a_writer_and_at_hang_up(loop: DirectReaderLoop) -> None:
    ours, theirs = socket.socketpair()
    got: List[bytes] = []
    writes: List[int] = []
    theirs.setblocking(False)

    def ready() -> None:
        data = theirs.recv(10)
        got.append(data)
        if not data:
            loop.remove_reader(theirs.fileno())

    def writable() -> None:
        writes.append(theirs.send(b"w"))
        loop.remove_writer(theirs.fileno())

    loop.add_direct_reader(theirs.fileno(), ready)
    loop.add_writer(theirs.fileno(), writable)  # read and write events in one poll
    ours.send(b"r")
    loop.run_until_complete(asyncio.sleep(0.05))
    assert got == [b"r"] and writes == [1]
    assert ours.recv(10) == b"w"
    ours.close()  # a hang-up: reported with the read event, the reader sees EOF
    loop.run_until_complete(asyncio.sleep(0.05))
    assert got == [b"r", b""]
    theirs.close()


def test_timers_threads_signals_and_subprocesses_still_work(loop: DirectReaderLoop) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")

    async def scenario() -> List[str]:
        events: List[str] = []
        fired = loop.create_future()
        loop.call_later(0.01, fired.set_result, "timer")
        events.append(await fired)
        woken = loop.create_future()
        # The loop sleeps in the poll: only the self-pipe can wake it.
        threading.Timer(0.05, loop.call_soon_threadsafe, (woken.set_result, "thread")).start()
        events.append(await asyncio.wait_for(woken, 20))
        signalled = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, signalled.set_result, "signal")
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            events.append(await asyncio.wait_for(signalled, 20))
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('child')", stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        events.append(out.decode().strip())
        return events

    asyncio.set_event_loop(loop)
    try:
        assert loop.run_until_complete(scenario()) == ["timer", "thread", "signal", "child"]
    finally:
        asyncio.set_event_loop(None)


# -- the server on it ----------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[CacheServer]:
    server = CacheServer("127.0.0.1", 0, appendonly="no", save="", **{"event-loop": "asyncio"})
    server.socket_io = True
    server.direct_readers = True
    with server:
        assert isinstance(server.loop, DirectReaderLoop)
        yield server


def _connect(server: CacheServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    return sock


def _call(sock: socket.socket, *args: bytes) -> bytes:
    sock.sendall(encode_command(list(args)))
    return sock.recv(1 << 16)


def test_blocking_pops_time_out_and_wake_up(server: CacheServer) -> None:
    blocked, other = _connect(server), _connect(server)
    start = time.monotonic()
    assert _call(blocked, b"BLPOP", b"q", b"0.2") == b"*-1\r\n"
    assert time.monotonic() - start >= 0.15
    blocked.sendall(encode_command([b"BLPOP", b"q", b"0"]))
    wait_until(lambda: _call(other, b"INFO", b"clients").count(b"blocked_clients:1") == 1)
    assert _call(other, b"LPUSH", b"q", b"v") == b":1\r\n"
    popped = b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n"
    assert recv_exactly(blocked, len(popped)) == popped


def test_pubsub_monitor_and_client_kill(server: CacheServer) -> None:
    sub, mon, pub = _connect(server), _connect(server), _connect(server)
    assert _call(sub, b"SUBSCRIBE", b"ch").startswith(b"*3\r\n$9\r\nsubscribe")
    assert _call(mon, b"MONITOR") == b"+OK\r\n"
    assert _call(pub, b"PUBLISH", b"ch", b"hi") == b":1\r\n"
    message = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
    assert recv_exactly(sub, len(message)) == message
    assert b'"PUBLISH" "ch" "hi"' in mon.recv(1 << 16)
    victim = _connect(server)
    victim_id = _call(victim, b"CLIENT", b"ID")[1:-2]
    assert _call(pub, b"CLIENT", b"KILL", b"ID", victim_id) == b":1\r\n"
    assert victim.recv(10) == b""  # closed by the server
    client = server.clients[int(_call(pub, b"CLIENT", b"ID")[1:-2])]
    assert isinstance(client.transport, SocketTransport)


def test_sigterm_shuts_the_server_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    code = ("import sys; from distcache.server.app import CacheServer; "
            f"s = CacheServer('127.0.0.1', {port}, appendonly='no', save='', "
            "**{'event-loop': 'asyncio'}); s.socket_io = s.direct_readers = True; "
            "s.serve_forever()")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env)
    try:
        wait_for_ping(port, time.monotonic() + 60, proc)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            assert _call(sock, b"SET", b"k", b"v") == b"+OK\r\n"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
