"""Generic key commands: DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, COPY, TTLs..."""
from __future__ import annotations

from typing import Any, List

from ...protocol import OK
from ..errors import CommandError, DB_RANGE, NO_SUCH_KEY, SYNTAX
from ..glob import compile_glob
from ..keyspace import TYPE_NAMES, now_ms
from ..notify import GENERIC, notify
from ..scan import ScanArgs
from .args import INT64_MAX, to_int, to_int32
from .table import command

_KEYS = dict(group="generic")


def type_name(value: Any) -> str:
    return TYPE_NAMES.get(value.__class__, "none")


def copy_value(value: Any) -> Any:
    """A copy that shares nothing mutable (strings are immutable bytes)."""
    return value if value.__class__ is bytes else value.copy()


def db_index(c: Any, arg: bytes) -> int:
    index = to_int32(arg)
    if not 0 <= index < len(c.keyspace.dbs):
        raise CommandError(DB_RANGE)
    return index


@command("del", -2, "write", (1, -1, 1), complexity="O(N)", **_KEYS)
def delete(c: Any, args: List[bytes]) -> Any:
    """Delete keys; returns how many existed."""
    db = c.db
    deleted = 0
    for key in args[1:]:
        if db.delete(key):
            deleted += 1
            notify(db, GENERIC, b"del", key)
    return deleted


command("unlink", -2, "write fast", (1, -1, 1), **_KEYS)(delete)


@command("exists", -2, "readonly fast", (1, -1, 1), **_KEYS)
def exists(c: Any, args: List[bytes]) -> Any:
    """How many of the keys exist (repeats count each time)."""
    get_value = c.db.get_untouched
    return sum(1 for key in args[1:] if get_value(key) is not None)


@command("type", 2, "readonly fast", (1, 1, 1), **_KEYS)
def type_(c: Any, args: List[bytes]) -> Any:
    """The type of a key's value, or none."""
    from ...protocol import Status
    value = c.db.get_untouched(args[1])
    return Status(b"none" if value is None else type_name(value).encode())


@command("keys", 2, "readonly", complexity="O(N)", **_KEYS)
def keys(c: Any, args: List[bytes]) -> Any:
    """Keys matching a glob pattern."""
    db = c.db
    match = None if args[1] == b"*" else compile_glob(args[1])  # "*": every key, "" too
    expires = db.expires
    now = now_ms()
    out = []
    for key in list(db.data):
        if match is None or match(key):
            if expires and key in expires and expires[key] <= now:
                db.expire_now(key)
                continue
            out.append(key)
    return out


@command("scan", -2, "readonly", complexity="O(1) per call, O(N) per full iteration", **_KEYS)
def scan(c: Any, args: List[bytes]) -> Any:
    """Iterate over the keyspace with a cursor (MATCH, COUNT, TYPE)."""
    opts = ScanArgs(args, 2, allow_type=True)
    db = c.db
    cursor, batch = c.server.scan_cursors.page(opts.cursor, lambda: db.data, opts.count)
    out = []
    for key in batch:
        value = db.peek(key)
        if value is None:
            continue
        if opts.match is not None and not opts.match(key):
            continue
        if opts.type is not None and type_name(value) != opts.type:
            continue
        out.append(key)
    return [b"%d" % cursor, out]


@command("randomkey", 1, "readonly", **_KEYS)
def randomkey(c: Any, args: List[bytes]) -> Any:
    """A random key, or nil when the database is empty."""
    return c.db.random_key()


def _move_value(c: Any, src_db: Any, src: bytes, dst_db: Any, dst: bytes, value: Any,
                event: bytes) -> None:
    """RENAME and MOVE, in Redis's order: the destination replaced (a new key),
    the source deleted, then ``<event>_from`` and ``<event>_to``."""
    when = src_db.expires.get(src)
    dst_db.delete(dst)
    dst_db.set(dst, value)
    if when is not None:
        dst_db.expires[dst] = when
    src_db.delete(src)
    notify(src_db, GENERIC, event + b"_from", src)
    notify(dst_db, GENERIC, event + b"_to", dst)


@command("rename", 3, "write", (1, 2, 1), **_KEYS)
def rename(c: Any, args: List[bytes]) -> Any:
    """Rename a key, replacing any destination."""
    db = c.db
    value = db.peek(args[1])
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    if args[1] != args[2]:  # to itself: nothing changes (no WATCH touched, as Redis)
        _move_value(c, db, args[1], db, args[2], value, b"rename")
    return OK


