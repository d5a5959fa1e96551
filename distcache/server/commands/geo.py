"""Geo commands: points stored in a sorted set under Redis's 52-bit geohash scores.

GEOADD turns each longitude/latitude into a score and runs ZADD's code; searches
(GEORADIUS*, GEOSEARCH*) walk the nine cells Redis's geohash_helper picks, in its
order, so replies (ordering of unsorted ones and ANY cut-offs too) are Redis's.
The maths is in :mod:`distcache.server.types.geohash`.
"""
from __future__ import annotations

from bisect import bisect_left
from operator import itemgetter
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ...protocol import NULL_ARRAY, Raw
from ..errors import CommandError, NOT_FLOAT, SYNTAX
from ...lazy import lazy_module
from ..types.zset import ZSet
from .args import leading_flags, to_int
from .lists import bulk_array
from .strings import _write_run_context, propagate_write
from .table import KEY_FINDERS, KEY_READ, KEY_WRITE, command, runs_of
from ..keyspace import now_ms
from ..notify import GENERIC, notify, with_events
from .zsets import _zadd_generic, _zadd_one, _zset, store_zset, to_score
from ..types.zset import stamp

# Their lookup tables (tens of ms to build) wait for the first geo command.
geohash = lazy_module("distcache.server.types.geohash")
geoscan = lazy_module("distcache.server.types.geoscan")
geonearest = lazy_module("distcache.server.types.geonearest")
geoindex = lazy_module("distcache.server.types.geoindex")
pqsort = lazy_module("distcache.server.types.pqsort")
_GEO = dict(group="geo", since="3.2.0", complexity="O(log(N))")
_UNIT_ERROR = "ERR unsupported unit provided. please use M, KM, FT, MI"
_NO_MEMBER = "ERR could not decode requested zset member"
_GEOADD_FLAGS = (b"NX", b"XX", b"CH")


def _coord(c: Any, value: float) -> Any:
    """A coordinate as Redis's addReplyHumanLongDouble: ``%.17f`` without trailing zeros
    (a bulk string in RESP2, a double in RESP3)."""
    text = (b"%.17f" % value).rstrip(b"0").rstrip(b".")
    if text == b"-0":  # as ld2string
        text = b"0"
    return Raw(b",%s\r\n" % text) if c.resp3 else text


def _pos_reply(c: Any, lon: float, lat: float) -> List[Any]:
    return [_coord(c, lon), _coord(c, lat)]


def _dist(value: float) -> bytes:
    return b"%.4f" % value


def _unit(arg: bytes) -> float:
    factor = geohash.UNITS.get(arg.lower())
    if factor is None:
        raise CommandError(_UNIT_ERROR)
    return factor


def _number(arg: bytes, error: str = NOT_FLOAT) -> float:
    """:func:`to_score`, with a fast path for plain decimals (digits, point, minus):
    float() reads them as strtod does, unless they are zero (an underflow?) or
    infinite (309 digits), which take to_score's checks (and its error texts)."""
    if not arg.translate(None, b"0123456789.-"):
        try:
            value = float(arg)
        except ValueError:
            return to_score(arg, error)
        if value != 0.0 and value - value == 0.0:
            return value
    return to_score(arg, error)


def _lonlat(lon_arg: bytes, lat_arg: bytes) -> Tuple[float, float]:
    """A point as extractLongLatOrReply reads and checks it."""
    lon, lat = _number(lon_arg), _number(lat_arg)
    if not (geohash.LONG_MIN <= lon <= geohash.LONG_MAX
            and geohash.LAT_MIN <= lat <= geohash.LAT_MAX):
        raise CommandError("ERR invalid longitude,latitude pair %f,%f" % (lon, lat))
    return lon, lat


def _radius(args: List[bytes], i: int) -> Tuple[float, float]:
    """(radius, meters per unit) from ``radius unit`` at ``args[i]``."""
    radius = _number(args[i], "ERR need numeric radius")
    if radius < 0:
        raise CommandError("ERR radius cannot be negative")
    return radius, _unit(args[i + 1])


