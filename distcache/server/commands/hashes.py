"""Hash commands over ``dict`` values (field bytes -> value bytes)."""
from __future__ import annotations

import random
from collections import OrderedDict
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ...protocol import OK, Raw, encode_reply
from ..errors import CommandError, OVERFLOW, SYNTAX
from ..keyspace import TYPE_NAMES
from ..notify import HASH, delete_if_empty, notify
from ..scan import ScanArgs, parse_cursor
from .args import INT64_MAX, INT64_MIN, format_decimal, to_decimal, to_int
from .table import command

TYPE_NAMES[dict] = "hash"

_HASH = dict(group="hash")
#: Redis 7.0's default limits of its compact encodings (listpack, intset), as
#: compiled in: redis-server without a config file keeps hashes of up to 512
#: entries in a listpack (the sample redis.conf sets 128), sorted sets up to 128.
HASH_LISTPACK_ENTRIES = 512
ZSET_LISTPACK_ENTRIES = 128
LISTPACK_VALUE = 64
INTSET_ENTRIES = 512
_RANGE_MAX = (1 << 63) - 1
_POSITIVE = "ERR value is out of range, must be positive"


def _hash(db: Any, key: bytes, counted: bool = False) -> Optional[Dict[bytes, bytes]]:
    return db.get_typed(key, dict) if counted else db.peek_typed(key, dict)


def _hash_or_new(db: Any, key: bytes) -> Dict[bytes, bytes]:
    h = _hash(db, key)
    if h is None:
        h = {}
        db.set(key, h)
    return h


# -- shared by HSCAN/SSCAN/ZSCAN and the RAND* commands ----------------------------------

def scan_container(c: Any, args: List[bytes], container: Any,
                   text: Optional[Callable[[Any], bytes]], compact: Any) -> Any:
    """One page of HSCAN/SSCAN/ZSCAN over a dict (with ``text`` rendering its values)
    or a set (``text`` None).

    A ``compact`` container (one Redis would keep as a listpack or intset) is
    returned whole whatever the cursor and COUNT, with cursor 0, as Redis does;
    ``compact`` may be the list of its elements in Redis's order. The caller has
    read the cursor before the key (:func:`parse_cursor`); the options are read
    only for a key that exists, as Redis does.
    """
    if container is None:
        return [b"0", []]
    opts = ScanArgs(args, 3)
    if compact:
        cursor, batch = 0, compact if compact.__class__ is list else list(container)
    else:
        cursor, batch = c.server.scan_cursors.page(opts.cursor, lambda: list(container),
                                                   opts.count)
    match = opts.match
    out: List[Any] = []
    for element in batch:
        if element not in container or (match is not None and not match(element)):
            continue
        out.append(element)
        if text is not None:
            out.append(text(container[element]))
    return [b"%d" % cursor, out]


def parse_rand_count(arg: bytes) -> int:
    """The count of HRANDFIELD/SRANDMEMBER/ZRANDMEMBER with Redis's range error."""
    count = to_int(arg)
    if count < -_RANGE_MAX:
        raise CommandError("ERR value is out of range, value must between "
                           "-9223372036854775807 and 9223372036854775807")
    return count


def pop_count(args: List[bytes]) -> Optional[int]:
    """The optional count of LPOP/SPOP/ZPOPMIN (``args[2]``): None if absent."""
    if len(args) < 3:
        return None
    count = to_int(args[2], _POSITIVE)
    if count < 0:
        raise CommandError(_POSITIVE)
    return count


