"""Set commands over Python ``set`` values of bytes."""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Set

from ...protocol import RespSet
from ..errors import CommandError, SYNTAX
from ..keyspace import TYPE_NAMES
from ..notify import GENERIC, SET, delete_if_empty, notify
from ..scan import parse_cursor
from .args import to_int
from .hashes import (INTSET_ENTRIES, check_repeats, parse_rand_count, pop_count,
                     random_element, random_picks, repeated_picks, scan_container)
from .table import command

TYPE_NAMES[set] = "set"

_SET = dict(group="set")


def _set(db: Any, key: bytes, counted: bool = False) -> Optional[Set[bytes]]:
    return db.get_typed(key, set) if counted else db.peek_typed(key, set)


def store_result(c: Any, key: bytes, value: Any, event: bytes, cls: int = SET) -> int:
    """Store a computed container (SINTERSTORE, ZUNIONSTORE...) announcing ``event``;
    empty deletes the key."""
    db = c.db
    if value:
        db.set(key, value)
        notify(db, cls, event, key)
    elif db.delete(key):
        notify(db, GENERIC, b"del", key)
    return len(value)


# -- membership --------------------------------------------------------------------------

@command("sadd", -3, "write denyoom fast", (1, 1, 1), **_SET)
def sadd(c: Any, args: List[bytes]) -> Any:
    """Add members; returns how many were new."""
    db = c.db
    s = _set(db, args[1])
    if s is None:
        s = set()
        db.set(args[1], s)
    before = len(s)
    s.update(args[2:])
    added = len(s) - before
    if added:
        db.modified(args[1])
        notify(db, SET, b"sadd", args[1])
    return added


@command("srem", -3, "write fast", (1, 1, 1), **_SET)
def srem(c: Any, args: List[bytes]) -> Any:
    """Remove members; returns how many existed."""
    db = c.db
    s = _set(db, args[1])
    if s is None:
        return 0
    before = len(s)
    s.difference_update(args[2:])
    removed = before - len(s)
    if removed:
        db.modified(args[1])
        notify(db, SET, b"srem", args[1])
        delete_if_empty(db, args[1], s)
    return removed


@command("sismember", 3, "readonly fast", (1, 1, 1), **_SET)
def sismember(c: Any, args: List[bytes]) -> Any:
    """Whether a member is in the set."""
    s = _set(c.db, args[1], True)
    return int(s is not None and args[2] in s)


@command("smismember", -3, "readonly fast", (1, 1, 1), since="6.2.0", **_SET)
def smismember(c: Any, args: List[bytes]) -> Any:
    """Membership of several members."""
    s = _set(c.db, args[1], True) or set()
    return [int(m in s) for m in args[2:]]


@command("smembers", 2, "readonly", (1, 1, 1), complexity="O(N)", **_SET)
def smembers(c: Any, args: List[bytes]) -> Any:
    """All members (a set reply in RESP3)."""
    return set_reply(_set(c.db, args[1], True) or ())


@command("scard", 2, "readonly fast", (1, 1, 1), **_SET)
def scard(c: Any, args: List[bytes]) -> Any:
    """The number of members."""
    s = _set(c.db, args[1], True)
    return 0 if s is None else len(s)


@command("smove", 4, "write fast", (1, 2, 1), **_SET)
def smove(c: Any, args: List[bytes]) -> Any:
    """Move a member from one set to another."""
    db = c.db
    src_key, dst_key, member = args[1], args[2], args[3]
    if db.peek(src_key) is None:
        return 0
    src = _set(db, src_key)
    dst = _set(db, dst_key)
    if src is dst:
        return int(member in src)  # type: ignore[operator]
    if member not in src:  # type: ignore[operator]
        return 0
    src.discard(member)  # type: ignore[union-attr]
    db.modified(src_key)
    notify(db, SET, b"srem", src_key)
    delete_if_empty(db, src_key, src)
    if dst is None:
        dst = set()
        db.set(dst_key, dst)
    if member not in dst:
        dst.add(member)
        notify(db, SET, b"sadd", dst_key)
    db.modified(dst_key)
    return 1


# -- random access -----------------------------------------------------------------------

@command("spop", -2, "write fast", (1, 1, 1), **_SET)
def spop(c: Any, args: List[bytes]) -> Any:
    """Remove and return random members; logged as SREM (or DEL when emptied)."""
    if len(args) > 3:
        raise CommandError(SYNTAX)
    count = pop_count(args)
    db = c.db
    key = args[1]
    s = _set(db, key)
    if s is None or count == 0:
        return None if count is None else RespSet()
    if count is None:
        popped = [random_element(s, len(s))]
    else:
        popped = random_picks(s, count) if count < len(s) else list(set_reply(s))
    s.difference_update(popped)
    db.modified(key)
    notify(db, SET, b"spop", key)
    delete_if_empty(db, key, s)
    c.rewrite = [[b"DEL", key]] if not s else [[b"SREM", key, *popped]]
    return popped[0] if count is None else RespSet(popped)


@command("srandmember", -2, "readonly", (1, 1, 1), complexity="O(N)", **_SET)
def srandmember(c: Any, args: List[bytes]) -> Any:
    """Random members (count < 0 allows repeats)."""
    if len(args) > 3:
        raise CommandError(SYNTAX)
    if len(args) == 2:
        s = _set(c.db, args[1], True)
        return random_element(s, len(s)) if s else None
    count = parse_rand_count(args[2])
    s = _set(c.db, args[1], True)
    if not s or count == 0:
        return []
    check_repeats(c, count)
    if count < 0:
        return repeated_picks(c, s, -count)
    return random_picks(s, count) if count < len(s) else list(set_reply(s))


