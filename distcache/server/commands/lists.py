"""List commands over ``collections.deque`` values, blocking pops included."""
from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Any, Callable, List, Optional, Tuple

from ...protocol import NULL_ARRAY, OK, Raw
from ..errors import CommandError, NO_SUCH_KEY, SYNTAX, WRONGTYPE
from ..keyspace import TYPE_NAMES
from ..notify import LIST, delete_if_empty, notify
from ..types.blocking import block, cannot_block, parse_timeout, signal_ready
from .args import INT64_MIN, to_int
from .hashes import pop_count
from .table import command

TYPE_NAMES[deque] = "list"

_LIST = dict(group="list")
_SIDES = {b"LEFT": True, b"RIGHT": False}


def _list(db: Any, key: bytes, counted: bool = False) -> Optional[deque]:
    return db.get_typed(key, deque) if counted else db.peek_typed(key, deque)


def index_range(start: int, stop: int, length: int) -> Optional[Tuple[int, int]]:
    """Redis's normalisation of an inclusive (start, stop) range; None if empty."""
    if start < 0:
        start += length
    if stop < 0:
        stop += length
    if start < 0:
        start = 0
    if start > stop or start >= length:
        return None
    return start, min(stop, length - 1)


def parse_side(arg: bytes) -> bool:
    """LEFT -> True, RIGHT -> False."""
    side = _SIDES.get(arg.upper())
    if side is None:
        raise CommandError(SYNTAX)
    return side


def list_pop(db: Any, key: bytes, lst: deque, left: bool, count: int,
             announce: bool = True) -> List[bytes]:
    """Pop up to ``count`` elements from one end; deletes the key once empty.
    ``announce`` False leaves the events and the deletion to :func:`announce_pop`
    (LMOVE's order)."""
    pop = lst.popleft if left else lst.pop
    out = [pop() for _ in range(min(count, len(lst)))]
    db.modified(key)
    if announce:
        announce_pop(db, key, lst, left)  # deletes an emptied list
    return out


def announce_pop(db: Any, key: bytes, lst: deque, left: bool) -> None:
    """The events of a pop, and the emptied list's deletion between them."""
    notify(db, LIST, b"lpop" if left else b"rpop", key)
    delete_if_empty(db, key, lst)


def list_push(c: Any, key: bytes, values: List[bytes], left: bool,
              lst: Optional[deque] = None) -> int:
    """Push ``values`` one by one (LPUSH a b -> b a); creates the key if needed."""
    db = c.db
    if lst is None:
        lst = deque()
        db.set(key, lst)
    if left:
        lst.extendleft(values)
    else:
        lst.extend(values)
    db.modified(key)
    notify(db, LIST, b"lpush" if left else b"rpush", key)
    if db.blocking:
        signal_ready(c, db, key)
    return len(lst)


# -- push / pop --------------------------------------------------------------------------

def _push_generic(c: Any, args: List[bytes], left: bool, existing_only: bool) -> int:
    lst = _list(c.db, args[1])
    if lst is None and existing_only:
        return 0
    return list_push(c, args[1], args[2:], left, lst)


@command("lpush", -3, "write denyoom fast", (1, 1, 1), **_LIST)
def lpush(c: Any, args: List[bytes]) -> Any:
    """Prepend elements to a list."""
    return _push_generic(c, args, True, False)


@command("rpush", -3, "write denyoom fast", (1, 1, 1), **_LIST)
def rpush(c: Any, args: List[bytes]) -> Any:
    """Append elements to a list."""
    return _push_generic(c, args, False, False)


@command("lpushx", -3, "write denyoom fast", (1, 1, 1), since="2.2.0", **_LIST)
def lpushx(c: Any, args: List[bytes]) -> Any:
    """Prepend elements only if the list exists."""
    return _push_generic(c, args, True, True)


@command("rpushx", -3, "write denyoom fast", (1, 1, 1), since="2.2.0", **_LIST)
def rpushx(c: Any, args: List[bytes]) -> Any:
    """Append elements only if the list exists."""
    return _push_generic(c, args, False, True)


