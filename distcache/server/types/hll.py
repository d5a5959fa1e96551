"""HyperLogLog in Redis's own representation (hyperloglog.c), byte for byte.

A value is a string: a 16-byte header (``HYLL``, the encoding, 3 unused bytes,
the cached cardinality little-endian with bit 63 meaning "stale"), then either
16384 six-bit registers packed little-endian (dense, 12288 bytes) or sparse
opcodes: ``00xxxxxx`` a run of up to 64 zero registers, ``01xxxxxx yyyyyyyy``
up to 16384, ``1vvvvvxx`` up to 4 registers holding 1..32. Sparse updates split
and merge opcodes in the order Redis does, so the same adds give the same bytes,
and a sparse value is promoted to dense past ``hll-sparse-max-bytes`` or when a
register outgrows 32. During one command a sparse value is its parsed opcodes
plus a bytearray of them (kept between commands), and a dense one is read in
place and copied to a bytearray at its first change (or PFADD's kept copy, with
the registers unpacked, is edited: ``_DENSE``); either becomes bytes again
once, at the end. MurmurHash64A runs in C with the optional ``HLL`` package.
"""
from __future__ import annotations

import math
import os
import struct
from bisect import bisect_right
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence

P = 14
REGISTERS = 1 << P                    # 16384
Q = 64 - P
HEADER = 16
DENSE_SIZE = HEADER + REGISTERS * 6 // 8
_LAST = DENSE_SIZE - 1                # a register starting here has no next byte
MAGIC = b"HYLL"
DENSE, SPARSE = 0, 1
_STALE = 1 << 63
_M64 = (1 << 64) - 1
_MURMUR_M = 0xC6A4A7935BD1E995
_SEED = 0xADC83B19
_Q_BIT = 1 << Q
_INDEX_MASK = REGISTERS - 1
_unpack_from = struct.unpack_from
#: n -> unpacks n little-endian 64-bit blocks from the start of a bytes
_BLOCKS = [struct.Struct("<%dQ" % n).unpack_from for n in range(32)]
_PAD8 = bytes(8)
_ALPHA_INF = 0.721347520444481703680  # 0.5 / ln(2)
ZERO, XZERO, VAL = 0, 1, 2            # sparse opcode kinds


class InvalidHLL(Exception):
    """The value has the HLL header but its registers cannot be read."""


def murmurhash64a(data: bytes, seed: int = _SEED) -> int:
    """Redis's MurmurHash64A, as hyperloglog.c seeds it."""
    length = len(data)
    m, mask = _MURMUR_M, _M64
    h = seed ^ (length * m)
    blocks = length >> 3
    if blocks:
        # Only k needs its mask before the shift: the low 64 bits of a product
        # depend only on the factors' low 64 bits, so h is masked once a block.
        for k in (_BLOCKS[blocks](data) if blocks < 32 else _unpack_from("<%dQ" % blocks, data)):
            k = (k * m) & mask
            h = ((h ^ ((k ^ (k >> 47)) * m)) * m) & mask
    if length & 7:
        h = ((h ^ int.from_bytes(data[blocks << 3:], "little")) * m) & mask
    else:
        h &= mask
    h = ((h ^ (h >> 47)) * m) & mask
    return h ^ (h >> 47)


def _load_native() -> Optional[Callable[[bytes], int]]:
    """The ``HLL`` package's MurmurHash64A in C (the ``hll`` extra), seeded as Redis
    seeds it, when installed and in agreement with :func:`murmurhash64a`."""
    if os.environ.get("DISTCACHE_PURE_HLL_HASH"):
        return None
    try:
        from HLL import HyperLogLog  # type: ignore[import-not-found]
        # (its seed is a C int: Redis's 0xadc83b19 passed as the same 32 bits, signed)
        native = HyperLogLog(P, seed=_SEED - (1 << 32)).hash
        samples = [bytes(range(n)) for n in range(80)] + [
            b"element:%012d" % n for n in (0, 7, 99999)] + [bytes(range(256)) * 5, b"\xff" * 33]
        if any(native(e) != murmurhash64a(e) for e in samples):
            return None
        return native
    except Exception:  # not installed, or a version with another API or seed
        return None


