"""SAVE/BGSAVE/LASTSAVE/BGREWRITEAOF, save rules, auto-rewrite, LOADING, INFO, signals."""
from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import time

import pytest
import redis

from persistence_helpers import (aof_dir, client, crash_restart, info, poll, populate, start,
                                 wait_child_done)
from servers import distcache_server

from distcache.persistence import snapshot
from distcache.server.keyspace import Keyspace


def test_info_fields_and_commands(tmp_path):
    proc = start(tmp_path, "--save", "")
    try:
        r = client(proc)
        fields = info(r)
        for name in ("aof_enabled", "aof_rewrite_in_progress", "rdb_bgsave_in_progress",
                     "rdb_last_save_time", "rdb_changes_since_last_save",
                     "aof_last_write_status", "loading"):
            assert name in fields, name
        assert fields["aof_enabled"] == 1 and fields["loading"] == 0
        r.set("a", 1)
        r.set("b", 2)
        assert info(r)["rdb_changes_since_last_save"] == 2
        last = r.lastsave()
        assert r.save() is True
        assert info(r)["rdb_changes_since_last_save"] == 0
        assert r.lastsave() >= last
        assert r.execute_command("BGSAVE") in (b"Background saving started", "Background saving started", True)
        wait_child_done(r)
        assert info(r)["rdb_last_bgsave_status"] == "ok"
        with pytest.raises(redis.ResponseError):
            r.execute_command("BGSAVE", "NOW")
        r.bgrewriteaof()
        wait_child_done(r)
        assert info(r)["aof_last_bgrewrite_status"] == "ok"
    finally:
        proc.stop()


def test_save_rules_trigger_background_save(tmp_path):
    proc = start(tmp_path, "--save", "1 3", "--appendonly", "no")
    try:
        r = client(proc)
        before = r.lastsave()
        pipe = r.pipeline(transaction=True)  # one EXEC: the cron cannot save halfway
        for i in range(5):
            pipe.set(f"k{i}", i)
        pipe.execute()
        poll(lambda: info(r)["rdb_saves"] >= 1, timeout=15, what="save rule")
        wait_child_done(r)
        assert (tmp_path / "data" / "dump.dcs").exists()
        assert r.lastsave() >= before
        assert info(r)["rdb_changes_since_last_save"] == 0
    finally:
        proc.stop()


def test_auto_rewrite_bounds_log_size(tmp_path):
    proc = start(tmp_path, "--save", "", "--auto-aof-rewrite-min-size", "20kb",
                 "--auto-aof-rewrite-percentage", "100")
    try:
        r = client(proc)
        value = b"x" * 200
        for round_ in range(6):
            p = r.pipeline(transaction=False)
            for i in range(200):
                p.set(f"key{i % 50}", value)  # overwrites: the dataset stays small
            p.execute()
            wait_child_done(r)
        poll(lambda: any(n.endswith(".base.dcs") for n in os.listdir(aof_dir(tmp_path))),
             what="an automatic rewrite")
        wait_child_done(r)
        total = sum(f.stat().st_size for f in aof_dir(tmp_path).iterdir())
        assert total < 6 * 200 * 230  # far less than everything ever written
        proc = crash_restart(tmp_path, proc, "--save", "")
    finally:
        proc.stop()


def test_shutdown_nosave_and_sigint(tmp_path):
    proc = start(tmp_path, "--appendonly", "no")  # default save rules
    r = client(proc)
    r.set("a", 1)
    try:
        r.shutdown(nosave=True)
    except redis.ConnectionError:
        pass
    proc.proc.wait(20)
    assert not (tmp_path / "data" / "dump.dcs").exists()
    proc = start(tmp_path, "--appendonly", "no")
    r = client(proc)
    assert r.get("a") is None
    r.set("b", 2)
    proc.proc.send_signal(signal.SIGINT)
    assert proc.proc.wait(20) == 0
    assert (tmp_path / "data" / "dump.dcs").exists()
    proc = start(tmp_path, "--appendonly", "no")
    assert client(proc).get("b") == b"2"
    proc.stop()


