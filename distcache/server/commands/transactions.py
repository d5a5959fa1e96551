"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

Queueing is done by the dispatcher (``Client._gate``): inside MULTI every
command but EXEC, DISCARD, MULTI, WATCH, QUIT and RESET is checked (arity,
unknown command) and queued; a rejected command marks the transaction so
that EXEC answers EXECABORT. While a persistence error refuses writes
(MISCONF), a write or PING is refused instead of queued, and EXEC of a queue
holding a write answers ``EXECABORT ... because of: MISCONF ...``, as Redis.

WATCH registers ``client`` under ``db.watched[key]`` and ``key`` in
``client.watching[db]``, with set operations where it can: WATCH, UNWATCH, EXEC
and a write to a watched key cost one cheap step per watched key. Every change
to a key ends in ``Database.modified``, which calls :func:`key_modified` only
while some key of that database is watched, so WATCH costs nothing when unused.
Expiry and eviction go through the same hook. A key that expires without being touched is caught at EXEC
(Redis 7.0 semantics: EXEC fails if a watched key expired after WATCH).

EXEC runs the queued commands through the normal dispatcher, so each one is
propagated as usual; the propagated commands are collected and written to
the log wrapped in ``MULTI`` ... ``EXEC`` so that replay is atomic.
"""
from __future__ import annotations

from itertools import islice, repeat
from typing import Any, List, Tuple

from ...protocol import NULL_ARRAY, OK, Raw
from ..errors import CommandError
from ..keyspace import now_ms
from ..types.blocking import serve_ready
from .table import command

_TXN = dict(group="transactions")
EXECABORT = "EXECABORT Transaction discarded because of previous errors."


@command("multi", 1, "noscript loading stale fast allow_busy", since="1.2.0", **_TXN)
def multi(c: Any, args: List[bytes]) -> Any:
    """Start a transaction."""
    if c.in_multi:
        raise CommandError("ERR MULTI calls can not be nested")
    c.in_multi = True
    c.multi_queue = []
    c.multi_error = False
    c.update_restricted()
    return OK


def _end_multi(c: Any) -> None:
    c.in_multi = False
    c.multi_queue = []
    c.multi_mem = c.multi_counted = 0  # CLIENT LIST's multi-mem (client_memory.py)
    c.multi_error = False
    c.update_restricted()


@command("discard", 1, "noscript loading stale fast allow_busy", since="2.0.0", **_TXN)
def discard(c: Any, args: List[bytes]) -> Any:
    """Discard the queued commands."""
    if not c.in_multi:
        raise CommandError("ERR DISCARD without MULTI")
    _end_multi(c)
    unwatch_all(c)
    return OK


@command("exec", 1, "noscript loading stale skip_slowlog", since="1.2.0", **_TXN)
def exec_(c: Any, args: List[bytes]) -> Any:
    """Run the queued commands atomically."""
    if not c.in_multi:
        raise CommandError("ERR EXEC without MULTI")
    queue = c.multi_queue
    if c.multi_error:
        _end_multi(c)
        unwatch_all(c)
        raise CommandError(EXECABORT)
    if c.watch_dirty or (c.watching and _watched_key_expired(c)):
        _end_multi(c)
        unwatch_all(c)
        return NULL_ARRAY
    unwatch_all(c)  # before running: the transaction's own writes must not matter
    if c.server.oom_check is not None and queue_has(c, queue, "denyoom"):
        try:
            c.server.oom_check(c)
        except CommandError as exc:
            raise exec_abort(c, exc) from None
    keyspace = c.keyspace
    propagators = keyspace.propagators
    keyspace.stage_db = None  # every write goes to the collector below
    collected: List[Tuple[int, List[List[bytes]]]] = []
    if propagators:
        keyspace.propagators = [lambda db_id, cmds: collected.append((db_id, cmds))]
    out: List[bytes] = []
    c.in_exec = True
    try:
        ran = c.run(queue, out)  # one dispatcher call for the whole queue
        for queued in islice(queue, ran, None):  # it stops after one that closes the client
            c.execute(queued, out)
    finally:
        c.in_exec = False
        if propagators:
            keyspace.propagators = propagators
        _end_multi(c)
    if collected:
        keyspace.propagate(collected[0][0], [[b"MULTI"]])
        for db_id, cmds in collected:
            keyspace.propagate(db_id, cmds)
        keyspace.propagate(collected[-1][0], [[b"EXEC"]])
    if c.server.ready_keys:
        serve_ready(c.server)  # the transaction's pushes serve waiters now, as Redis
    return Raw(b"".join([b"*%d\r\n" % len(queue)] + out))


@command("watch", -2, "noscript loading stale fast allow_busy", (1, -1, 1), since="2.2.0",
         **_TXN)
def watch(c: Any, args: List[bytes]) -> Any:
    """Abort the next EXEC if any of these keys changes."""
    if c.in_multi:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    if c.watch_dirty:  # already doomed: nothing more to track
        return OK
    db = c.db
    mine = c.watching.get(db)
    fresh = set(args[1:])
    if mine is None:
        mine = c.watching[db] = set()
    else:
        fresh -= mine
        if not fresh:
            return OK
    if db.expires:  # a key already expired is deleted now, not "modified" later
        for key in fresh.intersection(db.expires):
            db.peek(key)
    mine |= fresh
    # Set operations, not a loop of lookups, and a key one client watches maps to
    # that client, not to a set: WATCH of 200,000 keys was 2.6 s and 89 MB.
    watched = db.watched
    new = fresh.difference(watched)
    watched.update(zip(new, repeat(c)))
    if len(new) < len(fresh):
        for key in fresh.difference(new):  # keys other clients watch too
            clients = watched[key]
            if clients.__class__ is set:
                clients.add(c)
            else:
                watched[key] = {clients, c}
    return OK


@command("unwatch", 1, "noscript loading stale fast allow_busy", since="2.2.0", **_TXN)
def unwatch(c: Any, args: List[bytes]) -> Any:
    """Forget all WATCHed keys."""
    unwatch_all(c)
    return OK


def unwatch_all(c: Any) -> None:
    """Forget ``c``'s watches (``c.watching``: database -> the keys it watches there)."""
    for db, keys in c.watching.items():
        watched = db.watched
        get = watched.get
        for key in keys:
            clients = get(key)
            if clients is c:  # the usual case: only this client
                del watched[key]
            elif clients.__class__ is set:
                clients.discard(c)
                if not clients:
                    del watched[key]
    c.watching = {}
    c.watch_dirty = False


