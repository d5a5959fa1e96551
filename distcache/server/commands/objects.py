"""OBJECT ENCODING / REFCOUNT / IDLETIME / FREQ / HELP.

distcache stores its own structures (``bytes``, ``dict``, ``set``, ``deque``,
:class:`~distcache.server.types.zset.ZSet`), so ENCODING reports the name
Redis 7.0 would give the same value with its built-in defaults:

- strings: ``int`` for a canonical 64-bit decimal of up to 20 characters,
  ``embstr`` up to 44 bytes, ``raw`` beyond (what SET stores in Redis);
- lists: ``quicklist`` (Redis 7.0 has no small-list listpack; 7.2 added it);
- hashes: ``listpack`` up to 512 entries with fields and values of at most 64
  bytes, else ``hashtable``;
- sets: ``intset`` up to 512 members that are all canonical 64-bit integers,
  else ``hashtable``;
- sorted sets: ``listpack`` up to 128 members of at most 64 bytes, else
  ``skiplist``.

The name is computed from the value as it is now. Redis decides as it writes,
so it can differ where Redis's answer depends on history: Redis never turns a
``hashtable``/``skiplist`` back into a listpack after deletions, and APPEND,
SETRANGE, SETBIT and INCRBYFLOAT leave ``raw``/``embstr`` strings where SET
would have stored ``int``.

REFCOUNT is 1, except for a string Redis would share from its table of
integers 0..9999: 2147483647, unless maxmemory is set with an LRU or LFU
policy (Redis shares no integers then).

IDLETIME and FREQ read the access stamps the eviction module keeps (LRU
ticks, LFU counters) and never stamp the key themselves. Those are only kept
while maxmemory is set with an LRU or LFU policy, so that the common
configuration pays nothing per access; without them IDLETIME answers 0 (no
access or write time is recorded anywhere else, and recording one would cost
every command) and FREQ under an LFU policy answers LFU_INIT_VAL, the counter
of a new key. As in Redis, FREQ is an error unless the policy is an LFU one,
IDLETIME an error when it is, and a missing key is a nil reply first.
"""
from __future__ import annotations

from collections import deque
from typing import Any, List

from ..errors import CommandError
from ..eviction import LFU_INIT_VAL, idle_ms, lfu_frequency
from ..keyspace import Database
from ..types.stream import Stream
from ..types.zset import ZSet
from .args import to_int
from .hashes import listpack_sized
from .sets import intset_order
from .table import command, container, help_reply
from .zsets import zset_listpack_sized

_OBJ = dict(group="generic", parent="object")
#: Strings up to this many bytes are allocated with their object (``embstr``).
EMBSTR_SIZE_LIMIT = 44
#: Redis shares the integer objects 0..9999 and reports this refcount for them.
SHARED_INTEGERS = 10000
SHARED_REFCOUNT = 2147483647
_NOTE = ("Please note that when switching between policies at runtime LRU and LFU data "
         "will take some time to adjust.")

container("object", -2, group="generic",
          summary="A container for object introspection commands", since="2.2.3")


def _lookup(c: Any, key: bytes) -> Any:
    """The value, counted as a hit or miss but not as an access (no LRU/LFU stamp)."""
    return Database.get(c.db, key)


def string_integer(value: bytes) -> Any:
    """The integer Redis would store ``value`` as (``int`` encoding), or None."""
    if not 0 < len(value) <= 20:
        return None
    try:
        return to_int(value)
    except CommandError:
        return None


def encoding_of(value: Any) -> bytes:
    """The OBJECT ENCODING name Redis 7.0 would report for ``value``."""
    cls = value.__class__
    if cls is bytes:
        if string_integer(value) is not None:
            return b"int"
        return b"embstr" if len(value) <= EMBSTR_SIZE_LIMIT else b"raw"
    if cls is dict:
        return b"listpack" if listpack_sized(value.items()) else b"hashtable"
    if cls is set:
        return b"intset" if intset_order(value) is not None else b"hashtable"
    if cls is ZSet:
        return b"listpack" if zset_listpack_sized(value.scores) else b"skiplist"
    if cls is Stream:
        return b"stream"
    return b"quicklist" if cls is deque else b"unknown"


def _lfu_policy(c: Any) -> bool:
    return c.server.config["maxmemory-policy"].endswith("-lfu")


@command("encoding", 3, "readonly", (2, 2, 1), since="2.2.3", **_OBJ)
def object_encoding(c: Any, args: List[bytes]) -> Any:
    """The internal representation Redis would use for the value."""
    value = _lookup(c, args[2])
    return None if value is None else encoding_of(value)


@command("refcount", 3, "readonly", (2, 2, 1), since="2.2.3", **_OBJ)
def object_refcount(c: Any, args: List[bytes]) -> Any:
    """References to the value (Redis's shared small integers report 2147483647)."""
    value = _lookup(c, args[2])
    if value is None:
        return None
    if value.__class__ is bytes:
        number = string_integer(value)
        if number is not None and 0 <= number < SHARED_INTEGERS:
            config = c.server.config
            policy = config["maxmemory-policy"]
            if not (config["maxmemory"] and policy.endswith(("-lru", "-lfu"))):
                return SHARED_REFCOUNT
    return 1


@command("idletime", 3, "readonly", (2, 2, 1), since="2.2.3", **_OBJ)
def object_idletime(c: Any, args: List[bytes]) -> Any:
    """Seconds since the key was last read or written (LRU policies; else 0)."""
    if _lookup(c, args[2]) is None:
        return None
    if _lfu_policy(c):
        raise CommandError("ERR An LFU maxmemory policy is selected, idle time not tracked. "
                           + _NOTE)
    idle = idle_ms(c.db, args[2])
    return 0 if idle is None else idle // 1000


@command("freq", 3, "readonly", (2, 2, 1), since="4.0.0", **_OBJ)
def object_freq(c: Any, args: List[bytes]) -> Any:
    """The key's logarithmic access frequency counter (LFU policies only)."""
    if _lookup(c, args[2]) is None:
        return None
    if not _lfu_policy(c):
        raise CommandError("ERR An LFU maxmemory policy is not selected, access frequency "
                           "not tracked. " + _NOTE)
    freq = lfu_frequency(c.db, args[2])
    return LFU_INIT_VAL if freq is None else freq


_HELP = [
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
]


@command("help", 2, "loading stale", since="6.2.0", **_OBJ)
def object_help(c: Any, args: List[bytes]) -> Any:
    """Show OBJECT's subcommands."""
    return help_reply("OBJECT", _HELP)
