"""Every type, TTLs and 16 databases survive: SHUTDOWN, kill -9 + replay, rewrite, snapshots."""
from __future__ import annotations

import os
import socket
import time
from collections import deque

import pytest

from persistence_helpers import (aof_dir, client, crash_restart, dump, has, info, poll,
                                 populate, start, wait_child_done)

from distcache.persistence import snapshot
from distcache.server.keyspace import Keyspace


def _roundtrip(tmp_path, *flags, action, **kw):
    proc = start(tmp_path, *flags, **kw)
    r = client(proc)
    populate(r, seed=1)
    before = action(proc, r)
    r.close()
    proc2 = start(tmp_path, *flags, **kw)
    try:
        r2 = client(proc2)
        after = dump(r2)
        assert after == before
        assert len(after) > 16 * 5
        return proc2, r2
    except BaseException:
        proc2.stop()
        raise


def test_shutdown_and_restart(tmp_path):
    def action(proc, r):
        snap = dump(r)
        try:
            r.shutdown()
        except Exception:
            pass
        proc.proc.wait(30)
        assert proc.proc.returncode == 0
        return snap
    proc, r = _roundtrip(tmp_path, action=action)
    assert (tmp_path / "data" / "dump.dcs").exists()
    proc.stop()


def test_kill9_log_replay(tmp_path):
    def action(proc, r):
        populate(r, seed=2)
        r.delete("s:1:0")
        r.execute_command("SWAPDB", 3, 4)
        r.move("s:1:1", 7)
        snap = dump(r)
        proc.kill()
        return snap
    proc, r = _roundtrip(tmp_path, "--save", "", action=action)
    assert not (tmp_path / "data" / "dump.dcs").exists()
    proc.stop()


def test_bgrewriteaof_then_writes_then_kill9(tmp_path):
    def action(proc, r):
        old = set(os.listdir(aof_dir(tmp_path)))
        r.bgrewriteaof()
        wait_child_done(r)
        now = set(os.listdir(aof_dir(tmp_path)))
        assert any(n.endswith(".base.dcs") for n in now) and not old & now - {
            "appendonly.aof.manifest"}
        populate(r, seed=3)
        r.incr("n:1")
        snap = dump(r)
        proc.kill()
        return snap
    proc, r = _roundtrip(tmp_path, "--save", "", action=action)
    # The log restarted empty after the rewrite: only the later writes are in it.
    incr = [n for n in os.listdir(aof_dir(tmp_path)) if n.endswith(".incr.aof")]
    assert len(incr) == 1
    proc.stop()


def test_bgsave_snapshot_plus_log_tail(tmp_path):
    def action(proc, r):
        last = r.lastsave()
        r.bgsave()
        poll(lambda: r.lastsave() != last or info(r)["rdb_saves"] > 0, what="bgsave")
        wait_child_done(r)
        populate(r, seed=4)
        r.incr("n:1")  # not idempotent: replaying the whole log would double it
        snap = dump(r)
        proc.kill()
        return snap
    proc, r = _roundtrip(tmp_path, "--save", "", action=action)
    assert "dump.dcs, log" in proc.log()  # the snapshot, then only the log after it
    proc.stop()


def test_snapshot_only_mode(tmp_path):
    def action(proc, r):
        snap = dump(r)
        r.save()
        r.set("after-save", "lost on kill -9")
        proc.kill()
        return snap
    proc, r = _roundtrip(tmp_path, "--appendonly", "no", "--save", "", action=action)
    assert r.get("after-save") is None
    assert not aof_dir(tmp_path).exists()
    proc.stop()


def test_snapshot_file_roundtrip_in_process(tmp_path):
    ks = Keyspace(16)
    zset_cls = snapshot._zset_class()
    for db in ks.dbs:
        db.data[b"s"] = b"v%d" % db.id
        db.data[b"t"] = b"\x00\xff" * 100
        db.expires[b"t"] = 123456789012
        db.data[b"l"] = deque([b"a", b"", b"c"])
        db.data[b"h"] = {b"f": b"v", b"": b"empty"}
        db.data[b"set"] = {b"x", b"y"}
        db.expires[b"set"] = 99
        if zset_cls is not None:
            z = zset_cls()
            z.add(b"m", 1.5)
            z.add(b"n", float("-inf"))
            db.data[b"z"] = z
    for i in range(5000):
        ks.dbs[2].data[b"k%d" % i] = b"%d" % i
    path = str(tmp_path / "s.dcs")
    snapshot.write_snapshot(path, ks.dbs, b"L" * 16, 42)
    head = snapshot.read_header(path)
    assert head.log_id == b"L" * 16 and head.log_offset == 42
    ks2 = Keyspace(16)
    snapshot.load_snapshot(path, ks2)
    for a, b in zip(ks.dbs, ks2.dbs):
        assert a.data == b.data
        assert a.expires == b.expires
    # Any flipped byte is caught by the checksum.
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x40
    open(path, "wb").write(bytes(data))
    with pytest.raises(snapshot.SnapshotError):
        snapshot.load_snapshot(path, Keyspace(16))


