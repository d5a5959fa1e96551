"""Stream.range_reply (XRANGE/XREVRANGE/XREAD's encoder) against the entry-by-entry
reply of Stream.range, over streams with deletions, node cuts and wide ids."""
from __future__ import annotations

import random

from distcache.server.commands.streams import entries_reply, range_reply
from distcache.server.types.stream import Stream
from distcache.server.types.stream_node import MASK, MAX_ID


def _stream(rng: random.Random, size: int) -> Stream:
    s = Stream()
    entry_id = rng.choice([1, 1764800000000 << 64, (MASK - 5000) << 64 | (MASK - 300)])
    for i in range(size):
        entry_id += rng.choice([1, 1, 1, 3, 1 << 64, 1500, 7 << 64 | 2000])
        fields = [b"f", b"v%d" % i] if rng.random() < 0.8 else [b"a", b"1", b"bb", b"x" * i]
        s.append(entry_id, fields)
    ids = [i for i, _ in s.range(0, MAX_ID)]
    for victim in rng.sample(ids, len(ids) // 5):
        s.delete(victim)
    return s


def test_range_reply_matches_range() -> None:
    rng = random.Random(15)
    for size in (0, 1, 5, 99, 100, 101, 350):
        s = _stream(rng, size)
        ids = [i for i, _ in s.range(0, MAX_ID)]
        bounds = [0, MAX_ID] + ids[:3] + ids[-3:] + rng.sample(ids, min(len(ids), 10))
        bounds += [i + 1 for i in ids[:5]] + [i - 1 for i in ids[-5:]]
        for _ in range(200):
            start, end = rng.choice(bounds), rng.choice(bounds)
            count = rng.choice([0, 1, 2, 10, 99, 100, 101, 1000])
            for rev in (False, True):
                want = entries_reply(list(s.range(start, end, count, rev)))
                assert range_reply(s, start, end, count, rev) == want, (size, start, end,
                                                                        count, rev)