def rand_with_count(c: Any, args: List[bytes], fetch: Callable[[], Any], word: bytes,
                    extra: Callable[[Any, Any], Any]) -> Any:
    """HRANDFIELD/ZRANDMEMBER: one random key without count, else random picks.
    ``fetch()`` gives the container (a dict), once the arguments are checked, as
    Redis does; ``extra(container, key)`` is what is sent with the key after ``word``."""
    if len(args) == 2:
        container = fetch()
        return random_element(container, len(container)) if container else None
    count = parse_rand_count(args[2])
    if len(args) > 4 or (len(args) == 4 and args[3].upper() != word):
        raise CommandError(SYNTAX)
    with_extra = len(args) == 4
    if with_extra and not -(_RANGE_MAX // 2) <= count <= _RANGE_MAX // 2:  # C division
        raise CommandError("ERR value is out of range")
    container = fetch()
    if not container or count == 0:
        return []
    check_repeats(c, count, with_extra)
    if count < 0:
        return repeated_picks(c, container, -count, extra if with_extra else None)
    picks = random_picks(container, count)
    return pairs_reply(c, [(k, extra(container, k)) for k in picks]) if with_extra else picks


def check_repeats(c: Any, count: int, pairs: bool = False) -> None:
    """Refuse a negative count whose reply could not fit ``proto-max-bulk-len``.

    The reply of a negative count (repeats allowed) grows with the count, not
    the key, and is built whole before it is sent: Redis runs out of memory on
    ``SRANDMEMBER k -4611686018427387903``. Each element takes 16 bytes or more."""
    if count < 0 and -count * (32 if pairs else 16) > c.server.config["proto-max-bulk-len"]:
        raise CommandError("ERR value is out of range")


#: Picks encoded at a time by ``repeated_picks``.
_PICK_CHUNK = 8192


def repeated_picks(c: Any, container: Any, n: int,
                   extra: Optional[Callable[[Any, Any], Any]] = None) -> Raw:
    """The reply of a negative count: ``n`` random picks with repeats (and, with
    ``extra``, each pick's value), encoded a chunk at a time into one RESP bytes.

    A list of 2 million picks and its encoding took about 140 bytes a pick (280 MB,
    redis-server: 20 MB); chunks of encoded picks take what the reply takes. A
    container no larger than ``n`` is encoded once and its encodings picked from."""
    resp3 = c.resp3
    size = len(container)

    def encode(key: Any) -> bytes:
        if extra is None:
            return b"$%d\r\n%s\r\n" % (len(key), key)
        out = [b"*2\r\n"] if resp3 else []
        encode_reply(key, out, resp3)
        encode_reply(extra(container, key), out, resp3)
        return b"".join(out)

    if size <= n:
        pool = [encode(key) for key in container]
        choices = random.choices

        def chunk(k: int) -> bytes:
            return b"".join(choices(pool, k=k))
    elif n * 8 >= size:
        keys = list(container)

        def chunk(k: int) -> bytes:
            return b"".join(map(encode, random.choices(keys, k=k)))
    else:
        def chunk(k: int) -> bytes:
            return b"".join([encode(random_element(container, size)) for _ in range(k)])

    parts = [b"*%d\r\n" % (n if extra is None or resp3 else 2 * n)]
    for done in range(0, n, _PICK_CHUNK):
        parts.append(chunk(min(_PICK_CHUNK, n - done)))
    return Raw(b"".join(parts))


def random_picks(container: Any, count: int) -> List[Any]:
    """``count`` random elements of a dict or set: distinct if positive, with repeats
    if negative. A few picks from a large container cost O(count), not O(n)."""
    size = len(container)
    if count >= size:
        return list(container)
    if abs(count) * 8 < size:
        if count < 0:
            return [random_element(container, size) for _ in range(-count)]
        picked: Dict[Any, None] = {}
        while len(picked) < count:
            picked[random_element(container, size)] = None
        return list(picked)
    pool = list(container)
    if count < 0:
        return random.choices(pool, k=-count)
    return random.sample(pool, count)


#: Containers up to this size pick a random element by skipping through them.
_SKIP_LIMIT = 256
#: id(container) -> (container, snapshot of its elements), for large containers.
_SNAPSHOTS: "OrderedDict[int, Tuple[Any, List[Any]]]" = OrderedDict()
_MAX_SNAPSHOTS = 8


def random_element(container: Any, size: int) -> Any:
    """One random element of a non-empty dict or set, in amortised O(1).

    Dicts and sets have no random access. Small ones are skipped through (C
    speed). Large ones are sampled from a snapshot of their elements,
    rejecting those no longer present; the snapshot is retaken once the
    container has shrunk or grown by half (or misses pile up), so SPOP in a
    loop costs O(1) per call on average. Elements added since the snapshot
    are not picked until it is retaken.
    """
    if size <= _SKIP_LIMIT:
        return next(islice(iter(container), random.randrange(size), None))
    entry = _SNAPSHOTS.get(id(container))
    if entry is None or entry[0] is not container \
            or not len(entry[1]) // 2 <= size <= 2 * len(entry[1]):
        entry = _snapshot(container)
    pool = entry[1]
    for _ in range(16):
        element = pool[random.randrange(len(pool))]
        if element in container:
            return element
    pool = _snapshot(container)[1]
    return pool[random.randrange(len(pool))]


def _snapshot(container: Any) -> Tuple[Any, List[Any]]:
    entry = (container, list(container))
    _SNAPSHOTS[id(container)] = entry
    _SNAPSHOTS.move_to_end(id(container))
    while len(_SNAPSHOTS) > _MAX_SNAPSHOTS:
        _SNAPSHOTS.popitem(last=False)
    return entry


def pairs_reply(c: Any, pairs: Iterable[Any]) -> List[Any]:
    """(a, b) pairs: nested in RESP3, flattened in RESP2 (HRANDFIELD/ZRANGE WITHSCORES)."""
    if c.resp3:
        return [[a, b] for a, b in pairs]
    return [x for pair in pairs for x in pair]


# -- writes ------------------------------------------------------------------------------

def _hset_generic(c: Any, args: List[bytes]) -> int:
    if len(args) % 2:
        raise CommandError(f"ERR wrong number of arguments for '{args[0].decode().lower()}' "
                           "command")
    db = c.db
    h = _hash_or_new(db, args[1])
    before = len(h)
    it = iter(args[2:])
    h.update(zip(it, it))
    db.modified(args[1])
    notify(db, HASH, b"hset", args[1])
    return len(h) - before


@command("hset", -4, "write denyoom fast", (1, 1, 1), since="2.0.0", **_HASH)
def hset(c: Any, args: List[bytes]) -> Any:
    """Set fields of a hash; returns how many were added."""
    return _hset_generic(c, args)


@command("hmset", -4, "write denyoom fast", (1, 1, 1), since="2.0.0", **_HASH)
def hmset(c: Any, args: List[bytes]) -> Any:
    """Set fields of a hash (deprecated form of HSET)."""
    _hset_generic(c, args)
    return OK


@command("hsetnx", 4, "write denyoom fast", (1, 1, 1), since="2.0.0", **_HASH)
def hsetnx(c: Any, args: List[bytes]) -> Any:
    """Set a field only if it does not exist."""
    db = c.db
    h = _hash(db, args[1])
    if h is not None and args[2] in h:
        return 0
    _hash_or_new(db, args[1])[args[2]] = args[3]
    db.modified(args[1])
    notify(db, HASH, b"hset", args[1])
    return 1


@command("hdel", -3, "write fast", (1, 1, 1), since="2.0.0", **_HASH)
def hdel(c: Any, args: List[bytes]) -> Any:
    """Delete fields; returns how many existed."""
    db = c.db
    h = _hash(db, args[1])
    if h is None:
        return 0
    removed = 0
    for field in args[2:]:
        if h.pop(field, None) is not None:
            removed += 1
    if removed:
        db.modified(args[1])
        notify(db, HASH, b"hdel", args[1])
        delete_if_empty(db, args[1], h)
    return removed


def _field_of(db: Any, key: bytes, field: bytes) -> Optional[bytes]:
    h = _hash(db, key)
    return None if h is None else h.get(field)


def _store_field(db: Any, key: bytes, field: bytes, value: bytes, event: bytes) -> None:
    _hash_or_new(db, key)[field] = value
    db.modified(key)
    notify(db, HASH, event, key)


@command("hincrby", 4, "write denyoom fast", (1, 1, 1), since="2.0.0", **_HASH)
def hincrby(c: Any, args: List[bytes]) -> Any:
    """Add an integer to a field's value."""
    delta = to_int(args[3])
    old = _field_of(c.db, args[1], args[2])
    current = 0 if old is None else to_int(old, "ERR hash value is not an integer")
    result = current + delta
    if not INT64_MIN <= result <= INT64_MAX:
        raise CommandError(OVERFLOW)
    _store_field(c.db, args[1], args[2], b"%d" % result, b"hincrby")
    return result


@command("hincrbyfloat", 4, "write denyoom fast", (1, 1, 1), since="2.6.0", **_HASH)
def hincrbyfloat(c: Any, args: List[bytes]) -> Any:
    """Add a float to a field's value; logged as an HSET of the result."""
    increment = to_decimal(args[3])
    if not increment.is_finite():
        raise CommandError("ERR value is NaN or Infinity")
    old = _field_of(c.db, args[1], args[2])
    current = to_decimal(b"0" if old is None else old, "ERR hash value is not a float")
    result = current + increment
    if not result.is_finite():
        raise CommandError("ERR increment would produce NaN or Infinity")
    text = format_decimal(result)
    _store_field(c.db, args[1], args[2], text, b"hincrbyfloat")
    c.rewrite = [[b"HSET", args[1], args[2], text]]
    return text


# -- reads -------------------------------------------------------------------------------

@command("hget", 3, "readonly fast", (1, 1, 1), since="2.0.0", **_HASH)
def hget(c: Any, args: List[bytes]) -> Any:
    """The value of a field."""
    h = _hash(c.db, args[1], True)
    return None if h is None else h.get(args[2])


@command("hmget", -3, "readonly fast", (1, 1, 1), since="2.0.0", **_HASH)
def hmget(c: Any, args: List[bytes]) -> Any:
    """The values of several fields (nil for missing ones)."""
    h = _hash(c.db, args[1], True) or {}
    return [h.get(field) for field in args[2:]]


@command("hexists", 3, "readonly fast", (1, 1, 1), since="2.0.0", **_HASH)
def hexists(c: Any, args: List[bytes]) -> Any:
    """Whether a field exists."""
    h = _hash(c.db, args[1], True)
    return int(h is not None and args[2] in h)


@command("hlen", 2, "readonly fast", (1, 1, 1), since="2.0.0", **_HASH)
def hlen(c: Any, args: List[bytes]) -> Any:
    """The number of fields."""
    h = _hash(c.db, args[1], True)
    return 0 if h is None else len(h)


@command("hstrlen", 3, "readonly fast", (1, 1, 1), since="3.2.0", **_HASH)
def hstrlen(c: Any, args: List[bytes]) -> Any:
    """The length of a field's value."""
    h = _hash(c.db, args[1], True)
    return 0 if h is None else len(h.get(args[2], b""))


@command("hgetall", 2, "readonly", (1, 1, 1), complexity="O(N)", since="2.0.0", **_HASH)
def hgetall(c: Any, args: List[bytes]) -> Any:
    """All fields and values (a map in RESP3)."""
    h = _hash(c.db, args[1], True)
    return {} if h is None else dict(h)


@command("hkeys", 2, "readonly", (1, 1, 1), complexity="O(N)", since="2.0.0", **_HASH)
def hkeys(c: Any, args: List[bytes]) -> Any:
    """All field names."""
    return list(_hash(c.db, args[1], True) or ())


@command("hvals", 2, "readonly", (1, 1, 1), complexity="O(N)", since="2.0.0", **_HASH)
def hvals(c: Any, args: List[bytes]) -> Any:
    """All values."""
    return list((_hash(c.db, args[1], True) or {}).values())


@command("hrandfield", -2, "readonly", (1, 1, 1), since="6.2.0", complexity="O(N)",
         **_HASH)
def hrandfield(c: Any, args: List[bytes]) -> Any:
    """Random fields (count < 0 allows repeats), optionally WITHVALUES."""
    return rand_with_count(c, args, lambda: _hash(c.db, args[1], True), b"WITHVALUES",
                           dict.__getitem__)


@command("hscan", -3, "readonly", (1, 1, 1), since="2.8.0",
         complexity="O(1) per call, O(N) per full iteration", **_HASH)
def hscan(c: Any, args: List[bytes]) -> Any:
    """Iterate over fields and values with a cursor."""
    parse_cursor(args[2])
    h = _hash(c.db, args[1], True)
    return scan_container(c, args, h, bytes, h is not None and listpack_sized(h.items()))


def listpack_sized(pairs: Any) -> bool:
    """Whether Redis would keep a hash of these (field, value) pairs in a listpack."""
    if len(pairs) > HASH_LISTPACK_ENTRIES:
        return False
    return all(len(a) <= LISTPACK_VALUE and len(b) <= LISTPACK_VALUE for a, b in pairs)
