"""Sorted-set commands over :class:`~distcache.server.types.zset.ZSet` values.

Every range command (ZRANGE in all its forms, ZCOUNT, ZLEXCOUNT,
ZREMRANGEBY*, ZRANGESTORE) turns its arguments into a half-open span of
positions ``[lo, hi)`` in ascending order, found by bisection in O(log n);
direction, LIMIT and WITHSCORES are then applied to that span in one place.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Collection, Iterable, List, Optional, Set, Tuple

from ..errors import CommandError, NOT_FLOAT, SYNTAX
from ..keyspace import TYPE_NAMES
from ..notify import GENERIC, ZSET, delete_if_empty, notify
from ..types.blocking import parse_timeout, signal_ready
from ..scan import parse_cursor
from ..types.zset import ZSet
from .args import leading_flags, to_float, to_int, underflowed
from .hashes import (LISTPACK_VALUE, ZSET_LISTPACK_ENTRIES, pairs_reply, pop_count,
                     rand_with_count, scan_container)
from .lists import bulk_array, index_range, parse_mpop, serve_or_block
from .table import command

TYPE_NAMES[ZSet] = "zset"

_ZSET = dict(group="sorted-set")
_NAN_SCORE = "ERR resulting score is not a number (NaN)"
_NOT_FLOAT_RANGE = "ERR min or max is not a float"
_NOT_LEX_RANGE = "ERR min or max not valid string range item"
_INF_WORD = re.compile(rb"^[+-]?inf(inity)?$", re.I)


def _zset(db: Any, key: bytes, counted: bool = False) -> Optional[ZSet]:
    return db.get_typed(key, ZSet) if counted else db.peek_typed(key, ZSet)


def to_score(arg: bytes, error: str = NOT_FLOAT) -> float:
    """A score as strtod reads it, rejecting overflow and underflow (ERANGE) like Redis."""
    value = to_float(arg, error)
    if math.isinf(value) and not _INF_WORD.match(arg):
        raise CommandError(error)
    if value == 0.0 and underflowed(arg):
        raise CommandError(error)
    return value


def score_text(score: float) -> bytes:
    """A score as Redis writes it in text (ZSCAN): ``%.17g``, inf, -inf."""
    if math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    return b"%.17g" % score


def _stored_score(z: ZSet, member: bytes, score: float) -> float:
    """``score`` as Redis keeps it: 0, not -0, when the set is (still) a listpack.

    A listpack stores an integral score as the integer, which reads back as 0;
    a skiplist keeps the double. Callers test ``score == 0.0`` first (cheap)."""
    if math.copysign(1.0, score) > 0 or len(member) > LISTPACK_VALUE:
        return score
    if len(z) + (member not in z.scores) > ZSET_LISTPACK_ENTRIES \
            or not zset_listpack_sized(z.scores):
        return score
    return 0.0


def fold_listpack_zeros(z: ZSet) -> ZSet:
    """Read -0 scores back as 0 when ``z`` is listpack-sized: what Redis does to a
    stored ZUNIONSTORE/ZRANGESTORE/... result or a loaded set, both converted to a
    listpack when small enough (a skiplist-sized one keeps -0)."""
    if len(z) <= ZSET_LISTPACK_ENTRIES and zset_listpack_sized(z.scores):
        for member, score in list(z.items()):
            if score == 0.0 and math.copysign(1.0, score) < 0:
                z.remove(member)  # add() sees -0 == 0 as no change
                z.add(member, 0.0)
    return z


def store_zset(c: Any, key: bytes, z: ZSet, event: bytes) -> int:
    """Store a computed sorted set announcing ``event`` (or delete ``key`` if it is empty)."""
    db = c.db
    if z:
        fold_listpack_zeros(z)
        db.set(key, z)
        notify(db, ZSET, event, key)
        if db.blocking:
            signal_ready(c, db, key)
    elif db.delete(key):
        notify(db, GENERIC, b"del", key)
    return len(z)


def pop_entries(db: Any, key: bytes, z: ZSet, count: int, from_max: bool
                ) -> List[Tuple[bytes, float]]:
    """Remove the ``count`` lowest (or highest) members; deletes the key once empty."""
    n = len(z)
    if from_max:
        entries = z.delete_range(n - count, n)[::-1]
    else:
        entries = z.delete_range(0, count)
    db.modified(key)
    notify(db, ZSET, b"zpopmax" if from_max else b"zpopmin", key)
    delete_if_empty(db, key, z)
    return [(m, s) for s, m in entries]


# -- ZADD / ZINCRBY / ZREM ---------------------------------------------------------------

_ZADD_FLAGS = (b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR")


def _zadd_generic(c: Any, args: List[bytes], flags: Set[bytes], start: int) -> Any:
    elements = len(args) - start
    if elements % 2 or not elements:
        raise CommandError(SYNTAX)
    nx, xx, gt, lt = (f in flags for f in (b"NX", b"XX", b"GT", b"LT"))
    incr = b"INCR" in flags
    if nx and xx:
        raise CommandError("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and elements > 2:
        raise CommandError("ERR INCR option supports a single increment-element pair")
    pairs = [(to_score(args[i]), args[i + 1]) for i in range(start, len(args), 2)]
    db = c.db
    key = args[1]
    z = _zset(db, key)
    if z is None:
        if xx:
            return None if incr else 0
        z = ZSet()
        db.set(key, z)
    added = changed = 0
    result: Optional[float] = None
    for score, member in pairs:
        current = z.scores.get(member)
        if current is None:
            if xx:
                continue
            z.add(member, _stored_score(z, member, score) if score == 0.0 else score)
            added += 1
            result = score  # ZADD INCR replies -0 even where 0 is stored
            continue
        if nx:
            continue
        if incr:
            score += current
            if score != score:
                db.remove_if_empty(key, z)
                raise CommandError(_NAN_SCORE)
        if (lt and score >= current) or (gt and score <= current):
            continue
        result = score
        if score != current:  # -0 over 0 (or back) is no update, as in Redis
            z.add(member, _stored_score(z, member, score) if score == 0.0 else score)
            changed += 1
    if added or changed:
        db.modified(key)
        notify(db, ZSET, b"zincr" if incr else b"zadd", key)
        if db.blocking:
            signal_ready(c, db, key)
    db.remove_if_empty(key, z)
    if incr:
        return result
    return added + changed if b"CH" in flags else added


def _zadd_one(c: Any, key: bytes, score: float, member: bytes) -> int:
    db = c.db
    z = _zset(db, key)
    if z is None:
        z = ZSet()
        db.set(key, z)
    old = z.scores.get(member)
    if score == 0.0:
        score = _stored_score(z, member, score)
    if old != score:
        z.add(member, score)
        db.modified(key)
        notify(db, ZSET, b"zadd", key)
        if db.blocking:
            signal_ready(c, db, key)
    return 1 if old is None else 0


@command("zadd", -4, "write denyoom fast", (1, 1, 1), since="1.2.0",
         complexity="O(log(N))", **_ZSET)
def zadd(c: Any, args: List[bytes]) -> Any:
    """Add members or update scores (NX, XX, GT, LT, CH, INCR)."""
    if len(args) == 4 and args[2].upper() not in _ZADD_FLAGS:  # fast path: one pair
        return _zadd_one(c, args[1], to_score(args[2]), args[3])
    flags, i = leading_flags(args, 2, _ZADD_FLAGS)
    return _zadd_generic(c, args, flags, i)


@command("zincrby", 4, "write denyoom fast", (1, 1, 1), since="1.2.0",
         complexity="O(log(N))", **_ZSET)
def zincrby(c: Any, args: List[bytes]) -> Any:
    """Add to a member's score."""
    return _zadd_generic(c, [args[0], args[1], args[2], args[3]], {b"INCR"}, 2)


