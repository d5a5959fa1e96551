"""RESTORE of hostile payloads: mutated DUMPs of every type, with a valid CRC64
recomputed after the mutation so the value parser (not the checksum) meets them.

The server must answer OK or Redis's "Bad data format" (or the checksum/version
error), never an internal error, and stay up; a payload it accepts must be
readable by its type's commands and dump again. Declared lengths (string and
LZF lengths, element counts, listpack sizes) are checked against the payload
before anything is allocated, so a claim of 2**63 bytes is an error at once.
"""
from __future__ import annotations

import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis_budget import examples

from distcache.rdb.crc64 import crc64

ACCEPTED_ERRORS = ("Bad data format", "DUMP payload version or checksum are wrong")
#: A read per type, so an accepted payload is also walked (and a reply built).
READS = {
    b"string": [("GET", "t"), ("STRLEN", "t"), ("PFCOUNT", "t")],
    b"list": [("LRANGE", "t", 0, -1), ("LPOP", "t")],
    b"set": [("SMEMBERS", "t"), ("SRANDMEMBER", "t", -3)],
    b"hash": [("HGETALL", "t"), ("HRANDFIELD", "t", -2)],
    b"zset": [("ZRANGE", "t", 0, -1, "WITHSCORES"), ("ZRANGEBYLEX", "t", "-", "+")],
    b"stream": [("XRANGE", "t", "-", "+"), ("XINFO", "STREAM", "t", "FULL"),
                ("XINFO", "GROUPS", "t"), ("XADD", "t", "*", "f", "v")],
}


def _with_crc(body: bytes) -> bytes:
    return body + crc64(body).to_bytes(8, "little")


@pytest.fixture(scope="module")
def payloads(shared_server):
    """DUMPs of every type and encoding the server writes (LZF included)."""
    r = redis.Redis(port=shared_server.port, socket_timeout=20)
    r.flushall()
    r.set("s", "hello")
    r.set("lzf", "a" * 200)
    r.set("int", 12345)
    r.rpush("l", *[f"e{i}" for i in range(20)])
    r.rpush("lbig", *["x" * 300 for _ in range(40)])
    r.sadd("intset", 1, 2, 3, 70000)
    r.sadd("set", "a", "b", "c")
    r.hset("h", mapping={"a": "1", "b": "2"})
    r.hset("hbig", mapping={f"f{i}": "v" * 70 for i in range(5)})
    r.zadd("z", {"a": 1, "b": 2.5})
    r.zadd("zbig", {f"m{i}" * 20: i for i in range(200)})
    r.xadd("x", {"a": "1"})
    r.xadd("x", {"a": "2", "b": "3"})
    r.xgroup_create("x", "g", 0)
    r.xreadgroup("g", "c1", {"x": ">"}, count=1)
    r.pfadd("hll", *range(100))
    r.pfadd("hlldense", *range(3000))
    keys = ["s", "lzf", "int", "l", "lbig", "intset", "set", "h", "hbig", "z", "zbig", "x",
            "hll", "hlldense"]
    dumps = [r.dump(k) for k in keys]
    r.close()
    return dumps


def _check(r: redis.Redis, payload: bytes) -> None:
    try:
        assert r.restore("t", 0, payload, replace=True) == b"OK"
    except redis.ResponseError as exc:
        assert str(exc).startswith(ACCEPTED_ERRORS), str(exc)
        return
    kind = r.type("t")
    for cmd in READS.get(kind, []) + [("OBJECT", "ENCODING", "t"), ("MEMORY", "USAGE", "t")]:
        try:
            r.execute_command(*cmd)
        except redis.ResponseError as exc:  # e.g. WRONGTYPE-like refusals, never a bug
            assert "internal error" not in str(exc), (cmd, str(exc))
    if r.exists("t"):
        assert r.restore("t2", 0, r.dump("t"), replace=True) == b"OK"


@settings(max_examples=examples(600), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_payloads_with_a_valid_crc_are_refused_or_restored(r, payloads, data):
    original = data.draw(st.sampled_from(payloads))
    body = bytearray(original[:-8])
    for _ in range(data.draw(st.integers(1, 4))):
        if len(body) < 4:
            break
        at = data.draw(st.integers(0, len(body) - 3))  # the version stays
        op = data.draw(st.sampled_from(["set", "flip", "delete", "insert"]))
        if op == "set":
            body[at] = data.draw(st.integers(0, 255))
        elif op == "flip":
            body[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "delete":
            del body[at:at + data.draw(st.integers(1, 4))]
        else:
            body[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    _check(r, _with_crc(bytes(body)))
    assert r.ping()


V10 = b"\x0a\x00"
HUGE = b"\x81" + (1 << 63).to_bytes(8, "big")  # a 64-bit length: 2**63


@pytest.mark.parametrize("body", [
    b"\x00" + HUGE,  # a string of 2**63 bytes
    b"\x00\xc3" + b"\x05" + HUGE + b"abcde",  # LZF: 5 bytes claiming 2**63 out
    b"\x00\xc3\x05\x7f\x00abcd",  # LZF: 5 bytes claiming 127 * 88 + ... out
    b"\x01" + HUGE,  # a list of 2**63 elements
    b"\x04" + HUGE,  # a hash of 2**63 pairs
    b"\x05" + HUGE,  # a zset of 2**63 members
    b"\x12" + HUGE,  # a quicklist of 2**63 nodes
    b"\x13" + HUGE,  # a stream of 2**63 nodes
    b"\x10\x0b" + b"\xff\xff\xff\x7f\x01\x00\x01\x01\xff\x00\x00",  # listpack: 2 GB total
    b"\x0b\x0c" + b"\x08\x00\x00\x00\xff\xff\xff\x7f\x00\x00\x00\x00",  # intset: 2**31 x 8
    b"\x07" + b"\x01" * 16,  # a module value
])
def test_declared_lengths_are_bounded_before_allocating(r, body):
    start = time.perf_counter()
    with pytest.raises(redis.ResponseError, match="Bad data format"):
        r.restore("t", 0, _with_crc(body + V10), replace=True)
    assert time.perf_counter() - start < 2  # an error at once, not an allocation
    assert r.ping()