def _box(args: List[bytes], i: int) -> Tuple[float, float, float]:
    """(width, height, meters per unit) from ``width height unit`` at ``args[i]``."""
    width = _number(args[i], "ERR need numeric width")
    height = _number(args[i + 1], "ERR need numeric height")
    if height < 0 or width < 0:
        raise CommandError("ERR height or width cannot be negative")
    return width, height, _unit(args[i + 2])


#: ``b"$n"``: a bulk string's header without its CRLF (:func:`_members_reply`'s separator).
_HEADS = [b"$%d" % n for n in range(4096)]
_MEMBER_OF = itemgetter(1)


def _members_reply(found: List[Tuple[float, bytes]]) -> Raw:
    """An array of the (score, member) elements' members, encoded here in one join
    (the same in RESP2 and 3): ``*n``, then ``$len`` and the member for each, all
    CRLF-separated, the lengths' headers taken from a table by C-level maps."""
    members = list(map(_MEMBER_OF, found))
    n = len(members)
    parts = [b""] * (2 * n + 2)
    parts[0] = b"*%d" % n
    try:
        parts[1:-1:2] = map(_HEADS.__getitem__, map(len, members))
    except IndexError:  # a member of 4 KB or more
        return bulk_array(members)
    parts[2:-1:2] = members
    return Raw(b"\r\n".join(parts))


def _member_pos(z: ZSet, member: bytes) -> Tuple[float, float]:
    score = z.scores.get(member)
    if score is None:
        raise CommandError(_NO_MEMBER)
    return geohash.score_to_lonlat(score)


# -- GEOADD, GEOPOS, GEOHASH, GEODIST --------------------------------------------------

@command("geoadd", -5, "write denyoom", (1, 1, 1), **_GEO)
def geoadd(c: Any, args: List[bytes]) -> Any:
    """Add points (longitude, latitude, member) to a geo sorted set (NX, XX, CH)."""
    if len(args) == 5 and args[2].upper() not in _GEOADD_FLAGS:  # fast path: one point
        lon, lat = _lonlat(args[2], args[3])
        return _zadd_one(c, args[1], float(geohash.lonlat_to_score(lon, lat)), args[4])
    flags, i = leading_flags(args, 2, _GEOADD_FLAGS)
    if (len(args) - i) % 3 or {b"NX", b"XX"} <= flags:
        raise CommandError(SYNTAX)
    zadd_args = args[:i]
    for j in range(i, len(args), 3):
        lon, lat = _lonlat(args[j], args[j + 1])
        zadd_args += [b"%d" % geohash.lonlat_to_score(lon, lat), args[j + 2]]
    return _zadd_generic(c, zadd_args, flags, i)


# Keyspace events on: GEOADD's handler announces, the run handler steps aside.
with_events("geoadd")(geoadd)


