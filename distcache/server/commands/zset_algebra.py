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


def _source_scores(db: Any, key: bytes, converted: Dict[int, Any]
                   ) -> Optional[Dict[bytes, float]]:
    """member -> score of a zset, or of a set (every score 1, built once a set:
    ``converted``); WRONGTYPE otherwise."""
    value = db.get(key)  # each name counts, as Redis's lookup per key
    if value is None:
        return None
    if value.__class__ is ZSet:
        return value.scores
    if value.__class__ is set:
        scores = converted.get(id(value))
        if scores is None:
            scores = converted[id(value)] = dict.fromkeys(value, 1.0)
        return scores
    raise CommandError(WRONGTYPE)


def _combine(c: Any, args: List[bytes], numkeys_at: int, op: str, store: bool) -> Any:
    name = args[0].decode("utf-8", "replace").lower()
    numkeys = to_int(args[numkeys_at])
    if numkeys < 1:
        raise CommandError(f"ERR at least 1 input key is needed for '{name}' command")
    if numkeys > len(args) - numkeys_at - 1:
        raise CommandError(SYNTAX)
    keys = args[numkeys_at + 1:numkeys_at + 1 + numkeys]
    # A key named again is the same object (a set's scores built once), which
    # _compute groups, as Redis skips the lookup of the set it iterates.
    converted: Dict[int, Optional[Dict[bytes, float]]] = {}
    sources = [_source_scores(c.db, key, converted) for key in keys]
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


#: Sums of integers up to this magnitude are exact in a double.
_EXACT = float(1 << 53)


def _repeated(aggregate: Callable[[float, float], float], acc: float, value: float,
              times: int) -> float:
    """``aggregate(acc, value)`` ``times`` times over, as the loop would, but in
    one step where that is exact: MIN and MAX give the same after the first, and
    a SUM of integers that stays below 2**53 never rounds."""
    if aggregate is not _aggregate_sum:
        return aggregate(acc, value)
    if acc.is_integer() and value.is_integer() and abs(acc) + times * abs(value) <= _EXACT:
        return acc + times * value
    for _ in range(times):
        acc = aggregate(acc, value)
    return acc


def _runs(sources: List[Tuple[Dict[bytes, float], float]]
          ) -> List[Tuple[Dict[bytes, float], float, int]]:
    """Sources in order, each run of the same object with the same weight as one
    (source, weight, how many)."""
    runs: List[Tuple[Dict[bytes, float], float, int]] = []
    for scores, w in sources:
        if runs and runs[-1][0] is scores and runs[-1][1] == w:
            runs[-1] = (scores, w, runs[-1][2] + 1)
        else:
            runs.append((scores, w, 1))
    return runs


def _compute(op: str, sources: List[Tuple[Dict[bytes, float], float]],
             aggregate: Callable[[float, float], float]) -> Dict[bytes, float]:
    """The result of ``op`` over (scores, weight) sources. A key named many times
    costs one pass, not one per name: repeated sources are folded in one step
    (:func:`_repeated`) and, as Redis, the one being iterated is not looked up."""
    if op == "diff":
        first = sources[0][0]
        others = list({id(s): s for s, _ in sources[1:]}.values())
        if any(o is first for o in others):
            return {}
        return {m: s for m, s in first.items() if not any(m in o for o in others)}
    # A stable sort keeps a key's repeats together.
    ordered = sorted(sources, key=lambda sw: len(sw[0]))
    if op == "inter":
        (smallest, w0), rest = ordered[0], _runs(ordered[1:])
        result = {}
        for member, score in smallest.items():
            value = _weighted(score, w0)
            for other, w, times in rest:
                if other is smallest:
                    other_score = score
                else:
                    other_score = other.get(member)
                    if other_score is None:
                        break
                # as Redis: only the first set's NaN (0 * inf) becomes 0; here
                # SUM turns a NaN total into 0 and MIN/MAX keep the other side
                if times == 1:
                    value = aggregate(value, other_score * w)
                else:
                    value = _repeated(aggregate, value, other_score * w, times)
            else:
                result[member] = value
        return result
    union: Dict[bytes, float] = {}
    for scores, w, times in _runs(ordered):
        for member, score in scores.items():
            value = _weighted(score, w)
            old = union.get(member)
            if times == 1:
                union[member] = value if old is None else aggregate(old, value)
            elif old is None:
                union[member] = _repeated(aggregate, value, value, times - 1)
            else:
                union[member] = _repeated(aggregate, old, value, times)
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
