"""DUMP and RESTORE against a real redis-server 7.0: payloads cross both ways
for every type and encoding, DUMP's bytes are Redis's, errors are Redis's,
TTLs, IDLETIME and FREQ, and what the append-only log is told."""
from __future__ import annotations

import random
import time

import pytest
import redis

from distcache.rdb import crc64
from distcache.server.app import CacheServer
from servers import distcache_server, same_reply, wait_until


@pytest.fixture(scope="module")
def pair(shared_server, reference_redis):
    ours = redis.Redis(port=shared_server.port)
    theirs = redis.Redis(port=reference_redis.port)
    yield ours, theirs
    ours.close()
    theirs.close()


@pytest.fixture
def clients(pair):
    for c in pair:
        c.flushall()
    return pair


def _word(rnd):
    c = rnd.random()
    if c < 0.25:
        return b"%d" % rnd.randint(-(1 << 63), (1 << 63) - 1)
    if c < 0.45:
        return b"%d" % rnd.randint(-70000, 70000)
    if c < 0.55:
        return rnd.choice([b"", b"-0", b"01", b"x" * rnd.randint(20, 300)])
    return bytes(rnd.choice(b"abcdef ") for _ in range(rnd.randint(1, 70)))


def _fill(r, rnd, kind, key, n):
    """The same writes on either server (seeded)."""
    if kind == "string":
        r.set(key, _word(rnd) if n < 50 else _word(rnd) * n)
    elif kind == "list":
        r.rpush(key, *[_word(rnd) for _ in range(n)])
    elif kind == "hash":
        r.hset(key, mapping={_word(rnd): _word(rnd) for _ in range(n)})
    elif kind == "set":
        r.sadd(key, *[(b"%d" % rnd.randint(-10**12, 10**12)) if n % 2 else _word(rnd)
                      for _ in range(n)])
    elif kind == "intset":
        r.sadd(key, *[b"%d" % rnd.randint(-(1 << 63), (1 << 63) - 1) for _ in range(n)])
    elif kind == "zset":
        r.zadd(key, {_word(rnd): rnd.choice([rnd.random() * 1e6, rnd.randint(-9, 9),
                                             float("inf"), float("-inf"), 1e300])
                     for _ in range(n)})
    else:  # an HLL is a string to the codec (made by Redis: PFADD is another branch's)
        r.pfadd(key, *[b"e%d" % i for i in range(n)])
        return r.get(key)


def _content(r, key):
    kind = r.type(key)
    if kind == b"string":
        return r.get(key)
    if kind == b"list":
        return r.lrange(key, 0, -1)
    if kind == b"hash":
        return r.hgetall(key)
    if kind == b"set":
        return r.smembers(key)
    if kind == b"zset":
        return r.zrange(key, 0, -1, withscores=True)
    return kind


#: (kind, sizes): each size sits on one side of an encoding boundary.
CASES = [("string", [1, 100, 1000]), ("list", [1, 50, 3000]), ("hash", [1, 100, 513, 600]),
         ("set", [1, 2, 513, 600]), ("intset", [1, 512, 513]),
         ("zset", [1, 128, 129, 500]), ("hll", [1, 3000])]


@pytest.mark.parametrize("kind, sizes", CASES)
def test_payloads_cross_both_ways(clients, kind, sizes):
    ours, theirs = clients
    for n in sizes:
        key = f"{kind}:{n}"
        hll = _fill(theirs, random.Random(n), kind, key, n)
        if hll is None:
            _fill(ours, random.Random(n), kind, key, n)
        else:
            ours.set(key, hll)
        want = _content(theirs, key)
        assert _content(ours, key) == want
        redis_payload, our_payload = theirs.dump(key), ours.dump(key)
        if theirs.object("encoding", key) != b"hashtable" or n == 1:
            assert our_payload == redis_payload, (kind, n)  # byte for byte
        # Redis -> distcache -> Redis, with a TTL
        ours.restore("from-redis", 100000, redis_payload)
        assert _content(ours, "from-redis") == want
        assert 0 < ours.pttl("from-redis") <= 100000
        theirs.restore("round-trip", 0, ours.dump("from-redis"))
        assert _content(theirs, "round-trip") == want
        # distcache -> Redis
        theirs.restore("from-us", 0, our_payload)
        assert _content(theirs, "from-us") == want
        if kind == "hll":
            assert theirs.pfcount("round-trip") == theirs.pfcount(key)
        for r in clients:
            r.delete("from-redis", "round-trip", "from-us")


