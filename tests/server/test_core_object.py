"""OBJECT ENCODING / REFCOUNT / IDLETIME / FREQ / HELP: exact replies of Redis 7.0.

Runs against distcache and a real redis-server (when installed); where distcache
answers differently by design (no access stamps without an LRU/LFU maxmemory
policy) the test says so.
"""
from __future__ import annotations

from contextlib import contextmanager

import redis

from core_helpers import (NIL, num, run_steps,  # noqa: F401
                          target_server, tr, traw, wait_until)

ARITY = b"-ERR wrong number of arguments for '%s' command\r\n"
NO_LFU = (b"-ERR An LFU maxmemory policy is not selected, access frequency not tracked. "
          b"Please note that when switching between policies at runtime LRU and LFU data "
          b"will take some time to adjust.\r\n")
IS_LFU = (b"-ERR An LFU maxmemory policy is selected, idle time not tracked. Please note "
          b"that when switching between policies at runtime LRU and LFU data will take "
          b"some time to adjust.\r\n")
SHARED = 2147483647

#: (key, setup call, expected encoding, expected refcount), checked on both servers.
ENCODINGS = [
    ("i", ("SET", "i", "123"), b"int", SHARED),
    ("i0", ("SET", "i0", "0"), b"int", SHARED),
    ("i9999", ("SET", "i9999", "9999"), b"int", SHARED),
    ("i10000", ("SET", "i10000", "10000"), b"int", 1),
    ("ineg", ("SET", "ineg", "-1"), b"int", 1),
    ("imax", ("SET", "imax", "9223372036854775807"), b"int", 1),
    ("imin", ("SET", "imin", "-9223372036854775808"), b"int", 1),
    ("ibig", ("SET", "ibig", "9223372036854775808"), b"embstr", 1),
    ("izero", ("SET", "izero", "0123"), b"embstr", 1),
    ("iplus", ("SET", "iplus", "+1"), b"embstr", 1),
    ("ispace", ("SET", "ispace", " 1"), b"embstr", 1),
    ("float", ("SET", "float", "1.5"), b"embstr", 1),
    ("empty", ("SET", "empty", ""), b"embstr", 1),
    ("s44", ("SET", "s44", "x" * 44), b"embstr", 1),
    ("s45", ("SET", "s45", "x" * 45), b"raw", 1),
    ("incr", ("INCR", "incr"), b"int", SHARED),
    ("list", ("RPUSH", "list", "a"), b"quicklist", 1),
    ("hash", ("HSET", "hash", "f", "v" * 64), b"listpack", 1),
    ("hashlong", ("HSET", "hashlong", "f", "v" * 65), b"hashtable", 1),
    ("hashkey", ("HSET", "hashkey", "f" * 65, "v"), b"hashtable", 1),
    ("h512", ("HSET", "h512", *[x for i in range(512) for x in (f"f{i}", "v")]),
     b"listpack", 1),
    ("h513", ("HSET", "h513", *[x for i in range(513) for x in (f"f{i}", "v")]),
     b"hashtable", 1),
    ("ints", ("SADD", "ints", "1", "-3", "9223372036854775807"), b"intset", 1),
    ("i512", ("SADD", "i512", *map(str, range(512))), b"intset", 1),
    ("i513", ("SADD", "i513", *map(str, range(513))), b"hashtable", 1),
    ("mixed", ("SADD", "mixed", "1", "a"), b"hashtable", 1),
    ("lead0", ("SADD", "lead0", "01"), b"hashtable", 1),
    ("zset", ("ZADD", "zset", "1", "m" * 64), b"listpack", 1),
    ("zlong", ("ZADD", "zlong", "1", "m" * 65), b"skiplist", 1),
    ("z128", ("ZADD", "z128", *[x for i in range(128) for x in (str(i), f"m{i}")]),
     b"listpack", 1),
    ("z129", ("ZADD", "z129", *[x for i in range(129) for x in (str(i), f"m{i}")]),
     b"skiplist", 1),
]


@contextmanager
def policy(client: redis.Redis, name: str, maxmemory: str = "0"):
    """Run with ``maxmemory-policy`` ``name`` (and ``maxmemory``), then restore both."""
    client.config_set("maxmemory", maxmemory)
    client.config_set("maxmemory-policy", name)
    try:
        yield
    finally:
        client.config_set("maxmemory", "0")
        client.config_set("maxmemory-policy", "noeviction")


def test_encoding_and_refcount(tr):
    for key, setup, encoding, refcount in ENCODINGS:
        tr.execute_command(*setup)
        assert tr.object("encoding", key) == encoding, key
        assert tr.object("refcount", key) == refcount, key
    with policy(tr, "allkeys-lru", "100mb"):  # Redis shares no integers then
        tr.set("i", "123")
        assert tr.object("refcount", "i") == 1
    with policy(tr, "allkeys-lfu"):  # ... but it does while maxmemory is 0
        assert tr.object("refcount", "i0") == SHARED


def test_hash_listpack_threshold_matches_hscan(tr):
    """A 200-field hash is a listpack (512 is Redis's built-in default, not the sample
    redis.conf's 128), so HSCAN returns it whole with cursor 0."""
    tr.hset("h", mapping={f"f{i}": "v" for i in range(200)})
    assert tr.object("encoding", "h") == b"listpack"
    cursor, page = tr.hscan("h", 0, count=10)
    assert cursor == 0 and len(page) == 200


