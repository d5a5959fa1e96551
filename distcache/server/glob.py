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
from typing import Callable, List, Optional, Tuple

#: Token standing for ``*`` in a tokenized pattern (every other token is one byte's regex).
_STAR = b"*"


def _tokens(pattern: bytes) -> List[bytes]:
    """The pattern as regex pieces of one byte each, and ``_STAR`` for runs of ``*``."""
    out: List[bytes] = []
    _parse(pattern, 0, out, len(pattern))
    return out


def _parse(pattern: bytes, i: int, out: List[bytes], wanted: int) -> Tuple[int, int]:
    """Append the tokens from ``pattern[i:]`` to ``out`` until ``wanted`` one-byte
    tokens were added (or the pattern ends); returns (next index, tokens added)."""
    n = len(pattern)
    added = 0
    while i < n and added < wanted:
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
                # A class names at most 256 bytes, however long it is written:
                # repeats are dropped so that the regex stays small.
                items = list(dict.fromkeys(items))
                out.append(b"[" + (b"^" if negate else b"") + b"".join(items) + b"]")
        else:
            out.append(re.escape(ch))
        if out[-1] is not _STAR:
            added += 1
        i += 1
    return i, added


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


#: Patterns longer than this are parsed lazily and never cached (see _LongPattern).
LONG_PATTERN = 1024


def compile_glob(pattern: bytes) -> Callable[[bytes], bool]:
    """A predicate telling whether a key matches ``pattern``."""
    if len(pattern) > LONG_PATTERN:
        return _LongPattern(pattern)
    return _compile_short(pattern)


@lru_cache(maxsize=256)
def _compile_short(pattern: bytes) -> Callable[[bytes], bool]:
    if pattern == b"*":
        return bool  # any key but the empty one (KEYS and SCAN special-case "*")
    if not pattern:
        return lambda key: not key
    return _from_tokens(_tokens(pattern))


#: Redis (7.0.15 as packaged, with the fix for CVE-2024-31228) gives up past this
#: many nested stars: each star followed by more pattern is one level of its
#: recursive matcher, and a pattern with more such stars never matches.
MAX_NESTING = 1000


def _from_tokens(tokens: List[bytes]) -> Callable[[bytes], bool]:
    stars = tokens.count(_STAR)
    if stars - (tokens[-1] is _STAR) > MAX_NESTING:
        return lambda key: False
    if stars > 1:
        return _segments_matcher(tokens)
    regex = re.compile(b"".join(b".*" if t == _STAR else t for t in tokens) + b"\\Z",
                       re.DOTALL)
    match = regex.match
    # Redis's matcher never matches an empty string against a non-empty
    # pattern (not even "*"); KEYS and SCAN take the pattern "*" as "all keys".
    return lambda key: match(key) is not None and key != b""


class _LongPattern:
    """A long pattern, parsed only as far as the keys it meets need.

    Every token but ``*`` matches one byte, so a key shorter than the tokens
    parsed so far cannot match: a megabyte-long pattern tried on short keys
    costs what the keys cost (Redis's matcher stops at the first mismatch),
    not a parse and a regex compile of the whole pattern per command. Once a
    key is long enough for the whole pattern, it is compiled like a short one.
    Not cached: the cache would hold up to 256 such patterns.
    """

    __slots__ = ("pattern", "tokens", "pos", "width", "match")

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern
        self.tokens: List[bytes] = []
        self.pos = 0    # where parsing resumes
        self.width = 0  # one-byte tokens parsed so far: the least a key needs
        self.match: Optional[Callable[[bytes], bool]] = None

    def __call__(self, key: bytes) -> bool:
        if self.match is not None:
            return self.match(key)
        n = len(key)
        if not n:
            return False
        while self.width <= n:
            if self.pos >= len(self.pattern):
                self.match = _from_tokens(self.tokens)
                self.tokens = []
                return self.match(key)
            self.pos, added = _parse(self.pattern, self.pos, self.tokens,
                                     max(n + 1 - self.width, 256))
            self.width += added
        return False


def glob_match(pattern: bytes, key: bytes, nocase: bool = False) -> bool:
    if nocase:
        return compile_glob(pattern.lower())(key.lower())
    return compile_glob(pattern)(key)


