"""A grid index of a geo set for plain radius searches from any centre.

A search from a new centre pays, on the general path (:mod:`geoscan`), the
geometry of its plan and the decoding of every candidate. Here a set's
points are kept per Redis cell (the nine cells a search walks, at the step
Redis picks for the radius), read from the set when a search first needs the
cell and valid while the set's :func:`~distcache.server.types.zset.stamp` is
the same (every write to the elements changes it). Inside a cell, points are
grouped by sub-cell (``LEVELS`` geohash steps finer: 4 of them), which are
score ranges in score order, so a cell's sub-cells one after the other are
the cell in score order: Redis's reply order (cells in its order, then
scores) is kept without a sort. Each point keeps its grid row and column (as
floats) and its reply piece (``$len\r\nmember\r\n``).

A search classes each sub-cell near the circle on :func:`geoscan.plane`'s
bounds (as :func:`geoscan.table` does, from the sub-cell's nearest and
farthest rows and columns): wholly outside (skipped), wholly inside (its
pieces taken in one list extend), or across the edge (each point checked on
the plane, then, within a hair of the edge, with Redis's exact float
operations). So a search is a few lookups, some tens of point checks and one
join, with no decoding.

A set's first search on a stamp takes the general path (and is recorded): the
index, whose reading costs about twice a general search, is built from the
second, so a set written between every two searches never builds one.

Bounds: a cell of more than ``CELL_MAX`` members is not indexed (the search
takes the general path); all indexes together hold at most ``POINTS_MAX``
points, then are dropped whole, so a client searching everywhere, or writing
between searches, costs at most nine cells read per search, and the memory
stays bounded (about 170 bytes a point: ~22 MB at most). The index is the
process's, like the plans and cached replies, and is not counted in
used_memory (it is a cache that is dropped, not data: docs/security.md).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

from .geohash import (_CELLS, _LAT_SCALE, _UNZIP16, D_R, EARTH_RADIUS, STEP_MAX, Grid9,
                      cell_centre, spread)
from .zset import ZSet

#: Geohash steps from a cell to its sub-cells (4 ** LEVELS sub-cells a cell).
LEVELS = 1
_SIDE = 1 << LEVELS
#: A cell with more members is not indexed.
CELL_MAX = 4096
#: Points all indexes hold at most (then they are dropped).
POINTS_MAX = 1 << 17

#: A sub-cell's points (row times KY, column, reply piece) and the pieces alone.
Sub = Tuple[Tuple[Tuple[float, float, bytes], ...], Tuple[bytes, ...]]
#: :func:`geoscan.plane`'s ky (radians of half a grid row), the same float. A point's
#: latitude offset is read as ``row * KY - g_lat * KY``, not ``(row - g_lat) * KY``:
#: the two differ by a few units in the last place of ``row * KY`` (below 1e-15
#: radians), under a millionth of the plane's margins even for a one-metre radius.
KY = D_R / (_CELLS / _LAT_SCALE) / 2
#: (stamp, step, row, column) -> the cell's sub-cells by their score order.
_INDEX: Dict[Tuple[int, int, int, int], List[Sub]] = {}
#: An empty sub-cell (classed like the others: a dense set has few).
_EMPTY: Sub = ((), ())
_held = [0]


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


#: Stamps of sets searched once (a set's index is built from its second search on one
#: stamp: a set written between every two searches never pays for one). Bounded.
SEEN: Dict[int, bool] = {}
SEEN_MAX = 4096


def see(st: int) -> None:
    """Records a search of the set with stamp ``st`` (callers test ``st in SEEN`` first)."""
    if len(SEEN) >= SEEN_MAX:
        SEEN.clear()
    SEEN[st] = True


def clear() -> None:
    _INDEX.clear()
    _held[0] = 0


def _build(z: ZSet, key: Tuple[int, int, int, int]) -> Optional[List[Sub]]:
    """A cell's sub-cells read from the set, or None when it is crowded."""
    _, step, row, col = key
    shift = 2 * (STEP_MAX - step)
    base = (spread(row) | spread(col) << 1) << shift
    parts = z.score_slices(float(base), float(base + (1 << shift)))
    n = sum(map(len, parts))
    if n > CELL_MAX:
        return None
    if _held[0] + n > POINTS_MAX:
        clear()
    _held[0] += n
    sub_shift = shift - 2 * LEVELS
    t = _UNZIP16
    groups: List[list] = [[] for _ in range(_SIDE * _SIDE)]
    for part in parts:
        for score, member in part:
            r = int(score)  # (Redis's cast: a whole score in the cell's range)
            both = (t[r & 0xFFFF] | t[(r >> 16) & 0xFFFF] << 8
                    | t[(r >> 32) & 0xFFFF] << 16 | t[r >> 48] << 24)
            # (the row scaled by the plane's ky, the column as a float: float
            # arithmetic is faster)
            groups[(r - base) >> sub_shift].append(
                ((both & 0xFFFFFFFF) * KY, float(both >> 32),
                 b"$%d\r\n%s\r\n" % (len(member), member)))
    slots: List[Sub] = [(tuple(g), tuple(p[2] for p in g)) if g else _EMPTY for g in groups]
    _INDEX[key] = slots
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


def search(z: ZSet, st: int, grid: Grid9, lon: float, lat: float, radius: float,
           band: Tuple[int, int, int, int], plane: Tuple[float, ...]) -> Optional[bytes]:
    """The encoded member array of a plain radius search over the cells of ``grid``
    (:func:`geohash.search_grid`: Redis's, visited in its order) from the set with stamp
    ``st``; None when the index cannot answer (a crowded cell, steps too coarse or
    too fine for sub-cells).

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
    index_get = _INDEX.get
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
        key = (st, step, row, col)
        slots = index_get(key)
        if slots is None:
            slots = _build(z, key)
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
