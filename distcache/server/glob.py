"""Redis glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET).

Same rules as Redis's ``stringmatchlen``: ``*``, ``?``, ``[abc]``, ``[^a]``,
``[a-z]`` and ``\\`` escapes; an unclosed ``[`` runs to the end of the pattern.
Patterns compile to cached regular expressions.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable


def _translate(pattern: bytes) -> bytes:
    out = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i:i + 1]
        if ch == b"*":
            while i + 1 < n and pattern[i + 1:i + 2] == b"*":
                i += 1
            out.append(b".*")
        elif ch == b"?":
            out.append(b".")
        elif ch == b"\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i:i + 1]))
        elif ch == b"[":
            i += 1
            negate = i < n and pattern[i:i + 1] == b"^"
            if negate:
                i += 1
            items = []
            while i < n and pattern[i:i + 1] != b"]":
                c = pattern[i:i + 1]
                if c == b"\\" and i + 1 < n:
                    i += 1
                    items.append(re.escape(pattern[i:i + 1]))
                elif i + 2 < n and pattern[i + 1:i + 2] == b"-":
                    items += _range(pattern[i], pattern[i + 2])
                    i += 2
                else:
                    items.append(re.escape(c))
                i += 1
            if not items:
                out.append(b"[^\\s\\S]" if not negate else b"[\\s\\S]")
            else:
                out.append(b"[" + (b"^" if negate else b"") + b"".join(items) + b"]")
        else:
            out.append(re.escape(ch))
        i += 1
    return b"".join(out)


def _range(start: int, end: int) -> list:
    """Regex classes for ``[start-end]``. Redis compares C chars, signed here: bytes
    from 0x80 sort below 0 (so [\\x80-b] holds both ends of the byte range)."""
    lo, hi = sorted(b - 256 if b >= 128 else b for b in (start, end))
    spans = [(lo & 0xFF, 0xFF), (0, hi)] if lo < 0 <= hi else [(lo & 0xFF, hi & 0xFF)]
    return [re.escape(bytes([a])) + b"-" + re.escape(bytes([b])) for a, b in spans]


@lru_cache(maxsize=256)
def compile_glob(pattern: bytes) -> Callable[[bytes], bool]:
    """A predicate telling whether a key matches ``pattern``."""
    if pattern == b"*":
        return bool  # any key but the empty one (KEYS and SCAN special-case "*")
    regex = re.compile(_translate(pattern) + b"\\Z", re.DOTALL)
    match = regex.match
    if not pattern:
        return lambda key: not key
    # Redis's matcher never matches an empty string against a non-empty
    # pattern (not even "*"); KEYS and SCAN take the pattern "*" as "all keys".
    return lambda key: match(key) is not None and key != b""


def glob_match(pattern: bytes, key: bytes, nocase: bool = False) -> bool:
    if nocase:
        return compile_glob(pattern.lower())(key.lower())
    return compile_glob(pattern)(key)
