"""Argument conversion with Redis's strictness and error texts.

Redis parses integers with ``string2ll`` (canonical decimal only: no sign
``+``, no spaces, no leading zeros) and floats with ``strtold`` (no leading
space, no trailing junk, no NaN). These helpers match that.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal, localcontext
from typing import List, Optional

from ..errors import CommandError, NOT_FLOAT, NOT_INTEGER, SYNTAX

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def to_int(arg: bytes, error: str = NOT_INTEGER) -> int:
    """A canonical signed 64-bit decimal, else ``error``."""
    try:
        value = int(arg)
    except ValueError:
        raise CommandError(error) from None
    if value < INT64_MIN or value > INT64_MAX or b"%d" % value != arg:
        raise CommandError(error)
    return value


def to_nonneg_int(arg: bytes, what: str = "value") -> int:
    value = to_int(arg)
    if value < 0:
        raise CommandError(f"ERR {what} is out of range, must be positive")
    return value


_FLOAT_JUNK = re.compile(rb"^\s|\s$|_|^[+-]?(nan|NaN|NAN)")


def to_float(arg: bytes, error: str = NOT_FLOAT, allow_inf: bool = True) -> float:
    """A float as strtold reads it; NaN and surrounding spaces are errors."""
    try:
        value = float(arg)
    except ValueError:
        raise CommandError(error) from None
    if value != value or _FLOAT_JUNK.search(arg):
        raise CommandError(error)
    if not allow_inf and math.isinf(value):
        raise CommandError(error)
    return value


def to_decimal(arg: bytes, error: str = NOT_FLOAT) -> Decimal:
    """Exact decimal for INCRBYFLOAT, which Redis computes in long double."""
    to_float(arg, error)  # same validation
    try:
        return Decimal(arg.decode("ascii"))
    except Exception:
        raise CommandError(error) from None


def format_decimal(value: Decimal) -> bytes:
    """Redis's human-friendly long double: 17 decimals, trailing zeros trimmed."""
    with localcontext() as ctx:
        ctx.prec = 80
        text = format(value.quantize(Decimal(1).scaleb(-17)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text.encode()


def upper(arg: bytes) -> bytes:
    return arg.upper()


def parse_count(arg: bytes) -> int:
    value = to_int(arg)
    if value < 1:
        raise CommandError(SYNTAX)
    return value


def expect_options(args: List[bytes], start: int, allowed: List[bytes]) -> List[bytes]:
    """Upper-cased flag options from ``start`` on; anything else is a syntax error."""
    opts = [a.upper() for a in args[start:]]
    for opt in opts:
        if opt not in allowed:
            raise CommandError(SYNTAX)
    return opts


def optional_arg(args: List[bytes], i: int) -> Optional[bytes]:
    return args[i] if i < len(args) else None