@runs_of("geoadd")
def geoadd_run(c: Any, commands: List[List[bytes]], start: int, out: List[bytes]) -> int:
    """A run of ``GEOADD key lon lat member`` into existing sorted sets: the score
    (:func:`geohash.lonlat_to_score`, spreads inlined) and ZADD's one-pair insert
    inlined, with the dispatcher's memory-limit credit and propagation of changed
    ones. A request that is not that form, on a new, expiring or other-typed key,
    or with a coordinate float() might read otherwise than strtod (spaces,
    underscores, zero: an underflow?, out of range: inf, nan) ends the run there
    and takes the general path, as do blocked clients."""
    context = _write_run_context(c)
    if context is None or c.db.blocking:
        return 0
    staged, propagators, metered, credit = context
    db = c.db
    data, expires = db.data, db.expires
    name = commands[start][0]
    t = geohash._SPREAD14
    cells, lat_scale = float(1 << geohash.STEP_MAX), geohash._LAT_SCALE
    lat_min, lon_min = geohash.LAT_MIN, geohash.LONG_MIN
    lon_max, lat_max = geohash.LONG_MAX, geohash.LAT_MAX
    lon_scale = lon_max - lon_min
    now = ran = 0
    for args in commands[start:]:
        if len(args) != 5 or args[0] != name or (metered and credit < 1):
            break
        key = args[1]
        z = data.get(key)
        if z.__class__ is not ZSet:
            break
        if expires and key in expires:
            if not now:
                now = now_ms()
            if expires[key] <= now:
                break  # the general path expires it
        lon_arg, lat_arg = args[2], args[3]
        try:
            lon, lat = float(lon_arg), float(lat_arg)
        except ValueError:
            break
        if not (lon_min <= lon <= lon_max and lat_min <= lat <= lat_max) or not lon \
                or not lat or lon_arg[0] <= 32 or lon_arg[-1] <= 32 or lat_arg[0] <= 32 \
                or lat_arg[-1] <= 32 or b"_" in lon_arg or b"_" in lat_arg:
            break
        ilat = int((lat - lat_min) / lat_scale * cells)  # at most 2**26: two lookups
        ilon = int((lon - lon_min) / lon_scale * cells)
        score = float(t[ilat & 0x1FFF] | t[ilat >> 13] << 26
                      | (t[ilon & 0x1FFF] | t[ilon >> 13] << 26) << 1)
        member = args[4]
        scores = z.scores
        old = scores.get(member)
        if old != score:
            if old is None:
                scores[member] = score
                z._insert((score, member))  # ZSet.add of a new member, inlined
            else:
                z.add(member, score)
            db.modified(key)
            if staged is not None:
                staged.append(args)
            elif propagators:
                staged = propagate_write(c, args, propagators)
        out.append(b":0\r\n" if old is not None else b":1\r\n")
        credit -= 1
        ran += 1
    if metered:
        c.server.oom_credit = credit
    return ran


@command("geopos", -2, "readonly", (1, 1, 1), **_GEO)
def geopos(c: Any, args: List[bytes]) -> Any:
    """The longitude and latitude of members (a null array for missing ones)."""
    z = _zset(c.db, args[1], True)
    reply: List[Any] = []
    for member in args[2:]:
        score = None if z is None else z.scores.get(member)
        reply.append(NULL_ARRAY if score is None
                     else _pos_reply(c, *geohash.score_to_lonlat(score)))
    return reply


@command("geohash", -2, "readonly", (1, 1, 1), **_GEO)
def geohash_command(c: Any, args: List[bytes]) -> Any:
    """Members' positions as standard 11-character geohash strings."""
    z = _zset(c.db, args[1], True)
    reply: List[Optional[bytes]] = []
    for member in args[2:]:
        score = None if z is None else z.scores.get(member)
        reply.append(None if score is None else geohash.geohash_string(score))
    return reply


@command("geodist", -4, "readonly", (1, 1, 1), **_GEO)
def geodist(c: Any, args: List[bytes]) -> Any:
    """The distance between two members, in m, km, mi or ft."""
    to_meter = 1.0
    if len(args) == 5:
        to_meter = _unit(args[4])
    elif len(args) > 5:
        raise CommandError(SYNTAX)
    z = _zset(c.db, args[1], True)
    if z is None:
        return None
    s1, s2 = z.scores.get(args[2]), z.scores.get(args[3])
    if s1 is None or s2 is None:
        return None
    lon1, lat1 = geohash.score_to_lonlat(s1)
    lon2, lat2 = geohash.score_to_lonlat(s2)
    return _dist(geohash.distance(lon1, lat1, lon2, lat2) / to_meter)


# -- searches ------------------------------------------------------------------------

_COORDS, _MEMBER, _NOSTORE, _SEARCH, _SEARCHSTORE = 1, 2, 4, 8, 16


class _Shape:
    """A search's centre and extent (a radius, or a box's width and height) in units."""

    __slots__ = ("lon", "lat", "radius", "width", "height", "unit", "box")

    def __init__(self) -> None:
        self.lon = self.lat = self.radius = self.width = self.height = 0.0
        self.unit = 1.0
        self.box = False

    def cells(self) -> List[geohash.Cell]:
        if self.box:
            half_w, half_h = self.width / 2, self.height / 2
            radius = (half_w * half_w + half_h * half_h) ** 0.5
            return geohash.search_cells(self.lon, self.lat, half_w * self.unit,
                                        half_h * self.unit, radius * self.unit)
        r = self.radius * self.unit
        return geohash.search_cells(self.lon, self.lat, r, r, r)