@command("zrem", -3, "write fast", (1, 1, 1), since="1.2.0", complexity="O(M*log(N))",
         **_ZSET)
def zrem(c: Any, args: List[bytes]) -> Any:
    """Remove members; returns how many existed."""
    db = c.db
    z = _zset(db, args[1])
    if z is None:
        return 0
    removed = sum(1 for member in args[2:] if z.remove(member))
    if removed:
        db.modified(args[1])
        notify(db, ZSET, b"zrem", args[1])
        delete_if_empty(db, args[1], z)
    return removed


# -- point reads -------------------------------------------------------------------------

@command("zscore", 3, "readonly fast", (1, 1, 1), since="1.2.0", **_ZSET)
def zscore(c: Any, args: List[bytes]) -> Any:
    """A member's score (a double in RESP3)."""
    z = _zset(c.db, args[1], True)
    return None if z is None else z.scores.get(args[2])


@command("zmscore", -3, "readonly fast", (1, 1, 1), since="6.2.0", complexity="O(N)",
         **_ZSET)
def zmscore(c: Any, args: List[bytes]) -> Any:
    """The scores of several members."""
    z = _zset(c.db, args[1], True)
    scores = z.scores if z is not None else {}
    return [scores.get(member) for member in args[2:]]


@command("zcard", 2, "readonly fast", (1, 1, 1), since="1.2.0", **_ZSET)
def zcard(c: Any, args: List[bytes]) -> Any:
    """The number of members."""
    z = _zset(c.db, args[1], True)
    return 0 if z is None else len(z)


