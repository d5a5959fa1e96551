"""The scan of a geo search: which parts of a cell can hold a match, and the loop
that decodes and measures the members found there.

Redis measures every member of the nine cells around the centre, cells at
least as wide as the radius: most of them lie outside the circle or box. Here
each cell is cut into 16 sub-cells (two more geohash steps), and a sub-cell
is skipped when a lower bound of the distance from the centre to any point
in it is beyond the search's limit: every point in it would fail Redis's
check. A member outside the grid rows and columns that can hold a match (a
bounding box, :func:`bands`) is skipped on its integer cell coordinates. The
members left are measured with Redis's exact float operations
(:func:`geohash.score_to_lonlat` and the distance checks, inlined), in
score order, so replies, orders and ANY cut-offs are Redis's.

The bounds: a haversine distance is at least ``R * |dlat|``, and for a
sub-cell beside the centre's meridian band at least ``2R asin(sqrt(cos(lat)
* cos_min) * sin(dlon / 2))`` (``cos_min`` the smaller cosine of the
sub-cell's latitudes); a box's longitude check (at the point's latitude) at
least ``2R asin(cos_min * sin(dlon / 2))``. A relative and an absolute
margin keep a point on the border in.
"""
from __future__ import annotations

import heapq
import math
from typing import Any, Iterable, List, Optional, Tuple

from .geohash import (_CELLS, _EVEN, _LAT_SCALE, _ODD, _UNZIP16, D_R, EARTH_RADIUS, LAT_MAX,
                      LAT_MIN, LONG_MAX, LONG_MIN, STEP_MAX, Cell, decode, score_range, spread)

SUB_STEPS = 2
#: Cells with more members than this are cut into sub-cells (fewer: cheaper to scan).
CROWDED = 48
_SAFE = 1.0 + 1e-9
_SLACK = 1e-6  # meters

Found = List[Tuple[float, float, bytes, float, float]]
#: Grid rows and columns that can hold a match: (lat_lo, lat_hi, lon_lo, lon_hi).
Grid = Tuple[int, int, int, int]
#: The last row or column: 2**26 itself, where a longitude of 180 (or latitude at the
#: limit) lands: Redis's encoding carries it into the next bit, as here.
_TOP = 1 << STEP_MAX
#: The same as bounds on interleaved bits: (even low, even high, odd low, odd high).
Masks = Tuple[int, int, int, int]
#: :func:`plane`'s bounds: centre row and column, scales, inside and outside limits.
Plane = Tuple[float, float, float, float, float, float, float, float]


#: (latitude, longitude) offsets of the sub-cells of a cell, in score order.
_SUBS = [(sum(((k >> (2 * b)) & 1) << b for b in range(SUB_STEPS)),
          sum(((k >> (2 * b + 1)) & 1) << b for b in range(SUB_STEPS)))
         for k in range(1 << (2 * SUB_STEPS))]
#: Sub-cell bounds are widened by this much (degrees) against float rounding.
_WIDEN = 1e-9


def ranges(cell: Cell, lon: float, lat: float, box: bool, half_w: float, half_h: float
           ) -> List[Tuple[int, int]]:
    """The score ranges [lo, hi) of ``cell`` that may hold a match, ascending.
    A radius search passes its radius as both halves (meters)."""
    bits, step = cell
    if step + SUB_STEPS > STEP_MAX:
        return [score_range(cell)]
    shift = 52 - 2 * (step + SUB_STEPS)
    c_lon0, c_lon1, c_lat0, c_lat1 = decode(cell)
    lon_step = (c_lon1 - c_lon0) / (1 << SUB_STEPS)
    lat_step = (c_lat1 - c_lat0) / (1 << SUB_STEPS)
    cos_c = math.cos(lat * D_R)
    lat_limit = half_h * _SAFE + _SLACK
    lon_limit = half_w * _SAFE + _SLACK
    out: List[Tuple[int, int]] = []
    sub = bits << (2 * SUB_STEPS)
    cos, sin, asin, sqrt = math.cos, math.sin, math.asin, math.sqrt
    for ilat, ilon in _SUBS:
        lat0 = c_lat0 + ilat * lat_step - _WIDEN
        lat1 = lat0 + lat_step + 2 * _WIDEN
        lon0 = c_lon0 + ilon * lon_step - _WIDEN
        lon1 = lon0 + lon_step + 2 * _WIDEN
        keep = True
        dlat = lat0 - lat if lat < lat0 else lat - lat1 if lat > lat1 else 0.0
        if EARTH_RADIUS * dlat * D_R > lat_limit:
            keep = False
        else:
            dlon = lon0 - lon if lon < lon0 else lon - lon1 if lon > lon1 else 0.0
            if dlon > 0.0 and abs(lon0 - lon) < 180.0 and abs(lon1 - lon) < 180.0:
                cos_min = min(cos(lat0 * D_R), cos(lat1 * D_R))
                s = sin(dlon * D_R / 2)
                term = cos_min * s if box else sqrt(max(cos_c * cos_min, 0.0)) * s
                keep = 2.0 * EARTH_RADIUS * asin(min(term, 1.0)) <= lon_limit
        if keep:
            lo, hi = sub << shift, (sub + 1) << shift
            if out and out[-1][1] == lo:
                out[-1] = (out[-1][0], hi)
            else:
                out.append((lo, hi))
        sub += 1
    return out


