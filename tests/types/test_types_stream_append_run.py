"""Stream.append_run (XADD's pipelined batch) against entry-by-entry appends:
the same nodes (cuts, listpack sizes, ids, texts) and counters, whatever the
values, node limits and seq-diffs."""
from __future__ import annotations

import random
from typing import List

import pytest

from distcache.server.types.stream import Stream
from distcache.server.types.stream_node import MASK, limits


def _state(s: Stream) -> list:
    nodes = [(n.key, list(n.ms), list(n.seq), list(n.offs), bytes(n.blob), n.lp_base,
              n.deleted, n.fast, n.master) for n in s.nodes]
    return [nodes, s.firsts, s.length, s.last_id, s.first_id, s.entries_added]


def _value(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.5:
        return b"v" * rng.choice([3, 3, 3, 1, 9, 10, 63])  # mostly one length
    if kind < 0.7:
        return b"x%d" % rng.randrange(1000)
    if kind < 0.8:
        return b"%d" % rng.randrange(-50, 5000)  # numbers: the general path
    if kind < 0.9:
        return b"y" * rng.choice([0, 64, 200])
    return b"-" + b"z" * rng.randrange(5)


def _requests(rng: random.Random, count: int) -> List[List[bytes]]:
    out = []
    for _ in range(count):
        field = b"f" if rng.random() < 0.85 else rng.choice([b"g", b"ff"])
        fields = [field, _value(rng)]
        if rng.random() < 0.05:
            fields += [b"h", _value(rng)]
        out.append([b"XADD", b"k", b"*"] + fields)
    return out


@pytest.mark.parametrize("node_limits", [(4096, 100), (120, 100), (0, 7), (4096, 0), (60, 0)])
def test_append_run_matches_entry_by_entry(node_limits) -> None:
    saved = limits.max_bytes, limits.max_entries
    limits.set(*node_limits)
    try:
        rng = random.Random(hash(node_limits) & 0xFFFF)
        for start in (1 << 64, 1764800000000 << 64 | 120, 5 << 64 | 4000,
                      9 << 64 | (MASK - 3000)):
            one, run = Stream(), Stream()
            one.append(start, [b"f", b"w"])
            run.append(start, [b"f", b"w"])
            ms, seq = start >> 64, (start & MASK) + 1
            for _ in range(60):
                requests = _requests(rng, rng.choice([1, 2, 16, 16, 40]))
                lo = rng.randrange(2)
                if seq + len(requests) > MASK:
                    ms, seq = ms + 1, 0
                for k, args in enumerate(requests[lo:]):
                    one.append(ms << 64 | (seq + k), args[3:])
                run.append_run(ms, seq, requests, lo, len(requests), 3)
                assert _state(run) == _state(one)
                seq += len(requests) - lo
                if rng.random() < 0.3:  # a new ms: seq-diffs below the node's first
                    ms, seq = ms + rng.choice([1, 200, 70000]), rng.choice([0, 0, 5, 300])
    finally:
        limits.set(*saved)
