#!/usr/bin/env python3
"""Eviction quality: cache hit rate on a Zipf workload, distcache vs redis-server.

Both servers get the same ``maxmemory`` and ``maxmemory-policy``. A client
runs a cache-aside loop over a key universe about ten times larger than what
fits: GET a Zipf(s)-distributed key, and SET it (``--value-size`` bytes) on a
miss. Requests go in pipelined batches (GETs, then the SETs for the misses).
The first ``--warmup`` requests fill the cache and are not counted; the hit
rate of the rest is reported, with evictions and used memory.

    python bench/eviction_bench.py                                   # allkeys-lru, 16mb
    python bench/eviction_bench.py --policy allkeys-lfu --requests 300000

The cost of a limit that is not hit (``--overhead``: in process, through the
dispatcher; ``--overhead-net``: over the network with redis-benchmark):

    python bench/eviction_bench.py --overhead-net --rounds 9
"""
from __future__ import annotations

import argparse
import itertools
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory_per_key import free_port, wait_ready  # noqa: E402


class Conn:
    """A minimal pipelining RESP client (bulk/status/integer/error replies only)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def send(self, commands: List[Tuple[bytes, ...]]) -> None:
        self.sock.sendall(b"".join(
            b"*%d\r\n" % len(cmd) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in cmd)
            for cmd in commands))

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self) -> Optional[bytes]:
        line = self._line()
        if line[:1] == b"$":
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(1 << 20)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if line[:1] == b"-":
            raise RuntimeError(line.decode())
        return line

    def info(self) -> Dict[str, str]:
        self.send([(b"INFO", b"all")])
        text = self.reply() or b""
        out = {}
        for raw in text.decode().splitlines():
            if ":" in raw and not raw.startswith("#"):
                k, v = raw.split(":", 1)
                out[k] = v
        return out


def zipf_keys(universe: int, s: float, n: int, seed: int) -> List[int]:
    rng = random.Random(seed)
    cum = list(itertools.accumulate(1.0 / (r ** s) for r in range(1, universe + 1)))
    ranks = rng.choices(range(universe), cum_weights=cum, k=n)
    perm = list(range(universe))
    rng.shuffle(perm)
    return [perm[r] for r in ranks]


def run(port: int, keys: List[int], warmup: int, value: bytes, batch: int) -> Dict[str, float]:
    conn = Conn(port)
    hits = misses = 0
    t0 = time.perf_counter()
    for start in range(0, len(keys), batch):
        chunk = [b"k:%d" % k for k in keys[start:start + batch]]
        conn.send([(b"GET", k) for k in chunk])
        missing = []
        for i, k in enumerate(chunk):
            if conn.reply() is None:
                missing.append(k)
                if start + i >= warmup:
                    misses += 1
            elif start + i >= warmup:
                hits += 1
        if missing:
            conn.send([(b"SET", k, value) for k in missing])
            for _ in missing:
                conn.reply()
    elapsed = time.perf_counter() - t0
    info = conn.info()
    return {"hit_rate": hits / max(1, hits + misses), "evicted": int(info["evicted_keys"]),
            "keys": int(info.get("db0", "keys=0").split(",")[0].split("=")[1]),
            "used_memory": int(info["used_memory"]), "rss": int(info["used_memory_rss"]),
            "seconds": elapsed}


def dispatch_overhead(rounds: int = 5, n: int = 100_000) -> None:
    """In-process CPU time per SET/GET through the real dispatcher, eviction off vs
    allkeys-lru with a limit that is never hit (less noisy than a network run)."""
    sys.path.insert(0, REPO)
    from distcache.server.app import CacheServer
    from distcache.server.connection import Client
    rng = random.Random(1)
    keys = [b"key:%d" % rng.randrange(100_000) for _ in range(n)]
    configs = {"off": {}, "allkeys-lru": {"maxmemory": "1gb",
                                          "maxmemory-policy": "allkeys-lru"}}
    clients = {name: Client(CacheServer("127.0.0.1", 0, save="", appendonly="no", **kw))
               for name, kw in configs.items()}
    best: Dict[str, List[float]] = {name: [1e9, 1e9] for name in configs}
    for _ in range(rounds):
        for name, client in clients.items():
            out: List[bytes] = []
            execute = client.execute
            t0 = time.process_time()
            for k in keys:
                execute([b"SET", k, b"xxx"], out)
            t1 = time.process_time()
            out.clear()
            for k in keys:
                execute([b"GET", k], out)
            t2 = time.process_time()
            best[name][0] = min(best[name][0], (t1 - t0) / n * 1e6)
            best[name][1] = min(best[name][1], (t2 - t1) / n * 1e6)
    print(f"dispatcher CPU us/op, best of {rounds} rounds of {n}:")
    for name, (set_us, get_us) in best.items():
        print(f"  {name:<12} SET {set_us:.3f}  GET {get_us:.3f}")
    off, lru = best["off"], best["allkeys-lru"]
    print(f"  throughput ratio allkeys-lru/off: SET {off[0] / lru[0]:.3f}  "
          f"GET {off[1] / lru[1]:.3f}")


def network_overhead(rounds: int = 5, requests: int = 300_000, keyspace: int = 100_000) -> None:
    """Server CPU per pipelined SET and GET (redis-benchmark -P 16 -r ``keyspace``; 0 for
    its default of one key): eviction
    off, noeviction + maxmemory 1gb, allkeys-lru + maxmemory 1gb (limit never hit).
    The servers run as threads of this process, pinned to one core, redis-benchmark
    to another (taskset); a server's CPU is this process's CPU time around the run.
    Each server gets the SET run, then the GET run over the keys it wrote. Rounds
    alternate the order of the configs; medians are reported, with the client's
    requests per second (noisier: it includes the client and the host's load)."""
    sys.path.insert(0, REPO)
    from distcache.server.app import CacheServer
    configs: Dict[str, Dict[str, str]] = {
        "off": {}, "noeviction": {"maxmemory": "1gb"},
        "allkeys-lru": {"maxmemory": "1gb", "maxmemory-policy": "allkeys-lru"}}
    tests = ("set", "get")
    cpus = sorted(os.sched_getaffinity(0))
    client_prefix: List[str] = []
    if len(cpus) >= 2 and shutil.which("taskset"):
        os.sched_setaffinity(0, {cpus[0]})  # server threads inherit it
        client_prefix = ["taskset", "-c", str(cpus[1])]
    cpu: Dict[Tuple[str, str], List[float]] = {}
    rps: Dict[Tuple[str, str], List[float]] = {}
    names = list(configs)
    spread = ["-r", str(keyspace)] if keyspace else []
    for rnd in range(rounds):
        for name in (names if rnd % 2 == 0 else names[::-1]):
            port = free_port()
            server = CacheServer("127.0.0.1", port, save="", appendonly="no",
                                 **{"event-loop": "uvloop", "parser": "hiredis"},
                                 **configs[name]).start()
            try:
                for test in tests:
                    bench = client_prefix + ["redis-benchmark", "-p", str(port), "-t", test,
                                             "-P", "16", "-q"] + spread
                    subprocess.run(bench + ["-n", "50000"], stdout=subprocess.DEVNULL)  # warm-up
                    t0 = time.process_time()
                    done = subprocess.run(bench + ["-n", str(requests)], capture_output=True,
                                          text=True)
                    cpu.setdefault((test, name), []).append(
                        (time.process_time() - t0) / requests * 1e6)
                    found = re.findall(r"([\d.]+) requests per second", done.stdout)
                    rps.setdefault((test, name), []).append(float(found[-1]) if found else 0)
            finally:
                server.stop()

    median = statistics.median
    print(f"redis-benchmark -P 16 {' '.join(spread + ['-n', str(requests)])}, {rounds} rounds"
          f"{', server and client pinned' if client_prefix else ''}; medians:")
    print(f"{'':<4}{'config':<13}{'CPU us/op':>10}{'ratio':>7}{'paired':>8}{'req/s':>9}"
          f"{'ratio':>7}  CPU us/op of each round")
    for test in tests:
        off_cpu = cpu[test, "off"]
        base_cpu, base_rps = median(off_cpu), median(rps[test, "off"])
        for name in names:
            c, r = median(cpu[test, name]), median(rps[test, name])
            paired = median(a / b for a, b in zip(off_cpu, cpu[test, name]))
            print(f"{test.upper():<4}{name:<13}{c:>10.3f}{base_cpu / c:>7.3f}{paired:>8.3f}"
                  f"{r:>9.0f}{r / max(1.0, base_rps):>7.3f}  "
                  f"{[round(v, 2) for v in cpu[test, name]]}")
    print("ratio: throughput relative to off (off CPU / this CPU, medians); paired: the "
          "median of that ratio\nwithin each round (less sensitive to the host's load "
          "changing between rounds); req/s: the client's, with its ratio to off")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--maxmemory", default="16mb")
    ap.add_argument("--policy", default="allkeys-lru")
    ap.add_argument("--redis-maxmemory", default=None,
                    help="maxmemory for redis-server only (compare at equal key capacity: "
                         "Redis needs more bytes per key)")
    ap.add_argument("--samples", type=int, default=5, help="maxmemory-samples")
    ap.add_argument("--value-size", type=int, default=1024)
    ap.add_argument("--universe", type=int, default=150_000,
                    help="distinct keys (about 10x what fits in 16mb at 1 kB values)")
    ap.add_argument("--zipf", type=float, default=0.99)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--warmup", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-redis", action="store_true")
    ap.add_argument("--overhead", action="store_true",
                    help="only measure the dispatcher cost of allkeys-lru below the limit")
    ap.add_argument("--overhead-net", action="store_true",
                    help="only measure server CPU per SET and GET over the network "
                         "(redis-benchmark -P 16, pinned with taskset)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of --overhead-net")
    ap.add_argument("--keyspace", type=int, default=100_000,
                    help="--overhead-net: redis-benchmark -r (0: its default, one key)")
    ap.add_argument("--requests-net", type=int, default=300_000,
                    help="--overhead-net: requests per test and round")
    args = ap.parse_args(argv)
    if args.overhead_net:
        network_overhead(args.rounds, args.requests_net, args.keyspace)
        return 0
    if args.overhead:
        dispatch_overhead()
        return 0
    keys = zipf_keys(args.universe, args.zipf, args.requests, args.seed)
    value = b"x" * args.value_size
    flags = ["--save", "", "--appendonly", "no", "--maxmemory", args.maxmemory,
             "--maxmemory-policy", args.policy, "--maxmemory-samples", str(args.samples)]
    servers = [("distcache", [sys.executable, "-m", "distcache", "server"])]
    if shutil.which("redis-server") and not args.no_redis:
        servers.append(("redis-server", [shutil.which("redis-server")]))
    tmp = tempfile.mkdtemp(prefix="evbench-")
    results = []
    for name, argv0 in servers:
        port = free_port()
        server_flags = list(flags)
        if name == "redis-server" and args.redis_maxmemory:
            server_flags[server_flags.index("--maxmemory") + 1] = args.redis_maxmemory
        proc = subprocess.Popen(argv0 + ["--port", str(port), "--dir", tmp] + server_flags,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=dict(os.environ, PYTHONPATH=REPO))
        try:
            wait_ready(port, proc)
            results.append((name, run(port, keys, args.warmup, value, args.batch)))
        finally:
            proc.terminate()
            proc.wait(10)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"policy {args.policy}, maxmemory {args.maxmemory}, samples {args.samples}, "
          f"Zipf({args.zipf}) over {args.universe} keys, {args.value_size} B values, "
          f"{args.requests} requests ({args.warmup} warm-up)")
    print(f"{'server':<14}{'hit rate':>10}{'keys held':>11}{'evicted':>10}"
          f"{'used_memory':>13}{'rss':>10}{'seconds':>9}")
    for name, r in results:
        print(f"{name:<14}{r['hit_rate']:>10.4f}{r['keys']:>11}{r['evicted']:>10}"
              f"{r['used_memory'] / 2**20:>11.1f}MB{r['rss'] / 2**20:>8.1f}MB"
              f"{r['seconds']:>9.1f}")
    if len(results) == 2:
        print(f"hit-rate ratio distcache/redis: "
              f"{results[0][1]['hit_rate'] / max(1e-9, results[1][1]['hit_rate']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
