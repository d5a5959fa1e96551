"""Dense registers: 16384 six-bit registers packed little-endian in 12288 bytes."""
from __future__ import annotations

from typing import List

from .layout import HEADER, REGISTERS

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
