"""String and counter commands: GET, SET and friends, INCR family, ranges."""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

from ...protocol import OK
from ...protocol.resp import BULK_HEADERS
from ..errors import CommandError, NOT_INTEGER, OVERFLOW, SYNTAX, WRONGTYPE, wrong_arity
from ..eviction import lru_clock
from ..keyspace import INLINE_SAFE, Database, now_ms
from ..notify import GENERIC, STRING as STRING_EVENTS, notify, with_events
from .args import INT64_MAX, INT64_MIN, format_decimal, to_decimal, to_int
from .table import RunHandler, command, runs_of

STRING = bytes
_STR = dict(group="string")


def _string_or_none(db: Any, key: bytes, counted: bool = True) -> Optional[bytes]:
    value = db.get(key) if counted else db.peek(key)
    if value is not None and value.__class__ is not bytes:
        raise CommandError(WRONGTYPE)
    return value


def check_size(c: Any, size: int) -> None:
    if size > c.server.config["proto-max-bulk-len"]:
        raise CommandError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")


# -- expiry options shared by SET, GETEX, SETEX -----------------------------------

def expire_deadline(c: Any, arg: bytes, unit_ms: int, absolute: bool, cmd: str) -> int:
    """Absolute deadline in ms for EX/PX/EXAT/PXAT ``arg``; Redis's error texts."""
    amount = to_int(arg)
    if amount <= 0 or (unit_ms == 1000 and amount > INT64_MAX // 1000):
        raise CommandError(f"ERR invalid expire time in '{cmd}' command")
    when = amount * unit_ms
    if not absolute:
        when += now_ms()
    if when > INT64_MAX:
        raise CommandError(f"ERR invalid expire time in '{cmd}' command")
    return when


_EXPIRE_UNITS = {b"EX": (1000, False), b"PX": (1, False), b"EXAT": (1000, True),
                 b"PXAT": (1, True)}


def parse_set_options(args: List[bytes], start: int, getex: bool
                      ) -> Tuple[set, Optional[Tuple[bytes, bytes]]]:
    """Flags and (unit, amount) of SET/GETEX options, as parseExtendedStringArguments."""
    flags: set = set()
    expire: Optional[Tuple[bytes, bytes]] = None
    i = start
    n = len(args)
    while i < n:
        opt = args[i].upper()
        has_next = i + 1 < n
        timed = expire is not None
        if opt == b"NX" and not getex and "XX" not in flags:
            flags.add("NX")
        elif opt == b"XX" and not getex and "NX" not in flags:
            flags.add("XX")
        elif opt == b"GET" and not getex:
            flags.add("GET")
        elif opt == b"KEEPTTL" and not getex and not timed:
            flags.add("KEEPTTL")
        elif opt == b"PERSIST" and getex and not timed:
            flags.add("PERSIST")
        elif opt in _EXPIRE_UNITS and has_next and "KEEPTTL" not in flags \
                and "PERSIST" not in flags and (expire is None or expire[0] == opt):
            expire = (opt, args[i + 1])
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    return flags, expire


# -- GET / SET ----------------------------------------------------------------------

@command("get", 2, "readonly fast", (1, 1, 1), **_STR)
def get(c: Any, args: List[bytes]) -> Any:
    """Get the value of a key."""
    value = c.db.get(args[1])
    if value is not None and value.__class__ is not bytes:
        raise CommandError(WRONGTYPE)
    return value


@runs_of("get")
def get_run(c: Any, commands: List[List[bytes]], start: int, out: List[bytes]) -> int:
    """GETs of string or missing keys: :func:`get` without its call."""
    db = c.db
    peek = db.data.get
    expires = db.expires
    # Database.get inlined (see INLINE_SAFE), with the LRU stamp where one is kept;
    # other subclasses (LFU) are called.
    cls = db.__class__
    lru = cls.lru
    inline = INLINE_SAFE["get"] and (cls is Database or lru is not None)
    tick = lru_clock() if lru is not None else 0
    name = commands[start][0]
    nil = b"_\r\n" if c.resp3 else b"$-1\r\n"
    ran = hits = misses = 0
    for args in commands[start:]:
        if len(args) != 2 or args[0] != name:
            break
        key = args[1]
        value = peek(key)
        if value is None:
            if inline:
                misses += 1
            else:
                db.get(key)  # counts the miss
            out.append(nil)
        elif value.__class__ is not bytes:
            break  # WRONGTYPE: the general path answers
        else:
            if inline and not (expires and key in expires):
                hits += 1
                if lru is not None:
                    lru[key] = tick
            else:
                value = db.get(key)  # expires it if due, counts, stamps
                if value is None:
                    out.append(nil)
                    ran += 1
                    continue
            n = len(value)
            out += (BULK_HEADERS[n] if n < 4096 else b"$%d\r\n" % n, value, b"\r\n")
        ran += 1
    keyspace = c.keyspace
    keyspace.hits += hits
    keyspace.misses += misses
    return ran


@command("set", -3, "write denyoom", (1, 1, 1), **_STR)
def set_(c: Any, args: List[bytes]) -> Any:
    """Set the string value of a key, with expiry and conditions."""
    if len(args) == 3:
        c.db.set(args[1], args[2])
        return OK
    return _set_generic(c, args, "set")


@with_events("set")
def set_announced(c: Any, args: List[bytes]) -> Any:
    """SET while keyspace events are on: expires an old key first, as Redis."""
    return _set_generic(c, args, "set")


@runs_of("set")
def set_run(c: Any, commands: List[List[bytes]], start: int, out: List[bytes]) -> int:
    """``SET key value`` without options: :func:`set_` without its call, and the
    dispatcher's memory-limit credit and propagation, per request."""
    context = _write_run_context(c)
    if context is None:
        return 0
    staged, propagators, metered, credit = context
    store = c.db.set
    name = commands[start][0]
    ran = 0
    for args in commands[start:]:
        if len(args) != 3 or args[0] != name:
            break
        if metered:
            if credit < 1:
                break  # the general path checks the memory
            credit -= 1
        store(args[1], args[2])
        if staged is not None:
            staged.append(args)
        elif propagators:
            staged = propagate_write(c, args, propagators)
        out.append(OK)
        ran += 1
    if metered:
        c.server.oom_credit = credit
    return ran


#: (the log's staging list or None, propagators, metered by the memory limit, credit)
_WriteRunContext = Tuple[Optional[List[List[bytes]]], List[Any], bool, int]


def _write_run_context(c: Any) -> Optional[_WriteRunContext]:
    """What a run of writes needs, as the dispatcher has it: None while writes are
    refused (MISCONF); else the log's staging list (None when the log is not the
    only propagator, or logs another database), the propagators, whether the
    memory limit meters writes (the dispatcher leaves out loading) and its credit."""
    server = c.server
    if server.write_denied is not None:
        return None
    keyspace = c.keyspace
    staged = keyspace.stage if c.db is keyspace.stage_db else None
    return staged, keyspace.propagators, server.gated, server.oom_credit


def propagate_write(c: Any, args: List[bytes], propagators: List[Any]
                    ) -> Optional[List[List[bytes]]]:
    """A run handler's write, to the propagators (the log's shortcut is not lent:
    the dispatcher's path). Returns the shortcut if the replication stream lent
    it meanwhile, for the run's next writes."""
    db = c.db
    for propagate in propagators:
        propagate(db.id, [args])
    keyspace = c.keyspace
    return keyspace.stage if db is keyspace.stage_db else None


def _set_generic(c: Any, args: List[bytes], cmd: str) -> Any:
    db = c.db
    key, value = args[1], args[2]
    flags, expire = parse_set_options(args, 3, getex=False)
    when = None
    if expire is not None:
        unit_ms, absolute = _EXPIRE_UNITS[expire[0]]
        when = expire_deadline(c, expire[1], unit_ms, absolute, cmd)
    old = None
    if "GET" in flags:
        old = _string_or_none(db, key)
    found = db.peek(key) is not None
    if ("NX" in flags and found) or ("XX" in flags and not found):
        return old
    db.set(key, value, keep_ttl="KEEPTTL" in flags)
    notify(db, STRING_EVENTS, b"set", key)
    if when is not None:
        db.expires[key] = when
        notify(db, GENERIC, b"expire", key)
        c.rewrite = [[b"SET", key, value, b"PXAT", b"%d" % when]]
    elif "KEEPTTL" in flags:
        c.rewrite = [[b"SET", key, value, b"KEEPTTL"]]
    else:
        c.rewrite = [[b"SET", key, value]]
    return old if "GET" in flags else OK


@command("setnx", 3, "write denyoom fast", (1, 1, 1), **_STR)
def setnx(c: Any, args: List[bytes]) -> Any:
    """Set a key only if it does not exist."""
    db = c.db
    if db.peek(args[1]) is not None:
        return 0
    db.set(args[1], args[2])
    notify(db, STRING_EVENTS, b"set", args[1])
    return 1


def _set_with_ttl(c: Any, args: List[bytes], unit_ms: int, cmd: str) -> Any:
    when = expire_deadline(c, args[2], unit_ms, False, cmd)
    key, value = args[1], args[3]
    db = c.db
    db.peek(key)  # an expired key goes first, as Redis's lookupKeyWrite
    db.set(key, value)
    notify(db, STRING_EVENTS, b"set", key)
    db.expires[key] = when
    notify(db, GENERIC, b"expire", key)
    c.rewrite = [[b"SET", key, value, b"PXAT", b"%d" % when]]
    return OK


@command("setex", 4, "write denyoom", (1, 1, 1), **_STR)
def setex(c: Any, args: List[bytes]) -> Any:
    """Set a key with a TTL in seconds."""
    return _set_with_ttl(c, args, 1000, "setex")


@command("psetex", 4, "write denyoom", (1, 1, 1), **_STR)
def psetex(c: Any, args: List[bytes]) -> Any:
    """Set a key with a TTL in milliseconds."""
    return _set_with_ttl(c, args, 1, "psetex")


@command("getset", 3, "write denyoom fast", (1, 1, 1), **_STR)
def getset(c: Any, args: List[bytes]) -> Any:
    """Set a key and return its old value."""
    old = _string_or_none(c.db, args[1])
    c.db.set(args[1], args[2])
    notify(c.db, STRING_EVENTS, b"set", args[1])
    return old


@command("getdel", 2, "write fast", (1, 1, 1), **_STR)
def getdel(c: Any, args: List[bytes]) -> Any:
    """Get a key's value and delete it."""
    old = _string_or_none(c.db, args[1])
    if old is not None:
        c.db.delete(args[1])
        notify(c.db, GENERIC, b"del", args[1])
        c.rewrite = [[b"DEL", args[1]]]
    return old


@command("getex", -2, "write fast", (1, 1, 1), **_STR)
def getex(c: Any, args: List[bytes]) -> Any:
    """Get a key's value and change its TTL."""
    db = c.db
    key = args[1]
    flags, expire = parse_set_options(args, 2, getex=True)
    value = _string_or_none(db, key)
    if value is None:  # Redis checks the expire time only for an existing key
        return None
    when = None
    if expire is not None:
        unit_ms, absolute = _EXPIRE_UNITS[expire[0]]
        when = expire_deadline(c, expire[1], unit_ms, absolute, "getex")
    if when is not None:
        if when <= now_ms():
            db.delete(key)
            notify(db, GENERIC, b"del", key)
            c.rewrite = [[b"DEL", key]]
        else:
            db.set_expire(key, when)
            notify(db, GENERIC, b"expire", key)
            c.rewrite = [[b"PEXPIREAT", key, b"%d" % when]]
    elif "PERSIST" in flags:
        if db.persist(key):
            notify(db, GENERIC, b"persist", key)
            c.rewrite = [[b"PERSIST", key]]
    return value


@command("mget", -2, "readonly fast", (1, -1, 1), **_STR)
def mget(c: Any, args: List[bytes]) -> Any:
    """Get the values of several keys (nil for missing or non-string keys)."""
    get_value = c.db.get
    out = []
    for key in args[1:]:
        value = get_value(key)
        out.append(value if value.__class__ is bytes else None)
    return out


@command("mset", -3, "write denyoom", (1, -1, 2), **_STR)
def mset(c: Any, args: List[bytes]) -> Any:
    """Set several keys."""
    if len(args) % 2 == 0:
        raise wrong_arity("mset")
    db = c.db
    events = c.keyspace.events
    for i in range(1, len(args), 2):
        if events:
            db.peek(args[i])  # an expired key goes first, as Redis's lookupKeyWrite
        db.set(args[i], args[i + 1])
        notify(db, STRING_EVENTS, b"set", args[i])
    return OK


@command("msetnx", -3, "write denyoom", (1, -1, 2), **_STR)
def msetnx(c: Any, args: List[bytes]) -> Any:
    """Set several keys only if none of them exists."""
    if len(args) % 2 == 0:
        raise wrong_arity("msetnx")
    db = c.db
    for i in range(1, len(args), 2):
        if db.peek(args[i]) is not None:
            return 0
    for i in range(1, len(args), 2):
        db.set(args[i], args[i + 1])
        notify(db, STRING_EVENTS, b"set", args[i])
    return 1


@command("append", 3, "write denyoom fast", (1, 1, 1), **_STR)
def append(c: Any, args: List[bytes]) -> Any:
    """Append to a string value."""
    db = c.db
    old = _string_or_none(db, args[1], counted=False)
    if old is not None:
        check_size(c, len(old) + len(args[2]))  # before building it, as Redis
    new = args[2] if old is None else old + args[2]
    db.set(args[1], new, keep_ttl=True)
    notify(db, STRING_EVENTS, b"append", args[1])
    return len(new)


@command("strlen", 2, "readonly fast", (1, 1, 1), **_STR)
def strlen(c: Any, args: List[bytes]) -> Any:
    """Length of a string value."""
    value = _string_or_none(c.db, args[1])
    return 0 if value is None else len(value)


@command("getrange", 4, "readonly", (1, 1, 1), complexity="O(N)", **_STR)
def getrange(c: Any, args: List[bytes]) -> Any:
    """A substring of a string value, by inclusive byte offsets."""
    start, end = to_int(args[2]), to_int(args[3])
    value = _string_or_none(c.db, args[1])
    if value is None:
        return b""
    size = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start += size
    if end < 0:
        end += size
    start = max(start, 0)
    end = max(end, 0)
    if end >= size:
        end = size - 1
    if start > end or size == 0:
        return b""
    return value[start:end + 1]


command("substr", 4, "readonly", (1, 1, 1), **_STR)(getrange)


@command("setrange", 4, "write denyoom", (1, 1, 1), **_STR)
def setrange(c: Any, args: List[bytes]) -> Any:
    """Overwrite part of a string at an offset, padding with zero bytes."""
    db = c.db
    key, patch = args[1], args[3]
    offset = to_int(args[2])
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    old = _string_or_none(db, key, counted=False)
    if old is None:
        if not patch:
            return 0
        old = b""
    elif not patch:
        return len(old)
    check_size(c, offset + len(patch))
    # One copy into the result: an offset near proto-max-bulk-len used to pad,
    # then slice and concatenate (four 512 MB copies, seconds of event loop).
    # bytes(n) is calloc'd, so the padding costs no pages until joined.
    if len(old) < offset:
        new = b"".join((old, bytes(offset - len(old)), patch))
    else:
        view = memoryview(old)
        new = b"".join((view[:offset], patch, view[offset + len(patch):]))
    db.set(key, new, keep_ttl=True)
    notify(db, STRING_EVENTS, b"setrange", key)
    return len(new)


# -- counters -----------------------------------------------------------------------
# Rate limiters hammer these. A value of at most 18 digits without a leading zero
# is a canonical int64 read with one int() (string2ll's checks without formatting
# it back); anything else takes the exact check.

#: Database's set and modified still match the copies inlined here (see INLINE_SAFE).
_INLINE_WRITE = INLINE_SAFE["set"] and INLINE_SAFE["modified"]


def _counter(value: Any) -> int:
    """The int64 a string value holds, as Redis's string2ll; else NOT_INTEGER/WRONGTYPE."""
    if value.__class__ is not bytes:
        raise CommandError(WRONGTYPE)
    if value.isdigit() and len(value) < 19 and value[0] != 48:
        return int(value)
    try:
        current = int(value)
    except ValueError:
        raise CommandError(NOT_INTEGER) from None
    if b"%d" % current != value or not INT64_MIN <= current <= INT64_MAX:
        raise CommandError(NOT_INTEGER)
    return current


def incr_by(c: Any, key: bytes, delta: int) -> int:
    db = c.db
    value = db.data.get(key)
    if value is not None and db.expires and key in db.expires:
        value = db.peek(key)  # expires it if due
    if value is None:
        result = delta
    else:
        if value.__class__ is bytes and value.isdigit() and len(value) < 19 \
                and value[0] != 48:
            result = int(value) + delta  # _counter's common case, without its call
        else:
            result = _counter(value) + delta
        if not INT64_MIN <= result <= INT64_MAX:
            raise CommandError(OVERFLOW)
    keyspace = db.keyspace
    if db.__class__ is Database and _INLINE_WRITE:
        db.data[key] = b"%d" % result  # Database.set(key, ..., keep_ttl=True), inlined
        keyspace.dirty += 1
        if db.watched:
            keyspace.key_modified(db, key)
    else:
        db.set(key, b"%d" % result, True)
    if keyspace.events:  # the run handlers leave events to the general path
        notify(db, STRING_EVENTS, b"incrby", key)
    return result


@command("incr", 2, "write denyoom fast", (1, 1, 1), **_STR)
def incr(c: Any, args: List[bytes]) -> Any:
    """Add one to an integer value."""
    return incr_by(c, args[1], 1)


@command("decr", 2, "write denyoom fast", (1, 1, 1), **_STR)
def decr(c: Any, args: List[bytes]) -> Any:
    """Subtract one from an integer value."""
    return incr_by(c, args[1], -1)


@command("incrby", 3, "write denyoom fast", (1, 1, 1), **_STR)
def incrby(c: Any, args: List[bytes]) -> Any:
    """Add an integer to an integer value."""
    return incr_by(c, args[1], to_int(args[2]))


@command("decrby", 3, "write denyoom fast", (1, 1, 1), **_STR)
def decrby(c: Any, args: List[bytes]) -> Any:
    """Subtract an integer from an integer value."""
    delta = to_int(args[2])
    if delta == INT64_MIN:
        raise CommandError("ERR decrement would overflow")
    return incr_by(c, args[1], -delta)


def _counter_run(sign: int, argc: int) -> RunHandler:
    """The run handler of INCR/DECR (``argc`` 2: the delta is ``sign``) or
    INCRBY/DECRBY (3: ``sign`` times the request's amount)."""
    def counter_run(c: Any, commands: List[List[bytes]], start: int, out: List[bytes]) -> int:
        """Counter writes without the dispatcher's call and checks, and Database's
        peek/set/modified inlined (see INLINE_SAFE) for a plain database; a key with
        a TTL due, or a request the general path would refuse, ends the run there."""
        context = _write_run_context(c)
        if context is None:
            return 0
        staged, propagators, metered, credit = context
        db = c.db
        keyspace = c.keyspace
        data = db.data
        expires = db.expires
        inline = db.__class__ is Database and _INLINE_WRITE
        now = 0
        name = commands[start][0]
        ran = 0
        for args in commands[start:]:
            if len(args) != argc or args[0] != name:
                break
            if metered and credit < 1:
                break
            key = args[1]
            if argc == 2:
                delta = sign
            else:
                amount = args[2]
                if amount.isdigit() and len(amount) < 19 and amount[0] != 48:
                    delta = int(amount) * sign
                else:
                    try:
                        delta = to_int(amount) * sign
                    except CommandError:
                        break
                    if delta > INT64_MAX:
                        break  # DECRBY of INT64_MIN: the general path's error
            value = data.get(key)
            if value is None:
                result = delta
            else:
                if expires and key in expires:
                    if not now:
                        now = now_ms()  # once a run: Redis too reads the clock once a call
                    if expires[key] <= now:
                        break  # the general path expires it (and propagates the DEL)
                if value.__class__ is not bytes:
                    break
                if value.isdigit() and len(value) < 19 and value[0] != 48:
                    result = int(value) + delta
                    # Below 10**18 plus or minus one cannot overflow.
                    if argc == 3 and not INT64_MIN <= result <= INT64_MAX:
                        break
                else:
                    try:
                        result = _counter(value) + delta
                    except CommandError:
                        break
                    if not INT64_MIN <= result <= INT64_MAX:
                        break
            new = b"%d" % result
            if inline:
                data[key] = new  # Database.set(key, new, keep_ttl=True), inlined
                keyspace.dirty += 1
                if db.watched:
                    keyspace.key_modified(db, key)
            else:
                db.set(key, new, True)
            credit -= 1
            if staged is not None:
                staged.append(args)
            elif propagators:
                staged = propagate_write(c, args, propagators)
            out += (b":", new, b"\r\n")
            ran += 1
        if metered:
            c.server.oom_credit = credit
        return ran
    return counter_run


runs_of("incr")(_counter_run(1, 2))
runs_of("decr")(_counter_run(-1, 2))
runs_of("incrby")(_counter_run(1, 3))
runs_of("decrby")(_counter_run(-1, 3))


@command("incrbyfloat", 3, "write denyoom fast", (1, 1, 1), **_STR)
def incrbyfloat(c: Any, args: List[bytes]) -> Any:
    """Add a float to a numeric value; logged as a SET of the result."""
    db = c.db
    key = args[1]
    value = _string_or_none(db, key, counted=False)
    current = to_decimal(value) if value is not None else to_decimal(b"0")
    increment = to_decimal(args[2])
    result = current + increment
    if not result.is_finite():
        raise CommandError("ERR increment would produce NaN or Infinity")
    text = format_decimal(result)
    db.set(key, text, keep_ttl=True)
    notify(db, STRING_EVENTS, b"incrbyfloat", key)
    c.rewrite = [[b"SET", key, text, b"KEEPTTL"]]
    return text
