"""lua-cjson 2.1's decoder, token by token, for what Python's parser cannot say alike.

cjson.decode tries Python's ``json`` first (fast, and equal on valid JSON);
when that fails, or the text has what the two read differently (surrogate
escapes), this parser gives lua-cjson's result: its tokenizer with C's
``strtod`` for numbers (so, with decode_invalid_numbers on, hex, leading
zeros, ``+1``, ``1.``, ``inf``, ``nan`` and huge exponents decode as in
Redis), its end at a NUL byte, and its error texts and 1-based positions
(``Expected value but found invalid token at character 1``). Iterative, so
nesting is bounded by ``decode_max_depth`` alone, not by Python's stack.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, List, Optional, Tuple

from .lua import ArgumentError

#: C's strtod: sign, then infinity, NaN, a hex float or a decimal (the longest match).
_STRTOD = re.compile(
    rb"[+-]?(?:(?i:inf(?:inity)?)|(?i:nan)(?:\([0-9A-Za-z_]*\))?"
    rb"|0[xX](?:[0-9A-Fa-f]+(?:\.[0-9A-Fa-f]*)?|\.[0-9A-Fa-f]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_HEX4 = re.compile(rb"[0-9A-Fa-f]{4}")
_ESCAPES = {ord('"'): b'"', ord("\\"): b"\\", ord("/"): b"/", ord("b"): b"\b",
            ord("f"): b"\f", ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t"}
_SINGLE = {ord("{"): "T_OBJ_BEGIN", ord("}"): "T_OBJ_END", ord("["): "T_ARR_BEGIN",
           ord("]"): "T_ARR_END", ord(":"): "T_COLON", ord(","): "T_COMMA"}
_WHITESPACE = b" \t\n\r"
#: Characters that start a multi-character token (lua-cjson's T_UNKNOWN).
_UNKNOWN = frozenset(b'"+-0123456789fiInNt')

Token = Tuple[str, Any, int]  # (type, value or error text, 0-based position)


def strtod(text: bytes, pos: int) -> Tuple[Optional[float], int]:
    """(value, end) as C's strtod reads ``text`` from ``pos``; (None, pos) for no number."""
    match = _STRTOD.match(text, pos)
    if match is None:
        return None, pos
    word = match.group()
    body = word.lstrip(b"+-")
    negative = word[:1] == b"-"
    lower = body[:3].lower()
    if lower == b"inf":
        value = math.inf
    elif lower == b"nan":
        value = math.nan
    elif body[:2] in (b"0x", b"0X"):
        value = float.fromhex(body.decode())
    else:
        value = float(body)
    return (-value if negative else value), match.end()


def _invalid_number(text: bytes, pos: int) -> bool:
    """json_is_invalid_number: what JSON forbids but strtod reads (+, hex, 01, inf, nan)."""
    ch = text[pos:pos + 1]
    if ch == b"+":
        return True
    if ch == b"-":
        pos += 1
        ch = text[pos:pos + 1]
    if ch == b"0":
        nxt = text[pos + 1:pos + 2]
        return nxt in (b"x", b"X") or (nxt.isdigit() and nxt != b"")
    if ch and ch <= b"9":
        return False
    word = text[pos:pos + 3].lower()
    return word == b"inf" or word == b"nan"


