"""Differential test: random sequences of string, key and TTL commands go to
distcache and to a real redis-server, and the raw RESP replies must be equal.

Commands whose output depends on the clock or on randomness are left out or
normalized: relative expiries use long TTLs, GT/LT comparisons use fixed
absolute deadlines, TTL is compared as its sign, KEYS is sorted.
"""
from __future__ import annotations

import os
import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_helpers import RawClient
from servers import distcache_server

KEYS = ["a", "b", "c", "n", "f"]
VALUES = ["", "v", "hello", "0", "1", "-1", "10", "9223372036854775807",
          "-9223372036854775808", "1.5", "3.0e3", "0x10", " 1", "abc", "\x00bin\r\n"]
INTS = ["0", "1", "-1", "5", "100", "-100", "9223372036854775807", "-9223372036854775808",
        "abc", "1.5", "01", ""]
FLOATS = ["0", "1.5", "-0.25", "1e3", "0.1", "-1e-3", "10", "abc", "inf", "nan", "1e400",
          "5.0e3", "0x10", ".5"]
NOW = int(time.time())
ABS_SECONDS = [str(NOW + d) for d in (1000, 2000, 3000)] + ["1"]
ABS_MS = [str((NOW + d) * 1000 + 7) for d in (1500, 2500)] + ["1"]
#: What (P)EXPIRETIME reports for the absolute deadlines above.
FIXED_DEADLINES = {
    "EXPIRETIME": {int(x) for x in ABS_SECONDS} | {(int(x) + 500) // 1000 for x in ABS_MS},
    "PEXPIRETIME": {int(x) * 1000 for x in ABS_SECONDS} | {int(x) for x in ABS_MS},
}
REL_SECONDS = ["100", "1000", "5000", "-1", "0", "abc"]

key = st.sampled_from(KEYS)
value = st.sampled_from(VALUES)
integer = st.sampled_from(INTS)


def flags(*options: str) -> st.SearchStrategy:
    return st.lists(st.sampled_from(options), max_size=2)


set_options = st.lists(st.sampled_from([
    ["NX"], ["XX"], ["GET"], ["KEEPTTL"], ["EX", "1000"], ["PX", "2000000"],
    ["EXAT", ABS_SECONDS[0]], ["PXAT", ABS_MS[0]], ["EX", "0"], ["EX", "abc"], ["FOO"],
]), max_size=3).map(lambda parts: [x for part in parts for x in part])

COMMANDS = st.one_of(
    st.tuples(st.just("SET"), key, value).map(list),
    st.tuples(st.just("SET"), key, value, set_options).map(lambda t: [*t[:3], *t[3]]),
    st.tuples(st.just("GET"), key).map(list),
    st.tuples(st.sampled_from(["SETNX", "GETSET", "APPEND"]), key, value).map(list),
    st.tuples(st.sampled_from(["GETDEL", "STRLEN", "TYPE", "INCR", "DECR", "PERSIST"]),
              key).map(list),
    st.tuples(st.just("GETEX"), key, st.sampled_from(
        [[], ["PERSIST"], ["EX", "1000"], ["PX", "0"], ["EXAT", "1"], ["FOO"], ["EX", "x"]])
    ).map(lambda t: ["GETEX", t[1], *t[2]]),
    st.tuples(st.just("SETEX"), key, st.sampled_from(REL_SECONDS), value).map(list),
    st.tuples(st.just("MGET"), st.lists(key, min_size=1, max_size=4)).map(
        lambda t: ["MGET", *t[1]]),
    st.tuples(st.sampled_from(["MSET", "MSETNX"]),
              st.lists(st.tuples(key, value), min_size=1, max_size=3)).map(
        lambda t: [t[0], *[x for pair in t[1] for x in pair]]),
    st.tuples(st.just("GETRANGE"), key, integer, integer).map(list),
    st.tuples(st.just("SETRANGE"), key, st.sampled_from(["0", "1", "3", "10", "-1", "x"]),
              value).map(list),
    st.tuples(st.sampled_from(["INCRBY", "DECRBY"]), key, integer).map(list),
    st.tuples(st.just("INCRBYFLOAT"), key, st.sampled_from(FLOATS)).map(list),
    st.tuples(st.sampled_from(["DEL", "UNLINK", "EXISTS", "TOUCH"]),
              st.lists(key, min_size=1, max_size=3)).map(lambda t: [t[0], *t[1]]),
    st.tuples(st.sampled_from(["RENAME", "RENAMENX"]), key, key).map(list),
    st.tuples(st.just("COPY"), key, key, st.sampled_from(
        [[], ["REPLACE"], ["DB", "1"], ["DB", "1", "REPLACE"], ["DB", "99"]])).map(
        lambda t: ["COPY", t[1], t[2], *t[3]]),
    st.tuples(st.just("MOVE"), key, st.sampled_from(["0", "1", "2", "x"])).map(list),
    st.tuples(st.just("SELECT"), st.sampled_from(["0", "1"])).map(list),
    st.sampled_from([["DBSIZE"], ["KEYS", "*"], ["KEYS", "[ab]*"], ["FLUSHDB"],
                     ["SWAPDB", "0", "1"]]),
    st.tuples(st.just("EXPIRE"), key, st.sampled_from(REL_SECONDS),
              flags("NX", "XX")).map(lambda t: ["EXPIRE", t[1], t[2], *t[3]]),
    st.tuples(st.just("EXPIREAT"), key, st.sampled_from(ABS_SECONDS),
              flags("NX", "XX", "GT", "LT")).map(lambda t: ["EXPIREAT", t[1], t[2], *t[3]]),
    st.tuples(st.just("PEXPIREAT"), key, st.sampled_from(ABS_MS),
              flags("NX", "XX", "GT", "LT")).map(lambda t: ["PEXPIREAT", t[1], t[2], *t[3]]),
    st.tuples(st.sampled_from(["TTL", "PTTL"]), key).map(list),
    st.tuples(st.sampled_from(["EXPIRETIME", "PEXPIRETIME"]), key).map(list),
    # A whole SCAN iteration (client side), compared as a sorted list of keys.
    st.tuples(st.just("SCANALL"), st.sampled_from(
        [[], ["MATCH", "[ab]"], ["COUNT", "2"], ["TYPE", "string"], ["TYPE", "list"]])).map(
        lambda t: ["SCANALL", *t[1]]),
)


def scan_all(client: RawClient, options: list) -> bytes:
    """Every key a full SCAN returns, sorted, as one bulk-string line."""
    cursor, keys = b"0", []
    while True:
        reply = client.call("SCAN", cursor, *options)
        if not reply.startswith(b"*2\r\n"):
            return reply  # an error
        parts = reply.split(b"\r\n")
        cursor = parts[2]
        keys += parts[5:-1:2]
        if cursor == b"0":
            return b" ".join(sorted(keys))


def normalize(cmd: list, reply: bytes) -> bytes:
    name = cmd[0]
    if name in ("TTL", "PTTL") and reply.startswith(b":") and int(reply[1:-2]) > 0:
        return b":<positive>\r\n"  # the exact remaining time depends on the clock
    if name in ("EXPIRETIME", "PEXPIRETIME") and reply.startswith(b":"):
        when = int(reply[1:-2])
        if when > 0 and when not in FIXED_DEADLINES[name]:
            return b":<relative deadline>\r\n"  # set from the server's own clock
    if name == "KEYS":
        head, *items = reply.split(b"\r\n")
        pairs = sorted(zip(items[0::2], items[1::2]))
        return head + b"\r\n" + b"".join(a + b"\r\n" + b + b"\r\n" for a, b in pairs)
    return reply


@pytest.fixture(scope="module", params=[2, 3], ids=["resp2", "resp3"])
def pair(request, reference_redis, tmp_path_factory):
    with distcache_server(tmp_path_factory.mktemp("diff")) as ours:
        with RawClient(ours.port) as mine, RawClient(reference_redis.port) as theirs:
            for client in (mine, theirs):  # both connections speak the same protocol
                assert client.call("HELLO", str(request.param))[:1] in b"*%"
            yield mine, theirs


EXAMPLES = int(os.environ.get("DISTCACHE_DIFF_EXAMPLES", "100"))  # raise it for a long run


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(commands=st.lists(COMMANDS, min_size=1, max_size=40))
def test_replies_match_redis(pair, commands):
    mine, theirs = pair
    for client in pair:
        assert client.call("SELECT", "0") == b"+OK\r\n"
        assert client.call("FLUSHALL") == b"+OK\r\n"
    for i, cmd in enumerate(commands):
        if cmd[0] == "SCANALL":
            expected, got = scan_all(theirs, cmd[1:]), scan_all(mine, cmd[1:])
        else:
            expected = normalize(cmd, theirs.call(*cmd))
            got = normalize(cmd, mine.call(*cmd))
        assert got == expected, f"step {i}: {cmd}\nhistory: {commands[:i]}"
    # Final state: every key's value and TTL class agrees in both databases.
    for db in ("0", "1"):
        for client in pair:
            client.call("SELECT", db)
        for k in KEYS:
            assert mine.call("GET", k) == theirs.call("GET", k), (db, k)
            assert normalize(["TTL"], mine.call("TTL", k)) == \
                normalize(["TTL"], theirs.call("TTL", k))


GLOB_KEYS = ["a", "b", "ab", "abc", "a]", "a[", "a-b", "a\\b", "^", "]", "[", "-", "x*y",
             "x?y", "", "aaa", "\n", "Ab", "é"]


@settings(max_examples=EXAMPLES * 2,
          deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pattern=st.text(alphabet="abc[]^-\\*?xyA", min_size=0, max_size=7))
def test_glob_patterns_match_redis(pair, pattern):
    """KEYS with random glob patterns (classes, ranges, escapes) agrees with Redis."""
    mine, theirs = pair
    seeded = mine.call("DBSIZE") == b":%d\r\n" % len(GLOB_KEYS)
    if not seeded or mine.call("EXISTS", "é") != b":1\r\n":
        for client in pair:
            client.call("SELECT", "0")
            client.call("FLUSHALL")
            client.call("MSET", *[x for k in GLOB_KEYS for x in (k, "1")])
    assert normalize(["KEYS"], mine.call("KEYS", pattern)) == \
        normalize(["KEYS"], theirs.call("KEYS", pattern)), pattern


CORE_COMMANDS = """get set setnx setex psetex getset getdel getex mget mset msetnx append strlen
getrange substr setrange incr decr incrby decrby incrbyfloat del unlink exists type keys scan
randomkey rename renamenx copy move swapdb dbsize flushdb flushall touch expire pexpire expireat
pexpireat ttl pttl expiretime pexpiretime persist ping echo quit auth hello select reset client
info time shutdown config command function script""".split()


def test_command_table_matches_redis(pair):
    """Arity, flags, key positions and ACL categories of the core commands and
    their subcommands, as COMMAND INFO lists them (order included)."""
    ports = [client.sock.getpeername()[1] for client in pair]
    infos = []
    for port in ports:
        client = redis.Redis(port=port, protocol=2)
        client.response_callbacks.clear()
        rows = {}
        for row in client.execute_command("COMMAND", "INFO", *CORE_COMMANDS):
            rows[row[0].decode()] = row
            rows.update((sub[0].decode(), sub) for sub in row[9])
        infos.append(rows)
        client.close()
    ours, reference = infos
    assert set(reference) - set(ours) <= REDIS_ONLY_SUBCOMMANDS
    for name, want in reference.items():
        if name in REDIS_ONLY_SUBCOMMANDS:
            continue
        got = ours[name]
        assert got[1] == want[1], (name, "arity")
        assert got[3:6] == want[3:6], (name, "key positions")
        assert got[2] == want[2], (name, "flags")
        assert got[6] == want[6], (name, "ACL categories")


#: Subcommands distcache does not implement (tracking, pause, scripting...).
REDIS_ONLY_SUBCOMMANDS = set("""client|caching client|getredir client|pause client|reply
client|tracking client|trackinginfo client|unblock client|unpause command|getkeysandflags
function|delete function|dump function|help function|kill function|list function|load
function|restore function|stats script|debug script|exists script|help script|kill
script|load""".split())
