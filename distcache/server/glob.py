"""Redis glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET, CLIENT KILL...).

Same rules as Redis's ``stringmatchlen``: ``*``, ``?``, ``[abc]``, ``[^a]``,
``[a-z]`` and ``\\`` escapes; an unclosed ``[`` runs to the end of the pattern.

Matching time is bounded by the product of pattern and key length, whatever
the pattern (Redis 7.0.9's fix for CVE-2022-36021). Between two stars every
token matches exactly one byte, so a pattern is a list of fixed-width
segments: the first is anchored at the start, the last at the end, and each
one between is matched at its leftmost place, which never needs to be undone.
A pattern with at most one star compiles to a single regular expression,
whose backtracking is bounded the same way.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, List

#: Token standing for ``*`` in a tokenized pattern (every other token is one byte's regex).
_STAR = b"*"


def _tokens(pattern: bytes) -> List[bytes]:
    """The pattern as regex pieces of one byte each, and ``_STAR`` for runs of ``*``."""
    out: List[bytes] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i:i + 1]
        if ch == b"*":
            while i + 1 < n and pattern[i + 1:i + 2] == b"*":
                i += 1
            out.append(_STAR)
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
    return out


def _range(start: int, end: int) -> list:
    """Regex classes for ``[start-end]``. Redis compares C chars, signed here: bytes
    from 0x80 sort below 0 (so [\\x80-b] holds both ends of the byte range)."""
    lo, hi = sorted(b - 256 if b >= 128 else b for b in (start, end))
    spans = [(lo & 0xFF, 0xFF), (0, hi)] if lo < 0 <= hi else [(lo & 0xFF, hi & 0xFF)]
    return [re.escape(bytes([a])) + b"-" + re.escape(bytes([b])) for a, b in spans]


class _Segment:
    """A run of one-byte tokens between stars: its width and a compiled regex."""

    __slots__ = ("width", "regex")

    def __init__(self, tokens: List[bytes]) -> None:
        self.width = len(tokens)
        self.regex = re.compile(b"".join(tokens), re.DOTALL)


def _segments_matcher(tokens: List[bytes]) -> Callable[[bytes], bool]:
    """Match ``first * middle... * last`` by leftmost segments: O(len(pattern) * len(key))."""
    groups: List[List[bytes]] = [[]]
    for token in tokens:
        if token == _STAR:
            groups.append([])
        else:
            groups[-1].append(token)
    first, last = _Segment(groups[0]), _Segment(groups[-1])
    middles = [_Segment(g) for g in groups[1:-1] if g]
    least = first.width + last.width + sum(s.width for s in middles)

    def match(key: bytes) -> bool:
        n = len(key)
        if n < least or not key:
            return False
        if first.width and first.regex.match(key) is None:
            return False
        pos, end = first.width, n - last.width
        for seg in middles:
            found = seg.regex.search(key, pos, end)
            if found is None:
                return False
            pos = found.end()
        return pos <= end and (not last.width or last.regex.match(key, end) is not None)

    return match


@lru_cache(maxsize=256)
def compile_glob(pattern: bytes) -> Callable[[bytes], bool]:
    """A predicate telling whether a key matches ``pattern``."""
    if pattern == b"*":
        return bool  # any key but the empty one (KEYS and SCAN special-case "*")
    if not pattern:
        return lambda key: not key
    tokens = _tokens(pattern)
    if tokens.count(_STAR) > 1:
        return _segments_matcher(tokens)
    regex = re.compile(b"".join(b".*" if t == _STAR else t for t in tokens) + b"\\Z",
                       re.DOTALL)
    match = regex.match
    # Redis's matcher never matches an empty string against a non-empty
    # pattern (not even "*"); KEYS and SCAN take the pattern "*" as "all keys".
    return lambda key: match(key) is not None and key != b""


def glob_match(pattern: bytes, key: bytes, nocase: bool = False) -> bool:
    if nocase:
        return compile_glob(pattern.lower())(key.lower())
    return compile_glob(pattern)(key)


