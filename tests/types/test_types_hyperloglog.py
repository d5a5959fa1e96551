"""HyperLogLog: the same bytes as Redis. Random PFADD/PFCOUNT/PFMERGE sequences on
distcache and a real redis-server must give the same replies and the same GET of
every HLL key (sparse, dense, the promotion between, the cached count), values
move between the servers, and corrupt values get INVALIDOBJ."""
from __future__ import annotations

import random

import pytest
import redis

from servers import same_reply
from timing import assert_fast
from test_types_propagation import embedded, logged, wait_for  # noqa: F401
from types_resp import RawClient, encode  # noqa: F401


@pytest.fixture
def pair(r, reference_redis):
    theirs = redis.Redis(port=reference_redis.port, socket_timeout=30)
    theirs.flushall()
    yield r, theirs
    theirs.close()


@pytest.mark.parametrize("seed", range(6))
def test_random_sequences_give_redis_bytes(pair, seed):
    rng = random.Random(seed)
    for key in ("a", "b"):
        size = rng.choice([1, 50, 400, 1500, 3000, 8000])
        for start in range(0, size, 700):
            elements = [b"%d-%d" % (rng.getrandbits(40), i)
                        for i in range(min(700, size - start))]
            same_reply(pair, "PFADD", key, *elements)
            same_reply(pair, "GET", key)
            if rng.random() < 0.5:
                same_reply(pair, "PFCOUNT", key)
                same_reply(pair, "GET", key)  # the cached count, written back
    same_reply(pair, "PFCOUNT", "a", "b", "missing")
    same_reply(pair, "PFMERGE", "m", "a", "b")
    same_reply(pair, "GET", "m")
    same_reply(pair, "PFCOUNT", "m")
    same_reply(pair, "PFDEBUG", "ENCODING", "m")
    same_reply(pair, "PFDEBUG", "GETREG", "a")
    same_reply(pair, "GET", "a")
    same_reply(pair, "PFMERGE", "a", "b")  # the destination is a source too
    same_reply(pair, "GET", "a")


def test_one_element_at_a_time_gives_redis_bytes(pair):
    """PFADD of one element per command (the parsed sparse body and the dense value
    are reused between commands), on two keys that share their bodies, one of them
    changed behind the parse (SETRANGE) once: every step matches Redis's bytes."""
    rng = random.Random(7)
    elements = [b"element:%012d" % rng.randrange(10**6) for _ in range(2500)]
    for i, element in enumerate(elements):
        for client in pair:
            pipe = client.pipeline(transaction=False)
            pipe.pfadd("one", element)
            pipe.pfadd("twin", element)
            if i == 300:
                pipe.setrange("twin", 20, b"\x00")  # a sparse opcode edited by hand
            pipe.execute()
        if i % 250 == 0 or i == 300:
            for key in ("one", "twin"):
                same_reply(pair, "GET", key)
                same_reply(pair, "PFDEBUG", "ENCODING", key)
    same_reply(pair, "PFCOUNT", "one")
    same_reply(pair, "GET", "one")
    same_reply(pair, "PFADD", "one", elements[0])  # nothing changes: 0, same bytes
    same_reply(pair, "GET", "one")


def _pipelined(client, commands):
    """Send ``commands`` in one write (so the server runs them as one batch, where
    PFADD's run handler applies); their replies, errors as ("error", text)."""
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return [("error", str(r)) if isinstance(r, redis.ResponseError) else r
            for r in pipe.execute(raise_on_error=False)]


def test_pipelined_pfadd_runs_match_redis(pair):
    """Batches of PFADDs as a pipeline sends them (runs on one key, keys switching,
    several elements, elements of mixed lengths, duplicates, a key with a TTL, a
    missing element, a wrong type and a corrupt value between them): the same
    replies, bytes and TTLs as redis-server's."""
    rng = random.Random(11)
    ours, theirs = pair
    for client in pair:
        client.set("str", "x")
        client.set("bad", b"HYLL\x01" + bytes(11) + b"\x40")
        client.pfadd("ttl", "a")
        client.expire("ttl", 1000)
    for batch in range(40):
        commands = []
        for _ in range(rng.choice([1, 5, 16, 64])):
            key = rng.choice(["a", "a", "a", "b", "ttl", "new%d" % batch, "str", "bad"])
            n = rng.choice([1, 1, 1, 1, 2, 7, 0])
            elements = [b"element:%012d" % rng.randrange(3000) if rng.random() < 0.8
                        else b"x" * rng.randrange(40) for _ in range(n)]
            commands.append(["PFADD", key, *elements])
        assert _pipelined(ours, commands) == _pipelined(theirs, commands), batch
        if batch % 5 == 4:
            for key in ("a", "b", "ttl", "new%d" % batch):
                same_reply(pair, "GET", key)
                same_reply(pair, "PFDEBUG", "ENCODING", key)
            assert 0 < ours.ttl("ttl") <= 1000
    same_reply(pair, "PFCOUNT", "a", "b", "ttl")


