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

import math
from typing import Any, Dict, Iterable, List, Optional, Tuple

from .geohash import (_CELLS, _EVEN, _LAT_SCALE, _ODD, _SPREAD14, _UNZIP16, D_R,
                      EARTH_RADIUS, LAT_MAX, LAT_MIN, LONG_MAX, LONG_MIN, STEP_MAX, Cell,
                      decode, score_range, spread)

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


#: A cell's scan offsets: (base score, first row, first column, the latitude and
#: longitude bits of an offset from the base, then :data:`Masks` of the band and of
#: the inner square, both relative to the cell's corner). Offsets inside a cell are
#: small ints where a whole score is not (CPython: a single digit, fast paths).
Offsets = Tuple[float, int, int, int, int, int, int, int, int, int, int, int, int]
#: 16 interleaved bits -> their 8 latitude (even) bits, and their 8 longitude bits: a
#: score's offset inside its cell de-interleaved on small ints.
_LAT8 = [v & 0xFF for v in _UNZIP16]
_LON8 = [v >> 32 for v in _UNZIP16]
_NO_SQUARE = (1, 0, 1, 0)
#: :func:`table` levels: a cell's 16 x 16 sub-cells.
TABLE_STEPS = 4
#: (classes, shift): every offset is in class 2 (check it).
_NO_TABLE = (b"\x02", 64)
#: Whole floats up to this are exact (a Plan's cut score ranges must be).
_EXACT = float(1 << 53)


def table(cell: Cell, grid: Grid, plane_: Optional[Plane]) -> Tuple[bytes, int]:
    """Classes of a cell's sub-cells (indexed by an offset's top interleaved bits: the
    offset shifted right by the second value): 0 when every point of the sub-cell
    fails :func:`scan_cells`'s band or plane check, 1 when every point passes the
    plane's inner check, else 2. The checks' float operations are monotonic in a
    row's or column's distance from the centre, so the nearest and farthest rows
    and columns of a sub-cell decide for all its points, as the per-point checks
    would."""
    bits, step = cell
    half = STEP_MAX - step
    levels = min(TABLE_STEPS, half)
    size = 1 << (half - levels)
    c_lat, c_lon = _rowcol(bits)
    row0, col0 = c_lat << half, c_lon << half

    def spans(first: int, lo: int, hi: int, centre: float, k: float
              ) -> List[Tuple[bool, float, float]]:
        """(in the band, nearest and farthest offsets scaled by k) of each sub-row
        (sub-column), as the scan computes them."""
        out = []
        for i in range(1 << levels):
            a = first + i * size
            b = a + size - 1
            near = 0.0 if a <= centre <= b else min(abs(a - centre), abs(b - centre))
            out.append((a <= hi and b >= lo, near * k, max(abs(a - centre), abs(b - centre)) * k))
        return out

    if plane_ is None:
        rows = spans(row0, grid[0], grid[1], 0.0, 0.0)
        cols = spans(col0, grid[2], grid[3], 0.0, 0.0)
        classes = {(i, j): 2 if rows[i][0] and cols[j][0] else 0
                   for i in range(1 << levels) for j in range(1 << levels)}
    else:
        g_lat, g_lon, ky, kx_in, kx_out, h_in, h_out, shrink = plane_
        rows = spans(row0, grid[0], grid[1], g_lat, ky)
        cols_in = spans(col0, grid[2], grid[3], g_lon, kx_in)
        cols_out = spans(col0, grid[2], grid[3], g_lon, kx_out)
        classes = {}
        for i, (r_in, dy_near, dy_far) in enumerate(rows):
            for j, (c_in, _, w_far) in enumerate(cols_in):
                w_near = cols_out[j][1]
                if not (r_in and c_in) or (dy_near * dy_near + w_near * w_near) * shrink > h_out:
                    classes[i, j] = 0
                elif dy_far * dy_far + w_far * w_far <= h_in:
                    classes[i, j] = 1
                else:
                    classes[i, j] = 2
    out = bytearray(1 << (2 * levels))
    for (i, j), k in classes.items():
        out[spread(i) | spread(j) << 1] = k
    return bytes(out), 2 * (half - levels)


