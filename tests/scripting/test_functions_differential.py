"""FUNCTION and FCALL compared byte for byte with a real redis-server 7.0.

Each case starts from the same libraries on both servers (FUNCTION FLUSH,
then :data:`BASE`), runs one command over a raw connection and compares the
exact reply bytes, then the data left behind and FUNCTION LIST. Libraries
with several functions list them in Redis's hash order, so listings are
compared as parsed, sorted structures.
"""
from __future__ import annotations

import pytest
import redis

from scripting_helpers import RawConn, fingerprint

pytest.importorskip("lupa")

BASE = """#!lua name=base
redis.register_function('echo_keys', function(keys, args) return {keys, args} end)
redis.register_function{function_name='setter', callback=function(keys, args)
  return redis.call('set', keys[1], args[1]) end, description='sets a key'}
redis.register_function{function_name='reader', callback=function(keys, args)
  return redis.call('get', keys[1]) end, flags={'no-writes'}}
redis.register_function{function_name='bad_ro', callback=function(keys, args)
  return redis.call('set', keys[1], 'x') end, flags={'no-writes', 'allow-oom'}}
redis.register_function('fails', function(keys, args) error('boom') end)
redis.register_function('fails_table', function(keys, args) return redis.error_reply('MY err') end)
redis.register_function('uses_globals', function(keys, args) return KEYS end)
redis.register_function('libs', function(keys, args)
  return {cjson.encode({1, 2}), bit.band(7, 3), string.upper('x'), tostring(math.floor(2.5))} end)
redis.register_function('resp3', function(keys, args) redis.setresp(3)
  return redis.call('hgetall', keys[1]) end)
redis.register_function('many', function(keys, args)
  redis.call('set', 'a', '1') redis.call('incr', 'a') return redis.call('get', 'a') end)
"""
SEED = [("SET", "str", "hello"), ("HSET", "h", "a", "1")]


def _lib(name, body):
    return f"#!lua name={name}\n{body}"


ONE = "redis.register_function('f', function(keys, args) return 1 end)"

#: FUNCTION LOAD: every metadata and registration error, and what loads.
LOADS = [
    _lib("x", ONE), "return 1", "#!lua", "#!lua\n" + ONE, "#!lua name=x foo=bar\n" + ONE,
    "#!lua name=a name=b\n" + ONE, "#!LUA NAME=up\n" + ONE, "#!lua2 name=x\n" + ONE,
    _lib("bad-name", ONE), _lib("", ONE), _lib("base", ONE), _lib("x", "return 1"),
    _lib("x", "redis.register_function('echo_keys', function() end)"),
    _lib("x", "redis.register_function('ECHO_KEYS', function() end)"),
    _lib("x", "local s = string.format('x')\n" + ONE), _lib("x", "redis.call('ping')"),
    _lib("x", ONE + "\n" + ONE), _lib("x", "syntax error"), _lib("x", "error('nope')"),
    _lib("x", "redis.register_function()"), _lib("x", "redis.register_function('a')"),
    _lib("x", "redis.register_function('a', 'b')"),
    _lib("x", "redis.register_function(1, function() end)"),
    _lib("x", "redis.register_function('a', function() end, 3)"),
    _lib("x", "redis.register_function('bad-name', function() end)"),
    _lib("x", "redis.register_function('', function() end)"),
    _lib("x", "redis.register_function({[1]=1})"),
    _lib("x", "redis.register_function({function_name=1, callback=function() end})"),
    _lib("x", "redis.register_function{function_name='a'}"),
    _lib("x", "redis.register_function{callback=function() end}"),
    _lib("x", "redis.register_function{function_name='a', callback=function() end, bogus=1}"),
    _lib("x", "redis.register_function{function_name='a', callback=function() end, "
              "description=3}"),
    _lib("x", "redis.register_function{function_name='a', callback=function() end, "
              "description={}}"),
    _lib("x", "redis.register_function{function_name='a', callback=function() end, flags='x'}"),
    _lib("x", "redis.register_function{function_name='a', callback=function() end, "
              "flags={'bogus'}}"),
    _lib("x", "redis.register_function{function_name='a', callback=function() end, flags={1}}"),
    _lib("x", "redis.register_function{function_name='a', callback=function() end, "
              "flags={'NO-WRITES', 'allow-oom', 'allow-stale', 'no-cluster', "
              "'allow-cross-slot-keys'}}"),
    _lib("x", "redis.register_function{function_name='a', callback='x'}"),
    _lib("x", "redis.register_function('x')\n"), _lib("x", "redis.register_function"),
    _lib("x", "redis.log(redis.LOG_WARNING, 'loading')\n" + ONE),
    _lib("x", "local v = redis.REDIS_VERSION_NUM\n" + ONE),
    _lib("x", "return KEYS"), _lib("x", "x = 1\n" + ONE),
    _lib("x", "redis.register_function('f', function(keys, args) return redis.register_function end)"),
]

