"""Sparse opcodes, parsed and updated in the order Redis's hllSparseSet does."""
from __future__ import annotations

from bisect import bisect_right
from typing import List, Optional

from .layout import HEADER, REGISTERS, InvalidHLL

ZERO, XZERO, VAL = 0, 1, 2            # sparse opcode kinds


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
