"""``distcache server --dbfilename dump.rdb``: snapshots in Redis's RDB format.

A real redis-server writes the dump.rdb the server starts from; SAVE, BGSAVE
(forked or fork-less) and the shutdown save write files that redis-check-rdb
accepts and redis-server loads; with the append-only log on, a restart is the
RDB file plus the log's tail; a damaged file is refused with its name, offset
and reason, and nothing is overwritten."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess

import pytest
import redis

from persistence_helpers import (aof_dir, client, crash_restart, poll, start,
                                 start_expecting_failure, wait_child_done)
from rdb_helpers import dataset, fill_every_type
from servers import REDIS_SERVER, redis_server

pytestmark = pytest.mark.skipif(not REDIS_SERVER, reason="needs redis-server")
RDB = ("--dbfilename", "dump.rdb")


def _redis_dump(tmp_path, populate: int = 0) -> tuple:
    """A dump.rdb written by redis-server, and the data it holds."""
    flags = ("--enable-debug-command", "yes") if populate else ()
    with redis_server(tmp_path / "redis", *flags) as theirs:
        r = redis.Redis(port=theirs.port)
        fill_every_type(r)
        r.set("gone-soon", "x", px=300)  # expired when distcache loads the file
        if populate:
            r.execute_command("DEBUG", "POPULATE", populate, "pop", 10)
        r.save()
        poll(lambda: not r.exists("gone-soon"), what="the short TTL to pass")
        expected = {} if populate else dataset(theirs.port)  # (key by key: slow)
    return (tmp_path / "redis" / "dump.rdb"), expected


def _check_rdb(path) -> None:
    check = shutil.which("redis-check-rdb")
    if check:
        result = subprocess.run([check, str(path)], capture_output=True, text=True, timeout=60)
        assert "RDB looks OK" in result.stdout + result.stderr, result.stdout


def _redis_loads(tmp_path, rdb_file, expected: dict) -> None:
    target = tmp_path / "redis-load"
    target.mkdir(exist_ok=True)
    shutil.copy(rdb_file, target / "dump.rdb")
    with redis_server(target) as theirs:
        assert dataset(theirs.port) == expected


@pytest.mark.parametrize("appendonly", ["no", "yes"])
def test_the_server_starts_from_a_redis_dump_rdb(tmp_path, appendonly):
    rdb_file, expected = _redis_dump(tmp_path)
    (tmp_path / "dc" / "data").mkdir(parents=True)
    shutil.copy(rdb_file, tmp_path / "dc" / "data" / "dump.rdb")
    proc = start(tmp_path / "dc", *RDB, "--appendonly", appendonly)
    try:
        r = client(proc)
        poll(lambda: not r.info("persistence")["loading"], what="loading")
        assert dataset(proc.port) == expected  # every type, TTLs, dbs 0 and 5
        assert "DB loaded from disk" in proc.log()
        if appendonly == "yes":  # the file became the log's base: a crash loses nothing
            assert list(aof_dir(tmp_path / "dc").glob("*.base.rdb"))
            r.set("after", "1")
            proc = crash_restart(tmp_path / "dc", proc, *RDB, "--appendonly", "yes")
            assert client(proc).get("after") == b"1"
    finally:
        proc.stop()


def test_save_bgsave_and_shutdown_write_rdb_that_redis_server_loads(tmp_path):
    proc = start(tmp_path, *RDB, "--appendonly", "no")
    dump = tmp_path / "data" / "dump.rdb"
    try:
        r = client(proc)
        fill_every_type(r)
        r.set("gone", "x", px=1)
        assert r.save()
        assert dump.read_bytes()[:9] == b"REDIS0010"
        _check_rdb(dump)
        r.set("later", "2")
        r.bgsave()
        wait_child_done(r)
        assert r.info("persistence")["rdb_last_bgsave_status"] == "ok"
        _check_rdb(dump)
        r.set("last", "3")
        expected = dataset(proc.port)
    finally:
        proc.stop()  # SIGTERM: the shutdown save (save rules are on)
    _check_rdb(dump)
    assert "saving " in proc.log() and "keys/s" in proc.log()  # the progress line
    _redis_loads(tmp_path, dump, expected)


def test_a_fork_less_bgsave_writes_rdb_too(tmp_path):
    proc = start(tmp_path, *RDB, "--appendonly", "no",
                 env={"DISTCACHE_PERSISTENCE_NOFORK": "1"})
    dump = tmp_path / "data" / "dump.rdb"
    try:
        r = client(proc)
        fill_every_type(r)
        r.bgsave()
        wait_child_done(r)
        assert r.info("persistence")["rdb_last_bgsave_status"] == "ok"
        expected = dataset(proc.port)
    finally:
        proc.stop()
    _check_rdb(dump)
    _redis_loads(tmp_path, dump, expected)


def test_restart_is_the_rdb_file_plus_the_log_tail(tmp_path):
    proc = start(tmp_path, *RDB)
    try:
        r = client(proc)
        fill_every_type(r)
        r.bgsave()
        wait_child_done(r)
        head = (tmp_path / "data" / "dump.rdb").read_bytes()[:400]
        assert b"distcache-log-id" in head and b"distcache-log-offset" in head
        r.set("after-the-snapshot", "tail")
        r.delete("big-list")
        proc = crash_restart(tmp_path, proc, *RDB)  # compares the whole dataset
        assert client(proc).get("after-the-snapshot") == b"tail"
    finally:
        proc.stop()


@pytest.mark.parametrize("damage", ["truncated", "checksum"])
def test_a_damaged_rdb_file_is_refused_and_nothing_is_overwritten(tmp_path, damage):
    # 200,000 extra keys: over 4 MB, so the CRC is checked by the forked child
    rdb_file, _ = _redis_dump(tmp_path, populate=200_000 if damage == "checksum" else 0)
    good = rdb_file.read_bytes()
    bad = good[:len(good) // 2] if damage == "truncated" else \
        good[:-8] + bytes(b ^ 0xFF for b in good[-8:])
    data = tmp_path / "dc" / "data"
    data.mkdir(parents=True)
    (data / "dump.rdb").write_bytes(bad)
    log = start_expecting_failure(tmp_path / "dc", *RDB, "--appendonly", "yes")
    assert str(data / "dump.rdb") in log and "byte offset" in log, log
    assert ("wrong RDB checksum" if damage == "checksum" else "needs") in log, log
    assert (data / "dump.rdb").read_bytes() == bad  # not overwritten (no shutdown save)
    assert not list(aof_dir(tmp_path / "dc").glob("*.base.*"))  # no log was started


def test_our_own_snapshot_format_still_loads_after_switching_to_rdb(tmp_path):
    proc = start(tmp_path, "--appendonly", "no")
    try:
        r = client(proc)
        fill_every_type(r)
        r.save()
        expected = dataset(proc.port)
    finally:
        proc.stop()
    # a dump.rdb that holds our own format (renamed by hand) is read by its magic
    shutil.copy(tmp_path / "data" / "dump.dcs", tmp_path / "data" / "dump.rdb")
    proc = start(tmp_path, *RDB, "--appendonly", "no")
    try:
        assert dataset(proc.port) == expected
        assert client(proc).save()
        assert (tmp_path / "data" / "dump.rdb").read_bytes()[:5] == b"REDIS"
    finally:
        proc.stop()


LIBRARY = "#!lua name=rdblib\nredis.register_function('twice', function(keys, args) return args[1] * 2 end)"


@pytest.mark.skipif(importlib.util.find_spec("lupa") is None, reason="needs lupa")
@pytest.mark.parametrize("dbfilename", ["dump.rdb", "dump.dcs"])
@pytest.mark.parametrize("fork", [True, False])
def test_function_libraries_live_in_snapshots(tmp_path, dbfilename, fork):
    flags = ("--dbfilename", dbfilename, "--appendonly", "no")
    env = None if fork else {"DISTCACHE_PERSISTENCE_NOFORK": "1"}
    proc = start(tmp_path, *flags, env=env)
    try:
        r = client(proc)
        assert r.function_load(LIBRARY) == b"rdblib"
        r.bgsave()
        wait_child_done(r)
        assert r.info("persistence")["rdb_last_bgsave_status"] == "ok"
    finally:
        proc.kill()  # no shutdown save: the BGSAVE's file is what the restart reads
    proc = start(tmp_path, *flags)
    try:
        assert client(proc).fcall("twice", 0, 21) == 42
    finally:
        proc.stop()
    if dbfilename.endswith(".rdb"):
        dump = tmp_path / "data" / dbfilename
        _check_rdb(dump)
        target = tmp_path / "redis-load"
        target.mkdir()
        shutil.copy(dump, target / "dump.rdb")
        with redis_server(target) as theirs:  # redis-server loads the library too
            assert redis.Redis(port=theirs.port).fcall("twice", 0, 21) == 42


@pytest.mark.parametrize("fork", [True, False])
def test_rdbchecksum_no_writes_a_zero_crc_and_skips_the_check(tmp_path, fork):
    flags = RDB + ("--appendonly", "no", "--rdbchecksum", "no")
    env = None if fork else {"DISTCACHE_PERSISTENCE_NOFORK": "1"}
    dump = tmp_path / "data" / "dump.rdb"
    proc = start(tmp_path, *flags, env=env)
    try:
        r = client(proc)
        fill_every_type(r)
        assert r.save()
        assert dump.read_bytes()[-8:] == bytes(8)  # as Redis writes with rdbchecksum no
        r.set("later", "2")
        r.bgsave()
        wait_child_done(r)
        assert r.info("persistence")["rdb_last_bgsave_status"] == "ok"
        assert dump.read_bytes()[-8:] == bytes(8)
        expected = dataset(proc.port)
    finally:
        proc.kill()
    _check_rdb(dump)  # a zero CRC means "not computed" to redis-check-rdb too
    _redis_loads(tmp_path, dump, expected)
    # a wrong CRC is not checked with rdbchecksum no (Redis skips it), refused with yes
    good = dump.read_bytes()
    dump.write_bytes(good[:-8] + b"\x01" * 8)
    proc = start(tmp_path, *flags)
    try:
        assert dataset(proc.port) == expected
    finally:
        proc.kill()
    log = start_expecting_failure(tmp_path, *RDB, "--appendonly", "no")
    assert "wrong RDB checksum" in log, log
