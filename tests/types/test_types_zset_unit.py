"""Unit tests of the ZSet structure against a naive sorted-list model."""
from __future__ import annotations

import math
import random

import pytest

from distcache.server.types import zset as zset_mod
from distcache.server.types.zset import ZSet


@pytest.fixture(params=[4, 1000])
def small_blocks(request, monkeypatch):
    """Tiny blocks exercise splits, merges and the Fenwick index on small data."""
    monkeypatch.setattr(zset_mod, "LOAD", request.param)
    return request.param


def model_entries(model):
    return sorted((s, m) for m, s in model.items())


def check_against(z, model, rng):
    z.check()
    entries = model_entries(model)
    assert list(z.entries()) == entries
    assert list(z.items()) == [(m, s) for s, m in entries]
    assert len(z) == len(entries)
    if not entries:
        return
    for _ in range(5):
        i = rng.randrange(len(entries))
        assert z.entry(i) == entries[i]
        assert z.rank(entries[i][1]) == i
        j = rng.randrange(len(entries) + 3)
        assert list(z.iter_range(i, j)) == entries[i:j]
        assert list(z.iter_range(i, j, reverse=True)) == entries[i:j][::-1]
        s = rng.choice([entries[i][0], rng.uniform(-60, 60), math.inf, -math.inf])
        assert z.count_below(s, False) == sum(1 for e in entries if e[0] < s)
        assert z.count_below(s, True) == sum(1 for e in entries if e[0] <= s)


def test_random_ops_match_model(small_blocks):
    rng = random.Random(small_blocks)
    z = ZSet()
    model = {}
    for step in range(3000):
        op = rng.random()
        member = b"m%d" % rng.randrange(300)
        if op < 0.55:
            score = float(rng.randrange(-50, 50)) / rng.choice([1, 2, 4])
            assert z.add(member, score) == (member not in model)
            model[member] = score
        elif op < 0.85:
            assert z.remove(member) == (model.pop(member, None) is not None)
        elif op < 0.95 and model:
            a = rng.randrange(len(model) + 2)
            b = a + rng.randrange(40)
            removed = z.delete_range(a, b)
            expected = model_entries(model)[a:b]
            assert removed == expected
            for _, m in expected:
                del model[m]
        else:
            assert z.score(member) == model.get(member)
            assert (member in z) == (member in model)
        if step % 50 == 0:
            check_against(z, model, rng)
    check_against(z, model, rng)
    clone = z.copy()
    clone.add(b"extra", 1.0)
    assert b"extra" not in z and len(clone) == len(z) + 1
    clone.check()


def test_lex_positions_with_equal_scores(small_blocks):
    z = ZSet()
    members = [bytes([c]) * n for c in b"abcdefg" for n in (1, 2)]
    for m in members:
        z.add(m, 0.0)
    ordered = sorted(members)
    for probe in [b"", b"a", b"aa", b"b", b"c\x00", b"ddd", b"z"]:
        assert z.count_below_member(probe, False) == sum(1 for m in ordered if m < probe)
        assert z.count_below_member(probe, True) == sum(1 for m in ordered if m <= probe)


def test_rescore_moves_member_and_keeps_length():
    z = ZSet()
    z.add(b"a", 1.0)
    z.add(b"b", 2.0)
    assert z.add(b"a", 3.0) is False
    assert [m for m, _ in z.items()] == [b"b", b"a"]
    assert z.rank(b"a") == 1 and z.rank(b"missing") is None
    assert z.scores == {b"a": 3.0, b"b": 2.0}


def test_ties_order_by_member_bytes():
    z = ZSet()
    for m in [b"b", b"a", b"\xff", b"A", b"ab"]:
        z.add(m, 1.0)
    assert [m for m, _ in z.items()] == sorted([b"b", b"a", b"\xff", b"A", b"ab"])


def test_infinite_scores_and_bounds():
    z = ZSet()
    z.add(b"lo", -math.inf)
    z.add(b"mid", 0.0)
    z.add(b"hi", math.inf)
    assert z.count_below(math.inf, True) == 3
    assert z.count_below(math.inf, False) == 2
    assert z.count_below(-math.inf, False) == 0
    assert z.count_below(-math.inf, True) == 1


def test_score_slices_match_a_filter(small_blocks):
    rng = random.Random(7)
    z = ZSet()
    for i in range(3000):
        z.add(b"m%d" % i, float(rng.randrange(500)))
    entries = list(z.entries())
    for _ in range(300):
        low, high = sorted(rng.uniform(-10, 510) for _ in range(2))
        if rng.random() < 0.3:
            low, high = float(int(low)), float(int(high))
        got = [e for chunk in z.score_slices(low, high) for e in chunk]
        assert got == [e for e in entries if low <= e[0] < high]
    assert z.score_slices(600.0, 700.0) == [] and ZSet().score_slices(0.0, 1.0) == []
