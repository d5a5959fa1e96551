"""distcache's own snapshots vs RDB snapshots, and loading a Redis dump.rdb (a benchmark).

    python bench/rdb_bench.py [--keys 1000000] [--no-redis]

On ``--keys`` small strings (``key:N`` -> ``value:N``, as redis-server's
``DEBUG POPULATE N key 10`` makes them):

1. size, save time and load time of a snapshot in distcache's format
   (``dump.dcs``) and in RDB (``dump.rdb``), in-process;
2. the same keys written by a real redis-server (DEBUG POPULATE, SAVE): the
   time redis-server takes to load that file at start-up ("DB loaded from
   disk"), the time ``distcache server --dbfilename dump.rdb`` takes to load
   it (its own log line, on the event loop in slices), and the in-process
   bulk load (``rdb_snapshot.load``) with the CRC computed by a child and
   inline.

Times are wall-clock: run it on a quiet machine, and compare within one run.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distcache.persistence import rdb_snapshot, snapshot  # noqa: E402
from distcache.server.keyspace import Keyspace  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fill(keys: int) -> Keyspace:
    ks = Keyspace(16)
    ks.dbs[0].data.update((b"key:%d" % i, b"value:%d" % i) for i in range(keys))
    return ks


def formats(keys: int, tmp: Path) -> None:
    ks = fill(keys)
    print(f"{'format':<8} {'size MB':>8} {'save s':>8} {'load s':>8}")
    for name in ("dump.dcs", "dump.rdb"):
        path = tmp / name
        if name.endswith(".rdb"):
            save = timed(lambda: rdb_snapshot.write_rdb(str(path), ks.dbs))
            info = rdb_snapshot.read_info(str(path))
            target = Keyspace(16)
            load = timed(lambda: [None for _ in rdb_snapshot.load(info, target)])
        else:
            save = timed(lambda: snapshot.write_snapshot(str(path), ks.dbs))
            target = Keyspace(16)
            load = timed(lambda: snapshot.load_snapshot(str(path), target))
        assert len(target.dbs[0].data) == keys
        print(f"{name:<8} {path.stat().st_size / 1e6:8.1f} {save:8.2f} {load:8.2f}")


def _start(argv, log: Path, pattern: str, timeout: float = 600) -> float:
    """Run a server until its log matches ``pattern`` (a float group: seconds)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, log.read_text(errors="replace"))
            if found:
                return float(found.group(1))
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited:\n{log.read_text()}")
            time.sleep(0.05)
        raise TimeoutError(log.read_text())
    finally:
        proc.terminate()
        proc.wait(30)


def redis_file(keys: int, tmp: Path) -> None:
    server = shutil.which("redis-server")
    cli = shutil.which("redis-cli")
    if not server or not cli:
        print("redis-server/redis-cli not installed: part 2 skipped")
        return
    rdir = tmp / "redis"
    rdir.mkdir()
    sock = str(rdir / "r.sock")
    base = [server, "--port", "0", "--unixsocket", sock, "--dir", str(rdir), "--save", "",
            "--appendonly", "no"]
    proc = subprocess.Popen(base + ["--enable-debug-command", "yes"],
                            stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        for cmd in (["DEBUG", "POPULATE", str(keys), "key", "10"], ["SAVE"]):
            subprocess.run([cli, "-s", sock, *cmd], check=True, stdout=subprocess.DEVNULL)
    finally:
        proc.terminate()
        proc.wait(30)
    dump = rdir / "dump.rdb"
    print(f"\nredis-server's dump.rdb: {keys} keys, {dump.stat().st_size / 1e6:.1f} MB")
    theirs = _start(base, rdir / "load.log", r"DB loaded from disk: ([\d.]+) seconds")
    print(f"redis-server start-up load          {theirs:6.2f} s")
    ddir = tmp / "dc"
    ddir.mkdir()
    shutil.copy(dump, ddir / "dump.rdb")
    ours = _start([sys.executable, "-m", "distcache", "server", "--port", "0", "--dir",
                   str(ddir), "--dbfilename", "dump.rdb", "--appendonly", "no", "--save", ""],
                  ddir / "load.log", r"DB loaded from disk: ([\d.]+) seconds")
    print(f"distcache server start-up load      {ours:6.2f} s  ({ours / theirs:.1f}x)")
    info = rdb_snapshot.read_info(str(dump))
    for label, child_min in (("crc in a child", 0), ("crc inline", 1 << 62)):
        rdb_snapshot.CRC_CHILD_MIN = child_min
        ks = Keyspace(16)
        took = timed(lambda: [None for _ in rdb_snapshot.load(info, ks)])
        print(f"in-process bulk load, {label:<14} {took:6.2f} s  ({took / theirs:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rdb-bench-") as tmp:
        formats(args.keys, Path(tmp))
        if not args.no_redis:
            redis_file(args.keys, Path(tmp))


if __name__ == "__main__":
    main()
