"""CRC-64/Jones, the checksum of RDB files and DUMP payloads (Redis's crc64.c).

Reflected, polynomial 0xad93d23594c935a9, initial value 0, no final xor:
``crc64(b"123456789") == 0xe9c6d914c4b8d9ca``.

Pure Python pays per loop iteration. Inputs of 64 KB and more are cut into
lanes computed together with ``bytes.translate`` (see ``_lanes_crc``), about
3x faster than the next best; shorter ones go through "slice-by-8": one
iteration per 8-byte word, eight lookups in eight 256-entry tables. 16-bit
tables (4 lookups a word) were no faster: their 8 MB of int objects miss the
cache.

With the optional ``anycrc`` package installed (the ``fast`` extra: C, its
``CRC64-REDIS`` model), :func:`crc64` uses it instead, about 100x faster over
long inputs; it is checked against the pure-Python result at import and left
aside when it disagrees. ``DISTCACHE_PURE_CRC64=1`` keeps the pure Python.
"""
from __future__ import annotations

import array
import os
import struct
import sys
from typing import Any, Callable, List, Optional

POLY = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9, bit-reflected
_MASK = 0xFFFFFFFFFFFFFFFF


def _byte_table() -> List[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


def _slice_tables(t0: List[int]) -> List[List[int]]:
    """T[k][b]: the CRC of byte b followed by k zero bytes (slice-by-8)."""
    tables = [t0]
    for _ in range(7):
        tables.append([(c >> 8) ^ t0[c & 0xFF] for c in tables[-1]])
    return tables


# The tables, and the choice of anycrc (checked against the pure result), are
# built by _init() on the first CRC, not at import: the server imports this
# module at start and most runs never DUMP or save an RDB file.
_T0: List[int] = []
_T: List[List[int]] = []
_TS: List[List[int]] = []
_PLANES: List[bytes] = []
_LITTLE = sys.byteorder == "little"


def _bytes_crc(crc: int, data: bytes) -> int:
    t = _T0
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def crc64(data: bytes, crc: int = 0) -> int:
    """The CRC-64/Jones of ``data``, continuing from ``crc`` (0 to start)."""
    if _native is _UNSET:
        _init()
    if _native is not None:
        return _native(data, crc)
    return crc64_pure(data, crc)


def crc64_pure(data: bytes, crc: int = 0) -> int:
    """:func:`crc64` in pure Python, whatever is installed."""
    if not _T0:
        _init_tables()
    if _PYPY:
        return _slice8_signed_crc(crc, data)
    if len(data) >= _LANES_MIN:
        return _lanes_crc(crc, bytes(data))
    return _slice8_crc(crc, data)


def _slice8_crc(crc: int, data: bytes) -> int:
    whole = len(data) & ~7
    if whole < 64:
        return _bytes_crc(crc, data)
    t0, t1, t2, t3, t4, t5, t6, t7 = _T
    view = memoryview(data)
    words = view[:whole].cast("B").cast("Q") if _LITTLE \
        else struct.unpack("<%dQ" % (whole // 8), view[:whole])
    for w in words:
        b = (w ^ crc).to_bytes(8, "little")
        crc = (t7[b[0]] ^ t6[b[1]] ^ t5[b[2]] ^ t4[b[3]]
               ^ t3[b[4]] ^ t2[b[5]] ^ t1[b[6]] ^ t0[b[7]])
    return _bytes_crc(crc, bytes(view[whole:]))


# -- PyPy: slice-by-8 over machine-word ints ------------------------------------------
#
# PyPy's JIT compiles a plain loop of shifts, masks and list lookups to machine
# code, as long as every int fits a machine word: unsigned CRCs of 2**63 and more
# would be big ints, so the tables and the running CRC hold the same 64 bits as
# signed ints (xor and masked shifts do not care), and the words are read as
# signed by an ``array("q")`` (iterating a memoryview cast is 4x slower).
# 12 MB: ~20 ms of CPU against ~360 ms for the lanes below; on CPython this loop
# is the slowest of all (2 MB: 190 ms, lanes 28 ms), hence the choice per runtime.

_PYPY = sys.implementation.name == "pypy"


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v




def _slice8_signed_crc(crc: int, data: bytes) -> int:
    whole = len(data) & ~7
    t0, t1, t2, t3, t4, t5, t6, t7 = _TS
    c = _signed(crc)
    words = array.array("q")
    words.frombytes(memoryview(data)[:whole])
    if not _LITTLE:
        words.byteswap()
    for w in words:
        w ^= c
        c = (t7[w & 0xFF] ^ t6[(w >> 8) & 0xFF] ^ t5[(w >> 16) & 0xFF] ^ t4[(w >> 24) & 0xFF]
             ^ t3[(w >> 32) & 0xFF] ^ t2[(w >> 40) & 0xFF] ^ t1[(w >> 48) & 0xFF]
             ^ t0[(w >> 56) & 0xFF])
    return _bytes_crc(c & _MASK, bytes(memoryview(data)[whole:]))


# -- long inputs: many lanes at once, vectorized with bytes.translate -----------------
#
# The input is cut into L lanes of S bytes, whose CRCs (from 0) are computed
# together: the running CRCs of all lanes are kept as 8 byte planes (plane k
# holds byte k of every lane's CRC, as one int), and one step of the byte-wise
# recurrence ``crc = T[(crc ^ b) & 255] ^ (crc >> 8)`` for all lanes is a
# strided slice (the lanes' next bytes), an xor, and 8 ``bytes.translate``
# table lookups over L bytes: C loops, S steps in all. The lane CRCs are then
# chained (CRC is linear: CRC(c, A + B) = zeros(CRC(c, A), len(B)) ^ CRC(0, B)),
# "appending S zero bytes" being a linear map applied with 8 table lookups.

_LANES_MIN = 1 << 16
_ZEROS: dict = {}  # S -> tables of the map "append S zero bytes"


def _apply(tables: List[List[int]], x: int) -> int:
    return (tables[0][x & 0xFF] ^ tables[1][(x >> 8) & 0xFF] ^ tables[2][(x >> 16) & 0xFF]
            ^ tables[3][(x >> 24) & 0xFF] ^ tables[4][(x >> 32) & 0xFF]
            ^ tables[5][(x >> 40) & 0xFF] ^ tables[6][(x >> 48) & 0xFF] ^ tables[7][x >> 56])


def _zeros_tables(span: int) -> List[List[int]]:
    """Tables of x -> CRC(x, span zero bytes), span a power of two, by squaring."""
    tables = _ZEROS.get(span)
    if tables is None:
        if span == 1:
            tables = [[_bytes_crc(b << (8 * k), b"\0") for b in range(256)] for k in range(8)]
        else:
            half = _zeros_tables(span // 2)
            tables = [[_apply(half, v) for v in row] for row in half]
        _ZEROS[span] = tables
    return tables


def _lanes_crc(crc: int, data: bytes) -> int:
    n = len(data)
    # lanes 4x more numerous than long: fewer Python steps, each over more bytes
    # (measured best of 1x..16x on 10 MB)
    span = 1 << max(8, (n.bit_length() + 1) // 2 - 2)
    lanes = n // span
    head = data[:lanes * span]
    planes = [0] * 8
    p0, p1, p2, p3, p4, p5, p6, p7 = _PLANES
    frombytes = int.from_bytes
    for i in range(span):
        idx = (planes[0] ^ frombytes(head[i::span], "little")).to_bytes(lanes, "little")
        planes = [frombytes(idx.translate(p0), "little") ^ planes[1],
                  frombytes(idx.translate(p1), "little") ^ planes[2],
                  frombytes(idx.translate(p2), "little") ^ planes[3],
                  frombytes(idx.translate(p3), "little") ^ planes[4],
                  frombytes(idx.translate(p4), "little") ^ planes[5],
                  frombytes(idx.translate(p5), "little") ^ planes[6],
                  frombytes(idx.translate(p6), "little") ^ planes[7],
                  frombytes(idx.translate(p7), "little")]
    zeros = _zeros_tables(span)
    columns = [p.to_bytes(lanes, "little") for p in planes]
    for lane in zip(*columns):
        crc = _apply(zeros, crc) ^ frombytes(bytes(lane), "little")
    return _bytes_crc(crc, data[lanes * span:])


def _load_native() -> Optional[Callable[[bytes, int], int]]:
    """anycrc's CRC-64/Redis, when installed and in agreement with ours."""
    if os.environ.get("DISTCACHE_PURE_CRC64"):
        return None
    try:
        import anycrc  # type: ignore[import-not-found]
        calc = anycrc.Model("CRC64-REDIS").calc
        sample = bytes(range(256)) * 300  # long enough for the lanes path
        if calc(b"123456789", 0) != 0xE9C6D914C4B8D9CA \
                or calc(sample, 0xDEADBEEF) != crc64_pure(sample, 0xDEADBEEF) \
                or calc(memoryview(sample)[3:77], 1) != crc64_pure(sample[3:77], 1):
            return None
        return calc
    except Exception:  # not installed, or a version without the model or its API
        return None


def _init_tables() -> None:
    # Filled in place (the loops read the module globals), _T0 last: it is the
    # "built" mark a thread snapshotting in the background may test meanwhile.
    t0 = _byte_table()
    _T[:] = _slice_tables(t0)
    _TS[:] = [[_signed(v) for v in t] for t in _T]
    _PLANES[:] = [bytes((t >> (8 * k)) & 0xFF for t in t0) for k in range(8)]
    _T0[:] = t0


_UNSET: Any = object()
_native: Any = _UNSET


def _init() -> None:
    """Choose the implementation, once. Idempotent: two threads racing here
    build the same tables and make the same choice."""
    global _native
    if not _T0:
        _init_tables()
    _native = _load_native()


def __getattr__(name: str) -> Any:
    # IMPLEMENTATION: which one :func:`crc64` runs ("anycrc" or "python"), for INFO
    # and benchmarks; asking decides it.
    if name == "IMPLEMENTATION":
        if _native is _UNSET:
            _init()
        return "python" if _native is None else "anycrc"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