def _rank_generic(c: Any, args: List[bytes], reverse: bool) -> Any:
    z = _zset(c.db, args[1], True)
    if z is None:
        return None
    rank = z.rank(args[2])
    if rank is None:
        return None
    return len(z) - 1 - rank if reverse else rank


@command("zrank", 3, "readonly fast", (1, 1, 1), since="2.0.0", complexity="O(log(N))",
         **_ZSET)
def zrank(c: Any, args: List[bytes]) -> Any:
    """A member's 0-based rank by ascending score."""
    return _rank_generic(c, args, False)


@command("zrevrank", 3, "readonly fast", (1, 1, 1), since="2.0.0", complexity="O(log(N))",
         **_ZSET)
def zrevrank(c: Any, args: List[bytes]) -> Any:
    """A member's 0-based rank by descending score."""
    return _rank_generic(c, args, True)


# -- ranges ------------------------------------------------------------------------------

RANK, SCORE, LEX = "rank", "score", "lex"


def _score_bound(arg: bytes) -> Tuple[float, bool]:
    """A ZRANGEBYSCORE bound, read as plain strtod does ("" is 0, leading spaces pass)."""
    exclusive = arg[:1] == b"("
    text = arg[1:] if exclusive else arg
    if not text:
        return 0.0, exclusive
    # strtod skips leading spaces; to_float refuses trailing ones, "_" and NaN
    value = to_float(text.lstrip(), _NOT_FLOAT_RANGE)
    return value, exclusive


def _lex_bound(arg: bytes) -> Tuple[Optional[bytes], bool]:
    """(member, exclusive); member None means - (with exclusive False) or + (True)."""
    if arg == b"-":
        return None, False
    if arg == b"+":
        return None, True
    if arg[:1] == b"[":
        return arg[1:], False
    if arg[:1] == b"(":
        return arg[1:], True
    raise CommandError(_NOT_LEX_RANGE)


