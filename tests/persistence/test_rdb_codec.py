"""The RDB codec on its own: round trips of every type and encoding, Redis's
exact bytes where they are known, the file frame against redis-server and
redis-check-rdb, and hostile input with bounded memory."""
from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
try:
    import tracemalloc
except ImportError:  # PyPy has none: the allocation bounds are checked on CPython
    tracemalloc = None  # type: ignore[assignment]

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis_budget import examples

from distcache.rdb import (RdbEmptyKey, RdbError, RdbFileReader, RdbFileWriter, RdbUnsupported,
                           crc64, dump_payload, load_payload, PayloadVersionError)
from distcache.rdb import codec, lzf, packed
from distcache.rdb.codec import RdbReader, encode_object, encode_string

from servers import REDIS_SERVER, redis_server

ints = st.integers(-(1 << 63), (1 << 63) - 1).map(lambda n: b"%d" % n)
small_ints = st.integers(-5000, 70000).map(lambda n: b"%d" % n)
texts = st.binary(max_size=90) | st.sampled_from([b"", b"-0", b"01", b"+1", b" 1", b"1 "])
elements = ints | small_ints | texts | st.binary(min_size=60, max_size=5000)
scores = st.floats(allow_nan=False) | st.integers(-(1 << 60), 1 << 60).map(float)


def _decode(kind, value):
    rdb_type, body = encode_object(kind, value)
    reader = RdbReader(io.BytesIO(body), len(body))
    got_kind, got = reader.value(rdb_type)
    assert reader.remaining == 0 and got_kind == kind
    return rdb_type, got


def _same(kind, a, b):
    if kind == "zset":
        return dict(a) == dict(b)
    return a == b


# -- primitives -------------------------------------------------------------------------

def test_crc64_jones_check_value():
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    data = os.urandom(100_003)
    assert crc64(data) == crc64(data[77:], crc64(data[:77]))
    from distcache.rdb.crc64 import _bytes_crc
    assert crc64(data) == _bytes_crc(0, data)


def test_crc64_native_and_pure_python_agree():
    """anycrc (the ``fast`` extra) when installed, else the pure Python, must give
    Redis's CRC for every length, start value and buffer type."""
    import sys
    module = sys.modules["distcache.rdb.crc64"]
    pure = module.crc64_pure
    assert pure(b"123456789") == 0xE9C6D914C4B8D9CA
    data = os.urandom(300_007)
    for size in (0, 1, 7, 8, 63, 64, 65, 1000, 65_535, 65_536, 300_007):
        for start in (0, 1, 0xFFFFFFFFFFFFFFFF, 0x8000000000000000):
            piece = data[:size]
            want = pure(piece, start)
            assert crc64(piece, start) == want
            assert crc64(memoryview(data)[:size], start) == want
            assert crc64(bytearray(piece), start) == want
    if module.IMPLEMENTATION != "anycrc":
        pytest.skip("anycrc is not installed: only the pure Python was checked")


def test_crc64_pure_python_variants_agree():
    """The per-runtime pure-Python CRCs (signed-word slice-by-8 for PyPy, lanes and
    unsigned slice-by-8 for CPython) give the byte-at-a-time result, on both runtimes."""
    import sys
    module = sys.modules["distcache.rdb.crc64"]
    data = os.urandom(70_011)
    for size in (0, 1, 7, 8, 9, 63, 64, 65, 1000, 65_536, 70_011):
        for start in (0, 1, 0xFFFFFFFFFFFFFFFF, 0x8000000000000000, 0x7FFFFFFFFFFFFFFF):
            piece = data[:size]
            want = module._bytes_crc(start, piece)
            assert module._slice8_signed_crc(start, piece) == want
            assert module._slice8_signed_crc(start, memoryview(bytearray(piece))) == want
            assert module._slice8_crc(start, piece) == want
            if size >= 256:
                assert module._lanes_crc(start, piece) == want


@given(st.binary(max_size=3000) | st.text("ab", max_size=3000).map(str.encode))
def test_lzf_round_trip(data):
    out = lzf.compress(data, len(data) + 100)
    if data:
        assert lzf.decompress(out, len(data)) == data