#: FCALL and FCALL_RO over BASE: replies, errors and the data left.
CALLS = [
    ("FCALL", "echo_keys", 2, "k1", "k2", "a1"), ("FCALL", "ECHO_KEYS", 0),
    ("FCALL", "setter", 1, "k", "v"), ("FCALL_RO", "setter", 1, "k", "v"),
    ("FCALL", "reader", 1, "str"), ("FCALL_RO", "reader", 1, "str"),
    ("FCALL", "bad_ro", 1, "k"), ("FCALL_RO", "bad_ro", 1, "k"),
    ("FCALL", "fails", 0), ("FCALL", "fails_table", 0), ("FCALL", "uses_globals", 0),
    ("FCALL", "libs", 0), ("FCALL", "resp3", 1, "h"), ("FCALL", "many", 0),
    ("FCALL", "nosuch", 0), ("FCALL", "echo_keys", "x"), ("FCALL", "echo_keys", 5, "a"),
    ("FCALL", "echo_keys", -1), ("FCALL", "nosuch", "x"), ("FCALL", "echo_keys"),
    ("FCALL_RO", "nosuch", 0),
]

#: The other subcommands and their errors.
COMMANDS = [
    ("FUNCTION", "DELETE", "base"), ("FUNCTION", "DELETE", "BASE"), ("FUNCTION", "DELETE", "x"),
    ("FUNCTION", "DELETE"), ("FUNCTION", "FLUSH"), ("FUNCTION", "FLUSH", "ASYNC"),
    ("FUNCTION", "FLUSH", "sync"), ("FUNCTION", "FLUSH", "bogus"),
    ("FUNCTION", "FLUSH", "async", "extra"), ("FUNCTION", "LIST", "LIBRARYNAME", "nomatch"),
    ("FUNCTION", "LIST", "libraryname"), ("FUNCTION", "LIST", "bogus"),
    ("FUNCTION", "LIST", "withcode", "withcode"),
    ("FUNCTION", "LIST", "libraryname", "b*", "libraryname", "x"),
    ("FUNCTION", "LOAD", "BOGUS", _lib("x", ONE)), ("FUNCTION", "LOAD", "REPLACE"),
    ("FUNCTION", "LOAD", "replace", "replace", _lib("x", ONE)), ("FUNCTION", "LOAD"),
    ("FUNCTION", "LOAD", "REPLACE", _lib("base", ONE)),
    ("FUNCTION", "LOAD", "REPLACE", _lib("other", "redis.register_function('setter', "
                                                  "function() end)")),
    ("FUNCTION", "RESTORE", "abc"), ("FUNCTION", "RESTORE", "abc", "bogus"),
    ("FUNCTION", "RESTORE", "x" * 20, "FLUSH"), ("FUNCTION", "KILL"), ("FUNCTION", "HELP"),
    ("FUNCTION", "STATS", "x"), ("FUNCTION", "nosuch"), ("FUNCTION",),
    ("FUNCTION", "DUMP", "x"),
]


@pytest.fixture(scope="module")
def pair(shared_server, reference_redis):
    servers = []
    for proc in (shared_server, reference_redis):
        servers.append((proc.port, redis.Redis(host="127.0.0.1", port=proc.port,
                                               socket_timeout=10)))
    yield servers
    for _, client in servers:
        client.function_flush()
        client.close()


def _reset(client, base=True):
    client.flushall()
    client.function_flush()
    for args in SEED:
        client.execute_command(*args)
    if base:
        client.function_load(BASE)


