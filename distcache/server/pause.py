"""CLIENT PAUSE: clients' commands wait until the pause ends, as in Redis 7.0.

``WRITE`` holds the commands that may change data or replicate (writes, EVAL,
FCALL, PUBLISH..., and EXEC of a transaction holding one); ``ALL`` holds every
command, CLIENT UNPAUSE included. A held command parks its client as a
blocking command does (what it sends meanwhile queues behind it) and runs when
the pause ends, by timeout or by CLIENT UNPAUSE. While paused, keys do not
expire: a read sees an expired key as missing but does not delete it (so a
replica's data stays as it was), and the active expiry cycle waits.

The check itself sits in the command wrapper of ``monitoring.py``, which wraps
every handler while a pause lasts, and before MULTI queues a command.
"""
from __future__ import annotations

import time
from typing import Any, List, Optional, Tuple

from .connection import BLOCKED

#: Commands Redis flags may_replicate (beyond the write flag).
_MAY_REPLICATE = frozenset(["eval", "evalsha", "fcall", "publish", "spublish", "pfcount",
                            "script|load", "script|flush", "function|load", "function|delete",
                            "function|flush", "function|restore"])


def may_replicate(spec: Any) -> bool:
    return spec.write or spec.fullname in _MAY_REPLICATE or "may_replicate" in spec.flags


class ClientPause:
    """The server's pause: its mode (None, "write" or "all"), end and held commands."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.mode: Optional[str] = None
        self.end = 0.0
        self.held: List[Tuple[Any, List[bytes]]] = []
        self._timer: Any = None

    def pause(self, ms: int, mode: str) -> None:
        """Pause (or extend a pause): as Redis, ALL is never weakened to WRITE, and
        the end moves only later."""
        end = time.monotonic() + ms / 1000.0
        if self.mode is None or mode == "all":
            self.mode = mode
        if end > self.end or self._timer is None:
            self.end = end
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.server.loop.call_at(
                self.server.loop.time() + max(0.0, end - time.monotonic()), self.unpause)
        self.server.keyspace.expiry_paused = True
        from .monitoring import refresh
        refresh()

    def unpause(self) -> None:
        """End the pause; the held commands run next, in the order they came."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.mode = None
        self.end = 0.0
        self.server.keyspace.expiry_paused = False
        from .monitoring import refresh
        refresh()
        held, self.held = self.held, []
        if held:  # from the loop: never inside another client's command
            self.server.loop.call_soon(self._release, held)

    def _release(self, held: List[Tuple[Any, List[bytes]]]) -> None:
        for c, args in held:
            if c.closed or not c.blocked or self.mode is not None and self.holds_again(c, args):
                continue
            c.blocked = False
            c.block_state = None
            self.server.blocked_clients -= 1
            c.execute(args, c.out)
            c.flush()
            if not c.blocked:
                c._resume()

    def holds_again(self, c: Any, args: List[bytes]) -> bool:
        """A new pause began before the release: the command stays held."""
        spec = _spec_of(c, args)
        if self.mode == "all" or may_replicate(spec):
            self.held.append((c, args))
            return True
        return False

    def holds(self, spec: Any, c: Any) -> bool:
        """Whether ``spec`` called by ``c`` waits for the pause to end."""
        if time.monotonic() >= self.end:  # its timer is late
            self.unpause()
            return False
        if self.mode == "all":
            return True
        if spec.name == "exec" and c.in_multi:
            return any(may_replicate(_spec_of(c, queued)) for queued in c.multi_queue)
        return may_replicate(spec)

    def park(self, c: Any, args: List[bytes]) -> Any:
        """Hold ``args`` of ``c`` until the pause ends."""
        self.held.append((c, args))
        return c.block(0, lambda: None, "pause")


def _spec_of(c: Any, args: List[bytes]) -> Any:
    table = c.server.command_table
    spec = table.get(args[0]) or table.get(args[0].lower())
    if spec is not None and spec.subcommands and len(args) > 1:
        spec = spec.subcommands.get(args[1].lower(), spec)
    return spec if spec is not None else _NoSpec


class _NoSpec:
    write = False
    fullname = ""
    flags: frozenset = frozenset()


def install(server: Any) -> ClientPause:
    pause = server.pause = ClientPause(server)
    server.keyspace.expiry_paused = False
    return pause


__all__ = ["BLOCKED", "ClientPause", "install", "may_replicate"]
