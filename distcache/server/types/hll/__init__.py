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

The parts: ``layout`` (the header and constants), ``murmur`` (the hash, an
element's register and run), ``registers`` (the dense codec), ``sparse`` (the
opcodes), ``estimate`` (the count); here the edits and the caches between commands.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, List, Optional, Sequence

from .estimate import estimate
from .layout import (DENSE, DENSE_SIZE, HEADER, INDEX_MASK as _INDEX_MASK, MAGIC, P, Q,
                     REGISTERS, SPARSE, InvalidHLL, cached_count, empty, is_hll)
from .murmur import IMPLEMENTATION, _pattern, hashes, murmurhash64a, pattern_of
from .registers import (dense_get, dense_registers, dense_set, max_registers, pack_dense,
                        register_bytes)
from .sparse import VAL, XZERO, ZERO, Sparse

__all__ = ["DENSE", "DENSE_SIZE", "HEADER", "IMPLEMENTATION", "MAGIC", "P", "Q", "REGISTERS",
           "SPARSE", "VAL", "XZERO", "ZERO", "Editor", "InvalidHLL", "Sparse", "cached_count",
           "dense_add", "dense_get", "dense_registers", "dense_set", "empty", "estimate",
           "hashes", "is_hll", "max_registers", "murmurhash64a", "pack_dense",
           "pattern_of", "register_bytes", "registers_of", "with_cached_count"]

_LAST = DENSE_SIZE - 1                # a register starting here has no next byte
_Q_BIT = 1 << Q


def with_cached_count(value: bytes, count: int) -> bytes:
    new = value[:8] + count.to_bytes(8, "little") + value[16:]
    entry = _DENSE.pop(id(value), None)
    if entry is not None:  # PFADD's copy stays in step (see _DENSE)
        entry[1][8:16] = new[8:16]
        _remember_dense(new, entry[1], entry[2])
    return new


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
#: r -> the low r bits above the index set: a hash with any of them set has fewer
#: than r trailing zeros above its index, so it cannot raise a register holding r.
_BELOW = [((1 << r) - 1) << P for r in range(64)]
_LOW_BIT = 1 << P
#: index -> (the first of the two bytes holding the register in a dense value, its
#: shift in them): a two-byte window each, the last register's ending the value
_SLOTS = [(HEADER + (i * 6 >> 3), i * 6 & 7) for i in range(REGISTERS - 1)]
_SLOTS.append((DENSE_SIZE - 2, ((REGISTERS - 1) * 6 & 7) + 8))
#: shift -> the window's bits outside the register
_KEEP = [0xFFFF ^ (63 << shift) for shift in range(16)]


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
        regs, buf, below, slots = self.regs, self.dense, _BELOW, _SLOTS
        assert regs is not None and buf is not None
        out = [marks[0]] * len(hashes)
        raised = []
        for h in hashes:
            index = h & _INDEX_MASK
            if h & below[regs[index]]:
                continue
            # the count: the bits from 14 up to the lowest set one flip (h >= 2**14
            # here but for a hash whose 50 high bits are all zero, counted 51)
            count = (h ^ (h - _LOW_BIT)).bit_length() - P if h >= _LOW_BIT else Q + 1
            if count <= regs[index]:
                continue  # (a register at the maximum, 51)
            regs[index] = count
            at, shift = slots[index]
            word = ((buf[at] | buf[at + 1] << 8) & _KEEP[shift]) | count << shift
            buf[at] = word & 0xFF
            buf[at + 1] = word >> 8
            raised.append(h)
        if raised:
            self.changed = True
            yes, where = marks[1], hashes.index
            for h in raised:  # (a hash's first position: a repeat raises nothing)
                out[where(h)] = yes
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
