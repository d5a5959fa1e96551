"""A selector event loop whose socket readers run straight from the poll (PyPy).

asyncio runs every ready file descriptor's callback through a ``Handle``: it is
appended to the ready queue, popped on the same turn and run by
``Handle._run`` inside ``Context.run`` (pure Python on PyPy). For the server's
own client sockets (``SocketTransport``) none of that is needed: the callback
takes no arguments, catches its own errors and needs no context variables.
:class:`DirectReaderLoop` runs such readers (registered with
:meth:`DirectReaderLoop.add_direct_reader`) as soon as the poll reports them
when nothing was queued before the poll (the common case); otherwise they queue
like any handle, so earlier ``call_soon`` callbacks still run first. What a
direct reader schedules runs later on the same turn (before the timers that
came due) rather than after the next poll. Everything else (timers,
``call_soon_threadsafe``, signals, subprocesses, TLS and other transports) is
the stock loop's.
"""
from __future__ import annotations

import asyncio
import selectors
from typing import Any, Callable

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class DirectHandle(asyncio.Handle):
    """A reader handle whose callback runs without arguments or a context."""

    __slots__ = ()

    def _run(self) -> None:
        try:
            self._callback()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": "Exception in direct reader callback",
                "exception": exc, "handle": self})


class DirectReaderLoop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]
    """The selector loop plus readers run straight from :meth:`_process_events`."""

    def add_direct_reader(self, fd: int, callback: Callable[[], Any]) -> None:
        """``add_reader(fd, callback)`` for a callback that handles its own errors."""
        self._check_closed()
        handle = DirectHandle(callback, (), self, None)
        selector = self._selector
        try:
            key = selector.get_key(fd)
        except KeyError:
            selector.register(fd, _READ, (handle, None))
        else:
            reader, writer = key.data
            selector.modify(fd, key.events | _READ, (handle, writer))
            if reader is not None:
                reader.cancel()

    def _process_events(self, event_list: Any) -> None:
        ready = self._ready
        # Nothing queued before the poll: the readers run in the poll's order, as
        # the queue would run them.
        direct = not ready
        for key, mask in event_list:
            reader, writer = key.data
            if mask & _READ and reader is not None:
                if reader._cancelled:
                    self._remove_reader(key.fileobj)
                elif direct and reader.__class__ is DirectHandle:
                    reader._run()
                else:
                    ready.append(reader)
            if mask & _WRITE and writer is not None:
                if writer._cancelled:
                    self._remove_writer(key.fileobj)
                else:
                    ready.append(writer)
