"""Hypothesis example counts per runtime.

Hypothesis' own engine (generation, shrinking bookkeeping) runs 3-4x slower on PyPy
than on CPython: the glob property's 3000 examples took 54 s on PyPy against 16 s.
CI runs every example on CPython in every run; the PyPy run is there for what the
runtimes do differently (docs/pypy.md), which the first examples of a property reach
as well as the last. So PyPy runs a quarter of them, still deterministic where the
test derandomizes.
"""
from __future__ import annotations

import sys

PYPY = sys.implementation.name == "pypy"
#: PyPy runs this share of a property's examples ...
PYPY_SHARE = 4
#: ... but never fewer than this many (or than the test asks, if fewer).
PYPY_FLOOR = 50


def examples(count: int) -> int:
    """``max_examples`` for a property that runs ``count`` on CPython."""
    if not PYPY:
        return count
    return min(count, max(PYPY_FLOOR, count // PYPY_SHARE))
