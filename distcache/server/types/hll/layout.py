"""The HLL value's layout as Redis writes it (hyperloglog.c): header, encodings."""
from __future__ import annotations

from typing import Optional

P = 14
REGISTERS = 1 << P                    # 16384
Q = 64 - P
HEADER = 16
DENSE_SIZE = HEADER + REGISTERS * 6 // 8
MAGIC = b"HYLL"
DENSE, SPARSE = 0, 1
STALE = 1 << 63
INDEX_MASK = REGISTERS - 1


class InvalidHLL(Exception):
    """The value has the HLL header but its registers cannot be read."""


def is_hll(value: bytes) -> bool:
    """Redis's isHLLObjectOrReply: the header checks, no register parsing."""
    return (len(value) >= HEADER and value[:4] == MAGIC and value[4] <= SPARSE
            and (value[4] != DENSE or len(value) == DENSE_SIZE))


def cached_count(value: bytes) -> Optional[int]:
    card = int.from_bytes(value[8:16], "little")
    return None if card & STALE else card


def empty() -> bytes:
    """A new HLL: sparse, one XZERO opcode over every register, cached count 0."""
    return MAGIC + bytes([SPARSE]) + bytes(11) + bytes([0x7F, 0xFF])
