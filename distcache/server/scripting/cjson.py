"""lua-cjson 2.1 as Redis 7.0 builds it, from Python: encode, decode, null, new,
and the configuration functions (encode_sparse_array, encode_max_depth,
decode_max_depth, encode_number_precision, encode_keep_buffer,
encode_invalid_numbers, decode_invalid_numbers), each with lua-cjson's
argument checks and texts. Settings belong to one module table (and its
Lua state), as in Redis, where they last until SCRIPT FLUSH.

Defaults: numbers as ``%.14g``, ``/`` escaped, empty tables as ``{}``, sparse
arrays refused past a ratio of 2 (with gaps as null below it), 1000 levels
at most both ways. Decoding uses Python's parser where it reads the text as
lua-cjson does, and lua-cjson's own tokenizer (cjson_decode.py) elsewhere:
invalid numbers, error texts and positions, surrogate escapes.
"""
from __future__ import annotations

import json
import math
import sys
from typing import Any, Dict, Tuple

import lupa.lua51 as lupa

from .cjson_decode import Decoder
from .libs import _number, _type_name
from .lua import ArgumentError
from .replies import lua_tostring

_ESCAPES = {i: b"\\u%04x" % i for i in range(32)}
_ESCAPES.update({8: b"\\b", 9: b"\\t", 10: b"\\n", 12: b"\\f", 13: b"\\r",
                 34: b'\\"', 92: b"\\\\", 47: b"\\/", 127: b"\\u007f"})
_ESCAPE_TABLE = [_ESCAPES.get(i, bytes([i])) for i in range(256)]
#: Levels the encoder recurses into at most, whatever encode_max_depth says (Redis's
#: Lua C stack refuses about as many).
MAX_DEPTH = 1000
INT_MAX = 2 ** 31 - 1


class _Config:
    """lua-cjson's settings (json_config_t), changed by its configuration functions."""

    __slots__ = ("sparse_convert", "sparse_ratio", "sparse_safe", "encode_max_depth",
                 "decode_max_depth", "precision", "keep_buffer", "encode_invalid",
                 "decode_invalid")

    def __init__(self) -> None:
        self.sparse_convert, self.sparse_ratio, self.sparse_safe = 0, 2, 10
        self.encode_max_depth = self.decode_max_depth = 1000
        self.precision = 14
        self.keep_buffer = 1
        self.encode_invalid = 0
        self.decode_invalid = 1


def _arg_count(name: str, args: tuple, most: int) -> tuple:
    """json_arg_init: at most ``most`` arguments, the missing ones nil."""
    if len(args) > most:
        raise ArgumentError(f"bad argument #{most + 1} to '{name}' (found too many arguments)")
    return args + (None,) * (most - len(args))


def _integer_option(name: str, args: tuple, i: int, current: int, low: int, high: int) -> int:
    if args[i] is None:
        return current
    value = _number(name, args, i)
    value = int(value) if not (math.isnan(value) or math.isinf(value)) else -(1 << 63)
    if not low <= value <= high:  # lua-cjson always names argument 1 here
        raise ArgumentError(f"bad argument #1 to '{name}' (expected integer between {low} "
                            f"and {high})")
    return value


def _enum_option(name: str, args: tuple, i: int, current: int,
                 options: tuple = (b"off", b"on")) -> int:
    value = args[i]
    if value is None:
        return current
    if value.__class__ is bool:
        return int(value)
    text = lua_tostring(value)
    if text is None:
        raise ArgumentError(f"bad argument #{i + 1} to '{name}' (string expected, got "
                            f"{_type_name(value)})")
    if text not in options:
        raise ArgumentError(f"bad argument #{i + 1} to '{name}' (invalid option "
                            f"'{text.decode('utf-8', 'replace')}')")
    return options.index(text)


def _enum_reply(setting: int, options: tuple = (b"off", b"on")) -> Any:
    return bool(setting) if setting in (0, 1) else options[setting]


