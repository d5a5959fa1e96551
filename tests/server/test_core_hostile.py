"""Hostile input: requests that would make the event loop spin must not.

The glob matcher is checked against an independent oracle (a direct port of
Redis's ``stringmatchlen`` rules, exponential but fine on small inputs), and
the pathological patterns are timed through a real server.
"""
from __future__ import annotations

import time
from typing import Optional

import pytest
import redis
from hypothesis import given, settings, strategies as st

from distcache.server.glob import compile_glob


def _signed(b: int) -> int:
    return b - 256 if b >= 128 else b


def redis_stringmatch(p: bytes, s: bytes) -> bool:
    """Redis's stringmatchlen, transcribed recursively (the test's oracle)."""
    def match(pi: int, si: int) -> Optional[bool]:
        while pi < len(p) and si < len(s):
            c = p[pi]
            if c == 0x2A:  # '*'
                while pi + 1 < len(p) and p[pi + 1] == 0x2A:
                    pi += 1
                if pi + 1 == len(p):
                    return True
                for start in range(si, len(s)):
                    if match(pi + 1, start):
                        return True
                return False
            if c == 0x3F:  # '?'
                si += 1
            elif c == 0x5B:  # '['
                pi += 1
                negate = pi < len(p) and p[pi] == 0x5E
                if negate:
                    pi += 1
                hit = False
                while pi < len(p) and p[pi] != 0x5D:
                    if p[pi] == 0x5C and pi + 1 < len(p):
                        pi += 1
                        hit |= p[pi] == s[si]
                    elif pi + 2 < len(p) and p[pi + 1] == 0x2D:
                        lo, hi = sorted((_signed(p[pi]), _signed(p[pi + 2])))
                        hit |= lo <= _signed(s[si]) <= hi
                        pi += 2
                    else:
                        hit |= p[pi] == s[si]
                    pi += 1
                if pi >= len(p):
                    pi = len(p) - 1  # an unclosed class ends the pattern
                if hit == negate:
                    return False
                si += 1
            else:
                if c == 0x5C and pi + 1 < len(p):
                    pi += 1
                if p[pi] != s[si]:
                    return False
                si += 1
            pi += 1
            if si == len(s):
                while pi < len(p) and p[pi] == 0x2A:
                    pi += 1
                break
        return pi == len(p) and si == len(s)
    return bool(match(0, 0))


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=10).map(lambda b: bytes(b"ab*?[]^-\\"[x % 9] for x in b)),
       st.binary(max_size=10).map(lambda b: bytes(b"ab-]^\\*"[x % 7] for x in b)))
def test_glob_agrees_with_redis_rules(pattern, key):
    assert compile_glob(pattern)(key) == redis_stringmatch(pattern, key)


@pytest.mark.parametrize("pattern,key", [
    (b"a*" * 20 + b"b", b"a" * 40),                       # the CVE-2022-36021 shape
    (b"*a" * 200 + b"*b", b"a" * 10_000),
    (b"*?" * 300 + b"*[b]", b"a" * 10_000),
    (b"*[a-c]*[^b]" * 100 + b"*z", b"ac" * 5_000),
])
def test_pathological_globs_are_fast_in_process(pattern, key):
    match = compile_glob(pattern)
    start = time.perf_counter()
    assert match(key) is False
    assert time.perf_counter() - start < 0.05


def _best_of(times: int, call) -> float:
    best = float("inf")
    for _ in range(times):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def test_pathological_keys_pattern_answers_in_under_10ms(r):
    r.set("a" * 40, 1)
    pattern = "a*" * 20 + "b"
    assert r.keys(pattern) == []
    assert _best_of(5, lambda: r.keys(pattern)) < 0.010
    assert _best_of(5, lambda: r.scan(0, match=pattern, count=100)) < 0.010
    assert r.ping()


def test_pathological_patterns_everywhere_a_pattern_is_taken(r):
    pattern = "a*" * 40 + "b"
    r.set("a" * 200, 1)
    r.sadd("s", "a" * 200)
    r.hset("h", "a" * 200, 1)
    r.zadd("z", {"a" * 200: 1})
    calls = [
        lambda: r.keys(pattern),
        lambda: r.scan(0, match=pattern),
        lambda: r.sscan("s", 0, match=pattern),
        lambda: r.hscan("h", 0, match=pattern),
        lambda: r.zscan("z", 0, match=pattern),
        lambda: r.config_get(pattern),
        lambda: r.pubsub_channels(pattern),
    ]
    for call in calls:
        assert _best_of(3, call) < 0.05
    p = r.pubsub()
    p.psubscribe(pattern)
    try:
        started = time.perf_counter()
        r.publish("a" * 200, "x")
        assert time.perf_counter() - started < 0.05
    finally:
        p.close()
    assert r.ping()
