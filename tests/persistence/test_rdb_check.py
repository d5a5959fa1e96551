"""``distcache check-log FILE.rdb`` verifies an RDB file as redis-check-rdb does.

Files written by a real redis-server and by distcache (RDB snapshots, with and
without a CRC) are reported good with their
version, AUX fields, key counts and checksum; truncated and corrupted ones are
reported bad with the offset, the key being read and the last good key."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import redis

from persistence_helpers import aof_dir, client, start
from rdb_helpers import fill_every_type
from servers import REDIS_SERVER, redis_server

pytestmark = pytest.mark.skipif(not REDIS_SERVER, reason="needs redis-server")


def _check(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distcache", "check-log", str(path)],
                          capture_output=True, text=True, timeout=120)


def _redis_check_keys(path) -> int:
    """redis-check-rdb's count of keys read (or -1 when it is not installed)."""
    tool = shutil.which("redis-check-rdb")
    if not tool:
        return -1
    done = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    assert "RDB looks OK" in done.stdout, done.stdout
    return int(re.search(r"\[info\] (\d+) keys read", done.stdout).group(1))


@pytest.fixture(scope="module")
def redis_rdb(tmp_path_factory):
    """A dump.rdb of every type in dbs 0 and 5, written by redis-server."""
    where = tmp_path_factory.mktemp("redis")
    with redis_server(where) as theirs:
        r = redis.Redis(port=theirs.port)
        fill_every_type(r)
        r.save()
    return where / "dump.rdb"


def _keys_reported(stdout: str) -> int:
    return int(re.search(r"RDB looks OK: (\d+) keys", stdout).group(1))


def test_a_redis_server_file_is_reported_good(redis_rdb):
    done = _check(redis_rdb)
    assert done.returncode == 0, done.stdout
    out = done.stdout
    assert "RDB version 10" in out and "AUX FIELD 'redis-ver' = '7.0.15'" in out
    assert re.search(r"db 0: 13 keys \(.*hash 2.*string 5.*\), 1 expires", out), out
    assert re.search(r"db 5: 13 keys", out), out
    assert re.search(r"Checksum OK \(CRC64 [0-9a-f]{16}\)", out), out
    assert _keys_reported(out) == 26
    assert _redis_check_keys(redis_rdb) in (-1, 26)


@pytest.mark.parametrize("checksum", ["yes", "no"])
def test_distcache_rdb_snapshots_are_reported_good(tmp_path, checksum):
    proc = start(tmp_path, "--dbfilename", "dump.rdb", "--rdbchecksum", checksum)
    try:
        r = client(proc)
        fill_every_type(r)
        r.save()
        r.bgrewriteaof()
        from persistence_helpers import wait_child_done
        wait_child_done(r)
    finally:
        proc.stop()
    dump = tmp_path / "data" / "dump.rdb"
    done = _check(dump)
    assert done.returncode == 0, done.stdout
    assert "AUX FIELD 'distcache-log-id'" in done.stdout
    assert ("Checksum OK" if checksum == "yes" else "stored as 0 (written with rdbchecksum no)") \
        in done.stdout, done.stdout
    assert _keys_reported(done.stdout) == 26
    assert _redis_check_keys(dump) in (-1, 26)
    manifest = next(aof_dir(tmp_path).glob("*.manifest"))  # its base and logs still check
    assert _check(manifest).returncode == 0


def test_a_truncated_file_is_reported_with_where_it_stops(tmp_path, redis_rdb):
    good = redis_rdb.read_bytes()
    cut = len(good) * 2 // 3
    bad = tmp_path / "cut.rdb"
    bad.write_bytes(good[:cut])
    done = _check(bad)
    assert done.returncode == 1
    out = done.stdout
    assert "--- RDB ERROR DETECTED ---" in out and "truncated" in out, out
    assert re.search(r"while reading key '[^']+' \(type \d+, \w+\) of db 5, which starts "
                     r"at byte offset \d+", out), out
    assert re.search(r"the last good key: '[^']+' in db \d, ending at byte offset \d+", out)
    # The reason depends on where the cut lands (a short read, a stream's listpack...).
    offset = int(re.search(r"--- RDB ERROR DETECTED ---\n\[offset (\d+)\] ", out).group(1))
    assert offset <= cut


def test_a_corrupted_file_and_a_wrong_checksum_are_reported(tmp_path, redis_rdb):
    good = redis_rdb.read_bytes()
    wrong = tmp_path / "crc.rdb"
    wrong.write_bytes(good[:-8] + bytes(b ^ 0xFF for b in good[-8:]))
    done = _check(wrong)
    assert done.returncode == 1
    assert f"[offset {len(good) - 8}] wrong RDB checksum" in done.stdout, done.stdout
    assert "db 5: 13 keys" in done.stdout  # everything before it was read
    # a flipped type byte in the middle: an unknown type, at that offset
    at = good.index(b"small-hash") - 2  # the type byte before the key's length
    assert good[at + 1] == len(b"small-hash")
    flipped = tmp_path / "flip.rdb"
    flipped.write_bytes(good[:at] + b"\x63" + good[at + 1:])
    done = _check(flipped)
    assert done.returncode == 1
    assert "unknown value type 99" in done.stdout or "type 99" in done.stdout, done.stdout
    # not an RDB file past the magic
    junk = tmp_path / "junk.rdb"
    junk.write_bytes(b"REDIS00xx" + bytes(20))
    done = _check(junk)
    assert done.returncode == 1 and "bad RDB version field" in done.stdout, done.stdout