class CJson:
    """lua-cjson's encode and decode; ``null`` is a userdata made by the runtime."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.cfg = _Config()
        rt = self.rt = runtime.rt
        self.unproxy = runtime.unproxy  # the protected tables (redis, string...) read through
        self.null = rt.eval("newproxy()")
        self.is_null = rt.eval("function(null) return function(v) return rawequal(v, null) end end")(
            self.null)

    def table(self) -> Dict[bytes, Any]:
        return {b"encode": self.encode, b"decode": self.decode, b"null": self.null,
                b"encode_sparse_array": self.encode_sparse_array,
                b"encode_max_depth": self.encode_max_depth,
                b"decode_max_depth": self.decode_max_depth,
                b"encode_number_precision": self.encode_number_precision,
                b"encode_keep_buffer": self.encode_keep_buffer,
                b"encode_invalid_numbers": self.encode_invalid_numbers,
                b"decode_invalid_numbers": self.decode_invalid_numbers,
                b"new": self.new, b"_NAME": b"cjson", b"_VERSION": b"2.1.0"}

    # -- configuration (each returns the settings it governs) ----------------------------

    def encode_sparse_array(self, *args: Any) -> Tuple[Any, int, int]:
        name, cfg = "encode_sparse_array", self.cfg
        args = _arg_count(name, args, 3)
        cfg.sparse_convert = _enum_option(name, args, 0, cfg.sparse_convert)
        cfg.sparse_ratio = _integer_option(name, args, 1, cfg.sparse_ratio, 0, INT_MAX)
        cfg.sparse_safe = _integer_option(name, args, 2, cfg.sparse_safe, 0, INT_MAX)
        return bool(cfg.sparse_convert), cfg.sparse_ratio, cfg.sparse_safe

    def encode_max_depth(self, *args: Any) -> int:
        name, cfg = "encode_max_depth", self.cfg
        args = _arg_count(name, args, 1)
        cfg.encode_max_depth = _integer_option(name, args, 0, cfg.encode_max_depth, 1, INT_MAX)
        return cfg.encode_max_depth

    def decode_max_depth(self, *args: Any) -> int:
        name, cfg = "decode_max_depth", self.cfg
        args = _arg_count(name, args, 1)
        cfg.decode_max_depth = _integer_option(name, args, 0, cfg.decode_max_depth, 1, INT_MAX)
        return cfg.decode_max_depth

    def encode_number_precision(self, *args: Any) -> int:
        name, cfg = "encode_number_precision", self.cfg
        args = _arg_count(name, args, 1)
        cfg.precision = _integer_option(name, args, 0, cfg.precision, 1, 14)
        return cfg.precision

    def encode_keep_buffer(self, *args: Any) -> Any:
        """Accepted and reported: Python builds each output afresh anyway."""
        name, cfg = "encode_keep_buffer", self.cfg
        args = _arg_count(name, args, 1)
        cfg.keep_buffer = _enum_option(name, args, 0, cfg.keep_buffer)
        return _enum_reply(cfg.keep_buffer)

    def encode_invalid_numbers(self, *args: Any) -> Any:
        name, cfg = "encode_invalid_numbers", self.cfg
        args = _arg_count(name, args, 1)
        options = (b"off", b"on", b"null")
        cfg.encode_invalid = _enum_option(name, args, 0, cfg.encode_invalid, options)
        return _enum_reply(cfg.encode_invalid, options)

    def decode_invalid_numbers(self, *args: Any) -> Any:
        """On (the default), NaN and Infinity decode; lua-cjson's other invalid numbers
        (hex, inf, a leading + or 0) are refused either way here."""
        name, cfg = "decode_invalid_numbers", self.cfg
        args = _arg_count(name, args, 1)
        cfg.decode_invalid = _enum_option(name, args, 0, cfg.decode_invalid)
        return _enum_reply(cfg.decode_invalid)

    def new(self, *args: Any) -> Any:
        """cjson.new(): a module of its own, with default settings."""
        return self.runtime.library(CJson(self.runtime).table())

    # -- encode and decode ---------------------------------------------------------------

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
            out.append(self._number(value))
        elif cls is bytes:
            out.append(b'"%s"' % b"".join([_ESCAPE_TABLE[c] for c in value]))
        elif lupa.lua_type(value) == "table":
            value = self.unproxy(value)
            depth += 1
            if depth > self.cfg.encode_max_depth or depth > MAX_DEPTH:
                raise ArgumentError(f"Cannot serialise, excessive nesting ({depth})")
            length = self._array_length(value)
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
                    out.append(b'"%s"' % self._number(key))
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
        if len(text) >= 2 and (not text[0] or not text[1]):
            raise ArgumentError("JSON parser does not support UTF-16 or UTF-32")
        depth = min(self.cfg.decode_max_depth, MAX_DEPTH)
        invalid = bool(self.cfg.decode_invalid)
        # Python's parser when it reads the text as lua-cjson does; else lua-cjson's own
        # tokenizer (invalid numbers, error texts, surrogate escapes).
        if b"\\ud" not in text and b"\\uD" not in text:
            try:
                _check_nesting(text, depth)  # before Python's parser recurses
                value = json.loads(text.decode("utf-8", "surrogateescape"), parse_int=float,
                                   parse_constant=None if invalid else _no_constant)
            except (ValueError, RecursionError, ArgumentError):
                pass
            else:
                return self._to_lua(value)
        return Decoder(text, invalid, depth, self.rt.table, self.null).decode()
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


    def _number(self, value: Any) -> bytes:
        if value.__class__ is float and (math.isnan(value) or math.isinf(value)):
            mode = self.cfg.encode_invalid
            if mode == 0:
                raise ArgumentError("Cannot serialise number: must not be NaN or Inf")
            if mode == 2:
                return b"null"
        return b"%.*g" % (self.cfg.precision, value)

    def _array_length(self, table: Any) -> int:
        """lua-cjson's array test: the largest key if every key is a positive integer
        and the array is not too sparse; -1 for an object (or an empty table)."""
        largest = items = 0
        for key in table.keys():
            if (key.__class__ is int or key.__class__ is float) and key >= 1 \
                    and key != math.inf and key == int(key):  # inf: C's cast gives no max
                largest = max(largest, int(key))
                items += 1
            else:
                return -1
        cfg = self.cfg
        if cfg.sparse_ratio > 0 and largest > items * cfg.sparse_ratio \
                and largest > cfg.sparse_safe:
            if not cfg.sparse_convert:
                raise ArgumentError("Cannot serialise table: excessively sparse array")
            return -1
        return largest


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _check_nesting(text: bytes, most: int) -> None:
    """json_decode_descend's limit, before Python's parser recurses: the first ``[`` or
    ``{`` beyond ``most`` levels (outside strings) is refused with lua-cjson's text."""
    if text.count(b"[") + text.count(b"{") <= most:
        return
    depth = 0
    in_string = escaped = False
    for pos, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == 92:  # backslash
                escaped = True
            elif ch == 34:
                in_string = False
        elif ch == 34:
            in_string = True
        elif ch == 91 or ch == 123:
            depth += 1
            if depth > most:
                raise ArgumentError(f"Found too many nested data structures ({depth}) at "
                                    f"character {pos + 1}")
        elif ch == 93 or ch == 125:
            depth -= 1
