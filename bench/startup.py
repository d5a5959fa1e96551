"""Time-to-PING: how long ``distcache server`` takes from exec to its first PONG.

Starts the server N times under each given interpreter (and redis-server beside
it), polls the port with PING every millisecond, and prints the median wall
time to the first PONG, the CPU time the process had used by then (read from
/proc, so it holds up on a loaded host better than wall time) and the ratio to
redis-server.

    python bench/startup.py                                   # this python, 20 runs
    python bench/startup.py -n 30 --python python,/work/pypy-venv/bin/python
    python bench/startup.py --no-redis --path /work/main    # another checkout's distcache

Run from the worktree: the servers import distcache from this checkout.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> Optional[float]:
    """CPU time ``pid`` has run (Linux /proc: schedstat's nanoseconds, else the
    stat ticks), None elsewhere."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def time_to_ping(command: List[str], port: int, root: str = ROOT,
                 timeout: float = 30.0) -> Tuple[float, Optional[float]]:
    """(wall seconds, CPU seconds) from spawning ``command`` to its first PONG,
    importing distcache from ``root``."""
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            while not ping(port):
                if proc.poll() is not None:
                    raise RuntimeError(f"{command[0]} exited with {proc.returncode}")
                if time.perf_counter() - start > timeout:
                    raise RuntimeError(f"{command[0]}: no PONG after {timeout} s")
                time.sleep(0.001)
            wall = time.perf_counter() - start
            return wall, cpu_seconds(proc.pid)
        finally:
            proc.kill()
            proc.wait()


def measure(name: str, make_command, runs: int, root: str = ROOT
            ) -> Tuple[float, Optional[float]]:
    walls, cpus = [], []
    for _ in range(runs):
        port = free_port()
        wall, cpu = time_to_ping(make_command(port), port, root)
        walls.append(wall)
        if cpu is not None:
            cpus.append(cpu)
    wall = statistics.median(walls)
    cpu = statistics.median(cpus) if cpus else None
    cpu_text = f"{cpu * 1000:7.0f} ms" if cpu is not None else "      n/a"
    print(f"{name:<40}\n{'':<4} wall {wall * 1000:7.1f} ms   cpu {cpu_text}   (median of {runs})")
    return wall, cpu


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=20)
    parser.add_argument("--python", default=sys.executable,
                        help="comma-separated interpreters to start distcache with")
    parser.add_argument("--no-redis", action="store_true", help="skip redis-server")
    parser.add_argument("--path", default=ROOT,
                        help="the checkout to import distcache from (default: this one)")
    args = parser.parse_args(argv)
    redis = None if args.no_redis else shutil.which("redis-server")
    no_disk = ["--save", "", "--appendonly", "no"]
    base = None
    if redis:
        base = measure("redis-server", lambda port: [redis, "--port", str(port), *no_disk],
                       args.runs)
    for python in args.python.split(","):
        wall, cpu = measure(f"{python} -m distcache server", lambda port: [
            python, "-m", "distcache", "server", "--port", str(port), *no_disk],
            args.runs, args.path)
        if base:
            cpu_ratio = f", CPU {cpu / base[1]:.0f}x" if cpu and base[1] else ""
            print(f"{'':<40} ratio to redis-server: wall {wall / base[0]:.0f}x{cpu_ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
