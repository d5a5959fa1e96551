"""Ketama agreement with libmemcached itself: pylibmc over real memcached servers.

Keys are set through pylibmc (ketama behaviours), then every memcached is asked
directly which one holds each key; KetamaRing must name the same server.
Needs memcached (apt-get install memcached) and pylibmc (apt-get install
libmemcached-dev zlib1g-dev; pip install pylibmc); skips cleanly otherwise.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from distcache.client.ring import KetamaRing, parse_servers
from servers import free_ports, recv_until

pylibmc = pytest.importorskip("pylibmc")
MEMCACHED = shutil.which("memcached")
pytestmark = pytest.mark.skipif(not MEMCACHED, reason="memcached is not installed")

KEYS = [f"key:{i}" for i in range(150)] + [f"user:{i}:profile" for i in range(50)]


def _wait_ready(port: int, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"memcached on {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"version\r\n")
                if sock.recv(64).startswith(b"VERSION"):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"memcached on {port} did not start")


def _start_memcached(port: int) -> subprocess.Popen:
    argv = [MEMCACHED, "-p", str(port), "-l", "127.0.0.1", "-U", "0", "-m", "16", "-t", "1"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv += ["-u", "root"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(port, proc, time.monotonic() + 10)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return proc


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def memcached_ports():
    ports = free_ports(4)
    procs = []
    try:
        for port in ports:
            procs.append(_start_memcached(port))
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _command(port: int, line: bytes, end: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(line)
        return recv_until(sock, end)


def _keys_held(port: int, keys) -> set:
    """The subset of ``keys`` that the memcached on ``port`` holds (multi-get)."""
    held = set()
    for start in range(0, len(keys), 100):
        line = b"get " + b" ".join(k.encode() for k in keys[start:start + 100]) + b"\r\n"
        for row in _command(port, line, b"END\r\n").split(b"\r\n"):
            if row.startswith(b"VALUE "):
                held.add(row.split()[1].decode())
    return held


def _check_agreement(specs, behaviors, weighted: bool, keys=KEYS) -> None:
    ports = [s.port for s in specs]
    for port in ports:
        _command(port, b"flush_all\r\n", b"OK\r\n")
    client = pylibmc.Client([f"{s.host}:{s.port}:{s.weight}" for s in specs],
                            behaviors=behaviors)
    try:
        for key in keys:
            client.set(key, b"v")
    finally:
        client.disconnect_all()
    ring = KetamaRing(specs, weighted=weighted)
    placed: dict = {key: [] for key in keys}
    for port in ports:
        for key in _keys_held(port, keys):
            placed[key].append(port)
    expected = {key: [ring.get_server(key.encode()).port] for key in keys}
    assert placed == expected
    assert len({tuple(v) for v in placed.values()}) == len(specs)  # every server used


def test_agrees_with_libmemcached_ketama_weighted(memcached_ports):
    specs = parse_servers([("127.0.0.1", port) for port in memcached_ports[:3]])
    _check_agreement(specs, {"ketama_weighted": True}, weighted=True)


def test_agrees_with_libmemcached_ketama_weighted_with_weights(memcached_ports):
    specs = parse_servers([("127.0.0.1", port, weight)
                           for port, weight in zip(memcached_ports, (1, 3, 2, 5))])
    _check_agreement(specs, {"ketama_weighted": True}, weighted=True)


def test_agrees_with_libmemcached_plain_ketama_md5(memcached_ports):
    specs = parse_servers([("127.0.0.1", port) for port in memcached_ports])
    _check_agreement(specs, {"ketama": True, "hash": "md5"}, weighted=False)


def test_agrees_with_libmemcached_on_the_default_port(memcached_ports):
    """On port 11211 libmemcached names points "host-N" (no port)."""
    if not _port_is_free(11211):
        pytest.skip("port 11211 is in use")
    try:
        proc = _start_memcached(11211)
    except Exception as exc:
        pytest.skip(f"cannot start memcached on 11211: {exc}")
    try:
        specs = parse_servers([("127.0.0.1", 11211)] +
                              [("127.0.0.1", port) for port in memcached_ports[:2]])
        _check_agreement(specs, {"ketama_weighted": True}, weighted=True)
    finally:
        proc.terminate()
        proc.wait(10)


def test_agrees_with_libmemcached_single_precision_point_counts():
    """With 25 equal servers libmemcached's float arithmetic gives each 156
    points, not 160 (floor(39.99999) x 4); KetamaRing reproduces that."""
    ports = free_ports(25)
    procs = []
    try:
        for port in ports:
            procs.append(_start_memcached(port))
        specs = parse_servers([("127.0.0.1", port) for port in ports])
        assert len(KetamaRing(specs).points) == 25 * 156
        _check_agreement(specs, {"ketama_weighted": True}, weighted=True,
                         keys=[f"key:{i}" for i in range(1000)])
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
