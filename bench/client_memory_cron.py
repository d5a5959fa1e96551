#!/usr/bin/env python3
"""CPU a cron tick of client memory accounting costs with many clients.

    python bench/client_memory_cron.py [--clients 10000] [--hz 10] [--ticks 50]

An in-process server (never started) with ``--clients`` idle ``Client`` objects:
the CPU time of ``ClientMemory.cron()`` (one slice of the clients a tick) and of
measuring them all (done when maxmemory-clients is turned on and before an eviction).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distcache.server.app import CacheServer  # noqa: E402
from distcache.server.connection import Client  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--hz", type=int, default=10)
    ap.add_argument("--ticks", type=int, default=50)
    opts = ap.parse_args()
    server = CacheServer("127.0.0.1", 0, hz=opts.hz)
    for _ in range(opts.clients):
        c = Client(server)
        server.clients[c.id] = c
    tracker = server.client_memory
    tracker.cron()
    start = time.process_time()
    for _ in range(opts.ticks):
        tracker.cron()
    tick = (time.process_time() - start) / opts.ticks
    start = time.process_time()
    for _ in range(opts.ticks):
        tracker.measure_all()
    full = (time.process_time() - start) / opts.ticks
    print(f"{sys.implementation.name}, {opts.clients} clients, hz {opts.hz}: "
          f"{tick * 1e3:.2f} ms CPU a cron tick, {full * 1e3:.2f} ms to measure all")


if __name__ == "__main__":
    main()