def test_lzf_matches_redis_known_output():
    # DUMP of SET k "aaaa..." (40 a's) on redis-server 7.0.15
    assert encode_string(b"a" * 40) == b"\xc3\t(\x01aa\xe0\x1b\x00\x01aa"
    assert encode_string(b"hello world, hello world, hello world!") == \
        b"\xc3\x15&\rhello world, h\xe0\r\x0c\x01d!"
    assert lzf.compress(os.urandom(64), 60) is None  # incompressible: stored verbatim


def _noisy(seed: int, size: int, copies: int) -> bytes:
    """Random bytes with ``copies`` short runs copied from elsewhere (a few matches)."""
    import random
    rng = random.Random(seed)
    data = bytearray(rng.getrandbits(8) for _ in range(size))
    for _ in range(copies):
        i, j, n = rng.randrange(size - 12), rng.randrange(size - 12), rng.randrange(3, 12)
        data[i:i + n] = data[j:j + n]
    return bytes(data)


@pytest.mark.parametrize("size", [256, 1000, 9000, 40000])
@pytest.mark.parametrize("copies", [0, 5, 60, 2000])
def test_lzf_cannot_fit_never_refuses_what_fits(size, copies, monkeypatch):
    """The shortcut for random-looking input gives liblzf's answer (compressed
    bytes or None), the same as compressing byte by byte, with Redis's limit."""
    data = _noisy(size * 7 + copies, size, copies)
    fast = lzf.compress(data, size - 4)
    monkeypatch.setattr(lzf, "FIT_CHECK_MIN", 1 << 62)  # no shortcut
    assert lzf.compress(data, size - 4) == fast
    if copies == 0:
        assert fast is None and lzf.cannot_fit(data, size - 4)


@pytest.mark.parametrize("blob, reason", [
    (b"\x1f" + b"a", "literal run past the end"),
    (b"\x00a\x20", "past the end"),
    (b"\x00a\x20\x05", "before the start"),
])
def test_lzf_rejects_bad_input(blob, reason):
    with pytest.raises(lzf.LzfError, match=reason):
        lzf.decompress(blob, 100)


def test_lzf_declared_size_must_match():
    packed_ = lzf.compress(b"abc" * 30, 200)
    with pytest.raises(lzf.LzfError):
        lzf.decompress(packed_, 89)
    with pytest.raises(lzf.LzfError):
        lzf.decompress(packed_, 91)


# -- every encoding boundary ---------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 63, 64, 16383, 16384, (1 << 32) - 1, 1 << 32])
def test_length_encodings(n):
    data = codec.encode_length(n)
    assert len(data) == (1 if n < 64 else 2 if n < 16384 else 5 if n < 1 << 32 else 9)
    assert RdbReader(io.BytesIO(data)).length() == n


@pytest.mark.parametrize("s, first", [
    (b"0", 0xC0), (b"-128", 0xC0), (b"127", 0xC0), (b"128", 0xC1), (b"-32768", 0xC1),
    (b"32768", 0xC2), (b"-2147483648", 0xC2), (b"2147483648", 10), (b"01", 2), (b"-0", 2),
    (b"x" * 20, 20), (b"x" * 21, 0xC3), (bytes(range(100, 130)), 30),
])
def test_string_encodings(s, first):
    data = encode_string(s)
    assert data[0] == first
    assert RdbReader(io.BytesIO(data)).string() == s


