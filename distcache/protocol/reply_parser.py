"""Pure-Python RESP2/RESP3 reply parser, for the client side.

``ReplyParser`` turns a server's byte stream into Python values; the server
side (request parsing, reply encoding) is in :mod:`.resp`, and hiredis's C
reader behind the same interface in :mod:`.hiredis_codec`.
"""
from __future__ import annotations

from typing import Any, List, Optional, Union

from .resp import (INLINE_MAX_SIZE, MAX_REPLY_DEPTH, InputBuffer, ProtocolError, PushMessage,
                   ReplyError)

_AGGREGATES = frozenset(b"*%~>|")


class ReplyParser(InputBuffer):
    """Turns a server's byte stream into replies (RESP2 and RESP3).

    ``get()`` returns the next whole reply or ``NOT_ENOUGH``. Error replies
    come back as :class:`ReplyError` instances, so a pipeline can keep each in
    its place. Strings stay bytes unless ``encoding`` is given.
    """

    __slots__ = ("max_depth", "max_bulk_len", "encoding", "_stack")

    def __init__(self, max_depth: int = MAX_REPLY_DEPTH, max_bulk_len: int = 1 << 62,
                 encoding: Optional[str] = None) -> None:
        super().__init__()
        self.max_depth = max_depth
        self.max_bulk_len = max_bulk_len
        self.encoding = encoding
        # Aggregates being filled: [kind, remaining, items, attributes-pending]
        self._stack: List[list] = []

    def get(self) -> Any:
        if not self._ready():
            return NOT_ENOUGH
        buf = self._buf
        n = len(buf)
        stack = self._stack
        while True:
            pos = self._pos
            if pos >= n:
                return NOT_ENOUGH
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                if n - pos > INLINE_MAX_SIZE:
                    raise ProtocolError("reply header too long")
                return NOT_ENOUGH
            kind = buf[pos]
            line = buf[pos + 1:nl]
            value: Any
            if kind == 36 or kind == 61 or kind == 33:  # $ = !
                size = _int(line)
                if size < 0:
                    value = None
                    self._pos = nl + 2
                else:
                    if size > self.max_bulk_len:
                        raise ProtocolError("bulk length %d over the limit" % size)
                    end = nl + 2 + size
                    if end + 2 > n:
                        self._need = end + 2 - pos
                        return NOT_ENOUGH
                    value = buf[nl + 2:end]
                    self._pos = end + 2
                    if kind == 61:
                        value = value[4:]
                    if kind == 33:
                        value = ReplyError(value.decode("utf-8", "replace"))
                    elif self.encoding:
                        value = value.decode(self.encoding, "replace")
            elif kind == 43:  # +
                value = line.decode(self.encoding) if self.encoding else line
                self._pos = nl + 2
            elif kind == 45:  # -
                value = ReplyError(line.decode("utf-8", "replace"))
                self._pos = nl + 2
            elif kind == 58 or kind == 40:  # : (
                value = _int(line)
                self._pos = nl + 2
            elif kind == 44:  # ,
                try:
                    value = float(line)
                except ValueError:
                    raise ProtocolError("invalid double %r" % line) from None
                self._pos = nl + 2
            elif kind == 95:  # _
                value = None
                self._pos = nl + 2
            elif kind == 35:  # #
                value = line == b"t"
                self._pos = nl + 2
            elif kind in _AGGREGATES:
                count = _int(line)
                self._pos = nl + 2
                if count < 0:
                    value = None
                else:
                    if len(stack) >= self.max_depth:
                        raise ProtocolError("reply nested deeper than %d" % self.max_depth)
                    if kind == 37 or kind == 124:  # maps and attributes hold pairs
                        count *= 2
                    if count:
                        stack.append([kind, count, []])
                        continue
                    value = _finish(kind, [])
                    if value is _ATTRIBUTE:
                        continue
            else:
                raise ProtocolError("unknown reply type byte %r" % chr(kind))
            # Place the finished value in its parent, closing parents that fill up.
            while stack:
                frame = stack[-1]
                frame[2].append(value)
                frame[1] -= 1
                if frame[1]:
                    break
                stack.pop()
                value = _finish(frame[0], frame[2])
                if value is _ATTRIBUTE:
                    break
            else:
                return value


class _NotEnough:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_ENOUGH"

    def __bool__(self) -> bool:
        return False


NOT_ENOUGH: Any = _NotEnough()
_ATTRIBUTE = object()


def _int(line: bytes) -> int:
    try:
        return int(line)
    except ValueError:
        raise ProtocolError("invalid integer %r" % line[:32]) from None


def _finish(kind: int, items: list) -> Any:
    if kind == 42:  # *
        return items
    if kind == 37:  # %
        it = iter(items)
        try:
            return dict(zip(it, it))
        except TypeError:  # unhashable keys: keep pairs as a flat list
            return items
    if kind == 126:  # ~
        try:
            return set(items)
        except TypeError:
            return items
    if kind == 62:  # >
        return PushMessage(items)
    return _ATTRIBUTE  # | attributes are metadata; the reply follows them


Reply = Union[bytes, int, None, list, dict, set, float, ReplyError]
