"""EVAL and friends compared byte for byte with a real redis-server 7.0.

Each case runs on a fresh dataset on both servers, in RESP2 and RESP3, and
compares the exact reply bytes (error texts included: ``script: <sha>, on
@user_script:<line>.``) and then every key left behind.
"""
from __future__ import annotations

import pytest

from scripting_helpers import RawConn, fingerprint, pair  # noqa: F401 (a fixture)

pytest.importorskip("lupa")

SEED = [("SET", "str", "hello"), ("SET", "num", "10"), ("HSET", "h", "a", "1", "b", "2"),
        ("RPUSH", "l", "x", "y", "z"), ("SADD", "s", "m"), ("ZADD", "z", "1.5", "a", "2", "b")]

#: Scripts returning every kind of Lua value, and converting every kind of reply.
CONVERSIONS = [
    "return 3.99", "return -3.7", "return 0/0", "return 1/0", "return -1/0", "return 2^70",
    "return true", "return false", "return nil", "return 'a\\0b'", "return {1, 2, nil, 4}",
    "return {1, {2, {3, {}}}, 'x', true, false}", "return {ok='fine'}", "return {ok='a\\r\\nb'}",
    "return {ok=1}", "return {err='boom'}", "return {err='MYCODE boom'}", "return {err=3}",
    "return {double=3.5}", "return {double=0.1}", "return {double=1/0}", "return {double='x'}",
    "return {map={a=1}}", "return {map={a=1, b={1, 2}}}", "return {map={[1]=2}}",
    "return {set={a=true}}", "return {set={a=true, b=false}}", "return {big_number='123'}",
    "return {verbatim_string={format='txt', string='hi'}}", "return {a=1}",
    "return {ok='x', err='y'}", "return {1, ok='x'}",
    "return redis.call('get', 'str')", "return redis.call('get', 'missing')",
    "return {redis.call('get', 'missing')}", "return redis.call('hgetall', 'h')",
    "return redis.call('lrange', 'l', 0, -1)", "return redis.call('zscore', 'z', 'a')",
    "return redis.call('ping')", "return redis.call('set', 'k', 'v')",
    "return redis.call('incr', 'num')", "return type(redis.call('get', 'missing'))",
    "return redis.call('zrange', 'z', 0, -1, 'withscores')",
    "return redis.call('mget', 'str', 'missing', 'num')",
    "redis.setresp(3); return redis.call('hgetall', 'h')",
    "redis.setresp(3); return redis.call('zscore', 'z', 'a')",
    "redis.setresp(3); return redis.call('smembers', 's')",
    "redis.setresp(3); return redis.call('get', 'missing')",
    "redis.setresp(3); return {redis.call('get', 'missing')}",
    "redis.setresp(3); return type(redis.call('get', 'missing'))",
    "redis.setresp(3); local r = redis.call('hgetall', 'h') return {type(r.map), r.map.a}",
    "redis.setresp(3); return redis.call('zscore', 'z', 'a').double",
    "redis.setresp(3); local r = redis.call('smembers', 's') return tostring(r.set.m)",
    "redis.setresp(3); return redis.call('mget', 'str', 'missing')",
    "redis.setresp(3); return redis.call('ping')",
    "redis.setresp(3); return true", "redis.setresp(3); return false",
    "redis.setresp(3); return {true, false, 1}", "redis.setresp(2); return true",
    "return redis.call('set', 'n', 3.0)", "redis.call('set', 'n', 0.1) return redis.call('get', 'n')",
    "redis.call('set', 'n', 1e20) return redis.call('get', 'n')",
    "redis.call('set', 'n', -7) return redis.call('get', 'n')",
    "return redis.call('GeT', 'str')", "redis.call('select', 1) return redis.call('set', 'x', 1)",
    "return redis.call('blpop', 'nolist', 0)", "return redis.call('brpoplpush', 'l', 'l2', 0)",
]

