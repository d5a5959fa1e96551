"""MurmurHash64A as hyperloglog.c seeds it, and an element's register and run.

In C with the optional ``HLL`` package (the ``hll`` extra), else in Python: one
element at a time, or a batch of one length in lanes of big integers."""
from __future__ import annotations

import os
import struct
from typing import Callable, Dict, List, Optional, Sequence

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


def hashes(elements: Sequence[bytes]) -> Sequence[int]:
    """MurmurHash64A of every element, as :func:`murmurhash64a` (a list or a tuple).

    In C with the ``HLL`` package (:data:`IMPLEMENTATION`). Without it, elements of
    one length are hashed together, each in a 128-bit lane of a few big integers: a
    lane's product with the 64-bit constant fits its lane, so one multiply, mask or
    shift serves every element, at C speed (PFADD's cost was mostly these
    Python-level 64-bit operations, one element at a time)."""
    if _native is not None:
        try:
            return list(map(_native, elements))
        except TypeError:  # (it takes bytes only, not other buffers)
            pass
    n = len(elements)
    if n < _LANES_MIN:
        return [murmurhash64a(e) for e in elements]
    length = len(elements[0])
    if length <= _PACKED_MAX and n <= _LANES_MAX:
        found = _packed_hashes(elements, length)
        if found is not None:
            return found
    if n <= _LANES_MAX and len(set(map(len, elements))) == 1:
        if length <= _PACKED_MAX:
            return _packed_hashes(elements, length, True)  # type: ignore[return-value]
        return _lane_hashes(elements, length)
    by_length: Dict[int, List[int]] = {}
    for i, element in enumerate(elements):
        by_length.setdefault(len(element), []).append(i)
    out = [0] * n
    for length, where in by_length.items():
        for at in range(0, len(where), _LANES_MAX):
            part = where[at:at + _LANES_MAX]
            group = [elements[i] for i in part]
            if len(part) < _LANES_MIN:
                found: Sequence[int] = [murmurhash64a(e) for e in group]
            elif length <= _PACKED_MAX:
                found = _packed_hashes(group, length, True)  # type: ignore[assignment]
            else:
                found = _lane_hashes(group, length)
            for i, h in zip(part, found):
                out[i] = h
    return out


def _lane_hashes(elements: Sequence[bytes], length: int) -> List[int]:
    """MurmurHash64A of ``elements``, all ``length`` bytes long, in 128-bit lanes."""
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
#: (count, length) -> _Layout: the constants of a batch's lanes
_packed_layouts: Dict["tuple[int, int]", "_Layout"] = {}
#: (count, length, first 8 bytes as an int) -> (those bytes in every lane, the state
#: after that block in every lane): batches whose elements share their first block
_shared_firsts: Dict["tuple[int, int, int]", "tuple[int, int]"] = {}


#: The byte after each element in its lane (then zeros): with no other byte of the
#: batch at 0x80 or above, it shows that every element is as long as the first (see
#: _packed_hashes: mapping len over the elements cost a tenth of the batch's hash).
_SEP = b"\x80"
_ASCII8 = 0x8080808080808080  # (the high bits of an 8-byte block)


class _Layout:
    """The lanes of ``count`` elements of ``length`` bytes: each element, a
    :data:`_SEP` and zeros to 16 bytes at least (for a block's 128-bit product)."""

    __slots__ = ("pad", "joined", "high", "seps", "check", "expect", "ones", "lanes",
                 "tails", "start", "end", "size", "unpack", "after_first")

    def __init__(self, count: int, length: int) -> None:
        width = length + 1 if length >= 16 else 16
        ones = int.from_bytes((b"\x01" + bytes(width - 1)) * count, "little")
        self.pad = _SEP + bytes(width - length - 1)  # (joins the elements into lanes)
        self.joined = width * count - len(self.pad)  # the joined elements' size
        self.high = int.from_bytes(b"\x80" * width * count, "little")  # every byte's
        self.seps = int.from_bytes((bytes(length) + self.pad) * (count - 1), "little")  # SEPs
        self.ones = ones                  # 1 in every lane
        self.lanes = ones * _M64          # the low 64 bits of every lane
        self.tails = ones * ((1 << (length & 7) * 8) - 1)  # the tail's bytes
        self.start = ((_SEED ^ (length * _MURMUR_M)) & _M64) * ones  # the seeded state
        self.end = (length & ~7) * 8      # the bit where the tail starts
        self.size = width * count
        self.unpack = struct.Struct("<" + "Q%dx" % (width - 8) * count).unpack_from
        #: the lanes' first blocks and every high bit, and what they hold when the
        #: elements are aligned and share the last shared (ASCII) first block met
        self.check, self.expect = self.lanes | self.high, -1
        self.after_first = 0  # the state after that block, in every lane