@pytest.mark.parametrize("kind, value, rdb_type", [
    ("hash", {b"f%d" % i: b"v" for i in range(512)}, codec.TYPE_HASH_LISTPACK),
    ("hash", {b"f%d" % i: b"v" for i in range(513)}, codec.TYPE_HASH),
    ("hash", {b"f": b"v" * 64}, codec.TYPE_HASH_LISTPACK),
    ("hash", {b"f": b"v" * 65}, codec.TYPE_HASH),
    ("set", {b"%d" % i for i in range(512)}, codec.TYPE_SET_INTSET),
    ("set", {b"%d" % i for i in range(513)}, codec.TYPE_SET),
    ("set", {b"1", b"01"}, codec.TYPE_SET),
    ("set", {b"9223372036854775807", b"-9223372036854775808"}, codec.TYPE_SET_INTSET),
    ("set", {b"9223372036854775808"}, codec.TYPE_SET),
    ("zset", [(b"m%d" % i, i) for i in range(128)], codec.TYPE_ZSET_LISTPACK),
    ("zset", [(b"m%d" % i, i) for i in range(129)], codec.TYPE_ZSET_2),
    ("zset", [(b"m" * 65, 1.0)], codec.TYPE_ZSET_2),
    ("zset", [(b"a", float("inf")), (b"b", float("-inf")), (b"c", -0.0), (b"d", 0.1)],
     codec.TYPE_ZSET_LISTPACK),
    ("list", [b"x"] * 5000, codec.TYPE_LIST_QUICKLIST_2),
    ("list", [random.Random(1).randbytes(10000)], codec.TYPE_LIST_QUICKLIST_2),
])
def test_encoding_thresholds(kind, value, rdb_type):
    got_type, got = _decode(kind, value)
    assert got_type == rdb_type
    assert _same(kind, got, value)


@pytest.mark.parametrize("width, values", [
    (2, [-32768, 32767]), (4, [-32769, 5]), (4, [2147483647]), (8, [-2147483649]),
])
def test_intset_widths(width, values):
    blob = packed.intset(values)
    assert int.from_bytes(blob[:4], "little") == width
    assert packed.intset_decode(blob) == [b"%d" % v for v in values]


def test_listpack_integer_boundaries():
    values = [b"%d" % n for n in (0, 127, 128, -1, -4096, 4095, 4096, -4097, 32767, -32768,
                                  32768, 8388607, -8388608, 8388608, 2147483647, -2147483648,
                                  2147483648, -(1 << 63), (1 << 63) - 1)]
    values += [b"x" * 63, b"x" * 64, b"x" * 4095, b"x" * 4096, b"18446744073709551616"]
    assert packed.lp_decode(packed.listpack(values)) == values


def test_score_text_is_redis_d2string():
    assert [codec.score_text(s) for s in (1.0, -0.0, 0.0, 1.5, 1e20, float("inf"), 0.1)] == \
        [b"1", b"-0", b"0", b"1.5", b"1e+20", b"inf", b"0.10000000000000001"]


# -- round trips over generated values ------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.one_of(
    elements.map(lambda v: ("string", v)),
    st.lists(elements, min_size=1, max_size=300).map(lambda v: ("list", v)),
    st.dictionaries(elements, elements, min_size=1, max_size=40).map(lambda v: ("hash", v)),
    st.sets(small_ints | ints, min_size=1, max_size=600).map(lambda v: ("set", v)),
    st.sets(elements, min_size=1, max_size=40).map(lambda v: ("set", v)),
    st.dictionaries(elements, scores, min_size=1, max_size=200)
      .map(lambda v: ("zset", list(v.items()))),
))
def test_payload_round_trip(kv):
    kind, value = kv
    payload = dump_payload(kind, value)
    got_kind, got = load_payload(payload)
    assert got_kind == kind and _same(kind, got, value)
    assert dump_payload(kind, value, compress=False) != b""
    assert _same(kind, load_payload(dump_payload(kind, value, compress=False))[1], value)


def test_old_encodings_are_read():
    """ziplists (RDB 9), zipmaps (RDB 4), quicklist v1, old ZSET doubles."""
    def zl(entries):
        body = b""
        for e in entries:
            body += b"\x00" + bytes((len(e),)) + e
        body += b"\x00\xfe\x05"  # the integer 5 as int8
        body += b"\x00\xf3"  # the integer 2 (4-bit immediate)
        total = 10 + len(body) + 1
        return (total.to_bytes(4, "little") + b"\x00" * 4
                + (len(entries) + 2).to_bytes(2, "little") + body + b"\xff")
    blob = zl([b"a", b"bb"])
    assert load_payload(_payload(codec.TYPE_LIST_ZIPLIST, encode_string(blob, False))) == \
        ("list", [b"a", b"bb", b"5", b"2"])
    assert load_payload(_payload(codec.TYPE_LIST_QUICKLIST,
                                 b"\x02" + encode_string(blob, False) * 2))[1] == \
        [b"a", b"bb", b"5", b"2"] * 2
    assert load_payload(_payload(codec.TYPE_HASH_ZIPLIST, encode_string(blob, False)))[1] == \
        {b"a": b"bb", b"5": b"2"}
    zipmap = b"\x01\x01f\x03\x02xyz..\xff"
    assert load_payload(_payload(codec.TYPE_HASH_ZIPMAP, encode_string(zipmap, False)))[1] \
        == {b"f": b"xyz"}
    old_zset = b"\x02\x01a\x031.5\x01b\xfe"
    assert dict(load_payload(_payload(codec.TYPE_ZSET, old_zset))[1]) == \
        {b"a": 1.5, b"b": float("inf")}


