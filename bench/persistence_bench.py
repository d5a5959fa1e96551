#!/usr/bin/env python3
"""Persistence benchmarks for distcache, next to redis-server.

Three measurements (each can be run alone with --only):

``throughput``  SET ops/s (redis-benchmark -t set -P 16 -r 100000) with no
                persistence, appendfsync everysec and always, for distcache
                and redis-server; runs interleaved, medians of --repeat runs.
                Server on core 0, redis-benchmark on core 1 (taskset).
``latency``     PING round trips (p50/p99/max) while BGSAVE writes a
                --keys-key snapshot (distcache: forked child; and with
                --nofork, the sliced fallback).
``restart``     time from process start to the first +PONG with --keys keys:
                distcache from a snapshot, distcache from the log alone, and
                redis-server from an RDB of the same data.

Example::

    python bench/persistence_bench.py --keys 1000000 --repeat 3
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from distcache.persistence import aof, snapshot  # noqa: E402
from distcache.server.keyspace import Keyspace  # noqa: E402

VALUE = b"v" * 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core: Optional[int], argv: List[str]) -> List[str]:
    if core is None or not shutil.which("taskset"):
        return argv
    return ["taskset", "-c", str(core)] + argv


def ping_reply(port: int) -> bytes:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64)
    except OSError:
        return b""


class Server:
    def __init__(self, kind: str, workdir: str, flags: Sequence[str], core: Optional[int]):
        self.kind = kind
        self.port = free_port()
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        if kind == "redis":
            argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                    "--dir", workdir, "--save", "", "--appendonly", "no", *flags]
        else:
            argv = [sys.executable, "-m", "distcache", "server", "--port", str(self.port),
                    "--dir", workdir, "--save", "", "--appendonly", "no", *flags]
        env = dict(os.environ, PYTHONPATH=REPO)
        self.log = open(os.path.join(workdir, f"{kind}.log"), "ab")
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(pinned(core, argv), cwd=workdir, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300) -> float:
        """Seconds from spawn to the first +PONG (not LOADING)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited")
            if ping_reply(self.port).startswith(b"+PONG"):
                return time.perf_counter() - self.t0
            time.sleep(0.005)
        raise TimeoutError(self.kind)

    def cmd(self, *args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                              text=True, timeout=600).stdout.strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its threads (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return float("nan")


def set_rps(port: int, requests: int, core: Optional[int]) -> float:
    out = subprocess.run(pinned(core, ["redis-benchmark", "-p", str(port), "-t", "set", "-P",
                                       "16", "-n", str(requests), "-r", "100000", "-q",
                                       "--csv"]),
                         capture_output=True, text=True, timeout=600).stdout
    for line in out.splitlines():
        parts = [p.strip('"') for p in line.split(",")]
        if parts and parts[0] == "SET":
            return float(parts[1])
    raise RuntimeError(f"no SET result in {out!r}")


def throughput(args: argparse.Namespace) -> None:
    modes: Dict[str, List[str]] = {
        "none": [],
        "everysec": ["--appendonly", "yes", "--appendfsync", "everysec"],
        "always": ["--appendonly", "yes", "--appendfsync", "always"],
    }
    results: Dict[str, List[float]] = {}
    cpu: Dict[str, List[float]] = {}
    tmp = tempfile.mkdtemp(prefix="pbench-")
    try:
        for rep in range(args.repeat):
            for mode, flags in modes.items():
                for kind in ("distcache", "redis"):
                    d = os.path.join(tmp, f"{kind}-{mode}-{rep}")
                    srv = Server(kind, d, flags, args.server_core)
                    try:
                        srv.wait_ready()
                        c0 = cpu_seconds(srv.proc.pid)
                        results.setdefault(f"{kind}/{mode}", []).append(
                            set_rps(srv.port, args.requests, args.bench_core))
                        cpu.setdefault(f"{kind}/{mode}", []).append(
                            (cpu_seconds(srv.proc.pid) - c0) / args.requests * 1e6)
                    finally:
                        srv.stop()
                        shutil.rmtree(d, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    print("\n## SET throughput, redis-benchmark -t set -P 16 -r 100000 "
          f"-n {args.requests} (medians of {args.repeat})\n")
    print("| persistence | distcache ops/s | redis ops/s | distcache/redis | "
          "distcache vs its no-persistence | redis vs its no-persistence | "
          "distcache server CPU us/op | redis server CPU us/op |")
    print("|---|---|---|---|---|---|---|---|")
    for mode in modes:
        d, r = med[f"distcache/{mode}"], med[f"redis/{mode}"]
        print(f"| {mode} | {d:,.0f} | {r:,.0f} | {d / r:.2f} | "
              f"{d / med['distcache/none']:.2f} | {r / med['redis/none']:.2f} | "
              f"{mcpu[f'distcache/{mode}']:.2f} | {mcpu[f'redis/{mode}']:.2f} |")
    # Paired: each repeat's ratio to the same repeat's no-persistence run (the runs
    # of one repeat are adjacent in time, so they share the host's load).
    print("\nPaired per-repeat ratios to no persistence (median, range):")
    for kind in ("distcache", "redis"):
        for mode in modes:
            if mode == "none":
                continue
            ops = [a / b for a, b in zip(results[f"{kind}/{mode}"], results[f"{kind}/none"])]
            cpu_ = [b / a for a, b in zip(cpu[f"{kind}/{mode}"], cpu[f"{kind}/none"])]
            print(f"  {kind} {mode}: ops/s {statistics.median(ops):.2f} "
                  f"({min(ops):.2f}-{max(ops):.2f}), CPU per op (none/{mode}) "
                  f"{statistics.median(cpu_):.2f} ({min(cpu_):.2f}-{max(cpu_):.2f})")
    print("\nruns (ops/s):", {k: [round(x) for x in v] for k, v in results.items()})
    print("runs (server CPU us/op):", {k: [round(x, 2) for x in v] for k, v in cpu.items()})


def make_snapshot(path: str, keys: int) -> None:
    ks = Keyspace(16)
    data = ks.dbs[0].data
    for i in range(keys):
        data[b"key:%09d" % i] = VALUE
    snapshot.write_snapshot(path, ks.dbs)


def make_log_only(workdir: str, keys: int) -> None:
    d = os.path.join(workdir, "appendonlydir")
    os.makedirs(d, exist_ok=True)
    name = "appendonly.aof.1.incr.aof"
    with open(os.path.join(d, name), "wb") as fh:
        fh.write(aof.file_header(os.urandom(16)))
        for start in range(0, keys, 1000):
            buf = [aof.select_bytes(0)]
            aof.encode_commands([[b"SET", b"key:%09d" % i, VALUE]
                                 for i in range(start, min(keys, start + 1000))], buf)
            fh.write(aof.encode_record(b"".join(buf)))
    aof.write_manifest(os.path.join(d, "appendonly.aof.manifest"), aof.Manifest(None, [name], 1))


def make_rdb(workdir: str, keys: int) -> None:
    srv = Server("redis", workdir, [], None)
    try:
        srv.wait_ready()
        payload = b"".join(b"*3\r\n$3\r\nSET\r\n$13\r\nkey:%09d\r\n$16\r\n%s\r\n" % (i, VALUE)
                           for i in range(keys))
        subprocess.run(["redis-cli", "-p", str(srv.port), "--pipe"], input=payload,
                       capture_output=True, timeout=600, check=True)
        assert srv.cmd("DBSIZE") == str(keys)
        srv.cmd("SAVE")
    finally:
        srv.stop()


def restart(args: argparse.Namespace) -> None:
    tmp = tempfile.mkdtemp(prefix="pbench-restart-")
    keys = args.keys
    try:
        snap_dir = os.path.join(tmp, "snap")
        os.makedirs(snap_dir)
        make_snapshot(os.path.join(snap_dir, "dump.dcs"), keys)
        log_dir = os.path.join(tmp, "log")
        make_log_only(log_dir, keys)
        rdb_dir = os.path.join(tmp, "rdb")
        make_rdb(rdb_dir, keys)
        times: Dict[str, List[float]] = {}
        cases = [("distcache snapshot", "distcache", snap_dir, []),
                 ("distcache log only", "distcache", log_dir, ["--appendonly", "yes"]),
                 ("redis-server RDB", "redis", rdb_dir, ["--dbfilename", "dump.rdb"])]
        for _ in range(args.repeat):
            for label, kind, d, flags in cases:
                srv = Server(kind, d, flags, args.server_core)
                try:
                    times.setdefault(label, []).append(srv.wait_ready())
                    assert srv.cmd("DBSIZE") == str(keys), srv.cmd("DBSIZE")
                finally:
                    srv.stop()
                if kind == "distcache" and flags:  # a restart rewrote nothing; keep it pristine
                    pass
        print(f"\n## Restart with {keys:,} keys (spawn to first +PONG, medians of "
              f"{args.repeat})\n")
        print("| source | seconds | vs redis RDB |\n|---|---|---|")
        base = statistics.median(times["redis-server RDB"])
        for label, _, _, _ in cases:
            t = statistics.median(times[label])
            print(f"| {label} | {t:.2f} | {t / base:.2f}x |")
        print("\nruns:", {k: [round(x, 2) for x in v] for k, v in times.items()})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def latency(args: argparse.Namespace, nofork: bool = False) -> None:
    tmp = tempfile.mkdtemp(prefix="pbench-lat-")
    try:
        make_snapshot(os.path.join(tmp, "dump.dcs"), args.keys)
        if nofork:
            os.environ["DISTCACHE_PERSISTENCE_NOFORK"] = "1"
        srv = Server("distcache", tmp, [], args.server_core)
        os.environ.pop("DISTCACHE_PERSISTENCE_NOFORK", None)
        try:
            srv.wait_ready()
            before = srv.cmd("LASTSAVE")
            saves0 = _info_field(srv, "rdb_saves")
            lat: List[float] = []
            s = socket.create_connection(("127.0.0.1", srv.port))
            t_start = time.perf_counter()
            srv.cmd("BGSAVE")
            done = threading.Event()

            def watch() -> None:
                while _info_field(srv, "rdb_saves") == saves0:
                    time.sleep(0.05)
                done.set()

            threading.Thread(target=watch, daemon=True).start()
            while not done.is_set():
                t0 = time.perf_counter()
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                s.recv(64)
                lat.append(time.perf_counter() - t0)
                time.sleep(0.001)
            elapsed = time.perf_counter() - t_start
            s.close()
            lat.sort()
            p = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))] * 1000  # noqa: E731
            print(f"\n## PING latency during BGSAVE of {args.keys:,} keys "
                  f"({'sliced fallback, no fork' if nofork else 'forked child'})\n")
            print(f"BGSAVE took {elapsed:.2f} s; {len(lat)} PINGs: p50 {p(0.5):.2f} ms, "
                  f"p99 {p(0.99):.2f} ms, max {lat[-1] * 1000:.2f} ms (LASTSAVE was {before})")
        finally:
            srv.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _info_field(srv: Server, name: str) -> str:
    for line in srv.cmd("INFO", "persistence").splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1]
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["throughput", "latency", "restart"], action="append")
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nofork", action="store_true", help="also measure the sliced fallback")
    ap.add_argument("--server-core", type=int, default=0)
    ap.add_argument("--bench-core", type=int, default=1)
    args = ap.parse_args()
    only = args.only or ["throughput", "latency", "restart"]
    if "throughput" in only:
        throughput(args)
    if "latency" in only:
        latency(args)
        if args.nofork:
            latency(args, nofork=True)
    if "restart" in only:
        restart(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