@command("renamenx", 3, "write fast", (1, 2, 1), **_KEYS)
def renamenx(c: Any, args: List[bytes]) -> Any:
    """Rename a key only if the destination does not exist."""
    db = c.db
    value = db.peek(args[1])
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    if db.peek(args[2]) is not None:
        return 0
    _move_value(c, db, args[1], db, args[2], value, b"rename")
    return 1


@command("copy", -3, "write denyoom", (1, 2, 1), **_KEYS)
def copy(c: Any, args: List[bytes]) -> Any:
    """Copy a key's value (DB index, REPLACE)."""
    src, dst = args[1], args[2]
    dst_db = c.db
    replace = False
    i = 3
    while i < len(args):
        opt = args[i].upper()
        if opt == b"REPLACE":
            replace = True
        elif opt == b"DB" and i + 1 < len(args):
            dst_db = c.keyspace.dbs[db_index(c, args[i + 1])]
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    if dst_db is c.db and src == dst:
        raise CommandError("ERR source and destination objects are the same")
    value = c.db.peek(src)
    if value is None:
        return 0
    if dst_db.peek(dst) is not None:
        if not replace:
            return 0
        dst_db.delete(dst)  # replaced: the copy is a new key, as Redis
    dst_db.set(dst, copy_value(value))
    when = c.db.expires.get(src)
    if when is not None:
        dst_db.expires[dst] = when
    notify(dst_db, GENERIC, b"copy_to", dst)
    return 1


@command("move", 3, "write fast", (1, 1, 1), **_KEYS)
def move(c: Any, args: List[bytes]) -> Any:
    """Move a key to another database."""
    target = c.keyspace.dbs[db_index(c, args[2])]
    if target is c.db:
        raise CommandError("ERR source and destination objects are the same")
    value = c.db.peek(args[1])
    if value is None or target.peek(args[1]) is not None:
        return 0
    _move_value(c, c.db, args[1], target, args[1], value, b"move")
    return 1


@command("swapdb", 3, "write fast", group="server")
def swapdb(c: Any, args: List[bytes]) -> Any:
    """Swap two databases."""
    a = to_int32(args[1], "ERR invalid first DB index")
    b = to_int32(args[2], "ERR invalid second DB index")
    if not 0 <= a < len(c.keyspace.dbs) or not 0 <= b < len(c.keyspace.dbs):
        raise CommandError(DB_RANGE)
    c.keyspace.swap(a, b)
    c.keyspace.dirty += 1
    return OK


@command("dbsize", 1, "readonly fast", group="server")
def dbsize(c: Any, args: List[bytes]) -> Any:
    """Number of keys in the selected database."""
    return len(c.db.data)


def _flush_mode(args: List[bytes]) -> None:
    if len(args) > 2 or (len(args) == 2 and args[1].upper() not in (b"ASYNC", b"SYNC")):
        raise CommandError(SYNTAX)


@command("flushdb", -1, "write", group="server", complexity="O(N)")
def flushdb(c: Any, args: List[bytes]) -> Any:
    """Delete every key of the selected database."""
    _flush_mode(args)
    c.db.flush()
    c.server.tracking.flushed(all_dbs=False)  # a null invalidation to tracking clients
    c.rewrite = [[b"FLUSHDB"]]
    return OK


@command("flushall", -1, "write", group="server", complexity="O(N)")
def flushall(c: Any, args: List[bytes]) -> Any:
    """Delete every key of every database."""
    _flush_mode(args)
    c.keyspace.flush_all()
    c.server.tracking.flushed(all_dbs=True)
    c.rewrite = [[b"FLUSHALL"]]
    for hook in c.server.flushall_hooks:
        hook()
    return OK


@command("touch", -2, "readonly fast", (1, -1, 1), **_KEYS)
def touch(c: Any, args: List[bytes]) -> Any:
    """How many of the keys exist (and mark them used)."""
    get_value = c.db.get
    return sum(1 for key in args[1:] if get_value(key) is not None)


# -- TTLs -----------------------------------------------------------------------------

