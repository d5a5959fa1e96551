#!/usr/bin/env python3
"""User CPU a loop turn spends per ready direct reader (DirectReaderLoop, PyPy).

``-c`` socketpairs are kept readable (a byte never read) and registered with
``add_direct_reader``; a timer is scheduled, as the server's cron is; the loop
then runs ``--turns`` turns, each polling and calling every reader once. The
callbacks do nothing, so what is measured is the poll and the dispatch: the
loop's part of a lone request. Compare trees with PYTHONPATH:

    PYTHONPATH=$PWD pypy3 bench/loop_turn_bench.py -c 50
    PYTHONPATH=/tmp/base pypy3 bench/loop_turn_bench.py -c 4
"""
from __future__ import annotations

import argparse
import resource
import socket
import statistics

from distcache.server.pypy_loop import DirectReaderLoop


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-c", "--clients", type=int, default=50, help="readers ready each turn")
    p.add_argument("--turns", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    loop = DirectReaderLoop()
    pairs = [socket.socketpair() for _ in range(args.clients)]
    calls = [0]

    def ready() -> None:
        calls[0] += 1

    for ours, theirs in pairs:
        ours.send(b"x")
        loop.add_direct_reader(theirs.fileno(), ready)
    loop.call_later(3600, lambda: None)
    samples = []
    for rep in range(args.repeat + 1):  # the first round warms the JIT up
        calls[0] = 0
        user = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        for _ in range(args.turns):
            loop._run_once()
        user = resource.getrusage(resource.RUSAGE_SELF).ru_utime - user
        if rep:
            samples.append(user / calls[0] * 1e6)
    print(f"-c {args.clients}: median {statistics.median(samples):.3f} us user per ready "
          f"reader (range {min(samples):.3f}-{max(samples):.3f})")
    for ours, theirs in pairs:
        ours.close()
        theirs.close()
    loop.close()


if __name__ == "__main__":
    main()