def _rowcol(bits: int) -> Tuple[int, int]:
    """(row, column) of a cell's interleaved bits (:func:`geohash.deinterleave`, by table)."""
    t = _UNZIP16
    both = (t[bits & 0xFFFF] | t[(bits >> 16) & 0xFFFF] << 8 | t[(bits >> 32) & 0xFFFF] << 16
            | t[bits >> 48] << 24)
    return both & 0xFFFFFFFF, both >> 32


def offsets(cell: Cell, band: Masks, inner: Optional[Grid] = None) -> Optional[Offsets]:
    """A cell's :data:`Offsets` for :func:`scan_cells`, from the search's grid rows and
    columns (``band``, as :func:`bands`) and inner square (``inner``, as
    :func:`square_grid`), or None when no point of the cell is in the band."""
    bits, step = cell
    half = STEP_MAX - step
    size = 1 << half
    c_lat, c_lon = _rowcol(bits)
    row0, col0 = c_lat << half, c_lon << half
    top = size - 1
    # (conditional expressions: cheaper than max() and min() calls in CPython)
    lat_lo, lat_hi, lon_lo, lon_hi = band[0] - row0, band[1] - row0, band[2] - col0, band[3] - col0
    lat_lo, lon_lo = lat_lo if lat_lo > 0 else 0, lon_lo if lon_lo > 0 else 0
    lat_hi, lon_hi = lat_hi if lat_hi < top else top, lon_hi if lon_hi < top else top
    if lat_lo > lat_hi or lon_lo > lon_hi:
        return None
    # (offsets below 2**14, most cells': one table lookup spreads them)
    sp = _SPREAD14.__getitem__ if size <= len(_SPREAD14) else spread
    sq = _NO_SQUARE
    if inner is not None:
        s_lat_lo, s_lat_hi = inner[0] - row0, inner[1] - row0
        s_lon_lo, s_lon_hi = inner[2] - col0, inner[3] - col0
        s_lat_lo, s_lon_lo = s_lat_lo if s_lat_lo > 0 else 0, s_lon_lo if s_lon_lo > 0 else 0
        s_lat_hi = s_lat_hi if s_lat_hi < top else top
        s_lon_hi = s_lon_hi if s_lon_hi < top else top
        if s_lat_lo <= s_lat_hi and s_lon_lo <= s_lon_hi:
            sq = (sp(s_lat_lo), sp(s_lat_hi), sp(s_lon_lo) << 1, sp(s_lon_hi) << 1)
    width = (1 << (2 * half)) - 1
    return (float(bits << (2 * half)), row0, col0, _EVEN & width, _ODD & width,
            sp(lat_lo), sp(lat_hi), sp(lon_lo) << 1, sp(lon_hi) << 1, *sq)


def scan(chunks: Iterable[Iterable[Tuple[float, bytes]]], lon: float, lat: float,
         box: bool, width: float, height: float, radius: float, found: Found, limit: int,
         masks: Masks, plane: Optional[Plane] = None, accept: bool = False,
         square: Optional[Masks] = None) -> bool:
    """:func:`scan_cells` of ``chunks`` as one group with offsets from score 0 (``masks``
    and ``square`` on whole scores); points taken without measuring (``accept``)
    are appended as ``(0.0, score, member, 0.0, 0.0)``."""
    group = ((0.0, 0, 0, _EVEN, _ODD, *masks, *(square if accept and square else _NO_SQUARE)),
             _NO_TABLE, chunks)
    return scan_cells((group,), lon, lat, box, width, height, radius, found, limit, plane,
                      accept, False)


