"""A grid index of a geo set for plain radius searches from any centre.

A search from a new centre pays, on the general path (:mod:`geoscan`), the
geometry of its plan and the decoding of every candidate. Here a set's
points are kept per Redis cell (the nine cells a search walks, at the step
Redis picks for the radius), read from the set when a search first needs the
cell. The cells are the set's own (:class:`SetIndex`, on ``ZSet.geo``): the set
tells its index of every element added or removed, and the index puts it in
(or takes it out of) the cell holding its score at each step it holds cells of,
in score order, so a set written between searches keeps its index whole: a
move is a bisection and a list insert or delete in two sub-cells, and a search
reads nothing again. Inside a
cell, points are grouped by sub-cell (``LEVELS`` geohash steps finer: 4 of
them), which are score ranges in score order, so a cell's sub-cells one after
the other are the cell in score order: Redis's reply order (cells in its order,
then scores) is kept without a sort. Each point keeps its grid row and column
(as floats), its reply piece (``$len\r\nmember\r\n``) and the set's element
(where a write goes: a bisection); a cell also keeps its number of points.

A search classes each sub-cell near the circle on :func:`geoscan.plane`'s
bounds (as :func:`geoscan.table` does, from the sub-cell's nearest and
farthest rows and columns): wholly outside (skipped), wholly inside (its
pieces taken in one list extend), or across the edge (each point checked on
the plane, then, within a hair of the edge, with Redis's exact float
operations). So a search is a few lookups, some tens of point checks and one
join, with no decoding.

When building pays: a set's first search takes the general path (and gives
the set an empty index): a set searched once, or replaced under its key
between searches (a new set), reads nothing more. Reading a cell costs about
as much as a general search of it; keeping it costs each write a few
microseconds, so a set written more than :data:`WRITES_SEARCH` times a
search (counted down by searches: bursts up to :data:`WRITES_MAX` are kept)
drops its cells, and its searches take the general path until they have caught
up with its writes (then they read the cells they need again).

Bounds: a cell of more than ``CELL_MAX`` members is not indexed (the search
takes the general path); all indexes together hold at most ``POINTS_MAX``
points (a cell counts its points and one), and ``LISTED_MAX`` sets with cells,
then are emptied whole, so a client searching everywhere costs at most nine
cells read per search, and the memory stays bounded (about 245 bytes a point on
CPython by tracemalloc, 220 before the elements were kept: ~32 MB at most); a
write that would take a cell past ``CELL_MAX``, or the indexes past
``POINTS_MAX``, drops the cell instead. An index is a cache, not data: it is
not counted in used_memory (docs/security.md); a set deleted keeps its cells,
counted, until the indexes are next emptied.
"""
from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any, Dict, List, Optional, Tuple

from .geohash import (_CELLS, _LAT_SCALE, _UNZIP16, D_R, EARTH_RADIUS, STEP_MAX, Grid9,
                      cell_centre, spread, unzip)
from .zset import Entry, ZSet

#: Geohash steps from a cell to its sub-cells (4 ** LEVELS sub-cells a cell).
LEVELS = 1
_SIDE = 1 << LEVELS
#: A cell with more members is not indexed.
CELL_MAX = 4096
#: Points all indexes hold at most (then they are emptied).
POINTS_MAX = 1 << 17

#: A sub-cell's points (row times KY, column, reply piece), the pieces alone, and the
#: set's (score, member) elements they are (the set's own tuples: where a write goes).
Sub = Tuple[List[Tuple[float, float, bytes]], List[bytes], List[Entry]]
#: :func:`geoscan.plane`'s ky (radians of half a grid row), the same float. A point's
#: latitude offset is read as ``row * KY - g_lat * KY``, not ``(row - g_lat) * KY``:
#: the two differ by a few units in the last place of ``row * KY`` (below 1e-15
#: radians), under a millionth of the plane's margins even for a one-metre radius.
KY = D_R / (_CELLS / _LAT_SCALE) / 2
#: An empty sub-cell (classed like the others: a dense set has few; shared, so never
#: changed: a write replaces it).
_EMPTY: Sub = ([], [], [])
#: A cell is a list of its sub-cells, then (at _COUNT) its number of points.
_COUNT = _SIDE * _SIDE
_SUBS_MASK = _SIDE * _SIDE - 1
#: Scores at or past this name no cell (nor do negative ones).
_SCORE_END = float(1 << (2 * STEP_MAX))
#: A set's ``writes``: one a write, less WRITES_SEARCH a search (never below zero);
#: past WRITES_MAX its index is emptied and its searches take the general path until
#: they bring the count back to zero (a set written more than WRITES_SEARCH times a
#: search, a few microseconds each, does not pay for keeping cells: a general search
#: costs about as much). Bursts of writes (a pipeline of moves from a client of
#: drivers) below that are kept.
WRITES_SEARCH = 8
WRITES_MAX = 1024


