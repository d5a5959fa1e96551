"""LCS: random strings give Redis's subsequence, length and IDX ranges (which path
the walk back takes decides them), in RESP2 and RESP3; the memory bound is Redis's."""
from __future__ import annotations

import random
import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

text = st.text(alphabet="abcx", max_size=24)
options = st.lists(st.sampled_from([["IDX"], ["LEN"], ["WITHMATCHLEN"], ["MINMATCHLEN", "2"],
                                    ["MINMATCHLEN", "-1"], ["MINMATCHLEN", "x"], ["BOGUS"]]),
                   max_size=3).map(lambda opts: [x for o in opts for x in o])


@settings(max_examples=examples(300), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(protocol=st.sampled_from([2, 3]), a=st.one_of(text, st.none()), b=text, opts=options)
def test_lcs_matches_redis(clients, protocol, a, b, opts):
    ours, theirs = clients(protocol)
    for client in (ours, theirs):
        client.call("DEL", "a", "b")
        if a is not None:
            client.call("SET", "a", a)
        client.call("SET", "b", b)
        client.call("RPUSH", "list", "x")
    for args in (["LCS", "a", "b", *opts], ["LCS", "b", "a", *opts], ["LCS", "a", "list"]):
        assert ours.call(*args) == theirs.call(*args), args


def test_large_inputs_are_fast_and_bounded_as_redis(r, reference_redis):
    rng = random.Random(7)
    a = "".join(rng.choice("acgt") for _ in range(10_000))
    b = "".join(rng.choice("acgt") for _ in range(10_000))
    theirs = redis.Redis(port=reference_redis.port)
    for client in (r, theirs):
        client.mset({"a": a, "b": b})
    started = time.perf_counter()
    ours_idx = r.execute_command("LCS", "a", "b", "IDX", "MINMATCHLEN", "4")
    assert time.perf_counter() - started < 5.0  # 100M cells: a Python table would take minutes
    assert ours_idx == theirs.execute_command("LCS", "a", "b", "IDX", "MINMATCHLEN", "4")
    for client in (r, theirs):
        client.set("a", "x" * 20_000)  # (20001 * 10001 * 4) bytes > 512 MB
    with pytest.raises(redis.ResponseError, match="exceeds proto-max-bulk-len"):
        r.execute_command("LCS", "a", "b")
    with pytest.raises(redis.ResponseError, match="exceeds proto-max-bulk-len"):
        theirs.execute_command("LCS", "a", "b")