def _pop_generic(c: Any, args: List[bytes], left: bool) -> Any:
    if len(args) > 3:
        raise CommandError(f"ERR wrong number of arguments for '{args[0].decode().lower()}' "
                           "command")
    count = pop_count(args)
    db = c.db
    lst = _list(db, args[1])
    if lst is None:
        return None if count is None else NULL_ARRAY
    if count is None:
        return list_pop(db, args[1], lst, left, 1)[0]
    if count == 0:
        return []
    return list_pop(db, args[1], lst, left, count)


@command("lpop", -2, "write fast", (1, 1, 1), **_LIST)
def lpop(c: Any, args: List[bytes]) -> Any:
    """Remove and return the first elements of a list."""
    return _pop_generic(c, args, True)


@command("rpop", -2, "write fast", (1, 1, 1), **_LIST)
def rpop(c: Any, args: List[bytes]) -> Any:
    """Remove and return the last elements of a list."""
    return _pop_generic(c, args, False)


# -- reads -------------------------------------------------------------------------------

@command("llen", 2, "readonly fast", (1, 1, 1), **_LIST)
def llen(c: Any, args: List[bytes]) -> Any:
    """The length of a list."""
    lst = _list(c.db, args[1], counted=True)
    return 0 if lst is None else len(lst)


def bulk_array(items: List[bytes]) -> Raw:
    """An array of bulk strings, encoded here in one pass (the same in RESP2 and 3)."""
    return Raw(b"*%d\r\n%s" % (len(items), b"".join(
        [b"$%d\r\n%s\r\n" % (len(item), item) for item in items])))


def slice_deque(lst: deque, start: int, stop: int) -> List[bytes]:
    """Elements [start, stop] inclusive, walking from the nearer end."""
    n = len(lst)
    if start <= n - 1 - stop:
        return list(islice(lst, start, stop + 1))
    out = list(islice(reversed(lst), n - 1 - stop, n - start))
    out.reverse()
    return out


@command("lrange", 4, "readonly", (1, 1, 1), complexity="O(S+N)", **_LIST)
def lrange(c: Any, args: List[bytes]) -> Any:
    """A range of elements of a list."""
    start, stop = to_int(args[2]), to_int(args[3])
    lst = _list(c.db, args[1], counted=True)
    if lst is None:
        return []
    span = index_range(start, stop, len(lst))
    return [] if span is None else bulk_array(slice_deque(lst, *span))


def _index(lst: deque, arg: bytes) -> Optional[int]:
    index = to_int(arg)
    if index < 0:
        index += len(lst)
    return index if 0 <= index < len(lst) else None


@command("lindex", 3, "readonly", (1, 1, 1), complexity="O(N)", **_LIST)
def lindex(c: Any, args: List[bytes]) -> Any:
    """An element of a list by its index."""
    lst = _list(c.db, args[1], counted=True)
    if lst is None:
        return None
    index = _index(lst, args[2])
    return None if index is None else lst[index]


@command("lset", 4, "write denyoom", (1, 1, 1), complexity="O(N)", **_LIST)
def lset(c: Any, args: List[bytes]) -> Any:
    """Set the element at an index."""
    db = c.db
    lst = _list(db, args[1])
    if lst is None:
        raise CommandError(NO_SUCH_KEY)
    index = _index(lst, args[2])
    if index is None:
        raise CommandError("ERR index out of range")
    lst[index] = args[3]
    db.modified(args[1])
    notify(db, LIST, b"lset", args[1])
    return OK


def _rebuild(lst: deque, keep: List[bytes]) -> None:
    lst.clear()
    lst.extend(keep)