def scan(chunks: Iterable[Iterable[Tuple[float, bytes]]], lon: float, lat: float,
         box: bool, width: float, height: float, radius: float, found: Found, limit: int,
         masks: Masks, plane: Optional[Plane] = None, accept: bool = False,
         square: Optional[Masks] = None) -> bool:
    """Append (distance, score, member, lon, lat) of the (score, member) elements of
    ``chunks`` inside the search; True once ``limit`` (if nonzero) matches are found.
    The scores must lie in a cell's range (finite, in [0, 2**54)). ``masks``: the
    search's :func:`masks`. ``plane`` (a radius search's :func:`plane`): points
    surely outside are rejected on grid arithmetic, without trigonometry; with
    ``accept`` too (the reply needs no distance or coordinates), points surely
    inside are taken as ``(0.0, score, member, 0.0, 0.0)``, and so are those in
    ``square`` (:func:`square`, checked on the interleaved bits) before decoding.

    The decoding is :func:`geohash.score_to_lonlat` and the checks are
    ``radius_checker`` / ``in_box``, inlined with the same float operations."""
    t = _UNZIP16
    cells, lat_scale = _CELLS, _LAT_SCALE
    sin, cos, sqrt, asin = math.sin, math.cos, math.sqrt, math.asin
    nan = math.nan
    lon1r, lat1r = lon * D_R, lat * D_R
    cos1 = _cos(lat1r)
    half_w, half_h = width / 2, height / 2
    append = found.append
    # The band of grid rows and columns outside which no point can match (with
    # margins), as interleaved bits: spreading bits keeps their order, so a point
    # there is skipped on two ANDs and compares, before any decoding.
    elo, ehi, olo, ohi = masks
    even, odd = _EVEN, _ODD
    if plane is not None:
        g_lat, g_lon, ky, kx_in, kx_out, h_in, h_out, shrink = plane
        if not accept:
            h_in = -1.0
    s_elo, s_ehi, s_olo, s_ohi = square if accept and square else (1, 0, 1, 0)
    for chunk in chunks:
        for score, member in chunk:
            bits = int(score)
            e = bits & even
            if e < elo or e > ehi:
                continue
            o = bits & odd
            if o < olo or o > ohi:
                continue
            if s_elo <= e <= s_ehi and s_olo <= o <= s_ohi:
                append((0.0, score, member, 0.0, 0.0))
                if limit and len(found) >= limit:
                    return True
                continue
            both = (t[bits & 0xFFFF] | t[(bits >> 16) & 0xFFFF] << 8
                    | t[(bits >> 32) & 0xFFFF] << 16 | t[bits >> 48] << 24)
            ilat, ilon = both & 0xFFFFFFFF, both >> 32
            if plane is not None:
                dy = (ilat - g_lat) * ky
                dy *= dy
                dx = ilon - g_lon
                w = dx * kx_in
                if dy + w * w <= h_in:
                    append((0.0, score, member, 0.0, 0.0))
                    if limit and len(found) >= limit:
                        return True
                    continue
                w = dx * kx_out
                if (dy + w * w) * shrink > h_out:
                    continue
            plon = ((LONG_MIN + (ilon * 1.0 / cells) * 360.0)
                    + (LONG_MIN + (((ilon + 1) & 0xFFFFFFFF) * 1.0 / cells) * 360.0)) / 2
            plat = ((LAT_MIN + (ilat * 1.0 / cells) * lat_scale)
                    + (LAT_MIN + (((ilat + 1) & 0xFFFFFFFF) * 1.0 / cells) * lat_scale)) / 2
            plon = LONG_MIN if plon < LONG_MIN else LONG_MAX if plon > LONG_MAX else plon
            plat = LAT_MIN if plat < LAT_MIN else LAT_MAX if plat > LAT_MAX else plat
            lat2r = plat * D_R
            if box:
                # in_box: the latitude distance, then the longitude one at the point's
                # latitude
                if EARTH_RADIUS * abs(lat1r - lat2r) > half_h:
                    continue
                v = sin((lon1r - plon * D_R) / 2)
                if v != 0.0:
                    c2 = cos(lat2r)
                    h = sqrt(c2 * c2 * v * v)
                    if 2.0 * EARTH_RADIUS * (asin(h) if h <= 1.0 else nan) > half_w:
                        continue
            # the distance (plat is finite, so cos is C's cos here; asin's argument
            # is NaN past 1, as C's)
            v = sin((plon * D_R - lon1r) / 2)
            if v == 0.0:
                d = EARTH_RADIUS * abs(lat2r - lat1r)
            else:
                u = sin((lat2r - lat1r) / 2)
                h = sqrt(u * u + cos1 * cos(lat2r) * v * v)
                d = 2.0 * EARTH_RADIUS * (asin(h) if h <= 1.0 else nan)
            if d > radius and not box:
                continue
            append((d, score, member, plon, plat))
            if limit and len(found) >= limit:
                return True
    return False


