"""Clients blocked on list and sorted-set keys (BLPOP, BLMOVE, BZPOPMIN...).

A blocked client is a :class:`Waiter` queued, in arrival order, under each
of its keys in ``db.blocking``. A write that may make a key non-empty calls
:func:`signal_ready`; as in Redis, the ready keys are served by
:func:`serve_ready` right after the command that made them ready (after EXEC
for a transaction), before the writer's next command; a served client's own
pipelined commands wait until every ready key is served. For each ready key
the oldest waiter whose type matches is served first, and it is detached
from all its keys; the pop it performed is propagated to the
append-only log as the non-blocking command it amounts to. Keys filled by
commands outside this package (RENAME, COPY...) are noticed by a keyspace
propagation hook installed only while clients are blocked.

Other modules that create list or sorted-set keys may call
:func:`signal_ready` themselves to have waiters served.
"""
from __future__ import annotations

import asyncio
import logging
import math
from typing import Any, Callable, List, Optional, Set, Tuple

from ...protocol import NULL_ARRAY, ReplyError
from ..errors import CommandError
from ..commands.args import to_decimal, to_float, underflowed

log = logging.getLogger("distcache.server")

#: serve(key, value) -> (reply, commands to propagate)
Serve = Callable[[bytes, Any], Tuple[Any, List[List[bytes]]]]

TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"


#: ready(key, value) -> whether the waiter can be served now (streams: new entries).
Ready = Callable[[bytes, Any], bool]


class Waiter:
    __slots__ = ("client", "db", "keys", "kind", "serve", "ready", "gone_reply")

    def __init__(self, client: Any, db: Any, keys: List[bytes], kind: type,
                 serve: Serve, ready: Optional[Ready] = None, gone_reply: Any = None) -> None:
        self.client = client
        self.db = db
        self.keys = keys
        self.kind = kind
        self.serve = serve
        #: None: any value of ``kind`` serves it (a non-empty list or sorted set).
        self.ready = ready
        #: The reply when a key it waits on is deleted (XREADGROUP's); None: keep waiting.
        self.gone_reply = gone_reply

    def active(self) -> bool:
        c = self.client
        return c.blocked and not c.closed and c.block_state is not None \
            and c.block_state[0] is self

    def detach(self) -> None:
        blocking = self.db.blocking
        for key in self.keys:
            waiters = blocking.get(key)
            if waiters is None:
                continue
            try:
                waiters.remove(self)
            except ValueError:
                pass
            if not waiters:
                del blocking[key]


def parse_timeout(arg: bytes) -> float:
    """Seconds, as Redis reads a blocking timeout (0: forever)."""
    seconds = to_float(arg, TIMEOUT_NOT_FLOAT)
    if seconds == 0.0 and underflowed(arg):
        to_decimal(arg, TIMEOUT_NOT_FLOAT)  # an error if a long double underflows too
        seconds = 1e-9  # below double range but not zero (Redis reads a long double)
    ms = seconds * 1000.0
    if ms < 0:
        raise CommandError(TIMEOUT_NEGATIVE)
    if ms > 9.2e18:
        # Near LLONG_MAX milliseconds: decide as Redis's long double does (past
        # it, its cast gives LLONG_MIN: "negative").
        exact = to_decimal(arg, TIMEOUT_NOT_FLOAT)
        if exact.inf or math.ceil(exact.value * 1000) > (1 << 63) - 1:
            raise CommandError(TIMEOUT_NEGATIVE)
    return math.ceil(ms) / 1000.0


def cannot_block(c: Any) -> bool:
    """Inside MULTI/EXEC (or a script) blocking commands act as non-blocking ones."""
    return c.in_multi or getattr(c, "in_exec", False) or getattr(c, "deny_blocking", False)


def block(c: Any, keys: List[bytes], kind: type, timeout: float, serve: Serve,
          timeout_reply: Any = NULL_ARRAY, ready: Optional[Ready] = None,
          gone_reply: Any = None) -> Any:
    """Park ``c`` on ``keys`` until one of them can be served or ``timeout`` passes
    (or, with ``gone_reply``, one of them is deleted)."""
    server = c.server
    if not server.__dict__.get("_blocking_hooked"):
        server.__dict__["_blocking_hooked"] = True
        server.disconnect_hooks.append(_client_gone)
    _watch_writes(server)
    db = c.db
    waiter = Waiter(c, db, list(dict.fromkeys(keys)), kind, serve, ready, gone_reply)
    for key in waiter.keys:
        db.blocking.setdefault(key, []).append(waiter)

    def on_timeout() -> Any:
        waiter.detach()
        return timeout_reply

    return c.block(timeout, on_timeout, waiter)


#: Commands that move or drop keys without naming them: after one, every waited
#: key is looked at. Any other write is checked only through the arguments it names.
_WHOLESALE = frozenset((b"SWAPDB", b"DEBUG", b"FLUSHALL", b"FLUSHDB"))


