"""``cmsgpack`` and ``struct``: the binary formats Redis gives scripts, from Python.

``cmsgpack`` is lua-cmsgpack 0.4 as Redis 7.0 builds it: ``pack`` (each
argument in turn), ``unpack``, ``unpack_one`` and ``unpack_limit``. Integral
numbers pack as the smallest integer type, others as a float32 when exact,
else a float64; a table is an array when its keys are exactly 1..n, else a
map; tables nested 16 deep pack as nil, functions and userdata as nil.

``struct`` is Roberto Ierusalimschy's struct 0.2 (``pack``, ``unpack``,
``size``) with C's conversions on a 64-bit host: integers up to 32 bytes,
``l``/``L``/``T`` of 8, ``i``/``I`` of 4 by default, ``!`` alignment.

Errors carry Redis's texts; those raised as luaL_error name the script's line
(:class:`ArgumentError`). Hostile input is bounded: decoding stops at the
first missing byte (a count in a header allocates nothing), nesting beyond
:data:`MAX_DECODE_DEPTH` is refused, and at most :data:`MAX_RESULTS` values
are returned, as Lua's C stack limit refuses more.
"""
from __future__ import annotations

import math
import struct as _struct
from typing import Any, Dict, List, Tuple

import lupa.lua51 as lupa

from .libs import _number, _type_name
from .lua import ArgumentError
from .replies import lua_tostring

MAX_NESTING = 16  # lua-cmsgpack's LUACMSGPACK_MAX_NESTING
#: Deeper input than this is refused (lua-cmsgpack would exhaust the C stack).
MAX_DECODE_DEPTH = 250
#: Values one call may return (Lua's LUAI_MAXCSTACK is 8000).
MAX_RESULTS = 7900
MAXINTSIZE = 32
U64 = (1 << 64) - 1


def _string(name: str, args: tuple, i: int) -> bytes:
    """luaL_checklstring: a string, or a number as Lua prints it."""
    value = args[i] if i < len(args) else None
    text = lua_tostring(value)
    if text is None:
        got = "no value" if i >= len(args) else _type_name(value)
        raise ArgumentError(f"bad argument #{i + 1} to '{name}' (string expected, got {got})")
    return text


def _integer(name: str, args: tuple, i: int, default: int) -> int:
    """luaL_optinteger: C's truncation of a number."""
    if i >= len(args) or args[i] is None:
        return default
    n = _number(name, args, i)
    return 0 if math.isnan(n) or math.isinf(n) else int(n)


# -- cmsgpack ----------------------------------------------------------------------------

