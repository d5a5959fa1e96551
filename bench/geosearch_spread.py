#!/usr/bin/env python3
"""GEOSEARCH 2 km from centres spread over the whole set: distcache vs redis-server.

    python bench/geosearch_spread.py [-n 20000] [-P 16] [--clients 4] [--repeat 3]
                                     [--write-every N [--moves K]]

families_bench.py's "new centre" line varies the centre through redis-benchmark's
``__rand_int__``, which only moves it by micro-degrees (every search falls in the
same cells). Here each search has its own centre, drawn uniformly over the
preloaded 2 x 2 degree square (families_bench.preload's 100,000 points), as an
app's "near me" queries would. The same pre-encoded requests go to both servers
(``--clients`` pipelined connections, ``-P`` requests in flight on each, replies
parsed by hiredis); the first 200 replies are compared between the servers. It
prints ops/s, the ratio, and each server's CPU µs per search (utime+stime from
/proc), whose ratio a loaded host disturbs less than ops/s.

``--write-every N`` (ride sharing: drivers move, riders search) puts a GEOADD
moving one random preloaded member to a random point of the square before every
Nth search (N=1: before every search; ``--moves K``: K such GEOADDs each time), on
both servers alike; rates and CPU are
then per search (its share of the writes included), and each run draws new
requests (a run repeating the last one's moves would not change the set).
"""
from __future__ import annotations

import argparse
import os
import random
import selectors
import shutil
import socket
import statistics
import sys
import tempfile
import time
from typing import List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import families_bench as fb  # noqa: E402
import redis_benchmark as rb  # noqa: E402


def _encode(args: List[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def requests(count: int, seed: int = 7, write_every: int = 0, points: int = 100_000,
             moves: int = 1) -> List[bytes]:
    """``count`` encoded GEOSEARCH 2 km requests, each from its own centre (with
    ``write_every``, ``moves`` GEOADDs each moving one of the ``points`` members before
    every ``write_every``-th: those are extra requests)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        for _ in range(moves if write_every and i % write_every == 0 else 0):
            out.append(_encode([b"GEOADD", b"geo", b"%.6f" % rng.uniform(13, 15),
                                b"%.6f" % rng.uniform(37, 39), b"p%d" % rng.randrange(points)]))
        args = [b"GEOSEARCH", b"geo", b"FROMLONLAT", b"%.6f" % rng.uniform(13.05, 14.95),
                b"%.6f" % rng.uniform(37.05, 38.95), b"BYRADIUS", b"2", b"km"]
        out.append(_encode(args))
    return out


def replies(port: int, reqs: List[bytes]) -> list:
    """The replies to ``reqs``, one at a time (for the comparison)."""
    import hiredis
    reader = hiredis.Reader()
    got = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for req in reqs:
            sock.sendall(req)
            reply = False
            while reply is False:
                reader.feed(sock.recv(1 << 16))
                reply = reader.gets()
            got.append(reply)
    return got


def drive(port: int, reqs: List[bytes], clients: int, depth: int) -> float:
    """Send every request over ``clients`` connections, ``depth`` in flight on
    each; returns the wall seconds."""
    import hiredis
    sel = selectors.DefaultSelector()
    per = [reqs[i::clients] for i in range(clients)]
    socks = []
    for share in per:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state = {"share": share, "next": 0, "due": 0, "reader": hiredis.Reader()}
        sel.register(sock, selectors.EVENT_READ, state)
        socks.append((sock, state))
    started = time.perf_counter()

    def send(sock: socket.socket, state: dict) -> None:
        batch = state["share"][state["next"]:state["next"] + depth]
        state["next"] += len(batch)
        state["due"] = len(batch)
        if batch:
            sock.sendall(b"".join(batch))

    for sock, state in socks:
        send(sock, state)
    pending = sum(1 for _, state in socks if state["due"])
    while pending:
        for key, _ in sel.select():
            state = key.data
            reader = state["reader"]
            reader.feed(key.fileobj.recv(1 << 20))
            while state["due"] and reader.gets() is not False:
                state["due"] -= 1
            if not state["due"]:
                send(key.fileobj, state)
                if not state["due"]:
                    pending -= 1
    elapsed = time.perf_counter() - started
    for sock, _ in socks:
        sock.close()
    sel.close()
    return elapsed


def measure(server: rb.Server, reqs: List[bytes], clients: int, depth: int,
            searches: int) -> Tuple[float, float]:
    """(searches/s, server CPU µs per search)."""
    cpu = server.cpu()
    wall = drive(server.port, reqs, clients, depth)
    return searches / wall, (server.cpu() - cpu) / searches * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20_000, help="searches per run")
    parser.add_argument("-P", type=int, default=16, help="requests in flight per connection")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write-every", type=int, default=0, metavar="N",
                        help="a GEOADD moving a random member before every Nth search")
    parser.add_argument("--moves", type=int, default=1, metavar="K",
                        help="GEOADDs each time (with --write-every)")
    args = parser.parse_args()
    try:
        import hiredis  # noqa: F401
    except ImportError:
        print("needs hiredis (pip install hiredis)")
        return 1
    if not shutil.which("redis-server"):
        print("needs redis-server")
        return 1
    tmp = tempfile.mkdtemp(prefix="geospread-")
    servers = fb.server_pair(tmp)
    try:
        fb.start_preloaded(servers, args.points)
        every = args.write_every
        reqs = requests(args.n, 7, every, args.points, args.moves)
        ours, theirs = (replies(s.port, reqs[:200]) for s in servers)
        if ours != theirs:
            print("replies differ from redis-server's")
            return 1
        sizes = [len(r) for r in theirs if isinstance(r, list)]
        writes = f", {args.moves} member(s) moved before every {every}" if every else ""
        print(f"# {args.n} searches{writes}, 2 km, centres spread over the square; "
              f"{statistics.mean(sizes):.1f} members a reply; -P {args.P}, "
              f"{args.clients} connections")
        print(f"{'run':>4} {'distcache/s':>12} {'redis/s':>10} {'ratio':>6} "
              f"{'dc CPU us':>10} {'redis CPU us':>13} {'CPU ratio':>10}")
        ratios, cpu_ratios = [], []
        for run in range(args.repeat):
            if every:  # new moves (the last run's again would leave the set as it is)
                reqs = requests(args.n, 100 + run, every, args.points, args.moves)
            o_ops, o_cpu = measure(servers[0], reqs, args.clients, args.P, args.n)
            t_ops, t_cpu = measure(servers[1], reqs, args.clients, args.P, args.n)
            ratios.append(o_ops / t_ops)
            cpu_ratios.append(t_cpu / o_cpu)
            print(f"{run + 1:>4} {o_ops:12,.0f} {t_ops:10,.0f} {o_ops / t_ops:6.2f} "
                  f"{o_cpu:10.1f} {t_cpu:13.1f} {t_cpu / o_cpu:10.2f}", flush=True)
        print(f"median ratio {statistics.median(ratios):.2f}, "
              f"median CPU ratio {statistics.median(cpu_ratios):.2f}")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