def test_hypothesis_values_cross_both_ways(clients):
    from hypothesis import given, settings, strategies as st
    ours, theirs = clients
    word = st.binary(max_size=80) | st.integers(-(1 << 63), (1 << 63) - 1).map(b"%d".__mod__)

    @settings(max_examples=40, deadline=None)
    @given(st.sampled_from(["list", "hash", "set", "zset"]), st.lists(word, min_size=1,
                                                                    max_size=150))
    def check(kind, words):
        theirs.delete("k")
        if kind == "list":
            theirs.rpush("k", *words)
        elif kind == "hash":
            theirs.hset("k", mapping=dict(zip(words, reversed(words))))
        elif kind == "set":
            theirs.sadd("k", *words)
        else:
            theirs.zadd("k", {w: float(len(w)) / 3 for w in words})
        payload = theirs.dump("k")
        ours.restore("k", 0, payload, replace=True)
        assert _content(ours, "k") == _content(theirs, "k")
        if kind in ("list", "zset"):
            assert ours.dump("k") == payload
        theirs.restore("k2", 0, ours.dump("k"), replace=True)
        assert _content(theirs, "k2") == _content(theirs, "k")

    check()


def _payload(body, version=10):
    data = body + version.to_bytes(2, "little")
    return data + crc64(data).to_bytes(8, "little")


def test_errors_are_redis_texts(clients):
    ours, theirs = clients
    for r in clients:
        r.rpush("l", "a", "b")
    good = theirs.dump("l")
    cases = [
        ("RESTORE", "x", "0", "garbage"),
        ("RESTORE", "x", "0", good[:-1] + bytes((good[-1] ^ 1,))),
        ("RESTORE", "x", "0", _payload(good[:-10], version=11)),
        ("RESTORE", "x", "0", _payload(b"\x00\x20ab")),  # truncated string
        ("RESTORE", "lenient", "0", _payload(b"\x00\x05ab")),  # takes trailer bytes: OK
        ("RESTORE", "x", "0", _payload(b"\x12\x81" + (1 << 62).to_bytes(8, "big"))),
        ("RESTORE", "x", "0", _payload(b"\x02\x00")),  # an empty set
        ("RESTORE", "x", "0", _payload(b"\x63\x00")),  # unknown type
        ("RESTORE", "l", "0", good),
        ("RESTORE", "x", "-1", good),
        ("RESTORE", "x", "abc", good),
        ("RESTORE", "x", "0", good, "bogus"),
        ("RESTORE", "x", "0", good, "IDLETIME", "-1"),
        ("RESTORE", "x", "0", good, "IDLETIME"),
        ("RESTORE", "x", "0", good, "FREQ", "256"),
        ("RESTORE", "x", "0", good, "FREQ", "x"),
        ("RESTORE", "x", "0", good, "IDLETIME", "1", "FREQ", "1"),
        ("RESTORE", "x", "0"),
        ("DUMP", "missing"),
        ("DUMP",),
    ]
    for args in cases:
        same_reply(clients, *args)
    assert same_reply(clients, "GET", "lenient")[:2] == b"ab"
    assert ours.exists("x") == 0 and ours.lrange("l", 0, -1) == [b"a", b"b"]
    assert ours.ping()  # still up


def test_replace_absttl_and_expired_ttls(clients):
    ours, theirs = clients
    for r in clients:
        r.set("k", "old")
    payload = theirs.dump("k")
    same_reply(clients, "RESTORE", "k", "0", payload, "REPLACE")
    future = int(time.time() * 1000) + 60000
    same_reply(clients, "RESTORE", "k2", str(future), payload, "ABSTTL")
    assert ours.execute_command("PEXPIRETIME", "k2") == future
    # a deadline in the past: OK, and the key is gone (REPLACE deleted it)
    same_reply(clients, "RESTORE", "k", "1", payload, "ABSTTL", "REPLACE")
    assert same_reply(clients, "EXISTS", "k") == 0
    same_reply(clients, "RESTORE", "gone", "1", payload, "ABSTTL")
    assert same_reply(clients, "EXISTS", "gone") == 0


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu"])
def test_idletime_and_freq_set_the_stamps(clients, policy):
    ours, theirs = clients
    for r in clients:  # distcache keeps stamps only while maxmemory is set too
        r.config_set("maxmemory", "1gb")
        r.config_set("maxmemory-policy", policy)
        r.set("src", "v")
    try:
        payload = theirs.dump("src")
        if policy.endswith("lru"):
            same_reply(clients, "RESTORE", "k", "0", payload, "IDLETIME", "1000")
            assert 1000 <= ours.object("idletime", "k") <= 1002
            assert 1000 <= theirs.object("idletime", "k") <= 1002
        else:
            same_reply(clients, "RESTORE", "k", "0", payload, "FREQ", "100")
            assert ours.object("freq", "k") == theirs.object("freq", "k") == 100
    finally:
        for r in clients:
            r.config_set("maxmemory-policy", "noeviction")
            r.config_set("maxmemory", "0")