class MsgPack:
    """lua-cmsgpack's functions over one Lua runtime."""

    def __init__(self, runtime: Any) -> None:
        self.rt = runtime.rt
        self.unproxy = runtime.unproxy

    def table(self) -> Dict[bytes, Any]:
        return {b"pack": self.pack, b"unpack": self.unpack, b"unpack_one": self.unpack_one,
                b"unpack_limit": self.unpack_limit,
                b"_NAME": b"cmsgpack", b"_VERSION": b"lua-cmsgpack 0.4.0",
                b"_COPYRIGHT": b"Copyright (C) 2012, Salvatore Sanfilippo",
                b"_DESCRIPTION": b"MessagePack C implementation for Lua"}

    def pack(self, *args: Any) -> bytes:
        if not args:
            raise ArgumentError("bad argument #0 to 'pack' (MessagePack pack needs input.)")
        out: List[bytes] = []
        for value in args:
            self._encode(value, out, 0)
        return b"".join(out)

    def _encode(self, value: Any, out: List[bytes], level: int) -> None:
        cls = value.__class__
        if cls is bytes:
            n = len(value)
            if n < 32:
                out.append(bytes((0xA0 | n,)))
            elif n <= 0xFF:
                out.append(bytes((0xD9, n)))
            elif n <= 0xFFFF:
                out.append(b"\xda" + n.to_bytes(2, "big"))
            else:
                out.append(b"\xdb" + n.to_bytes(4, "big"))
            out.append(value)
        elif cls is bool:
            out.append(b"\xc3" if value else b"\xc2")
        elif cls is int or cls is float:
            _encode_number(value, out)
        elif lupa.lua_type(value) == "table" and level < MAX_NESTING:
            self._encode_table(self.unproxy(value), out, level)
        else:  # nil, functions, userdata, tables nested too deep
            out.append(b"\xc0")

    def _encode_table(self, table: Any, out: List[bytes], level: int) -> None:
        items = list(table.items())
        largest = 0
        array = True
        for key, _ in items:
            if (key.__class__ is int or key.__class__ is float) and key >= 1 \
                    and key == int(key):
                largest = max(largest, int(key))
            else:
                array = False
                break
        if array and largest == len(items):
            _header(out, len(items), 0x90, b"\xdc", b"\xdd")
            for i in range(1, largest + 1):
                self._encode(table[i], out, level + 1)
            return
        _header(out, len(items), 0x80, b"\xde", b"\xdf")
        for key, item in items:
            self._encode(key, out, level + 1)
            self._encode(item, out, level + 1)

    def unpack(self, *args: Any) -> Any:
        return self._unpack("unpack", args, 0, 0)

    def unpack_one(self, *args: Any) -> Any:
        return self._unpack("unpack_one", args, 1, _integer("unpack_one", args, 1, 0))

    def unpack_limit(self, *args: Any) -> Any:
        limit = int(_number("unpack_limit", args, 1))
        return self._unpack("unpack_limit", args, limit, _integer("unpack_limit", args, 2, 0))

    def _unpack(self, name: str, args: tuple, limit: int, offset: int) -> Any:
        """mp_unpack_full: every object, or ``limit`` from ``offset`` and the next offset."""
        data = _string(name, args, 0)
        decode_all = not limit and not offset
        if offset < 0 or limit < 0:
            raise ArgumentError(f"Invalid request to unpack with offset of {offset} and limit "
                                f"of {len(data)}.")
        if offset > len(data):
            raise ArgumentError(f"Start offset {offset} greater than input length {len(data)}.")
        if decode_all:
            limit = MAX_RESULTS + 1
        values = []
        pos = offset
        while pos < len(data) and len(values) < limit:
            if len(values) >= MAX_RESULTS:
                raise ArgumentError("stack overflow (too many results)")
            value, pos = self._decode(data, pos, 0)
            values.append(value)
        if not decode_all:
            values.insert(0, -1 if pos >= len(data) else pos)
        return tuple(values)

    def _decode(self, data: bytes, pos: int, depth: int) -> Tuple[Any, int]:
        if depth > MAX_DECODE_DEPTH:
            raise ArgumentError("Bad data format in input.")
        kind = _need(data, pos, 1)[0]
        pos += 1
        if kind <= 0x7F:
            return kind, pos
        if kind >= 0xE0:
            return kind - 0x100, pos
        if 0xA0 <= kind <= 0xBF:
            n = kind & 0x1F
            return _need(data, pos, n), pos + n
        if 0x90 <= kind <= 0x9F:
            return self._array(data, pos, kind & 0x0F, depth)
        if 0x80 <= kind <= 0x8F:
            return self._map(data, pos, kind & 0x0F, depth)
        fixed = _FIXED.get(kind)
        if fixed is not None:
            fmt, size = fixed
            value = _struct.unpack(fmt, _need(data, pos, size))[0]
            if size == 8 and value.__class__ is int:
                value = float(value)  # a Lua number: a double
            return value, pos + size
        if kind == 0xC0:
            return None, pos
        if kind == 0xC2 or kind == 0xC3:
            return kind == 0xC3, pos
        sized = _SIZED.get(kind)
        if sized is None:
            raise ArgumentError("Bad data format in input.")
        what, width = sized
        n = int.from_bytes(_need(data, pos, width), "big")
        pos += width
        if what == "str":
            return _need(data, pos, n), pos + n
        if what == "array":
            return self._array(data, pos, n, depth)
        return self._map(data, pos, n, depth)

    def _array(self, data: bytes, pos: int, n: int, depth: int) -> Tuple[Any, int]:
        table = self.rt.table()
        for i in range(1, n + 1):  # a count beyond the data stops at the first missing byte
            value, pos = self._decode(data, pos, depth + 1)
            if value is not None:
                table[i] = value
        return table, pos

    def _map(self, data: bytes, pos: int, n: int, depth: int) -> Tuple[Any, int]:
        table = self.rt.table()
        for _ in range(n):
            key, pos = self._decode(data, pos, depth + 1)
            value, pos = self._decode(data, pos, depth + 1)
            if key is not None and not (key.__class__ is float and math.isnan(key)):
                table[key] = value
        return table, pos


_FIXED = {0xCA: (">f", 4), 0xCB: (">d", 8), 0xCC: (">B", 1), 0xCD: (">H", 2), 0xCE: (">I", 4),
          0xCF: (">q", 8),  # lua-cmsgpack reads uint 64 as signed
          0xD0: (">b", 1), 0xD1: (">h", 2), 0xD2: (">i", 4), 0xD3: (">q", 8)}
_SIZED = {0xD9: ("str", 1), 0xDA: ("str", 2), 0xDB: ("str", 4),  # no bin types in 0.4
          0xDC: ("array", 2), 0xDD: ("array", 4),
          0xDE: ("map", 2), 0xDF: ("map", 4)}