#: Every redis.* function and the sandbox, including their errors.
API = [
    "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}",
    "return redis.error_reply('FOO bar')", "return redis.error_reply('bar')",
    "return redis.error_reply('-X y')", "return redis.error_reply(1)",
    "return redis.error_reply()", "return redis.error_reply('a', 'b')",
    "return redis.status_reply('x')", "return redis.status_reply()",
    "return redis.status_reply(1)", "return redis.sha1hex('')", "return redis.sha1hex(1)",
    "return redis.sha1hex()", "return redis.sha1hex('a', 'b')",
    "return redis.log(redis.LOG_WARNING, 'from a script', 1.5)",
    "return redis.log(99, 'x')", "return redis.log(redis.LOG_WARNING)",
    "return redis.log('x', 'y')",
    "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}",
    "return {redis.REPL_NONE, redis.REPL_AOF, redis.REPL_REPLICA, redis.REPL_SLAVE, "
    "redis.REPL_ALL}",
    "return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM}",
    "return redis.set_repl(redis.REPL_ALL)", "return redis.set_repl(99)",
    "return redis.set_repl()", "return redis.setresp(4)", "return redis.setresp()",
    "return redis.replicate_commands()", "return redis.breakpoint()", "return redis.debug('x')",
    "return redis.pcall('incr', 'str')", "return redis.pcall('nosuch')",
    "return redis.pcall()", "return redis.pcall('get', {})",
    "local ok, e = pcall(redis.call, 'incr', 'str') return {tostring(ok), e.err}",
    "local ok, e = pcall(error, {err='X y'}) return e.err",
    "return {pcall(function() error('x') end)}",
    "return redis.call('nosuch')", "return redis.call('get')", "return redis.call('multi')",
    "return redis.call('eval', 'return 1', 0)", "return redis.call('script', 'flush')",
    "return redis.call('config', 'nosuch')",
    "return redis.call()", "return redis.call(1.5)", "return redis.call({})",
    "return redis.call('get', {})", "return redis.call('get', nil)",
    "return redis.call('get', true)", "return redis.call('incr', 'str')",
    "redis.call('set', 'a', 'b'); return redis.call('nosuch')",
    "\nlocal x = 1\nreturn redis.call('incr', 'str')",
    "x = 5", "return y", "return os", "return io", "return loadfile", "return dofile",
    "return require", "return print", "return debug", "return setfenv", "return getfenv",
    "return newproxy", "return module",
    "string.x = 1", "redis.call = nil", "table.insert = nil", "rawset(_G, 'x', 1)",
    "setmetatable(_G, nil)", "return getmetatable(_G)", "return rawget(_G, 'nothing')",
    "return type(rawget(_G, 'redis'))",
    "loadstring('x = 1')()", "return loadstring('return y')()",
    "return loadstring('return 1')()", "local f = loadstring('x =') return f",
    "table.insert(KEYS, 'k') return #KEYS", "ARGV = 1",
    "error('x')", "error({err='FOO bar'})", "error()", "error('x', 0)",
    "local t = {} t[1] = t return 1", "return _VERSION",
    "return type(string.format)", "return tostring(1e15) .. ' ' .. tostring(0.1)",
    "return string.format('%.17g', 0.1)", "return type(coroutine.create)",
    "return type(math.random)", "return type(unpack)", "return type(gcinfo)",
    "return #redis.sha1hex('x')",
    "local n = 0 for k, v in pairs(redis) do n = n + 1 end return n",
    "return string.rep('x', -1)", "return ('x'):upper()",
    "return math.huge", "local s = 0 for i, v in ipairs({1, 2, 3}) do s = s + v end return s",
    "local s = '' for k in next, {a=1} do s = s .. k end return s",
    "syntax error here", "return 'unfinished", "#!lua\nreturn 1", "#!lua flags=no-writes\nreturn 1",
    "#!lua flags=no-writes\nreturn redis.call('set', 'a', 'b')",
    "#!lua flags=allow-oom,allow-stale,no-cluster,allow-cross-slot-keys\n"
    "return redis.call('set', 'a', 'b')",
    "#!lua flags=bogus\nreturn 1", "#!lua name=x\nreturn 1", "#!python\nreturn 1",
    "#!lua flags=\nreturn 1", "#!lua\nerror('line two')",
]