def _zkey(row: int, col: int) -> int:
    return sum((((row >> b) & 1) << (2 * b)) | (((col >> b) & 1) << (2 * b + 1))
               for b in range(LEVELS))


#: A rectangle of a cell's sub-cells, at ``((first row * _SIDE + last row) * _SIDE + first
#: column) * _SIDE + last column``: its sub-cells as (sub-cell, row, column), in score
#: order, rows and columns counted from the rectangle's first.
_RECTS = [tuple(sorted((_zkey(r, c), r - r0, c - c0) for r in range(r0, r1 + 1)
                       for c in range(c0, c1 + 1)))
          for r0 in range(_SIDE) for r1 in range(_SIDE)
          for c0 in range(_SIDE) for c1 in range(_SIDE)]


class SetIndex:
    """One set's cells ((step, row, column) -> the cell's sub-cells by score order), on
    the set (``ZSet.geo``): the set tells it of every element added or removed
    (:meth:`write`) and of ranges removed (:meth:`reset`), so its cells hold the set's
    elements now; a set replaced under its key (or copied) starts without one."""
    __slots__ = ("cells", "steps", "held", "writes", "cold", "listed")

    def __init__(self) -> None:
        self.cells: Dict[Tuple[int, int, int], List[Any]] = {}
        #: The steps of the cells held (a write looks at each).
        self.steps: List[int] = []
        #: Points (and cells) held, counted in :data:`_held`.
        self.held = 0
        #: Writes less searches (WRITES_SEARCH, WRITES_MAX).
        self.writes = 0
        #: Its searches take the general path (past WRITES_MAX, until ``writes`` is 0).
        self.cold = False
        #: In :data:`_LISTED` (holds cells counted in :data:`_held`).
        self.listed = False

    def write(self, item: Entry, added: bool) -> None:
        """Puts the element ``item`` in (``added``) or takes it out of the cells
        holding its score, in score order (ZSet._insert and _discard call it)."""
        self.writes += 1
        if self.writes > WRITES_MAX:
            if self.cold:
                self.writes = WRITES_MAX  # (searches have this many to catch up)
            else:
                self.reset()
                self.cold = True
            return
        score = item[0]
        if not 0.0 <= score < _SCORE_END or not self.steps:
            return
        r = int(score)
        col, row = unzip(r)
        point = None
        cells = self.cells
        for step in self.steps:
            h = STEP_MAX - step
            key = (step, row >> h, col >> h)
            slots = cells.get(key)
            if slots is None:
                continue
            sub = (r >> (2 * (h - LEVELS))) & _SUBS_MASK
            points, pieces, entries = slots[sub]
            j = bisect_left(entries, item)
            if added:
                if slots[_COUNT] < CELL_MAX and _held[0] < POINTS_MAX:
                    if point is None:
                        member = item[1]
                        point = (row * KY, float(col),
                                 b"$%d\r\n%s\r\n" % (len(member), member))
                    if entries:
                        points.insert(j, point)
                        pieces.insert(j, point[2])
                        entries.insert(j, item)
                    else:  # (_EMPTY, shared: replaced)
                        slots[sub] = ([point], [point[2]], [item])
                    slots[_COUNT] += 1
                    self.held += 1
                    _held[0] += 1
                    continue
            elif j < len(entries) and entries[j] == item:
                del points[j], pieces[j], entries[j]
                slots[_COUNT] -= 1
                self.held -= 1
                _held[0] -= 1
                continue
            # (the cell is read again, or found crowded, by the next search; an element
            # missing from its cell is not expected: dropped the same)
            del cells[key]
            n = slots[_COUNT] + 1
            self.held -= n
            _held[0] -= n

    def reset(self) -> None:
        """Forgets every cell."""
        _held[0] -= self.held
        self.held = 0
        self.cells.clear()
        self.steps.clear()