def _cells(shape: _Shape) -> List[geohash.Cell]:
    """The cells Redis searches, in its order: zeroed ones and a repeat of the cell
    just searched (huge radii: neighbours may be the same cell) left out."""
    out: List[geohash.Cell] = []
    for cell in shape.cells():
        if cell != (0, 0) and (not out or cell != out[-1]):
            out.append(cell)
    return out


#: Search plans (geoscan.Plan) by centre and extent: a repeated search (the same
#: point and radius, as a store locator's) skips the geometry. Bounded: cleared when full.
_PLANS: Dict[Tuple[float, float, bool, float, float, float], geoscan.Plan] = {}
_PLANS_MAX = 512
#: Plain searches' encoded replies (:func:`_plain_reply`) by centre and extent, with the
#: stamp of the set they were read from: none longer than REPLY_MAX bytes, at most
#: _PLANS_MAX of them and REPLY_BUDGET bytes in all (``[0]``: the bytes held now), then
#: cleared.
_REPLIES: Dict[Tuple[float, float, bool, float, float, float], Tuple[int, Raw]] = {}
REPLY_MAX = 16 * 1024
REPLY_BUDGET = 1 << 20
_reply_bytes = [0]


def _plan(shape: _Shape) -> geoscan.Plan:
    unit = shape.unit
    width, height, radius = shape.width * unit, shape.height * unit, shape.radius * unit
    key = (shape.lon, shape.lat, shape.box, width, height, radius)
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        plan = _PLANS[key] = geoscan.Plan(_cells(shape), shape.lon, shape.lat, shape.box,
                                          width, height, radius)
    return plan


def _plain_reply(z: ZSet, shape: _Shape) -> Any:
    """The member array of a plain search (no option but the centre and extent): the
    cached reply while the set is the one it was read from, unchanged (its
    :func:`stamp`: every write to the set's elements resets it; another set, or a
    new one under the key, has another), else searched (a radius: on the set's grid
    index, geoindex, where it applies), encoded and kept."""
    unit = shape.unit
    key = (shape.lon, shape.lat, shape.box, shape.width * unit, shape.height * unit,
           shape.radius * unit)
    st = z.stamp or stamp(z)
    cached = _REPLIES.get(key)
    if cached is not None and cached[0] == st:
        return cached[1]
    reply = None
    if not shape.box:
        reply = _index_reply(z, shape, key[5])
    if reply is None:
        reply = _members_reply(_find(z, shape, 0, 0, True, _plan(shape)))
    held = _reply_bytes[0] - (len(cached[1]) if cached is not None else 0)
    size = len(reply)
    if size <= REPLY_MAX:
        if held + size > REPLY_BUDGET or (cached is None and len(_REPLIES) >= _PLANS_MAX):
            _REPLIES.clear()
            held = 0
        _REPLIES[key] = (st, reply)
        held += size
    elif cached is not None:
        del _REPLIES[key]
    _reply_bytes[0] = held
    return reply


def _index_reply(z: ZSet, shape: _Shape, radius: float) -> Optional[Raw]:
    """A plain radius search on the set's grid index (geoindex), or None where the index
    does not apply (no grid bounds for the radius, crowded cells) or the set was never
    searched before (its first search gives it one, empty: a set searched once reads
    nothing more), or written many times a search (geoindex.SetIndex.cold)."""
    ix = z.geo
    if ix is None:
        z.geo = geoindex.SetIndex()
        return None
    if ix.cold:  # written many times a search: the general path until searches catch up
        writes = ix.writes - geoindex.WRITES_SEARCH
        if writes > 0:
            ix.writes = writes
            return None
        ix.writes = 0
        ix.cold = False
    lon, lat = shape.lon, shape.lat
    band = geoscan.bands(lon, lat, radius, radius, False)
    plane = geoscan.plane(lon, lat, radius, band)
    if plane is None:
        return None
    grid = geohash.search_grid(lon, lat, radius, radius, radius)
    reply = geoindex.search(z, ix, grid, lon, lat, radius, band, plane)
    return None if reply is None else Raw(reply)


