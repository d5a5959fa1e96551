"""maxmemory bounds the process's RSS on the runtime the tests run under (CPython or PyPy).

used_memory is an estimate from sampled object sizes (PyPy has no sys.getsizeof:
its layouts, calibrated against its heap), plus on PyPy the garbage its GC holds;
these tests check that it stays honest against what the kernel counts: used_memory
over the RSS growth since the empty server, after a load and under eviction churn
(docs/pypy.md, "Memory"; bench/pypy_memory.py prints the same cases).
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


#: used_memory / RSS growth allowed (bench/pypy_memory.py: PyPy 0.83-0.96, CPython
#: 0.64-1.07; PyPy before its heap's garbage was counted: 0.43-0.60 under churn of
#: 32 B values, 1.39-1.61 after a load of them).
RATIO = (0.6, 1.5) if PYPY else (0.5, 1.5)


def _fill(port: int, keys: int, batch: int = 2000, size: int = 32) -> None:
    """Pipelined SETs of 16-byte keys and ``size``-byte values; every reply read."""
    value = b"v" * size
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for start in range(0, keys, batch):
            chunk = b"".join(b"*3\r\n$3\r\nSET\r\n$16\r\n%016d\r\n$%d\r\n%s\r\n"
                             % (i, size, value) for i in range(start, start + batch))
            sock.sendall(chunk)
            got = 0
            while got < 5 * batch:  # +OK\r\n
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
        _assert_honest(info, grown)


def _assert_honest(info: dict, grown: int, low: float = RATIO[0]) -> None:
    """used_memory against the RSS growth since the empty server."""
    ratio = int(info["used_memory"]) / grown
    assert low <= ratio <= RATIO[1], (ratio, info["used_memory"], grown,
                                      info["mem_not_counted_for_evict"])


def test_used_memory_follows_rss_under_churn_of_big_values(tmp_path: Path) -> None:
    # 5x a 16 MB maxmemory of 4 kB values: on PyPy the evicted values, the
    # pipelines' read buffers and parsed commands are garbage until a major
    # collection, and INFO counts what the GC's heap holds of them.
    maxmemory = 16 * 2**20
    with distcache_server(tmp_path, "--maxmemory", str(maxmemory),
                          "--maxmemory-policy", "allkeys-lru") as server:
        before = _rss(server.proc.pid)
        _fill(server.port, 5 * maxmemory // 4096, batch=500, size=4096)
        info = _info(server.port)
        grown = _rss(server.proc.pid) - before
        assert int(info["evicted_keys"]) > 0
        assert int(info["used_memory"]) - int(info["mem_not_counted_for_evict"]) \
            <= maxmemory * 1.05
        assert grown <= maxmemory * (2.5 if PYPY else 2.0)
        _assert_honest(info, grown)


def test_memory_per_key_after_a_load(tmp_path: Path) -> None:
    # Issue #18's target: at most 2x redis-server's ~160 B per 16 B key and 32 B
    # value. PyPy measured 270-335 with its own GC pacing; the server's (nursery,
    # growth-paced collections: server/pypy_gc.py) 120-200. CPython: ~190.
    keys = 300_000
    with distcache_server(tmp_path) as server:
        before = _rss(server.proc.pid)
        _fill(server.port, keys)
        assert int(_info(server.port)["db0"].split(",")[0].split("=")[1]) == keys
        info = _info(server.port)
        grown = _rss(server.proc.pid) - before
        assert grown / keys <= 320, grown / keys
        # PyPy: RSS keeps the load's peak, what the pacer's collections freed
        # included (fragmentation, as mem_fragmentation_ratio shows; Redis's
        # used_memory leaves it out too): 0.53-0.56 of it when the server started
        # from .pyc files, 0.92-0.94 when its start-up compiled them and the load
        # refilled that garbage's room (docs/pypy.md).
        _assert_honest(info, grown, low=0.45 if PYPY else RATIO[0])


@pytest.mark.skipif(not PYPY, reason="PyPy's GC heap")
def test_pypy_info_reports_its_gc_heap(tmp_path: Path) -> None:
    with distcache_server(tmp_path) as server:
        info = _info(server.port)
        heap, allocated = int(info["allocator_allocated"]), int(info["allocator_active"])
        # the interpreter's heap alone is tens of MB; RSS holds it
        assert 2**20 < heap <= allocated < int(info["used_memory_rss"])


@pytest.mark.skipif(not PYPY, reason="PyPy's GC settings")
def test_pypy_server_starts_with_its_gc_defaults(tmp_path: Path) -> None:
    def environ(pid: int) -> dict:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return dict(item.decode().split("=", 1) for item in fh.read().split(b"\0")
                        if b"=" in item)

    # gc_env=False: the server must set its GC defaults itself (by re-executing).
    with distcache_server(tmp_path / "a", gc_env=False) as server:
        env = environ(server.proc.pid)
        assert env["PYPY_GC_NURSERY"] == "8MB"
    with distcache_server(tmp_path / "b", env={"PYPY_GC_NURSERY": "2MB"},
                          gc_env=False) as server:
        env = environ(server.proc.pid)
        assert env["PYPY_GC_NURSERY"] == "2MB"  # the user's wins
