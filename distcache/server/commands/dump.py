"""DUMP and RESTORE, in Redis 7.0's serialization (the RDB codec, distcache.rdb).

A payload from redis-server 7.0 (or older: RDB versions up to 10) restores
here, and DUMP writes what redis-server 7.0 writes for the same value: byte
for byte, except the member order of hash-table hashes and sets (Redis's
dict order), which restores to the same data anyway.

RESTORE checks what Redis checks, in its order: options, BUSYKEY, the TTL,
the payload's version and CRC, then the value ("Bad data format" for any
malformed, empty or unsupported value: streams and modules are not held here
yet). The whole payload is decoded before the keyspace is touched, so a bad
payload changes nothing. IDLETIME and FREQ set the access stamps the eviction
module keeps (OBJECT IDLETIME/FREQ read them), which exist only while an LRU
or LFU maxmemory-policy is set, as documented in objects.py.
"""
from __future__ import annotations

from collections import deque
from typing import Any, List

from ...protocol import OK
from ...rdb import PayloadVersionError, RdbError, dump_payload, load_payload
from ..errors import CommandError, SYNTAX
from ..eviction import set_frequency, set_idle
from ..keyspace import now_ms
from ..types.zset import ZSet
from .args import to_int
from .keys import type_name
from .table import command

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
    return value


def _zset(pairs: Any) -> ZSet:
    zset = ZSet()
    for member, score in pairs:
        zset.add(member, score)
    return zset


#: kind -> the keyspace's structure for a decoded value.
_HOLD = {"string": bytes, "list": deque, "hash": dict, "set": set, "zset": _zset}


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
    except PayloadVersionError:
        raise CommandError(BAD_PAYLOAD) from None
    except RdbError:
        raise CommandError(BAD_FORMAT) from None
    deleted = db.delete(key) if replace else False
    if ttl and not absttl:
        ttl += now_ms()
    if ttl and ttl <= now_ms():  # already expired: only the deletion happened
        if deleted:
            c.rewrite = [[b"DEL", key]]
        return OK
    db.set(key, keyspace_value(kind, value))
    if ttl:
        db.expires[key] = ttl
        if not absttl:  # logged with the absolute time, so a replay restores the same TTL
            c.rewrite = [[args[0], key, b"%d" % ttl, *args[3:], b"ABSTTL"]]
    if freq is not None:
        set_frequency(db, key, freq)
    elif idle is not None:
        set_idle(db, key, idle)
    return OK
