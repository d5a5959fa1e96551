"""Client-side caching (Redis's tracking.c): CLIENT TRACKING and its invalidations.

A tracking client's reads are remembered in one table, key -> client ids (keys
of every database share it, as in Redis). The keyspace's "key modified" signal
(``Keyspace.add_listener("modified", ...)``) sends each remembered client one
``invalidate`` message for the key and forgets the entry. BCAST clients
instead subscribe to key prefixes; the keys changed under a prefix are sent once
per event-loop turn, sorted, in one message per prefix and client.

Messages are RESP3 pushes (``>2 invalidate [keys]``), or, for a client that
redirects to a RESP2 connection in pub/sub mode, a ``message`` on
``__redis__:invalidate``. FLUSHDB and FLUSHALL send every tracking client a
null invalidation. Invalidations for the client whose command caused them wait
until that command's reply is out (as Redis 7.0), and NOLOOP clients get none.

While no client tracks, nothing here runs: the keyspace listener is removed and
the dispatcher's per-command gate is off. While one does, every client passes
the gate (:meth:`Tracking.enter`), so the table knows which client is running.
``tracking-table-max-keys`` bounds the table: beyond it random keys are
invalidated, as Redis does, a bounded number per command. ``keys`` lists the
table's keys for the random pick (a dict cannot pick at random); entries of
keys no longer tracked are dropped when picked, and the list is rebuilt when
they are half of it.
"""
from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from .commands.table import keys_with_access

if TYPE_CHECKING:
    from .app import CacheServer
    from .connection import Client

log = logging.getLogger("distcache.server")

_PUSH = b">2\r\n$10\r\ninvalidate\r\n"
_MESSAGE = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
#: Commands whose keys are not remembered (a read-only script's own keys).
_NOT_REMEMBERED = frozenset(["eval_ro", "evalsha_ro", "fcall_ro"])


class TrackingState:
    """One client's CLIENT TRACKING options."""

    __slots__ = ("redirect", "bcast", "optin", "optout", "noloop", "prefixes", "caching",
                 "clear_caching", "broken")

    def __init__(self) -> None:
        self.redirect = 0
        self.bcast = self.optin = self.optout = self.noloop = False
        self.prefixes: List[bytes] = []
        self.caching = False  # CLIENT CACHING YES/NO, for the next command or transaction
        self.clear_caching = False
        self.broken = False  # the redirect target is gone


def _keys_payload(keys: Optional[List[bytes]], resp3: bool) -> bytes:
    if keys is None:
        return b"_\r\n" if resp3 else b"$-1\r\n"
    return b"*%d\r\n" % len(keys) + b"".join(b"$%d\r\n%s\r\n" % (len(k), k) for k in keys)