# -- hostile payloads ---------------------------------------------------------------

def _payload(rdb_type, body, version=10):
    data = bytes((rdb_type,)) + body + version.to_bytes(2, "little")
    return data + crc64(data).to_bytes(8, "little")


def test_checksum_and_version_are_checked():
    good = dump_payload("string", b"hello")
    with pytest.raises(PayloadVersionError):
        load_payload(good[:-1] + bytes((good[-1] ^ 1,)))
    with pytest.raises(PayloadVersionError):
        load_payload(_payload(0, b"\x01a", version=11))
    with pytest.raises(PayloadVersionError):
        load_payload(b"\x00" * 9)
    assert load_payload(_payload(0, b"\x01a", version=9)) == ("string", b"a")


@pytest.mark.parametrize("rdb_type, body, reason", [
    (codec.TYPE_SET, b"\x81" + (1 << 63).to_bytes(8, "big"), "claims"),
    (codec.TYPE_LIST_QUICKLIST_2, b"\x81" + (1 << 62).to_bytes(8, "big"), "claims"),
    (codec.TYPE_HASH, b"\x80\xff\xff\xff\xff", "claims"),
    (codec.TYPE_STRING, b"\x80\x7f\xff\xff\xff", "needs"),
    (codec.TYPE_STRING, b"\xc3\x01\x81" + (1 << 62).to_bytes(8, "big") + b"\x00", "LZF claims"),
    (codec.TYPE_STRING, b"\xc3\x02\x10\x1fa", "bad LZF"),
    (codec.TYPE_STRING, b"\xc7", "unknown string encoding"),
    (codec.TYPE_SET_INTSET, encode_string(b"\x03\x00\x00\x00\x01\x00\x00\x00abc", False),
     "bad intset encoding"),
    (codec.TYPE_SET_INTSET, encode_string(b"\x02\x00\x00\x00\xff\xff\x00\x00ab", False),
     "intset of"),
    (codec.TYPE_HASH_LISTPACK, encode_string(b"\x20\x00\x00\x00\x00\x00\xff", False),
     "listpack header says"),
    (codec.TYPE_HASH_LISTPACK, encode_string(b"\x09\x00\x00\x00\x01\x00\x81a\xff", False),
     "back length|past the end"),
    (codec.TYPE_ZSET_LISTPACK, encode_string(packed.listpack([b"a", b"nan"]), False),
     "NaN score"),
    (codec.TYPE_ZSET_LISTPACK, encode_string(packed.listpack([b"a", b"x1"]), False),
     "bad score"),
    (codec.TYPE_HASH_LISTPACK, encode_string(packed.listpack([b"a", b"1", b"a", b"2"]), False),
     "duplicate"),
    (codec.TYPE_SET, b"\x02\x01a\x01a", "duplicate"),
    (codec.TYPE_LIST_ZIPLIST, encode_string(b"\x0b\x00\x00\x00" + b"\x00" * 6 + b"\x00",
                                            False), "end byte"),
    (codec.TYPE_LIST_QUICKLIST_2, b"\x01\x07\x01a", "bad quicklist container"),
    (codec.TYPE_STREAM_LISTPACKS_2, b"\x00\x01" + b"\x00" * 8, "stream says 1 entries"),
    (codec.TYPE_STREAM_LISTPACKS_2, b"\x81" + b"\xff" * 8, "claims"),
    (codec.TYPE_STREAM_LISTPACKS_2, b"\x01\x02ab" + encode_string(packed.listpack([b"1"]), False),
     "not a 128-bit id"),
    (codec.TYPE_MODULE_2, b"\x00", "module values are not supported"),
    (99, b"\x00", "unknown value type"),
    (codec.TYPE_STRING, b"\x20ab", "needs 32 bytes"),
])
def test_malformed_payloads_raise_rdb_error(rdb_type, body, reason):
    if tracemalloc is None:
        with pytest.raises(RdbError, match=reason) as info:
            load_payload(_payload(rdb_type, body))
        peak = 0
    else:
        # Once untraced first: modules and tables loaded on first use (distcache/lazy.py)
        # are not the payload's allocations (a first load in the worker peaked at 1.1 MB).
        with pytest.raises(RdbError, match=reason):
            load_payload(_payload(rdb_type, body))
        tracemalloc.start()
        try:
            with pytest.raises(RdbError, match=reason) as info:
                load_payload(_payload(rdb_type, body))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 1 << 20  # no allocation sized by a hostile length
    assert info.value.offset >= 0


