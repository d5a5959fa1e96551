"""Argument conversion with Redis's strictness and error texts.

Redis parses integers with ``string2ll`` (canonical decimal only: no sign
``+``, no spaces, no leading zeros) and floats with ``strtod``/``strtold``
(decimal or C99 hex, no leading space, no trailing junk, no NaN). These
helpers match that.
"""
from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Container, List, Optional, Set, Tuple

from ...lazy import lazy_module
from ..errors import CommandError, NOT_FLOAT, NOT_INTEGER, SYNTAX

if TYPE_CHECKING:
    from fractions import Fraction
# fractions (and decimal, which it imports) only for INCRBYFLOAT's long doubles.
fractions = lazy_module("fractions")

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


def to_int32(arg: bytes, error: str = "") -> int:
    """A C int, as getIntFromObjectOrReply reads it (``error`` replaces both texts)."""
    value = to_int(arg, error or NOT_INTEGER)
    if not -(1 << 31) <= value < 1 << 31:
        raise CommandError(error or "ERR value is out of range, value must between "
                           "-2147483648 and 2147483647")
    return value


def to_nonneg_int(arg: bytes, what: str = "value") -> int:
    value = to_int(arg)
    if value < 0:
        raise CommandError(f"ERR {what} is out of range, must be positive")
    return value


_FLOAT_JUNK = re.compile(rb"^\s|\s$|_|^[+-]?(nan|NaN|NAN)")


def to_float(arg: bytes, error: str = NOT_FLOAT, allow_inf: bool = True) -> float:
    """A float as strtold reads it (hex too); NaN and surrounding spaces are errors."""
    try:
        value = float(arg)
    except ValueError:
        value = _hex_float(arg, error)
    if value != value or _FLOAT_JUNK.search(arg):
        raise CommandError(error)
    if not allow_inf and math.isinf(value):
        raise CommandError(error)
    return value


def _hex_float(arg: bytes, error: str) -> float:
    if b"x" not in arg.lower():
        raise CommandError(error)
    try:
        return float.fromhex(arg.decode("ascii"))
    except OverflowError:  # as a decimal overflow: infinity (callers decide)
        return -math.inf if arg.lstrip()[:1] == b"-" else math.inf
    except (UnicodeDecodeError, ValueError):
        raise CommandError(error) from None


def underflowed(arg: bytes) -> bool:
    """Whether a float text that reads as 0.0 has a nonzero mantissa: too small
    for a double (strtod's ERANGE), not zero."""
    low = arg.lower()
    if b"x" in low:
        return _NONZERO_HEX.search(low.split(b"x", 1)[1].split(b"p")[0]) is not None
    return _NONZERO_DIGIT.search(low.split(b"e")[0]) is not None


_NONZERO_DIGIT = re.compile(rb"[1-9]")
_NONZERO_HEX = re.compile(rb"[1-9a-f]")


# -- x87 long double, as INCRBYFLOAT computes --------------------------------------

_LD_MANT_BITS = 64          # significand bits of the x87 80-bit format
_LD_MIN_EXP = -16382        # exponent of the smallest normal value
_LD_OVERFLOW = 1 << 16384   # the first magnitude that rounds to infinity
_LD_MAX_CHARS = 5 * 1024    # Redis's MAX_LONG_DOUBLE_CHARS
_DEC_FLOAT = re.compile(rb"([+-]?)(\d+\.?\d*|\.\d+)(?:[eE]([+-]?\d+))?")
_HEX_FLOAT = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
                        rb"(?:[pP]([+-]?\d+))?")
_INF = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)


class LongDouble:
    """An exact x87 ``long double`` (or an infinity): Redis computes INCRBYFLOAT
    and HINCRBYFLOAT in that type, and its 64-bit significand shows in replies
    (``10.5 + 0.1`` is ``10.59999999999999999``)."""

    __slots__ = ("value", "inf")

    def __init__(self, value: Fraction, inf: int = 0) -> None:
        self.value = value
        self.inf = inf  # +1 or -1 for an infinity

    @classmethod
    def rounded(cls, exact: Fraction) -> "LongDouble":
        """The nearest long double to ``exact`` (ties to even)."""
        if not exact:
            return cls(fractions.Fraction(0))
        mag = abs(exact)
        exp = mag.numerator.bit_length() - mag.denominator.bit_length()
        if mag < fractions.Fraction(2) ** exp:
            exp -= 1
        quantum = fractions.Fraction(2) ** (max(exp, _LD_MIN_EXP) - _LD_MANT_BITS + 1)
        result = round(mag / quantum) * quantum
        sign = -1 if exact < 0 else 1
        if result >= _LD_OVERFLOW:
            return cls(fractions.Fraction(0), sign)
        return cls(sign * result)

    def is_finite(self) -> bool:
        return not self.inf

    def __add__(self, other: "LongDouble") -> "LongDouble":
        if self.inf or other.inf:
            # inf - inf: NaN, refused too
            return LongDouble(fractions.Fraction(0), self.inf or other.inf)
        return LongDouble.rounded(self.value + other.value)