_native = _load_native()
#: Which MurmurHash64A PFADD runs ("HLL" or "python"), for INFO and benchmarks.
IMPLEMENTATION = "python" if _native is None else "HLL"


def pattern_of(element: bytes) -> "tuple[int, int]":
    """(register, count): the register an element hashes to and its run of zeros + 1."""
    if _native is not None and element.__class__ is bytes:
        return _pattern(_native(element))
    return _pattern(murmurhash64a(element))


def _pattern(h: int) -> "tuple[int, int]":
    tail = (h >> P) | _Q_BIT
    return h & _INDEX_MASK, (tail & -tail).bit_length()


#: Fewer elements of one length than this are hashed one by one.
_LANES_MIN = 4
#: Elements hashed together at most (bounds the big integers to 16 KB).
_LANES_MAX = 1024
_lane_masks: Dict[int, "tuple[int, int]"] = {}


def hashes(elements: Sequence[bytes]) -> List[int]:
    """MurmurHash64A of every element, as :func:`murmurhash64a`.

    In C with the ``HLL`` package (:data:`IMPLEMENTATION`). Without it, elements of one length are hashed together, each in a 128-bit lane of a few
    big integers: a lane's product with the 64-bit constant fits its lane, so one
    multiply, mask or shift serves every element, at C speed (PFADD's cost was
    mostly these Python-level 64-bit operations, one element at a time)."""
    if _native is not None:
        try:
            return list(map(_native, elements))
        except TypeError:  # (it takes bytes only, not other buffers)
            pass
    n = len(elements)
    if n < _LANES_MIN:
        return [murmurhash64a(e) for e in elements]
    if len(set(map(len, elements))) == 1 and n <= _LANES_MAX:
        return _lane_hashes(elements, len(elements[0]))
    by_length: Dict[int, List[int]] = {}
    for i, element in enumerate(elements):
        by_length.setdefault(len(element), []).append(i)
    out = [0] * n
    for length, where in by_length.items():
        for at in range(0, len(where), _LANES_MAX):
            part = where[at:at + _LANES_MAX]
            group = [elements[i] for i in part]
            found = _lane_hashes(group, length) if len(part) >= _LANES_MIN \
                else [murmurhash64a(e) for e in group]
            for i, h in zip(part, found):
                out[i] = h
    return out


def _lane_hashes(elements: Sequence[bytes], length: int) -> List[int]:
    """MurmurHash64A of ``elements``, all ``length`` bytes long, in 128-bit lanes."""
    if length <= _PACKED_MAX:
        return _packed_hashes(elements, length)
    n = len(elements)
    masks = _lane_masks.get(n)
    if masks is None:
        ones = int.from_bytes((b"\x01" + bytes(15)) * n, "little")  # 1 in every lane
        masks = _lane_masks[n] = (ones, ones * _M64)
    ones, lanes = masks
    m = _MURMUR_M
    h = ((_SEED ^ (length * m)) & _M64) * ones
    end = length & ~7
    for at in range(0, end, 8):
        # a block of every element, each followed by 8 zero bytes: one lane each
        k = int.from_bytes(_PAD8.join([e[at:at + 8] for e in elements]), "little")
        k = (k * m) & lanes
        k = ((k ^ (k >> 47)) & lanes) * m
        h = (((h ^ k) & lanes) * m) & lanes
    if length & 7:
        k = int.from_bytes(bytes(16 - (length & 7)).join([e[end:] for e in elements]),
                           "little")
        h = ((h ^ k) * m) & lanes
    h = (((h ^ (h >> 47)) & lanes) * m) & lanes
    h ^= h >> 47  # (spills into the lanes' upper halves, which are not read)
    return list(_unpack_from("<%dQ" % (2 * n), h.to_bytes(16 * n, "little"))[::2])


