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

from servers import REDIS_SERVER, distcache_server, redis_server

pytestmark = pytest.mark.skipif(not REDIS_SERVER, reason="needs redis-server")


def _fill(client: redis.Redis) -> None:
    for db in (0, 5):
        c = redis.Redis(port=client.connection_pool.connection_kwargs["port"], db=db)
        c.mset({"int": 12345, "str": "hello" * 10, "bin": bytes(range(256)) * 3})
        c.rpush("small-list", *range(10))
        c.rpush("big-list", *[f"element-{i}" for i in range(3000)])
        c.hset("small-hash", mapping={"a": 1, "b": "two"})
        c.hset("big-hash", mapping={f"f{i}": i for i in range(1000)})
        c.sadd("intset", *range(100))
        c.sadd("big-set", *[f"m{i}" for i in range(1000)])
        c.zadd("small-zset", {"x": 1.5, "y": -2})
        c.zadd("big-zset", {f"z{i}": i / 7 for i in range(1000)})
        c.pfadd("hll", *range(500))
        c.set("ttl", "v", ex=1000)
        c.close()


def _dataset(port: int) -> dict:
    out = {}
    for db in range(16):
        c = redis.Redis(port=port, db=db)
        for key in c.scan_iter(count=1000):
            kind = c.type(key).decode()
            value = {"string": c.get, "list": lambda k: c.lrange(k, 0, -1),
                     "hash": c.hgetall, "set": c.smembers,
                     "zset": lambda k: c.zrange(k, 0, -1, withscores=True)}[kind](key)
            out[db, key] = (kind, value, c.ttl(key) > 900)
        c.close()
    return out


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distcache", *args], capture_output=True,
                          text=True, timeout=120)


def test_a_redis_dump_imports_and_serves_the_same_data(tmp_path):
    with redis_server(tmp_path / "redis") as theirs:
        _fill(redis.Redis(port=theirs.port))
        estimate = redis.Redis(port=theirs.port).pfcount("hll")  # caches it in the value
        expected = _dataset(theirs.port)
        redis.Redis(port=theirs.port).save()
    data = tmp_path / "dc" / "data"
    done = _cli("import-rdb", str(tmp_path / "redis" / "dump.rdb"), "--dir", str(data))
    assert done.returncode == 0, done.stderr
    assert f"{len(expected)} keys imported" in done.stdout
    assert "import-rdb:" in done.stderr and "keys/s" in done.stderr  # the progress line
    with distcache_server(tmp_path / "dc", persistence=True) as ours:
        assert _dataset(ours.port) == expected
        assert redis.Redis(port=ours.port).pfcount("hll") == estimate


def test_an_export_loads_into_redis_server(tmp_path):
    with distcache_server(tmp_path / "dc", persistence=True) as ours:
        _fill(redis.Redis(port=ours.port))
        expected = _dataset(ours.port)
    out = tmp_path / "redis" / "dump.rdb"
    out.parent.mkdir()
    done = _cli("export-rdb", str(out), "--dir", str(tmp_path / "dc" / "data"))
    assert done.returncode == 0, done.stderr
    check = shutil.which("redis-check-rdb")
    if check:
        result = subprocess.run([check, str(out)], capture_output=True, text=True)
        assert "RDB looks OK" in result.stdout + result.stderr, result.stdout
    with redis_server(tmp_path / "redis") as theirs:
        assert _dataset(theirs.port) == expected


def test_a_damaged_file_is_refused_with_its_offset_and_nothing_is_written(tmp_path):
    with redis_server(tmp_path / "redis") as theirs:
        _fill(redis.Redis(port=theirs.port))
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