def plane(lon: float, lat: float, radius: float, grid: Grid) -> Optional[Plane]:
    """Bounds of the haversine check on grid arithmetic, for a radius search's points
    inside ``grid`` (its :func:`bands`), or None where they do not apply.

    With ``(dlat, dlon)`` from the centre, Redis's ``h = sin^2(dlat/2) + cos(lat)
    cos(plat) sin^2(dlon/2)`` and ``d = 2R asin(sqrt(h))``: ``sin x <= x`` bounds
    h from above with the largest cos(plat) of the band, ``sin^2 x >= x^2 (1 -
    x^2 / 3)`` from below with the smallest; ``d <= r`` is ``h <= sin^2(r / 2R)``.
    The radius is shrunk (inside) or grown (outside) by 1e-9 and a micrometre,
    so float rounding on either side never flips a point: those near the edge
    take the exact path. A point's offsets are its row and column minus the
    centre's (fractional) ones, the half cell added: the centre of its cell is
    where Redis measures it from."""
    lat_lo, lat_hi, lon_lo, lon_hi = grid
    reach_out = (radius * _SAFE + _SLACK) / (2.0 * EARTH_RADIUS)
    # (not within two cells of the grid's edges, where a point is clamped to the limits)
    if not (0.0 <= radius < 1e6 and 2 < lon_lo and lon_hi < _TOP - 2 and 2 < lat_lo
            and lat_hi < _TOP - 2
            and reach_out < math.pi / 2):
        return None
    rows, columns = _CELLS / _LAT_SCALE, _CELLS / 360.0
    lat_a = LAT_MIN + lat_lo / rows
    lat_b = LAT_MIN + (lat_hi + 1) / rows
    if not (-90.0 < lat_a and lat_b < 90.0):
        return None
    cos_a, cos_b = math.cos(lat_a * D_R), math.cos(lat_b * D_R)
    cos_max = 1.0 if lat_a <= 0.0 <= lat_b else max(cos_a, cos_b)
    cos_min = min(cos_a, cos_b)
    cos_c = math.cos(lat * D_R)
    # the largest half angles a point of the band can be at
    half_lat = max(abs(lat_a - lat), abs(lat_b - lat)) * D_R / 2
    half_lon = max(abs(LONG_MIN + lon_lo / columns - lon),
                   abs(LONG_MIN + (lon_hi + 1) / columns - lon)) * D_R / 2
    top = max(half_lat, half_lon)
    reach_in = (radius / _SAFE - _SLACK) / (2.0 * EARTH_RADIUS)
    h_in = math.sin(reach_in) ** 2 * (1.0 - 1e-12) if reach_in > 0.0 else -1.0
    h_out = math.sin(reach_out) ** 2 * (1.0 + 1e-12)
    ky = D_R / rows / 2
    kx = D_R / columns / 2
    return ((lat - LAT_MIN) * rows - 0.5, (lon - LONG_MIN) * columns - 0.5, ky,
            kx * math.sqrt(cos_c * cos_max * (1.0 + 1e-12)),
            kx * math.sqrt(max(cos_c * cos_min * (1.0 - 1e-12), 0.0)),
            h_in, h_out, (1.0 - top * top / 3.0) * (1.0 - 1e-12))