#: The indexes holding cells (each holds one at least): all are emptied when they hold
#: more than POINTS_MAX points (or cells) together, counted in ``_held[0]``.
_LISTED: List[SetIndex] = []
LISTED_MAX = 4096
_held = [0]


def clear() -> None:
    """Empties every set's index (what they hold is counted again from nothing)."""
    for ix in _LISTED:
        ix.reset()
        ix.listed = False
    _LISTED.clear()
    _held[0] = 0


def _build(z: ZSet, ix: SetIndex, key: Tuple[int, int, int]) -> Optional[List[Any]]:
    """A cell's sub-cells read from the set, or None when it is crowded."""
    step, row, col = key
    shift = 2 * (STEP_MAX - step)
    base = (spread(row) | spread(col) << 1) << shift
    parts = z.score_slices(float(base), float(base + (1 << shift)))
    n = sum(map(len, parts))
    if n > CELL_MAX:
        return None
    if _held[0] + n + 1 > POINTS_MAX:
        clear()
    if not ix.listed:
        if len(_LISTED) >= LISTED_MAX:
            clear()
        _LISTED.append(ix)
        ix.listed = True
    if step not in ix.steps:
        ix.steps.append(step)
    ix.held += n + 1
    _held[0] += n + 1
    sub_shift = shift - 2 * LEVELS
    t = _UNZIP16
    groups: List[list] = [[] for _ in range(_SIDE * _SIDE)]
    kept: List[list] = [[] for _ in range(_SIDE * _SIDE)]
    for part in parts:
        for entry in part:
            score, member = entry
            r = int(score)  # (Redis's cast: a whole score in the cell's range)
            both = (t[r & 0xFFFF] | t[(r >> 16) & 0xFFFF] << 8
                    | t[(r >> 32) & 0xFFFF] << 16 | t[r >> 48] << 24)
            # (the row scaled by the plane's ky, the column as a float: float
            # arithmetic is faster; SetIndex.write makes its points alike)
            sub = (r - base) >> sub_shift
            groups[sub].append(((both & 0xFFFFFFFF) * KY, float(both >> 32),
                                b"$%d\r\n%s\r\n" % (len(member), member)))
            kept[sub].append(entry)
    slots: List[Any] = [(g, [p[2] for p in g], e) if g else _EMPTY
                        for g, e in zip(groups, kept)]
    slots.append(n)
    ix.cells[key] = slots
    return slots


def _spans(first: int, count: int, centre: float, k_near: float, k_far: float, h: int
           ) -> Tuple[List[float], List[float]]:
    """Squared nearest and farthest offsets (scaled) of ``count`` sub-rows (sub-columns)
    from ``first``, each ``2 ** h`` grid rows wide, from the centre, as the plane's
    checks compute a point's (its row less the centre, as floats)."""
    near2: List[float] = []
    far2: List[float] = []
    size = float(1 << h)
    a = float(first << h) - size  # (whole floats below 2**53: the sums are exact)
    top = size - 1.0
    for _ in range(count):
        a += size
        da = a - centre
        db = (a + top) - centre
        if db < 0.0:
            near = db * k_near
            far = da * k_far
        elif da > 0.0:
            near = da * k_near
            far = db * k_far
        else:
            near = 0.0
            far = (db if db > -da else da) * k_far
        near2.append(near * near)
        far2.append(far * far)
    return near2, far2


_TOP = _SIDE - 1


def _inside(y: float, column: float, lon: float, lat: float, radius: float) -> bool:
    """Redis's check of a point near the circle's edge: its decoding and distance with
    geoscan.scan_cells' float operations (the row read back from ``y`` exactly: the
    error of ``row * KY`` is far below half a row)."""
    plon, plat = cell_centre(int(column), round(y / KY))
    lon1r, lat1r = lon * D_R, lat * D_R
    lat2r = plat * D_R
    v = math.sin((plon * D_R - lon1r) / 2)
    if v == 0.0:
        d = EARTH_RADIUS * abs(lat2r - lat1r)
    else:
        u = math.sin((lat2r - lat1r) / 2)
        x = math.sqrt(u * u + math.cos(lat1r) * math.cos(lat2r) * v * v)
        d = 2.0 * EARTH_RADIUS * (math.asin(x) if x <= 1.0 else math.nan)
    return d <= radius


