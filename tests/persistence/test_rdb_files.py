"""distcache import-rdb / export-rdb: whole datasets move between Redis and distcache.

A real redis-server writes dump.rdb, distcache imports it and serves the same
data; distcache exports its data directory and a real redis-server loads the file
(and redis-check-rdb accepts it). A damaged file is refused with its offset and
writes nothing; an existing data directory is never replaced."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import redis

from rdb_helpers import dataset, fill_every_type
from servers import REDIS_SERVER, distcache_server, redis_server

pytestmark = pytest.mark.skipif(not REDIS_SERVER, reason="needs redis-server")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distcache", *args], capture_output=True,
                          text=True, timeout=120)


def test_a_redis_dump_imports_and_serves_the_same_data(tmp_path):
    with redis_server(tmp_path / "redis") as theirs:
        fill_every_type(redis.Redis(port=theirs.port))
        estimate = redis.Redis(port=theirs.port).pfcount("hll")  # caches it in the value
        expected = dataset(theirs.port)
        redis.Redis(port=theirs.port).save()
    data = tmp_path / "dc" / "data"
    done = _cli("import-rdb", str(tmp_path / "redis" / "dump.rdb"), "--dir", str(data))
    assert done.returncode == 0, done.stderr
    assert f"{len(expected)} keys imported" in done.stdout
    assert "import-rdb:" in done.stderr and "keys/s" in done.stderr  # the progress line
    with distcache_server(tmp_path / "dc", persistence=True) as ours:
        assert dataset(ours.port) == expected
        assert redis.Redis(port=ours.port).pfcount("hll") == estimate


def test_an_export_loads_into_redis_server(tmp_path):
    with distcache_server(tmp_path / "dc", persistence=True) as ours:
        fill_every_type(redis.Redis(port=ours.port))
        expected = dataset(ours.port)
    out = tmp_path / "redis" / "dump.rdb"
    out.parent.mkdir()
    done = _cli("export-rdb", str(out), "--dir", str(tmp_path / "dc" / "data"))
    assert done.returncode == 0, done.stderr
    check = shutil.which("redis-check-rdb")
    if check:
        result = subprocess.run([check, str(out)], capture_output=True, text=True)
        assert "RDB looks OK" in result.stdout + result.stderr, result.stdout
    with redis_server(tmp_path / "redis") as theirs:
        assert dataset(theirs.port) == expected


def test_a_damaged_file_is_refused_with_its_offset_and_nothing_is_written(tmp_path):
    with redis_server(tmp_path / "redis") as theirs:
        fill_every_type(redis.Redis(port=theirs.port))
        redis.Redis(port=theirs.port).save()
    good = (tmp_path / "redis" / "dump.rdb").read_bytes()
    bad = tmp_path / "bad.rdb"
    bad.write_bytes(good[: len(good) // 2])
    data = tmp_path / "dc" / "data"
    done = _cli("import-rdb", str(bad), "--dir", str(data))
    assert done.returncode == 1
    assert str(bad) in done.stderr and "offset" in done.stderr and "nothing was written" \
        in done.stderr
    assert not (data / "dump.dcs").exists()


def test_import_never_replaces_an_existing_data_directory(tmp_path):
    with distcache_server(tmp_path / "dc", persistence=True) as ours:
        redis.Redis(port=ours.port).set("mine", "keep")
    with redis_server(tmp_path / "redis") as theirs:
        redis.Redis(port=theirs.port).set("theirs", "x")
        redis.Redis(port=theirs.port).save()
    done = _cli("import-rdb", str(tmp_path / "redis" / "dump.rdb"), "--dir",
                str(tmp_path / "dc" / "data"))
    assert done.returncode == 1 and "never replaces data" in done.stderr
    with distcache_server(tmp_path / "dc", persistence=True) as ours:
        assert redis.Redis(port=ours.port).get("mine") == b"keep"
