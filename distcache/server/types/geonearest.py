"""The nearest COUNT of a geo search, best first: parts of cells visited in the
order of a lower bound of their distance, so a search with a small COUNT measures
a few hundred points (or, for a box as wide as the earth, a few dozen), not every
point of the nine cells. The scan of each part is :func:`geoscan.scan`'s.
"""
from __future__ import annotations

import heapq
import math
from typing import Any, List, Tuple

from .geohash import D_R, EARTH_RADIUS, STEP_MAX, Cell, decode, score_range
from .geoscan import _SAFE, _SLACK, _WIDEN, Found, bands, masks, scan

#: A node with at most this many members is scanned rather than cut in four.
LEAF = 8
#: Larger COUNTs scan the cells whole (best first would visit most nodes anyway).
NEAREST_MAX = 1000


def lower_bound(cell: Cell, lon: float, lat: float, cos_c: float) -> float:
    """A distance (meters) that no point of ``cell`` is closer than to (lon, lat),
    with margins against float rounding: haversine with the smallest latitude and
    longitude gaps, and the smaller cosine of the cell's latitudes."""
    lon0, lon1, lat0, lat1 = decode(cell)
    lat0, lat1, lon0, lon1 = lat0 - _WIDEN, lat1 + _WIDEN, lon0 - _WIDEN, lon1 + _WIDEN
    dlat = lat0 - lat if lat < lat0 else lat - lat1 if lat > lat1 else 0.0
    dlon = lon0 - lon if lon < lon0 else lon - lon1 if lon > lon1 else 0.0
    if abs(lon0 - lon) >= 180.0 or abs(lon1 - lon) >= 180.0:
        dlon = 0.0  # across the antimeridian: no longitude bound
    cos_min = max(min(math.cos(lat0 * D_R), math.cos(lat1 * D_R)), 0.0)
    s1, s2 = math.sin(dlat * D_R / 2), math.sin(dlon * D_R / 2)
    h = s1 * s1 + cos_c * cos_min * s2 * s2
    return 2.0 * EARTH_RADIUS * math.asin(math.sqrt(min(h, 1.0))) / _SAFE - _SLACK


def nearest(z: Any, cells: List[Cell], lon: float, lat: float, radius: float,
            count: int, box: bool = False, width: float = 0.0, height: float = 0.0
            ) -> Found:
    """The matches a radius (or ``box``: width and height, meters) search sorted by
    distance would keep with COUNT ``count``
    (all those at the cut's distance included), in Redis's scan order (cell by cell,
    by score within a cell), so a stable sort by distance gives Redis's reply.

    Parts of cells are visited nearest first (a heap on their distance lower
    bounds), cut in four while they hold more than LEAF members, and the search
    stops once ``count`` matches are found that are all closer than what is left:
    a 20 km search over dense data measures a few hundred points, not every
    point of nine cells, and a box as wide as the earth a few dozen, not all."""
    count_below = z.count_below
    cos_c = math.cos(lat * D_R)
    heap: List[Tuple[float, int, Cell, int, int]] = []
    for ci, cell in enumerate(cells):
        low, high = score_range(cell)
        lo, hi = count_below(float(low), False), count_below(float(high), False)
        if lo < hi:
            heap.append((lower_bound(cell, lon, lat, cos_c), ci, cell, lo, hi))
    heapq.heapify(heap)
    if box:
        grid = masks(bands(lon, lat, width / 2, height / 2, True))
        radius = math.inf  # (no distance limit: the box check decides)
    else:
        grid = masks(bands(lon, lat, radius, radius, False))
    kept: List[Tuple[int, float, bytes, float, float, float]] = []
    closest: List[float] = []  # the ``count`` smallest distances, negated (a max-heap)
    part: Found = []
    while heap:
        bound, ci, cell, lo, hi = heapq.heappop(heap)
        if bound > radius or (len(closest) == count and bound > -closest[0]):
            break
        bits, step = cell
        if hi - lo <= LEAF or step >= STEP_MAX:
            part.clear()
            scan((z.iter_range(lo, hi),), lon, lat, box, width, height, radius, part, 0, grid)
            for d, score, member, plon, plat in part:
                kept.append((ci, score, member, plon, plat, d))
                if len(closest) < count:
                    heapq.heappush(closest, -d)
                elif d < -closest[0]:
                    heapq.heapreplace(closest, -d)
            continue
        shift = 52 - 2 * (step + 1)
        base = bits << 2
        edges = [lo, count_below(float((base + 1) << shift), False),
                 count_below(float((base + 2) << shift), False),
                 count_below(float((base + 3) << shift), False), hi]
        for k in range(4):
            if edges[k] < edges[k + 1]:
                child = (base + k, step + 1)
                heapq.heappush(heap, (lower_bound(child, lon, lat, cos_c), ci, child,
                                      edges[k], edges[k + 1]))
    kept.sort(key=lambda p: (p[0], p[1]))  # stable: equal scores keep their order
    return [(d, score, member, plon, plat) for _, score, member, plon, plat, d in kept]