def exec_abort(c: Any, exc: CommandError) -> CommandError:
    """EXEC itself was rejected: discard the transaction (Redis's execCommandAbort)."""
    _end_multi(c)
    unwatch_all(c)
    text = exc.text[4:] if exc.text.startswith("ERR ") else exc.text
    return CommandError(f"EXECABORT Transaction discarded because of: {text}")


def queue_has(c: Any, queue: List[List[bytes]], flag: str) -> bool:
    """Whether a queued command has ``flag`` ("denyoom", "write"): Redis's mstate.cmd_flags."""
    table = c.table
    for args in queue:
        spec = table.get(args[0]) or table.get(args[0].lower())
        if spec is not None and spec.subcommands and len(args) > 1:
            subs = spec.subcommands
            spec = subs.get(args[1]) or subs.get(args[1].lower()) or spec
        if spec is not None and getattr(spec, flag):
            return True
    return False


def _watched_key_expired(c: Any) -> bool:
    now = now_ms()
    for db, keys in c.watching.items():
        expires = db.expires
        if expires:
            for key in keys.intersection(expires):  # the keys with a TTL only
                if expires[key] <= now and key in db.data:
                    return True
    return False


def key_modified(db: Any, key: bytes) -> None:
    """Watch listener: every client WATCHing ``key`` in ``db`` is doomed."""
    clients = db.watched.get(key)
    if clients is not None:
        for client in list(clients) if clients.__class__ is set else (clients,):
            # Once dirty, the other watched keys no longer matter (as Redis 7).
            unwatch_all(client)
            client.watch_dirty = True


def _reset(c: Any) -> None:
    if c.in_multi:
        _end_multi(c)
    unwatch_all(c)


def install(server: Any) -> None:
    """Hook WATCH into the keyspace and MULTI state into RESET and disconnect."""
    if key_modified not in server.keyspace.watch_listeners:
        server.keyspace.watch_listeners.append(key_modified)
    server.reset_hooks.append(_reset)
    server.disconnect_hooks.append(unwatch_all)