def square(plane: Plane) -> Optional[Masks]:
    """A square of grid rows and columns around the centre whose every point is
    inside :func:`plane`'s inner limit (corners included: a row or column of
    margin for the half cell and the centre's fraction), as :func:`masks`."""
    g_lat, g_lon, ky, kx_in, _, h_in, _, _ = plane
    if h_in <= 0.0:
        return None
    half = math.sqrt(h_in / 2)
    k_lat, k_lon = int(half / ky) - 2, int(half / kx_in) - 2
    if k_lat < 1 or k_lon < 1:
        return None
    row, column = int(g_lat), int(g_lon)
    return masks((row - k_lat, row + k_lat, column - k_lon, column + k_lon))


def masks(grid: Grid) -> Masks:
    """:func:`bands` as bounds on a score's latitude (even) and longitude (odd) bits."""
    return (spread(grid[0]), spread(grid[1]), spread(grid[2]) << 1, spread(grid[3]) << 1)


def bands(lon: float, lat: float, half_w: float, half_h: float, box: bool
           ) -> Tuple[int, int, int, int]:
    """Grid rows (latitude) and columns (longitude) of 52-bit geohashes, inclusive,
    outside which no point passes a search's checks: a distance is at least ``R *
    |dlat|``, a haversine one at least ``2R asin(sqrt(cos(lat) cos(plat))
    |sin(dlon/2)|)`` and a box's longitude distance ``2R asin(cos(plat)
    |sin(dlon/2)|)``, with the smaller cosine over the latitude band. Margins of a
    relative 1e-9, a micrometre and two grid steps keep border points in."""
    everything = (0, _TOP, 0, _TOP)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return everything
    band = (half_h * _SAFE + _SLACK) / EARTH_RADIUS / D_R
    if not band < 90.0:
        return everything
    rows = _CELLS / _LAT_SCALE
    lat_lo = max(int((lat - band - LAT_MIN) * rows) - 2, 0)
    lat_hi = min(int((lat + band - LAT_MIN) * rows) + 2, _TOP)
    if abs(lat) + band >= 90.0:
        return (lat_lo, lat_hi, 0, _TOP)  # the band reaches a pole
    cos_min = min(math.cos((lat - band) * D_R), math.cos((lat + band) * D_R))
    scale = cos_min if box else math.sqrt(math.cos(lat * D_R) * cos_min)
    reach = (half_w * _SAFE + _SLACK) / (2.0 * EARTH_RADIUS)
    if not (scale > 0.0 and reach < math.pi / 2 and math.sin(reach) < scale):
        return (lat_lo, lat_hi, 0, _TOP)
    cut = 2.0 * math.asin(math.sin(reach) / scale) / D_R * _SAFE + 1e-9
    if lon - cut <= LONG_MIN or lon + cut >= LONG_MAX:
        return (lat_lo, lat_hi, 0, _TOP)  # across the antimeridian: no bound
    columns = _CELLS / 360.0
    return (lat_lo, lat_hi, max(int((lon - cut - LONG_MIN) * columns) - 2, 0),
            min(int((lon + cut - LONG_MIN) * columns) + 2, _TOP))


def _cos(x: float) -> float:
    return math.cos(x) if math.isfinite(x) else math.nan


# -- the nearest COUNT: best first ------------------------------------------------------

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
            count: int) -> Found:
    """The matches a radius search sorted by distance would keep with COUNT ``count``
    (all those at the cut's distance included), in Redis's scan order (cell by cell,
    by score within a cell), so a stable sort by distance gives Redis's reply.

    Parts of cells are visited nearest first (a heap on their distance lower
    bounds), cut in four while they hold more than LEAF members, and the search
    stops once ``count`` matches are found that are all closer than what is left:
    a 20 km search over dense data measures a few hundred points, not every
    point of nine cells."""
    count_below = z.count_below
    cos_c = math.cos(lat * D_R)
    heap: List[Tuple[float, int, Cell, int, int]] = []
    for ci, cell in enumerate(cells):
        low, high = score_range(cell)
        lo, hi = count_below(float(low), False), count_below(float(high), False)
        if lo < hi:
            heap.append((lower_bound(cell, lon, lat, cos_c), ci, cell, lo, hi))
    heapq.heapify(heap)
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
            scan((z.iter_range(lo, hi),), lon, lat, False, 0.0, 0.0, radius, part, 0, grid)
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
