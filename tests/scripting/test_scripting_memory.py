"""Lua memory: a script that allocates without bound gets an error, not the server's
memory; a script's garbage is collected; the Lua heap never makes the server evict
(Redis counts it in used_memory_lua, not used_memory)."""
from __future__ import annotations

import pytest
import redis

from servers import distcache_server

pytest.importorskip("lupa")

BIG_TABLE = "local t = {} for i = 1, 3e6 do t[i] = i end return #t"  # ~64 MB of Lua heap


def _memory(r: redis.Redis) -> "tuple[int, int]":
    info = r.info("memory")
    return info["used_memory"], info["used_memory_lua"]


@pytest.fixture
def capped(tmp_path):
    proc = distcache_server(tmp_path, "--lua-max-memory", "32mb", "--maxmemory", "50mb",
                            "--maxmemory-policy", "allkeys-lru").start()
    yield redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=60)
    proc.stop()


def test_a_script_past_the_cap_fails_and_the_server_goes_on(capped):
    r = capped
    r.set("kept", "1")
    for script in ("return string.rep('x', 1e10)", BIG_TABLE):
        with pytest.raises(redis.ResponseError, match="not enough memory"):
            r.eval(script, 0)
        assert r.eval("return redis.call('get', KEYS[1])", 1, "kept") == b"1"
    _, lua = _memory(r)
    assert lua < 32 << 20
    assert r.get("kept") == b"1"


def test_the_cap_is_set_at_runtime_and_zero_lifts_it(capped):
    r = capped
    assert r.config_get("lua-max-memory") == {"lua-max-memory": str(32 << 20)}
    r.config_set("lua-max-memory", "0")
    assert r.eval(BIG_TABLE, 0) == 3_000_000
    r.config_set("lua-max-memory", "8mb")
    with pytest.raises(redis.ResponseError, match="not enough memory"):
        r.eval(BIG_TABLE, 0)
    assert r.eval("return 1", 0) == 1


def test_functions_have_the_cap_too(capped):
    r = capped
    r.function_load("#!lua name=big\n"
                    "redis.register_function('big', function() " + BIG_TABLE + " end)")
    for _ in range(2):
        with pytest.raises(redis.ResponseError, match="not enough memory"):
            r.fcall("big", 0)
    assert r.eval("return 1", 0) == 1
    r.config_set("lua-max-memory", "0")
    assert r.fcall("big", 0) == 3_000_000


def test_lua_garbage_is_collected_and_never_evicts(tmp_path):
    proc = distcache_server(tmp_path, "--maxmemory", "20mb",
                            "--maxmemory-policy", "allkeys-lru").start()
    try:
        r = redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=60)
        r.mset({f"k{i}": "v" * 100 for i in range(1000)})
        used_before, _ = _memory(r)
        for _ in range(3):
            assert r.eval(BIG_TABLE, 0) == 3_000_000  # 64 MB of Lua heap against 20 MB
        used_after, lua = _memory(r)
        assert r.dbsize() == 1000  # nothing evicted for the scripts' heap
        assert lua < 16 << 20  # the garbage went at the end of the run
        assert used_after < used_before + (1 << 20)
    finally:
        proc.stop()