def test_missing_key_errors_and_help(traw):
    traw.call("SET", "k", "v")
    run_steps(traw, [
        (("OBJECT", "ENCODING", "nokey"), NIL),
        (("OBJECT", "REFCOUNT", "nokey"), NIL),
        (("OBJECT", "IDLETIME", "nokey"), NIL),
        (("OBJECT", "FREQ", "nokey"), NIL),  # nil before the policy error
        (("OBJECT", "FREQ", "k"), NO_LFU),
        (("object", "encoding", "k"), b"$6\r\nembstr\r\n"),
        (("OBJECT",), ARITY % b"object"),
        (("OBJECT", "ENCODING"), ARITY % b"object|encoding"),
        (("OBJECT", "ENCODING", "a", "b"), ARITY % b"object|encoding"),
        (("OBJECT", "IDLETIME"), ARITY % b"object|idletime"),
        (("OBJECT", "HELP", "x"), ARITY % b"object|help"),
        (("OBJECT", "FOO"), b"-ERR unknown subcommand 'FOO'. Try OBJECT HELP.\r\n"),
        (("OBJECT", "foo", "k"), b"-ERR unknown subcommand 'foo'. Try OBJECT HELP.\r\n"),
        (("COMMAND", "GETKEYS", "OBJECT", "ENCODING", "k"), b"*1\r\n$1\r\nk\r\n"),
    ])
    help_reply = traw.call("OBJECT", "HELP")
    assert help_reply.startswith(b"*15\r\n+OBJECT <subcommand> [<arg> [value] [opt] ...]. "
                                 b"Subcommands are:\r\n+ENCODING <key>\r\n")
    assert help_reply.endswith(b"+HELP\r\n+    Prints this help.\r\n")


def test_resp3_nil(target_server):
    client = redis.Redis(port=target_server.port, protocol=3)
    client.response_callbacks.clear()
    assert client.execute_command("OBJECT", "ENCODING", "nokey") is None
    client.close()


def test_lookups_count_as_hits_not_accesses(tr):
    tr.config_resetstat()
    tr.set("k", "v")
    tr.object("encoding", "k")
    tr.object("encoding", "nokey")
    tr.object("refcount", "k")
    stats = tr.info("stats")
    assert (stats["keyspace_hits"], stats["keyspace_misses"]) == (2, 1)


def test_idletime_under_lru(tr):
    with policy(tr, "allkeys-lru", "100mb"):
        tr.set("read", "v")
        tr.set("idle", "v")
        assert tr.object("idletime", "idle") == 0
        wait_until(lambda: tr.object("idletime", "idle") >= 1, timeout=10, message="idle 1s")
        assert tr.object("idletime", "read") >= 1  # OBJECT itself does not touch a key
        tr.get("read")
        assert tr.object("idletime", "read") == 0
        assert tr.object("idletime", "idle") >= 1
    # Without an LRU maxmemory policy distcache keeps no access times (so that the
    # common configuration pays nothing per access) and answers 0; Redis always
    # keeps them.
    idle = tr.object("idletime", "idle")
    assert (idle == 0) if tr.kind == "distcache" else (idle >= 1)


def test_freq_under_lfu(traw, tr):
    with policy(tr, "allkeys-lfu", "100mb"):
        run_steps(traw, [
            (("SET", "k", "v"), b"+OK\r\n"),
            (("OBJECT", "FREQ", "k"), num(5)),  # LFU_INIT_VAL for a new key
            (("GET", "k"), b"$1\r\nv\r\n"),  # the first access always counts
            (("OBJECT", "FREQ", "k"), num(6)),
            (("OBJECT", "FREQ", "k"), num(6)),  # OBJECT is not an access
            (("OBJECT", "IDLETIME", "k"), IS_LFU),
            (("OBJECT", "IDLETIME", "nokey"), NIL),
        ])
    with policy(tr, "volatile-lfu"):  # the policy decides, even without maxmemory
        assert traw.call("OBJECT", "IDLETIME", "k") == IS_LFU
        freq = int(traw.call("OBJECT", "FREQ", "k")[1:-2])
        # distcache keeps counters only while maxmemory is set: a new key's counter
        assert (freq == 5) if tr.kind == "distcache" else (freq >= 5)


def test_command_table_entries(target_server):
    client = redis.Redis(port=target_server.port, protocol=3)
    client.response_callbacks.clear()
    docs = client.execute_command("COMMAND", "DOCS", "object")[b"object"]
    assert (docs[b"since"], docs[b"group"]) == (b"2.2.3", b"generic")
    assert docs[b"subcommands"][b"object|freq"][b"since"] == b"4.0.0"
    client.close()
    client = redis.Redis(port=target_server.port, protocol=2)
    client.response_callbacks.clear()
    [row] = client.execute_command("COMMAND", "INFO", "object")
    client.close()
    assert row[:6] == [b"object", -2, [], 0, 0, 0]
    subs = {sub[0]: sub for sub in row[9]}
    assert set(subs) == {b"object|encoding", b"object|refcount", b"object|idletime",
                         b"object|freq", b"object|help"}
    assert subs[b"object|encoding"][1:7] == [3, [b"readonly"], 2, 2, 1,
                                             [b"@keyspace", b"@read", b"@slow"]]
    assert subs[b"object|help"][1:7] == [2, [b"loading", b"stale"], 0, 0, 0,
                                         [b"@keyspace", b"@slow"]]
