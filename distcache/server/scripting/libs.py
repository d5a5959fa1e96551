"""Libraries Redis gives scripts that lupa's Lua 5.1 lacks, provided from Python.

``cjson`` is lua-cjson's encode, decode and null with Redis's defaults:
numbers as ``%.14g``, ``/`` escaped, empty tables as ``{}``, sparse arrays
refused past a ratio of 2 (with gaps as null below it), 1000 levels at most.

``bit`` is LuaBitOp's API (tobit, tohex, bnot, band, bor, bxor, lshift,
rshift, arshift, rol, ror, bswap) on 32-bit signed results, with its argument
errors. Python callables are C functions to Lua, so a failing argument is
reported with the script's line, as LuaBitOp's luaL_argerror does.
"""
from __future__ import annotations

import json
import math
import sys
from typing import Any, Callable, Dict

import lupa.lua51 as lupa

from .lua import ArgumentError

MASK = 0xFFFFFFFF


def _type_name(value: Any) -> str:
    if value is None:
        return "nil"
    cls = value.__class__
    if cls is bool:
        return "boolean"
    if cls is bytes:
        return "string"
    if cls is int or cls is float:
        return "number"
    # A Python callable came back unwrapped: to scripts it is a (C) function.
    return lupa.lua_type(value) or ("function" if callable(value) else "userdata")


def _number(name: str, args: tuple, i: int) -> float:
    """luaL_checknumber: a number, or a string Lua reads as one."""
    if i >= len(args):
        raise ArgumentError(f"bad argument #{i + 1} to '{name}' (number expected, got no value)")
    value = args[i]
    cls = value.__class__
    if cls is int or cls is float:
        return value
    if cls is bytes:
        text = value.strip()
        try:
            if text[:2].lower() in (b"0x", b"-0x") or text[:3].lower() == b"-0x":
                return float(int(text, 16))
            number = float(text)
            if text.lower().lstrip(b"+-") not in (b"inf", b"nan", b"infinity"):
                return number
        except ValueError:
            pass
    raise ArgumentError(f"bad argument #{i + 1} to '{name}' "
                        f"(number expected, got {_type_name(value)})")


def _bits(number: float) -> int:
    """LuaBitOp's normalisation: round half to even, keep the low 32 bits."""
    if math.isinf(number) or math.isnan(number):
        return 0
    return int(round(number)) & MASK


def _signed(bits: int) -> int:
    bits &= MASK
    return bits - (1 << 32) if bits & 0x80000000 else bits


def _fold(name: str, op: Callable[[int, int], int]) -> Callable[..., int]:
    def fold(*args: Any) -> int:
        result = _bits(_number(name, args, 0))
        for i in range(1, len(args)):
            result = op(result, _bits(_number(name, args, i)))
        return _signed(result)
    return fold


def _shift(name: str, op: Callable[[int, int], int]) -> Callable[..., int]:
    def shift(*args: Any) -> int:
        value = _bits(_number(name, args, 0))
        count = _bits(_number(name, args, 1)) & 31
        return _signed(op(value, count))
    return shift


def _tohex(*args: Any) -> bytes:
    value = _bits(_number("tohex", args, 0))
    digits = 8 if len(args) < 2 or args[1] is None else _bits(_number("tohex", args, 1))
    digits = _signed(digits)
    upper = digits < 0
    digits = min(abs(digits), 8)
    if not digits:
        return b""
    text = b"%0*x" % (digits, value & ((1 << (4 * digits)) - 1))
    return text.upper() if upper else text


def bit_library() -> Dict[bytes, Any]:
    """The ``bit`` table's functions."""
    return {
        b"tobit": lambda *args: _signed(_bits(_number("tobit", args, 0))),
        b"tohex": _tohex,
        b"bnot": lambda *args: _signed(~_bits(_number("bnot", args, 0))),
        b"band": _fold("band", lambda a, b: a & b),
        b"bor": _fold("bor", lambda a, b: a | b),
        b"bxor": _fold("bxor", lambda a, b: a ^ b),
        b"lshift": _shift("lshift", lambda v, n: v << n),
        b"rshift": _shift("rshift", lambda v, n: v >> n),
        b"arshift": _shift("arshift", lambda v, n: _signed(v) >> n),
        b"rol": _shift("rol", lambda v, n: (v << n) | (v >> (32 - n)) if n else v),
        b"ror": _shift("ror", lambda v, n: (v >> n) | (v << (32 - n)) if n else v),
        b"bswap": lambda *args: _signed(int.from_bytes(
            _bits(_number("bswap", args, 0)).to_bytes(4, "big"), "little")),
    }


_ESCAPES = {i: b"\\u%04x" % i for i in range(32)}
_ESCAPES.update({8: b"\\b", 9: b"\\t", 10: b"\\n", 12: b"\\f", 13: b"\\r",
                 34: b'\\"', 92: b"\\\\", 47: b"\\/", 127: b"\\u007f"})