class RangeSpec:
    """A parsed range: by rank, score or lex, found as positions [lo, hi) in a ZSet."""

    __slots__ = ("kind", "low", "high")

    def __init__(self, kind: str, low_arg: bytes, high_arg: bytes) -> None:
        self.kind = kind
        if kind == RANK:
            self.low: Any = to_int(low_arg)
            self.high: Any = to_int(high_arg)
        elif kind == SCORE:
            try:
                self.low, self.high = _score_bound(low_arg), _score_bound(high_arg)
            except CommandError:
                raise CommandError(_NOT_FLOAT_RANGE) from None
        else:
            self.low, self.high = _lex_bound(low_arg), _lex_bound(high_arg)

    def positions(self, z: ZSet, reverse: bool = False) -> Tuple[int, int]:
        n = len(z)
        if self.kind == RANK:
            if reverse:
                return self.rank_reversed(n)
            span = index_range(self.low, self.high, n)
            return (0, 0) if span is None else (span[0], span[1] + 1)
        if self.kind == SCORE:
            (lo_v, lo_ex), (hi_v, hi_ex) = self.low, self.high
            lo = z.count_below(lo_v, lo_ex)
            hi = z.count_below(hi_v, not hi_ex)
        elif n and z.entry(0)[0] != z.entry(n - 1)[0] and zset_listpack_sized(z.scores):
            # Mixed scores: Redis's result depends on its encoding. A listpack is
            # walked (replayed exactly, O(128) at most); on a skiplist Redis
            # descends as if members were ordered, and so does the bisection
            # below, in O(log n) instead of a scan of the whole set.
            return self._lex_scan(z, reverse)
        else:
            lo = self._lex_position(z, self.low, True)
            hi = self._lex_position(z, self.high, False)
        return (lo, hi) if lo < hi else (0, 0)

    def _lex_scan(self, z: ZSet, reverse: bool) -> Tuple[int, int]:
        """BYLEX over a listpack-sized set with different scores (undefined order,
        per Redis's docs): a linear scan with exactly the steps Redis takes."""
        (lo_m, lo_ex), (hi_m, hi_ex) = self.low, self.high

        def ge_min(m: bytes) -> bool:
            if lo_m is None:
                return not lo_ex  # "-" admits everything, "+" nothing
            return m > lo_m if lo_ex else m >= lo_m

        def le_max(m: bytes) -> bool:
            if hi_m is None:
                return hi_ex
            return m < hi_m if hi_ex else m <= hi_m

        if lo_m is not None and hi_m is not None and \
                (lo_m > hi_m or (lo_m == hi_m and (lo_ex or hi_ex))):
            return 0, 0
        members = [m for _, m in z.entries()]
        n = len(members)
        if not ge_min(members[-1]) or not le_max(members[0]):
            return 0, 0
        if reverse:
            last = next((i for i in range(n - 1, -1, -1) if le_max(members[i])), None)
            if last is None or not ge_min(members[last]):
                return 0, 0
            first = last
            while first > 0 and ge_min(members[first - 1]):
                first -= 1
            return first, last + 1
        first = next((i for i in range(n) if ge_min(members[i])), None)
        if first is None or not le_max(members[first]):
            return 0, 0
        end = first
        while end < n and le_max(members[end]):
            end += 1
        return first, end

    @staticmethod
    def _lex_position(z: ZSet, bound: Tuple[Optional[bytes], bool], low: bool) -> int:
        member, exclusive = bound
        if member is None:
            return len(z) if exclusive else 0
        return z.count_below_member(member, exclusive if low else not exclusive)

    def rank_reversed(self, n: int) -> "Tuple[int, int]":
        """Positions of a REV rank range (ranks count from the highest score)."""
        span = index_range(self.low, self.high, n)
        if span is None:
            return 0, 0
        return n - 1 - span[1], n - span[0]