def _big_snapshot(tmp_path, keys: int) -> None:
    ks = Keyspace(16)
    data = ks.dbs[0].data
    value = b"v" * 20
    for i in range(keys):
        data[b"key:%d" % i] = value
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    snapshot.write_snapshot(str(tmp_path / "data" / "dump.dcs"), ks.dbs)


def test_loading_error_while_loading(tmp_path):
    _big_snapshot(tmp_path, 400_000)
    proc = distcache_server(tmp_path, "--appendonly", "no", "--save", "", persistence=True)
    proc.workdir.mkdir(parents=True, exist_ok=True)
    log = open(proc.log_path, "ab")
    proc.proc = subprocess.Popen(proc.argv, cwd=proc.workdir, stdout=log,
                                 stderr=subprocess.STDOUT, env=proc.env)
    log.close()
    seen_loading = seen_info = False
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    reply = s.recv(200)
                    if reply.startswith(b"-LOADING"):
                        seen_loading = True
                        s.sendall(b"*2\r\n$4\r\nINFO\r\n$11\r\npersistence\r\n")
                        text = b""
                        while b"aof_last_write_status" not in text:
                            text += s.recv(4096)
                        seen_info = seen_info or b"loading:1" in text
                    elif reply.startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.01)
        assert seen_loading and seen_info
        r = client(proc)
        assert r.dbsize() == 400_000
        assert "DB loaded from disk" in proc.log()
    finally:
        proc.stop()


def _ping_latencies(port: int, stop_when) -> list:
    s = socket.create_connection(("127.0.0.1", port))
    lat = []
    try:
        while not stop_when():
            t0 = time.perf_counter()
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            assert s.recv(64) == b"+PONG\r\n"
            lat.append(time.perf_counter() - t0)
            time.sleep(0.001)
    finally:
        s.close()
    return lat


@pytest.mark.parametrize("nofork", [False, True])
def test_bgsave_keeps_the_server_responsive(tmp_path, nofork):
    _big_snapshot(tmp_path, 150_000)
    env = {"DISTCACHE_PERSISTENCE_NOFORK": "1"} if nofork else None
    proc = start(tmp_path, "--appendonly", "no", "--save", "", env=env)
    try:
        r = client(proc)
        assert r.dbsize() == 150_000
        # Best of three saves: a loaded host only adds stalls (the test process and
        # the server descheduled), so the quickest save is the server's own figure;
        # a loop that stalls for the whole save fails all three.
        # Generous bounds (2 shared, heavily loaded cores); the bench measures the
        # 50 ms target with 1M keys. Without a fork-free capture the loop would
        # stall for the whole save (seconds).
        limit = 0.15 if not nofork else 0.4
        best = None
        for _ in range(3):
            saves = info(r)["rdb_saves"]
            r.bgsave()
            lat = _ping_latencies(proc.port, lambda: info(r)["rdb_saves"] > saves)
            lat.sort()
            assert lat  # a save on PyPy can be over after a couple of pings: fine, it is short
            p99 = lat[int(len(lat) * 0.99)]
            print(f"nofork={nofork}: {len(lat)} pings during BGSAVE, p50 "
                  f"{statistics.median(lat) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
                  f"max {lat[-1] * 1000:.2f} ms")
            best = p99 if best is None else min(best, p99)
            if best < limit:
                break
        assert best < limit, best
        r.set("extra", 1)  # not saved: lost by the crash
        proc = crash_restart(tmp_path, proc, "--appendonly", "no", "--save", "", env=env,
                             compare=False)
        assert client(proc).dbsize() == 150_000
    finally:
        proc.stop()


def test_config_set_appendonly_at_runtime(tmp_path):
    proc = start(tmp_path, "--appendonly", "no", "--save", "")
    try:
        r = client(proc)
        populate(r, seed=5, databases=2)
        assert info(r)["aof_enabled"] == 0
        r.config_set("appendonly", "yes")
        wait_child_done(r)
        assert info(r)["aof_enabled"] == 1
        r.set("later", "x")
        proc = crash_restart(tmp_path, proc, "--save", "")
    finally:
        proc.stop()
