"""Keyspace notifications (Redis's notify.c): events about keys, as pub/sub messages.

A command that changed a key announces it with one call per event, in the
order Redis 7.0 does::

    notify(db, LIST, b"lpush", key)
    notify(db, GENERIC, b"del", key)        # the list became empty

``notify`` publishes ``__keyspace@<db>__:<key>`` with the event name (class
flag ``K``) and ``__keyevent@<db>__:<event>`` with the key (``E``) when
``notify-keyspace-events`` enables the event's class. With notifications off
(the default) it returns after one test. The hot paths do not even test: while
events are on, :func:`with_events` swaps SET's handler and takes the run
handlers of SET, INCR and DECR out of the command table, and the general path
notifies.

Four events come from the keyspace itself rather than from commands: ``new``
(a key was created, ``Database.add``), ``keymiss`` (a counted lookup found
nothing), ``expired`` (lazy and active expiry, ``Database.expire_now``) and
``evicted`` (eviction.py). The first two are listeners the keyspace calls only
while they are enabled (see ``Keyspace.hook``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict

if TYPE_CHECKING:
    from .app import CacheServer

# Class flags, Redis's NOTIFY_* values.
KEYSPACE = 1 << 0    # K
KEYEVENT = 1 << 1    # E
GENERIC = 1 << 2     # g
STRING = 1 << 3      # $
LIST = 1 << 4        # l
SET = 1 << 5         # s
HASH = 1 << 6        # h
ZSET = 1 << 7        # z
EXPIRED = 1 << 8     # x
EVICTED = 1 << 9     # e
STREAM = 1 << 10     # t
KEY_MISS = 1 << 11   # m
MODULE = 1 << 12     # d
NEW = 1 << 13        # n
#: ``A``: every class but key misses and new keys.
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE

_CLASS_CHARS = {"A": ALL, "g": GENERIC, "$": STRING, "l": LIST, "s": SET, "h": HASH, "z": ZSET,
                "x": EXPIRED, "e": EVICTED, "t": STREAM, "d": MODULE, "n": NEW, "K": KEYSPACE,
                "E": KEYEVENT, "m": KEY_MISS}
#: The order CONFIG GET lists the classes in (Redis's keyspaceEventsFlagsToString).
_RENDER_ORDER = "g$lshzxetdn"


def parse_classes(text: str) -> int:
    """``notify-keyspace-events`` text -> flags; ValueError with Redis's text."""
    flags = 0
    for char in text:
        flag = _CLASS_CHARS.get(char)
        if flag is None:
            raise ValueError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
        flags |= flag
    return flags


def render_classes(flags: int) -> str:
    """Flags -> Redis's normalised text (``AKE``, ``g$xE``...): with every class of
    ``A`` set it shows ``A`` and, as Redis, not ``n``."""
    if flags & ALL == ALL:
        text = "A"
    else:
        text = "".join(char for char in _RENDER_ORDER if flags & _CLASS_CHARS[char])
    return text + "".join(char for char in "KEm" if flags & _CLASS_CHARS[char])


def notify(db: Any, cls: int, event: bytes, key: bytes) -> None:
    """Announce ``event`` (of class ``cls``) on ``key`` of database ``db``."""
    ks = db.keyspace
    flags = ks.events
    if flags & cls and ks.publish is not None:
        publish = ks.publish
        if flags & KEYSPACE:
            publish(b"__keyspace@%d__:%s" % (db.id, key), event)
        if flags & KEYEVENT:
            publish(b"__keyevent@%d__:%s" % (db.id, event), key)


def delete_if_empty(db: Any, key: bytes, value: Any) -> None:
    """Delete a container the command left empty, announcing ``del`` (after the
    command's own event, as Redis)."""
    if not value and db.data.get(key) is value:
        db.remove_if_empty(key, value)
        notify(db, GENERIC, b"del", key)


#: command -> its handler while events are on (None: its usual one, without run handler)
_ANNOUNCED: Dict[str, Any] = {"incr": None, "decr": None, "incrby": None, "decrby": None,
                             "get": None}
def with_events(name: str) -> Callable[[Any], Any]:
    """Register the handler ``name`` uses while keyspace events are on. The hot
    commands' usual handlers (SET's plain form, the run handlers of SET, INCR,
    DECR, INCRBY and DECRBY) then step aside, so while events are off they test nothing."""
    def register(handler: Any) -> Any:
        _ANNOUNCED[name] = handler
        return handler
    return register


def _swap_handlers(on: bool) -> None:
    """The command table is the process's: one server per process, as ``distcache
    server`` runs it (in-process test servers share the setting)."""
    from .commands.table import set_layer
    set_layer("keyspace events", 10, _announcing if on else None)


def _announcing(spec: Any, handler: Any) -> Any:
    if spec.parent is None and spec.name in _ANNOUNCED:
        return _ANNOUNCED[spec.name] or handler
    return None


def key_added(db: Any, key: bytes) -> None:
    """Keyspace listener: ``new`` for a key ``Database.set`` created."""
    notify(db, NEW, b"new", key)


def key_missed(db: Any, key: bytes) -> None:
    """Keyspace listener: ``keymiss`` for a read that found no key."""
    notify(db, KEY_MISS, b"keymiss", key)


def install(server: "CacheServer") -> None:
    """Publish through the server's pub/sub registry; follow the directive."""
    ks = server.keyspace
    ks.publish = server.pubsub.publish  # type: ignore[attr-defined]

    def configure() -> None:
        flags = server.config["notify-keyspace-events"]
        # Without K or E nothing is ever published: as Redis, off.
        ks.events = flags if flags & (KEYSPACE | KEYEVENT) else 0
        _swap_handlers(bool(ks.events))
        for flag, kind, listener in ((NEW, "new", key_added), (KEY_MISS, "miss", key_missed)):
            if ks.events & flag:
                ks.add_listener(kind, listener)
            else:
                ks.remove_listener(kind, listener)

    def on_config(name: str) -> None:
        if name == "notify-keyspace-events":
            configure()
        else:  # eviction may have given the databases new classes
            ks.hook()

    configure()
    server.config_hooks.append(on_config)