def search(z: ZSet, ix: SetIndex, grid: Grid9, lon: float, lat: float, radius: float,
           band: Tuple[int, int, int, int], plane: Tuple[float, ...]) -> Optional[bytes]:
    """The encoded member array of a plain radius search over the cells of ``grid``
    (:func:`geohash.search_grid`: Redis's, visited in its order) from the set, on its
    index ``ix`` (the cells missing are built); None when the index cannot answer (a
    crowded cell, steps too coarse or too fine for sub-cells).

    ``band`` and ``plane`` are :func:`geoscan.bands` and :func:`geoscan.plane`. A point
    outside the band needs no band check here: the plane's inner test cannot pass
    for it (its latitude alone is past the radius), and its outer one only rejects."""
    step, ilat, north, south, ilon, east, west, zn, zs, ze, zw = grid
    h = STEP_MAX - step - LEVELS
    if h < 0 or step < 2:
        return None
    g_lat, g_lon, ky, kx_in, kx_out, h_in, h_out, shrink = plane
    if ky != KY:
        return None
    gy = g_lat * ky
    # A point's plane terms with kx_in, q = dy^2 + (dx kx_in)^2, bound its outer one:
    # dy^2 + (dx kx_out)^2 >= q (kx_out / kx_in)^2, so past ``far`` it fails the
    # plane's outer check (a margin of 1e-12 for the rounding of these products).
    ratio = kx_out / kx_in if kx_in > 0.0 else 0.0
    scale = ratio * ratio * shrink
    far = h_out / scale * (1.0 + 1e-12) if scale > 0.0 else math.inf
    r0, c0 = band[0] >> h, band[2] >> h
    n_rows, n_cols = (band[1] >> h) - r0, (band[3] >> h) - c0
    rn, rf = _spans(r0, n_rows + 1, g_lat, ky, ky, h)
    cn, cf = _spans(c0, n_cols + 1, g_lon, kx_out, kx_in, h)
    out: List[bytes] = [b""]
    append = out.append
    index_get = ix.cells.get
    writes = ix.writes - WRITES_SEARCH
    ix.writes = writes if writes > 0 else 0
    rects, side = _RECTS, _SIDE
    top = _TOP
    # Redis's order: the centre, north, south, east, west, then the corners
    for row, col in ((ilat, ilon), (-1 if zn else north, ilon), (-1 if zs else south, ilon),
                     (-1 if ze else ilat, east), (-1 if zw else ilat, west),
                     (-1 if zn or ze else north, east), (-1 if zn or zw else north, west),
                     (-1 if zs or ze else south, east), (-1 if zs or zw else south, west)):
        if row < 0:
            continue  # zeroed
        # the cell's sub-rows and sub-columns inside the band (i0, j0: the band's index
        # of the cell's first)
        i0, j0 = (row << LEVELS) - r0, (col << LEVELS) - c0
        lo_r, hi_r = -i0 if i0 < 0 else 0, n_rows - i0
        lo_c, hi_c = -j0 if j0 < 0 else 0, n_cols - j0
        if hi_r > top:
            hi_r = top
        if hi_c > top:
            hi_c = top
        if lo_r > hi_r or lo_c > hi_c:
            continue
        key = (step, row, col)
        slots = index_get(key)
        if slots is None:
            slots = _build(z, ix, key)
            if slots is None:
                return None
        # the spans of the rectangle's first sub-row and sub-column on
        rn_, rf_ = rn[i0 + lo_r:], rf[i0 + lo_r:]
        cn_, cf_ = cn[j0 + lo_c:], cf[j0 + lo_c:]
        for sub, i, j in rects[((lo_r * side + hi_r) * side + lo_c) * side + hi_c]:
            if rf_[i] + cf_[j] <= h_in:
                out += slots[sub][1]
                continue
            if (rn_[i] + cn_[j]) * shrink > h_out:
                continue
            for y, p_lon, piece in slots[sub][0]:
                dy = y - gy
                w = (p_lon - g_lon) * kx_in
                q = dy * dy + w * w
                if q > far:
                    continue
                if q <= h_in:
                    append(piece)
                    continue
                if _inside(y, p_lon, lon, lat, radius):
                    append(piece)
    out[0] = b"*%d\r\n" % (len(out) - 1)
    return b"".join(out)