# -- algebra -----------------------------------------------------------------------------

def _sets_of(c: Any, keys: List[bytes]) -> List[Set[bytes]]:
    """The sets at ``keys`` (missing ones empty), type-checking every key first."""
    db = c.db
    return [_set(db, key, True) or set() for key in keys]


def distinct(sources: List[Any]) -> List[Any]:
    """``sources`` without repeats of the same object (a key named again), in order:
    intersections, unions and differences do not change, and a key named a
    thousand times costs one pass instead of a thousand."""
    return list({id(s): s for s in sources}.values())


def _inter(sets: List[Set[bytes]]) -> Set[bytes]:
    ordered = sorted(distinct(sets), key=len)
    result = set(ordered[0])
    for other in ordered[1:]:
        if not result:
            break
        result &= other
    return result


def _union(sets: List[Set[bytes]]) -> Set[bytes]:
    return set().union(*distinct(sets))


def _diff(sets: List[Set[bytes]]) -> Set[bytes]:
    return sets[0].difference(*distinct(sets[1:]))


def _algebra(c: Any, keys: List[bytes], op: Callable[[List[Set[bytes]]], Set[bytes]],
             dst: Optional[bytes] = None, event: bytes = b"") -> Any:
    result = op(_sets_of(c, keys))
    if dst is None:
        return set_reply(result)
    return store_result(c, dst, result, event)


@command("sinter", -2, "readonly", (1, -1, 1), complexity="O(N*M)", **_SET)
def sinter(c: Any, args: List[bytes]) -> Any:
    """The intersection of sets."""
    return _algebra(c, args[1:], _inter)


@command("sunion", -2, "readonly", (1, -1, 1), complexity="O(N)", **_SET)
def sunion(c: Any, args: List[bytes]) -> Any:
    """The union of sets."""
    return _algebra(c, args[1:], _union)


@command("sdiff", -2, "readonly", (1, -1, 1), complexity="O(N)", **_SET)
def sdiff(c: Any, args: List[bytes]) -> Any:
    """The members of the first set that are in none of the others."""
    return _algebra(c, args[1:], _diff)


@command("sinterstore", -3, "write denyoom", (1, -1, 1), complexity="O(N*M)", **_SET)
def sinterstore(c: Any, args: List[bytes]) -> Any:
    """Store the intersection of sets."""
    return _algebra(c, args[2:], _inter, args[1], b"sinterstore")


@command("sunionstore", -3, "write denyoom", (1, -1, 1), complexity="O(N)", **_SET)
def sunionstore(c: Any, args: List[bytes]) -> Any:
    """Store the union of sets."""
    return _algebra(c, args[2:], _union, args[1], b"sunionstore")


@command("sdiffstore", -3, "write denyoom", (1, -1, 1), complexity="O(N)", **_SET)
def sdiffstore(c: Any, args: List[bytes]) -> Any:
    """Store the difference of sets."""
    return _algebra(c, args[2:], _diff, args[1], b"sdiffstore")


def intersection_size(sources: List[Any], limit: int) -> int:
    """How many members all ``sources`` share, counting at most ``limit`` (0: no limit)."""
    sources = sorted(distinct(sources), key=len)
    count = 0
    others = sources[1:]
    for member in sources[0]:
        if all(member in other for other in others):
            count += 1
            if count == limit:
                break
    return count


def parse_numkeys(args: List[bytes], at: int) -> List[bytes]:
    """The keys of ``numkeys key...`` (SINTERCARD, ZUNION...), with Redis's errors."""
    numkeys = to_int(args[at], "ERR numkeys should be greater than 0")
    if numkeys <= 0:
        raise CommandError("ERR numkeys should be greater than 0")
    if numkeys > len(args) - at - 1:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    return args[at + 1:at + 1 + numkeys]


@command("sintercard", -3, "readonly movablekeys", since="7.0.0", complexity="O(N*M)",
         **_SET)
def sintercard(c: Any, args: List[bytes]) -> Any:
    """The size of the intersection of sets (LIMIT stops counting early)."""
    keys = parse_numkeys(args, 1)
    limit = 0
    i = 2 + len(keys)
    while i < len(args):
        if args[i].upper() == b"LIMIT" and i + 1 < len(args):
            limit = to_int(args[i + 1], "ERR LIMIT can't be negative")
            if limit < 0:
                raise CommandError("ERR LIMIT can't be negative")
            i += 2
        else:
            raise CommandError(SYNTAX)
    return intersection_size(_sets_of(c, keys), limit)


@command("sscan", -3, "readonly", (1, 1, 1), since="2.8.0",
         complexity="O(1) per call, O(N) per full iteration", **_SET)
def sscan(c: Any, args: List[bytes]) -> Any:
    """Iterate over members with a cursor."""
    parse_cursor(args[2])
    s = _set(c.db, args[1], True)
    return scan_container(c, args, s, None, s is not None and intset_order(s))


def intset_order(members: Any) -> Optional[List[bytes]]:
    """A small all-integer set in the order Redis keeps it (a sorted intset), or None."""
    if len(members) > INTSET_ENTRIES:
        return None
    try:
        return [m for _, m in sorted((to_int(m), m) for m in members)]
    except CommandError:
        return None


def set_reply(members: Any) -> RespSet:
    """Members in Redis's order: intset order when it would be one, else hash order."""
    ordered = intset_order(members)
    return RespSet(members if ordered is None else ordered)
