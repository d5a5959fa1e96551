"""Time bounds for hostile-input tests: they catch a spin or a lost complexity bound,
not a busy host.

Under ``pytest -n 4`` on 2 cores (load 10-20) any process can be descheduled for tens
of milliseconds, so one timing of a 5 ms request says little. The work these tests
time is deterministic, so its fastest run is its cost: ``fastest`` repeats a call until
one run comes in under the bound (or the tries or seconds run out). A scheduling pause
then costs a retry, not a failure, while a spin or an O(n) walk is slow on every run
and fails as before; the bounds themselves stay as tight as on a quiet host.

``load_bound`` widens a bound only on a host shown to be slow within the same test:
``factor`` times a baseline (a PING, a cheap command, a fixed loop) timed the same way.
A spin costs seconds or grows exponentially, far past either.
"""
from __future__ import annotations

import time
from typing import Any, Callable


def fastest(call: Callable[[], Any], under: float = 0.0, tries: int = 50,
            seconds: float = 10.0) -> float:
    """The fastest of up to ``tries`` runs of ``call`` (seconds), stopping at the first
    run under ``under`` or once ``seconds`` have passed (at least one run)."""
    best = float("inf")
    deadline = time.monotonic() + seconds
    for _ in range(tries):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
        if best < under or time.monotonic() > deadline:
            break
    return best


def load_bound(bound: float, baseline: Callable[[], Any], factor: float = 20.0) -> float:
    """``bound``, or ``factor`` times the fastest of a few ``baseline`` runs when that is
    more (a host so loaded that even the baseline is slow)."""
    return max(bound, factor * fastest(baseline, tries=5))


def assert_fast(call: Callable[[], Any], bound: float, what: str = "call", **kw: Any) -> None:
    """``call``'s fastest run (``fastest``) is under ``bound`` seconds."""
    took = fastest(call, under=bound, **kw)
    assert took < bound, f"{what}: fastest run {took * 1000:.1f} ms, bound {bound * 1000:.1f} ms"
