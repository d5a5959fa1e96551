#!/usr/bin/env python3
"""Streams: throughput and memory against redis-server, in the same run.

1. ``redis-benchmark`` with custom commands at ``-P 16`` (50 clients): XADD with
   ``*``, and XRANGE of 10 entries on a 1000-entry stream.
2. XREADGROUP (COUNT 1) plus XACK of what it read, 16 of each per round trip,
   from one client written here (hiredis), on a preloaded stream: messages/s.
3. A stream of ``--entries`` (1M) entries with 2 small fields each: RSS growth
   and bytes per entry; then the latency of XRANGE COUNT 10 at the start, the
   middle and the end of it, and of XADD with ``MAXLEN ~`` at that size (both
   must not grow with the stream's length).

Besides ops/s, the server's CPU time per operation (``*_cpu_us``, utime+stime
from /proc): on a busy host it is the steadier measure. ``ratio`` is
distcache / redis (for CPU and memory: how many times Redis's).

    python bench/streams_bench.py                   # everything, distcache + redis-server
    python bench/streams_bench.py --entries 200000 --requests 200000
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redis_benchmark import (Server, distcache_server, free_port, parse_csv,  # noqa: E402
                             redis_server)

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as fh:
        return int(fh.read().split()[1]) * PAGE


def encode(*args: Any) -> bytes:
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class Conn:
    """A pipelining client: send many, read as many replies (hiredis)."""

    def __init__(self, port: int) -> None:
        import hiredis
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader()

    def run(self, commands: List[bytes]) -> List[Any]:
        self.sock.sendall(b"".join(commands))
        out: List[Any] = []
        while len(out) < len(commands):
            reply = self.reader.gets()
            if reply is False:
                self.reader.feed(self.sock.recv(1 << 20))
                continue
            out.append(reply)
        return out

    def close(self) -> None:
        self.sock.close()


def bench_tool(server: Server, requests: int, *command: str) -> float:
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port), "-P", "16",
            "-c", "50", "-n", str(requests), "--csv", "-q", *command]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    rows = parse_csv(done.stdout)
    if done.returncode or not rows:
        raise RuntimeError(f"redis-benchmark failed: {done.stdout}{done.stderr}")
    return rows[-1][1]


def load(conn: Conn, key: bytes, n: int, batch: int = 5000) -> None:
    for start in range(0, n, batch):
        conn.run([encode(b"XADD", key, b"*", b"f1", b"v%d" % (i % 1000), b"f2", b"w")
                  for i in range(start, min(n, start + batch))])


def group_reads(server: Server, conn: Conn, messages: int) -> "tuple[float, float]":
    """(messages/s, server CPU µs per message) of XREADGROUP + XACK."""
    conn.run([encode(b"DEL", b"q")])
    load(conn, b"q", messages)
    conn.run([encode(b"XGROUP", b"CREATE", b"q", b"g", b"0")])
    read = encode(b"XREADGROUP", b"GROUP", b"g", b"c", b"COUNT", 1, b"STREAMS", b"q", b">")
    cpu = server.cpu()
    t0 = time.perf_counter()
    done = 0
    while done < messages:
        replies = conn.run([read] * 16)
        ids = [r[0][1][0][0] for r in replies if r]
        if not ids:
            break
        conn.run([encode(b"XACK", b"q", b"g", i) for i in ids])
        done += len(ids)
    return done / (time.perf_counter() - t0), (server.cpu() - cpu) * 1e6 / max(done, 1)


def latency_us(conn: Conn, command: bytes, calls: int = 2000) -> float:
    t0 = time.perf_counter()
    for _ in range(calls // 100):
        conn.run([command] * 100)
    return (time.perf_counter() - t0) * 1e6 / calls


def big_stream(server: Server, entries: int) -> Dict[str, float]:
    conn = Conn(server.port)
    before = rss(server.proc.pid)
    load(conn, b"big", entries)
    after = rss(server.proc.pid)
    first = conn.run([encode(b"XRANGE", b"big", b"-", b"+", b"COUNT", 1)])[0][0][0]
    last = conn.run([encode(b"XREVRANGE", b"big", b"+", b"-", b"COUNT", 1)])[0][0][0]
    ms_first, ms_last = int(first.split(b"-")[0]), int(last.split(b"-")[0])
    middle = b"%d" % ((ms_first + ms_last) // 2)
    out = {"rss_mb": after / 2 ** 20, "bytes_per_entry": (after - before) / entries}
    for name, start in (("xrange_start_us", b"-"), ("xrange_middle_us", middle),
                        ("xrange_end_us", last)):
        out[name] = latency_us(conn, encode(b"XRANGE", b"big", start, b"+", b"COUNT", 10))
    out["xadd_maxlen_us"] = latency_us(conn, encode(b"XADD", b"big", b"MAXLEN", b"~", entries,
                                                    b"*", b"f1", b"v", b"f2", b"w"))
    conn.close()
    return out


def measure(server: Server, args: argparse.Namespace) -> Dict[str, float]:
    server.start()
    try:
        conn = Conn(server.port)
        out: Dict[str, float] = {}
        # Server CPU time per operation too: on a loaded host it moves less than ops/s.
        cpu = server.cpu()
        out["xadd_rps"] = bench_tool(server, args.requests, "XADD", "bench", "*", "f", "v")
        out["xadd_cpu_us"] = (server.cpu() - cpu) * 1e6 / args.requests
        conn.run([encode(b"DEL", b"r")])
        load(conn, b"r", 1000)
        cpu = server.cpu()
        out["xrange10_rps"] = bench_tool(server, args.requests, "XRANGE", "r", "-", "+",
                                         "COUNT", "10")
        out["xrange10_cpu_us"] = (server.cpu() - cpu) * 1e6 / args.requests
        out["readgroup_ack_msgs"], out["readgroup_ack_cpu_us"] = group_reads(server, conn,
                                                                             args.messages)
        conn.run([encode(b"FLUSHALL")])
        conn.close()
        out.update(big_stream(server, args.entries))
        return out
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=500_000)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--config", default="fast", choices=["fast", "stdlib"])
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="streams-bench-")
    results = {}
    try:
        for name, make in (("distcache", lambda p, d: distcache_server(args.config, p, d, [],
                                                                        None, sys.executable)),
                           ("redis", lambda p, d: redis_server(p, d, [], None))):
            if name == "redis" and not shutil.which("redis-server"):
                continue
            workdir = os.path.join(tmp, name)
            os.makedirs(workdir)
            results[name] = measure(make(free_port(), workdir), args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    keys = list(results["distcache"])
    print(f"{'metric':<22}" + "".join(f"{n:>14}" for n in results) + f"{'ratio':>10}")
    for key in keys:
        values = [results[n][key] for n in results]
        ratio = values[0] / values[1] if len(values) > 1 and values[1] else float("nan")
        print(f"{key:<22}" + "".join(f"{v:>14.1f}" for v in values) + f"{ratio:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
