"""Blocking of one client: parked by BLPOP-like commands until a reply or a
timeout, with what it sends meanwhile queued and run once it is unblocked.

A mixin of :class:`~distcache.server.connection.Client`; the waiters of each
key are in types/blocking.py.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

from ..protocol import ReplyError
from ..protocol.resp import encode_reply
from .stats import count_error


class _Blocked:
    """Returned by a handler that parks the client (BLPOP with no data)."""

    __slots__ = ()


BLOCKED = _Blocked()


class Blocking:
    """Park and resume a client (mixed into Client)."""

    def block(self, timeout: float, on_timeout: Callable[[], Any], state: Any = None) -> Any:
        """Park this client until :meth:`unblock` or the timeout (0: forever)."""
        # Reading goes on while blocked (commands wait in ``pending``), so a
        # client that disconnects while blocked is noticed, as in Redis.
        self.blocked = True
        handle = None
        if timeout > 0:
            loop = asyncio.get_event_loop()
            handle = loop.call_later(timeout, self._block_timeout, on_timeout)
        self.block_state = (state, handle, on_timeout)
        self.server.blocked_clients += 1
        return BLOCKED

    def _block_timeout(self, on_timeout: Callable[[], Any]) -> None:
        if self.blocked:
            self.unblock(on_timeout())

    def unblock_now(self, error: Optional[str] = None) -> bool:
        """CLIENT UNBLOCK: end the wait as a timeout would, or with ``error``."""
        if not self.blocked or self.block_state is None or self.block_state[0] == "pause":
            return False
        reply = self.block_state[2]()  # detaches the waiter; the timeout reply
        self.unblock(reply if error is None else ReplyError(error))
        return True

    def unblock(self, reply: Any) -> None:
        """Deliver the reply a parked client waited for and resume its commands."""
        if not self.blocked:
            return
        state = self.block_state
        if state and state[1] is not None:
            state[1].cancel()
        self.blocked = False
        self.block_state = None
        self.server.blocked_clients -= 1
        if reply.__class__ is ReplyError:
            count_error(self.server, reply.code)
        encode_reply(reply, self.out, self.resp3)
        self.flush()
        if self.pending:
            # What it sent meanwhile runs once every ready key has been served,
            # not before other waiters (Redis's processUnblockedClients).
            asyncio.get_event_loop().call_soon(self._resume)
        else:
            self._resume()

    def _resume(self) -> None:
        """Run the commands that waited while this client was blocked."""
        while self.pending and not self.blocked and not self.closing and not self.closed:
            self.execute(self.pending.popleft(), self.out)
        self.flush()
        if not self.blocked and not self.pending and self.reading_paused \
                and not self.write_paused and self.transport is not None and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()
