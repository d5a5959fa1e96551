"""Memory accounting's sizes: what a key, a value or an expiry costs, as
``MEMORY USAGE`` and maxmemory's estimate (eviction.py) count it.

Sizes are ``sys.getsizeof`` rounded to the allocator's granularity (on PyPy,
which has no ``getsizeof``, from its object layouts, times the heap growth its
GC allows); containers are sized from a few sampled elements.
"""
from __future__ import annotations

import os
import sys
from collections import Counter
from itertools import islice
from typing import Any, Collection, Iterable, Tuple

#: Bytes per dict entry (entry + index slot at the average load factor).
DICT_ENTRY = 48
#: An expiry: dict entry plus the int deadline.
EXPIRE_ENTRY = DICT_ENTRY + 32

PYPY = sys.implementation.name == "pypy"

#: PyPy: bytes per object of each type, as (fixed, per item or byte) on 64-bit:
#: the 8-byte GC header, the W_*Object fields and the RPython storage behind
#: them (a bytes object is a W_BytesObject pointing at an rstr with its hash
#: and length; a list or dict a strategy plus its storage arrays).
_PYPY_LAYOUT = {bytes: (48, 1), str: (80, 1), int: (16, 0), float: (16, 0),
                tuple: (24, 8), list: (64, 9), dict: (96, 40), set: (96, 32),
                frozenset: (96, 32), bytearray: (72, 1)}


def pypy_sizeof(obj: Any) -> int:
    """``sys.getsizeof`` for PyPy: an estimate from the object layouts (the
    containers alone, as getsizeof). The GC's heap growth is in ``gc_factor``."""
    fixed, per = _PYPY_LAYOUT.get(obj.__class__, (0, 0))
    if not fixed:
        for cls in obj.__class__.__mro__[1:]:
            if cls in _PYPY_LAYOUT:
                fixed, per = _PYPY_LAYOUT[cls]
                break
        else:
            return 64  # an instance: header, map, a few inline fields
    return fixed + (per * len(obj) if per else 0)


def gc_factor() -> float:
    """How much more than its live data a process's RSS holds at worst.

    CPython frees at once (1.0). PyPy's GC lets the old generation grow to
    PYPY_GC_MAJOR_COLLECT (default 1.82) times what survived the last major
    collection before collecting again, and does not return the freed pages
    quickly, so maxmemory must count the heap at that bound to bound RSS."""
    if not PYPY:
        return 1.0
    try:
        return max(1.0, float(os.environ.get("PYPY_GC_MAJOR_COLLECT", "1.82")))
    except ValueError:
        return 1.82


_getsizeof = pypy_sizeof if PYPY else sys.getsizeof
_GC_FACTOR = gc_factor()
_BYTES_SIZE = 0 if PYPY else sys.getsizeof(b"")


def alloc(size: int) -> int:
    """Bytes the allocator really uses for a ``size``-byte object."""
    if size <= 512:
        return (size + 15) & ~15
    return size + 16


def size_of(value: Any, samples: int = 5) -> int:
    """Approximate memory of a value; containers are sized from ``samples`` elements
    (0: all of them)."""
    if value.__class__ is bytes:
        return alloc(_getsizeof(value))
    estimate = getattr(value, "memory_estimate", None)
    if estimate is not None:  # a stream sizes itself
        return estimate()
    size = alloc(_getsizeof(value))
    try:
        n = len(value)
    except TypeError:
        return size
    if not n:
        return size
    if isinstance(value, dict):
        keys, count = _alloc_total(value if not samples else islice(value, samples))
        values, _ = _alloc_total(value.values() if not samples
                                 else islice(value.values(), samples))
        return size + n * (keys + values + 8 * count) // count
    scores = getattr(value, "scores", None)
    if isinstance(scores, dict):  # sorted set: member -> score plus (score, member) tuples
        keys, count = _alloc_total(scores if not samples else islice(scores, samples))
        per = keys // count + alloc(_getsizeof(scores)) // max(1, n) + 24 + 64 + 8
        return size + n * per
    try:
        total, count = _alloc_total(value if not samples else islice(value, samples))
    except TypeError:
        return size
    if not count:
        return size
    per = (total + 8 * count) // count
    if isinstance(value, (set, frozenset)):
        per += 16
    return size + n * per


def _alloc_total(objects: Iterable[Any]) -> Tuple[int, int]:
    """The allocated bytes of ``objects`` and how many there are. Sizes are
    counted at C speed and rounded once per distinct size: MEMORY USAGE
    SAMPLES 0 of a 300,000-element list took 0.8 s a Python call per element
    (redis-server: 1 ms, it sums quicklist nodes)."""
    if not PYPY and isinstance(objects, Collection) and set(map(type, objects)) == {bytes}:
        counts = Counter(map(len, objects))  # a bytes object's size is its length + 33
        return (sum(alloc(size + _BYTES_SIZE) * times for size, times in counts.items()),
                len(objects))
    counts = Counter(map(_getsizeof, objects))
    return sum(alloc(size) * times for size, times in counts.items()), sum(counts.values())


def layout_key_cost(key: bytes, value: Any, side: bool) -> int:
    """A key's bytes in the keyspace: key, value, dict entry (and its policy stamp)."""
    return alloc(_getsizeof(key)) + size_of(value) + DICT_ENTRY + (DICT_ENTRY if side else 0)


#: PyPy: a dict entry of the keyspace (its key, value and hash; the index's slack).
PYPY_DICT_ENTRY = 40
#: PyPy: bytes a key counted for eviction beyond ``pypy_key_cost`` (what the layouts
#: counted before it was calibrated, and the RSS bounds under churn were measured with).
PYPY_EVICT_PAD = 40 if PYPY else 0


def _rstr(n: int) -> int:
    """PyPy: an RPython string of ``n`` bytes (GC header, hash, length; 8-aligned)."""
    return (24 + n + 7) & ~7


def pypy_key_cost(key: bytes, value: Any, side: bool) -> int:
    """``key_cost`` calibrated against PyPy's heap (the live bytes a key adds after
    ``gc.collect``, measured for 16 B keys and 8 B to 4 kB values: 129-4214 B, the
    layouts 176-4272): a bytes-keyed dict stores its keys unwrapped (the string
    alone), a bytes value is a 16 B W_BytesObject and its string."""
    cost = 16 + _rstr(len(value)) if value.__class__ is bytes else size_of(value)
    return _rstr(len(key)) + cost + PYPY_DICT_ENTRY + (DICT_ENTRY if side else 0)


key_cost = pypy_key_cost if PYPY else layout_key_cost