#: Elements up to this long are hashed in lanes as wide as they are (see _packed_hashes).
_PACKED_MAX = 32
#: (count, length) -> (1 in every lane, the low 64 bits of every lane, the tail's
#: bytes in every lane, the lanes' unpacker, the seeded start in every lane)
_packed_layouts: Dict["tuple[int, int]", "tuple[int, int, int, Any, int]"] = {}
#: (count, length, first 8 bytes as an int) -> (those bytes in every lane, the state after
#: that block in every lane): batches whose elements share their first block
_shared_firsts: Dict["tuple[int, int, int]", "tuple[int, int]"] = {}


def _packed_hashes(elements: Sequence[bytes], length: int) -> List[int]:
    """:func:`_lane_hashes` of short elements: each element is a lane of its own
    (at least 16 bytes, for a block's 128-bit product), so all of them are one
    big integer at once, and a block of every element is a shift and a mask of
    it, where cutting 8 bytes out of each element took a Python slice each.

    Elements often share their first 8 bytes (``element:...``, ``user:1234...``):
    the state after that block is then the same in every lane, and is computed
    once and kept (a quarter of a 20-byte batch's big-integer operations)."""
    n = len(elements)
    width = length if length > 16 else 16
    layout = _packed_layouts.get((n, length))
    if layout is None:
        if len(_packed_layouts) > 256:  # (counts and lengths vary: bounded)
            _packed_layouts.clear()
        ones = int.from_bytes((b"\x01" + bytes(width - 1)) * n, "little")
        layout = _packed_layouts[n, length] = (
            ones, ones * _M64, ones * ((1 << (length & 7) * 8) - 1),
            struct.Struct("<" + "Q%dx" % (width - 8) * n).unpack_from,
            ((_SEED ^ (length * _MURMUR_M)) & _M64) * ones)
    ones, lanes, tails, unpack, h = layout
    m = _MURMUR_M
    data = int.from_bytes(bytes(width - length).join(elements), "little")
    end = (length & ~7) * 8
    at = 0
    if end:
        first = data & lanes
        block = first & _M64  # (the first element's)
        key = (n, length, block)
        shared = _shared_firsts.get(key)
        if shared is None:
            if first == block * ones:  # (only a shared block is remembered)
                k = (block * m) & _M64
                k = ((k ^ (k >> 47)) * m) & _M64
                if len(_shared_firsts) > 256:
                    _shared_firsts.clear()
                shared = _shared_firsts[key] = (
                    first, ((((_SEED ^ (length * m)) ^ k) * m) & _M64) * ones)
        if shared is not None and first == shared[0]:
            h, at = shared[1], 64
        else:  # the first block, already cut out
            k = (first * m) & lanes
            k = ((k ^ (k >> 47)) & lanes) * m
            h = (((h ^ k) & lanes) * m) & lanes
            at = 64
    for at in range(at, end, 64):
        k = (((data >> at) & lanes) * m) & lanes
        k = ((k ^ (k >> 47)) & lanes) * m
        h = (((h ^ k) & lanes) * m) & lanes
    if length & 7:
        k = (data >> end) & tails
        h = ((h ^ k) * m) & lanes
    h = (((h ^ (h >> 47)) & lanes) * m) & lanes
    h ^= h >> 47  # (spills above the lanes' low 64 bits, which are not read)
    return list(unpack(h.to_bytes(width * n, "little")))


def is_hll(value: bytes) -> bool:
    """Redis's isHLLObjectOrReply: the header checks, no register parsing."""
    return (len(value) >= HEADER and value[:4] == MAGIC and value[4] <= SPARSE
            and (value[4] != DENSE or len(value) == DENSE_SIZE))


def cached_count(value: bytes) -> Optional[int]:
    card = int.from_bytes(value[8:16], "little")
    return None if card & _STALE else card


