"""Scripts against a running server: the log, WATCH, redis-py's Lock, no lupa."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis
from redis.exceptions import LockNotOwnedError, ResponseError

from persistence.persistence_helpers import dump, incr_files, start
from servers import ROOT, distcache_server

pytest.importorskip("lupa")

WRITES = """
redis.call('set', KEYS[1], ARGV[1])
redis.call('incrby', KEYS[2], 5)
redis.call('rpush', KEYS[3], 'a', 'b')
redis.call('select', 3)
redis.call('set', KEYS[1], 'in db 3')
redis.call('expire', KEYS[1], 1000)
return 1
"""


def _without_lupa(tmp_path: Path) -> dict:
    """An environment whose `import lupa` fails, as where the extra is not installed."""
    shim = tmp_path / "nolupa" / "lupa"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('lupa is hidden for this test')\n")
    return {"PYTHONPATH": os.pathsep.join([str(shim.parent), str(ROOT)])}


def test_log_holds_effects_in_multi_exec_and_replays_without_lupa(tmp_path):
    proc = start(tmp_path, "--appendfsync", "always", "--save", "")
    try:
        r = redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=20)
        assert r.eval(WRITES, 3, "k", "n", "l", "v1") == 1
        assert r.eval("return redis.call('set', KEYS[1], 'one write')", 1, "single") == b"OK"
        assert r.eval("return redis.call('get', KEYS[1])", 1, "k") == b"v1"  # no write
        with pytest.raises(ResponseError):  # writes before an error stay, and are logged
            r.eval("redis.call('set', 'partial', '1') error('stop')", 0)
        sha = r.script_load("redis.set_repl(redis.REPL_NONE) redis.call('set', 'unlogged', 1)")
        r.evalsha(sha, 0)
        before = dump(r)
        log = b"".join(path.read_bytes() for path in incr_files(tmp_path))
    finally:
        proc.stop()
    assert b"EVAL" not in log.upper()
    assert log.count(b"MULTI") == 1 and log.count(b"EXEC") == 1  # one script wrote twice+
    assert b"one write" in log and b"partial" in log and b"unlogged" not in log
    proc = start(tmp_path, "--save", "", env=_without_lupa(tmp_path))
    try:
        r = redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=20)
        after = dump(r)
        with pytest.raises(ResponseError, match=r"distcache\[lua\]"):
            r.eval("return 1", 0)
        assert r.script_flush()  # tools reset servers with it: fine without lupa
    finally:
        proc.stop()
    before.pop((0, b"unlogged"))
    assert after == before


def test_script_write_aborts_a_watchers_exec(server):
    watcher = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=10)
    other = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=10)
    pipe = watcher.pipeline()
    pipe.watch("w")
    pipe.multi()
    pipe.set("w", "from exec")
    other.eval("return redis.call('set', KEYS[1], 'from script')", 1, "w")
    with pytest.raises(redis.WatchError):
        pipe.execute()
    assert other.get("w") == b"from script"
    # A read-only script leaves the watch alone.
    pipe = watcher.pipeline()
    pipe.watch("w")
    pipe.multi()
    pipe.set("w", "from exec")
    other.eval("return redis.call('get', KEYS[1])", 1, "w")
    assert pipe.execute() == [True]


def test_eval_inside_multi_is_logged_in_exec_only(tmp_path):
    proc = start(tmp_path, "--appendfsync", "always")
    try:
        r = redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=20)
        pipe = r.pipeline()
        pipe.eval("redis.call('set', 'a', 1) redis.call('set', 'b', 2)", 0)
        pipe.set("c", 3)
        assert pipe.execute() == [None, True]
        log = b"".join(path.read_bytes() for path in incr_files(tmp_path))
    finally:
        proc.stop()
    assert log.count(b"MULTI") == 1 and log.count(b"EXEC") == 1


def test_redis_py_lock(server):
    r = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=10)
    lock = r.lock("resource", timeout=10)
    assert lock.acquire(blocking=False)
    assert not r.lock("resource", timeout=10).acquire(blocking=False)
    assert lock.extend(5)
    assert 10000 < r.pttl("resource") <= 15000
    assert lock.extend(30, replace_ttl=True)
    assert 20000 < r.pttl("resource") <= 30000
    assert lock.reacquire()
    assert 5000 < r.pttl("resource") <= 10000
    assert lock.owned()
    lock.release()
    assert r.get("resource") is None
    assert lock.acquire(blocking=False)
    r.set("resource", "someone else")  # it expired and another client took it
    with pytest.raises(LockNotOwnedError):
        lock.release()
    assert r.get("resource") == b"someone else"
    r.delete("resource")
    with r.lock("resource", timeout=5, blocking_timeout=2) as held:
        assert held.locked()
        stolen = r.lock("resource", timeout=5)
        assert not stolen.acquire(blocking=False)
        r.set("resource", "someone else")  # the lock expired and another took it
        with pytest.raises(LockNotOwnedError):
            held.extend(5)
        r.delete("resource")
        held.acquire(blocking=False)


def test_server_starts_and_serves_without_lupa(tmp_path):
    with distcache_server(tmp_path, env=_without_lupa(tmp_path)) as proc:
        r = redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=10)
        r.set("a", 1)
        for call in (lambda: r.eval("return 1", 0), lambda: r.evalsha("f" * 40, 0),
                     lambda: r.script_load("return 1")):
            with pytest.raises(ResponseError, match=r"pip install 'distcache\[lua\]'"):
                call()
        assert r.script_exists("f" * 40) == [False]
        assert r.get("a") == b"1"