def scan_cells(groups: Iterable[Tuple[Offsets, Tuple[bytes, int],
                                    Iterable[Iterable[Tuple[float, bytes]]]]],
               lon: float, lat: float, box: bool, width: float, height: float,
               radius: float, found: List[Any], limit: int, plane: Optional[Plane] = None,
               accept: bool = False, entries: bool = False) -> bool:
    """Append (distance, score, member, lon, lat) of the (score, member) elements of
    each group's chunks inside the search; True once ``limit`` (if nonzero) matches
    are found. A group is a cell's :data:`Offsets` and chunks of elements scored in
    that cell (finite, in [base, base + 2**52)). ``plane`` (a radius search's
    :func:`plane`): points surely outside are rejected on grid arithmetic, without
    trigonometry; with ``accept`` too (the reply needs no distance or
    coordinates), points surely inside are taken unmeasured, and so are those in
    the offsets' square (checked on the interleaved bits) before decoding.
    ``entries``: the elements themselves are appended (the caller reads only
    scores and members), not new tuples.

    A score is read as its offset from the cell's base: small ints (fast in
    CPython) where a cell is not huge. The decoding is
    :func:`geohash.score_to_lonlat` and the checks are ``radius_checker`` /
    ``in_box``, inlined with the same float operations."""
    lat8, lon8, t = _LAT8, _LON8, _UNZIP16
    cells, lat_scale = _CELLS, _LAT_SCALE
    sin, cos, sqrt, asin = math.sin, math.cos, math.sqrt, math.asin
    nan = math.nan
    lon1r, lat1r = lon * D_R, lat * D_R
    cos1 = _cos(lat1r)
    half_w, half_h = width / 2, height / 2
    append = found.append
    if plane is not None:
        g_lat, g_lon, ky, kx_in, kx_out, h_in, h_out, shrink = plane
        if not accept:
            h_in = -1.0
    for (base, row0, col0, even, odd, elo, ehi, olo, ohi, s_elo, s_ehi, s_olo, s_ohi), \
            (classes, shift), chunks in groups:
        if not accept:
            s_elo, s_ehi = 1, 0
        # The band of grid rows and columns outside which no point can match (with
        # margins), as interleaved bits: spreading bits keeps their order, so a point
        # there is skipped on two ANDs and compares, before any decoding.
        for chunk in chunks:
            for entry in chunk:
                score = entry[0]
                r = int(score - base)  # exact: both are whole below 2**53
                k = classes[r >> shift]
                if k != 2:
                    if k == 0:
                        continue
                    if accept:
                        append(entry if entries else (0.0, score, entry[1], 0.0, 0.0))
                        if limit and len(found) >= limit:
                            return True
                        continue
                e = r & even
                if e < elo or e > ehi:
                    continue
                o = r & odd
                if o < olo or o > ohi:
                    continue
                if s_elo <= e <= s_ehi and s_olo <= o <= s_ohi:
                    append(entry if entries else (0.0, score, entry[1], 0.0, 0.0))
                    if limit and len(found) >= limit:
                        return True
                    continue
                low, high = r & 0xFFFF, r >> 16
                if high < 0x10000:
                    ilat = row0 + (lat8[low] | lat8[high] << 8)
                    ilon = col0 + (lon8[low] | lon8[high] << 8)
                else:  # a huge cell, or whole scores: both halves at once
                    both = (t[low] | t[high & 0xFFFF] << 8 | t[(high >> 16) & 0xFFFF] << 16
                            | t[high >> 32] << 24)
                    ilat, ilon = row0 + (both & 0xFFFFFFFF), col0 + (both >> 32)
                if plane is not None:
                    dy = (ilat - g_lat) * ky
                    dy *= dy
                    dx = ilon - g_lon
                    w = dx * kx_in
                    if dy + w * w <= h_in:
                        append(entry if entries else (0.0, score, entry[1], 0.0, 0.0))
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
                append(entry if entries else (d, score, entry[1], plon, plat))
                if limit and len(found) >= limit:
                    return True
    return False


#: A plan remembers at most this many points' outcomes (:func:`scan_known`).
MEMO_MAX = 256


def scan_known(groups: Iterable[Tuple[Offsets, Tuple[bytes, int],
                                     Iterable[Iterable[Tuple[float, bytes]]]]],
               plan: "Plan", found: List[Any]) -> None:
    """:func:`scan_cells` of a plain search (``accept`` and ``entries``, no limit) on a
    plan's sub-cell tables: a point in a sub-cell wholly inside is taken, one in a
    sub-cell wholly outside skipped, on one lookup; one in a sub-cell across the
    edge is checked by :func:`scan_cells` once, and its outcome remembered by score
    in the plan (it depends on nothing else): a repeated search pays a dict lookup."""
    append = found.append
    memo = plan.memo
    known = memo.get
    lon, lat, box, width, height = plan.lon, plan.lat, plan.box, plan.width, plan.height
    radius, plane_ = plan.radius, plan.plane
    for offs, (classes, shift), chunks in groups:
        base = offs[0]
        for chunk in chunks:
            for entry in chunk:
                score = entry[0]
                k = classes[int(score - base) >> shift]
                if k == 1:
                    append(entry)
                elif k:
                    inside = known(score)
                    if inside is None:
                        n = len(found)
                        scan_cells(((offs, _NO_TABLE, ((entry,),)),), lon, lat, box, width,
                                   height, radius, found, 0, plane_, True, True)
                        if len(memo) < MEMO_MAX:
                            memo[score] = len(found) > n
                    elif inside:
                        append(entry)


