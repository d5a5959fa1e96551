"""A selector event loop whose socket readers run straight from the poll (PyPy).

asyncio runs every ready file descriptor's callback through a ``Handle``: the
selector turns the poll's ``(fd, mask)`` pairs into ``(key, events)`` pairs,
the loop appends each key's handle to the ready queue, pops it on the same turn
and runs it through ``Handle._run`` inside ``Context.run`` (pure Python on
PyPy). For the server's own client sockets (``SocketTransport``) none of that
is needed: the callback takes no arguments, catches its own errors and needs no
context variables. :class:`DirectReaderLoop` polls through
:class:`DirectSelector`, which runs such readers (registered with
:meth:`DirectReaderLoop.add_direct_reader`) from the poll's own list when only
their socket's read event came and nothing was queued before the poll (the
common case); otherwise they queue like any handle, so earlier ``call_soon``
callbacks still run first. What a direct reader schedules runs later on the
same turn (after the readers, and before the other descriptors' callbacks and
the timers that came due) rather than after the next poll. Everything else
(timers, ``call_soon_threadsafe``, signals, subprocesses, TLS and other
transports) is the stock loop's; without epoll the readers always queue.
"""
from __future__ import annotations

import asyncio
import math
import select
import selectors
from typing import Any, Callable, Dict, List, Optional, Tuple

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


if hasattr(select, "epoll"):
    _EPOLLIN = select.EPOLLIN
    _EPOLLOUT = select.EPOLLOUT

    class DirectSelector(selectors.EpollSelector):
        """An epoll selector that runs direct readers from ``select`` itself.

        Only descriptors whose event was anything but a lone read (a writer, a
        hang-up, an error) or that are not direct readers come back as
        ``(key, events)`` pairs, for the loop's ``_process_events``."""

        def __init__(self) -> None:
            super().__init__()
            #: fd -> its DirectHandle, while the loop's reader for fd is one.
            self.direct: Dict[int, DirectHandle] = {}
            #: The loop's ready queue: readers run inline only while it is empty.
            self.ready: Any = ()

        def unregister(self, fileobj: Any) -> selectors.SelectorKey:
            key = super().unregister(fileobj)
            self.direct.pop(key.fd, None)
            return key

        def select(self, timeout: Optional[float] = None
                   ) -> List[Tuple[selectors.SelectorKey, int]]:
            if timeout is None:
                timeout = -1
            elif timeout <= 0:
                timeout = 0
            else:  # epoll's resolution is 1 ms: wait at least ``timeout``
                timeout = math.ceil(timeout * 1e3) * 1e-3
            fd_to_key = self._fd_to_key
            # Nothing queued before the poll: the readers run in the poll's order,
            # as the queue would run them.
            inline = not self.ready
            try:
                fd_event_list = self._selector.poll(timeout, max(len(fd_to_key), 1))
            except InterruptedError:
                return []
            direct = self.direct
            ready = []
            for fd, event in fd_event_list:
                if event == _EPOLLIN and inline:
                    handle = direct.get(fd)
                    if handle is not None and not handle._cancelled:
                        handle._run()
                        continue
                key = fd_to_key.get(fd)
                if key is not None:
                    events = (_WRITE if event & ~_EPOLLIN else 0) \
                        | (_READ if event & ~_EPOLLOUT else 0)
                    ready.append((key, events & key.events))
            return ready
else:  # pragma: no cover - no epoll: the stock selector, readers queue
    DirectSelector = None  # type: ignore[assignment,misc]


class DirectReaderLoop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]
    """The selector loop plus readers run straight from the poll (:class:`DirectSelector`)."""

    def __init__(self, selector: Optional[selectors.BaseSelector] = None) -> None:
        if selector is None and DirectSelector is not None:
            selector = DirectSelector()
        #: fd -> DirectHandle (the selector's own map when it runs them).
        self._direct: Dict[int, DirectHandle] = getattr(selector, "direct", {})
        super().__init__(selector)
        if DirectSelector is not None and isinstance(self._selector, DirectSelector):
            self._selector.ready = self._ready

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
        self._direct[fd] = handle

    def _add_reader(self, fd: Any, callback: Any, *args: Any) -> Any:
        self._direct.pop(_fileno(fd), None)  # a plain reader replaces the direct one
        return super()._add_reader(fd, callback, *args)

    def _remove_reader(self, fd: Any) -> bool:
        self._direct.pop(_fileno(fd), None)
        return super()._remove_reader(fd)


def _fileno(fileobj: Any) -> Any:
    """The descriptor of ``fileobj`` (an int or an object with ``fileno``)."""
    if fileobj.__class__ is int:
        return fileobj
    try:
        return int(fileobj.fileno())
    except (AttributeError, TypeError, ValueError, OSError):
        return fileobj  # the loop's own call reports it