@command("lrem", 4, "write", (1, 1, 1), complexity="O(N+M)", **_LIST)
def lrem(c: Any, args: List[bytes]) -> Any:
    """Remove occurrences of an element (count > 0: from the head, < 0: from the tail)."""
    count = to_int(args[2])
    db = c.db
    lst = _list(db, args[1])
    if lst is None:
        return 0
    element = args[3]
    if count:
        removed = _remove_from_end(lst, element, abs(count), count > 0)
    else:
        removed = 0
        keep: List[bytes] = []
        for item in lst:
            if item == element:
                removed += 1
            else:
                keep.append(item)
        if removed:
            _rebuild(lst, keep)
    if removed:
        db.modified(args[1])
        notify(db, LIST, b"lrem", args[1])
        delete_if_empty(db, args[1], lst)
    return removed


def _remove_from_end(lst: deque, element: bytes, limit: int, left: bool) -> int:
    """Remove the first ``limit`` occurrences counted from one end.

    As Redis, it walks only as far as the last occurrence it removes and
    rewrites only that stretch: LREM key 1 x with x near the head of a long
    list costs O(position), not O(length)."""
    found = 0
    last = -1
    for i, item in enumerate(lst if left else reversed(lst)):
        if item == element:
            found += 1
            last = i
            if found == limit:
                break
    if found:
        pop = lst.popleft if left else lst.pop
        keep = [item for item in [pop() for _ in range(last + 1)] if item != element]
        keep.reverse()
        if left:
            lst.extendleft(keep)
        else:
            lst.extend(keep)
    return found


@command("ltrim", 4, "write", (1, 1, 1), complexity="O(N)", **_LIST)
def ltrim(c: Any, args: List[bytes]) -> Any:
    """Keep only a range of a list."""
    start, stop = to_int(args[2]), to_int(args[3])
    db = c.db
    lst = _list(db, args[1])
    if lst is None:
        return OK
    span = index_range(start, stop, len(lst))
    if span is None:
        lst.clear()
    else:
        start, stop = span
        drop_tail = len(lst) - 1 - stop
        if start + drop_tail > stop - start + 1:
            _rebuild(lst, slice_deque(lst, start, stop))
        else:
            for _ in range(start):
                lst.popleft()
            for _ in range(drop_tail):
                lst.pop()
    db.modified(args[1])
    notify(db, LIST, b"ltrim", args[1])
    delete_if_empty(db, args[1], lst)
    return OK


@command("linsert", 5, "write denyoom", (1, 1, 1), since="2.2.0", complexity="O(N)", **_LIST)
def linsert(c: Any, args: List[bytes]) -> Any:
    """Insert an element before or after a pivot."""
    where = args[2].upper()
    if where not in (b"BEFORE", b"AFTER"):
        raise CommandError(SYNTAX)
    db = c.db
    lst = _list(db, args[1])
    if lst is None:
        return 0
    try:
        index = lst.index(args[3])
    except ValueError:
        return -1
    lst.insert(index if where == b"BEFORE" else index + 1, args[4])
    db.modified(args[1])
    notify(db, LIST, b"linsert", args[1])
    return len(lst)


@command("lpos", -3, "readonly", (1, 1, 1), since="6.0.6", complexity="O(N)", **_LIST)
def lpos(c: Any, args: List[bytes]) -> Any:
    """Positions of an element (RANK, COUNT, MAXLEN)."""
    rank, count, maxlen = 1, None, 0
    i = 3
    while i < len(args):
        opt = args[i].upper()
        if i + 1 >= len(args) or opt not in (b"RANK", b"COUNT", b"MAXLEN"):
            raise CommandError(SYNTAX)
        if opt == b"RANK":
            value = to_int(args[i + 1])
            if value == 0:
                raise CommandError(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
                    "second ... or use negative to start from the end of the list")
            rank = -1 if value == INT64_MIN else value
        else:
            error = f"ERR {opt.decode()} can't be negative"
            value = to_int(args[i + 1], error)
            if value < 0:
                raise CommandError(error)
            if opt == b"COUNT":
                count = value
            else:
                maxlen = value
        i += 2
    lst = _list(c.db, args[1], counted=True)
    if lst is None:
        return None if count is None else []
    element = args[2]
    n = len(lst)
    source = enumerate(lst) if rank > 0 else ((n - 1 - j, x) for j, x in enumerate(reversed(lst)))
    if maxlen:
        source = islice(source, maxlen)
    skip = abs(rank) - 1
    want = count if count else (n if count == 0 else 1)
    found: List[int] = []
    for pos, item in source:
        if item == element:
            if skip:
                skip -= 1
                continue
            found.append(pos)
            if len(found) >= want:
                break
    if count is None:
        return found[0] if found else None
    return found


