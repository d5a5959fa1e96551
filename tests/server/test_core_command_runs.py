"""Run handlers (a run of plain GETs, SETs, counter writes, PFADDs, GEOADDs, SETBITs,
PFCOUNTs or EVALSHAs in one call) against the general path they shortcut: the same
pipelines give the same replies, data, statistics and propagated writes. In-process,
so both paths see identical inputs; the
integration tests in test_core_pipeline.py drive the same code over TCP."""
import hashlib
import random
from typing import Any, List, Tuple

import pytest

from distcache.protocol import encode_command
from distcache.server import eviction, eviction_stamps
from distcache.server.app import CacheServer
from distcache.server.commands.table import COMMANDS
from distcache.server.connection import Client
from distcache.server.types.zset import ZSet

KEYS = [b"a", b"b", b"c", b"list", b"stale"]
RUNS = ("get", "set", "incr", "decr", "incrby", "decrby", "pfadd", "geoadd", "setbit",
        "pfcount")  # the commands with run handlers
#: A setup step: writes spend a credit of 3, then the memory check runs (counted).
CREDIT = [b"credit"]
#: A setup step: every key change is listened to (as WATCH and tracking hear them).
LISTENED = [b"listened"]
#: INCRBY/DECRBY amounts: canonical or not, and the int64 edges.
AMOUNTS = [b"1", b"7", b"-3", b"0", b"05", b"+2", b"x", b"", b"999999999999999999",
           b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808"]
#: GEOADD coordinates: plain, at the limits, out of them, and texts float() reads
#: differently from strtod (spaces, underscores, hex, an underflow, nan).
COORDINATES = [b"13.5", b"-13.25", b"38", b"0", b"-0.0", b"180", b"-180", b"85.05112878",
               b"-85.05112878", b"85.06", b"181", b" 1", b"1 ", b"1_0", b"0x10", b"1e-400",
               b"inf", b"nan", b"NX", b"CH", b"", b"1e1", b"+2.5"]

#: SETBIT offsets: within a value, past its end, far, and what Redis refuses.
OFFSETS = [b"0", b"7", b"8", b"100", b"1000", b"9999999", b"10000000", b"8388607",
           b"4294967296", b"007", b"-1", b"+3", b"x", b""]


class _Transport:
    def __init__(self) -> None:
        self.sent: List[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1)

    def close(self) -> None:
        pass


def _request(rng: random.Random) -> List[bytes]:
    key = rng.choice(KEYS)
    roll = rng.random()
    if roll < 0.4:
        return [rng.choice([b"GET", b"get", b"Get"]), key]
    if roll < 0.7:
        return [rng.choice([b"SET", b"set"]), key, b"v%d" % rng.randrange(100)]
    if roll < 0.78:  # HLLs: a few elements over two keys, or a string key (WRONGTYPE)
        return [b"PFADD", rng.choice([b"h1", b"h1", b"h2", key]),
                *[b"e%d" % rng.randrange(40) for _ in range(rng.choice([1, 1, 1, 3, 0]))]]
    if roll < 0.81:  # geo points: "g1"/"g2" hold sorted sets; other keys give errors
        return [rng.choice([b"GEOADD", b"geoadd"]),
                rng.choice([b"g1", b"g1", b"g2", b"gstale", key]),
                rng.choice(COORDINATES[:3]) if rng.random() < 0.6 else rng.choice(COORDINATES),
                rng.choice(COORDINATES[:3]) if rng.random() < 0.6 else rng.choice(COORDINATES),
                b"p%d" % rng.randrange(6), *([b"1", b"2", b"q"] if rng.random() < 0.05 else [])]
    if roll < 0.83:  # bits: plain offsets and bits, or what the general path refuses
        return [rng.choice([b"SETBIT", b"setbit"]), rng.choice([b"bits", b"bits", b"ttl", key]),
                rng.choice(OFFSETS), rng.choice([b"1", b"1", b"0", b"0", b"2", b"01"])]
    if roll < 0.86:  # HLL counts: cached, stale after a PFADD, missing, wrong type, several
        return [b"PFCOUNT", *rng.choice([[b"h1"], [b"h1"], [b"h2"], [b"nohll"], [key],
                                         [b"h1", b"h2"]])]
    if roll < 0.86:  # counters: "n" holds numbers; other keys give the errors
        return [rng.choice([b"INCR", b"incr", b"DECR"]),
                rng.choice([b"n", b"n", key, b"big", b"ttl", b"small"])]
    if roll < 0.91:
        return [rng.choice([b"INCRBY", b"DECRBY", b"decrby"]),
                rng.choice([b"n", b"n", key, b"big", b"ttl", b"small"]), rng.choice(AMOUNTS)]
    return rng.choice([
        [b"SET", b"n", b"%d" % rng.randrange(-5, 5)], [b"SET", b"big", b"9223372036854775806"],
        [b"SET", b"n", b"007"], [b"SET", b"n", b"0"], [b"SET", b"n", b"-0"], [b"SET", b"n", b"+1"],
        [b"SET", b"n", b" 1"], [b"SET", b"n", b"1_0"], [b"SET", b"n", b"999999999999999999"],
        [b"SET", b"small", b"-9223372036854775807"], [b"SET", b"ttl", b"5", b"EX", b"1000"],
        [b"GET"], [b"GET", key, key], [b"SET", key], [b"SET", key, b"x", b"NX"],
        [b"SET", key, b"y", b"EX", b"100"], [b"SET", key, b"z", b"GET"],
        [b"LPUSH", b"list", b"x"], [b"DEL", key], [b"INCR", b"a"], [b"PING"],
        [b"DEL", b"g1"], [b"ZADD", b"g2", b"5", b"p1"], [b"GEOADD", b"g2", b"1", b"2", b"p0"],
        [b"PEXPIREAT", b"g2", b"99999999999999"],
    ])


def _reads(seed: int, request_of: Any = _request, count: int = 40) -> List[bytes]:
    """Pipelined reads: runs of GET, SET, INCR and DECR broken up by other requests
    (or what ``request_of`` makes)."""
    rng = random.Random(seed)
    reads = []
    for _ in range(count):
        run = []
        for _ in range(rng.randrange(1, 24)):
            request = request_of(rng)
            run += [request] * (rng.randrange(1, 4) if rng.random() < 0.3 else 1)
        reads.append(b"".join(encode_command(r) for r in run))
    return reads


def _session(reads: List[bytes], setup: List[List[bytes]], runs: bool,
             monkeypatch: pytest.MonkeyPatch, names: Tuple[str, ...] = RUNS) -> Tuple[Any, ...]:
    with monkeypatch.context() as patch:
        if not runs:
            # The registered one too: making a server may rebuild the table from it.
            for name in names:
                patch.setattr(COMMANDS[name], "run_handler", None)
                patch.setattr(COMMANDS[name], "base_run_handler", None)
        calls = {name: COMMANDS[name].calls for name in names}
        failed = {name: COMMANDS[name].failed for name in names}
        server = CacheServer("127.0.0.1", 0, appendonly="no", save="")
        server.loading = False
        server.gated = False
        client = Client(server)
        transport = _Transport()
        client.connection_made(transport)
        propagated: List[Tuple[int, List[List[bytes]]]] = []
        server.keyspace.add_propagator(lambda db, cmds: propagated.append((db, list(cmds))))
        checks: List[int] = []
        heard: List[bytes] = []
        for request in setup:
            if request == LISTENED:
                server.keyspace.add_listener("modified", lambda db, key: heard.append(key))
                continue
            if request == CREDIT:  # a memory limit whose full check is counted
                def oom_check(c: Any) -> None:
                    checks.append(server.oom_credit)
                    server.oom_credit = 3
                server.gated = True
                server.oom_credit = 3
                server.oom_check = oom_check
                continue
            client.data_received(encode_command(request))
        db = client.db
        db.data[b"stale"] = b"41"  # a number: a counter run must expire it too
        db.expires[b"stale"] = 1  # long past: a read must expire it
        db.data[b"gstale"] = ZSet()
        db.data[b"gstale"].add(b"p1", 1.0)
        db.expires[b"gstale"] = 1
        transport.sent.clear()
        # The LRU clock moves only between reads, alike in both sessions.
        patch.setattr(eviction, "tick", lambda: eviction_stamps._clock)
        for tick, data in enumerate(reads):
            patch.setattr(eviction_stamps, "_clock", 1000 + tick)
            client.data_received(data)
        ks = server.keyspace
        # EX becomes PXAT from the clock: compare which keys expire, not when.
        propagated = [(db_id, [c[:c.index(b"PXAT") + 1] if b"PXAT" in c else c for c in cmds])
                      for db_id, cmds in propagated]
        return (b"".join(transport.sent), dict(db.data), sorted(db.expires), ks.hits, ks.misses,
                ks.dirty, ks.expired_keys, propagated,
                {name: COMMANDS[name].calls - calls[name] for name in names},
                {name: COMMANDS[name].failed - failed[name] for name in names},
                dict(db.lru or {}), checks, _collapsed(heard))


def _collapsed(keys: List[bytes]) -> List[bytes]:
    """Changes heard, a repeat of the key just heard dropped: a PFADD run signals its
    key once for the requests in a row that changed it, which WATCH and tracking
    (an invalidation per change of a cached key, then untracked) cannot tell apart."""
    return [key for i, key in enumerate(keys) if not i or keys[i - 1] != key]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("setup", [
    [],
    [[b"HELLO", b"3"]],
    [[b"CONFIG", b"SET", b"maxmemory", b"1gb"],
     [b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lru"]],
    [[b"CONFIG", b"SET", b"maxmemory", b"1gb"],
     [b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lfu"]],
    [[b"CONFIG", b"SET", b"maxmemory", b"1"],  # every write over the limit: OOM
     [b"CONFIG", b"SET", b"maxmemory-policy", b"noeviction"]],
    [CREDIT],
    [LISTENED],
], ids=["resp2", "resp3", "lru", "lfu", "oom", "credit", "listened"])
def test_runs_match_the_general_path(seed, setup, monkeypatch):
    reads = _reads(seed)
    general = _session(reads, setup, runs=False, monkeypatch=monkeypatch)
    with_runs = _session(reads, setup, runs=True, monkeypatch=monkeypatch)
    assert with_runs[0] == general[0]  # replies, byte for byte
    assert with_runs == general


#: EVALSHA's scripts: reads, writes (one and two: MULTI/EXEC), errors, redis.pcall,
#: set_repl, setresp, SELECT, a shebang, a table reply, a push that wakes nobody.
SCRIPTS = [b"return redis.call('GET', KEYS[1])", b"return redis.call('SET', KEYS[1], ARGV[1])",
           b"redis.call('INCR', KEYS[1]) return redis.call('INCR', KEYS[1])",
           b"return redis.error_reply('MY oops')", b"return redis.pcall('INCR', KEYS[1])",
           b"redis.set_repl(redis.REPL_NONE) return redis.call('SET', KEYS[1], 'hidden')",
           b"redis.setresp(3) return redis.call('GET', KEYS[1])",
           b"redis.call('SELECT', 1) return redis.call('SET', KEYS[1], 'one')",
           b"#!lua flags=no-writes\nreturn redis.call('GET', KEYS[1])",
           b"return {KEYS[1], ARGV[1], 3.5, true, false}",
           b"return redis.call('LPUSH', 'list', 'x')",
           b"return 1 + nil"]
SHAS = [hashlib.sha1(body).hexdigest().encode() for body in SCRIPTS]


def _script_request(rng: random.Random) -> List[bytes]:
    """An EVALSHA (plain mostly; else one the general path answers) or another request."""
    key = rng.choice(KEYS + [b"n"])
    roll = rng.random()
    if roll < 0.8:
        return [rng.choice([b"EVALSHA", b"evalsha"]), rng.choice(SHAS), b"1", key,
                b"v%d" % rng.randrange(10)]
    if roll < 0.9:
        return rng.choice([[b"EVALSHA", SHAS[0], b"01", key], [b"EVALSHA", b"f" * 40, b"0"],
                           [b"EVALSHA", SHAS[0].upper(), b"1", key], [b"EVALSHA", SHAS[9], b"0"],
                           [b"EVALSHA", SHAS[0], b"2", key],
                           [b"EVALSHA", SHAS[9], b"1", *[b"a"] * 9],
                           [b"EVALSHA"]])
    return rng.choice([[b"GET", key], [b"SET", key, b"x"], [b"DEL", key]])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("setup", [
    [], [[b"HELLO", b"3"]],
    [[b"CONFIG", b"SET", b"maxmemory", b"1"],
     [b"CONFIG", b"SET", b"maxmemory-policy", b"noeviction"]],
    [LISTENED],
], ids=["resp2", "resp3", "oom", "listened"])
def test_evalsha_runs_match_the_general_path(seed, setup, monkeypatch):
    """EVALSHA's run handler (scripting/evalsha.py) against the general path: replies,
    data, propagated effects (MULTI/EXEC per script), statistics, OOM refusals."""
    pytest.importorskip("lupa")
    setup = [[b"SCRIPT", b"LOAD", body] for body in SCRIPTS] + setup
    reads = _reads(seed, _script_request, 30)
    names = ("evalsha", "get", "set", "incr")
    general = _session(reads, setup, runs=False, monkeypatch=monkeypatch, names=names)
    with_runs = _session(reads, setup, runs=True, monkeypatch=monkeypatch, names=names)
    assert with_runs[0] == general[0]  # replies, byte for byte
    assert with_runs == general
    if [b"CONFIG", b"SET", b"maxmemory", b"1"] not in setup:  # (there, writes are refused)
        assert b"MULTI" in str(general[7]).encode()  # two-write scripts were wrapped


def test_runs_are_taken(monkeypatch):
    """The shortcut is really used for plain runs, and stops where they end."""
    taken: List[Tuple[bytes, int]] = []
    # The server first: making one installs the handler layers, which rebuilds
    # every handler from the registered one (a spy set before would be dropped).
    server = CacheServer("127.0.0.1", 0, appendonly="no", save="")
    for name in RUNS:
        handler = COMMANDS[name].run_handler
        assert handler is not None

        def spy(c, commands, start, out, handler=handler):
            ran = handler(c, commands, start, out)
            taken.append((commands[start][0], ran))
            return ran
        monkeypatch.setattr(COMMANDS[name], "run_handler", spy)
    server.loading = False
    server.gated = False
    client = Client(server)
    client.connection_made(_Transport())
    client.data_received(b"".join(encode_command(r) for r in [
        [b"SET", b"k", b"1"], [b"SET", b"k", b"2"], [b"SET", b"k", b"3", b"NX"],
        [b"GET", b"k"], [b"GET", b"k"], [b"get", b"k"], [b"LPUSH", b"l", b"x"],
        [b"GET", b"l"], [b"PING"], [b"INCR", b"n"], [b"INCR", b"n"], [b"INCR", b"l"],
        [b"DECR", b"n"], [b"DECR", b"n"], [b"INCRBY", b"n", b"5"], [b"INCRBY", b"n", b"-2"],
        [b"INCRBY", b"n", b"x"], [b"DECRBY", b"n", b"3"], [b"DECRBY", b"n", b"3"],
        [b"GEOADD", b"g", b"1", b"2", b"a"], [b"GEOADD", b"g", b"3", b"4", b"b"],
        [b"GEOADD", b"g", b"5", b"6", b"c"],
        [b"SETBIT", b"s", b"1", b"1"], [b"SETBIT", b"s", b"2", b"1"], [b"SETBIT", b"s", b"3", b"5"],
        [b"PFCOUNT", b"h"], [b"PFCOUNT", b"h"], [b"GET", b"k"]]))
    # A WRONGTYPE read stops a run, as does a GEOADD creating its key; the last
    # request, alone, is not a run.
    assert taken == [(b"SET", 2), (b"SET", 0), (b"GET", 2), (b"get", 1), (b"GET", 0),
                     (b"INCR", 2), (b"INCR", 0), (b"DECR", 2), (b"INCRBY", 2),
                     (b"INCRBY", 0), (b"DECRBY", 2), (b"GEOADD", 0), (b"GEOADD", 2),
                     (b"SETBIT", 2), (b"SETBIT", 0), (b"PFCOUNT", 2)]
    assert client.db.data[b"n"] == b"-3"


def _twice(*requests: List[bytes]) -> bytes:
    """One read with each request twice in a row (a run of two)."""
    return b"".join(encode_command(r) * 2 for r in requests)


@pytest.mark.parametrize("setup", [[], [[b"CONFIG", b"SET", b"maxmemory", b"1gb"],
                                        [b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lru"]]],
                         ids=["plain", "lru"])
def test_counter_runs_at_the_edges(setup, monkeypatch):
    """Counter runs where the shortcut must stop: int64 overflow either way, a
    value that is not canonical, a key whose TTL is due, a wrong type."""
    reads = [
        _twice([b"INCR", b"stale"]),
        _twice([b"SET", b"n", b"5"], [b"INCRBY", b"n", b"9223372036854775807"]),
        _twice([b"SET", b"n", b"-5"], [b"DECRBY", b"n", b"9223372036854775807"]),
        _twice([b"SET", b"n", b"1"], [b"DECRBY", b"n", b"-9223372036854775808"]),
        _twice([b"SET", b"n", b"999999999999999999"], [b"INCR", b"n"], [b"DECR", b"n"]),
        _twice([b"SET", b"n", b"9223372036854775806"], [b"INCR", b"n"]),
        _twice([b"SET", b"n", b"-9223372036854775807"], [b"DECR", b"n"]),
        _twice([b"SET", b"n", b"0"], [b"INCR", b"n"], [b"SET", b"n", b"007"], [b"INCR", b"n"]),
        _twice([b"SET", b"n", b"-0"], [b"INCR", b"n"], [b"INCRBY", b"n", b"05"],
               [b"INCRBY", b"n", b"+2"], [b"INCRBY", b"n", b"-0"], [b"INCRBY", b"n", b"0"]),
        _twice([b"SET", b"t", b"1", b"PX", b"100000"], [b"INCR", b"t"], [b"INCRBY", b"t", b"2"]),
        _twice([b"LPUSH", b"l", b"x"], [b"INCR", b"l"], [b"INCRBY", b"l", b"1"]),
    ]
    general = _session(reads, setup, runs=False, monkeypatch=monkeypatch)
    with_runs = _session(reads, setup, runs=True, monkeypatch=monkeypatch)
    assert with_runs[0] == general[0]
    assert with_runs == general
    assert b"-ERR increment or decrement would overflow" in general[0]
    assert general[1][b"t"] == b"7" and general[2] == [b"gstale", b"t"]  # (gstale unread)


def _pipelined(port: int, requests: List[List[bytes]]) -> List[Any]:
    """The replies to ``requests`` pipelined after a FLUSHALL (errors as their text)."""
    import redis
    r = redis.Redis(port=port, socket_timeout=10)
    try:
        r.flushall()
        pipe = r.pipeline(transaction=False)
        for request in requests:
            pipe.execute_command(*request)
        got = pipe.execute(raise_on_error=False)
        return [str(g) if isinstance(g, Exception) else g for g in got]
    finally:
        r.close()


def test_counter_runs_match_redis(server, reference_redis):
    """Pipelined counter runs over TCP, edges included, against redis-server."""
    requests: List[List[bytes]] = []
    for value, commands in [
        (b"999999999999999998", [[b"INCR"], [b"DECR"], [b"INCRBY", b"3"]]),
        (b"9223372036854775806", [[b"INCR"], [b"INCRBY", b"-1"]]),
        (b"-9223372036854775807", [[b"DECR"], [b"DECRBY", b"1"]]),
        (b"5", [[b"DECRBY", b"-9223372036854775808"], [b"INCRBY", b"05"], [b"INCRBY", b"+1"],
                [b"INCRBY", b"9223372036854775807"], [b"DECRBY", b"x"], [b"INCR", b"extra"]]),
        (b"007", [[b"INCR"]]), (b" 7", [[b"DECR"]]), (b"0", [[b"INCR"], [b"DECR"]]),
    ]:
        requests.append([b"SET", b"n", value, b"PX", b"100000"])
        for command in commands:
            requests += [command[:1] + [b"n"] + command[1:]] * 3
    requests += [[b"LPUSH", b"l", b"x"]] + [[b"INCR", b"l"]] * 2 + [[b"PTTL", b"n"]]
    replies = [_pipelined(port, requests) for port in (server.port, reference_redis.port)]
    assert replies[0][:-1] == replies[1][:-1]
    assert 90000 < replies[0][-1] <= 100000  # the counter writes kept the TTL


@pytest.mark.parametrize("setup", [[], [[b"CONFIG", b"SET", b"proto-max-bulk-len", b"1mb"]],
                                   [CREDIT]], ids=["plain", "small-limit", "credit"])
def test_setbit_and_pfcount_runs_at_the_edges(setup, monkeypatch):
    """SETBIT runs where the shortcut must stop (the size limit, a TTL due, a wrong
    type, a non-canonical offset or bit) and PFCOUNT runs over a count gone stale,
    a key expiring and several keys."""
    reads = [
        _twice([b"SETBIT", b"b", b"8388607", b"1"], [b"SETBIT", b"b", b"8388608", b"1"]),
        _twice([b"SETBIT", b"b", b"7", b"1"], [b"SETBIT", b"b", b"7", b"0"],
               [b"SETBIT", b"b", b"0", b"0"], [b"SETBIT", b"b", b"08", b"1"]),
        _twice([b"SETBIT", b"stale", b"3", b"1"], [b"SETBIT", b"new", b"3", b"0"]),
        _twice([b"SET", b"t", b"x", b"PX", b"100000"], [b"SETBIT", b"t", b"100", b"1"]),
        _twice([b"LPUSH", b"l", b"x"], [b"SETBIT", b"l", b"1", b"1"], [b"PFCOUNT", b"l"]),
        _twice([b"PFADD", b"h", b"a", b"b"], [b"PFCOUNT", b"h"], [b"PFADD", b"h", b"c"],
               [b"PFCOUNT", b"h"], [b"PFCOUNT", b"h", b"b"], [b"PFCOUNT", b"missing"]),
        _twice([b"SET", b"s", b"not an hll"], [b"PFCOUNT", b"s"]),
    ]
    general = _session(reads, setup, runs=False, monkeypatch=monkeypatch)
    with_runs = _session(reads, setup, runs=True, monkeypatch=monkeypatch)
    assert with_runs[0] == general[0]
    assert with_runs == general
    assert general[0].count(b"-ERR bit offset is not an integer or out of range") \
        == (4 if setup and setup != [CREDIT] else 2)
    assert general[2] == [b"gstale", b"t"]  # (gstale unread)


def test_setbit_and_pfcount_runs_match_redis(server, reference_redis):
    """Pipelined SETBIT and PFCOUNT runs over TCP against redis-server: replies and
    the values' bytes (an HLL's cached count included)."""
    requests: List[List[bytes]] = [[b"PFADD", b"h"] + [b"e%d" % i for i in range(50)]]
    requests += [[b"PFCOUNT", b"h"]] * 3 + [[b"PFADD", b"h", b"x"]] + [[b"PFCOUNT", b"h"]] * 2
    requests += [[b"PFCOUNT", b"h", b"g"]] * 2 + [[b"PFCOUNT", b"nothing"]] * 2
    for offset, bit in [(b"0", b"1"), (b"0", b"1"), (b"13", b"1"), (b"13", b"0"), (b"200", b"0"),
                        (b"9999999", b"1"), (b"01", b"1"), (b"2", b"2"), (b"-1", b"1")]:
        requests += [[b"SETBIT", b"b", offset, bit]] * 2
    requests += [[b"SET", b"s", b"x"], [b"SETBIT", b"s", b"3", b"1"], [b"SETBIT", b"s", b"3", b"1"],
                 [b"PFCOUNT", b"s"], [b"PFCOUNT", b"s"]]
    requests += [[b"GET", b"h"], [b"GET", b"s"], [b"STRLEN", b"b"], [b"BITCOUNT", b"b"]]
    replies = [_pipelined(port, requests) for port in (server.port, reference_redis.port)]
    assert replies[0] == replies[1]