def test_redis_py_dump_and_restore(r):
    r.rpush("l", 1, 2, 3)
    payload = r.dump("l")
    assert r.restore("copy", 1500, payload) in (True, b"OK")
    assert r.lrange("copy", 0, -1) == [b"1", b"2", b"3"]
    assert 0 < r.pttl("copy") <= 1500
    with pytest.raises(redis.ResponseError, match="BUSYKEY"):
        r.restore("copy", 0, payload)
    assert r.restore("copy", 0, r.dump("copy"), replace=True) in (True, b"OK")
    assert r.dump("nothing") is None


# -- what the log is told ----------------------------------------------------------------

@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    server = CacheServer("127.0.0.1", 0, save="", appendonly="no",
                         dir=str(tmp_path_factory.mktemp("restore")))
    log = []
    server.keyspace.propagators.append(lambda db, cmds: log.extend(cmds))
    with server:
        yield server, log


def test_relative_ttl_is_logged_as_absttl(embedded):
    server, log = embedded
    r = redis.Redis(port=server.port)
    r.set("src", "value")
    payload = r.dump("src")
    log.clear()
    before = int(time.time() * 1000)
    r.restore("k", 5000, payload)
    wait_until(lambda: log, message="RESTORE propagated")
    (cmd,) = log
    assert cmd[0].upper() == b"RESTORE" and cmd[1] == b"k" and cmd[3] == payload
    assert cmd[4:] == [b"ABSTTL"]
    assert before + 5000 <= int(cmd[2]) <= int(time.time() * 1000) + 5000
    log.clear()
    r.restore("k", 1, payload, replace=True, absttl=True)  # expired: a deletion
    wait_until(lambda: log, message="DEL propagated")
    assert log == [[b"DEL", b"k"]]
    log.clear()
    r.restore("k2", 0, payload)
    wait_until(lambda: log, message="RESTORE propagated")
    assert log == [[b"RESTORE", b"k2", b"0", payload]]
    r.close()


def test_restore_survives_log_replay(tmp_path):
    with distcache_server(tmp_path, "--appendonly", "yes", persistence=True) as proc:
        r = redis.Redis(port=proc.port)
        r.rpush("src", *range(100))
        r.restore("k", 600000, r.dump("src"))
        ttl = r.pttl("k")
    with distcache_server(tmp_path, "--appendonly", "yes", persistence=True) as proc:
        r = redis.Redis(port=proc.port)
        wait_until(lambda: r.exists("k"), message="log replayed")
        assert r.lrange("k", 0, -1) == [b"%d" % i for i in range(100)]
        assert ttl - 60000 < r.pttl("k") <= ttl


def test_resp3_replies_are_the_same(shared_server, reference_redis):
    clients = [redis.Redis(port=p.port, protocol=3) for p in (shared_server, reference_redis)]
    try:
        for r in clients:
            r.delete("z", "copy")
            r.zadd("z", {"a": 1, "b": 2})
        payload = same_reply(clients, "DUMP", "z")
        assert same_reply(clients, "RESTORE", "copy", "0", payload) in (b"OK", "OK", True)
        assert same_reply(clients, "RESTORE", "copy", "0", payload)[0] == "error"
        assert same_reply(clients, "DUMP", "nothing") is None
    finally:
        for r in clients:
            r.delete("z", "copy")
            r.close()


# -- MIGRATE ------------------------------------------------------------------------------

def _migrate_case(source, target_port, *extra):
    try:
        return source.execute_command("MIGRATE", "127.0.0.1", target_port, *extra)
    except redis.ResponseError as exc:
        return f"error: {exc}"