def _listing(client):
    """FUNCTION LIST WITHCODE as comparable data (functions sorted by name)."""
    out = []
    for lib in client.execute_command("FUNCTION", "LIST", "WITHCODE"):
        lib = dict(lib) if isinstance(lib, dict) else dict(zip(lib[::2], lib[1::2]))
        funcs = []
        for f in lib[b"functions"]:
            f = dict(f) if isinstance(f, dict) else dict(zip(f[::2], f[1::2]))
            funcs.append(sorted(f.items(), key=repr))
        lib[b"functions"] = sorted(funcs, key=repr)
        out.append(sorted(lib.items(), key=repr))
    return sorted(out, key=repr)


def _run_both(pair, *command, resp3=False, base=True):
    results = []
    for port, client in pair:
        _reset(client, base)
        conn = RawConn(port, resp3=resp3)
        try:
            reply = conn.call(*command)
        finally:
            conn.close()
        results.append((reply, fingerprint(client), _listing(client)))
    return results


@pytest.mark.parametrize("code", LOADS)
def test_function_load_matches_redis(pair, code):
    ours, theirs = _run_both(pair, "FUNCTION", "LOAD", code)
    assert ours == theirs


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
@pytest.mark.parametrize("command", CALLS, ids=repr)
def test_fcall_matches_redis(pair, command, resp3):
    ours, theirs = _run_both(pair, *command, resp3=resp3)
    assert ours == theirs


@pytest.mark.parametrize("command", COMMANDS, ids=repr)
def test_function_commands_match_redis(pair, command):
    ours, theirs = _run_both(pair, *command)
    assert ours == theirs


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
@pytest.mark.parametrize("command", [
    ("FUNCTION", "LIST"), ("FUNCTION", "LIST", "WITHCODE"), ("FUNCTION", "STATS"),
    ("FUNCTION", "LIST", "LIBRARYNAME", "ON*"), ("FUNCTION", "LIST", "withcode", "libraryname", "o?e"),
    ("FUNCTION", "LIST", "LIBRARYNAME", "t*"),
], ids=repr)
def test_single_function_listing_bytes_match_redis(pair, command, resp3):
    """One library with one function: no hash order, so the bytes compare (patterns
    match case-insensitively, as Redis's)."""
    results = []
    for port, client in pair:
        _reset(client, base=False)
        client.function_load(_lib("one", "redis.register_function{function_name='f', "
                                         "callback=function() return 1 end, description='d', "
                                         "flags={'allow-stale', 'no-writes'}}"))
        conn = RawConn(port, resp3=resp3)
        try:
            results.append(conn.call(*command))
        finally:
            conn.close()
    assert results[0] == results[1]


@pytest.mark.parametrize("policy", [None, "APPEND", "REPLACE", "FLUSH", "append"])
@pytest.mark.parametrize("existing", ["none", "same", "other", "collision"])
def test_dump_restores_across_servers(pair, policy, existing):
    """A dump from either server restores on the other, with every policy and collision."""
    (ours_port, ours), (_, theirs) = pair
    extra = {"none": None, "same": _lib("base", ONE),
             "other": _lib("other", ONE),
             "collision": _lib("other", "redis.register_function('setter', function() end)")}
    outcomes = []
    for source, target in ((theirs, ours), (ours, theirs)):
        _reset(source)
        payload = source.function_dump()
        dumped = _listing(source)
        results = []
        for client in (ours, theirs):
            _reset(client, base=False)
            if extra[existing]:
                client.function_load(extra[existing])
            args = ["FUNCTION", "RESTORE", payload] + ([policy] if policy else [])
            try:
                reply = client.execute_command(*args)
            except redis.ResponseError as exc:
                reply = f"error: {exc}"
            results.append((reply, _listing(client)))
        assert results[0] == results[1]
        outcomes.append(results[0])
        _reset(target, base=False)
        target.execute_command("FUNCTION", "RESTORE", payload)
        assert _listing(target) == dumped
    assert outcomes[0] == outcomes[1]


def test_restore_refuses_what_is_not_a_function(pair):
    """Payloads with a key's value, or the pre-release opcode, get Redis's texts."""
    replies = []
    for port, client in pair:
        _reset(client)
        client.set("k", "v")
        value = client.dump("k")  # a string payload: type 0, not a function
        for payload in (value, b"\xf6" + client.function_dump()[1:]):
            try:
                replies.append(client.execute_command("FUNCTION", "RESTORE", payload))
            except redis.ResponseError as exc:
                replies.append(str(exc))
    half = len(replies) // 2
    assert replies[:half] == replies[half:]