class RangeQuery:
    """ZRANGE's options: kind, direction, LIMIT, WITHSCORES, and the range itself."""

    __slots__ = ("spec", "reverse", "offset", "limit", "withscores")

    def __init__(self, args: List[bytes], at: int, kind: Optional[str],
                 reverse: Optional[bool], store: bool) -> None:
        offset, limit, withscores = 0, -1, False
        fixed_dir = reverse is not None
        j = at + 2
        while j < len(args):
            opt = args[j].upper()
            if not store and opt == b"WITHSCORES":
                withscores = True
            elif opt == b"LIMIT" and len(args) - j - 1 >= 2:
                offset, limit = to_int(args[j + 1]), to_int(args[j + 2])
                j += 2
            elif not fixed_dir and opt == b"REV":
                reverse = fixed_dir = True
            elif kind is None and opt == b"BYLEX":
                kind = LEX
            elif kind is None and opt == b"BYSCORE":
                kind = SCORE
            else:
                raise CommandError(SYNTAX)
            j += 1
        kind = kind or RANK
        self.reverse = bool(reverse)
        if kind == RANK:
            if limit != -1:
                raise CommandError("ERR syntax error, LIMIT is only supported in combination "
                                   "with either BYSCORE or BYLEX")
            offset = 0  # ignored, as Redis ignores "LIMIT <any> -1" on rank ranges
        if withscores and kind == LEX:
            raise CommandError("ERR syntax error, WITHSCORES not supported in combination "
                               "with BYLEX")
        low, high = args[at], args[at + 1]
        if self.reverse and kind != RANK:
            low, high = high, low
        self.spec = RangeSpec(kind, low, high)
        self.offset, self.limit, self.withscores = offset, limit, withscores

    def entries(self, z: ZSet) -> Iterable[Tuple[float, bytes]]:
        lo, hi = self.spec.positions(z, self.reverse)
        if self.offset < 0:
            return ()
        size = hi - lo - self.offset
        if size <= 0:
            return ()
        take = size if self.limit < 0 else min(self.limit, size)
        if self.reverse:
            return z.iter_range(hi - self.offset - take, hi - self.offset, reverse=True)
        return z.iter_range(lo + self.offset, lo + self.offset + take)


def entries_reply(c: Any, entries: Iterable[Tuple[float, bytes]], withscores: bool) -> Any:
    if withscores:
        return pairs_reply(c, ((m, s) for s, m in entries))
    return bulk_array([m for _, m in entries])


def _zrange_generic(c: Any, args: List[bytes], kind: Optional[str] = None,
                    reverse: Optional[bool] = None) -> Any:
    """ZRANGE and its legacy forms (Redis's zrangeGenericCommand)."""
    query = RangeQuery(args, 2, kind, reverse, store=False)
    z = _zset(c.db, args[1], True)
    if z is None:
        return []
    return entries_reply(c, query.entries(z), query.withscores)


@command("zrange", -4, "readonly", (1, 1, 1), since="1.2.0",
         complexity="O(log(N)+M)", **_ZSET)
def zrange(c: Any, args: List[bytes]) -> Any:
    """Members in a range of ranks, scores (BYSCORE) or names (BYLEX), REV, LIMIT."""
    return _zrange_generic(c, args)


@command("zrevrange", -4, "readonly", (1, 1, 1), since="1.2.0",
         complexity="O(log(N)+M)", **_ZSET)
def zrevrange(c: Any, args: List[bytes]) -> Any:
    """Members in a range of ranks, highest scores first."""
    return _zrange_generic(c, args, RANK, True)


@command("zrangebyscore", -4, "readonly", (1, 1, 1), since="1.0.5",
         complexity="O(log(N)+M)", **_ZSET)
def zrangebyscore(c: Any, args: List[bytes]) -> Any:
    """Members with scores in a range."""
    return _zrange_generic(c, args, SCORE, False)


@command("zrevrangebyscore", -4, "readonly", (1, 1, 1), since="2.2.0",
         complexity="O(log(N)+M)", **_ZSET)
def zrevrangebyscore(c: Any, args: List[bytes]) -> Any:
    """Members with scores in a range (max first), highest scores first."""
    return _zrange_generic(c, args, SCORE, True)


@command("zrangebylex", -4, "readonly", (1, 1, 1), since="2.8.9",
         complexity="O(log(N)+M)", **_ZSET)
def zrangebylex(c: Any, args: List[bytes]) -> Any:
    """Members in a lexicographical range (equal scores)."""
    return _zrange_generic(c, args, LEX, False)


@command("zrevrangebylex", -4, "readonly", (1, 1, 1), since="2.8.9",
         complexity="O(log(N)+M)", **_ZSET)
def zrevrangebylex(c: Any, args: List[bytes]) -> Any:
    """Members in a lexicographical range, in reverse order."""
    return _zrange_generic(c, args, LEX, True)


@command("zrangestore", -5, "write denyoom", (1, 2, 1), since="6.2.0",
         complexity="O(log(N)+M)", **_ZSET)