def test_empty_collections_and_trailing_bytes():
    with pytest.raises(RdbEmptyKey):
        load_payload(_payload(codec.TYPE_SET, b"\x00"))
    # as Redis: the value may use the trailer's bytes, and need not use them all
    assert load_payload(_payload(codec.TYPE_STRING, b"\x01ab")) == ("string", b"a")
    assert load_payload(_payload(codec.TYPE_STRING, b"\x03ab"))[1][:2] == b"ab"
    assert issubclass(RdbUnsupported, RdbError)


@settings(max_examples=examples(200), deadline=None)
@given(st.data())
def test_truncated_and_corrupted_payloads_never_crash(data):
    kind, value = data.draw(st.sampled_from([
        ("list", [b"a", b"123", b"x" * 100] * 50), ("hash", {b"f%d" % i: b"v" for i in range(9)}),
        ("zset", [(b"m%d" % i, i / 7) for i in range(200)]), ("set", {b"1", b"2", b"300000"}),
        ("string", b"abc" * 50)]))
    body = dump_payload(kind, value)[:-10]
    cut = data.draw(st.integers(0, len(body)))
    flip = data.draw(st.integers(0, len(body) - 1))
    mutated = bytearray(body[:cut] if data.draw(st.booleans()) else body)
    if flip < len(mutated):
        mutated[flip] ^= data.draw(st.integers(1, 255))
    payload = _payload(mutated[0], bytes(mutated[1:])) if mutated else b"\x00" * 10
    try:
        load_payload(payload)
    except RdbError:
        pass


# -- the file frame -----------------------------------------------------------------

def _sample_entries():
    return [
        (0, b"s", "string", b"v", None), (0, b"n", "string", b"12345", 4102444800000),
        (0, b"l", "list", [b"a", b"1"] * 700, None), (0, b"h", "hash", {b"f": b"v"}, None),
        (3, b"z", "zset", [(b"a", 1.0), (b"b", 2.5)], 4102444800000),
        (3, b"set", "set", {b"x", b"y"}, None), (3, b"is", "set", {b"1", b"2"}, None),
    ]


def _write_file(path, entries, **kw):
    with open(path, "wb") as f:
        w = RdbFileWriter(f, **kw)
        for db in sorted({e[0] for e in entries}):
            mine = [e for e in entries if e[0] == db]
            w.select_db(db, len(mine), sum(1 for e in mine if e[4]))
            for _, key, kind, value, when in mine:
                w.key(key, kind, value, when)
        w.finish()