#: The bit library (LuaBitOp), provided from Python.
BIT = ["return bit.band('x', 1)", "return bit.band()", "return bit.band(nil)",
       "return bit.tohex(255)", "return bit.tohex(-1, -4)", "return bit.tohex(255, 12)",
       "return bit.tobit(2^32 + 5.5)", "return bit.tobit(6.5)", "return bit.tobit(7.5)",
       "return bit.band('0x10', 0xff)", "return bit.bnot(0)", "return bit.lshift(1, 33)",
       "return bit.rshift(-1, 28)", "return bit.arshift(-256, 4)",
       "return bit.rol(0x12345678, 8)", "return bit.ror(0x12345678, 8)",
       "return bit.bswap(0x12345678)", "return bit.bxor(1, 3, 7)", "return bit.bor(1, {})",
       "return bit.band(1, '2x')", "return bit.tohex('a')", "return bit.tobit(-1/0)",
       "return bit.tohex(1, 0)", "return bit.tohex(1, -9)", "return bit.band(-1, 0xffffffff)",
       "local x = bit.band(1)\nreturn bit.bor(2, true)", "bit.x = 1",
       "return bit.rol(1, 0)", "return bit.ror(1, 32)",
       "return bit.tobit(' 12 ')", "return bit.tobit('1e2')", "return bit.tobit(-2^31)"]

#: cjson, provided from Python.
CJSON = ["return cjson.encode({1,2,3})", "return cjson.encode({a=1})", "return cjson.encode({})",
         "return cjson.encode('a/b\"\\\\\n\1\127\195\169')", "return cjson.encode(0.1)",
         "return cjson.encode(1e20)", "return cjson.encode({[1]=1,[3]=3})",
         "return cjson.encode({[1]=1,[30]=3})", "return cjson.encode({[1.5]=1})",
         "return cjson.encode({[true]=1})", "return cjson.encode(0/0)",
         "return cjson.encode(cjson.null)", "return cjson.encode({true,false})",
         "return cjson.encode({a={b={}}})", "return cjson.encode()",
         "local t = cjson.decode('[1,2,{\"a\":null}]') return {t[1], t[3].a == cjson.null, "
         "type(t[3].a)}",
         "return cjson.decode('\"\\\\u00e9\"')", "return cjson.decode('[1.5, 2e3]')[2]",
         "return cjson.decode()", "return type(cjson.null)", "return cjson.encode({[-1]=1})",
         "return cjson.encode({[0]=1})", "return cjson.encode({1, a=2})",
         "local t={} t[1]=t return cjson.encode(t)", "return cjson.decode('true')",
         "return cjson.decode('null') == cjson.null",
         "return cjson.encode(cjson.decode('{\"k\":[1,{\"x\":\"y\"}],\"n\":-2.5}'))",
         "return cjson.encode({name=ARGV[1], list={1, 2, 'three'}})", "cjson.x = 1",
         "return cjson.encode({[1]=1,[2]=2,[4]=4})", "return cjson.encode(redis)"]

#: Text lua-cjson reads with C's strtod and its own tokenizer: invalid numbers (decoded
#: while decode_invalid_numbers is on, the default), broken JSON and its error texts.
CJSON_TEXTS = ["1e", "-", "0x1", "inf", "nan", "01", "1.", ".5", "1e999", "-1e999", "1e-999",
               "[0x10]", "-0", "+1", "1e+", "1E5", "Infinity", "-inf", "[1,]", "00", "-01",
               "0.", "1.5e", " 1 ", "0x", "NaN", "-nan", "123456789012345678901234567890",
               "0x1p3", "-0x1.8p1", "infinit", "nul", "tru", "[1 2]", '{"a" 1}', "{1:2}",
               '{"a":1,}', '"\\ud800"', '"\\udc00"', '"\\ud83d\\ude00"', '"\\x"', '"abc',
               "1\x00x", "[1]\x00", "nan(abc)", "--1", "- 1", '"\\u12"', "[", "{", "", "   ",
               "x", "[1,2", '{"a":', "0e", "0e5", "1.e5", "-.5", "+.5", "+inf", "NAN",
               "iNfInItY", "[true,false,null]", '"\t"', "\u00e9", '"\u00e9"x']
