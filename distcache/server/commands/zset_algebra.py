"""ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD (WEIGHTS, AGGREGATE)."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import CommandError, SYNTAX, WRONGTYPE
from ..types.zset import ZSet
from .args import to_int
from .sets import intersection_size
from .table import command
from .zsets import _ZSET, entries_reply, store_zset, to_score

# -- set operations (ZUNION, ZINTER, ZDIFF and their STORE forms) ------------------------

def _aggregate_sum(a: float, b: float) -> float:
    total = a + b
    return 0.0 if total != total else total


_AGGREGATES: Dict[bytes, Callable[[float, float], float]] = {
    b"SUM": _aggregate_sum, b"MIN": min, b"MAX": max}


def _source_scores(db: Any, key: bytes) -> Optional[Dict[bytes, float]]:
    """member -> score of a zset, or of a set (every score 1); WRONGTYPE otherwise."""
    value = db.get(key)
    if value is None:
        return None
    if value.__class__ is ZSet:
        return value.scores
    if value.__class__ is set:
        return dict.fromkeys(value, 1.0)
    raise CommandError(WRONGTYPE)


def _combine(c: Any, args: List[bytes], numkeys_at: int, op: str, store: bool) -> Any:
    name = args[0].decode("utf-8", "replace").lower()
    numkeys = to_int(args[numkeys_at])
    if numkeys < 1:
        raise CommandError(f"ERR at least 1 input key is needed for '{name}' command")
    if numkeys > len(args) - numkeys_at - 1:
        raise CommandError(SYNTAX)
    keys = args[numkeys_at + 1:numkeys_at + 1 + numkeys]
    sources = [_source_scores(c.db, key) for key in keys]
    weights = [1.0] * numkeys
    aggregate = _aggregate_sum
    withscores = False
    limit = 0
    scored = op in ("union", "inter")
    j = numkeys_at + 1 + numkeys
    while j < len(args):
        opt = args[j].upper()
        remaining = len(args) - j
        if op == "card" and opt == b"LIMIT" and remaining >= 2:
            limit = to_int(args[j + 1], "ERR LIMIT can't be negative")
            if limit < 0:
                raise CommandError("ERR LIMIT can't be negative")
            j += 2
        elif scored and opt == b"WEIGHTS" and remaining >= numkeys + 1:
            weights = [to_score(w, "ERR weight value is not a float")
                       for w in args[j + 1:j + 1 + numkeys]]
            j += numkeys + 1
        elif scored and opt == b"AGGREGATE" and remaining >= 2:
            aggregate = _AGGREGATES.get(args[j + 1].upper())  # type: ignore[assignment]
            if aggregate is None:
                raise CommandError(SYNTAX)
            j += 2
        elif not store and op != "card" and opt == b"WITHSCORES":
            withscores = True
            j += 1
        else:
            raise CommandError(SYNTAX)
    if op == "card":
        return intersection_size([s or {} for s in sources], limit)
    result = _compute(op, [(s or {}, w) for s, w in zip(sources, weights)], aggregate)
    z = ZSet()
    for member, score in result.items():
        z.add(member, score)
    if store:
        return store_zset(c, args[1], z, b"z%sstore" % op.encode())
    return entries_reply(c, z.entries(), withscores)


def _weighted(score: float, weight: float) -> float:
    value = score * weight
    return 0.0 if value != value else value


def _compute(op: str, sources: List[Tuple[Dict[bytes, float], float]],
             aggregate: Callable[[float, float], float]) -> Dict[bytes, float]:
    if op == "diff":
        first = sources[0][0]
        others = [s for s, _ in sources[1:]]
        return {m: s for m, s in first.items() if not any(m in o for o in others)}
    ordered = sorted(sources, key=lambda sw: len(sw[0]))
    if op == "inter":
        (smallest, w0), rest = ordered[0], ordered[1:]
        result = {}
        for member, score in smallest.items():
            value = _weighted(score, w0)
            for other, w in rest:
                other_score = other.get(member)
                if other_score is None:
                    break
                # as Redis: only the first set's NaN (0 * inf) becomes 0; here
                # SUM turns a NaN total into 0 and MIN/MAX keep the other side
                value = aggregate(value, other_score * w)
            else:
                result[member] = value
        return result
    union: Dict[bytes, float] = {}
    for scores, w in ordered:
        for member, score in scores.items():
            value = _weighted(score, w)
            old = union.get(member)
            union[member] = value if old is None else aggregate(old, value)
    return union


@command("zunionstore", -4, "write denyoom movablekeys", since="2.0.0",
         complexity="O(N)+O(M log(M))", **_ZSET)
def zunionstore(c: Any, args: List[bytes]) -> Any:
    """Store the union of sorted sets (WEIGHTS, AGGREGATE)."""
    return _combine(c, args, 2, "union", True)


@command("zinterstore", -4, "write denyoom movablekeys", since="2.0.0",
         complexity="O(N*K)+O(M*log(M))", **_ZSET)
def zinterstore(c: Any, args: List[bytes]) -> Any:
    """Store the intersection of sorted sets (WEIGHTS, AGGREGATE)."""
    return _combine(c, args, 2, "inter", True)


@command("zdiffstore", -4, "write denyoom movablekeys", since="6.2.0",
         complexity="O(L + (N-K)log(N))", **_ZSET)
def zdiffstore(c: Any, args: List[bytes]) -> Any:
    """Store the difference of sorted sets."""
    return _combine(c, args, 2, "diff", True)


@command("zunion", -3, "readonly movablekeys", since="6.2.0",
         complexity="O(N)+O(M*log(M))", **_ZSET)
def zunion(c: Any, args: List[bytes]) -> Any:
    """The union of sorted sets (WEIGHTS, AGGREGATE, WITHSCORES)."""
    return _combine(c, args, 1, "union", False)


@command("zinter", -3, "readonly movablekeys", since="6.2.0",
         complexity="O(N*K)+O(M*log(M))", **_ZSET)
def zinter(c: Any, args: List[bytes]) -> Any:
    """The intersection of sorted sets (WEIGHTS, AGGREGATE, WITHSCORES)."""
    return _combine(c, args, 1, "inter", False)


@command("zdiff", -3, "readonly movablekeys", since="6.2.0",
         complexity="O(L + (N-K)log(N))", **_ZSET)
def zdiff(c: Any, args: List[bytes]) -> Any:
    """The members of the first sorted set that are in none of the others."""
    return _combine(c, args, 1, "diff", False)


@command("zintercard", -3, "readonly movablekeys", since="7.0.0",
         complexity="O(N*K)", **_ZSET)
def zintercard(c: Any, args: List[bytes]) -> Any:
    """The size of the intersection of sorted sets (LIMIT stops counting early)."""
    return _combine(c, args, 1, "card", False)
