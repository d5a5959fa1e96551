"""Functions against running servers: restarts, the log, a busy function, FUNCTION KILL."""
from __future__ import annotations

import pytest
import redis

from persistence.persistence_helpers import incr_files, start
from scripting_helpers import Background, error_text
from servers import REDIS_SERVER, distcache_server, redis_server, wait_until

pytest.importorskip("lupa")

LIB = """#!lua name=counters
redis.register_function('bump', function(keys, args) return redis.call('incrby', keys[1], args[1]) end)
redis.register_function{function_name='peek', callback=function(keys) return redis.call('get', keys[1]) end,
                        flags={'no-writes'}, description='reads'}
"""
OTHER = "#!lua name=other\nredis.register_function('one', function() return 1 end)\n"


def _client(proc):
    return redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=20)


def _state(r):
    return (r.fcall("bump", 1, "n", 2), r.fcall_ro("peek", 1, "n"),
            sorted(lib[b"library_name"] if isinstance(lib, dict) else lib[1]
                   for lib in r.function_list()))


@pytest.mark.parametrize("mode", ["log", "snapshot", "rewritten-log"])
def test_libraries_survive_a_restart(tmp_path, mode):
    flags = ("--save", "") if mode != "snapshot" else ("--appendonly", "no", "--save", "")
    proc = start(tmp_path, *flags)
    try:
        r = _client(proc)
        r.function_load(LIB)
        r.function_load(OTHER)
        r.function_load("#!lua name=gone\nredis.register_function('g', function() end)")
        r.function_delete("gone")
        r.function_load(OTHER.replace("return 1", "return 2"), replace=True)
        r.fcall("bump", 1, "n", 5)
        if mode == "snapshot":
            r.save()
        elif mode == "rewritten-log":
            r.bgrewriteaof()
            wait_until(lambda: r.info("persistence")["aof_rewrite_in_progress"] == 0
                       and r.info("persistence")["aof_rewrite_scheduled"] == 0)
        if mode == "log":
            log = b"".join(path.read_bytes() for path in incr_files(tmp_path))
            assert b"FUNCTION" in log and b"FCALL" not in log.upper()
    finally:
        proc.stop()
    proc = start(tmp_path, *flags)
    try:
        r = _client(proc)
        assert _state(r) == (7, b"7", [b"counters", b"other"])
        assert r.fcall("one", 0) == 2
        assert r.info("memory")["number_of_libraries"] == 2
    finally:
        proc.stop()


def test_function_flush_is_logged(tmp_path):
    proc = start(tmp_path, "--save", "")
    try:
        r = _client(proc)
        r.function_load(LIB)
        r.function_flush()
    finally:
        proc.stop()
    proc = start(tmp_path, "--save", "")
    try:
        assert _client(proc).function_list() == []
    finally:
        proc.stop()


LOOPS = """#!lua name=loops
redis.register_function('spin', function() while true do end end)
redis.register_function('write_spin', function() redis.call('set', 'w', 1) while true do end end)
"""


def _busy_story(proc):
    r = _client(proc)
    r.function_load(LOOPS)
    story = []
    for name in ("spin", "write_spin"):
        call = Background(proc.port, "FCALL", name, 0)
        wait_until(lambda: "BUSY" in str(error_text(r.ping)), message="BUSY")
        story.append(error_text(r.ping))
        story.append(error_text(r.script_kill))
        stats = r.function_stats()
        running = stats[b"running_script"] if isinstance(stats, dict) else stats[1]
        running = dict(running) if isinstance(running, dict) else \
            dict(zip(running[::2], running[1::2]))
        assert running.pop(b"duration_ms") >= 200
        story.append(running)
        story.append(error_text(lambda: r.execute_command("FUNCTION", "KILL")))
        if name == "spin":
            call.join(10)
            story.append(call.outcome)
            story.append(r.ping())
    try:
        r.shutdown(nosave=True)
    except redis.ConnectionError:
        pass
    assert proc.proc.wait(10) is not None
    call.join(10)
    return story


def test_busy_function_and_function_kill_match_redis(tmp_path):
    if not REDIS_SERVER:
        pytest.skip("redis-server is not installed")
    flags = ("--busy-reply-threshold", "200")
    stories = []
    for make in (redis_server, distcache_server):
        proc = make(tmp_path / make.__name__, *flags).start()
        try:
            stories.append(_busy_story(proc))
        finally:
            proc.stop()
    ours, theirs = stories[1], stories[0]
    assert theirs[0].startswith("BUSY") and "FUNCTION KILL" in theirs[0]
    assert ours == theirs


def test_libraries_move_between_redis_and_distcache_in_rdb_files(tmp_path):
    """import-rdb keeps a Redis dump's libraries; export-rdb writes them for redis-server."""
    import subprocess
    import sys
    if not REDIS_SERVER:
        pytest.skip("redis-server is not installed")
    with redis_server(tmp_path / "redis") as theirs:
        r = _client(theirs)
        r.function_load(LIB)
        r.save()
    data = tmp_path / "dc" / "data"
    done = subprocess.run([sys.executable, "-m", "distcache", "import-rdb",
                           str(tmp_path / "redis" / "dump.rdb"), "--dir", str(data)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with distcache_server(tmp_path / "dc", persistence=True) as ours:
        r = _client(ours)
        assert r.fcall("bump", 1, "n", 3) == 3
        r.function_load(OTHER)
    out = tmp_path / "back" / "dump.rdb"
    out.parent.mkdir()
    done = subprocess.run([sys.executable, "-m", "distcache", "export-rdb", str(out),
                           "--dir", str(data)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with redis_server(tmp_path / "back") as theirs:
        r = _client(theirs)
        assert r.fcall("one", 0) == 1
        assert r.fcall("bump", 1, "n", 1) == 4
