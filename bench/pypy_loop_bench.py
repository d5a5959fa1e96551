#!/usr/bin/env python3
"""CPU per request through the server's read/write paths, in one process.

Clients and server share one asyncio loop over socketpairs: each of ``-c``
clients sends a command, reads its reply from a reader callback and sends the
next (redis-benchmark's -P 1; ``-P N`` sends N a round trip). The process's
CPU time per request is printed for each server read path, interleaved over
``--repeat`` rounds: the client half is the same for all, so differences are
the server's. CPU time of one process, no scheduling between processes:
steadier on a loaded host than redis_benchmark.py's numbers (docs/pypy.md).

    PYTHONPATH=$PWD pypy3 bench/pypy_loop_bench.py -n 200000 --repeat 5
    PYTHONPATH=$PWD pypy3 bench/pypy_loop_bench.py -n 800000 -P 16 --command "SET k v"
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import statistics
import sys
import time
from typing import Dict, List, Tuple

from distcache.protocol import encode_command
from distcache.server.app import READ_BUFFER_SIZE, CacheServer
from distcache.server.connection import BufferedClient, Client
from distcache.server.pypy_loop import DirectReaderLoop
from distcache.server.sock_transport import SocketTransport

PATHS = ("direct", "socket-io", "buffered", "asyncio-reads")


def run_once(path: str, clients: int, requests: int, command: List[bytes],
             pipeline: int = 1) -> Tuple[float, float]:
    """CPU and user-mode CPU seconds per request for ``requests`` commands over
    ``path``, ``pipeline`` a round trip."""
    server = CacheServer("127.0.0.1", 0, appendonly="no", save="")
    # "direct": SocketTransport on DirectReaderLoop, the server's pick on PyPy.
    loop = DirectReaderLoop() if path == "direct" else asyncio.new_event_loop()
    server.loop = loop
    server.read_view = memoryview(bytearray(READ_BUFFER_SIZE))
    request = encode_command(command) * pipeline
    done = loop.create_future()
    sent = [0]
    received = [0]
    batch = [0]  # bytes of one round trip's replies
    pending: Dict[socket.socket, int] = {}
    pairs = [socket.socketpair() for _ in range(clients)]

    async def setup() -> None:
        for theirs, _ in pairs:
            theirs.setblocking(False)
            if path in ("socket-io", "direct"):
                SocketTransport(loop, theirs, Client(server), server.read_view)
            else:
                cls = BufferedClient if path == "buffered" else Client
                await loop.connect_accepted_socket(lambda cls=cls: cls(server), theirs)
        ours = pairs[0][1]
        ours.setblocking(False)
        await loop.sock_sendall(ours, request)
        await asyncio.sleep(0.1)  # the whole reply is written by then
        while True:  # one round trip's reply, to learn its size
            try:
                batch[0] += len(ours.recv(1 << 20))
            except BlockingIOError:
                break

    # The clients read into one buffer: recv(1 MB) is a 1 MB raw allocation per
    # read on PyPy, which cost more than the whole server's half.
    replies = memoryview(bytearray(1 << 20))

    def reply_ready(sock: socket.socket) -> None:
        nbytes = sock.recv_into(replies)
        if not nbytes:
            return
        got = pending.get(sock, 0) + nbytes
        while got >= batch[0]:
            got -= batch[0]
            received[0] += pipeline
            if received[0] >= requests:
                if not done.done():
                    done.set_result(None)
            elif sent[0] < requests:
                sent[0] += pipeline
                sock.send(request)
        pending[sock] = got

    loop.run_until_complete(setup())
    assert batch[0], "no reply to the command"
    for _, ours in pairs:
        ours.setblocking(False)
        loop.add_reader(ours.fileno(), reply_ready, ours)
    start = time.process_time()
    user = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    for _, ours in pairs:
        sent[0] += pipeline
        ours.send(request)
    loop.run_until_complete(done)
    cpu = time.process_time() - start
    user = resource.getrusage(resource.RUSAGE_SELF).ru_utime - user
    for theirs, ours in pairs:
        loop.remove_reader(ours.fileno())
        ours.close()
    loop.run_until_complete(asyncio.sleep(0.05))
    loop.close()
    return cpu / requests, user / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=200_000)
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--command", default="GET key",
                        help="the command, space-separated (default: GET key)")
    parser.add_argument("-P", "--pipeline", type=int, default=1)
    parser.add_argument("--paths", default=",".join(PATHS))
    args = parser.parse_args()
    command = [part.encode() for part in args.command.split()]
    paths = args.paths.split(",")
    run_once(paths[0], args.clients, args.requests // 2, command, args.pipeline)  # JIT warm-up
    samples: Dict[str, List[Tuple[float, float]]] = {path: [] for path in paths}
    for _ in range(args.repeat):
        for path in paths:
            samples[path].append(run_once(path, args.clients, args.requests, command,
                                          args.pipeline))
    print(f"# {sys.implementation.name} {sys.version.split()[0]}, {args.command!r}, "
          f"-c {args.clients} -P {args.pipeline}, {args.requests} requests x {args.repeat}")
    for path in paths:
        us = [cpu * 1e6 for cpu, _ in samples[path]]
        user = statistics.median(u * 1e6 for _, u in samples[path])
        print(f"{path:14s} median {statistics.median(us):6.2f} us CPU/request "
              f"(range {min(us):.2f}-{max(us):.2f}), user {user:.2f}")


if __name__ == "__main__":
    main()
