"""Libraries Redis gives scripts that lupa's Lua 5.1 lacks, provided from Python.

``cjson`` (cjson.py), ``cmsgpack`` and ``struct`` (binary.py) are gathered here.

``bit`` is LuaBitOp's API (tobit, tohex, bnot, band, bor, bxor, lshift,
rshift, arshift, rol, ror, bswap) on 32-bit signed results, with its argument
errors. Python callables are C functions to Lua, so a failing argument is
reported with the script's line, as LuaBitOp's luaL_argerror does.
"""
from __future__ import annotations

import math
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


def libraries(runtime: Any) -> Dict[bytes, Any]:
    """Every Python-provided library, as Lua tables (``runtime``: a lua.LuaRuntime)."""
    from .binary import MsgPack, struct_library
    from .cjson import CJson
    return {b"bit": runtime.library(bit_library()),
            b"cjson": runtime.library(CJson(runtime).table()),
            b"cmsgpack": runtime.library(MsgPack(runtime).table()),
            b"struct": runtime.library(struct_library())}