def test_migrate_moves_keys_to_redis_and_back(tmp_path, reference_redis):
    from servers import distcache_server
    theirs = redis.Redis(port=reference_redis.port)
    theirs.flushall()
    with distcache_server(tmp_path, persistence=True) as proc:
        ours = redis.Redis(port=proc.port)
        ours.rpush("list", *range(200))
        ours.hset("hash", mapping={"a": 1})
        ours.set("ttl", "v", px=600_000)
        ours.set("copy-me", "x")
        assert ours.migrate("127.0.0.1", reference_redis.port, ["list", "hash", "ttl"], 3,
                            1000) == b"OK"
        assert ours.exists("list", "hash", "ttl") == 0
        moved = redis.Redis(port=reference_redis.port, db=3)
        assert moved.lrange("list", 0, -1) == [b"%d" % i for i in range(200)]
        assert 590_000 < moved.pttl("ttl") <= 600_000
        assert ours.migrate("127.0.0.1", reference_redis.port, "copy-me", 3, 1000,
                            copy=True) == b"OK"
        assert ours.get("copy-me") == b"x" and moved.get("copy-me") == b"x"
        # The target refuses an existing key without REPLACE, and the key stays here.
        assert "BUSYKEY" in _migrate_case(ours, reference_redis.port, "copy-me", 3, 1000)
        assert ours.get("copy-me") == b"x"
        assert ours.migrate("127.0.0.1", reference_redis.port, "copy-me", 3, 1000,
                            replace=True) == b"OK"
        assert ours.exists("copy-me") == 0
        assert _migrate_case(ours, reference_redis.port, "missing", 3, 1000) == b"NOKEY"
        ours.set("stays", "1")  # nothing listens on port 1: the key stays
        assert "IOERR error or timeout writing" in _migrate_case(ours, 1, "stays", 0, 200)
        assert ours.get("stays") == b"1"
        # And back: a real redis-server MIGRATEs into distcache.
        assert moved.migrate("127.0.0.1", proc.port, ["list", "hash"], 0, 1000) == b"OK"
        assert ours.lrange("list", 0, -1) == [b"%d" % i for i in range(200)]
    log = "".join(p.read_text(errors="replace") for p in (tmp_path / "data").rglob("*.aof"))
    assert "MIGRATE" not in log.upper().replace("MIGRATE KEYS", "")  # DELs, not MIGRATE


def test_migrate_errors_match_redis(shared_server, reference_redis):
    results = []
    for source_port in (shared_server.port, reference_redis.port):
        source = redis.Redis(port=source_port)
        source.flushall()
        source.set("k", "v")
        seen = [_migrate_case(source, 1, "k", 0, 100)]  # nothing listens on port 1
        for extra in (["k", "0", "x"], ["k", "x", "100"], ["k", "0", "100", "BOGUS"],
                      ["k", "0", "100", "KEYS", "k"], ["", "0", "100", "KEYS", "nope"],
                      ["k", "0", "100", "AUTH"]):
            seen.append(_migrate_case(source, 1, *extra))
        results.append(seen)
    assert results[0] == results[1]


def test_migrate_auth2_to_an_acl_protected_redis(reference_redis, shared_server):
    theirs = redis.Redis(port=reference_redis.port)
    theirs.flushall()
    theirs.acl_setuser("mover", enabled=True, passwords=["+pw"], keys=["*"],
                       commands=["+@all"])
    try:
        ours = redis.Redis(port=shared_server.port)
        ours.flushall()
        ours.set("a", "1")
        ours.set("b", "2")
        assert "WRONGPASS" in str(_migrate_case(ours, reference_redis.port, "", 0, 1000,
                                                "AUTH2", "mover", "bad", "KEYS", "a"))
        assert ours.get("a") == b"1"
        # As with Redis: the pipelined RESTOREs ran as the target's default user anyway.
        assert ours.execute_command("MIGRATE", "127.0.0.1", reference_redis.port, "", 0, 1000,
                                    "REPLACE", "AUTH2", "mover", "pw", "KEYS", "a", "b") == b"OK"
        assert theirs.mget("a", "b") == [b"1", b"2"] and ours.exists("a", "b") == 0
        assert ours.command_getkeys("MIGRATE", "h", "1", "", "0", "5", "KEYS", "a", "b") == \
            theirs.command_getkeys("MIGRATE", "h", "1", "", "0", "5", "KEYS", "a", "b")
    finally:
        theirs.acl_deluser("mover")
