"""Pipelines: queue commands, send them with one round trip per server.

The pipeline has the client's single-key methods (``get``, ``set``, ``incr``,
``execute``...); each queues its command and returns the pipeline, so calls
chain. ``execute()`` groups the commands by server, sends every group at
once, and returns the results in call order (a coroutine for the asyncio
client). It is not a transaction: other clients' commands may interleave.

``client.pipeline(replicas=N)`` makes every server that got a write also
run ``WAIT N`` after the pipeline's commands (on the same connection, so it
covers them all); ``confirmed`` then maps each such server to the number of
replicas that acknowledged, for writes that must survive a primary's crash.

>>> with client.pipeline() as p:
...     p.set("a", 1).incr("a").get("a")
...     p.execute()
[True, 2, 2]
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from ..protocol import ReplyError
from .commands import IDEMPOTENT, WRITE, CommandsMixin
from .errors import ResponseError

__all__ = ["Pipeline"]

_Entry = Tuple[Optional[bytes], Any, Optional[Callable[[Any, Any], Any]], Any, int]


class Pipeline(CommandsMixin):
    """Commands queued for one batched ``execute()``; see the module docstring."""

    def __init__(self, client: Any, replicas: int = 0, replicas_timeout: float = 1.0) -> None:
        self._client = client
        self._loads = client._loads
        self._dumps = client._dumps
        self._ring = client._ring
        self._servers = client._servers
        self._all_servers = client._all_servers
        self._shards = client._shards
        self._monitor = client._monitor
        self._direct = None
        self._entries: List[_Entry] = []
        self._replicas = max(0, int(replicas))
        limit = getattr(client, "_timeout", None)
        # A WAIT outlasting the socket timeout would look like a dead server.
        self._replicas_timeout = min(replicas_timeout, limit * 0.8) if limit else replicas_timeout
        #: After ``execute()`` with ``replicas=N``: {server address: replicas that confirmed}.
        self.confirmed: Dict[str, int] = {}

    def _single(self, key: Optional[bytes], args: Any, cb: Any, arg: Any, flags: int) -> Any:
        self._entries.append((key, args, cb, arg, flags))
        return self

    def _unsupported(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("this method is not available in a pipeline; call it on the client")

    def _set_wait(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("set(..., replicas=N) is not available in a pipeline; "
                        "use client.pipeline(replicas=N)")

    get_many = set_many = delete_many = get_or_set = cas = cas_delete = _unsupported
    flush = ping = stats = pipeline = _unsupported

    def __len__(self) -> int:
        return len(self._entries)

    def execute(self, *args: Any, raise_on_error: bool = True) -> Any:  # type: ignore[override]
        """With arguments: queue a raw command. Without: send everything.

        Results come back in order; with ``raise_on_error=False`` a failed
        command's place holds its :class:`ResponseError` instead of raising.
        """
        if args:
            return super().execute(*args)
        entries, self._entries = self._entries, []
        if not entries:
            return self._client._done([])
        keys = [e[0] for e in entries]
        flags = IDEMPOTENT if all(e[4] & IDEMPOTENT for e in entries) else 0
        if any(e[4] & WRITE for e in entries):
            flags |= WRITE
        writes = [bool(e[4] & WRITE) for e in entries]

        def build(idx: List[int]) -> List[tuple]:
            return [entries[i][1] for i in idx]

        def finish(replies: List[Any]) -> List[Any]:
            results = []
            for (_, _, cb, arg, _), reply in zip(entries, replies):
                if reply.__class__ is ReplyError:
                    error = ResponseError(str(reply))
                    if raise_on_error:
                        raise error
                    results.append(error)
                else:
                    results.append(reply if cb is None else cb(reply, arg))
            return results
        client = self._client
        local = client._local
        if local is not None:  # drop written keys before and after (read your writes)
            written = [e[0] for e in entries if e[0] is not None and
                       (e[4] & WRITE or not e[4] & IDEMPOTENT)]
            local.invalidate(written)
            plain_finish = finish

            def finish(replies: List[Any]) -> List[Any]:
                local.invalidate(written)
                return plain_finish(replies)
        plan = client._plan(keys, build, _prefix, flags, writes=writes)
        self.confirmed = {}
        if self._replicas and flags & WRITE:
            written = {id(e[1]) for e in entries if e[4] & WRITE}
            wait = (b"WAIT", self._replicas, max(1, int(self._replicas_timeout * 1000)))
            plan = _then_wait(plan, written, wait, self.confirmed)
        return client._run(plan, finish)

    def reset(self) -> None:
        """Drop the queued commands."""
        self._entries = []

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset()

    async def __aenter__(self) -> "Pipeline":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.reset()


def _prefix(replies: List[Any], n: int) -> List[Any]:
    return replies[:n]  # drop the replies of failover EXPIRE commands


def _then_wait(plan: Any, written: set, wait: tuple, confirmed: Dict[str, int]) -> Any:
    """Drive ``plan``, appending ``wait`` to each server's group that holds a
    write (``written``: ids of those commands) and recording its reply."""
    replies: Any = None
    while True:
        try:
            request = plan.send(replies)
        except StopIteration as stop:
            return stop.value
        if request.__class__ is float:  # a sleep: pass it through
            replies = yield request
            continue
        waiting = {server for server, cmds in request.items()
                   if any(id(cmd) in written for cmd in cmds)}
        got = yield {server: cmds + [wait] if server in waiting else cmds
                     for server, cmds in request.items()}
        replies = {}
        for server, reply in got.items():
            if server in waiting and not isinstance(reply, BaseException):
                acked, reply = reply[-1], reply[:-1]
                if acked.__class__ is ReplyError:
                    raise ResponseError(str(acked))
                confirmed[server.address] = acked
            replies[server] = reply