_ESCAPE_TABLE = [_ESCAPES.get(i, bytes([i])) for i in range(256)]
MAX_DEPTH = 1000


class CJson:
    """lua-cjson's encode and decode; ``null`` is a userdata made by the runtime."""

    def __init__(self, runtime: Any) -> None:
        rt = self.rt = runtime.rt
        self.unproxy = runtime.unproxy  # the protected tables (redis, string...) read through
        self.null = rt.eval("newproxy()")
        self.is_null = rt.eval("function(null) return function(v) return rawequal(v, null) end end")(
            self.null)

    def table(self) -> Dict[bytes, Any]:
        return {b"encode": self.encode, b"decode": self.decode, b"null": self.null}

    def encode(self, *args: Any) -> bytes:
        if len(args) != 1:
            raise ArgumentError("bad argument #1 to 'encode' (expected 1 argument)")
        out: list = []
        limit = sys.getrecursionlimit()
        if limit < 4 * MAX_DEPTH:  # two Python frames per level, and lupa's own
            sys.setrecursionlimit(4 * MAX_DEPTH)
        self._encode(args[0], out, 0)
        return b"".join(out)

    def _encode(self, value: Any, out: list, depth: int) -> None:
        cls = value.__class__
        if value is None:
            out.append(b"null")
        elif cls is bool:
            out.append(b"true" if value else b"false")
        elif cls is int or cls is float:
            out.append(_json_number(value))
        elif cls is bytes:
            out.append(b'"%s"' % b"".join([_ESCAPE_TABLE[c] for c in value]))
        elif lupa.lua_type(value) == "table":
            value = self.unproxy(value)
            depth += 1
            if depth > MAX_DEPTH:
                raise ArgumentError(f"Cannot serialise, excessive nesting ({depth})")
            length = _array_length(value)
            if length > 0:
                out.append(b"[")
                for i in range(1, length + 1):
                    if i > 1:
                        out.append(b",")
                    self._encode(value[i], out, depth)
                out.append(b"]")
                return
            out.append(b"{")
            first = True
            for key, item in value.items():
                if not first:
                    out.append(b",")
                first = False
                if key.__class__ is bytes:
                    self._encode(key, out, depth)
                elif key.__class__ is int or key.__class__ is float:
                    out.append(b'"%s"' % _json_number(key))
                else:
                    raise ArgumentError(f"Cannot serialise {_type_name(key)}: "
                                        "table key must be a number or string")
                out.append(b":")
                self._encode(item, out, depth)
            out.append(b"}")
        elif self.is_null(value):
            out.append(b"null")
        else:
            raise ArgumentError(f"Cannot serialise {_type_name(value)}: type not supported")

    def decode(self, *args: Any) -> Any:
        if len(args) != 1:
            raise ArgumentError("bad argument #1 to 'decode' (expected 1 argument)")
        text = args[0]
        if text.__class__ is int or text.__class__ is float:
            text = b"%.14g" % text
        if text.__class__ is not bytes:
            raise ArgumentError(f"bad argument #1 to 'decode' (string expected, "
                                f"got {_type_name(text)})")
        try:
            value = json.loads(text.decode("utf-8", "surrogateescape"))
        except (ValueError, RecursionError) as exc:
            # lua-cjson's texts name the token; these name what Python's parser saw.
            raise ArgumentError(f"Expected value but found invalid token at character "
                                f"{getattr(exc, 'pos', 0) + 1}") from None
        return self._to_lua(value)

    def _to_lua(self, value: Any) -> Any:
        if value is None:
            return self.null
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if isinstance(value, list):
            t = self.rt.table()
            for i, item in enumerate(value, 1):
                t[i] = self._to_lua(item)
            return t
        if isinstance(value, dict):
            t = self.rt.table()
            for key, item in value.items():
                t[key.encode("utf-8", "surrogateescape")] = self._to_lua(item)
            return t
        return value  # numbers and booleans


def _json_number(value: Any) -> bytes:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise ArgumentError("Cannot serialise number: must not be NaN or Inf")
    return b"%.14g" % value


def _array_length(table: Any) -> int:
    """lua-cjson's array test: the largest key if every key is a positive integer and
    the array is not too sparse; -1 for an object (or an empty table)."""
    largest = items = 0
    for key in table.keys():
        if (key.__class__ is int or key.__class__ is float) and key >= 1 and key == int(key):
            largest = max(largest, int(key))
            items += 1
        else:
            return -1
    if largest > items * 2 and largest > 10:
        raise ArgumentError("Cannot serialise table: excessively sparse array")
    return largest


def libraries(runtime: Any) -> Dict[bytes, Any]:
    """Every Python-provided library, as Lua tables (``runtime``: a lua.LuaRuntime)."""
    from .binary import MsgPack, struct_library
    rt = runtime.rt
    return {b"bit": rt.table_from(bit_library()),
            b"cjson": rt.table_from(CJson(runtime).table()),
            b"cmsgpack": rt.table_from(MsgPack(runtime).table()),
            b"struct": rt.table_from(struct_library())}