def _ties(found: List[Any], count: int) -> bool:
    """Whether equal distances meet among the first ``count`` (sorted) or at the cut."""
    head = [p[0] for p in found[:count + 1]]
    return len(set(head)) < len(head)


def _redis_order(scan: List[Any], count: int, reverse: bool, found: List[Any]
                 ) -> List[Any]:
    """Redis's first ``count`` matches where distances tie: it sorts all the matches
    (``scan``: in its scan order) with glibc's stable qsort when COUNT keeps them all,
    and else with its own partial quicksort (pqsort), whose order among equal
    distances is its own. So the sort is replayed on the scan (in place); past a bound
    of work (an input that drives the quicksort quadratic) the stable order ``found``
    stands."""
    n = len(scan)
    if count >= n:
        return found
    budget = 8 * (n + count * count.bit_length()) + 1000
    if pqsort.pqsort(scan, [p[0] for p in scan], count, reverse, budget):
        return scan
    return found


def _find(z: ZSet, shape: _Shape, limit: int, nearest: int = 0, plain: bool = False,
          plan: Optional[geoscan.Plan] = None) -> List[Any]:
    """(distance, score, member, lon, lat) of the members inside the shape, in Redis's
    order: cell by cell, by score within a cell; stops at ``limit`` (ANY) if nonzero.
    Only the parts of a cell that can hold a match are scanned (geoscan.ranges).
    ``nearest`` (a radius search sorted ascending with COUNT): only the matches the
    sort and cut could keep (geonearest.nearest). ``plain``: the caller reads only scores
    and members, so the (score, member) elements themselves are returned (and points
    surely inside a radius are not measured)."""
    if 0 < nearest <= geonearest.NEAREST_MAX:
        unit = shape.unit
        return geonearest.nearest(z, _cells(shape), shape.lon, shape.lat,
                                  shape.radius * unit, nearest, shape.box,
                                  shape.width * unit, shape.height * unit)
    if plan is None:
        plan = _plan(shape)
    plan.use()
    slices = z.score_slices
    crowded = geoscan.CROWDED
    # One lookup over the sorted set for all the cells (they are neighbours: a few
    # hundred elements at most, in one block or two), then bisections inside that
    # short span per cell, not a lookup in the whole set each.
    span: Optional[List[Tuple[float, bytes]]] = None
    if plan.span is not None:
        whole = slices(*plan.span)
        if len(whole) == 1:
            span = whole[0]
        elif len(whole) == 2:
            span = whole[0] + whole[1]

    def groups() -> Iterator[Tuple[geoscan.Offsets, Tuple[bytes, int],
                                   List[List[Tuple[float, bytes]]]]]:
        """Each cell's offsets and slices (lazily: ANY may stop early)."""
        for cell, low, high, offsets, classes in plan.cells:
            if offsets is None:
                continue  # no point of the cell can match
            if span is None:
                parts = slices(low, high)
                if sum(map(len, parts)) > crowded:
                    # a crowded cell: scan only its sub-cells that can hold a match
                    parts = [part for low, high in plan.ranges(cell)
                             for part in slices(low, high)]
            else:
                a = bisect_left(span, (low, b""))
                b = bisect_left(span, (high, b""), a)
                if b - a > crowded:
                    parts = []
                    for low, high in plan.ranges(cell):
                        a = bisect_left(span, (low, b""), a)
                        parts.append(span[a:bisect_left(span, (high, b""), a)])
                else:
                    parts = [span[a:b]]
            yield offsets, classes, parts

    found: List[Any] = []
    if plain and not limit and plan.uses >= 2 and len(plan.memo) < geoscan.MEMO_MAX:
        geoscan.scan_known(groups(), plan, found)
        return found
    geoscan.scan_cells(groups(), shape.lon, shape.lat, plan.box, plan.width, plan.height,
                       plan.radius, found, limit, plan.plane, plain, plain)
    return found


