#!/usr/bin/env python
"""Client-sharded throughput: N distcache nodes vs 1 node under the same load.

    python bench/cluster_bench.py [--nodes 1,2] [--procs 4] [--conns 4]
                                  [--pipeline 128] [--duration 8] [--keys 10000]
                                  [--get-ratio 0.8] [--value-size 64]

For each node count, starts that many ``distcache server`` processes
(no persistence), then ``--procs`` client processes, each with ``--conns``
connections to every node, each driven by its own thread (as a sharded
client's per-node connection pools would be), sending pipelined batches of
``--pipeline`` commands (GET/SET mix over the ``--keys`` keys that the ketama
ring, ``distcache.client.ring.KetamaRing``, puts on that node; routes
computed once, as a client would cache them) and reading the replies. With
``--coupled`` one thread per connection slot sends to every node and waits
for all of them instead, so a descheduled node stalls the others too. The
client setup is the same for every node count (processes, connections per
node, pipeline depth); only the servers differ. Prints ops/s per run and the
speed-up over the first count.

The client side is raw sockets with pre-encoded batches; replies are counted
by size (all values have the same size) and fully parsed every 64th batch,
so the client costs as little CPU as possible: on a
2-core machine the clients and the servers share the cores, and every cycle
a client burns is one a server does not get.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from distcache.client.health import tcp_ping  # noqa: E402
from distcache.client.ring import KetamaRing, ServerSpec  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {proc.returncode}")
        try:
            return tcp_ping(ServerSpec("127.0.0.1", port), 1.0)
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"server on {port} did not start")


def cpu_seconds(pid: int):
    """user+system CPU seconds of ``pid`` (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def start_nodes(count: int, workdir: Path) -> List[Tuple[int, subprocess.Popen]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    nodes = []
    for i in range(count):
        port = free_port()
        data = workdir / f"node-{port}"
        data.mkdir(parents=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "distcache", "server", "--port", str(port), "--dir", str(data),
             "--appendonly", "no", "--save", "", "--loglevel", "warning"],
            cwd=str(data), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        nodes.append((port, proc))
    for port, proc in nodes:
        wait_ready(port, proc)
    return nodes


def stop_nodes(nodes: List[Tuple[int, subprocess.Popen]]) -> None:
    for _, proc in nodes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for _, proc in nodes:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def encode(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


class ReplyCounter:
    """Counts complete RESP replies (hiredis when installed, else a small parser
    that handles the replies this benchmark gets: +simple, -error, $bulk, :int)."""

    def __init__(self) -> None:
        try:
            import hiredis
            self._reader = hiredis.Reader()
        except ImportError:
            self._reader = None
            self._buf = b""

    def feed(self, data: bytes) -> int:
        if self._reader is not None:
            self._reader.feed(data)
            count = 0
            while self._reader.gets() is not False:
                count += 1
            return count
        self._buf += data
        count, pos, buf = 0, 0, self._buf
        while True:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            if buf[pos:pos + 1] == b"$":
                size = int(buf[pos + 1:end])
                if size >= 0:
                    if len(buf) < end + 2 + size + 2:
                        break
                    end = end + 2 + size
            pos = end + 2
            count += 1
        self._buf = buf[pos:]
        return count


def make_batches(ports: List[int], args: argparse.Namespace, seed: int) -> list:
    """Pre-encoded pipelined batches: [(node, payload, reply count, reply
    bytes)], one of ``--pipeline`` commands for each node, on keys the ring
    puts there. Every key is preloaded with a value of the same size, so the
    replies' total size is known in advance."""
    ring = KetamaRing([("127.0.0.1", p) for p in ports])
    index = {p: i for i, p in enumerate(ports)}
    keys = [b"bench:%d" % i for i in range(args.keys)]
    by_node: List[List[bytes]] = [[] for _ in ports]
    for key in keys:  # routes computed once, as a client would cache them
        by_node[index[ring.get_server(key).port]].append(key)
    value = b"x" * args.value_size
    rng = random.Random(seed)
    batches = []
    for _ in range(256):
        batch = []
        for node, node_keys in enumerate(by_node):
            cmds, sizes = [], []
            for _ in range(args.pipeline):
                key = rng.choice(node_keys)
                if rng.random() < args.get_ratio:
                    cmds.append(encode(b"GET", key))
                    sizes.append(len(b"$%d\r\n\r\n" % len(value)) + len(value))
                else:
                    cmds.append(encode(b"SET", key, value))
                    sizes.append(len(b"+OK\r\n"))
            batch.append((node, b"".join(cmds), len(cmds), sum(sizes)))
        batches.append(batch)
    return batches


def client_process(ports: List[int], args: argparse.Namespace, seed: int, ready: Any,
                   go: Any, results: Any) -> None:
    counts: List[int] = []
    errors: List[int] = []
    # Everything is built and connected before the start signal.
    all_batches = [make_batches(ports, args, seed * 1000 + slot) for slot in range(args.conns)]
    all_socks = [[socket.create_connection(("127.0.0.1", p), timeout=30) for p in ports]
                 for _ in range(args.conns)]
    ready.put(seed)
    while go.value == 0.0:
        time.sleep(0.005)
    start_at = go.value
    measure_from = start_at + args.warmup
    end_at = measure_from + args.duration

    def worker(slot: int, node: Any) -> None:
        """Drive connection ``slot``: to every node in turn (``--coupled``) or,
        by default, to ``node`` only, so that one slow node stalls no other."""
        batches = all_batches[slot]
        if node is not None:
            batches = [[batch[node]] for batch in batches]
        socks = all_socks[slot]
        for sock in socks:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        counters = [ReplyCounter() for _ in ports]
        while time.time() < start_at:
            time.sleep(0.001)
        done = 0
        n = 0
        try:
            while True:
                now = time.time()
                if now >= end_at:
                    break
                batch = batches[n % len(batches)]
                n += 1
                for node, payload, _, _ in batch:  # all nodes at once, then the replies
                    socks[node].sendall(payload)
                check = n % 64 == 1  # parse every 64th batch; count bytes otherwise
                for node, _, expected, size in batch:
                    got = 0
                    while got < size:
                        data = socks[node].recv(262144)
                        if not data:
                            raise ConnectionError("server closed the connection")
                        got += len(data)
                        if check:
                            expected -= counters[node].feed(data)
                    if got != size or (check and expected != 0):
                        raise ConnectionError(f"unexpected replies from node {node}")
                if now >= measure_from:
                    done += args.pipeline * len(batch)
        except OSError:
            errors.append(1)
        counts.append(done)

    cpu = [0.0, 0.0]

    def sample_cpu() -> None:  # this process's CPU during the measured window
        time.sleep(max(0.0, measure_from - time.time()))
        cpu[0] = time.process_time()
        time.sleep(max(0.0, end_at - time.time()))
        cpu[1] = time.process_time()

    nodes: List[Any] = [None] if args.coupled else list(range(len(ports)))
    threads = [threading.Thread(target=worker, args=(slot, node))
               for slot in range(args.conns) for node in nodes]
    threads.append(threading.Thread(target=sample_cpu))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for socks in all_socks:
        for sock in socks:
            sock.close()
    results.put((sum(counts), sum(errors), cpu[1] - cpu[0]))


def run(node_count: int, args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        nodes = start_nodes(node_count, Path(tmp))
        try:
            ports = [p for p, _ in nodes]
            import redis
            for p in ports:  # preload so GETs hit
                r = redis.Redis(port=p)
                r.flushall()
                r.close()
            ring = KetamaRing([("127.0.0.1", p) for p in ports])
            pipes = {p: redis.Redis(port=p).pipeline(transaction=False) for p in ports}
            for i in range(args.keys):
                key = b"bench:%d" % i
                pipes[ring.get_server(key).port].set(key, b"x" * args.value_size)
            for pipe in pipes.values():
                pipe.execute()
            ctx = mp.get_context("fork" if hasattr(os, "fork") else "spawn")
            results, ready, go = ctx.Queue(), ctx.Queue(), ctx.Value("d", 0.0)
            procs = [ctx.Process(target=client_process,
                                 args=(ports, args, seed, ready, go, results))
                     for seed in range(args.procs)]
            for p in procs:
                p.start()
            for _ in procs:
                ready.get(timeout=300)
            start_at = time.time() + 0.2
            go.value = start_at
            # CPU the servers use in the measured window: shows whether the
            # nodes were the bottleneck or starved by other work on the machine.
            time.sleep(max(0.0, start_at + args.warmup - time.time()))
            cpu0 = [cpu_seconds(proc.pid) for _, proc in nodes]
            time.sleep(max(0.0, start_at + args.warmup + args.duration - time.time()))
            cpu1 = [cpu_seconds(proc.pid) for _, proc in nodes]
            totals = [results.get(timeout=args.warmup + args.duration + 120) for _ in procs]
            for p in procs:
                p.join(30)
            ops = sum(t[0] for t in totals)
            errors = sum(t[1] for t in totals)
            client_cpu = sum(t[2] for t in totals) / args.duration
            rate = ops / args.duration
            used = [b - a for a, b in zip(cpu0, cpu1) if a is not None and b is not None]
            busy = ", ".join(f"{u / args.duration:.0%}" for u in used) or "n/a"
            busy += " of a core"
            if used and sum(used) > 0:  # contention-independent: work per server CPU-second
                busy += f"; {ops / sum(used):,.0f} ops per server CPU-second"
            print(f"nodes={node_count}: {rate:,.0f} ops/s ({ops} ops in {args.duration:g} s, "
                  f"{errors} errors; server CPU {busy}; clients {client_cpu:.0%})", flush=True)
            return rate
        finally:
            stop_nodes(nodes)


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", default="1,2", help="node counts to compare (default 1,2)")
    parser.add_argument("--procs", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--conns", type=int, default=4,
                        help="connections (threads) per client process (default 4)")
    parser.add_argument("--pipeline", type=int, default=128,
                        help="commands per batch per connection (default 128)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--keys", type=int, default=10000)
    parser.add_argument("--get-ratio", type=float, default=0.8)
    parser.add_argument("--value-size", type=int, default=64)
    parser.add_argument("--coupled", action="store_true",
                        help="one thread per connection slot sends to every node and waits "
                             "for all of them (default: a thread per node connection)")
    parser.add_argument("--repeat", type=int, default=1, help="alternate the runs this many times")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.nodes.split(",")]
    print(f"cpus={os.cpu_count()} procs={args.procs} conns={args.conns} "
          f"pipeline={args.pipeline} duration={args.duration:g}s keys={args.keys} "
          f"get_ratio={args.get_ratio} value_size={args.value_size}", flush=True)
    rates = {n: [] for n in counts}
    for _ in range(args.repeat):
        for n in counts:
            rates[n].append(run(n, args))
    base = max(rates[counts[0]])
    for n in counts:
        best = max(rates[n])
        # Each round runs the node counts back to back: the paired ratios
        # cancel most of the drift in what else the machine is doing.
        paired = sorted(r / b for r, b in zip(rates[n], rates[counts[0]]))
        print(f"nodes={n}: best {best:,.0f} ops/s = {best / base:.2f}x nodes={counts[0]}; "
              f"paired ratios {', '.join(f'{x:.2f}' for x in paired)} "
              f"(median {statistics.median(paired):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