class Decoder:
    """One cjson.decode call over ``text`` (bytes, which ends at its first NUL)."""

    def __init__(self, text: bytes, invalid_numbers: bool, max_depth: int,
                 new_table: Callable[[], Any], null: Any) -> None:
        end = text.find(b"\0")
        self.text = text if end < 0 else text[:end]
        self.pos = 0
        self.invalid_numbers = invalid_numbers
        self.max_depth = max_depth
        self.new_table = new_table
        self.null = null

    def token(self) -> Token:
        """json_next_token."""
        text = self.text
        pos = self.pos
        n = len(text)
        while pos < n and text[pos] in _WHITESPACE:
            pos += 1
        self.pos = pos
        if pos >= n:
            return "T_END", None, pos
        ch = text[pos]
        single = _SINGLE.get(ch)
        if single is not None:
            self.pos = pos + 1
            return single, None, pos
        if ch not in _UNKNOWN:
            return "T_ERROR", "invalid token", pos
        if ch == 34:  # "
            return self._string()
        if ch == 45 or 48 <= ch <= 57:  # - or a digit
            if not self.invalid_numbers and _invalid_number(text, pos):
                return "T_ERROR", "invalid number", pos
            return self._number()
        for word, kind, value in ((b"true", "T_BOOLEAN", True), (b"false", "T_BOOLEAN", False),
                                  (b"null", "T_NULL", None)):
            if text.startswith(word, pos):
                self.pos = pos + len(word)
                return kind, value, pos
        if self.invalid_numbers and _invalid_number(text, pos):
            return self._number()
        return "T_ERROR", "invalid token", pos

    def _number(self) -> Token:
        pos = self.pos
        value, end = strtod(self.text, pos)
        if value is None:
            return "T_ERROR", "invalid number", pos
        self.pos = end
        return "T_NUMBER", value, pos

    def _string(self) -> Token:
        """json_next_string_token: errors point at the backslash (or the end)."""
        text = self.text
        start = self.pos
        pos = start + 1
        out: List[bytes] = []
        while True:
            quote = text.find(b'"', pos)
            slash = text.find(b"\\", pos, quote if quote >= 0 else len(text))
            if slash < 0:
                if quote < 0:
                    self.pos = len(text)
                    return "T_ERROR", "unexpected end of string", len(text)
                out.append(text[pos:quote])
                self.pos = quote + 1
                return "T_STRING", b"".join(out), start
            out.append(text[pos:slash])
            code = text[slash + 1] if slash + 1 < len(text) else 0
            if code == 117:  # u
                char, length = self._unicode(slash)
                if char is None:
                    self.pos = slash
                    return "T_ERROR", "invalid unicode escape code", slash
                out.append(char)
                pos = slash + length
                continue
            char = _ESCAPES.get(code)
            if char is None:
                self.pos = slash
                return "T_ERROR", "invalid escape code", slash
            out.append(char)
            pos = slash + 2

    def _unicode(self, pos: int) -> Tuple[Optional[bytes], int]:
        """json_append_unicode_escape: the UTF-8 bytes and the escape's length."""
        text = self.text
        if _HEX4.match(text, pos + 2) is None:
            return None, 0
        code = int(text[pos + 2:pos + 6], 16)
        length = 6
        if code & 0xF800 == 0xD800:  # a surrogate: a high one, then a low one
            if code & 0x400 or text[pos + 6:pos + 8] != b"\\u" \
                    or _HEX4.match(text, pos + 8) is None:
                return None, 0
            low = int(text[pos + 8:pos + 12], 16)
            if low & 0xFC00 != 0xDC00:
                return None, 0
            code = (((code & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000
            length = 12
        return chr(code).encode("utf-8", "surrogatepass"), length

    @staticmethod
    def fail(expected: str, token: Token) -> ArgumentError:
        """json_throw_parse_error."""
        kind, value, pos = token
        found = value if kind == "T_ERROR" else kind
        return ArgumentError(f"Expected {expected} but found {found} at character {pos + 1}")

    def decode(self) -> Any:
        """json_decode: one value, then the end."""
        value = self.value(self.token())
        token = self.token()
        if token[0] != "T_END":
            raise self.fail("the end", token)
        return value

    def value(self, token: Token) -> Any:
        """json_process_value, with arrays and objects on an explicit stack."""
        # Each frame: [table, next index (arrays) or None (objects), key or None]
        stack: List[list] = []
        while True:
            kind, value, _ = token
            if kind == "T_OBJ_BEGIN" or kind == "T_ARR_BEGIN":
                if len(stack) + 1 > self.max_depth:
                    raise ArgumentError(f"Found too many nested data structures "
                                        f"({len(stack) + 1}) at character {self.pos}")
                frame = [self.new_table(), 1 if kind == "T_ARR_BEGIN" else None, None]
                stack.append(frame)
                token = self.token()
                closing = "T_ARR_END" if kind == "T_ARR_BEGIN" else "T_OBJ_END"
                if token[0] == closing:
                    value = stack.pop()[0]
                elif frame[1] is None:
                    token = self._key(frame, token)
                    continue
                else:
                    continue
            elif kind == "T_STRING" or kind == "T_NUMBER" or kind == "T_BOOLEAN":
                pass
            elif kind == "T_NULL":
                value = self.null
            else:
                raise self.fail("value", token)
            # ``value`` is complete: store it in its container, closing those that end.
            while True:
                if not stack:
                    return value
                frame = stack[-1]
                if frame[1] is None:
                    frame[0][frame[2]] = value
                    token = self.token()
                    if token[0] == "T_OBJ_END":
                        value = stack.pop()[0]
                        continue
                    if token[0] != "T_COMMA":
                        raise self.fail("comma or object end", token)
                    token = self._key(frame, self.token())
                    break
                frame[0][frame[1]] = value
                frame[1] += 1
                token = self.token()
                if token[0] == "T_ARR_END":
                    value = stack.pop()[0]
                    continue
                if token[0] != "T_COMMA":
                    raise self.fail("comma or array end", token)
                token = self.token()
                break

    def _key(self, frame: list, token: Token) -> Token:
        """An object's ``"key":``; the token of its value."""
        if token[0] != "T_STRING":
            raise self.fail("object key string", token)
        frame[2] = token[1]
        token = self.token()
        if token[0] != "T_COLON":
            raise self.fail("colon", token)
        return self.token()