#: :func:`plane`'s inner and outer limits by radius (they depend on nothing else;
#: searches repeat their radii). Bounded: cleared when full.
_LIMITS: Dict[float, Tuple[float, float]] = {}


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
    # (max(a, b) as ``b if b > a else a``, min likewise: the same values, NaN too, and
    # cheaper than a call of the builtins in CPython 3.11: a search's geometry is fresh
    # for each new centre)
    cos_max = 1.0 if lat_a <= 0.0 <= lat_b else cos_b if cos_b > cos_a else cos_a
    cos_min = cos_b if cos_b < cos_a else cos_a
    cos_c = math.cos(lat * D_R)
    # the largest half angles a point of the band can be at
    a, b = abs(lat_a - lat), abs(lat_b - lat)
    half_lat = (b if b > a else a) * D_R / 2
    a, b = abs(LONG_MIN + lon_lo / columns - lon), abs(LONG_MIN + (lon_hi + 1) / columns - lon)
    half_lon = (b if b > a else a) * D_R / 2
    top = half_lon if half_lon > half_lat else half_lat
    limits = _LIMITS.get(radius)
    if limits is None:
        if len(_LIMITS) >= 1024:
            _LIMITS.clear()
        reach_in = (radius / _SAFE - _SLACK) / (2.0 * EARTH_RADIUS)
        limits = _LIMITS[radius] = (
            math.sin(reach_in) ** 2 * (1.0 - 1e-12) if reach_in > 0.0 else -1.0,
            math.sin(reach_out) ** 2 * (1.0 + 1e-12))
    h_in, h_out = limits
    ky = D_R / rows / 2
    kx = D_R / columns / 2
    low = cos_c * cos_min * (1.0 - 1e-12)  # (max(low, 0.0): low is never NaN here)
    return ((lat - LAT_MIN) * rows - 0.5, (lon - LONG_MIN) * columns - 0.5, ky,
            kx * math.sqrt(cos_c * cos_max * (1.0 + 1e-12)),
            kx * math.sqrt(low if low > 0.0 else 0.0),
            h_in, h_out, (1.0 - top * top / 3.0) * (1.0 - 1e-12))


def square(plane: Plane) -> Optional[Masks]:
    """:func:`square_grid` as :func:`masks`."""
    grid = square_grid(plane)
    return None if grid is None else masks(grid)


def square_grid(plane: Plane) -> Optional[Grid]:
    """A square of grid rows and columns around the centre whose every point is
    inside :func:`plane`'s inner limit (corners included: a row or column of
    margin for the half cell and the centre's fraction)."""
    g_lat, g_lon, ky, kx_in, _, h_in, _, _ = plane
    if h_in <= 0.0:
        return None
    half = math.sqrt(h_in / 2)
    k_lat, k_lon = int(half / ky) - 2, int(half / kx_in) - 2
    if k_lat < 1 or k_lon < 1:
        return None
    row, column = int(g_lat), int(g_lon)
    return (row - k_lat, row + k_lat, column - k_lon, column + k_lon)


