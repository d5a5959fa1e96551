"""Streams against a real redis-server: scripted edge cases, node cuts under
``MAXLEN ~``, and random command sequences (hypothesis), in RESP2 and RESP3,
comparing replies and the final XINFO STREAM FULL."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

#: Reply fields that depend on the clock.
_VOLATILE = {b"idle", b"seen-time"}


def normalize(reply, args=()):
    """A reply with clock-dependent values zeroed."""
    kind, value = reply
    if kind == ":" and value and int(value) > 10 ** 12:
        return (":", b"T")
    if not isinstance(value, list):
        return reply
    items = [normalize(item) for item in value]
    for i in range(len(items) - 1):
        if isinstance(items[i][1], bytes) and items[i][1] in _VOLATILE:
            items[i + 1] = (":", b"V")
    if args and args[0].upper() == "XPENDING" and len(args) > 3:
        items = [(k, v[:2] + [(":", b"V")] + v[3:]) if isinstance(v, list) else (k, v)
                 for k, v in items]
    return (kind, items)


def same(ours, theirs, *args):
    args = [str(a) for a in args]
    expected = normalize(theirs.call(*args), args)
    got = normalize(ours.call(*args), args)
    assert got == expected, f"{args}: distcache {got!r} != redis {expected!r}"
    return got


SCRIPT = """
xadd s 1-1 a b
xadd s 1-* c d
xadd s 5-5 e f
xadd s 5-* e f g h
xadd s 18446744073709551615-18446744073709551614 a b
xadd s 18446744073709551615-* a b
xadd s 18446744073709551615-* a b
xadd s * a b
xdel s 18446744073709551615-18446744073709551615 18446744073709551615-18446744073709551614
xlen s
xrange s - +
xrevrange s + - count 2
xrange s (1-1 + count 1
xrange s (1-1 (5-5
xrange s - + count 0
xrange s - + count -1
xrange s - + COUNT 010
xrange s - + COUNT 99999999999999999999
xrange s - + COUNT 9223372036854775807
xrange s - + COUNT +3
xrange s - + COUNT 1x
xrange s - + COUNT 2 COUNT 1
xrevrange s + - COUNT 1
xrevrange s - + COUNT 1
xrange s - + foo 1
xrange s x +
xrange s 18446744073709551616 +
xrange s (- +
xrange s - (0-0
xrange s 1 5
xrange s +1 5
xrange s 01 5
xrevrange s (5-6 (1-1
xrange nokey - +
xdel s 1-2
xdel s 1-2 x
xdel nokey x
xinfo stream s
xgroup create s g 0
xgroup create s g 0
xgroup create nokey g 0
xgroup create nokey2 g $ mkstream
xgroup create s g2 $ entriesread 3
xgroup create s g3 $ entriesread -2
xgroup create s g3 $ foo
xreadgroup group g c1 count 1 streams s >
xreadgroup group g c1 streams s $
xreadgroup group nog c1 streams s >
xreadgroup group g c1 streams s
xreadgroup group g c1 count 1 streams s nokey > >
xreadgroup streams s >
xreadgroup group g c1 block x streams s >
xreadgroup group g c1 block -1 streams s >
xread streams s >
xread streams s 0 count 1
xread count 1 streams s 0
xread count 1 streams s nokey 0 0
xread count 1 streams s s 0 1-1
xread count 1 noack streams s 0
xread group g c streams s 0
xread count 1 streams s $
xpending s g
xpending s g - + 10
xpending s g idle 100000 - + 10
xpending s g - + 10 c1
xpending s g - + 10 nobody
xpending s g - +
xpending s g idle 1 - + 
xpending s g (1-1 + x
xpending s nog
xpending nokey g
xclaim s g c2 0 1-1 justid
xclaim s g c2 0 1-1 foo
xclaim s g c2 x 1-1
xclaim s nog c2 0 1-1
xclaim s g c2 0 1-1 idle x
xclaim s g c2 0 1-1 retrycount 7 lastid 5-5
xclaim s g c4 0 5-5 force
xreadgroup group g c1 count 5 streams s >
xdel s 5-5
xreadgroup group g c4 streams s 0
xautoclaim s g c3 0 0
xautoclaim s g c3 0 0 count 0
xautoclaim s g c3 0 0 justid count 5
xautoclaim s g c3 0 0 count 1
xautoclaim s g c3 0 (0-0 foo
xautoclaim s nog c3 0 0
xinfo groups s
xinfo consumers s g
xinfo consumers s nog
xinfo stream s full
xinfo stream s full count 1
xinfo stream s full count 0
xinfo stream s fool
xinfo stream nokey
xack s g 1-1
xack s g 1-1 x
xack s nog 1-1
xack s g 5-6 5-5 1-2
xtrim s maxlen 1
xtrim s maxlen ~ 0
xtrim s maxlen = 0 limit 5
xtrim s minid 5-5
xtrim s
xtrim s foo 1
xtrim s limit 10
xtrim s maxlen -1
xtrim s maxlen 1 minid 1
xtrim s maxlen ~ 1 limit -1
xadd s 0-1 a b
xadd s 0-0 a b
xadd s maxlen 1 minid 1 * a b
xadd s a
xadd s 9-1 a
xadd nokey3 nomkstream * a b
xadd s nomkstream maxlen = 2 20-1 a b
xadd s maxlen ~ -1 * a b
xadd s maxlen ~ x * a b
xadd s maxlen ~ 5 * a
set strkey x
xadd strkey maxlen ~ 5 * a b
xadd s minid ~ 20-1 limit 10 21-1 a b
xsetid s 1-1
xsetid s 99-1
xsetid s 99-1 entriesadded 1
xsetid s 99-1 maxdeletedid 100-1
xsetid s 99-1 entriesadded -1
xsetid s 99-1 foo
xsetid nokey 1-1
xinfo stream s
type s
object encoding s
xgroup setid s g 0
xgroup setid s g $ entriesread 1
xgroup setid s g $ entriesread x
xgroup setid s g $ foo 1
xgroup setid s nog 0
xgroup createconsumer s g c9
xgroup createconsumer s g c9
xgroup createconsumer s nog c9
xgroup delconsumer s g c9
xgroup delconsumer s g c1
copy s scopy
xadd scopy 1000-1 a b
xack scopy g 5-6
xlen s
xinfo stream scopy full
xpending s g
rename scopy s3
type s3
pexpire s3 100000
move s3 1
exists s3
xgroup destroy s g
xgroup destroy s g
xgroup help
xinfo help
xgroup foo
xinfo foo
xgroup
set str x
xadd str * a b
xrange str - +
xread streams str 0
xinfo stream str
xgroup create str g $
"""


@pytest.mark.parametrize("protocol", [2, 3])
def test_scripted_edges_match_redis(clients, protocol):
    ours, theirs = clients(protocol)
    assert ours.call("FLUSHALL") == theirs.call("FLUSHALL")
    for line in SCRIPT.strip().split("\n"):
        same(ours, theirs, *line.split())
    same(ours, theirs, "XINFO", "STREAM", "s", "FULL")


@pytest.mark.parametrize("size", [1, 30, 300, 1000])
def test_node_cuts_and_approximate_trims_match_redis(clients, size):
    """Nodes are cut where Redis cuts its listpacks, so ``~`` trims the same entries."""
    ours, theirs = clients(2)
    assert ours.call("FLUSHALL") == theirs.call("FLUSHALL")
    for client in (ours, theirs):
        for i in range(1, 700):
            fields = ["f", "x" * size] if i % 3 else ["f", str(i), "other", "y" * (i % 50)]
            client.send("XADD", "s", f"{i}-1", *fields)
        for _ in range(1, 700):
            client.read()
    same(ours, theirs, "XINFO", "STREAM", "s")
    same(ours, theirs, "XDEL", "s", "5-1", "6-1", "300-1")
    same(ours, theirs, "XTRIM", "s", "MAXLEN", "~", "550")
    same(ours, theirs, "XTRIM", "s", "MINID", "~", "200-1")
    same(ours, theirs, "XTRIM", "s", "MAXLEN", "~", "10", "LIMIT", "150")
    same(ours, theirs, "XADD", "s", "MAXLEN", "~", "100", "900-1", "a", "b")
    same(ours, theirs, "XLEN", "s")
    same(ours, theirs, "XINFO", "STREAM", "s")
    same(ours, theirs, "XRANGE", "s", "-", "+", "COUNT", "3")
    same(ours, theirs, "XTRIM", "s", "MINID", "=", "850-1")
    same(ours, theirs, "XINFO", "STREAM", "s", "FULL", "COUNT", "5")


def test_xadd_maxlen_approx_with_auto_ids_trims_as_redis(clients):
    """``XADD key MAXLEN ~ n * field value`` (its own fast path) keeps what Redis keeps."""
    ours, theirs = clients(2)
    assert ours.call("FLUSHALL") == theirs.call("FLUSHALL")
    for client in (ours, theirs):
        for i in range(450):
            client.send("XADD", "s", "MAXLEN", "~", "150", "*", "f", f"v{i}")
        replies = [client.read() for _ in range(450)]
        assert all(kind == "$" for kind, _ in replies)
    same(ours, theirs, "XLEN", "s")
    for client in (ours, theirs):
        client.send("XADD", "s", "MAXLEN", "~", "0", "*", "f", "last")
        assert client.read()[0] == "$"
    assert same(ours, theirs, "XLEN", "s") == (":", b"0")  # every node, the new one too


@pytest.mark.parametrize("max_entries,max_bytes", [(10, 4096), (1, 4096), (3, 0), (0, 300),
                                                   (200, 8192), (7, 120)])
def test_node_limits_match_redis(clients, max_entries, max_bytes):
    """stream-node-max-entries/-bytes cut nodes where Redis cuts its listpacks: ``~``
    trims remove the same entries, and XINFO's radix-tree-keys/-nodes agree."""
    ours, theirs = clients(2)
    both = (ours, theirs)
    try:
        for client in both:
            assert client.call("FLUSHALL") == ("+", b"OK")
            client.call("CONFIG", "SET", "stream-node-max-entries", str(max_entries))
            client.call("CONFIG", "SET", "stream-node-max-bytes", str(max_bytes))
            for i in range(1, 400):  # ids spread over bytes, so the radix tree branches
                ms = i * 7 + (i % 5) * 100_000 * (i // 97)
                fields = ["f", "v" * (i % 40)] if i % 4 else ["g", str(i), "h", "-12"]
                client.send("XADD", "s", f"{ms}-{i % 3}", *fields)
            for _ in range(1, 400):
                client.read()
        same(ours, theirs, "XINFO", "STREAM", "s")
        same(ours, theirs, "XDEL", "s", "7-1", "14-2", "21-0", "2100-0")
        same(ours, theirs, "XTRIM", "s", "MAXLEN", "~", "350")
        same(ours, theirs, "XINFO", "STREAM", "s")
        same(ours, theirs, "XTRIM", "s", "MINID", "~", "1500")
        same(ours, theirs, "XTRIM", "s", "MAXLEN", "~", "20", "LIMIT", "45")
        for n in range(5):
            same(ours, theirs, "XADD", "s", "MAXLEN", "~", "250", f"{10 ** 7 + n}-1", "a", "b")
        same(ours, theirs, "XTRIM", "s", "MAXLEN", "=", "240")
        same(ours, theirs, "XINFO", "STREAM", "s", "FULL", "COUNT", "3")
        same(ours, theirs, "XRANGE", "s", "-", "+", "COUNT", "4")
    finally:
        for client in both:
            client.call("CONFIG", "SET", "stream-node-max-entries", "100")
            client.call("CONFIG", "SET", "stream-node-max-bytes", "4096")
            client.call("FLUSHALL")


# -- random sequences ------------------------------------------------------------------

KEYS = ["s1", "s2"]
_ids = st.builds(lambda ms, seq: f"{ms}-{seq}", st.integers(0, 12), st.integers(0, 3))
_range_ids = st.one_of(_ids, st.sampled_from(["-", "+", "(3-1", "(0-0", "5", "(12-3"]))
_key = st.sampled_from(KEYS)
_group = st.sampled_from(["g1", "g2"])
_consumer = st.sampled_from(["c1", "c2", "c3"])
_count = st.sampled_from([[], ["COUNT", "1"], ["COUNT", "3"], ["COUNT", "0"]])
_trim = st.one_of(
    st.builds(lambda op, n: ["MAXLEN", *op, str(n)], st.sampled_from([[], ["="], ["~"]]),
              st.integers(0, 6)),
    st.builds(lambda op, i: ["MINID", *op, i], st.sampled_from([[], ["="], ["~"]]), _ids))

COMMANDS = st.one_of(
    st.builds(lambda k, trim, i, n: ["XADD", k, *trim, i, "f", str(n)], _key,
              st.one_of(st.just([]), _trim), st.one_of(_ids, st.builds(
                  lambda ms: f"{ms}-*", st.integers(0, 12))), st.integers(0, 9)),
    st.builds(lambda k, a, b, c: ["XRANGE", k, a, b, *c], _key, _range_ids, _range_ids, _count),
    st.builds(lambda k, a, b, c: ["XREVRANGE", k, a, b, *c], _key, _range_ids, _range_ids,
              _count),
    st.builds(lambda k, ids: ["XDEL", k, *ids], _key, st.lists(_ids, min_size=1, max_size=3)),
    st.builds(lambda k, t: ["XTRIM", k, *t], _key, _trim),
    st.builds(lambda k: ["XLEN", k], _key),
    st.builds(lambda k, g, i, mk: ["XGROUP", "CREATE", k, g, i, *mk], _key, _group,
              st.one_of(_ids, st.just("$")), st.sampled_from([[], ["MKSTREAM"]])),
    st.builds(lambda k, g, i: ["XGROUP", "SETID", k, g, i], _key, _group,
              st.one_of(_ids, st.just("$"))),
    st.builds(lambda k, g, c: ["XGROUP", "DELCONSUMER", k, g, c], _key, _group, _consumer),
    st.builds(lambda k, g, c: ["XGROUP", "CREATECONSUMER", k, g, c], _key, _group, _consumer),
    st.builds(lambda k, g: ["XGROUP", "DESTROY", k, g], _key, _group),
    st.builds(lambda g, c, cnt, noack, k, i: ["XREADGROUP", "GROUP", g, c, *cnt, *noack,
                                              "STREAMS", k, i],
              _group, _consumer, _count, st.sampled_from([[], ["NOACK"]]), _key,
              st.one_of(st.just(">"), st.just(">"), _ids)),
    st.builds(lambda cnt, k, i: ["XREAD", *cnt, "STREAMS", k, i], _count, _key,
              st.one_of(_ids, st.just("$"))),
    st.builds(lambda k, g, ids: ["XACK", k, g, *ids], _key, _group,
              st.lists(_ids, min_size=1, max_size=3)),
    st.builds(lambda k, g: ["XPENDING", k, g], _key, _group),
    st.builds(lambda k, g, a, b, n, c: ["XPENDING", k, g, a, b, str(n), *c], _key, _group,
              _range_ids, _range_ids, st.integers(0, 5), st.sampled_from([[], ["c1"], ["c2"]])),
    st.builds(lambda k, g, c, ids, opts: ["XCLAIM", k, g, c, "0", *ids, *opts], _key, _group,
              _consumer, st.lists(_ids, min_size=1, max_size=3),
              st.sampled_from([[], ["JUSTID"], ["FORCE"], ["RETRYCOUNT", "5"],
                               ["LASTID", "9-9"], ["FORCE", "JUSTID"]])),
    st.builds(lambda k, g, c, start, cnt, j: ["XAUTOCLAIM", k, g, c, "0", start, *cnt, *j],
              _key, _group, _consumer, _ids, st.sampled_from([[], ["COUNT", "1"],
                                                              ["COUNT", "2"]]),
              st.sampled_from([[], ["JUSTID"]])),
    st.builds(lambda k: ["XINFO", "GROUPS", k], _key),
    st.builds(lambda k, g: ["XINFO", "CONSUMERS", k, g], _key, _group),
    st.builds(lambda k: ["XINFO", "STREAM", k], _key),
    st.builds(lambda k, i: ["XSETID", k, i], _key, _ids),
    st.builds(lambda k: ["DEL", k], _key),
)


@settings(max_examples=examples(300), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(protocol=st.sampled_from([2, 3]), commands=st.lists(COMMANDS, min_size=1, max_size=40))
def test_random_sequences_match_redis(clients, protocol, commands):
    ours, theirs = clients(protocol)
    assert ours.call("FLUSHALL") == theirs.call("FLUSHALL")
    for args in commands:
        same(ours, theirs, *args)
    for key in KEYS:
        same(ours, theirs, "XINFO", "STREAM", key, "FULL", "COUNT", "0")


def test_keyspace_commands_see_streams(clients):
    ours, _ = clients(2)
    ours.call("FLUSHALL")
    ours.call("XADD", "s", "1-1", "a", "b")
    ours.call("SET", "str", "x")
    assert ours.call("SCAN", "0", "TYPE", "stream") == ("*", [("$", b"0"), ("*", [("$", b"s")])])
    assert int(ours.call("MEMORY", "USAGE", "s")[1]) > 0
    assert ours.call("SORT", "s")[0] == "-"


def test_dump_restore_round_trips_with_redis(clients):
    """A stream DUMPed by either server RESTOREs in the other to the same stream,
    groups, pending entries and counters (RDB type 19, as Redis 7.0 writes)."""
    ours, theirs = clients(2)
    for client in (ours, theirs):
        client.call("FLUSHALL")
        for i in range(1, 350):
            client.call("XADD", "s", f"{i}-1", "f", f"v{i}", *(["x", "7"] if i % 7 == 0 else []))
        client.call("XDEL", "s", "5-1", "100-1")
        client.call("XGROUP", "CREATE", "s", "g", "0")
        client.call("XREADGROUP", "GROUP", "g", "alice", "COUNT", "3", "STREAMS", "s", ">")
        client.call("XREADGROUP", "GROUP", "g", "bob", "COUNT", "2", "STREAMS", "s", ">")
        client.call("XGROUP", "CREATE", "s", "empty", "$", "ENTRIESREAD", "5")
    from_redis = theirs.call("DUMP", "s")[1]
    from_ours = ours.call("DUMP", "s")[1]
    assert ours.call("RESTORE", "copy", "0", from_redis) == ("+", b"OK")
    assert theirs.call("RESTORE", "copy", "0", from_ours) == ("+", b"OK")

    def state(client, key):
        reply = normalize(client.call("XINFO", "STREAM", key, "FULL", "COUNT", "0"))
        # radix-tree-keys and -nodes: a restored stream's nodes hold no deleted entries
        return [item for i, item in enumerate(reply[1]) if i not in (2, 3, 4, 5)]
    assert state(ours, "copy") == state(theirs, "s") == state(theirs, "copy") == state(ours, "s")
    assert ours.call("RESTORE", "bad", "0", from_redis[:40] + b"\xff" + from_redis[41:]) \
        == ("-", b"ERR DUMP payload version or checksum are wrong")