def test_pipelined_pfadds_propagate_those_that_changed(logged):
    """PFADDs in one read (the run handler) reach the propagators in order, each
    that replied 1 and none that replied 0 or failed; the value is then what the
    replies say."""
    client, log, _ = logged
    client.call("SET", "str", "x")
    log.clear()
    batch = [["PFADD", "h", "e%d" % (i % 30)] for i in range(60)]
    batch[10] = ["PFADD", "str", "a"]
    batch[20] = ["PFADD", "other", "a", "b"]
    batch[40] = ["PFADD", "h", "e1", "new"]
    client.sock.sendall(b"".join(encode(args) for args in batch))
    replies = [client.read() for _ in batch]
    assert replies[10][0] == "-" and replies[10][1].startswith(b"WRONGTYPE")
    expected = [[a.encode() for a in args] for args, reply in zip(batch, replies)
                if reply == (":", b"1")]
    assert len(expected) > 25  # about e0..e29 but e10 once each, "other", and "new"
    wait_for(log, len(expected))
    assert log == expected
    assert client.call("PFCOUNT", "h") == (":", b"30")


def test_sparse_limit_follows_hll_sparse_max_bytes(pair):
    for client in pair:
        client.config_set("hll-sparse-max-bytes", "200")
    try:
        for n in (10, 40, 80):
            same_reply(pair, "PFADD", "h", *[b"e%d" % i for i in range(n)])
            same_reply(pair, "PFDEBUG", "ENCODING", "h")
            same_reply(pair, "GET", "h")
    finally:
        for client in pair:
            client.config_set("hll-sparse-max-bytes", "3000")


def test_debug_commands_and_errors_match(pair):
    same_reply(pair, "PFADD", "h", "a", "b", "c")
    same_reply(pair, "PFADD", "h")
    same_reply(pair, "PFADD", "empty")
    same_reply(pair, "GET", "empty")
    same_reply(pair, "PFDEBUG", "DECODE", "h")
    same_reply(pair, "PFDEBUG", "TODENSE", "h")
    same_reply(pair, "PFDEBUG", "DECODE", "h")
    same_reply(pair, "PFDEBUG", "TODENSE", "h")
    same_reply(pair, "PFDEBUG", "bogus", "h")
    same_reply(pair, "PFDEBUG", "ENCODING", "missing")
    same_reply(pair, "SET", "s", "not an hll")
    same_reply(pair, "PFADD", "s", "x")
    same_reply(pair, "PFCOUNT", "s")
    same_reply(pair, "PFCOUNT", "h", "s")
    same_reply(pair, "PFMERGE", "s", "h")
    same_reply(pair, "LPUSH", "l", "x")
    same_reply(pair, "PFADD", "l", "x")
    same_reply(pair, "PFSELFTEST")


def test_values_move_between_redis_and_distcache(pair):
    ours, theirs = pair
    for size in (30, 5000):
        theirs.pfadd("from-redis", *range(size))
        ours.set("from-redis", theirs.get("from-redis"))
        ours.pfadd("from-redis", "extra")
        theirs.pfadd("from-redis", "extra")
        assert ours.get("from-redis") == theirs.get("from-redis")
        assert ours.pfcount("from-redis") == theirs.pfcount("from-redis")
        ours.pfadd("from-us", *range(size))
        theirs.set("from-us", ours.get("from-us"))
        assert theirs.pfcount("from-us") == ours.pfcount("from-us")
        for client in pair:
            client.delete("from-redis", "from-us")


def test_corrupt_values_get_invalidobj_and_the_server_lives(pair):
    ours, theirs = pair
    theirs.pfadd("h", *range(100))
    good = theirs.get("h")
    corrupt = [good[:16] + b"\x7f\xff" * 3,          # sparse runs past 16384 registers
               good[:16] + b"\x00",                   # sparse runs short of them
               good[:16] + b"\x40",                   # a truncated XZERO
               good[:-5]]
    for value in corrupt:
        for client in pair:
            client.set("bad", value)
        assert same_reply(pair, "PFCOUNT", "bad")[0] == "error"
        with pytest.raises(redis.ResponseError, match="INVALIDOBJ"):
            ours.pfadd("bad", *range(50))
        with pytest.raises(redis.ResponseError, match="INVALIDOBJ"):
            ours.pfmerge("dest", "bad")
    dense = b"HYLL\x00" + bytes(11) + bytes(12288)
    ours.set("short-dense", dense[:-1])
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        ours.pfcount("short-dense")
    assert ours.ping()


