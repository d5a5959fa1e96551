"""Instructions per command through the real dispatcher, counted by cachegrind.

The host is too noisy to time small changes, so hot-path work is decided on
instruction counts: an in-process server with 50 clients (fake transports)
is fed the same pipelined reads, under ``valgrind --tool=cachegrind``, for
two run lengths; the difference divided by the extra commands cancels
start-up. Deterministic with a fixed hash seed (set here).

    python bench/instructions.py                       # get,set,incr at -P 1 and 16
    python bench/instructions.py -t get -P 16 --policy allkeys-lru --keys 100000
    python bench/instructions.py --parser python
    python bench/instructions.py -t set -P 16 --replicas 1   # the stream to one replica
    python bench/instructions.py -t set -P 16 --appendonly   # the log (everysec), on tmpfs
    python bench/instructions.py -t evalsha                  # a one-command script
    python bench/instructions.py -t multi-incr -P 16,1000    # MULTI, P INCRs, EXEC a read
    python bench/instructions.py -t xadd,xadd-maxlen,xrange -P 16   # streams
    python bench/instructions.py -t pfadd,pfadd-pure -P 16   # random elements into one HLL
    python bench/instructions.py -t geoadd -P 16             # random points into one zset
    python bench/instructions.py -t setbit,pfcount -P 1,16   # bench/families_bench.py's
    python bench/instructions.py -t geosearch,geosearch-count -P 1,16   # over 100,000 points
    python bench/instructions.py -t geosearch-fresh -P 16    # 2 km from a new centre each time
    python bench/instructions.py -t geosearch-write -P 16    # a member moved before each search
    python bench/instructions.py -t zadd -P 16               # random members into one zset

Needs valgrind (``apt-get install valgrind``). Not a timed benchmark: it
prints counts, which move with CPython's version, not with the host's load.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
from typing import List

SCRIPT = b"return redis.call('GET', KEYS[1])"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUESTS = {
    "get": [b"GET", b"key:__rand_int__"],
    "set": [b"SET", b"key:__rand_int__", b"xxx"],
    "incr": [b"INCR", b"counter:__rand_int__"],
    "lpush": [b"LPUSH", b"mylist", b"xxx"],
    "xadd": [b"XADD", b"mystream", b"*", b"f", b"xxx"],
    # XADD with an approximate cap: whole nodes trimmed as the stream passes 1000.
    "xadd-maxlen": [b"XADD", b"mystream", b"MAXLEN", b"~", b"1000", b"*", b"f", b"xxx"],
    # bench/streams_bench.py's read: the first 10 entries of a 1000-entry stream.
    "xrange": [b"XRANGE", b"r", b"-", b"+", b"COUNT", b"10"],
    # One HLL, a random element a request (redis-benchmark -r 100000): dense after
    # the first ~1,700, about a quarter of the adds raise a register.
    "pfadd": [b"PFADD", b"hll", b"element:__rand_int__"],
    # The same with the pure-Python MurmurHash64A (no ``hll`` extra: a plain install);
    # ``pfadd`` drops DISTCACHE_PURE_HLL_HASH, so it runs the extra's C hash if installed.
    "pfadd-pure": [b"PFADD", b"hll", b"element:__rand_int__"],
    # bench/families_bench.py's GEOADD: a random point into one sorted set.
    "geoadd": [b"GEOADD", b"geo-w", b"13.__rand_int__", b"38.__rand_int__", b"p:__rand_int__"],
    # families_bench's SETBIT: bit 1000 of a random key (most are new: 126-byte values).
    "setbit": [b"SETBIT", b"bits:__rand_int__", b"1000", b"1"],
    # families_bench's PFCOUNT: one dense HLL (filled by 50,000 random PFADDs first).
    "pfcount": [b"PFCOUNT", b"hll"],
    # families_bench's searches over its 100,000 points (2 x 2 degrees around 14, 38):
    # 2 km (32 matches), and the nearest 10 within 20 km.
    "geosearch": [b"GEOSEARCH", b"geo", b"FROMLONLAT", b"14", b"38", b"BYRADIUS", b"2", b"km"],
    "geosearch-count": [b"GEOSEARCH", b"geo", b"FROMLONLAT", b"14", b"38", b"BYRADIUS", b"20",
                        b"km", b"COUNT", b"10", b"ASC"],
    # The 2 km search from a new centre every request (no plan cache hit): 14.000000xxx.
    "geosearch-fresh": [b"GEOSEARCH", b"geo", b"FROMLONLAT", b"14.__rand_int__", b"38",
                        b"BYRADIUS", b"2", b"km"],
    # A ride-sharing mix: a GEOADD moving a random one of the 100,000 points, then a 2 km
    # search from a centre spread over the square (counted per pair; built in workload).
    "geosearch-write": [b"GEOSEARCH", b"geo", b"FROMLONLAT", b"14", b"38", b"BYRADIUS", b"2",
                        b"km"],
    # A random member (of 100,000) with a random score into one plain sorted set.
    "zadd": [b"ZADD", b"z", b"__rand_int__", b"m:__rand_int__"],
    # MULTI, then -P INCRs of one key, then EXEC, a read (per INCR: queueing and EXEC).
    "multi-incr": [b"INCR", b"counter"],
    # The scripting benchmark: EVALSHA of a one-command script (needs lupa).
    "evalsha": [b"EVALSHA", hashlib.sha1(SCRIPT).hexdigest().encode(), b"1",
                b"key:__rand_int__"],
}

#: Tests whose requests differ every time (their ``__rand_int__`` is drawn per request).
FRESH = {"pfadd", "pfadd-pure", "geoadd", "setbit", "geosearch-fresh", "zadd"}
#: Tests run with the pure-Python HLL hash; ``pfadd`` runs with whatever is installed.
PURE_HASH = {"pfadd-pure"}
#: Slow tests run fewer rounds (the two counts' run lengths), so valgrind takes minutes.
ROUNDS = {"geosearch": (4, 24), "geosearch-fresh": (4, 24), "geosearch-write": (4, 24),
          "geosearch-count": (1, 3), "multi-incr": (4, 12)}


def workload(kind: str, pipeline: int, rounds: int, parser: str, policy: str,
             keys: int, replicas: int = 0, appendonly: bool = False) -> None:
    """The measured program: ``rounds`` reads per client, round robin."""
    sys.path.insert(0, ROOT)
    from distcache.protocol import encode_command
    from distcache.server.app import CacheServer
    from distcache.server.connection import Client

    class Transport:
        def write(self, data: bytes) -> None:
            pass

        def get_extra_info(self, name: str) -> object:
            return ("127.0.0.1", 1)

        def close(self) -> None:
            pass

        def get_write_buffer_size(self) -> int:
            return 0

        def pause_reading(self) -> None:  # a long read is served in shares
            pass

        def resume_reading(self) -> None:
            pass

    class Loop:
        """Callbacks (the replication stream's flush) run after each read, as the
        event loop runs them after the read's callback."""

        def __init__(self) -> None:
            self.ready: list = []

        def call_soon(self, callback: object, *args: object) -> None:
            self.ready.append((callback, args))

        def run(self) -> None:
            ready, self.ready = self.ready, []
            for callback, args in ready:
                callback(*args)  # type: ignore[operator]

    loop = Loop()
    if appendonly:  # the log in a fresh directory (appendfsync everysec: a thread)
        import tempfile
        workdir = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        server = CacheServer("127.0.0.1", 0, appendonly="yes", save="", parser=parser,
                             dir=workdir)
        server.loop = loop  # type: ignore[assignment]
        server.persistence._on_started(server)  # loads nothing, opens the log
        while server.loading:
            loop.run()
    else:
        server = CacheServer("127.0.0.1", 0, appendonly="no", save="", parser=parser)
    server.loading = False
    server.gated = False
    clients = []
    for _ in range(50):
        client = Client(server)
        client.connection_made(Transport())
        clients.append(client)
    setup = clients[0].data_received
    if policy != "off":
        setup(encode_command([b"CONFIG", b"SET", b"maxmemory", b"4gb"]))
        setup(encode_command([b"CONFIG", b"SET", b"maxmemory-policy", policy.encode()]))
    if replicas:  # online replicas (fake transports) fed by the stream
        server.loop = loop  # type: ignore[assignment]
        primary = server.replication.primary
        primary._create_backlog()
        for _ in range(replicas):
            replica = Client(server)
            replica.connection_made(Transport())
            primary.attach(replica, False).repl_state = "online"
    template = REQUESTS[kind]
    if kind == "evalsha":
        setup(encode_command([b"SCRIPT", b"LOAD", SCRIPT]))
    elif kind == "xrange":  # streams_bench.py's entries: two small fields
        setup(b"".join(encode_command([b"XADD", b"r", b"*", b"f1", b"v%d" % i, b"f2", b"w"])
                       for i in range(1000)))
    elif kind == "pfcount":
        rng = random.Random(1)
        for _ in range(50):
            setup(b"".join(encode_command([b"PFADD", b"hll", b"element:%012d"
                                           % rng.randrange(100000)]) for _ in range(1000)))
    elif kind.startswith("geosearch"):  # families_bench.py's preload
        rng = random.Random(1)
        points: List[bytes] = [b"GEOADD", b"geo"]
        for i in range(100000):
            points += [b"%.6f" % (13 + 2 * rng.random()), b"%.6f" % (37 + 2 * rng.random()),
                       b"p%d" % i]
        setup(encode_command(points))
    if kind == "geosearch-write":
        rng = random.Random(2)

        def pair() -> bytes:
            move = [b"GEOADD", b"geo", b"%.6f" % rng.uniform(13, 15),
                    b"%.6f" % rng.uniform(37, 39), b"p%d" % rng.randrange(100000)]
            search = [b"GEOSEARCH", b"geo", b"FROMLONLAT", b"%.6f" % rng.uniform(13.05, 14.95),
                      b"%.6f" % rng.uniform(37.05, 38.95), b"BYRADIUS", b"2", b"km"]
            return encode_command(move) + encode_command(search)

        reads = [b"".join(pair() for _ in range(pipeline)) for _ in range(120 * 50)]
    elif kind in FRESH:  # a new random argument every request, not a few reads repeated
        # (as many reads as the longest count takes, whatever ``rounds``: built
        # outside the difference between the two counts)
        rng = random.Random(1)
        reads = [b"".join(encode_command([a.replace(b"__rand_int__",
                                                    b"%012d" % rng.randrange(100000))
                                          for a in template]) for _ in range(pipeline))
                 for _ in range(120 * 50)]
    elif keys:
        for start in range(0, keys, 1000):
            setup(b"".join(encode_command([b"SET", b"key:%012d" % i, b"xxx"])
                           for i in range(start, min(keys, start + 1000))))
        rng = random.Random(1)
        reads = [b"".join(encode_command([template[0], b"key:%012d" % rng.randrange(keys)]
                                         + template[2:]) for _ in range(pipeline))
                 for _ in range(64)]
    elif kind == "multi-incr":
        server.loop = loop  # type: ignore[assignment]  # (a long read is served in shares)
        reads = [encode_command([b"MULTI"]) + encode_command(template) * pipeline
                 + encode_command([b"EXEC"])]
    else:
        setup(encode_command([b"SET", b"key:__rand_int__", b"xxx"]))
        reads = [encode_command(template) * pipeline]
    n = 0
    for _ in range(rounds):
        for client in clients:
            client.data_received(reads[n % len(reads)])
            while loop.ready:  # (a long read's later shares are scheduled)
                loop.run()
            n += 1
    if appendonly:
        server.persistence.close()
        shutil.rmtree(workdir, ignore_errors=True)


def count(args: argparse.Namespace, kind: str, pipeline: int, rounds: int) -> int:
    argv = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
            os.path.realpath(sys.executable), os.path.abspath(__file__), "--run", kind,
            str(pipeline), str(rounds), args.parser, args.policy, str(args.keys),
            str(args.replicas), str(int(args.appendonly))]
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("DISTCACHE_PURE_HLL_HASH", None)
    if kind in PURE_HASH:
        env["DISTCACHE_PURE_HLL_HASH"] = "1"
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stderr
    match = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if match is None:
        raise RuntimeError(f"no instruction count from valgrind:\n{out[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--run":
        kind, pipeline, rounds, parser, policy, keys, replicas, appendonly = sys.argv[2:10]
        workload(kind, int(pipeline), int(rounds), parser, policy, int(keys), int(replicas),
                 appendonly == "1")
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-t", "--tests", default="get,set,incr")
    ap.add_argument("-P", "--pipeline", default="1,16")
    ap.add_argument("--parser", default="hiredis", choices=["hiredis", "python"])
    ap.add_argument("--policy", default="off",
                    help="off, or a maxmemory-policy to run with maxmemory 4gb (never reached)")
    ap.add_argument("--keys", type=int, default=0,
                    help="random keys over this many (0: one key, as redis-benchmark)")
    ap.add_argument("--replicas", type=int, default=0,
                    help="online replicas (fake sockets) the writes are streamed to")
    ap.add_argument("--appendonly", action="store_true",
                    help="log the writes (appendonly yes, everysec, in a directory on tmpfs)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    print(f"# python bench/instructions.py {' '.join(sys.argv[1:])}")
    print("test         -P  instructions/command  (per read at -P 1)")
    rows: List[str] = []
    for kind in args.tests.split(","):
        for pipeline in map(int, args.pipeline.split(",")):
            short, long_ = ROUNDS.get(kind, (20, 120))  # (FRESH's reads assume 120 at most)
            extra = (count(args, kind, pipeline, long_) - count(args, kind, pipeline, short))
            per = extra / ((long_ - short) * 50 * pipeline)
            rows.append(f"{kind:11} {pipeline:3}  {per:12,.0f}")
            print(rows[-1], flush=True)


if __name__ == "__main__":
    main()
