"""Redis's geohash maths: 52-bit interleaved scores, cell decoding, distances, and the
nine-cell search area of GEORADIUS/GEOSEARCH.

Every step follows Redis 7.0's geohash.c and geohash_helper.c in the same float
operations and order, so scores, distances and the cells searched (hence which
members a search finds, and in which order) are the same as redis-server's.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Tuple

STEP_MAX = 26                      # 26 bits of latitude + 26 of longitude = 52
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
LONG_MIN, LONG_MAX = -180.0, 180.0
EARTH_RADIUS = 6372797.560856      # meters, Redis's EARTH_RADIUS_IN_METERS
MERCATOR_MAX = 20037726.37
D_R = math.pi / 180.0
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
_B32 = b"0123456789bcdefghjkmnpqrstuvwxyz"
_MASK64 = (1 << 64) - 1
_EVEN = 0x5555555555555555
_LAT_SCALE = LAT_MAX - LAT_MIN
_ODD = 0xAAAAAAAAAAAAAAAA

#: (bits, step) of a cell; (0, 0) is Redis's "zeroed" (excluded) neighbour.
Cell = Tuple[int, int]
#: A cell's bounds: (lon_min, lon_max, lat_min, lat_max).
Area = Tuple[float, float, float, float]


def _spread(v: int) -> int:
    """The bits of a 32-bit value moved to the even positions of a 64-bit one."""
    v &= 0xFFFFFFFF
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return (v | (v << 1)) & _EVEN


def _squash(v: int) -> int:
    """The inverse of :func:`_spread`: the even bits of ``v`` packed into 32."""
    v &= _EVEN
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    return (v | (v >> 16)) & 0xFFFFFFFF


_SPREAD8 = [_spread(v) for v in range(256)]
#: 14-bit values spread (built from the bytes'): two lookups spread a grid row or column.
_SPREAD14 = [_SPREAD8[v & 0xFF] | _SPREAD8[v >> 8] << 16 for v in range(1 << 14)]


def spread(v: int) -> int:
    """:func:`_spread` of a value below ``2**32`` by table (rows and columns, up to
    ``2**26`` included, in two lookups)."""
    if v < 0x8000000:
        t = _SPREAD14
        return t[v & 0x1FFF] | t[v >> 13] << 26
    t = _SPREAD8
    return t[v & 0xFF] | t[(v >> 8) & 0xFF] << 16 | t[(v >> 16) & 0xFF] << 32 | t[v >> 24] << 48


def interleave(lat_bits: int, lon_bits: int) -> int:
    """Latitude bits on even positions, longitude on odd (Redis's interleave64)."""
    return _spread(lat_bits) | (_spread(lon_bits) << 1)


def deinterleave(bits: int) -> Tuple[int, int]:
    """(latitude bits, longitude bits) of an interleaved hash."""
    return _squash(bits), _squash(bits >> 1)


def encode(lon: float, lat: float, step: int = STEP_MAX,
           lat_min: float = LAT_MIN, lat_max: float = LAT_MAX) -> Optional[Cell]:
    """The cell at ``step`` holding a point, or None outside Redis's limits."""
    if lon > LONG_MAX or lon < LONG_MIN or lat > LAT_MAX or lat < LAT_MIN:
        return None
    if lat < lat_min or lat > lat_max:
        return None
    lat_offset = (lat - lat_min) / (lat_max - lat_min) * (1 << step)
    lon_offset = (lon - LONG_MIN) / (LONG_MAX - LONG_MIN) * (1 << step)
    return interleave(int(lat_offset), int(lon_offset)), step


def decode(cell: Cell) -> Area:
    """A cell's bounds, computed as geohashDecode does."""
    bits, step = cell
    ilat, ilon = deinterleave(bits)
    lat_scale = LAT_MAX - LAT_MIN
    lon_scale = LONG_MAX - LONG_MIN
    size = float(1 << step)
    return (LONG_MIN + (ilon * 1.0 / size) * lon_scale,
            LONG_MIN + (((ilon + 1) & 0xFFFFFFFF) * 1.0 / size) * lon_scale,
            LAT_MIN + (ilat * 1.0 / size) * lat_scale,
            LAT_MIN + (((ilat + 1) & 0xFFFFFFFF) * 1.0 / size) * lat_scale)


#: 16 interleaved bits -> their 8 latitude bits | 8 longitude bits << 32: four lookups
#: deinterleave a score (searches decode every candidate, so this is their hot spot).
_UNZIP8 = [_squash(v) | (_squash(v >> 1) << 32) for v in range(1 << 8)]
_UNZIP16 = [_UNZIP8[v & 0xFF] | _UNZIP8[v >> 8] << 4 for v in range(1 << 16)]
_CELLS = float(1 << STEP_MAX)


def score_to_lonlat(score: float) -> Tuple[float, float]:
    """The centre of the 52-bit cell a sorted-set score names, clamped to the limits
    (:func:`decode` of the cell, then its centre, with the same float operations)."""
    bits = int(score) & _MASK64 if score - score == 0.0 else 0
    return cell_centre(*unzip(bits))


def unzip(bits: int) -> Tuple[int, int]:
    """The column (longitude bits) and row (latitude bits) of a 64-bit interleaved
    hash (geoindex's cell loop and geoscan's candidate loop repeat it inline)."""
    t = _UNZIP16
    both = (t[bits & 0xFFFF] | t[(bits >> 16) & 0xFFFF] << 8 | t[(bits >> 32) & 0xFFFF] << 16
            | t[bits >> 48] << 24)
    return both >> 32, both & 0xFFFFFFFF


def cell_centre(ilon: int, ilat: int) -> Tuple[float, float]:
    """The clamped centre of the 52-bit cell at column ``ilon``, row ``ilat``, with
    Redis's float operations (geoscan's per-candidate loop repeats them inline)."""
    lon = ((LONG_MIN + (ilon * 1.0 / _CELLS) * 360.0)
           + (LONG_MIN + (((ilon + 1) & 0xFFFFFFFF) * 1.0 / _CELLS) * 360.0)) / 2
    lat = ((LAT_MIN + (ilat * 1.0 / _CELLS) * _LAT_SCALE)
           + (LAT_MIN + (((ilat + 1) & 0xFFFFFFFF) * 1.0 / _CELLS) * _LAT_SCALE)) / 2
    lon = LONG_MIN if lon < LONG_MIN else LONG_MAX if lon > LONG_MAX else lon
    lat = LAT_MIN if lat < LAT_MIN else LAT_MAX if lat > LAT_MAX else lat
    return lon, lat


def lonlat_to_score(lon: float, lat: float) -> int:
    """The 52-bit score GEOADD stores for a point (already checked to be valid):
    :func:`encode` at the full step, with the same float operations."""
    return (spread(int((lat - LAT_MIN) / _LAT_SCALE * _CELLS))
            | spread(int((lon - LONG_MIN) / (LONG_MAX - LONG_MIN) * _CELLS)) << 1)


def geohash_string(score: float) -> bytes:
    """GEOHASH's 11 characters: the decoded point re-encoded on -90..90 latitudes."""
    lon, lat = score_to_lonlat(score)
    cell = encode(lon, lat, STEP_MAX, -90.0, 90.0)
    bits = cell[0] if cell else 0
    chars = bytearray()
    for i in range(10):
        chars.append(_B32[(bits >> (52 - (i + 1) * 5)) & 0x1F])
    chars.append(_B32[0])  # 52 bits give ten characters; Redis pads the 11th with 0
    return bytes(chars)


def _cos(x: float) -> float:
    """C's cos: NaN (not an exception) for an infinite argument (an infinite radius)."""
    return math.cos(x) if math.isfinite(x) else math.nan


def _asin(x: float) -> float:
    """C's asin: NaN outside [-1, 1] (rounding can push the haversine term past 1)."""
    return math.asin(x) if -1.0 <= x <= 1.0 else math.nan


def lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS * abs(lat2 * D_R - lat1 * D_R)


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Haversine distance in meters, with Redis's shortcut for equal longitudes."""
    v = math.sin((lon2 * D_R - lon1 * D_R) / 2)
    if v == 0.0:
        return lat_distance(lat1, lat2)
    lat1r = lat1 * D_R
    lat2r = lat2 * D_R
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + _cos(lat1r) * _cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS * _asin(math.sqrt(a))


def radius_checker(lon: float, lat: float, meters: float) -> Callable[[float, float], Optional[float]]:
    """``check(plon, plat)``: :func:`distance` from (lon, lat) if within ``meters``, else
    None; the centre's terms computed once (the same float operations, so the same bits)."""
    lon1r, lat1r = lon * D_R, lat * D_R
    cos1 = _cos(lat1r)
    sin, cos, sqrt = math.sin, math.cos, math.sqrt

    def check(plon: float, plat: float) -> Optional[float]:
        v = sin((plon * D_R - lon1r) / 2)
        lat2r = plat * D_R
        if v == 0.0:
            d = EARTH_RADIUS * abs(lat2r - lat1r)
        else:
            u = sin((lat2r - lat1r) / 2)
            d = 2.0 * EARTH_RADIUS * _asin(sqrt(u * u + cos1 * cos(lat2r) * v * v))
        return None if d > meters else d
    return check


def in_box(width: float, height: float, lon: float, lat: float, plon: float, plat: float
           ) -> Optional[float]:
    """The distance to a point inside a width x height meter box centred on (lon, lat),
    else None: latitude first (cheaper), then longitude at the point's latitude."""
    if lat_distance(plat, lat) > height / 2:
        return None
    if distance(plon, plat, lon, plat) > width / 2:
        return None
    return distance(lon, lat, plon, plat)


_LOG2_MERCATOR = math.log2(MERCATOR_MAX)


#: :func:`estimate_steps` by (range, 0 / 1 / 2 for a latitude within 66 / 80 / beyond):
#: searches repeat their radii. Bounded: cleared when full.
_STEPS: Dict[Tuple[float, int], int] = {}


def estimate_steps(range_meters: float, lat: float) -> int:
    """Redis's geohashEstimateStepsByRadius: the coarsest step whose cells cover a range
    (memoised: it depends on the latitude only past 66 and 80 degrees)."""
    key = (range_meters, 0 if -66 <= lat <= 66 else 1 if -80 <= lat <= 80 else 2)
    steps = _STEPS.get(key)
    if steps is None:
        if len(_STEPS) >= 1024:
            _STEPS.clear()
        steps = _STEPS[key] = _estimate_steps(range_meters, lat)
    return steps


def _estimate_steps(range_meters: float, lat: float) -> int:
    if range_meters == 0:
        return STEP_MAX
    step = 1
    if 0 < range_meters < MERCATOR_MAX:
        # Redis doubles until the range reaches MERCATOR_MAX; doublings are exact,
        # so start from a count just below the answer (ldexp) and settle it.
        more = int(_LOG2_MERCATOR - math.log2(range_meters)) - 1
        step += more if more > 0 else 0
        range_meters = math.ldexp(range_meters, step - 1)
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return 1 if step < 1 else STEP_MAX if step > STEP_MAX else step


def bounding_box(lon: float, lat: float, width: float, height: float
                 ) -> Tuple[float, float, float, float]:
    """(min lon, min lat, max lon, max lat) around a point, for half-sizes in meters."""
    lat_delta = (height / EARTH_RADIUS) / D_R
    # (_cos inlined: ``x - x == 0.0`` is isfinite, without two calls a search)
    a, b = (lat + lat_delta) * D_R, (lat - lat_delta) * D_R
    top = (width / EARTH_RADIUS / (math.cos(a) if a - a == 0.0 else math.nan)) / D_R
    bottom = (width / EARTH_RADIUS / (math.cos(b) if b - b == 0.0 else math.nan)) / D_R
    delta = bottom if lat < 0 else top
    return lon - delta, lat - lat_delta, lon + delta, lat + lat_delta


def search_cells(lon: float, lat: float, half_width: float, half_height: float,
                 radius: float) -> List[Cell]:
    """The cells a search covers, in Redis's order: the centre cell and its north,
    south, east, west, north-east, north-west, south-east and south-west
    neighbours, the ones outside the bounding box left out (as zeroed cells)."""
    steps, ilat, north, south, ilon, east, west, zn, zs, ze, zw = search_grid(
        lon, lat, half_width, half_height, radius)
    sp = spread
    c_lat, n_lat, s_lat = sp(ilat), sp(north), sp(south)
    c_lon, e_lon, w_lon = sp(ilon) << 1, sp(east) << 1, sp(west) << 1
    zero = (0, 0)
    return [(c_lat | c_lon, steps),
            zero if zn else (n_lat | c_lon, steps),
            zero if zs else (s_lat | c_lon, steps),
            zero if ze else (c_lat | e_lon, steps),
            zero if zw else (c_lat | w_lon, steps),
            zero if zn or ze else (n_lat | e_lon, steps),
            zero if zn or zw else (n_lat | w_lon, steps),
            zero if zs or ze else (s_lat | e_lon, steps),
            zero if zs or zw else (s_lat | w_lon, steps)]


#: :func:`search_grid`'s answer: the step, the centre cell's row, the rows north and
#: south, its column, the columns east and west, then whether the north, south, east
#: and west neighbours are zeroed (outside the bounding box).
Grid9 = Tuple[int, int, int, int, int, int, int, bool, bool, bool, bool]


def search_grid(lon: float, lat: float, half_width: float, half_height: float,
                radius: float) -> Grid9:
    """:func:`search_cells` on grid rows and columns (:data:`Grid9`).

    Redis's geohash_move_x/y add or take one modulo ``2**step`` in the
    de-interleaved coordinates, and the cell bounds are geohashDecode's float
    operations, so the cells are the same."""
    min_lon, min_lat, max_lon, max_lat = bounding_box(lon, lat, half_width, half_height)
    steps = estimate_steps(radius, lat)
    if lon > LONG_MAX or lon < LONG_MIN or lat > LAT_MAX or lat < LAT_MIN:
        raise ValueError("a search centre outside the geohash limits")
    lat_scale = LAT_MAX - LAT_MIN
    for _ in range(2):
        size = 1 << steps
        mask = size - 1
        fsize = float(size)
        ilat = int((lat - LAT_MIN) / lat_scale * size)
        ilon = int((lon - LONG_MIN) / (LONG_MAX - LONG_MIN) * size)
        north, south = (ilat + 1) & mask, (ilat - 1) & mask
        east, west = (ilon + 1) & mask, (ilon - 1) & mask
        # Redis goes one step coarser (once) when a neighbour does not reach the box
        if not (steps > 1 and _ == 0 and (
                LAT_MIN + (((north + 1) & 0xFFFFFFFF) * 1.0 / fsize) * lat_scale < max_lat
                or LAT_MIN + (south * 1.0 / fsize) * lat_scale > min_lat
                or LONG_MIN + (((east + 1) & 0xFFFFFFFF) * 1.0 / fsize) * 360.0 < max_lon
                or LONG_MIN + (west * 1.0 / fsize) * 360.0 > min_lon)):
            break
        steps -= 1
    zn = zs = ze = zw = False
    if steps >= 2:
        zs = LAT_MIN + (ilat * 1.0 / fsize) * lat_scale < min_lat
        zn = LAT_MIN + (((ilat + 1) & 0xFFFFFFFF) * 1.0 / fsize) * lat_scale > max_lat
        zw = LONG_MIN + (ilon * 1.0 / fsize) * 360.0 < min_lon
        ze = LONG_MIN + (((ilon + 1) & 0xFFFFFFFF) * 1.0 / fsize) * 360.0 > max_lon
    return steps, ilat, north, south, ilon, east, west, zn, zs, ze, zw


def score_range(cell: Cell) -> Tuple[int, int]:
    """The half-open range [min, max) of 52-bit scores inside a cell."""
    bits, step = cell
    shift = 52 - step * 2
    return bits << shift, (bits + 1) << shift
