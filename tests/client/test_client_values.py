"""The value format: exact round trips, safety of the decoder, serializers."""
from __future__ import annotations

import dataclasses
import math
import zlib

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis_budget import examples

import distcache
from distcache.client.errors import DecodeError
from distcache.client.serde import (MAGIC, AutoSerializer, JsonSerializer, RawSerializer,
                                    make_serializer)


@distcache.register
@dataclasses.dataclass(frozen=True)
class Frozen:
    a: int
    b: str


@distcache.register
class Plain:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return type(other) is Plain and vars(self) == vars(other)


hashable = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary(),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4),
    max_leaves=8)
values = st.recursive(
    hashable | st.builds(Frozen, st.integers(), st.text()),
    lambda inner: (st.lists(inner, max_size=5) | st.tuples(inner, inner)
                   | st.dictionaries(hashable, inner, max_size=5)
                   | st.sets(hashable, max_size=5)
                   | st.builds(Plain, inner, inner)),
    max_leaves=15)


def same(a, b):
    """Equal with identical types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a == b and all(same(a[k], b[k]) for k in a) and all(
            same(k, next(x for x in b if x == k)) for k in a)
    if isinstance(a, Plain):
        return same(vars(a), vars(b))
    return a == b


@settings(max_examples=60, deadline=None)
@given(values, st.sampled_from([None, 1, 64]))
def test_roundtrip_any_nested_value(value, threshold):
    s = AutoSerializer(compress_threshold=threshold)
    assert same(s.loads(s.dumps(value)), value)


@settings(max_examples=examples(500), deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_decoder_only_raises_decode_error(data):
    s = AutoSerializer()
    for blob in (data, MAGIC + b"\x10" + data, MAGIC + b"\x11" + zlib.compress(data)[:len(data)]):
        try:
            s.loads(blob)
        except DecodeError:
            pass


def test_plain_forms_and_ambiguity():
    s = AutoSerializer()
    assert s.dumps(42) == b"42" and s.dumps(-7) == b"-7"
    assert s.dumps("hello") == b"hello"
    for text in ("42", "-1", "0"):  # would read back as ints: tagged
        assert s.dumps(text).startswith(MAGIC) and s.loads(s.dumps(text)) == text
    for text in ("007", "+1", "-0", " 1", "1.5"):  # not canonical ints: stay plain
        assert s.dumps(text) == text.encode() and s.loads(text.encode()) == text
    assert s.loads(b"\xff\x00") == b"\xff\x00"  # foreign binary
    assert s.loads("\u00e9".encode()) == "\u00e9"
    big = 10 ** 5000
    assert s.loads(s.dumps(big)) == big
    assert math.isnan(s.loads(s.dumps(float("nan"))))
    assert s.loads(s.dumps("\ud800")) == "\ud800"  # lone surrogate survives
    assert s.loads(s.dumps(True)) is True and s.loads(s.dumps(1)) == 1


def test_registered_classes_and_errors():
    s = AutoSerializer()
    value = {"f": Frozen(1, "x"), "p": Plain([1], Frozen(2, "y"))}
    assert s.loads(s.dumps(value)) == value

    class Unregistered:
        pass
    with pytest.raises(TypeError, match=r"distcache.register\(.*Unregistered\)"):
        s.dumps([Unregistered()])
    blob = s.dumps(Frozen(1, "x")).replace(b"Frozen", b"Frozex")
    with pytest.raises(DecodeError, match="not registered"):
        s.loads(blob)


def test_depth_and_size_guards():
    s = AutoSerializer(max_depth=50)
    deep: list = []
    for _ in range(60):
        deep = [deep]
    with pytest.raises(ValueError, match="nested"):
        s.dumps(deep)
    crafted = MAGIC + b"\x10" + b"l\x01" * 1000 + b"N"
    with pytest.raises(DecodeError, match="nested"):
        AutoSerializer().loads(crafted)
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError):
        s.dumps(cyclic)
    bomb = MAGIC + b"\x11" + zlib.compress(b"b" + b"\x00" * (50 * 1024 * 1024))
    with pytest.raises(DecodeError, match="max_size"):
        AutoSerializer(max_size=1024 * 1024).loads(bomb)
    with pytest.raises(DecodeError, match="count"):
        s.loads(MAGIC + b"\x10l\xff\xff\xff\x0f")
    with pytest.raises(DecodeError, match="version"):
        s.loads(MAGIC + b"\x20N")


def test_compression_flag():
    s = AutoSerializer(compress_threshold=100)
    text = "x" * 1000
    blob = s.dumps(text)
    assert blob[:3] == MAGIC + b"\x11" and len(blob) < 100
    assert s.loads(blob) == text
    assert s.dumps("short") == b"short"


def test_other_serializers():
    j = make_serializer("json")
    assert isinstance(j, JsonSerializer) and j.loads(j.dumps({"a": [1]})) == {"a": [1]}
    with pytest.raises(DecodeError):
        j.loads(b"not json")
    raw = make_serializer("raw")
    assert isinstance(raw, RawSerializer) and raw.dumps("s") == b"s" and raw.loads(b"x") == b"x"
    with pytest.raises(TypeError):
        raw.dumps([1])
    p = make_serializer("pickle")
    assert p.loads(p.dumps({1: {2}})) == {1: {2}}
    with pytest.raises(ValueError):
        make_serializer("yaml")
    with pytest.raises(TypeError):
        make_serializer(object())


def test_serializer_option_end_to_end(dc_server):
    with distcache.CacheClient(dc_server.address, serializer="json") as c:
        c.set("j", {"a": [1, 2]})
        assert c.get("j") == {"a": [1, 2]}
        assert c.execute("GET", "j") == b'{"a":[1,2]}'
    with distcache.CacheClient(dc_server.address, compress_threshold=64) as c:
        c.set("z", "y" * 10000)
        assert c.get("z") == "y" * 10000
        assert len(c.execute("GET", "z")) < 200
