"""DUMP and RESTORE, in Redis 7.0's serialization (the RDB codec, distcache.rdb).

A payload from redis-server 7.0 (or older: RDB versions up to 10) restores
here, and DUMP writes what redis-server 7.0 writes for the same value: byte
for byte, except the member order of hash-table hashes and sets (Redis's
dict order), which restores to the same data anyway.

RESTORE checks what Redis checks, in its order: options, BUSYKEY, the TTL,
the payload's version and CRC, then the value ("Bad data format" for any
malformed, empty or unsupported value: modules are not held here). The whole payload is decoded before the keyspace is touched, so a bad
payload changes nothing. IDLETIME and FREQ set the access stamps the eviction
module keeps (OBJECT IDLETIME/FREQ read them), which exist only while an LRU
or LFU maxmemory-policy is set, as documented in objects.py.
"""
from __future__ import annotations

from collections import deque
from typing import Any, List

from ...protocol import OK, Status
from ...rdb import PayloadVersionError, RdbError, dump_payload, load_payload
from ...rdb.codec import LzfBudget
from ..errors import CommandError, SYNTAX
from ..eviction import set_frequency, set_idle
from ..keyspace import now_ms
from ..notify import GENERIC, notify
from ..types.stream import Stream
from ..types.stream_codec import from_plain, to_plain
from ..types.zset import ZSet
from .args import to_int
from .keys import type_name
from .table import KEY_FINDERS, command
from .zsets import fold_listpack_zeros

_KEYS = dict(group="generic")
BUSYKEY = "BUSYKEY Target key name already exists."
BAD_PAYLOAD = "ERR DUMP payload version or checksum are wrong"
BAD_FORMAT = "ERR Bad data format"


def codec_value(value: Any) -> "tuple[str, Any]":
    """(kind, the codec's form) of a keyspace value: what DUMP and RDB files write."""
    return type_name(value), _plain(value)


def keyspace_value(kind: str, value: Any) -> Any:
    """The keyspace's structure for a value the codec read."""
    return _HOLD[kind](value)


def _plain(value: Any) -> Any:
    """The codec's form of a keyspace value."""
    if value.__class__ is ZSet:
        return list(value.items())
    if value.__class__ is Stream:
        return to_plain(value)
    return value


def _zset(pairs: Any) -> ZSet:
    zset = ZSet()
    for member, score in pairs:
        zset.add(member, score)
    return fold_listpack_zeros(zset)  # Redis loads a small set as a listpack


#: kind -> the keyspace's structure for a decoded value.
_HOLD = {"string": bytes, "list": deque, "hash": dict, "set": set, "zset": _zset,
         "stream": from_plain}


@command("dump", 2, "readonly", (1, 1, 1), since="2.6.0", **_KEYS)
def dump(c: Any, args: List[bytes]) -> Any:
    """Serialize a key's value in Redis's DUMP format."""
    value = c.db.get(args[1])
    if value is None:
        return None
    compress = c.server.config["rdbcompression"]
    return dump_payload(*codec_value(value), compress=bool(compress))


def _restore_options(args: List[bytes]) -> tuple:
    replace = absttl = False
    idle = freq = None
    j = 4
    while j < len(args):
        opt = args[j].lower()
        more = j + 1 < len(args)
        if opt == b"replace":
            replace = True
        elif opt == b"absttl":
            absttl = True
        elif opt == b"idletime" and more and freq is None:
            idle = to_int(args[j + 1])
            if idle < 0:
                raise CommandError("ERR Invalid IDLETIME value, must be >= 0")
            j += 1
        elif opt == b"freq" and more and idle is None:
            freq = to_int(args[j + 1])
            if not 0 <= freq <= 255:
                raise CommandError("ERR Invalid FREQ value, must be >= 0 and <= 255")
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    return replace, absttl, idle, freq


@command("restore", -4, "write denyoom", (1, 1, 1), since="2.6.0",
         complexity="O(1) to create the new key and additional O(N*M) to reconstruct the "
                    "serialized value", **_KEYS)
def restore(c: Any, args: List[bytes]) -> Any:
    """Create a key from a DUMP payload (REPLACE, ABSTTL, IDLETIME, FREQ)."""
    replace, absttl, idle, freq = _restore_options(args)
    db = c.db
    key = args[1]
    if not replace and db.peek(key) is not None:
        raise CommandError(BUSYKEY)
    ttl = to_int(args[2])
    if ttl < 0:
        raise CommandError("ERR Invalid TTL value, must be >= 0")
    try:
        kind, value = load_payload(args[3])
        held = keyspace_value(kind, value)
    except PayloadVersionError:
        raise CommandError(BAD_PAYLOAD) from None
    except RdbError:
        raise CommandError(BAD_FORMAT) from None
    deleted = db.delete(key) if replace else False
    if ttl and not absttl:
        ttl += now_ms()
    if ttl and ttl <= now_ms():  # already expired: only the deletion happened
        if deleted:
            notify(db, GENERIC, b"del", key)
            c.rewrite = [[b"DEL", key]]
        return OK
    db.set(key, held)
    if ttl:
        db.expires[key] = ttl
        if not absttl:  # logged with the absolute time, so a replay restores the same TTL
            c.rewrite = [[args[0], key, b"%d" % ttl, *args[3:], b"ABSTTL"]]
    if freq is not None:
        set_frequency(db, key, freq)
    elif idle is not None:
        set_idle(db, key, idle)
    notify(db, GENERIC, b"restore", key)
    return OK