def _expire_generic(c: Any, args: List[bytes], unit_ms: int, absolute: bool) -> int:
    db = c.db
    key = args[1]
    cmd = args[0].decode().lower()
    nx = xx = gt = lt = False
    for opt in args[3:]:
        name = opt.upper()
        if name == b"NX":
            nx = True
        elif name == b"XX":
            xx = True
        elif name == b"GT":
            gt = True
        elif name == b"LT":
            lt = True
        else:
            raise CommandError(f"ERR Unsupported option {opt.decode('utf-8', 'replace')}")
    if nx and (xx or gt or lt):
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if gt and lt:
        raise CommandError("ERR GT and LT options at the same time are not compatible")
    amount = to_int(args[2])  # after the options, as in Redis
    if unit_ms == 1000 and not (-(INT64_MAX // 1000) <= amount <= INT64_MAX // 1000):
        # LLONG_MIN / 1000 in C rounds toward zero: -9223372036854775 is the floor.
        raise CommandError(f"ERR invalid expire time in '{cmd}' command")
    when = amount * unit_ms
    if not absolute:
        base = now_ms()
        if when > INT64_MAX - base:
            raise CommandError(f"ERR invalid expire time in '{cmd}' command")
        when += base
    if db.peek(key) is None:
        return 0
    current = db.expires.get(key)
    if nx and current is not None:
        return 0
    if xx and current is None:
        return 0
    if gt and (current is None or when <= current):
        return 0
    if lt and current is not None and when >= current:
        return 0
    if when <= now_ms():
        db.delete(key)
        notify(db, GENERIC, b"del", key)
        c.rewrite = [[b"DEL", key]]
        return 1
    db.set_expire(key, when)
    notify(db, GENERIC, b"expire", key)
    c.rewrite = [[b"PEXPIREAT", key, b"%d" % when]]
    return 1


@command("expire", -3, "write fast", (1, 1, 1), **_KEYS)
def expire(c: Any, args: List[bytes]) -> Any:
    """Set a key's TTL in seconds (NX, XX, GT, LT)."""
    return _expire_generic(c, args, 1000, False)


@command("pexpire", -3, "write fast", (1, 1, 1), **_KEYS)
def pexpire(c: Any, args: List[bytes]) -> Any:
    """Set a key's TTL in milliseconds."""
    return _expire_generic(c, args, 1, False)


@command("expireat", -3, "write fast", (1, 1, 1), **_KEYS)
def expireat(c: Any, args: List[bytes]) -> Any:
    """Set a key's expiry as a Unix time in seconds."""
    return _expire_generic(c, args, 1000, True)


@command("pexpireat", -3, "write fast", (1, 1, 1), **_KEYS)
def pexpireat(c: Any, args: List[bytes]) -> Any:
    """Set a key's expiry as a Unix time in milliseconds."""
    return _expire_generic(c, args, 1, True)


def _ttl(c: Any, key: bytes) -> int:
    db = c.db
    if db.get_untouched(key) is None:
        return -2
    return db.ttl_ms(key)


@command("ttl", 2, "readonly fast", (1, 1, 1), **_KEYS)
def ttl(c: Any, args: List[bytes]) -> Any:
    """Seconds to live (-1: no TTL, -2: no key)."""
    ms = _ttl(c, args[1])
    return ms if ms < 0 else (ms + 500) // 1000


@command("pttl", 2, "readonly fast", (1, 1, 1), **_KEYS)
def pttl(c: Any, args: List[bytes]) -> Any:
    """Milliseconds to live (-1: no TTL, -2: no key)."""
    return _ttl(c, args[1])


def _expiretime(c: Any, key: bytes) -> int:
    db = c.db
    if db.get_untouched(key) is None:
        return -2
    return db.expires.get(key, -1)


@command("expiretime", 2, "readonly fast", (1, 1, 1), since="7.0.0", **_KEYS)
def expiretime(c: Any, args: List[bytes]) -> Any:
    """Absolute Unix expiry time in seconds (-1: no TTL, -2: no key)."""
    when = _expiretime(c, args[1])
    return when if when < 0 else (when + 500) // 1000  # rounded, as Redis does


@command("pexpiretime", 2, "readonly fast", (1, 1, 1), since="7.0.0", **_KEYS)
def pexpiretime(c: Any, args: List[bytes]) -> Any:
    """Absolute Unix expiry time in milliseconds (-1: no TTL, -2: no key)."""
    return _expiretime(c, args[1])


@command("persist", 2, "write fast", (1, 1, 1), **_KEYS)
def persist(c: Any, args: List[bytes]) -> Any:
    """Remove a key's TTL."""
    db = c.db
    if db.peek(args[1]) is None or not db.persist(args[1]):
        return 0
    notify(db, GENERIC, b"persist", args[1])
    return 1