CJSON_DECODE = ("cjson.decode_invalid_numbers(ARGV[2] == 'on') "
                "local ok, v = pcall(cjson.decode, ARGV[1]) "
                "if type(v) == 'table' then v = v[1] end "
                "return {tostring(ok), type(v), tostring(v)}")

#: Every function of the redis table and the libraries is a Lua function to type().
TYPES = ["local t = {} for _, lib in ipairs({'redis', 'cjson', 'cmsgpack', 'bit', 'struct'}) do "
         "for k, v in pairs(_G[lib]) do t[#t + 1] = lib .. '.' .. k .. '=' .. type(v) end end "
         "table.sort(t) return t",
         "return {type(redis.call), type(redis.pcall), type(cjson.null), type(cjson.new().encode)}",
         "return tostring(redis.call):sub(1, 9)", "local x = type() return x",
         "return {type(nil), type(1), type('x'), type({}), type(type), tostring(nil), "
         "tostring(1.5), tostring(true)}", "local x = tostring() return x"]

#: Scripts that well-known libraries send (redis-py's Lock; a sliding window; a token bucket).
LOCK_ACQUIRE = ("SET", "lock", "token-1", "NX", "PX", "10000")
LIBRARY = [
    # redis-py Lock: release, extend, reacquire (redis/lock.py)
    ("""local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
redis.call('del', KEYS[1])
return 1""", ["lock"], ["token-1"]),
    ("""local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
local expiration = redis.call('pttl', KEYS[1])
if not expiration then
    expiration = 0
end
if expiration < 0 then
    return 0
end

local newttl = ARGV[2]
if ARGV[3] == "0" then
    newttl = ARGV[2] + expiration
end
redis.call('pexpire', KEYS[1], newttl)
return 1""", ["lock"], ["token-1", "5000", "1"]),
    ("""local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
redis.call('pexpire', KEYS[1], ARGV[2])
return 1""", ["lock"], ["token-1", "20000"]),
    ("""local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
redis.call('del', KEYS[1])
return 1""", ["lock"], ["someone-else"]),
    # A sliding-window rate limiter over a sorted set.
    ("""local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, 0, now - window)
local count = redis.call('ZCARD', key)
if count < limit then
    redis.call('ZADD', key, now, ARGV[4])
    redis.call('PEXPIRE', key, window)
    return {1, limit - count - 1}
end
return {0, 0}""", ["rate"], ["1000000", "60000", "3", "req-1"]),
    # A token bucket in a hash.
    ("""local key = KEYS[1]
local rate, capacity, now, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - ts) * rate)
local allowed = tokens >= want
if allowed then tokens = tokens - want end
redis.call('HSET', key, 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', key, math.ceil(capacity / rate) * 2)
return {allowed and 1 or 0, tostring(tokens)}""", ["bucket"], ["0.5", "10", "1000", "3"]),
]


def _run_both(pair, resp3, *command, seed=SEED):
    results = []
    for port, client in pair:
        client.flushall()
        client.script_flush()
        for args in seed:
            client.execute_command(*args)
        conn = RawConn(port, resp3=resp3)
        try:
            reply = conn.call(*command)
        finally:
            conn.close()
        results.append((reply, fingerprint(client)))
    return results


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
@pytest.mark.parametrize("script", CONVERSIONS)
def test_conversions_match_redis(pair, resp3, script):
    ours, theirs = _run_both(pair, resp3, "EVAL", script, 0)
    assert ours == theirs


@pytest.mark.parametrize("script", API + BIT + CJSON)
def test_api_and_sandbox_match_redis(pair, script):
    ours, theirs = _run_both(pair, False, "EVAL", script, 2, "k1", "k2", "a1", "a2")
    assert ours == theirs