def _need(data: bytes, pos: int, n: int) -> bytes:
    if pos + n > len(data):
        raise ArgumentError("Missing bytes in input.")
    return data[pos:pos + n]


def _header(out: List[bytes], n: int, fix: int, short: bytes, long: bytes) -> None:
    if n <= 15:
        out.append(bytes((fix | n,)))
    elif n <= 0xFFFF:
        out.append(short + n.to_bytes(2, "big"))
    else:
        out.append(long + n.to_bytes(4, "big"))


def _encode_number(n: Any, out: List[bytes]) -> None:
    """mp_encode_lua_number: an integer when the double is one, else float32 or 64."""
    if n.__class__ is int and not -(1 << 63) <= n < 1 << 63:
        n = float(n)
    if n.__class__ is float and (math.isinf(n) or math.isnan(n)
                                 or not -2.0 ** 63 <= n < 2.0 ** 63 or n != int(n)):
        try:
            single = _struct.pack(">f", n)
        except OverflowError:
            single = b""
        if single and (_struct.unpack(">f", single)[0] == n):
            out.append(b"\xca" + single)
        else:
            out.append(b"\xcb" + _struct.pack(">d", n))
        return
    n = int(n)
    if n >= 0:
        for limit, head, fmt in ((0x7F, b"", ">B"), (0xFF, b"\xcc", ">B"),
                                 (0xFFFF, b"\xcd", ">H"), (0xFFFFFFFF, b"\xce", ">I")):
            if n <= limit:
                out.append(head + _struct.pack(fmt, n))
                return
        out.append(b"\xcf" + _struct.pack(">Q", n & U64))
    elif n >= -32:
        out.append(_struct.pack(">b", n))
    else:
        for low, head, fmt in ((-128, b"\xd0", ">b"), (-32768, b"\xd1", ">h"),
                               (-(1 << 31), b"\xd2", ">i")):
            if n >= low:
                out.append(head + _struct.pack(fmt, n))
                return
        out.append(b"\xd3" + _struct.pack(">q", n))


# -- struct --------------------------------------------------------------------------------

def _getnum(fmt: bytes, i: int, default: int) -> Tuple[int, int]:
    if i >= len(fmt) or not 48 <= fmt[i] <= 57:
        return default, i
    a = 0
    while i < len(fmt) and 48 <= fmt[i] <= 57:
        if a > (2 ** 31 - 1) // 10 or a * 10 > 2 ** 31 - 1 - (fmt[i] - 48):
            raise ArgumentError("integral size overflow")
        a = a * 10 + fmt[i] - 48
        i += 1
    return a, i


_SIZES = {ord("b"): 1, ord("B"): 1, ord("h"): 2, ord("H"): 2, ord("l"): 8, ord("L"): 8,
          ord("T"): 8, ord("f"): 4, ord("d"): 8, ord("x"): 1}


def _optsize(fmt: bytes, i: int, opt: int) -> Tuple[int, int]:
    size = _SIZES.get(opt)
    if size is not None:
        return size, i
    if opt == 99:  # c
        return _getnum(fmt, i, 1)
    if opt == 105 or opt == 73:  # i I
        size, i = _getnum(fmt, i, 4)
        if size > MAXINTSIZE:
            raise ArgumentError(f"integral size {size} is larger than limit of {MAXINTSIZE}")
        return size, i
    return 0, i


def _toalign(length: int, align: int, opt: int, size: int) -> int:
    if size == 0 or opt == 99:
        return 0
    size = min(size, align)
    return (size - (length & (size - 1))) & (size - 1)


class _Options:
    """The header: endianness and alignment, changed by `` < > !``."""

    __slots__ = ("little", "align")

    def __init__(self) -> None:
        self.little = True
        self.align = 1

    def control(self, name: str, fmt: bytes, i: int, opt: int) -> int:
        if opt == 32:
            return i
        if opt == 62 or opt == 60:
            self.little = opt == 60
            return i
        if opt == 33:
            align, i = _getnum(fmt, i, 8)
            if align <= 0 or align & (align - 1):
                raise ArgumentError(f"alignment {align} is not a power of 2")
            self.align = align
            return i
        raise ArgumentError(f"bad argument #1 to '{name}' (invalid format option "
                            f"'{chr(opt)}')")


_DATA = b"bBhHlLTiIxfdcs"
_ALNUM = bytes(range(48, 58)) + bytes(range(65, 91)) + bytes(range(97, 123))


def _format(name: str, fmt: bytes, data: bytes) -> Any:
    """Walk a format: (option, size, options) for each; the options not in ``data``
    then change the options (or are refused as invalid)."""
    opts = _Options()
    i = 0
    while i < len(fmt):
        opt = fmt[i]
        size, i = _optsize(fmt, i + 1, opt)
        yield opt, size, opts
        if opt not in data:
            i = opts.control(name, fmt, i, opt)


