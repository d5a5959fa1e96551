#!/usr/bin/env python3
"""Memory per key: RSS growth / keys after loading N string keys, vs redis-server.

Each server starts fresh on a free loopback port; its RSS is read from
/proc/PID/statm before and after loading ``--keys`` keys (``--key-size``-byte
names, ``--value-size``-byte values) through pipelined SETs over one socket.

    python bench/memory_per_key.py                      # 1M keys, 16 B keys, 32 B values
    python bench/memory_per_key.py --python python3 --python pypy3   # both runtimes and Redis
    python bench/memory_per_key.py --python pypy3 --env PYPY_GC_MAJOR_COLLECT=1.4
    python bench/memory_per_key.py --keys 200000 --distcache-arg=--maxmemory --distcache-arg=1gb
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
from typing import List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as fh:
        return int(fh.read().split()[1]) * PAGE


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError("server did not start")


def command(sock: socket.socket, *args: bytes) -> bytes:
    sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    return sock.recv(1 << 20)


def load(port: int, keys: int, key_size: int, value_size: int, batch: int = 2000) -> None:
    value = b"v" * value_size
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for start in range(0, keys, batch):
            end = min(keys, start + batch)
            chunks = []
            for i in range(start, end):
                key = b"key:%d" % i
                key = key + b"-" * (key_size - len(key)) if len(key) < key_size else key
                chunks.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                              % (len(key), key, value_size, value))
            sock.sendall(b"".join(chunks))
            expect = 5 * (end - start)
            got = 0
            while got < expect:
                data = sock.recv(1 << 20)
                if not data:
                    raise RuntimeError("connection closed")
                got += len(data)
        dbsize = command(sock, b"DBSIZE")
        if int(dbsize[1:].strip()) != keys:
            raise RuntimeError(f"DBSIZE is {dbsize!r}, expected {keys}")


def measure(argv: List[str], port: int, args: argparse.Namespace) -> "tuple[int, int, int]":
    env = dict(os.environ, PYTHONPATH=REPO)
    env.update(item.split("=", 1) for item in args.env)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_ready(port, proc)
        before = rss(proc.pid)
        load(port, args.keys, args.key_size, args.value_size)
        after = rss(proc.pid)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            info = b""
            sock.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n")
            while b"used_memory_rss:" not in info:
                info += sock.recv(1 << 16)
        used = int(info.split(b"used_memory:", 1)[1].split(b"\r\n", 1)[0])
        return before, after, used
    finally:
        proc.terminate()
        proc.wait(10)


def runtime(python: str) -> str:
    """``CPython 3.11`` or ``PyPy 3.9``: the implementation behind ``python``."""
    out = subprocess.run([python, "-c", "import platform; print(platform.python_implementation(),"
                                        " '.'.join(platform.python_version_tuple()[:2]))"],
                         capture_output=True, text=True, timeout=60).stdout.strip()
    return out or python


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--key-size", type=int, default=16)
    ap.add_argument("--value-size", type=int, default=32)
    ap.add_argument("--distcache-arg", action="append", default=[],
                    help="extra distcache flag (repeatable)")
    ap.add_argument("--python", action="append", default=[],
                    help="interpreter to run distcache with (repeatable; default: this one)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment for the distcache servers (repeatable)")
    ap.add_argument("--no-redis", action="store_true")
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="memkey-")
    rows = []
    for python in args.python or [sys.executable]:
        port = free_port()
        rows.append((f"distcache {runtime(python)}", measure(
            [python, "-m", "distcache", "server", "--port", str(port), "--save", "",
             "--appendonly", "no", "--dir", tmp, *args.distcache_arg], port, args)))
    redis = shutil.which("redis-server")
    if redis and not args.no_redis:
        port = free_port()
        rows.append(("redis-server", measure(
            [redis, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", tmp],
            port, args)))
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.keys} keys, {args.key_size} B keys, {args.value_size} B values"
          + (f", distcache env {' '.join(args.env)}" if args.env else ""))
    print(f"{'server':<24}{'RSS before':>14}{'RSS after':>14}{'bytes/key':>12}"
          f"{'used_memory':>14}")
    for name, (before, after, used) in rows:
        print(f"{name:<24}{before / 2**20:>12.1f}MB{after / 2**20:>12.1f}MB"
              f"{(after - before) / args.keys:>12.1f}{used / 2**20:>12.1f}MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