@pytest.mark.parametrize("script", TYPES)
def test_library_functions_are_lua_functions(pair, script):
    ours, theirs = _run_both(pair, False, "EVAL", script, 0)
    assert ours == theirs


@pytest.mark.parametrize("invalid", ["on", "off"])
@pytest.mark.parametrize("text", CJSON_TEXTS)
def test_cjson_decode_numbers_and_errors_match_redis(pair, text, invalid):
    ours, theirs = _run_both(pair, False, "EVAL", CJSON_DECODE, 0, text, invalid)
    assert ours == theirs
    ours, theirs = _run_both(pair, False, "EVAL", "return cjson.decode(ARGV[1])", 0, text)
    assert ours == theirs


@pytest.mark.parametrize("readonly", [False, True], ids=["eval", "eval_ro"])
@pytest.mark.parametrize("script,keys,argv", LIBRARY)
def test_library_scripts_match_redis(pair, readonly, script, keys, argv):
    seed = SEED + [LOCK_ACQUIRE, ("ZADD", "rate", "1", "old", "999999", "recent")]
    ours, theirs = _run_both(pair, False, "EVAL_RO" if readonly else "EVAL", script,
                             len(keys), *keys, *argv, seed=seed)
    assert ours == theirs


@pytest.mark.parametrize("command", [
    ("EVAL", "return 1", -1), ("EVAL", "return 1", 5, "a"), ("EVAL", "return 1", "x"),
    ("EVAL", "return 1"), ("EVALSHA", "f" * 40, 0), ("EVALSHA", "fff", 0),
    ("EVALSHA", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", 0),
    ("EVALSHA_RO", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 0),
    ("EVAL_RO", "return redis.call('set', 'a', 'b')", 0),
    ("EVAL_RO", "return redis.call('get', 'str')", 0), ("EVAL_RO", "#!lua\nreturn 1", 0),
    ("EVAL_RO", "#!lua flags=no-writes\nreturn redis.call('get', 'str')", 0),
    ("EVAL_RO", "#!lua flags=allow-oom\nreturn 1", 0),
    ("SCRIPT", "LOAD", "return 1"), ("SCRIPT", "LOAD", "syntax error"),
    ("SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "ff"),
    ("SCRIPT", "EXISTS"), ("SCRIPT", "FLUSH", "x"), ("SCRIPT", "FLUSH", "ASYNC"),
    ("SCRIPT", "FLUSH", "sync"), ("SCRIPT", "FLUSH"), ("SCRIPT", "KILL"), ("SCRIPT", "HELP"),
    ("SCRIPT", "nosuch"), ("SCRIPT",),
], ids=repr)
def test_commands_match_redis(pair, command):
    seed = SEED + [("SCRIPT", "LOAD", "return 1")]
    ours, theirs = _run_both(pair, False, *command, seed=seed)
    assert ours == theirs


#: Scripts run while over maxmemory (1 byte, noeviction).
OOM = ["return redis.call('set', 'a', 'b')", "return redis.call('get', 'str')",
       "return redis.pcall('set', 'a', 'b')",
       "redis.call('del', 'num') return redis.call('set', 'a', 'b')",
       "#!lua\nreturn redis.call('set', 'a', 'b')", "#!lua\nreturn 1",
       "#!lua flags=allow-oom\nreturn redis.call('set', 'a', 'b')",
       "#!lua flags=no-writes\nreturn redis.call('get', 'str')",
       "return redis.call('incr', 'num')", "return redis.call('rpush', 'l', 'w')"]


@pytest.mark.parametrize("script", OOM)
def test_scripts_over_maxmemory_match_redis(pair, script):
    seed = SEED + [("CONFIG", "SET", "maxmemory-policy", "noeviction"),
                   ("CONFIG", "SET", "maxmemory", "1")]
    try:
        ours, theirs = _run_both(pair, False, "EVAL", script, 0, seed=seed)
    finally:
        for _, client in pair:
            client.config_set("maxmemory", 0)
    assert ours == theirs