# Python refuses int <-> decimal conversions over 4300 digits; long doubles
# reach 4950, so convert in chunks.
_CHUNK = 4000


def _dec_to_int(digits: bytes) -> int:
    value = 0
    for i in range(0, len(digits), _CHUNK):
        part = digits[i:i + _CHUNK]
        value = value * 10 ** len(part) + int(part)
    return value


def _int_to_dec(value: int) -> str:
    if value < 10 ** _CHUNK:
        return str(value)
    high, low = divmod(value, 10 ** _CHUNK)
    return _int_to_dec(high) + str(low).rjust(_CHUNK, "0")


def _exponent(text: Optional[bytes]) -> int:
    """An exponent's value. int() refuses past 4300 digits; past 20 (leading
    zeros aside) any exponent is out of every range the callers accept."""
    if not text:
        return 0
    digits = text.lstrip(b"+-").lstrip(b"0")
    value = int(digits or b"0") if len(digits) <= 20 else 1 << 70
    return -value if text[:1] == b"-" else value


def to_decimal(arg: bytes, error: str = NOT_FLOAT) -> LongDouble:
    """A long double as Redis's string2ld reads it (strtold: decimal, hex, inf;
    no leading space, no trailing junk, no NaN, no overflow or underflow to 0)."""
    if not arg or len(arg) >= _LD_MAX_CHARS:
        raise CommandError(error)
    m = _DEC_FLOAT.fullmatch(arg)
    if m:
        digits = m.group(2)
        whole, _, frac = digits.partition(b".")
        exact = fractions.Fraction(_dec_to_int(whole + frac), 10 ** len(frac))
        exponent = _exponent(m.group(3))
        if exact and exponent > 5000:
            raise CommandError(error)  # overflows
        if exact and exponent < -5000 - len(whole):
            raise CommandError(error)  # underflows to zero
        if exact:  # zero stays zero: 10 ** 9999999 would take the server down
            exact *= fractions.Fraction(10) ** exponent
    else:
        m = _HEX_FLOAT.fullmatch(arg)
        if m:
            whole, _, frac = m.group(2).partition(b".")
            exact = fractions.Fraction(int(whole + frac or b"0", 16), 16 ** len(frac))
            exponent = _exponent(m.group(3))
            if exact and not -20000 <= exponent <= 20000:
                raise CommandError(error)
            if exact:
                exact *= fractions.Fraction(2) ** exponent
        else:
            m = _INF.fullmatch(arg)
            if not m:
                raise CommandError(error)
            return LongDouble(fractions.Fraction(0), -1 if m.group(1) == b"-" else 1)
    if m.group(1) == b"-":
        exact = -exact
    result = LongDouble.rounded(exact)
    if result.inf or (exact and not result.value):
        raise CommandError(error)  # strtold's ERANGE
    return result


def format_decimal(value: LongDouble) -> bytes:
    """Redis's human-friendly long double: ``%.17Lf``, trailing zeros trimmed."""
    scaled = round(value.value * 10 ** 17)
    text = _int_to_dec(abs(scaled))
    text = text.rjust(18, "0")
    text = (text[:-17] + "." + text[-17:]).rstrip("0").rstrip(".")
    if scaled < 0 and text != "0":
        text = "-" + text
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


def leading_flags(args: List[bytes], start: int, allowed: "Container[bytes]"
                  ) -> "Tuple[Set[bytes], int]":
    """The flags from ``allowed`` that open ``args[start:]`` (ZADD's, GEOADD's), upper-cased,
    and the index where the rest begins."""
    flags: Set[bytes] = set()
    i = start
    while i < len(args):
        opt = args[i].upper()
        if opt not in allowed:
            break
        flags.add(opt)
        i += 1
    return flags, i