class Plan:
    """A search's geometry, worked out once for its centre and extent (meters): the
    cells in Redis's order with their :data:`Offsets` (None: no point of the cell
    can match), the :func:`plane` of a radius search, and the sub-cell ranges of
    crowded cells (:func:`ranges`, when first needed). Depends on no data, so a
    repeated search reuses it."""

    __slots__ = ("lon", "lat", "box", "width", "height", "radius", "half_w", "half_h",
                 "plane", "cells", "_ranges", "grid", "uses", "span", "memo")

    def __init__(self, cells: List[Cell], lon: float, lat: float, box: bool, width: float,
                 height: float, radius: float) -> None:
        self.lon, self.lat, self.box = lon, lat, box
        self.width, self.height, self.radius = width, height, radius
        half_w, half_h = (width / 2, height / 2) if box else (radius, radius)
        self.half_w, self.half_h = half_w, half_h
        self.grid = grid = bands(lon, lat, half_w, half_h, box)
        self.uses = 0
        self.memo: dict = {}  # score -> inside, for scan_known
        self.plane = None if box else plane(lon, lat, radius, grid)
        inner = None if self.plane is None else square_grid(self.plane)
        self.cells = []
        for cell in cells:
            low, high = score_range(cell)
            offs = offsets(cell, grid, inner)
            if offs is not None and high <= _EXACT:
                # the score range cut to the band's corners: spreading keeps order, so
                # no point of the band is below its lowest row and column, or above
                # its highest
                low, high = low + (offs[5] | offs[7]), low + (offs[6] | offs[8]) + 1
            self.cells.append((cell, float(low), float(high), offs, _NO_TABLE))
        self.span = _span(self.cells)
        self._ranges: dict = {}

    def use(self) -> None:
        """Count a search; the second one builds the cells' sub-cell tables (paid once
        for a search that repeats, never for one that does not)."""
        self.uses += 1
        if self.uses == 2:
            cells = []
            for cell, low, high, offs, _ in self.cells:
                classes = _NO_TABLE
                if offs is not None:
                    classes = table(cell, self.grid, self.plane)
                    # the score range cut to the sub-cells from the first to the last
                    # that can hold a match (none: the cell is skipped)
                    kinds, shift = classes
                    first, last = len(kinds) - len(kinds.lstrip(b"\0")), len(kinds.rstrip(b"\0"))
                    if first == len(kinds):
                        offs = None
                    elif high <= _EXACT:  # (sums of whole floats exact)
                        base = offs[0]
                        low = max(low, base + (first << shift))
                        high = min(high, base + (last << shift))
                cells.append((cell, low, high, offs, classes))
            self.cells = cells
            self.span = _span(cells)

    def ranges(self, cell: Cell) -> List[Tuple[float, float]]:
        """:func:`ranges` of a cell, as float scores."""
        out = self._ranges.get(cell)
        if out is None:
            out = self._ranges[cell] = [
                (float(lo), float(hi)) for lo, hi in ranges(
                    cell, self.lon, self.lat, self.box, self.half_w, self.half_h)]
        return out


def _span(cells: List[Any]) -> Optional[Tuple[float, float]]:
    """(lowest, highest) score of the :class:`Plan` cells that can hold a match, or None."""
    active = [(low, high) for _, low, high, offs, _ in cells if offs is not None]
    if not active:
        return None
    low, high = active[0]
    for a, b in active:  # (not min() and max(): calls of those are slow in CPython 3.11)
        low = a if a < low else low
        high = b if b > high else high
    return low, high


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
    if not (lon - lon == 0.0 and lat - lat == 0.0):  # (isfinite, without two calls)
        return everything
    band = (half_h * _SAFE + _SLACK) / EARTH_RADIUS / D_R
    if not band < 90.0:
        return everything
    rows = _CELLS / _LAT_SCALE
    lat_lo = int((lat - band - LAT_MIN) * rows) - 2
    lat_hi = int((lat + band - LAT_MIN) * rows) + 2
    lat_lo, lat_hi = lat_lo if lat_lo > 0 else 0, lat_hi if lat_hi < _TOP else _TOP
    if abs(lat) + band >= 90.0:
        return (lat_lo, lat_hi, 0, _TOP)  # the band reaches a pole
    cos_a, cos_b = math.cos((lat - band) * D_R), math.cos((lat + band) * D_R)
    cos_min = cos_b if cos_b < cos_a else cos_a
    scale = cos_min if box else math.sqrt(math.cos(lat * D_R) * cos_min)
    reach = (half_w * _SAFE + _SLACK) / (2.0 * EARTH_RADIUS)
    if not (scale > 0.0 and reach < math.pi / 2 and math.sin(reach) < scale):
        return (lat_lo, lat_hi, 0, _TOP)
    cut = 2.0 * math.asin(math.sin(reach) / scale) / D_R * _SAFE + 1e-9
    if lon - cut <= LONG_MIN or lon + cut >= LONG_MAX:
        return (lat_lo, lat_hi, 0, _TOP)  # across the antimeridian: no bound
    columns = _CELLS / 360.0
    lon_lo = int((lon - cut - LONG_MIN) * columns) - 2
    lon_hi = int((lon + cut - LONG_MIN) * columns) + 2
    return (lat_lo, lat_hi, lon_lo if lon_lo > 0 else 0, lon_hi if lon_hi < _TOP else _TOP)


def _cos(x: float) -> float:
    return math.cos(x) if math.isfinite(x) else math.nan