@pytest.mark.skipif(not has("rpush", "hset", "sadd", "zadd"), reason="container commands missing")
def test_container_mutations_replay(tmp_path):
    proc = start(tmp_path, "--save", "")
    try:
        r = client(proc)
        r.rpush("l", *range(10))
        r.lpop("l")
        r.ltrim("l", 0, 5)
        r.hset("h", mapping={"a": 1, "b": 2})
        r.hincrbyfloat("h", "a", 0.25)
        r.hdel("h", "b")
        r.sadd("s", *range(20))
        popped = r.spop("s", 3)
        assert len(popped) == 3
        r.zadd("z", {"a": 1, "b": 2, "c": 3})
        r.zincrby("z", 2.5, "a")
        r.zpopmin("z")
        r.execute_command("EXPIRE", "z", 1000)
        proc = crash_restart(tmp_path, proc, "--save", "")
    finally:
        proc.stop()


def test_expired_keys_stay_consistent_across_replay(tmp_path):
    """A key whose TTL passes while the server is down is gone after loading."""
    proc = start(tmp_path, "--save", "")
    try:
        r = client(proc)
        r.set("short", "x", px=300)
        r.set("long", "y", ex=1000)
        r.incr("short-counter")
        r.pexpire("short-counter", 300)
        deadline = r.execute_command("PEXPIRETIME", "short")
        proc = crash_restart(tmp_path, proc, "--save", "", compare=False,
                             wait_until=lambda: time.time() * 1000 > deadline + 50)
        r = client(proc)
        assert r.get("short") is None and r.get("short-counter") is None
        assert r.get("long") == b"y"
    finally:
        proc.stop()


def test_replay_meets_keys_as_they_were(tmp_path):
    """SET with a short TTL then PERSIST: replayed after the TTL passed, the key survives."""
    proc = start(tmp_path, "--save", "")
    try:
        r = client(proc)
        r.set("k", "v", px=400)
        r.persist("k")
        r.set("c", 1, px=400)
        r.incr("c")  # INCR keeps the TTL
        r.pexpire("c", 3_600_000)
        deadline = time.time() + 0.5
        proc = crash_restart(tmp_path, proc, "--save", "", compare=False,
                             wait_until=lambda: time.time() > deadline)
        r = client(proc)
        assert r.get("k") == b"v" and r.ttl("k") == -1
        assert r.get("c") == b"2" and r.ttl("c") > 3000
    finally:
        proc.stop()


@pytest.mark.skipif(not has("multi", "exec"), reason="transactions not available")
def test_transactions_replay_whole(tmp_path):
    proc = start(tmp_path, "--save", "")
    try:
        r = client(proc)
        r.set("n", 10)
        pipe = r.pipeline(transaction=True)
        pipe.incr("n").set("tx", "yes").execute_command("SELECT", 2)
        pipe.set("in-db2", "x").execute_command("SELECT", 0)
        pipe.execute()
        proc = crash_restart(tmp_path, proc, "--save", "")
        r = client(proc)
        assert r.get("n") == b"11" and r.get("tx") == b"yes"
    finally:
        proc.stop()


def test_replayer_drops_an_unterminated_transaction():
    from distcache.config import build_config
    from distcache.persistence.loader import Replayer
    from distcache.server.app import CacheServer
    server = CacheServer(config=build_config(["--appendonly", "no", "--save", ""], environ={}))
    rp = Replayer(server)
    rp.apply([[b"SELECT", b"1"], [b"SET", b"a", b"1"], [b"MULTI"], [b"SET", b"b", b"2"],
              [b"EXEC"], [b"MULTI"], [b"SET", b"c", b"3"]])
    db = server.keyspace.dbs[1]
    assert db.data == {b"a": b"1", b"b": b"2"}
    assert rp.tx == [[b"SET", b"c", b"3"]]  # never applied: the log ended inside MULTI


@pytest.mark.skipif(not has("blpop", "blmove"), reason="blocking list commands")
def test_pops_served_inside_a_pipelined_batch_replay_in_order(tmp_path):
    """A waiter served between two commands of one read: the log holds the push,
    the pop, then the rest of the read, so a replay ends where the server was."""
    proc = start(tmp_path, "--appendfsync", "always")
    r = client(proc)
    try:
        sock = socket.create_connection(("127.0.0.1", proc.port), timeout=20)
        sock.sendall(b"BLMOVE k d LEFT LEFT 0\r\n")
        poll(lambda: r.info("clients")["blocked_clients"] == 1, what="the waiter to block")
        pipe = r.pipeline(transaction=False)
        pipe.rpush("k", "x", "y").lpop("k").rpush("k", "z").lrange("d", 0, -1)
        assert pipe.execute() == [2, b"y", 1, [b"x"]]
        sock.close()
        new = crash_restart(tmp_path, proc, "--appendfsync", "always")
        try:
            r2 = client(new)
            assert r2.lrange("k", 0, -1) == [b"z"] and r2.lrange("d", 0, -1) == [b"x"]
        finally:
            new.stop()
    finally:
        proc.stop()