def _search(c: Any, args: List[bytes], src: int, flags: int) -> Any:
    """georadiusGeneric: parse in Redis's order (so errors come in its order), search,
    then reply or store."""
    db = c.db
    z = _zset(db, args[src], True)
    shape = _Shape()
    if (flags == _SEARCH and len(args) == 8 and args[2].lower() == b"fromlonlat"
            and args[5].lower() == b"byradius"):
        # the plain search from a point, as the loop below would parse it (in the same
        # order: the centre's errors first), without the loop
        shape.lon, shape.lat = _lonlat(args[3], args[4])
        shape.radius, shape.unit = _radius(args, 6)
        return [] if z is None else _plain_reply(z, shape)
    store: Optional[bytes] = None
    storedist = False
    if flags & _COORDS:
        base = 6
        shape.lon, shape.lat = _lonlat(args[2], args[3])
        shape.radius, shape.unit = _radius(args, 4)
    elif flags & _MEMBER:
        base = 5
        if z is not None:
            shape.lon, shape.lat = _member_pos(z, args[2])
            shape.radius, shape.unit = _radius(args, 3)
    else:
        base = 3 if flags & _SEARCHSTORE else 2
        if flags & _SEARCHSTORE:
            store = args[1]
    withdist = withhash = withcoord = anyflag = False
    frommember = fromloc = byradius = bybox = False
    sort = 0
    count = 0
    search = bool(flags & _SEARCH)
    i, n = base, len(args)
    while i < n:
        arg = args[i].lower()
        left = n - i - 1
        # (GEOSEARCH's centre and shape first: every search has them; the keywords
        # are distinct, so the order of the tests changes no outcome)
        if arg == b"frommember" and left >= 1 and search and not fromloc:
            if z is not None:
                shape.lon, shape.lat = _member_pos(z, args[i + 1])
            frommember = True
            i += 1
        elif arg == b"fromlonlat" and left >= 2 and search and not frommember:
            shape.lon, shape.lat = _lonlat(args[i + 1], args[i + 2])
            fromloc = True
            i += 2
        elif arg == b"byradius" and left >= 2 and search and not bybox:
            shape.radius, shape.unit = _radius(args, i + 1)
            shape.box = False
            byradius = True
            i += 2
        elif arg == b"bybox" and left >= 3 and search and not byradius:
            shape.width, shape.height, shape.unit = _box(args, i + 1)
            shape.box = True
            bybox = True
            i += 3
        elif arg == b"withdist":
            withdist = True
        elif arg == b"withhash":
            withhash = True
        elif arg == b"withcoord":
            withcoord = True
        elif arg == b"any":
            anyflag = True
        elif arg == b"asc":
            sort = 1
        elif arg == b"desc":
            sort = -1
        elif arg == b"count" and left >= 1:
            count = to_int(args[i + 1])
            if count <= 0:
                raise CommandError("ERR COUNT must be > 0")
            i += 1
        elif arg in (b"store", b"storedist") and left >= 1 and not flags & (_NOSTORE | _SEARCH):
            store = args[i + 1]
            storedist = arg == b"storedist"
            i += 1
        elif arg == b"storedist" and flags & _SEARCHSTORE:
            storedist = True
        else:
            raise CommandError(SYNTAX)
        i += 1
    if store is not None and (withdist or withhash or withcoord):
        what = "GEOSEARCHSTORE" if flags & _SEARCHSTORE else "STORE option in GEORADIUS"
        raise CommandError(f"ERR {what} is not compatible with WITHDIST, WITHHASH and "
                           "WITHCOORD options")
    if search and not (frommember or fromloc):
        raise CommandError(f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified "
                           f"for {args[0].decode('utf-8', 'replace')}")
    if search and not (byradius or bybox):
        raise CommandError(f"ERR exactly one of BYRADIUS and BYBOX can be specified for "
                           f"{args[0].decode('utf-8', 'replace')}")
    if anyflag and not count:
        raise CommandError("ERR the ANY argument requires COUNT argument")
    if z is None:
        if store is not None:
            if db.delete(store):
                notify(db, GENERIC, b"del", store)
            return 0
        return []
    if count and not sort and not anyflag:
        sort = 1  # the closest COUNT need sorting
    plain = not (sort or withdist or withcoord or storedist)
    if plain and not (count or withhash) and store is None:
        return _plain_reply(z, shape)
    nearest = count if sort > 0 and not anyflag else 0
    found = _find(z, shape, count if anyflag else 0, nearest, plain)
    if sort:
        scan = found  # Redis's scan order, where its sorts start from
        found = sorted(scan, key=lambda p: p[0], reverse=sort < 0)
        if count and _ties(found, count):
            if 0 < nearest <= geonearest.NEAREST_MAX:  # (that scan kept the nearest only)
                scan = _find(z, shape, 0)
            found = _redis_order(scan, count, sort < 0, found)
    if count:
        del found[count:]
    if plain:  # (score, member) elements
        if store is not None:
            result = ZSet()
            for score, member in found:
                result.add(member, score)
            return store_zset(c, store, result,
                              b"geosearchstore" if search else b"georadiusstore")
        if withhash:
            return [[member, int(score)] for score, member in found]
        return _members_reply(found)  # (ANY)
    if store is not None:
        result = ZSet()
        for d, score, member, _, _ in found:
            result.add(member, d / shape.unit if storedist else score)
        return store_zset(c, store, result,
                          b"geosearchstore" if search else b"georadiusstore")
    if not (withdist or withhash or withcoord):
        return bulk_array([p[2] for p in found])
    reply: List[Any] = []
    for d, score, member, lon, lat in found:
        item: List[Any] = [member]
        if withdist:
            item.append(_dist(d / shape.unit))
        if withhash:
            item.append(int(score))
        if withcoord:
            item.append(_pos_reply(c, lon, lat))
        reply.append(item)
    return reply


