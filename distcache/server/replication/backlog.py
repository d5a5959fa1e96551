"""The replication backlog: the last ``repl-backlog-size`` bytes of the write stream.

A replica that reconnects asking for an offset still held here gets ``+CONTINUE``
and only the bytes it missed. Offsets are Redis's: ``end`` is the
master_repl_offset (bytes fed so far), the first byte held is at ``end - histlen + 1``.
"""
from __future__ import annotations

from typing import Optional


class Backlog:
    """A byte window over the stream, trimmed from the front in batches."""

    def __init__(self, size: int, offset: int) -> None:
        self.buf = bytearray()
        #: The offset of the last byte fed (the master_repl_offset).
        self.end = offset
        self.size = self.most = 0
        self.resize(size)

    def append(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        self.end += len(data)
        # Trimming moves the whole window: do it once per eighth of the window
        # (not per write), so a byte is moved about eight times at most.
        if len(buf) > self.most:
            del buf[:len(buf) - self.size]

    @property
    def histlen(self) -> int:
        return min(len(self.buf), self.size)

    @property
    def first_byte_offset(self) -> int:
        return self.end - self.histlen + 1

    def since(self, offset: int) -> Optional[bytes]:
        """The bytes from ``offset`` (the first one wanted) to the end, or None when
        ``offset`` is outside the window (a full resync is needed)."""
        if offset < self.first_byte_offset or offset > self.end + 1:
            return None
        count = self.end + 1 - offset
        return bytes(self.buf[len(self.buf) - count:]) if count else b""

    def resize(self, size: int) -> None:
        self.size = size
        self.most = size + max(size >> 3, 1 << 16)
        buf = self.buf
        if len(buf) > size:
            del buf[:len(buf) - size]