def _c_unsigned(n: float) -> int:
    """struct's (Uinttype)(Inttype)n or (Uinttype)n, as x86-64 converts."""
    if math.isnan(n):
        return 0
    if n < 0:
        return (int(n) if n >= -2.0 ** 63 else -(1 << 63)) & U64
    return int(n) if n < 2.0 ** 64 else 0


def struct_pack(*args: Any) -> bytes:
    fmt = _string("pack", args, 0)
    out = bytearray()
    arg = 1
    for opt, size, opts in _format("pack", fmt, _DATA):
        out += b"\0" * _toalign(len(out), opts.align, opt, size)
        if opt in b"bBhHlLTiI":
            value = _c_unsigned(_number("pack", args, arg))
            arg += 1
            data = (value & ((1 << (8 * min(size, 8))) - 1)).to_bytes(max(size, 8), "little")
            data = data[:size]
            out += data if opts.little else data[::-1]
        elif opt == 120:  # x
            out += b"\0"
        elif opt == 102 or opt == 100:  # f d
            n = _number("pack", args, arg)
            arg += 1
            endian = "<" if opts.little else ">"
            try:
                out += _struct.pack(endian + chr(opt), n)
            except OverflowError:  # C's cast of a double too large for a float
                out += _struct.pack(endian + "f", math.copysign(math.inf, n))
        elif opt == 99 or opt == 115:  # c s
            text = _string("pack", args, arg)
            arg += 1
            if size == 0:
                size = len(text)
            if len(text) < size:
                raise ArgumentError(f"bad argument #{arg + 1} to 'pack' (string too short)")
            out += text[:size]
            if opt == 115:
                out += b"\0"
    return bytes(out)


def struct_unpack(*args: Any) -> Tuple[Any, ...]:
    fmt = _string("unpack", args, 0)
    data = _string("unpack", args, 1)
    pos = _integer("unpack", args, 2, 1)
    if pos == 0:
        raise ArgumentError("bad argument #3 to 'unpack' (offset must be 1 or greater)")
    pos = (pos - 1) & U64  # size_t: a negative offset is past the end
    results: List[Any] = []
    too_short = "bad argument #2 to 'unpack' (data string too short)"
    for opt, size, opts in _format("unpack", fmt, _DATA):
        pos += _toalign(pos, opts.align, opt, size)
        if size > len(data) or pos > len(data) - size:
            raise ArgumentError(too_short)
        if len(results) >= MAX_RESULTS:
            raise ArgumentError("stack overflow (too many results)")
        if opt in b"bBhHlLTiI":
            raw = data[pos:pos + size]
            value = int.from_bytes(raw if opts.little else raw[::-1], "little") & U64
            if opt in b"bhli":  # islower: signed
                mask = (U64 << ((size * 8 - 1) & 63)) & U64
                if value & mask:
                    value |= mask
                if value >= 1 << 63:
                    value -= 1 << 64
            results.append(float(value))
        elif opt == 102 or opt == 100:
            fmt_char = ("<" if opts.little else ">") + chr(opt)
            results.append(_struct.unpack(fmt_char, data[pos:pos + size])[0])
        elif opt == 99:  # c
            if size == 0:
                previous = _as_number(results[-1]) if results else None
                if previous is None:
                    raise ArgumentError("format 'c0' needs a previous size")
                results.pop()
                size = _c_unsigned(previous)
                if size > len(data) or pos > len(data) - size:
                    raise ArgumentError(too_short)
            results.append(data[pos:pos + size])
        elif opt == 115:  # s
            end = data.find(b"\0", pos)
            if end < 0:
                raise ArgumentError("unfinished string in data")
            size = end - pos + 1
            results.append(data[pos:end])
        pos += size
    results.append(pos + 1)
    return tuple(results)


def _as_number(value: Any) -> Any:
    """lua_isnumber/lua_tonumber: a number, a string that reads as one, else None."""
    if value.__class__ is bytes:
        try:
            return float(value)
        except ValueError:
            return None
    return value if value.__class__ is int or value.__class__ is float else None


def struct_size(*args: Any) -> int:
    fmt = _string("size", args, 0)
    pos = 0
    for opt, size, opts in _format("size", fmt, _ALNUM):
        pos += _toalign(pos, opts.align, opt, size)
        if opt == 115:
            raise ArgumentError("bad argument #1 to 'size' (option 's' has no fixed size)")
        if opt == 99 and size == 0:
            raise ArgumentError("bad argument #1 to 'size' (option 'c0' has no fixed size)")
        pos += size
    return pos


def struct_library() -> Dict[bytes, Any]:
    return {b"pack": struct_pack, b"unpack": struct_unpack, b"size": struct_size}
