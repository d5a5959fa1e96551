"""RdbFileReader.load_into (the bulk loader's inline fast path) stores exactly what
iterating the reader gives, for every kind of entry, wherever the read-ahead
buffer happens to cut the file, and reports damage with the reader's offsets."""
from __future__ import annotations

import io
import random

import pytest

from distcache.rdb import RdbError, bulk, codec
from distcache.rdb.file import RdbFileReader, RdbFileWriter


def _rdb(seed: int, keys: int = 600) -> bytes:
    rng = random.Random(seed)
    out = io.BytesIO()
    w = RdbFileWriter(out)
    for db in (0, 3):
        w.select_db(db, keys, keys // 3)
        for i in range(keys):
            tail = bytes(rng.randrange(256) for _ in range(rng.choice((0, 5, 70))))
            key = b"k%d-" % i + tail
            pick = rng.random()
            if pick < 0.5:  # short strings, raw or as 8/16/32-bit integers, or long/LZF
                value = rng.choice([b"%d" % rng.randrange(-2**31, 2**31),
                                    b"%d" % rng.randrange(-128, 128),
                                    b"%d" % rng.randrange(-30000, 30000),
                                    b"v" * rng.randrange(64),
                                    b"x" * rng.randrange(64, 200),
                                    bytes(rng.randrange(256) for _ in range(40))])
                kind, val = "string", value
            elif pick < 0.6:
                kind, val = "list", [b"a", b"%d" % i]
            elif pick < 0.7:
                kind, val = "hash", {b"f": b"%d" % i}
            elif pick < 0.8:
                kind, val = "set", {b"1", b"2", b"%d" % (i + 3)}
            elif pick < 0.9:
                kind, val = "zset", [(b"m", 1.5), (b"n%d" % i, -2.0)]
            else:
                kind, val = "string", b""
            expire = rng.choice([None, None, 1_000 + i, 4_000_000_000_000 + i])
            w.key(key, kind, val, expire_ms=expire)
    w.finish()
    return out.getvalue()


def _iterated(data: bytes, skip_before: int) -> tuple:
    values: dict = {}
    expires: dict = {}
    for e in RdbFileReader(io.BytesIO(data)):
        if e.expire_ms is not None and e.expire_ms <= skip_before:
            continue
        values[e.db, e.key] = (e.kind, e.value)
        if e.expire_ms is not None:
            expires[e.db, e.key] = e.expire_ms
    return values, expires


def _bulk(data: bytes, skip_before: int, step: int = 7) -> tuple:
    dbs: dict = {}
    reader = RdbFileReader(io.BytesIO(data))
    yields = list(reader.load_into(lambda i: dbs.setdefault(i, ({}, {})), lambda k, v: (k, v),
                                   skip_before, step))
    values = {(db, k): (("string", v) if isinstance(v, bytes) else v)
              for db, (vals, _) in dbs.items() for k, v in vals.items()}
    expires = {(db, k): t for db, (_, exp) in dbs.items() for k, t in exp.items()}
    assert yields[-1] == len(values) == reader.keys
    assert yields == sorted(yields)
    return values, expires


@pytest.mark.parametrize("chunk", [1 << 20, 97, 300, 4096])
@pytest.mark.parametrize("seed", [1, 2])
def test_bulk_load_equals_iteration_wherever_the_buffer_cuts(monkeypatch, seed, chunk):
    data = _rdb(seed)
    monkeypatch.setattr(bulk, "BULK_CHUNK", chunk)
    monkeypatch.setattr(codec, "_CHUNK", chunk)
    assert _bulk(data, 2_000) == _iterated(data, 2_000)
    assert _bulk(data, 0) == _iterated(data, 0)


def test_bulk_load_reports_damage_like_the_reader():
    data = _rdb(3)
    for cut in (len(data) // 3, len(data) - 5):
        with pytest.raises(RdbError) as exc:
            _bulk(data[:cut], 0)
        assert 0 < exc.value.offset <= cut
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    with pytest.raises(RdbError):  # a bad checksum at least, or a bad structure
        _bulk(bytes(flipped), 0)


def test_a_database_the_target_refuses_stops_the_load():
    data = _rdb(4, keys=20)

    def target(index: int) -> tuple:
        if index == 3:
            raise RdbError("database 3 is out of range", 0)
        return {}, {}

    with pytest.raises(RdbError, match="database 3"):
        list(RdbFileReader(io.BytesIO(data)).load_into(target, lambda k, v: v))


def test_writing_many_keys_gives_the_bytes_of_writing_them_one_by_one():
    values = [b"", b"v", b"value:12", b"x" * 20, b"y" * 21, b"-", b"-5", b"12345678901",
              b"123456789012", b"007", b"z" * 63, b"w" * 64]
    items = [(b"k%d" % i, v) for i, v in enumerate(values)]
    items += [(b"K" * 64, b"long key"), (b"list", ["not", "bytes"])]
    expires = {b"k2": 1_700_000_000_000, b"k5": -1, b"list": 42}

    def convert(value):
        return "list", [x.encode() for x in value]

    one, many = io.BytesIO(), io.BytesIO()
    w = RdbFileWriter(one, aux={})
    w.select_db(0, len(items), len(expires))
    for key, value in items:
        w.key(key, *(("string", value) if isinstance(value, bytes) else convert(value)),
              expire_ms=expires.get(key))
    w.finish()
    w = RdbFileWriter(many, aux={})
    w.select_db(0, len(items), len(expires))
    assert w.keys(iter(items), expires.get, convert) == len(items)
    w.finish()
    assert many.getvalue() == one.getvalue()