# -- moves and multi-key pops ------------------------------------------------------------

def _move(c: Any, src: bytes, dst: bytes, from_left: bool, to_left: bool,
          lst: deque) -> Tuple[bytes, List[List[bytes]]]:
    """Pop from ``src`` and push onto ``dst`` (checked to be a list first)."""
    db = c.db
    _list(db, dst)  # WRONGTYPE before anything moves
    # As Redis: the push's events, then the pop's (and the source's deletion).
    if src == dst:  # a rotation: the list never empties, so the key (and TTL) stays
        value = lst.popleft() if from_left else lst.pop()
        list_push(c, dst, [value], to_left, lst)
    else:
        value = list_pop(db, src, lst, from_left, 1, announce=False)[0]
        list_push(c, dst, [value], to_left, _list(db, dst))
    announce_pop(db, src, lst, from_left)
    sides = (b"LEFT" if from_left else b"RIGHT", b"LEFT" if to_left else b"RIGHT")
    return value, [[b"LMOVE", src, dst, *sides]]


def _lmove_generic(c: Any, src: bytes, dst: bytes, from_left: bool, to_left: bool) -> Any:
    lst = _list(c.db, src)
    if lst is None:
        return None
    value, rewrite = _move(c, src, dst, from_left, to_left, lst)
    c.rewrite = rewrite
    return value


@command("lmove", 5, "write denyoom", (1, 2, 1), since="6.2.0", **_LIST)
def lmove(c: Any, args: List[bytes]) -> Any:
    """Pop from one list and push onto another."""
    return _lmove_generic(c, args[1], args[2], parse_side(args[3]), parse_side(args[4]))


@command("rpoplpush", 3, "write denyoom", (1, 2, 1), since="1.2.0", **_LIST)
def rpoplpush(c: Any, args: List[bytes]) -> Any:
    """Pop the tail of a list and push it onto the head of another."""
    return _lmove_generic(c, args[1], args[2], False, True)


def pop_rewrite(cmd_left: bytes, cmd_right: bytes, left: bool, key: bytes,
                count: Optional[int]) -> List[List[bytes]]:
    cmd = [cmd_left if left else cmd_right, key]
    if count is not None:
        cmd.append(b"%d" % count)
    return [cmd]


def _pop_server(c: Any, left: bool, count: Optional[int], nested: bool
                ) -> Callable[[bytes, deque], Tuple[Any, List[List[bytes]]]]:
    """What BLPOP/LMPOP do to a non-empty list: pop and build the reply."""

    def serve(key: bytes, lst: deque) -> Tuple[Any, List[List[bytes]]]:
        popped = list_pop(c.db, key, lst, left, count or 1)
        reply = [key, popped] if nested else [key, popped[0]]
        return reply, pop_rewrite(b"LPOP", b"RPOP", left, key,
                                  len(popped) if nested else None)

    return serve


def serve_or_block(c: Any, keys: List[bytes], kind: type, timeout: Optional[float],
                   serve: Callable[[bytes, Any], Tuple[Any, List[List[bytes]]]],
                   empty_reply: Any = NULL_ARRAY, timeout_reply: Any = NULL_ARRAY) -> Any:
    """Serve from the first non-empty key; else block (``timeout`` None: never block)."""
    db = c.db
    for key in keys:
        value = db.peek(key)
        if value is None:
            continue
        if value.__class__ is not kind:
            raise CommandError(WRONGTYPE)
        reply, c.rewrite = serve(key, value)
        return reply
    if timeout is None or cannot_block(c):
        return empty_reply
    return block(c, keys, kind, timeout, serve, timeout_reply)