def zrangestore(c: Any, args: List[bytes]) -> Any:
    """Store a ZRANGE result in a key."""
    query = RangeQuery(args, 3, None, None, store=True)
    src = _zset(c.db, args[2])
    result = ZSet()
    if src is not None:
        for score, member in query.entries(src):
            result.add(member, score)
    return store_zset(c, args[1], result, b"zrangestore")


def _count_generic(c: Any, args: List[bytes], kind: str) -> Any:
    spec = RangeSpec(kind, args[2], args[3])
    z = _zset(c.db, args[1], True)
    if z is None:
        return 0
    lo, hi = spec.positions(z)
    return hi - lo


@command("zcount", 4, "readonly fast", (1, 1, 1), since="2.0.0", complexity="O(log(N))",
         **_ZSET)
def zcount(c: Any, args: List[bytes]) -> Any:
    """How many members have scores in a range."""
    return _count_generic(c, args, SCORE)


@command("zlexcount", 4, "readonly fast", (1, 1, 1), since="2.8.9",
         complexity="O(log(N))", **_ZSET)
def zlexcount(c: Any, args: List[bytes]) -> Any:
    """How many members are in a lexicographical range."""
    return _count_generic(c, args, LEX)


_REMRANGE_EVENTS = {RANK: b"zremrangebyrank", SCORE: b"zremrangebyscore", LEX: b"zremrangebylex"}


def _remrange_generic(c: Any, args: List[bytes], kind: str) -> Any:
    spec = RangeSpec(kind, args[2], args[3])
    db = c.db
    z = _zset(db, args[1])
    if z is None:
        return 0
    lo, hi = spec.positions(z)
    removed = len(z.delete_range(lo, hi))
    if removed:
        db.modified(args[1])
        notify(db, ZSET, _REMRANGE_EVENTS[kind], args[1])
        delete_if_empty(db, args[1], z)
    return removed


@command("zremrangebyrank", 4, "write", (1, 1, 1), since="2.0.0",
         complexity="O(log(N)+M)", **_ZSET)
def zremrangebyrank(c: Any, args: List[bytes]) -> Any:
    """Remove members in a range of ranks."""
    return _remrange_generic(c, args, RANK)


@command("zremrangebyscore", 4, "write", (1, 1, 1), since="1.2.0",
         complexity="O(log(N)+M)", **_ZSET)
def zremrangebyscore(c: Any, args: List[bytes]) -> Any:
    """Remove members with scores in a range."""
    return _remrange_generic(c, args, SCORE)


@command("zremrangebylex", 4, "write", (1, 1, 1), since="2.8.9",
         complexity="O(log(N)+M)", **_ZSET)
def zremrangebylex(c: Any, args: List[bytes]) -> Any:
    """Remove members in a lexicographical range."""
    return _remrange_generic(c, args, LEX)


# -- pops --------------------------------------------------------------------------------

def _zpop_generic(c: Any, args: List[bytes], from_max: bool) -> Any:
    if len(args) > 3:
        raise CommandError(SYNTAX)
    count = pop_count(args)
    db = c.db
    z = _zset(db, args[1])
    if z is None or count == 0:
        return []
    popped = pop_entries(db, args[1], z, count or 1, from_max)
    if count is None:
        return list(popped[0])
    return pairs_reply(c, popped)


@command("zpopmin", -2, "write fast", (1, 1, 1), since="5.0.0",
         complexity="O(log(N)*M)", **_ZSET)
def zpopmin(c: Any, args: List[bytes]) -> Any:
    """Remove and return the lowest-scored members."""
    return _zpop_generic(c, args, False)


@command("zpopmax", -2, "write fast", (1, 1, 1), since="5.0.0",
         complexity="O(log(N)*M)", **_ZSET)
def zpopmax(c: Any, args: List[bytes]) -> Any:
    """Remove and return the highest-scored members."""
    return _zpop_generic(c, args, True)