def test_large_elements_and_merges_stay_fast(r):
    r.pfadd("big", b"x" * (4 << 20))
    sources = [f"s{i}" for i in range(20)]
    for i, key in enumerate(sources):
        r.pfadd(key, *[f"{i}:{j}" for j in range(600)])  # sparse, near the limit

    def merge_and_count() -> None:
        assert r.pfmerge("sum", *sources)
        assert abs(r.pfcount("sum") - 12_000) < 12_000 * 0.03
    assert_fast(merge_and_count, 2.0, "PFMERGE + PFCOUNT", tries=3)


def test_merges_and_counts_over_many_keys_match_redis_and_are_fast(pair):
    """A short request naming many HLLs (or one HLL many times) once cost a Python
    loop per register per key: 1,000 names took seconds of the event loop."""
    ours, _ = pair
    for i in range(40):
        same_reply(pair, "PFADD", f"d{i}", *[f"{i}:{j}" for j in range(3000)])  # dense
    same_reply(pair, "PFADD", "sparse", *range(100))
    names = [f"d{i}" for i in range(40)] * 25 + ["sparse"] * 200 + ["missing"]

    def requests() -> None:
        ours.execute_command("PFCOUNT", *names)
        ours.execute_command("PFMERGE", "m", *names)
        ours.execute_command("PFMERGE", "s", *["sparse"] * 1000)
    assert_fast(requests, 1.0, "PFCOUNT / PFMERGE of 1,201 names", tries=3)
    same_reply(pair, "PFCOUNT", *names)
    same_reply(pair, "PFMERGE", "m", *names)
    same_reply(pair, "GET", "m")
    same_reply(pair, "PFMERGE", "s", *["sparse"] * 1000)
    same_reply(pair, "GET", "s")
    same_reply(pair, "PFCOUNT", "m", "s")
    same_reply(pair, "PFMERGE", "d0", "d1", "sparse")  # a dense destination, with its count
    same_reply(pair, "GET", "d0")


def test_dense_runs_single_adds_counts_and_other_writes_match_redis(pair):
    """A dense HLL edited through PFADD's kept copy and unpacked registers (runs of
    16, single PFADDs, PFCOUNT writing its count back, PFMERGE, SETRANGE and RENAME
    changing or moving the value behind it): every step gives Redis's bytes."""
    rng = random.Random(5)
    ours, theirs = pair
    for client in pair:  # dense from the start
        client.pfadd("d", *[b"seed:%d" % i for i in range(3000)])
    for step in range(60):
        commands = [["PFADD", "d", b"element:%012d" % rng.randrange(100000)]
                    for _ in range(rng.choice([1, 2, 8, 16, 16]))]
        if step % 7 == 3:
            commands.append(["PFCOUNT", "d"])
        assert _pipelined(ours, commands) == _pipelined(theirs, commands), step
        if step % 5 == 0:
            same_reply(pair, "PFADD", "d", b"one:%d" % step)  # one, not in a run
        if step == 20:
            same_reply(pair, "SETRANGE", "d", 100, b"\x3f")
        if step == 30:
            same_reply(pair, "PFMERGE", "d", "other")
            same_reply(pair, "PFADD", "other", *[b"o%d" % i for i in range(50)])
            same_reply(pair, "PFMERGE", "d", "other")
        if step == 40:
            same_reply(pair, "RENAME", "d", "e")
            same_reply(pair, "RENAME", "e", "d")
        if step % 10 == 9:
            same_reply(pair, "GET", "d")
            same_reply(pair, "PFCOUNT", "d")
    same_reply(pair, "GET", "d")


@pytest.fixture(params=["native", "python"])
def hll_hash(request, monkeypatch):
    """The hll module with its C MurmurHash64A (skipped when the HLL package is not
    installed) or with the pure-Python one."""
    from distcache.server.types import hll
    if request.param == "native":
        if hll.murmur._native is None:
            pytest.skip("the HLL package is not installed: only the pure Python runs")
    else:
        monkeypatch.setattr(hll.murmur, "_native", None)
    return hll


