"""MurmurHash64A as hyperloglog.c seeds it, and an element's register and run.

In C with the optional ``HLL`` package (the ``hll`` extra), else in Python: one
element at a time, or a batch of one length in lanes of big integers."""
from __future__ import annotations

import os
import struct
from typing import Any, Callable, Dict, List, Optional, Sequence

from .layout import INDEX_MASK as _INDEX_MASK, P, Q

_M64 = (1 << 64) - 1
_MURMUR_M = 0xC6A4A7935BD1E995
_SEED = 0xADC83B19
_Q_BIT = 1 << Q
_unpack_from = struct.unpack_from
#: n -> unpacks n little-endian 64-bit blocks from the start of a bytes
_BLOCKS = [struct.Struct("<%dQ" % n).unpack_from for n in range(32)]
_PAD8 = bytes(8)


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