def _radius_store_key(base: int) -> Callable[[List[bytes]], List[Tuple[int, int]]]:
    """GEORADIUS's keys: the source, then its keyword key specs: the key after the
    first STORE and after the first STOREDIST from the options on (as Redis finds them)."""
    def find(args: List[bytes]) -> List[Tuple[int, int]]:
        found: List[Tuple[int, int]] = [(1, KEY_READ)]
        for keyword in (b"STORE", b"STOREDIST"):
            for i in range(base, len(args) - 1):
                if args[i].upper() == keyword:
                    found.append((i + 1, KEY_WRITE))
                    break
        return found
    return find


KEY_FINDERS["georadius"] = _radius_store_key(6)
KEY_FINDERS["georadiusbymember"] = _radius_store_key(5)

_SEARCH_INFO = dict(group="geo", complexity="O(N+log(M))")


def _register(name: str, arity: int, flags: str, since: str, keys: Tuple[int, int, int],
              src: int, mode: int, summary: str) -> None:
    def handler(c: Any, args: List[bytes]) -> Any:
        return _search(c, args, src, mode)
    handler.__name__ = name
    command(name, arity, flags, keys, since=since, summary=summary, **_SEARCH_INFO)(handler)


for _spec in (
        ("georadius", -6, "write denyoom movablekeys", "3.2.0", (1, 1, 1), 1, _COORDS,
         "Members within a radius of a point (STORE, STOREDIST)."),
        ("georadius_ro", -6, "readonly", "3.2.10", (1, 1, 1), 1, _COORDS | _NOSTORE,
         "Members within a radius of a point (read-only)."),
        ("georadiusbymember", -5, "write denyoom movablekeys", "3.2.0", (1, 1, 1), 1, _MEMBER,
         "Members within a radius of a member (STORE, STOREDIST)."),
        ("georadiusbymember_ro", -5, "readonly", "3.2.10", (1, 1, 1), 1, _MEMBER | _NOSTORE,
         "Members within a radius of a member (read-only)."),
        ("geosearch", -7, "readonly", "6.2.0", (1, 1, 1), 1, _SEARCH,
         "Members within a radius or box around a member or a point."),
        ("geosearchstore", -8, "write denyoom", "6.2.0", (1, 2, 1), 2, _SEARCH | _SEARCHSTORE,
         "GEOSEARCH into a sorted set (STOREDIST: scores are distances).")):
    _register(*_spec)
