"""CRC-64/Jones, the checksum of RDB files and DUMP payloads (Redis's crc64.c).

Reflected, polynomial 0xad93d23594c935a9, initial value 0, no final xor:
``crc64(b"123456789") == 0xe9c6d914c4b8d9ca``.

Pure Python pays per loop iteration, so the bulk of the input goes through
"slice-by-8": one iteration per 8-byte word (read through ``memoryview.cast``),
eight lookups in eight 256-entry tables. 16-bit tables (4 lookups a word) were
no faster: their 8 MB of int objects miss the cache.
"""
from __future__ import annotations

import struct
import sys
from typing import List

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


_T0 = _byte_table()


def _slice_tables() -> List[List[int]]:
    """T[k][b]: the CRC of byte b followed by k zero bytes (slice-by-8)."""
    tables = [_T0]
    for _ in range(7):
        tables.append([(c >> 8) ^ _T0[c & 0xFF] for c in tables[-1]])
    return tables


_T = _slice_tables()
_LITTLE = sys.byteorder == "little"


def _bytes_crc(crc: int, data: bytes) -> int:
    t = _T0
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def crc64(data: bytes, crc: int = 0) -> int:
    """The CRC-64/Jones of ``data``, continuing from ``crc`` (0 to start)."""
    n = len(data)
    whole = n & ~7
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