def _packed_hashes(elements: Sequence[bytes], length: int, same_length: bool = False
                   ) -> Optional[Sequence[int]]:
    """:func:`_lane_hashes` of short elements: each element is a lane of its own,
    so all of them are one big integer at once, and a block of every element is a
    shift and a mask of it, where cutting 8 bytes out of each element took a
    Python slice each.

    Elements often share their first 8 bytes (``element:...``, ``user:1234...``):
    the state after that block is then the same in every lane, and is computed
    once and kept (a quarter of a 20-byte batch's big-integer operations).

    None when the elements are not all ``length`` bytes long, unless ``same_length``
    says they are. Seen from the joined lanes: when the only bytes at 0x80 or above
    are the :data:`_SEP` after each lane's element, and where an element of
    ``length`` bytes puts it, every element but the last is that long, and the
    size gives the last. (Other elements are checked one by one, by the caller.)"""
    layout = _packed_layouts.get((len(elements), length))
    if layout is None:
        if len(_packed_layouts) > 256:  # (counts and lengths vary: bounded)
            _packed_layouts.clear()
        layout = _packed_layouts[len(elements), length] = _Layout(len(elements), length)
    m, lanes, end = _MURMUR_M, layout.lanes, layout.end
    joined = layout.pad.join(elements)
    data = int.from_bytes(joined, "little")
    if end and data & layout.check == layout.expect and len(joined) == layout.joined:
        h = layout.after_first  # aligned, and the batch before's shared first block
    else:
        if not same_length and (data & layout.high != layout.seps
                                or len(joined) != layout.joined):
            return None
        h = _first_block(layout, data & lanes, len(elements), length) if end \
            else layout.start
    at = 64
    while at < end:  # (most batches have one block here: no range to build)
        k = (((data >> at) & lanes) * m) & lanes
        k = ((k ^ (k >> 47)) & lanes) * m
        h = (((h ^ k) & lanes) * m) & lanes
        at += 64
    if length & 7:
        h = ((h ^ ((data >> end) & layout.tails)) * m) & lanes
    h = (((h ^ (h >> 47)) & lanes) * m) & lanes
    h ^= h >> 47  # (spills above the lanes' low 64 bits, which are not read)
    return layout.unpack(h.to_bytes(layout.size, "little"))


def _first_block(layout: _Layout, first: int, count: int, length: int) -> int:
    """The state after the first block in every lane (``first``: that block of every
    element); kept when the elements share it (see :data:`_shared_firsts`)."""
    m, lanes = _MURMUR_M, layout.lanes
    block = first & _M64  # (the first element's)
    if first != block * layout.ones:
        k = (first * m) & lanes
        k = ((k ^ (k >> 47)) & lanes) * m
        return (((layout.start ^ k) & lanes) * m) & lanes
    key = (count, length, block)
    shared = _shared_firsts.get(key)
    if shared is None:
        k = (block * m) & _M64
        k = ((k ^ (k >> 47)) * m) & _M64
        if len(_shared_firsts) > 256:
            _shared_firsts.clear()
        shared = _shared_firsts[key] = (first, ((((_SEED ^ (length * m)) ^ k) * m) & _M64)
                                        * layout.ones)
    if not block & _ASCII8:  # (the next batch's check needs no high bit in it)
        layout.expect, layout.after_first = shared[0] | layout.seps, shared[1]
    return shared[1]