def with_cached_count(value: bytes, count: int) -> bytes:
    new = value[:8] + count.to_bytes(8, "little") + value[16:]
    entry = _DENSE.pop(id(value), None)
    if entry is not None:  # PFADD's copy stays in step (see _DENSE)
        entry[1][8:16] = new[8:16]
        _remember_dense(new, entry[1], entry[2])
    return new


def empty() -> bytes:
    """A new HLL: sparse, one XZERO opcode over every register, cached count 0."""
    return MAGIC + bytes([SPARSE]) + bytes(11) + bytes([0x7F, 0xFF])


# -- dense registers ---------------------------------------------------------------------

# Registers as one byte each (16384 bytes): unpacked and packed with bytes.translate
# over the three byte positions of every 4-register group, and merged eight bits a
# lane in big integers, so no Python loop runs per register.

def _table(f) -> bytes:
    return bytes(f(b) & 0xFF for b in range(256))


_LOW6 = _table(lambda b: b & 63)                      # register 0 of a group, from byte 0
_HIGH2 = _table(lambda b: b >> 6)                     # register 1's low 2 bits, from byte 0
_LOW4_UP2 = _table(lambda b: (b & 15) << 2)           # register 1's high 4 bits, from byte 1
_HIGH4 = _table(lambda b: b >> 4)                     # register 2's low 4 bits, from byte 1
_LOW2_UP4 = _table(lambda b: (b & 3) << 4)            # register 2's high 2 bits, from byte 2
_HIGH6 = _table(lambda b: b >> 2)                     # register 3, from byte 2
_UP6 = _table(lambda b: (b & 3) << 6)                 # packing: register 1 into byte 0
_DOWN2 = _table(lambda b: b >> 2)                     # register 1 into byte 1
_UP4 = _table(lambda b: (b & 15) << 4)                # register 2 into byte 1
_DOWN4 = _table(lambda b: b >> 4)                     # register 2 into byte 2
_UP2 = _table(lambda b: (b & 63) << 2)                # register 3 into byte 2
_LANE_HIGH = int.from_bytes(b"\x80" * REGISTERS, "little")