def test_file_round_trip(tmp_path):
    path = tmp_path / "out.rdb"
    _write_file(path, _sample_entries())
    with open(path, "rb") as f:
        reader = RdbFileReader(f)
        got = [(e.db, e.key, e.kind, e.value, e.expire_ms) for e in reader]
    assert got == _sample_entries() and reader.done
    assert reader.aux[b"redis-ver"] == b"7.0.15"
    data = path.read_bytes()
    with pytest.raises(RdbError, match="checksum"):
        list(RdbFileReader(io.BytesIO(data[:-1] + bytes((data[-1] ^ 1,)))))
    with pytest.raises(RdbError, match="truncated"):
        list(RdbFileReader(io.BytesIO(data[:len(data) // 2])))
    with pytest.raises(RdbError, match="version"):
        RdbFileReader(io.BytesIO(b"REDIS0011" + data[9:]))


@pytest.mark.skipif(not shutil.which("redis-check-rdb"), reason="redis-check-rdb missing")
def test_redis_check_rdb_accepts_our_file(tmp_path):
    path = tmp_path / "out.rdb"
    _write_file(path, _sample_entries())
    out = subprocess.run(["redis-check-rdb", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "RDB looks OK" in out.stdout and "7 keys read" in out.stdout


@pytest.mark.skipif(not REDIS_SERVER, reason="redis-server missing")
def test_files_cross_with_redis_server(tmp_path):
    """redis-server loads our file to the same data, and its SAVE reads back here."""
    import redis
    ours = tmp_path / "ours"
    ours.mkdir()
    _write_file(ours / "dump.rdb", _sample_entries())
    with redis_server(ours, "--dbfilename", "dump.rdb") as proc:
        r = redis.Redis(port=proc.port)
        assert r.lrange("l", 0, -1) == [b"a", b"1"] * 700
        assert r.pttl("n") > 0 and r.get("n") == b"12345"
        r.select(3)
        assert r.zrange("z", 0, -1, withscores=True) == [(b"a", 1.0), (b"b", 2.5)]
        assert r.smembers("is") == {b"1", b"2"}
        r.select(0)
        r.hset("big", mapping={b"f%d" % i: b"x" * 100 for i in range(600)})
        r.set("lzf", b"ab" * 100)
        r.config_set("maxmemory-policy", "allkeys-lru")
        r.save()
    with open(ours / "dump.rdb", "rb") as f:
        reader = RdbFileReader(f)
        entries = {(e.db, e.key): e for e in reader}
    assert entries[(0, b"big")].value == {b"f%d" % i: b"x" * 100 for i in range(600)}
    assert entries[(0, b"lzf")].value == b"ab" * 100
    assert entries[(3, b"z")].value == [(b"b", 2.5), (b"a", 1.0)] or \
        dict(entries[(3, b"z")].value) == {b"a": 1.0, b"b": 2.5}
    assert entries[(0, b"n")].expire_ms == 4102444800000
    assert entries[(0, b"s")].idle is not None  # an LRU policy saves IDLE opcodes


class _Trickle:
    """A socket-like stream: no size, no seek, short reads; counts what is read."""

    def __init__(self, data, tail=b""):
        self.data = data + tail
        self.pos = 0

    def read(self, n):
        chunk = self.data[self.pos:self.pos + min(n, 1000)]
        self.pos += len(chunk)
        return chunk


def test_file_from_a_stream_of_unknown_size(tmp_path):
    """As a replica reads a full sync: short reads, and nothing read past the
    RDB's end (the bytes after it belong to the command stream)."""
    path = tmp_path / "out.rdb"
    _write_file(path, _sample_entries())
    data = path.read_bytes()
    stream = _Trickle(data, tail=b"*1\r\n$4\r\nPING\r\n")
    reader = RdbFileReader(stream)
    assert [e.key for e in reader] == [e[1] for e in _sample_entries()]
    assert reader.done and stream.pos == len(data)
    bad = data[:-9] + bytes((data[-9] ^ 1,)) + data[-8:]  # the byte before the CRC
    with pytest.raises(RdbError):
        list(RdbFileReader(_Trickle(bad)))
    with pytest.raises(RdbError, match="input ended"):
        list(RdbFileReader(_Trickle(data[:-20])))


def test_huge_claim_on_a_stream_of_unknown_size_reads_in_pieces():
    asked = []

    class Stream(_Trickle):
        def read(self, n):
            asked.append(n)
            return super().read(n)

    body = (b"REDIS0010" + bytes((codec.TYPE_STRING,)) + b"\x01k"
            + b"\x81" + (1 << 62).to_bytes(8, "big"))
    with pytest.raises(RdbError, match="input ended"):
        list(RdbFileReader(Stream(body + b"x" * 100)))
    assert max(asked) <= 1 << 20
