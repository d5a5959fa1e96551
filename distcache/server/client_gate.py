"""The per-command gate of a restricted client: checks that apply only in some
states, so an unrestricted client never pays for them.

CLIENT REPLY OFF/SKIP, client tracking, auth (NOAUTH), loading, ACL
permissions (NOPERM and the ACL LOG), a replica's READONLY/MASTERDOWN, MULTI
queueing, MISCONF, RESP2 subscriber mode and the memory limit. A mixin of
:class:`~distcache.server.connection.Client`, whose dispatcher calls
``_gate`` only while ``restricted`` (re-derived by :meth:`update_restricted`).
"""
from __future__ import annotations

from typing import Any, List

from ..protocol.resp import QUEUED as _QUEUED
from ..protocol.resp import Raw
from . import errors
from .client_blocking import BLOCKED
from .errors import CommandError

#: Commands a client may send while subscribed in RESP2.
_PUBSUB_ALLOWED = frozenset(["subscribe", "unsubscribe", "psubscribe", "punsubscribe",
                             "ping", "quit", "reset", "ssubscribe", "sunsubscribe"])
#: Commands that run immediately inside MULTI instead of being queued.
_MULTI_IMMEDIATE = frozenset(["exec", "discard", "multi", "watch", "quit", "reset"])


class Gate:
    """State-dependent checks before a command runs (mixed into Client)."""

    def _gate(self, spec: Any, args: List[bytes]) -> Any:
        """Checks that only apply in some states; returns a reply to stop the command."""
        server = self.server
        if self.in_exec and self.exec_plain and not server.loading:
            return None  # EXEC's queue: nothing below applies to an unrestricted client
        if (self.reply_off or self.skip_next) and not self.muting:
            return self._muted(args)
        if server.tracking_on:  # which client runs, for NOLOOP and deferred invalidations
            server.tracking.enter(self)
        if not self.authenticated and not spec.no_auth:
            raise CommandError(errors.NOAUTH)
        if server.loading and not spec.loading_ok:
            raise CommandError(errors.LOADING)
        if not self.user.full:
            self._acl_check(spec, args)
        if server.replica_gate is not None and not self.in_exec:
            server.replica_gate(self, spec, args)  # READONLY, MASTERDOWN (replication/replica.py)
        name = (spec.parent or spec).name
        denied = server.write_denied  # a persistence error (MISCONF): no writes, no PING
        if self.in_multi and name not in _MULTI_IMMEDIATE and not self.in_exec:
            if spec.no_multi:
                raise CommandError("ERR Command not allowed inside a transaction")
            if server.pause.mode is not None and server.pause.holds(spec, self):
                return server.pause.park(self, args)  # as Redis: before it is queued
            if server.oom_check is not None:  # as Redis: no queueing while out of memory
                server.oom_check(self)
            if denied is not None and (spec.write or name == "ping"):
                raise CommandError(denied)  # not queued; EXEC will abort
            if server.replicas_refusal is not None:
                from .replication.guard import check_queued
                check_queued(self, spec, args)  # NOREPLICAS: not queued; EXEC will abort
            self.multi_queue.append(args)
            if server.multi_check is not None:  # maxmemory-clients (client_memory.py)
                server.multi_check(self)
            return _QUEUED
        if denied is not None and not self.in_exec:
            if spec.write or name == "ping":
                raise CommandError(denied)
            if name == "exec" and self.in_multi:  # as Redis: EXEC of a queued write
                from .commands.transactions import queue_has
                if queue_has(self, self.multi_queue, "write"):
                    raise CommandError(denied)
        if server.replicas_refusal is not None and name == "exec" and self.in_multi \
                and not self.in_exec:
            from .replication.guard import check_exec
            check_exec(self)  # NOREPLICAS: EXECABORT, as Redis's processCommand
        if (self.channels or self.patterns or self.shard_channels) and not self.resp3 \
                and name not in _PUBSUB_ALLOWED:
            raise CommandError(
                f"ERR Can't execute '{spec.fullname}': only (P|S)SUBSCRIBE / "
                "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
        if spec.denyoom and server.oom_check is not None and not self.in_exec:
            server.oom_check(self)
        if self.tracking is not None:
            server.tracking.remember(self, spec, args)
        return None

    def _muted(self, args: List[bytes]) -> Any:
        """Run a command whose reply CLIENT REPLY OFF or SKIP drops."""
        skipping = self.skip_next and not self.reply_off
        if skipping:
            self.skip_next = False
        self.muting = True
        out: List[bytes] = []
        try:
            self.execute(args, out)
        finally:
            self.muting = False
            self.update_restricted()
        if not self.reply_off and not skipping:  # CLIENT REPLY ON ended OFF: its OK goes out
            return Raw(b"".join(out))
        return BLOCKED

    def _acl_check(self, spec: Any, args: List[bytes]) -> None:
        """A limited user's permission check: NOPERM and an ACL LOG entry if denied."""
        from . import acl
        result, index = acl.ACL.check(self.user, spec, args)
        if result == acl.OK:
            return
        obj = spec.fullname.encode() if result == acl.DENIED_CMD else args[index]
        self.server.acl.add_log(self, result, obj, self.user.name)
        if self.in_exec:  # queued while allowed: Redis re-checks at EXEC
            raise CommandError(acl.exec_denied_text(result))
        raise CommandError(acl.noperm_text(result, spec))

    def update_restricted(self) -> None:
        plain = not (not self.authenticated or not self.user.full
                     or self.channels or self.patterns or self.shard_channels
                     or self.reply_off or self.skip_next or self.server.tracking_on
                     or self.server.replica_gate is not None)
        #: Whether ``_gate`` has nothing to do for EXEC's queued commands: the client
        #: would be unrestricted outside MULTI (EXEC skips the MULTI, MISCONF and
        #: memory checks: Redis checks those when queueing and at EXEC).
        self.exec_plain = plain
        self.restricted = not plain or self.in_multi
        self.parser.authenticated = self.authenticated


def _exec_rejected(c: Any, exc: CommandError) -> CommandError:
    """EXEC refused before it runs (arity, auth, MISCONF, subscriber mode...): Redis
    answers EXECABORT and discards the transaction and the watches, in MULTI or not."""
    from .commands.transactions import exec_abort
    return exec_abort(c, exc)