def _or(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") | int.from_bytes(b, "little")).to_bytes(len(a), "little")


def register_bytes(packed: bytes) -> bytes:
    """16384 register values, a byte each, from 12288 packed bytes."""
    b0, b1, b2 = packed[0::3], packed[1::3], packed[2::3]
    out = bytearray(REGISTERS)
    out[0::4] = b0.translate(_LOW6)
    out[1::4] = _or(b0.translate(_HIGH2), b1.translate(_LOW4_UP2))
    out[2::4] = _or(b1.translate(_HIGH4), b2.translate(_LOW2_UP4))
    out[3::4] = b2.translate(_HIGH6)
    return bytes(out)


def dense_registers(packed: bytes) -> List[int]:
    """16384 register values from 12288 packed bytes (4 registers in every 3 bytes)."""
    return list(register_bytes(packed))


def pack_dense(registers: "bytes | List[int]") -> bytes:
    """12288 packed bytes from 16384 register values (each below 64)."""
    regs = bytes(registers)
    r0, r1, r2, r3 = regs[0::4], regs[1::4], regs[2::4], regs[3::4]
    out = bytearray(REGISTERS * 6 // 8)
    out[0::3] = _or(r0, r1.translate(_UP6))
    out[1::3] = _or(r1.translate(_DOWN2), r2.translate(_UP4))
    out[2::3] = _or(r2.translate(_DOWN4), r3.translate(_UP2))
    return bytes(out)


def max_registers(a: int, b: int) -> int:
    """Lane-wise maximum of two register sets held as integers (a byte a register).

    Setting each lane's high bit before subtracting keeps every lane's difference
    inside its lane (registers are below 64), and that bit then says a >= b."""
    keep_a = (((a | _LANE_HIGH) - b) & _LANE_HIGH) >> 7
    return b ^ ((a ^ b) & keep_a * 0xFF)


def dense_get(buf: bytes, index: int) -> int:
    """Register ``index`` of a dense value ``buf`` (header included)."""
    bit = index * 6
    at, shift = HEADER + (bit >> 3), bit & 7
    word = buf[at] | (buf[at + 1] << 8 if at + 1 < len(buf) else 0)
    return (word >> shift) & 63


#: Dense values PFADD wrote lately, by id: [the value, a bytearray copy of it, its
#: registers a byte each or None]. The next PFADD to one of them edits the copy and
#: makes its new value with one 12 KB copy, not two, and with the registers a run
#: of PFADDs compares a hash's count in a few operations. An entry holds its value,
#: so the id is that object's as long as the entry lives; a user of an entry takes
#: it out (it mutates it) and puts it back under the value it writes.
_DENSE: "OrderedDict[int, list]" = OrderedDict()
_DENSE_MAX = 8
#: A run of PFADDs unpacks a dense value's registers when it hashes at least this
#: many elements (unpacking costs about what ~50 compares save).
_UNPACK_MIN = 8
#: r -> the low r bits set: a hash whose bits above the index have any of them
#: set has fewer than r trailing zeros, so it cannot raise a register holding r.
_BELOW = [(1 << r) - 1 for r in range(64)]


def _remember_dense(value: bytes, buf: bytearray, regs: Optional[bytearray]) -> None:
    _DENSE[id(value)] = [value, buf, regs]
    if len(_DENSE) > _DENSE_MAX:
        _DENSE.popitem(last=False)


def dense_add(value: bytes, element: bytes) -> Optional[bytes]:
    """PFADD of one element to a dense value: the new value (its count marked
    stale), or None when the element's register is already as high."""
    index, count = pattern_of(element)
    bit = index * 6
    at, shift = HEADER + (bit >> 3), bit & 7
    word = value[at] | (value[at + 1] << 8 if at + 1 < DENSE_SIZE else 0)
    if (word >> shift) & 63 >= count:
        return None
    entry = _DENSE.pop(id(value), None)
    buf, regs = (entry[1], entry[2]) if entry is not None else (bytearray(value), None)
    dense_set(buf, index, count)
    if regs is not None:
        regs[index] = count
    buf[15] |= 0x80
    new = bytes(buf)
    _remember_dense(new, buf, regs)
    return new


def dense_set(buf: bytearray, index: int, count: int) -> bool:
    """Raise register ``index`` of a dense value ``buf`` (header included) to ``count``."""
    bit = index * 6
    at, shift = HEADER + (bit >> 3), bit & 7
    word = buf[at] | (buf[at + 1] << 8 if at + 1 < len(buf) else 0)
    if (word >> shift) & 63 >= count:
        return False
    word = (word & ~(63 << shift)) | (count << shift)
    buf[at] = word & 0xFF
    if at + 1 < len(buf):
        buf[at + 1] = word >> 8
    return True


# -- sparse opcodes ----------------------------------------------------------------------

def _op_bytes(kind: int, value: int, run: int) -> bytes:
    """One sparse opcode (VAL, ZERO or XZERO) as Redis writes it."""
    if kind == VAL:
        return bytes((0x80 | (value - 1) << 2 | (run - 1),))
    if kind == XZERO:
        return bytes(((run - 1) >> 8 | 0x40, (run - 1) & 0xFF))
    return bytes((run - 1,))


class Sparse:
    """Sparse opcodes as columns, with the first register each covers (for bisect),
    and the body's bytes kept in step: an update splices a few bytes (one memmove,
    as Redis does) and writing the value back is one copy. An opcode's byte
    offset is its index plus the XZERO opcodes (2 bytes) before it, counted in
    the ``kinds`` bytearray at C speed."""

    __slots__ = ("kinds", "values", "runs", "firsts", "body")

    def __init__(self, body: bytes) -> None:
        kinds = bytearray()
        self.values: List[int] = []
        self.runs: List[int] = []
        self.firsts: List[int] = []
        values, runs, firsts = self.values, self.runs, self.firsts
        first, i, n = 0, 0, len(body)
        while i < n:
            op = body[i]
            if op & 0x80:
                kinds.append(VAL)
                values.append((op >> 2 & 0x1F) + 1)
                run = (op & 3) + 1
                i += 1
            elif op & 0x40:
                if i + 1 >= n:
                    raise InvalidHLL()
                kinds.append(XZERO)
                values.append(0)
                run = ((op & 0x3F) << 8 | body[i + 1]) + 1
                i += 2
            else:
                kinds.append(ZERO)
                values.append(0)
                run = (op & 0x3F) + 1
                i += 1
            runs.append(run)
            firsts.append(first)
            first += run
        self.kinds = kinds
        self.body = bytearray(body)
        if first != REGISTERS:
            raise InvalidHLL()

    def registers(self) -> bytes:
        """Every register, a byte each."""
        return b"".join([bytes((value,)) * run for value, run in zip(self.values, self.runs)])

    def _offset(self, at: int) -> int:
        return at + self.kinds.count(XZERO, 0, at)

    def set(self, index: int, count: int, max_bytes: int) -> Optional[bool]:
        """hllSparseSet: True if changed, False if not, None if it must become dense."""
        if count > 32:
            return None
        at = bisect_right(self.firsts, index) - 1
        kind, run, first = self.kinds[at], self.runs[at], self.firsts[at]
        if kind == VAL:
            current = self.values[at]
            if current >= count:
                return False
            if run == 1:
                self.values[at] = count
                self.body[self._offset(at)] = 0x80 | (count - 1) << 2
                self._merge_from(at - 1)
                return True
        elif kind == ZERO and run == 1:
            self.kinds[at], self.values[at] = VAL, count
            self.body[self._offset(at)] = 0x80 | (count - 1) << 2
            self._merge_from(at - 1)
            return True
        # Split the opcode: [before] VAL(count) [after], each side as Redis writes it.
        last = first + run - 1
        fill = self.values[at]

        def run_of(start: int, length: int) -> tuple:
            if kind == VAL:
                return (VAL, fill, length, start)
            return (XZERO if length > 64 else ZERO, 0, length, start)

        pieces = [run_of(first, index - first)] if index != first else []
        pieces.append((VAL, count, 1, index))
        if index != last:
            pieces.append(run_of(index + 1, last - index))
        old = 2 if kind == XZERO else 1
        grown = sum(2 if p[0] == XZERO else 1 for p in pieces) - old
        if grown > 0 and HEADER + len(self.body) + grown > max_bytes:
            return None
        offset = self._offset(at)
        self.body[offset:offset + old] = b"".join([_op_bytes(p[0], p[1], p[2])
                                                   for p in pieces])
        self.kinds[at:at + 1] = bytes([p[0] for p in pieces])
        self.values[at:at + 1] = [p[1] for p in pieces]
        self.runs[at:at + 1] = [p[2] for p in pieces]
        self.firsts[at:at + 1] = [p[3] for p in pieces]
        self._merge_from(at - 1)
        return True

    def _merge_from(self, at: int) -> None:
        """Step 4 of hllSparseSet: merge equal adjacent VALs, over at most 5 opcodes."""
        at = max(at, 0)
        kinds, values, runs = self.kinds, self.values, self.runs
        scans = 5
        while at < len(kinds) and scans > 0:
            scans -= 1
            if kinds[at] != VAL:
                at += 1
                continue
            if at + 1 < len(kinds) and kinds[at + 1] == VAL and values[at] == values[at + 1] \
                    and runs[at] + runs[at + 1] <= 4:
                run = runs[at + 1] = runs[at + 1] + runs[at]
                self.firsts[at + 1] = self.firsts[at]
                offset = self._offset(at)  # two 1-byte VALs become one
                self.body[offset:offset + 2] = bytes((0x80 | (values[at] - 1) << 2 | (run - 1),))
                for column in (kinds, values, runs, self.firsts):
                    del column[at]
                continue
            at += 1


# -- counting ----------------------------------------------------------------------------

def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if previous == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1 - x) ** 2 * y
        if previous == z:
            return z / 3


def estimate(registers: bytes) -> int:
    """Ertl's estimator over the register histogram, as Redis 5+ computes it."""
    histogram = [0] * 64
    for value in range(max(registers) + 1):
        histogram[value] = registers.count(value)
    m = float(REGISTERS)
    z = m * _tau((m - histogram[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histogram[j]
        z *= 0.5
    z += m * _sigma(histogram[0] / m)
    return int(math.floor(_ALPHA_INF * m * m / z + 0.5))  # llroundl: half away from 0


def registers_of(value: bytes) -> bytes:
    """Every register of an HLL value, a byte each (InvalidHLL if its body is corrupt)."""
    if value[4] == DENSE:
        entry = _DENSE.get(id(value))
        if entry is not None and entry[2] is not None:  # unpacked by PFADD already
            return bytes(entry[2])
        return register_bytes(value[HEADER:])
    return Sparse(value[HEADER:]).registers()


#: Parsed sparse bodies of recently written HLLs (body -> Sparse): a run of PFADDs
#: on one key parses its opcodes once, not at every command. Keyed by the body's
#: bytes, so a value changed any other way (SETRANGE...) simply misses; an editor
#: takes its entry out (it owns and mutates it) and hands it back under what it writes.
_PARSED: "OrderedDict[bytes, Sparse]" = OrderedDict()
_PARSED_MAX = 8


def _remember(body: bytes, sparse: Sparse) -> None:
    _PARSED[body] = sparse
    if len(_PARSED) > _PARSED_MAX:
        _PARSED.popitem(last=False)


class Editor:
    """One command's changes to an HLL value: a sparse one as parsed columns, a dense
    one read in place and copied to a bytearray (header included) at its first change
    (or taken from :data:`_DENSE`, already copied, with its registers unpacked)."""

    __slots__ = ("header", "sparse", "dense", "regs", "source", "max_bytes", "changed",
                 "entry")

    def __init__(self, value: bytes, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.sparse: Optional[Sparse] = None
        #: the whole value (header included) once a dense register changed
        self.dense: Optional[bytearray] = None
        #: a dense value's registers, a byte each, when unpacked (kept in step)
        self.regs: Optional[bytearray] = None
        self.source = value
        self.changed = False
        self.entry = False  # whether dense and regs came from _DENSE
        if value[4] != DENSE:
            self.header = bytearray(value[:HEADER])
            body = value[HEADER:]
            cached = _PARSED.pop(body, None)
            self.sparse = cached if cached is not None else Sparse(body)
        else:
            entry = _DENSE.pop(id(value), None)
            if entry is not None:
                self.dense, self.regs, self.entry = entry[1], entry[2], True

    def release(self) -> None:
        """An editor that changed nothing gives its parsed body back to the cache."""
        if self.changed:
            return
        if self.sparse is not None:
            _remember(self.source[HEADER:], self.sparse)
            self.sparse = None
        elif self.entry:
            _remember_dense(self.source, self.dense, self.regs)  # type: ignore[arg-type]
            self.entry = False

    def to_dense(self) -> None:
        if self.sparse is not None:
            self.header[4] = DENSE
            registers = self.sparse.registers()
            self.dense = self.header + pack_dense(registers)
            self.regs = bytearray(registers)
            self.sparse = None
            self.changed = True
        elif self.dense is None:
            self.dense = bytearray(self.source)

    def registers(self) -> List[int]:
        """The dense registers (after :meth:`to_dense`)."""
        return dense_registers(bytes(self.dense if self.dense is not None
                                     else self.source)[HEADER:])

    def set(self, index: int, count: int) -> bool:
        if self.sparse is not None:
            changed = self.sparse.set(index, count, self.max_bytes)
            if changed is not None:
                self.changed = self.changed or changed
                return changed
            self.to_dense()
        dense = self.dense
        if dense is None:  # unchanged so far: read the register in place
            if dense_get(self.source, index) >= count:
                return False
            dense = self.dense = bytearray(self.source)
        if not dense_set(dense, index, count):
            return False
        if self.regs is not None:
            self.regs[index] = count
        self.changed = True
        return True

    def add_hashes(self, hashes: Sequence[int], marks: Sequence[Any] = (False, True)
                   ) -> List[Any]:
        """:meth:`set` of each hashed element's register (see :func:`hashes`);
        whether each raised it, as ``marks[1]`` or ``marks[0]`` (PFADD's run asks for
        its replies). A dense value's registers are read and raised here."""
        if self.sparse is not None:
            return [marks[self.set(*_pattern(h))] for h in hashes]
        if self.regs is None and len(hashes) >= _UNPACK_MIN:
            if self.dense is None:
                self.dense = bytearray(self.source)
            self.regs = bytearray(register_bytes(self.dense[HEADER:]))
        if self.regs is not None:
            return self._add_unpacked(hashes, marks)
        buf = self.dense if self.dense is not None else self.source
        copied = self.dense is not None
        no, yes = marks
        out = []
        for h in hashes:
            tail = (h >> P) | _Q_BIT
            count = (tail & -tail).bit_length()
            bit = (h & _INDEX_MASK) * 6
            at, shift = HEADER + (bit >> 3), bit & 7
            word = buf[at] | buf[at + 1] << 8 if at < _LAST else buf[at]
            if (word >> shift) & 63 >= count:
                out.append(no)
                continue
            if not copied:  # the first change: the value is copied once
                buf = self.dense = bytearray(self.source)
                copied = True
            word = (word & ~(63 << shift)) | (count << shift)
            buf[at] = word & 0xFF
            if at < _LAST:
                buf[at + 1] = word >> 8
            out.append(yes)
            self.changed = True
        return out

    def _add_unpacked(self, hashes: Sequence[int], marks: Sequence[Any]) -> List[Any]:
        """:meth:`add_hashes` with the registers unpacked: most hashes raise nothing,
        and that is seen from the register and a mask, without the count."""
        regs, buf, below = self.regs, self.dense, _BELOW
        assert regs is not None and buf is not None
        yes = marks[1]
        out = [marks[0]] * len(hashes)
        j = -1
        for h in hashes:
            j += 1
            tail = h >> P
            index = h & _INDEX_MASK
            if tail & below[regs[index]]:
                continue
            tail |= _Q_BIT
            count = (tail & -tail).bit_length()
            if count <= regs[index]:
                continue  # (a register at the maximum, 51)
            regs[index] = count
            bit = index * 6
            at, shift = HEADER + (bit >> 3), bit & 7
            word = buf[at] | buf[at + 1] << 8 if at < _LAST else buf[at]
            word = (word & ~(63 << shift)) | (count << shift)
            buf[at] = word & 0xFF
            if at < _LAST:
                buf[at + 1] = word >> 8
            out[j] = yes
            self.changed = True
        return out

    def value(self, stale: bool = True) -> bytes:
        """The new value; the editor is done (its parsed body goes to the cache)."""
        if self.sparse is not None:
            if stale:
                self.header[15] |= 0x80
            body = bytes(self.sparse.body)
            _remember(body, self.sparse)
            self.sparse = None
            return bytes(self.header) + body
        dense = self.dense if self.dense is not None else bytearray(self.source)
        if stale:
            dense[15] |= 0x80
        out = bytes(dense)
        _remember_dense(out, dense, self.regs)
        self.entry = False
        return out