def _watch_writes(server: Any) -> None:
    """While clients are blocked, look at waited keys after every write command.

    The list and sorted-set commands signal the keys they fill themselves;
    this catches the rest (RENAME, COPY, MOVE, RESTORE, SORT ... STORE, SWAPDB),
    through the keyspace's propagation hook that every write goes through. It
    unhooks itself once nobody is blocked, so it costs nothing otherwise.

    A write is checked through its own arguments (a superset of its keys: a
    spurious mark is harmless, serve_ready checks the value), in every database
    with waiters, as MOVE and COPY ... DB fill keys elsewhere: O(arguments), not
    O(waited keys), so one client blocked on a million keys does not slow every
    other client's writes.
    """
    if server.__dict__.get("_write_watcher") is not None:
        return
    keyspace = server.keyspace

    def on_write(db_id: int, commands: List[List[bytes]]) -> None:
        waiting = [db for db in keyspace.dbs if db.blocking]
        if not waiting:
            if not unhooking:
                # Not now: propagate() is iterating over the propagators.
                unhooking.append(True)
                asyncio.get_event_loop().call_soon(unhook)
            return
        for command in commands:
            wholesale = bool(command) and command[0].upper() in _WHOLESALE
            for db in waiting:
                blocking = db.blocking
                for key in list(blocking) if wholesale else command[1:]:
                    if key in blocking:  # served, or gone for XREADGROUP (serve_ready)
                        _mark_ready(server, db, key)

    def unhook() -> None:
        unhooking.clear()
        if any(db.blocking for db in keyspace.dbs):
            return
        keyspace.remove_propagator(on_write)
        server.__dict__["_write_watcher"] = None

    unhooking: List[bool] = []
    server.__dict__["_write_watcher"] = on_write
    keyspace.add_propagator(on_write)


def _key_gone(db: Any, key: bytes) -> None:
    """``key`` is missing after a command or transaction (deleted, flushed, swapped
    away): the waiters that end then (XREADGROUP's) get their reply, as Redis 7.0
    unblocks them with "UNBLOCKED" (a key of another type: _first_servable)."""
    for waiter in list(db.blocking.get(key, ())):
        if waiter.gone_reply is not None and waiter.active():
            waiter.detach()
            waiter.client.unblock(waiter.gone_reply)


def _client_gone(client: Any) -> None:
    state = client.block_state
    if client.blocked and state is not None and isinstance(state[0], Waiter):
        state[0].detach()
        if state[1] is not None:
            state[1].cancel()


def signal_ready(c: Any, db: Any, key: bytes) -> None:
    """``key`` may now serve blocked clients: serve them after this command batch."""
    if key in db.blocking:
        _mark_ready(c.server, db, key)


def _mark_ready(server: Any, db: Any, key: bytes) -> None:
    ready = server.ready_keys
    marked = _marked(server)
    if not ready:
        marked.clear()
        # The dispatcher serves them after the command; this callback is for
        # writes made outside one (it finds the list empty otherwise).
        asyncio.get_event_loop().call_soon(serve_ready, server)
    entry = (db, key)
    if entry not in marked:  # a set: many ready keys must not cost O(n) each
        marked.add(entry)
        ready.append(entry)


def _marked(server: Any) -> Set[Tuple[Any, bytes]]:
    """The entries of ``server.ready_keys`` not yet taken, as a set."""
    marked = server.__dict__.get("_ready_marked")
    if marked is None:
        marked = server.__dict__["_ready_marked"] = set()
    return marked


def serve_ready(server: Any) -> None:
    """Serve the waiters of the ready keys, oldest first (Redis's
    handleClientsBlockedOnKeys): the dispatcher calls it after each write
    command and after EXEC, before the client's next command."""
    ready: List[Tuple[Any, bytes]] = server.ready_keys
    marked = _marked(server)
    i = 0
    while i < len(ready):  # keys made ready while serving are appended: served too
        db, key = entry = ready[i]
        i += 1
        marked.discard(entry)  # taken: a later write may mark it again
        while True:
            waiters = db.blocking.get(key)
            if not waiters:
                break
            value = db.peek(key)
            if value is None:
                _key_gone(db, key)
                break
            waiter = _first_servable(waiters, key, value)
            if waiter is None:
                break
            waiter.detach()
            try:
                reply, commands = waiter.serve(key, value)
            except CommandError as exc:
                reply, commands = ReplyError(exc.text), []
            except Exception:  # a bug must not leave the client blocked forever
                log.exception("error serving a blocked client on %r", key)
                reply, commands = ReplyError("ERR internal error serving blocked client"), []
            if commands:
                db.keyspace.propagate(db.id, commands)
            waiter.client.unblock(reply)
    # keep the list object: signal_ready appends to it while we run
    ready.clear()
    marked.clear()


def _first_servable(waiters: List[Waiter], key: bytes, value: Any) -> Optional[Waiter]:
    for waiter in list(waiters):
        if not waiter.active():
            waiter.detach()
            continue
        if value.__class__ is waiter.kind:
            if waiter.ready is None or waiter.ready(key, value):
                return waiter
        elif waiter.gone_reply is not None:  # a stream key overwritten by another type
            waiter.detach()
            waiter.client.unblock(waiter.gone_reply)
    return None