@pytest.mark.parametrize("count", [1, 4, 5, 16, 1100])
def test_batch_hashes_match_the_one_by_one_hash(count, hll_hash):
    """hll.hashes (in C with the HLL package; else elements of one length hashed
    together in big-integer lanes: sliced 128-bit lanes, or whole elements as lanes
    up to 32 bytes) gives MurmurHash64A of each element, for every length and mixed
    lengths, and a buffer that is not bytes is hashed too."""
    hll = hll_hash
    rng = random.Random(count)
    for length in list(range(0, 41)) + [64, 100]:
        elements = [bytes(rng.randrange(256) for _ in range(length)) for _ in range(count)]
        assert list(hll.hashes(elements)) == [hll.murmurhash64a(e) for e in elements], length
    mixed = [bytes(rng.randrange(256) for _ in range(rng.randrange(40))) for _ in range(count)]
    assert list(hll.hashes(mixed)) == [hll.murmurhash64a(e) for e in mixed]
    assert list(hll.hashes([bytearray(e) for e in mixed])) == list(hll.hashes(mixed))
    assert [hll.pattern_of(e) for e in mixed] == \
        [hll._pattern(hll.murmurhash64a(e)) for e in mixed]


@pytest.mark.parametrize("count", [4, 16, 50])
def test_batch_hashes_with_a_shared_first_block(count, hll_hash):
    """Elements sharing their first 8 bytes (the pure hash starts such a batch from
    that block's kept state): the same hashes, on a first and a repeated batch, and
    when one element's first block differs, first or last in the batch."""
    hll = hll_hash
    rng = random.Random(count)
    for length in range(8, 41):
        for _ in range(2):  # (the second batch finds the kept state)
            elements = [b"element:" + bytes(rng.randrange(256) for _ in range(length - 8))
                        for _ in range(count)]
            assert list(hll.hashes(elements)) == [hll.murmurhash64a(e) for e in elements], length
        for at in (0, count - 1):
            odd = list(elements)
            odd[at] = b"Element:" + odd[at][8:]
            assert list(hll.hashes(odd)) == [hll.murmurhash64a(e) for e in odd], (length, at)


def test_unpacked_adds_write_every_register_as_dense_set_does(hll_hash):
    """A run's adds on unpacked registers write the packed bytes through two-byte
    windows from a table (the last register's window ends the value): the bytes
    dense_set writes, for every register position, raised or not, and replies that
    mark the first hash raising each register."""
    hll = hll_hash
    rng = random.Random(7)
    base = bytearray(hll.empty())
    base[4] = hll.DENSE
    value = bytes(base[:hll.HEADER]) + hll.pack_dense(
        [rng.randrange(0, 6) for _ in range(hll.REGISTERS)])
    indexes = [0, 1, 2, 3, 4, 5, 6, 7, 5461, hll.REGISTERS - 4, hll.REGISTERS - 3,
               hll.REGISTERS - 2, hll.REGISTERS - 1]
    for index in indexes:
        for count in (1, 3, 7, 20, 51):
            # a hash with that index and count (run of zeros above the index)
            h = index | (1 << (hll.P + count - 1)) if count <= hll.Q else index
            expected = bytearray(value)
            changed = hll.dense_set(expected, index, count)
            editor = hll.Editor(value, 3000)
            hashes = [h] * 11  # (8 or more: unpacked; the repeats raise nothing)
            raised = editor.add_hashes(hashes)
            assert raised[0] is changed and not any(raised[1:]), (index, count)
            expected[15] |= 0x80
            assert editor.value() == (bytes(expected) if changed else
                                      bytes(expected[:15]) + bytes([value[15] | 0x80])
                                      + value[16:]), (index, count)


@pytest.mark.parametrize("count", [16, 17])
def test_batch_hashes_alternating_shared_first_blocks(count, hll_hash):
    """Batches alternating between two shared first blocks (the layout keeps the last
    one, the table both), one with a non-ASCII first block, and batches whose
    elements differ in length but join to the size the lanes expect, or hold the
    byte after each lane: the hashes of each element."""
    hll = hll_hash
    rng = random.Random(count)
    for _ in range(3):
        for prefix in (b"element:", b"user:123", b"\xffprefix"):
            elements = [prefix + b"%012d" % rng.randrange(10 ** 12) for _ in range(count)]
            assert list(hll.hashes(elements)) == [hll.murmurhash64a(e) for e in elements]
    elements = [b"element:%012d" % i for i in range(count)]
    elements[0], elements[1] = elements[0][:-1], elements[1] + b"\x80"  # (same total)
    assert list(hll.hashes(elements)) == [hll.murmurhash64a(e) for e in elements]
    elements[0], elements[1] = elements[0] + b"\x80", elements[1][:-1]
    assert list(hll.hashes(elements)) == [hll.murmurhash64a(e) for e in elements]
