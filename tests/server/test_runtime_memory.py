"""maxmemory bounds the process's RSS on the runtime the tests run under (CPython or PyPy).

used_memory is an estimate from sampled object sizes (PyPy has no sys.getsizeof:
its layouts, times the heap growth its GC allows); these tests check that the
estimate stays honest against what the kernel counts.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from distcache.server.eviction import PYPY
from servers import distcache_server

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
PAGE = os.sysconf("SC_PAGE_SIZE")
MAXMEMORY = 24 * 2**20


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as fh:
        return int(fh.read().split()[1]) * PAGE


def _fill(port: int, keys: int, batch: int = 2000) -> None:
    """Pipelined SETs of 16-byte keys and 32-byte values; every reply read."""
    value = b"v" * 32
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for start in range(0, keys, batch):
            chunk = b"".join(b"*3\r\n$3\r\nSET\r\n$16\r\n%016d\r\n$32\r\n%s\r\n" % (i, value)
                             for i in range(start, start + batch))
            sock.sendall(chunk)
            got = 0
            while got < 5 * batch:
                data = sock.recv(1 << 20)
                assert data, "server closed the connection"
                assert b"-" not in data, data[:200]  # no OOM error under allkeys-lru
                got += len(data)


def _info(port: int) -> dict:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"*2\r\n$4\r\nINFO\r\n$3\r\nall\r\n")
        data = b""
        while b"# Keyspace" not in data or not data.endswith(b"\r\n"):
            data += sock.recv(1 << 16)
    return dict(line.split(":", 1) for line in data.decode().splitlines()
                if ":" in line and not line.startswith("#"))


def test_maxmemory_bounds_rss_past_the_limit(tmp_path: Path) -> None:
    with distcache_server(tmp_path, "--maxmemory", str(MAXMEMORY),
                          "--maxmemory-policy", "allkeys-lru") as server:
        before = _rss(server.proc.pid)
        # About three times what fits: ~190 B/key on CPython, ~350 on PyPy.
        _fill(server.port, 400_000)
        info = _info(server.port)
        grown = _rss(server.proc.pid) - before
        assert int(info["evicted_keys"]) > 0
        # (PyPy: used_memory also counts evicted values its GC has not collected)
        assert int(info["used_memory"]) - int(info["mem_not_counted_for_evict"]) \
            <= MAXMEMORY * 1.05
        # The dataset's real growth stays near the limit (slack: allocator and GC
        # fragmentation, the read buffers of a pipelined load). PyPy's freed old
        # objects wait for the next major collection, which used_memory counts
        # (eviction.gc_factor): measured 1.25-1.32x maxmemory there (docs/pypy.md),
        # 2.1x in a CI run. On CPython, 1.5x was seen in a loaded CI run (the
        # allocator's arenas).
        bound = 2.5 if PYPY else 2.0
        assert grown <= MAXMEMORY * bound, (grown, info["used_memory"], info["evicted_keys"])


def test_memory_per_key_after_a_load(tmp_path: Path) -> None:
    # Issue #18's target: at most 2x redis-server's ~160 B per 16 B key and 32 B
    # value. PyPy measured 270-335 with its own GC pacing; the server's (nursery,
    # growth-paced collections: server/pypy_gc.py) 120-200. CPython: ~190.
    keys = 300_000
    with distcache_server(tmp_path) as server:
        before = _rss(server.proc.pid)
        _fill(server.port, keys)
        assert int(_info(server.port)["db0"].split(",")[0].split("=")[1]) == keys
        per_key = (_rss(server.proc.pid) - before) / keys
        assert per_key <= 320, per_key


@pytest.mark.skipif(not PYPY, reason="PyPy's GC settings")
def test_pypy_server_starts_with_its_gc_defaults(tmp_path: Path) -> None:
    def environ(pid: int) -> dict:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return dict(item.decode().split("=", 1) for item in fh.read().split(b"\0")
                        if b"=" in item)

    with distcache_server(tmp_path / "a") as server:
        env = environ(server.proc.pid)
        assert env["PYPY_GC_NURSERY"] == "8MB"
    with distcache_server(tmp_path / "b", env={"PYPY_GC_NURSERY": "2MB"}) as server:
        env = environ(server.proc.pid)
        assert env["PYPY_GC_NURSERY"] == "2MB"  # the user's wins