def _blocking_pop(c: Any, args: List[bytes], left: bool) -> Any:
    timeout = parse_timeout(args[-1])
    return serve_or_block(c, args[1:-1], deque, timeout, _pop_server(c, left, None, False))


@command("blpop", -3, "write noscript blocking", (1, -2, 1), since="2.0.0", **_LIST)
def blpop(c: Any, args: List[bytes]) -> Any:
    """Pop the first element of the first non-empty list, blocking until one exists."""
    return _blocking_pop(c, args, True)


@command("brpop", -3, "write noscript blocking", (1, -2, 1), since="2.0.0", **_LIST)
def brpop(c: Any, args: List[bytes]) -> Any:
    """Pop the last element of the first non-empty list, blocking until one exists."""
    return _blocking_pop(c, args, False)


def _blmove_generic(c: Any, src: bytes, dst: bytes, from_left: bool, to_left: bool,
                    timeout_arg: bytes) -> Any:
    timeout = parse_timeout(timeout_arg)

    def serve(key: bytes, lst: deque) -> Tuple[Any, List[List[bytes]]]:
        return _move(c, src, dst, from_left, to_left, lst)

    return serve_or_block(c, [src], deque, timeout, serve, empty_reply=None)


@command("blmove", 6, "write denyoom noscript blocking", (1, 2, 1), since="6.2.0", **_LIST)
def blmove(c: Any, args: List[bytes]) -> Any:
    """LMOVE that blocks until the source has an element."""
    return _blmove_generic(c, args[1], args[2], parse_side(args[3]), parse_side(args[4]),
                           args[5])


@command("brpoplpush", 4, "write denyoom noscript blocking", (1, 2, 1), since="2.2.0",
         **_LIST)
def brpoplpush(c: Any, args: List[bytes]) -> Any:
    """RPOPLPUSH that blocks until the source has an element."""
    return _blmove_generic(c, args[1], args[2], False, True, args[3])


def parse_mpop(args: List[bytes], numkeys_at: int, sides: dict
               ) -> Tuple[List[bytes], Any, Optional[int]]:
    """numkeys key... <side> [COUNT n] of LMPOP/ZMPOP: (keys, side, count or None)."""
    numkeys = to_int(args[numkeys_at], "ERR numkeys should be greater than 0")
    if numkeys <= 0:
        raise CommandError("ERR numkeys should be greater than 0")
    side_at = numkeys_at + numkeys + 1
    if side_at >= len(args):
        raise CommandError(SYNTAX)
    side = sides.get(args[side_at].upper())
    if side is None:
        raise CommandError(SYNTAX)
    count = None
    i = side_at + 1
    while i < len(args):
        if args[i].upper() == b"COUNT" and i + 1 < len(args) and count is None:
            count = to_int(args[i + 1], "ERR count should be greater than 0")
            if count <= 0:
                raise CommandError("ERR count should be greater than 0")
            i += 2
        else:
            raise CommandError(SYNTAX)
    return args[numkeys_at + 1:side_at], side, count


def _lmpop_generic(c: Any, args: List[bytes], numkeys_at: int) -> Any:
    keys, left, count = parse_mpop(args, numkeys_at, _SIDES)
    timeout = parse_timeout(args[1]) if numkeys_at == 2 else None
    return serve_or_block(c, keys, deque, timeout, _pop_server(c, left, count or 1, True))


@command("lmpop", -4, "write movablekeys", since="7.0.0", complexity="O(N+M)", **_LIST)
def lmpop(c: Any, args: List[bytes]) -> Any:
    """Pop elements from the first non-empty list of several."""
    return _lmpop_generic(c, args, 1)


@command("blmpop", -5, "write blocking movablekeys", since="7.0.0", complexity="O(N+M)",
         **_LIST)
def blmpop(c: Any, args: List[bytes]) -> Any:
    """LMPOP that blocks until one of the lists has elements."""
    return _lmpop_generic(c, args, 2)