class Tracking:
    """The tracking table, the BCAST prefixes and delivery."""

    def __init__(self, server: "CacheServer") -> None:
        self.server = server
        self.keyspace = server.keyspace
        #: key -> ids of the clients that may cache it (a dict as an ordered set).
        self.table: Dict[bytes, Dict[int, None]] = {}
        #: The table's keys (and some it no longer has), for trim's random pick.
        self.keys: List[bytes] = []
        #: BCAST prefix -> its clients, and the keys changed under it -> last changer.
        self.prefixes: Dict[bytes, Dict["Client", None]] = {}
        self.changed: Dict[bytes, Dict[bytes, Any]] = {}
        #: prefix length -> how many BCAST prefixes have it: a write looks up its
        #: key's first n bytes for each length (Redis walks all prefixes, in C)
        self.lengths: Dict[int, int] = {}
        self.clients = 0  # clients with tracking on
        self.current: Optional["Client"] = None  # the client whose command runs
        #: Invalidations for the running client, sent after its reply.
        self.deferred: Dict["Client", List[Optional[List[bytes]]]] = {}
        self.flush_scheduled = False
        self.over_limit_runs = 0
        self.max_keys = server.config["tracking-table-max-keys"]

    # -- on and off ---------------------------------------------------------------

    def enable(self, c: "Client", redirect: int, bcast: bool, optin: bool, optout: bool,
               noloop: bool, prefixes: List[bytes]) -> None:
        state = c.tracking
        if state is None:
            state = c.tracking = TrackingState()
            self.clients += 1
            if self.clients == 1:
                self._switch(True)
        state.redirect = redirect
        state.broken = False
        state.bcast, state.optin, state.optout, state.noloop = bcast, optin, optout, noloop
        if bcast:
            have = set(state.prefixes)  # a list scan per prefix was quadratic
            for prefix in prefixes or [b""]:
                if prefix not in have:
                    have.add(prefix)
                    state.prefixes.append(prefix)
                    clients = self.prefixes.get(prefix)
                    if clients is None:
                        clients = self.prefixes[prefix] = {}
                        self.lengths[len(prefix)] = self.lengths.get(len(prefix), 0) + 1
                    clients[c] = None

    def disable(self, c: "Client") -> None:
        state = c.tracking
        if state is None:
            return
        for prefix in state.prefixes:
            clients = self.prefixes.get(prefix)
            if clients is not None:
                clients.pop(c, None)
                if not clients:
                    del self.prefixes[prefix]
                    self.changed.pop(prefix, None)
                    left = self.lengths[len(prefix)] - 1
                    if left:
                        self.lengths[len(prefix)] = left
                    else:
                        del self.lengths[len(prefix)]
        c.tracking = None
        self.clients -= 1
        if self.clients == 0:
            self._switch(False)

    def _switch(self, on: bool) -> None:
        """Turn the keyspace listener and the per-command gate on or off."""
        server = self.server
        server.tracking_on = on  # type: ignore[attr-defined]
        if on:
            self.keyspace.add_listener("modified", self.key_modified)
        else:
            self.keyspace.remove_listener("modified", self.key_modified)
            self.table.clear()  # nobody left to invalidate
            self.keys = []
            self.current = None
        for client in list(server.clients.values()):
            client.update_restricted()

    # -- the dispatcher's gate ---------------------------------------------------------

    def enter(self, c: "Client") -> None:
        """A command of ``c`` is about to run: what its previous one deferred goes out
        first, then the table is trimmed (as Redis does before each command)."""
        if self.deferred:
            self.flush_deferred()
        if self.max_keys and len(self.table) > self.max_keys:
            self.trim()
        elif len(self.keys) > 2 * len(self.table) + 1024:  # keys invalidated and re-read
            self.keys = list(self.table)
        self.current = c
        self._schedule()  # forgets ``current`` once the loop turn ends

    def remember(self, c: "Client", spec: Any, args: List[bytes]) -> None:
        """Remember the keys a tracking client reads; handle CLIENT CACHING's flag."""
        state = c.tracking
        if state.clear_caching and not c.in_exec:  # EXEC's commands keep it
            state.caching = state.clear_caching = False
        name = (spec.parent or spec).name
        if spec.readonly and not state.bcast and name not in _NOT_REMEMBERED \
                and not (c.in_multi and not c.in_exec):
            if not ((state.optin and not state.caching) or (state.optout and state.caching)):
                table = self.table
                for index, _ in keys_with_access(spec, args):
                    ids = table.get(args[index])
                    if ids is None:
                        table[args[index]] = ids = {}
                        self.keys.append(args[index])
                    ids[c.id] = None
        # As Redis's resetClient: the flag lasts one command, or the whole transaction.
        if name not in ("client", "multi") and not c.in_exec \
                and (name == "exec" or not c.in_multi):
            state.clear_caching = state.caching

    def remember_keys(self, c: "Client", keys: List[bytes]) -> None:
        """A script of the tracking client ``c`` read something: ``keys``, the ones it
        declared, are remembered (Redis 7.0 looks at the caller's command, not the read)."""
        state = c.tracking
        if state.bcast or (state.optin and not state.caching) \
                or (state.optout and state.caching):
            return
        table = self.table
        for key in keys:
            ids = table.get(key)
            if ids is None:
                table[key] = ids = {}
                self.keys.append(key)
            ids[c.id] = None

    # -- invalidation -------------------------------------------------------------

    def key_modified(self, db: Any, key: bytes) -> None:
        """Keyspace listener: ``key`` changed (in any database)."""
        current = self.current
        if self.prefixes:
            prefixes = self.prefixes
            size = len(key)
            for n in self.lengths:
                if n <= size and key[:n] in prefixes:
                    self.changed.setdefault(key[:n], {})[key] = current
                    self._schedule()
        ids = self.table.pop(key, None)
        if ids:
            self._invalidate(ids, key, current)

    def _invalidate(self, ids: Dict[int, None], key: bytes, current: Any) -> None:
        clients = self.server.clients
        for client_id in ids:
            target = clients.get(client_id)
            if target is None or target.tracking is None or target.tracking.bcast:
                continue
            if target is current:
                if target.tracking.noloop:
                    continue
                self.deferred.setdefault(target, []).append([key])
                self._schedule()
            else:
                self.send(target, [key])

    def flushed(self, all_dbs: bool) -> None:
        """FLUSHDB/FLUSHALL: a null invalidation to every tracking client."""
        if not self.clients:
            return
        for client in list(self.server.clients.values()):
            if client.tracking is None:
                continue
            if client is self.current:
                self.deferred.setdefault(client, []).append(None)
                self._schedule()
            else:
                self.send(client, None)
        if all_dbs:
            self.table.clear()
            self.keys = []

    def trim(self) -> None:
        """Invalidate random keys until the table fits ``tracking-table-max-keys``;
        a bounded effort per call that grows while the table stays over (as Redis's
        trackingLimitUsedSlots)."""
        effort = 100 * (self.over_limit_runs + 1)
        table = self.table
        keys = self.keys
        if len(keys) > 2 * len(table) + 64:  # mostly keys gone from the table
            keys = self.keys = list(table)
        randrange = random.randrange
        while effort > 0 and keys:
            effort -= 1
            i = randrange(len(keys))
            key = keys[i]
            keys[i] = keys[-1]
            keys.pop()
            ids = table.pop(key, None)
            if ids is None:
                continue  # invalidated since it was listed
            self._invalidate(ids, key, None)
            if len(table) <= self.max_keys:
                self.over_limit_runs = 0
                return
        self.over_limit_runs += 1

    # -- delivery -------------------------------------------------------------------

    def send(self, c: "Client", keys: Optional[List[bytes]]) -> None:
        """One invalidation message for the tracking client ``c`` (None: everything)."""
        state = c.tracking
        if state is None:
            return
        resp3 = c.resp3  # a null is in the tracking client's protocol, as Redis
        target = c
        if state.redirect:
            target = self.server.clients.get(state.redirect)
            if target is None:
                state.broken = True
                if c.resp3:
                    self._deliver(c, b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n"
                                  % state.redirect)
                return
            if not target.resp3:
                if target.channels or target.patterns or target.shard_channels:
                    self._deliver(target, _MESSAGE + _keys_payload(keys, resp3))
                return  # else RESP2 and not in pub/sub mode: nowhere to send it
        elif not resp3:
            return  # RESP2 without a redirect: no channel for pushes
        self._deliver(target, _PUSH + _keys_payload(keys, resp3))

    def _deliver(self, c: "Client", data: bytes) -> None:
        self.server.pubsub.deliver(c, data)  # type: ignore[attr-defined]

    def _schedule(self) -> None:
        if not self.flush_scheduled and self.server.loop is not None:
            self.flush_scheduled = True
            self.server.loop.call_soon(self.flush)

    def flush(self) -> None:
        """After the loop turn's replies: deferred invalidations and BCAST batches."""
        self.flush_scheduled = False
        self.current = None  # no command runs between loop turns
        self.flush_deferred()
        if self.changed:
            changed, self.changed = self.changed, {}
            for prefix in sorted(changed):
                keys = changed[prefix]
                for client in list(self.prefixes.get(prefix, ())):
                    noloop = client.tracking is not None and client.tracking.noloop
                    batch = sorted(k for k, by in keys.items() if not (noloop and by is client))
                    if batch:
                        self.send(client, batch)

    def flush_deferred(self) -> None:
        deferred, self.deferred = self.deferred, {}
        for client, messages in deferred.items():
            for keys in messages:
                self.send(client, keys)

    # -- introspection ------------------------------------------------------------------

    def info(self) -> Dict[str, Any]:
        return {"tracking_total_keys": len(self.table),
                "tracking_total_items": sum(len(ids) for ids in self.table.values()),
                "tracking_total_prefixes": len(self.prefixes)}


def install(server: "CacheServer") -> Tracking:
    tracking = Tracking(server)
    server.tracking = tracking  # type: ignore[attr-defined]
    server.tracking_on = False  # type: ignore[attr-defined]
    server.disconnect_hooks.append(tracking.disable)
    server.reset_hooks.append(tracking.disable)

    def on_config(name: str) -> None:
        if name == "tracking-table-max-keys":
            tracking.max_keys = server.config["tracking-table-max-keys"]

    server.config_hooks.append(on_config)
    server.info_providers["stats"].append(tracking.info)
    return tracking