def _pop_server(c: Any, from_max: bool, count: Optional[int]
                ) -> Callable[[bytes, ZSet], Tuple[Any, List[List[bytes]]]]:
    """What BZPOPMIN/ZMPOP do to a non-empty sorted set: pop, reply, log as ZPOPMIN/MAX."""

    def serve(key: bytes, z: ZSet) -> Tuple[Any, List[List[bytes]]]:
        popped = pop_entries(c.db, key, z, count or 1, from_max)
        cmd = [b"ZPOPMAX" if from_max else b"ZPOPMIN", key]
        if count is None:
            return [key, popped[0][0], popped[0][1]], [cmd]
        return [key, [list(p) for p in popped]], [cmd + [b"%d" % len(popped)]]

    return serve


def _bzpop_generic(c: Any, args: List[bytes], from_max: bool) -> Any:
    timeout = parse_timeout(args[-1])
    return serve_or_block(c, args[1:-1], ZSet, timeout, _pop_server(c, from_max, None))


@command("bzpopmin", -3, "write noscript blocking fast", (1, -2, 1), since="5.0.0",
         complexity="O(log(N))", **_ZSET)
def bzpopmin(c: Any, args: List[bytes]) -> Any:
    """ZPOPMIN that blocks until one of the sorted sets has members."""
    return _bzpop_generic(c, args, False)


@command("bzpopmax", -3, "write noscript blocking fast", (1, -2, 1), since="5.0.0",
         complexity="O(log(N))", **_ZSET)
def bzpopmax(c: Any, args: List[bytes]) -> Any:
    """ZPOPMAX that blocks until one of the sorted sets has members."""
    return _bzpop_generic(c, args, True)


_MINMAX = {b"MIN": False, b"MAX": True}


def _zmpop_generic(c: Any, args: List[bytes], numkeys_at: int) -> Any:
    keys, from_max, count = parse_mpop(args, numkeys_at, _MINMAX)
    timeout = parse_timeout(args[1]) if numkeys_at == 2 else None
    return serve_or_block(c, keys, ZSet, timeout, _pop_server(c, from_max, count or 1))


@command("zmpop", -4, "write movablekeys", since="7.0.0", complexity="O(K)+O(M*log(N))",
         **_ZSET)
def zmpop(c: Any, args: List[bytes]) -> Any:
    """Pop members from the first non-empty sorted set of several."""
    return _zmpop_generic(c, args, 1)


@command("bzmpop", -5, "write blocking movablekeys", since="7.0.0",
         complexity="O(K)+O(M*log(N))", **_ZSET)
def bzmpop(c: Any, args: List[bytes]) -> Any:
    """ZMPOP that blocks until one of the sorted sets has members."""
    return _zmpop_generic(c, args, 2)


# -- random members and scans ------------------------------------------------------------

@command("zrandmember", -2, "readonly", (1, 1, 1), since="6.2.0", complexity="O(N)",
         **_ZSET)
def zrandmember(c: Any, args: List[bytes]) -> Any:
    """Random members (count < 0 allows repeats), optionally WITHSCORES."""
    def scores() -> Optional[dict]:
        z = _zset(c.db, args[1], True)
        return z.scores if z is not None else None

    return rand_with_count(c, args, scores, b"WITHSCORES", dict.__getitem__)


@command("zscan", -3, "readonly", (1, 1, 1), since="2.8.0",
         complexity="O(1) per call, O(N) per full iteration", **_ZSET)
def zscan(c: Any, args: List[bytes]) -> Any:
    """Iterate over members and scores with a cursor."""
    parse_cursor(args[2])
    z = _zset(c.db, args[1], True)
    scores = z.scores if z is not None else None
    # a listpack keeps members in score order
    compact = scores is not None and zset_listpack_sized(scores) and [m for m, _ in z.items()]
    return scan_container(c, args, scores, score_text, compact)


def zset_listpack_sized(members: Collection[bytes]) -> bool:
    """Whether Redis would keep a sorted set with these members in a listpack."""
    return len(members) <= ZSET_LISTPACK_ENTRIES \
        and all(len(m) <= LISTPACK_VALUE for m in members)
