"""The sorted set: members ordered by (score, member), with O(log n) ranks.

Elements are ``(score, member)`` tuples kept in a list of sorted blocks
(each at most ``2 * LOAD`` long). ``_maxes`` holds every block's last
element, so finding the block of an element is one C ``bisect``; inserting
or deleting inside a block is a ``memmove`` of at most a few thousand
pointers. A Fenwick tree over the block lengths turns positions into
(block, offset) pairs and back in O(log n); it is updated in place on
inserts and deletes and rebuilt lazily (O(number of blocks)) after a block
is split or merged, which happens once every ``LOAD`` changes at most.

``scores`` maps each member to its score, for O(1) ZSCORE and membership.
The Redis order is the tuple order: by score, then by member bytes.
"""
from __future__ import annotations

import math
from bisect import bisect_left, insort
from itertools import count
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Tuple

if TYPE_CHECKING:  # (geoindex imports this module)
    from .geoindex import SetIndex

Entry = Tuple[float, bytes]

LOAD = 1000
_INF = math.inf
_STAMPS = count(1)


class ZSet:
    __slots__ = ("scores", "_blocks", "_maxes", "_tree", "stamp", "geo")

    def __init__(self) -> None:
        self.scores: Dict[bytes, float] = {}
        self._blocks: List[List[Entry]] = []
        self._maxes: List[Entry] = []
        self._tree: Optional[List[int]] = None
        #: 0, or a number (:func:`stamp`) no other set's state ever had: every change
        #: of the elements resets it, so a cache keyed by it is never stale.
        self.stamp = 0
        #: None, or the set's grid index (geoindex.SetIndex) once it was geo-searched:
        #: told of every element added or removed, it keeps its cells up to date.
        self.geo: Optional["SetIndex"] = None

    # -- basic protocol -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self.scores)

    def __contains__(self, member: object) -> bool:
        return member in self.scores

    def __repr__(self) -> str:
        return f"ZSet({list(self.items())!r})"

    def score(self, member: bytes) -> Optional[float]:
        return self.scores.get(member)

    def items(self) -> Iterator[Tuple[bytes, float]]:
        """(member, score) pairs in rank order."""
        for block in self._blocks:
            for score, member in block:
                yield member, score

    def entries(self) -> Iterator[Entry]:
        """(score, member) tuples in rank order."""
        for block in self._blocks:
            yield from block

    def copy(self) -> "ZSet":
        new = ZSet()
        new.scores = self.scores.copy()
        new._blocks = [block[:] for block in self._blocks]
        new._maxes = self._maxes[:]
        return new

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ZSet) and self.scores == other.scores

    __hash__ = None  # type: ignore[assignment]

    # -- changes --------------------------------------------------------------------

    def add(self, member: bytes, score: float) -> bool:
        """Insert or re-score ``member``; True if it is new."""
        scores = self.scores
        old = scores.get(member)
        if old is not None:
            if old == score:
                return False
            self._discard((old, member))
            scores[member] = score
            self._insert((score, member))
            return False
        scores[member] = score
        self._insert((score, member))
        return True

    def remove(self, member: bytes) -> bool:
        score = self.scores.pop(member, None)
        if score is None:
            return False
        self._discard((score, member))
        return True

    def delete_range(self, start: int, stop: int) -> List[Entry]:
        """Remove the elements at positions [start, stop); returns them in order."""
        start = max(start, 0)
        stop = min(stop, len(self.scores))
        if start >= stop:
            return []
        self.stamp = 0
        if self.geo is not None:
            self.geo.reset()
        removed: List[Entry] = []
        bi, off = self._locate(start)
        first = bi
        count = stop - start
        blocks, maxes = self._blocks, self._maxes
        while count > 0:
            block = blocks[bi]
            chunk = block[off:off + count]
            del block[off:off + count]
            removed.extend(chunk)
            count -= len(chunk)
            if block:
                maxes[bi] = block[-1]
                if self._tree is not None:
                    self._update(bi, -len(chunk))
                bi += 1
            else:
                del blocks[bi]
                del maxes[bi]
                self._tree = None
            off = 0
        scores = self.scores
        for _, member in removed:
            del scores[member]
        # Only the blocks at the edges of the deleted range can have become short.
        for i in (first + 1, first):
            if i < len(blocks) and len(blocks[i]) < LOAD // 4 and len(blocks) > 1:
                self._merge(i)
        return removed

    # -- positions ------------------------------------------------------------------

    def rank(self, member: bytes) -> Optional[int]:
        """0-based position of ``member`` in ascending order, or None."""
        score = self.scores.get(member)
        if score is None:
            return None
        return self._position((score, member))

    def entry(self, index: int) -> Entry:
        bi, off = self._locate(index)
        return self._blocks[bi][off]

    def iter_range(self, start: int, stop: int, reverse: bool = False) -> Iterator[Entry]:
        """Elements at positions [start, stop), ascending (or descending with ``reverse``)."""
        start = max(start, 0)
        stop = min(stop, len(self.scores))
        if start >= stop:
            return
        blocks = self._blocks
        count = stop - start
        if not reverse:
            bi, off = self._locate(start)
            while count > 0:
                chunk = blocks[bi][off:off + count]
                yield from chunk
                count -= len(chunk)
                bi += 1
                off = 0
        else:
            bi, off = self._locate(stop - 1)
            while count > 0:
                lo = max(0, off + 1 - count)
                chunk = blocks[bi][lo:off + 1]
                yield from reversed(chunk)
                count -= len(chunk)
                bi -= 1
                if bi >= 0:
                    off = len(blocks[bi]) - 1

    def score_slices(self, low: float, high: float) -> List[List[Entry]]:
        """The elements with ``low <= score < high``, ascending, as block slices (whole
        middle blocks are the blocks themselves: read them, do not change them).
        C bisections and slices only: no positions, no per-element work."""
        maxes = self._maxes
        start = (low, b"")
        i = bisect_left(maxes, start)
        if i == len(maxes):
            return []
        end = (high, b"")
        blocks = self._blocks
        block = blocks[i]
        a = bisect_left(block, start)
        if end <= maxes[i]:
            return [block[a:bisect_left(block, end, a)]]
        out = [block[a:]]
        i += 1
        while i < len(maxes) and maxes[i] < end:
            out.append(blocks[i])
            i += 1
        if i < len(maxes):
            block = blocks[i]
            out.append(block[:bisect_left(block, end)])
        return out

    def count_below(self, score: float, inclusive: bool) -> int:
        """How many elements score < ``score`` (or <= with ``inclusive``)."""
        if inclusive:
            if score == _INF:
                return len(self.scores)
            score = math.nextafter(score, _INF)
        return self._position((score, b""))

    def count_below_member(self, member: bytes, inclusive: bool) -> int:
        """How many elements sort before ``member`` by member bytes alone (lex ranges).

        Meaningful when all scores are equal, which is what BYLEX requires.
        """
        if inclusive:
            def before(entry: Entry) -> bool:
                return entry[1] <= member
        else:
            def before(entry: Entry) -> bool:
                return entry[1] < member
        i = _first_not(self._maxes, before)
        if i == len(self._maxes):
            return len(self.scores)
        return self._prefix(i) + _first_not(self._blocks[i], before)

    # -- internals ------------------------------------------------------------------

    def _insert(self, item: Entry) -> None:
        self.stamp = 0
        if self.geo is not None:
            self.geo.write(item, True)
        maxes = self._maxes
        blocks = self._blocks
        if not maxes:
            blocks.append([item])
            maxes.append(item)
            self._tree = None
            return
        i = bisect_left(maxes, item)
        if i == len(maxes):
            i -= 1
            block = blocks[i]
            block.append(item)
            maxes[i] = item
        else:
            block = blocks[i]
            insort(block, item)
        if len(block) > 2 * LOAD:
            blocks.insert(i + 1, block[LOAD:])
            del block[LOAD:]
            maxes[i] = block[-1]
            maxes.insert(i + 1, blocks[i + 1][-1])
            self._tree = None
        elif self._tree is not None:
            self._update(i, 1)

    def _discard(self, item: Entry) -> None:
        self.stamp = 0
        if self.geo is not None:
            self.geo.write(item, False)
        maxes = self._maxes
        blocks = self._blocks
        i = bisect_left(maxes, item)
        block = blocks[i]
        j = bisect_left(block, item)
        del block[j]
        if not block:
            del blocks[i]
            del maxes[i]
            self._tree = None
            return
        if j == len(block):
            maxes[i] = block[-1]
        if len(block) < LOAD // 4 and len(blocks) > 1:
            self._merge(i)
        elif self._tree is not None:
            self._update(i, -1)

    def _merge(self, i: int) -> None:
        """Join small block ``i`` with a neighbour, splitting again if too long."""
        blocks, maxes = self._blocks, self._maxes
        if i == 0:
            i = 1
        left, right = blocks[i - 1], blocks[i]
        left.extend(right)
        del blocks[i]
        del maxes[i - 1]
        maxes[i - 1] = left[-1]
        if len(left) > 2 * LOAD:
            half = len(left) // 2
            blocks.insert(i, left[half:])
            del left[half:]
            maxes[i - 1] = left[-1]
            maxes.insert(i, blocks[i][-1])
        self._tree = None

    def _build(self) -> List[int]:
        tree = [0]
        tree.extend(len(block) for block in self._blocks)
        n = len(tree) - 1
        for i in range(1, n + 1):
            j = i + (i & -i)
            if j <= n:
                tree[j] += tree[i]
        self._tree = tree
        return tree

    def _update(self, block_index: int, delta: int) -> None:
        tree = self._tree
        n = len(tree) - 1  # type: ignore[arg-type]
        i = block_index + 1
        while i <= n:
            tree[i] += delta  # type: ignore[index]
            i += i & -i

    def _prefix(self, block_index: int) -> int:
        """Number of elements in blocks[0:block_index]."""
        tree = self._tree if self._tree is not None else self._build()
        total = 0
        i = block_index
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    def _locate(self, pos: int) -> Tuple[int, int]:
        """(block index, offset) of position ``pos`` (0 <= pos < len)."""
        blocks = self._blocks
        if pos < len(blocks[0]):
            return 0, pos
        tree = self._tree if self._tree is not None else self._build()
        n = len(tree) - 1
        idx = 0
        bit = 1 << (n.bit_length() - 1)
        while bit:
            nxt = idx + bit
            if nxt <= n and tree[nxt] <= pos:
                idx = nxt
                pos -= tree[nxt]
            bit >>= 1
        return idx, pos

    def _position(self, item: Entry) -> int:
        """Number of elements that sort before ``item``."""
        maxes = self._maxes
        i = bisect_left(maxes, item)
        if i == len(maxes):
            return len(self.scores)
        return self._prefix(i) + bisect_left(self._blocks[i], item)

    def check(self) -> None:
        """Verify the internal invariants (for tests)."""
        flat = [e for block in self._blocks for e in block]
        assert flat == sorted(flat), "blocks out of order"
        assert all(self._blocks), "empty block"
        assert self._maxes == [block[-1] for block in self._blocks], "maxes stale"
        assert len(flat) == len(self.scores), "length mismatch"
        assert all(self.scores[m] == s for s, m in flat), "score mismatch"
        assert all(len(b) <= 2 * LOAD for b in self._blocks), "block too long"
        if self._tree is not None:
            lens = [len(b) for b in self._blocks]
            for i in range(len(lens) + 1):
                assert self._prefix(i) == sum(lens[:i]), "fenwick stale"


def stamp(z: ZSet) -> int:
    """``z.stamp``, drawn from a process-wide count when the set has none: equal
    stamps mean the same set with the same elements (a cache of what was read from
    a set keys on it)."""
    value = z.stamp
    if not value:
        z.stamp = value = next(_STAMPS)
    return value


def _first_not(items: List[Entry], before: "Callable[[Entry], bool]") -> int:
    """Index of the first item for which ``before`` is false (it must be monotonic)."""
    lo, hi = 0, len(items)
    while lo < hi:
        mid = (lo + hi) // 2
        if before(items[mid]):
            lo = mid + 1
        else:
            hi = mid
    return lo