# -- MIGRATE ---------------------------------------------------------------------------

class _Migration:
    """MIGRATE's options: what to send, how long to wait, what to keep."""

    __slots__ = ("copy", "replace", "auth", "keys")

    def __init__(self, args: List[bytes]) -> None:
        self.copy = self.replace = False
        self.auth: List[bytes] = []
        self.keys = [args[3]]
        i = 6
        while i < len(args):
            opt = args[i].upper()
            left = len(args) - i - 1
            if opt == b"COPY":
                self.copy = True
            elif opt == b"REPLACE":
                self.replace = True
            elif opt == b"AUTH" and left >= 1:
                self.auth = [args[i + 1]]
                i += 1
            elif opt == b"AUTH2" and left >= 2:
                self.auth = [args[i + 1], args[i + 2]]
                i += 2
            elif opt == b"KEYS":
                if args[3]:
                    raise CommandError("ERR When using MIGRATE KEYS option, the key argument "
                                       "must be set to the empty string")
                self.keys = args[i + 1:]
                break
            else:
                raise CommandError(SYNTAX)
            i += 1


def _migrate_keys(args: List[bytes]) -> "list[tuple[int, int]]":
    """Redis's migrateGetKeys: the key argument, or the keys after KEYS when it is ""."""
    from .table import KEY_READ, KEY_WRITE
    access = KEY_READ | KEY_WRITE
    if len(args) > 3 and not args[3]:
        for i in range(6, len(args)):
            if args[i].upper() == b"KEYS":
                return [(j, access) for j in range(i + 1, len(args))]
    return [(3, access)]


@command("migrate", -6, "write movablekeys", (3, 3, 1), since="2.6.0", complexity="O(N)",
         **_KEYS)
def migrate(c: Any, args: List[bytes]) -> Any:
    """Move keys to another Redis-protocol server (RESTORE there, DEL here)."""
    import socket as _socket
    from ...protocol import NOT_ENOUGH, ReplyError, ReplyParser, encode_command
    timeout, target_db = to_int(args[5]), to_int(args[4])
    plan = _Migration(args)
    if timeout <= 0:
        timeout = 1000
    db = c.db
    now = now_ms()
    batch = []  # (key, ttl) of the keys there are
    for key in plan.keys:
        value = db.get(key)
        if value is None:
            continue
        deadline = db.expires.get(key)
        ttl = 0 if deadline is None else max(deadline - now, 1)
        batch.append((key, ttl, value))
    if not batch:
        return Status(b"NOKEY")
    requests = [[b"AUTH", *plan.auth]] if plan.auth else []
    requests.append([b"SELECT", b"%d" % target_db])
    compress = LzfBudget() if c.server.config["rdbcompression"] else False  # one for all
    for key, ttl, value in batch:
        restore = [b"RESTORE", key, b"%d" % ttl, dump_payload(*codec_value(value),
                                                              compress=compress)]
        requests.append(restore + ([b"REPLACE"] if plan.replace else []))
    # As Redis, the event loop waits for the target, up to the timeout per step.
    stage = "writing"  # as Redis, whose connect fails on its first write
    try:
        host = args[1].decode("utf-8", "replace")
        with _socket.create_connection((host, to_int(args[2])), timeout=timeout / 1000) as sock:
            stage = "writing"
            sock.sendall(b"".join(encode_command(r) for r in requests))
            stage = "reading"
            parser, replies = ReplyParser(), []
            while len(replies) < len(requests):
                reply = parser.get()
                if reply is NOT_ENOUGH:
                    data = sock.recv(1 << 16)
                    if not data:
                        raise OSError("connection closed")
                    parser.feed(data)
                else:
                    replies.append(reply)
    except (OSError, ValueError):
        raise CommandError(f"IOERR error or timeout {stage} to target instance") from None
    for reply in replies[:len(requests) - len(batch)]:  # AUTH, SELECT
        if isinstance(reply, ReplyError):
            raise CommandError(f"ERR Target instance replied with error: {reply}")
    errors, moved = [], []
    for (key, _, _), reply in zip(batch, replies[len(requests) - len(batch):]):
        if isinstance(reply, ReplyError):
            errors.append(str(reply))
        elif not plan.copy:
            moved.append(key)
    for key in moved:
        if db.delete(key):
            notify(db, GENERIC, b"del", key)
    c.rewrite = [[b"DEL", *moved]] if moved else None  # the log needs no target
    if errors:
        raise CommandError(f"ERR Target instance replied with error: {errors[-1]}")
    return OK


KEY_FINDERS["migrate"] = _migrate_keys
