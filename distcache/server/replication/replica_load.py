"""Loading a full sync: the primary's RDB payload, read off the event loop.

The event loop receives the payload (``$<len>`` or the diskless ``$EOF:<mark>``
form) and hands its chunks to a thread, which decodes them with distcache/rdb
into fresh dictionaries. Only a payload read to its end, checksum included, is
swapped in (:func:`swap_in`); anything else leaves the served data as it was.
The thread holds the GIL while it decodes, but Python switches threads every few
milliseconds, so the loop keeps serving clients (on the old data) meanwhile.
"""
from __future__ import annotations

import asyncio
import queue
from typing import Any, Callable, Dict, List, Optional, Tuple

from ...rdb import RdbError
from ...rdb.file import RdbFileReader

#: Chunks waiting for the loader thread before the loop stops reading the socket.
QUEUE_CHUNKS = 64
MARK_SIZE = 40
READ_SIZE = 64 * 1024
#: The size given to the RDB reader for a payload whose end only its mark tells.
UNKNOWN_SIZE = 1 << 62

Dataset = List[Tuple[Dict[bytes, Any], Dict[bytes, int]]]


class ReplicationError(Exception):
    """The primary broke the protocol or the payload; the link is retried."""


class _Aborted(Exception):
    pass


class _Pipe:
    """A read-only file over chunks that the event loop puts in a queue."""

    def __init__(self) -> None:
        self.queue: "queue.Queue[Optional[bytes]]" = queue.Queue(QUEUE_CHUNKS)
        self.buf = b""
        self.pos = 0
        self.ended = False
        self.aborted = False

    def read(self, n: int) -> bytes:
        if self.pos >= len(self.buf):
            if self.ended:
                return b""
            chunk = self.queue.get()
            if self.aborted:
                raise _Aborted()
            if chunk is None:
                self.ended = True
                return b""
            self.buf, self.pos = chunk, 0
        data = self.buf[self.pos:self.pos + n]
        self.pos += len(data)
        return data


def _decode(pipe: _Pipe, size: Optional[int], databases: int,
            aux: Dict[bytes, bytes], functions: List[bytes]) -> Dataset:
    """In the loader thread: every key of the payload into fresh dictionaries
    (its aux fields into ``aux``, its FUNCTION libraries' code into ``functions``)."""
    from ..commands.dump import keyspace_value
    dbs: Dataset = [({}, {}) for _ in range(databases)]
    # Without a length (the diskless $EOF form) the reader would read only what
    # each item asks, a call and a CRC step per item: seven times slower. The
    # pipe ends where the payload ends, so reading ahead is safe; a length that
    # lies still costs only the bytes that really arrive (the reader reads in
    # pieces), as with no size at all.
    reader = RdbFileReader(pipe, size=UNKNOWN_SIZE if size is None else size)
    for entry in reader:
        if entry.db >= databases:
            raise ReplicationError(f"the payload has database {entry.db}, "
                                   f"this server has {databases}")
        data, expires = dbs[entry.db]
        # Expired keys are kept: a replica waits for its primary's DEL (Redis 7.0).
        data[entry.key] = keyspace_value(entry.kind, entry.value)
        if entry.expire_ms is not None:
            expires[entry.key] = entry.expire_ms
    if not reader.done:
        raise ReplicationError("the payload ended before its EOF opcode")
    aux.update(reader.aux)
    functions.extend(reader.functions)
    return dbs


class FullSyncLoader:
    """One full sync's payload: received on the loop, decoded in a thread."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.pipe = _Pipe()
        self.size: Optional[int] = None
        self.received = 0
        self.future: Optional["asyncio.Future[Dataset]"] = None
        #: The payload's aux fields, once decoded (``repl-stream-db``).
        self.aux: Dict[bytes, bytes] = {}
        #: The payload's FUNCTION libraries (their code), once decoded.
        self.functions: List[bytes] = []

    async def _feed(self, chunk: Optional[bytes]) -> None:
        """Queue ``chunk`` (None: the end) for the decoder; stops at its first error."""
        if chunk is not None:
            if not chunk:
                return
            self.received += len(chunk)
        while True:
            if self.future is not None and self.future.done():
                await self.result()  # raises if the decoder failed
                return  # it ended at the EOF opcode: what follows is padding

            try:
                self.pipe.queue.put_nowait(chunk)
                return
            except queue.Full:  # the decoder is behind: let it catch up
                await asyncio.sleep(0.005)

    async def receive(self, reader: asyncio.StreamReader, header: bytes, timeout: float,
                      touch: Callable[[], None]) -> bytes:
        """Read the payload announced by ``header``; returns any bytes after it."""
        mark = None
        if header.startswith(b"$EOF:"):
            mark = header[5:]
            if len(mark) != MARK_SIZE:
                raise ReplicationError("bad EOF mark in the full sync header")
        else:
            try:
                self.size = int(header[1:])
            except ValueError:
                raise ReplicationError("bad length in the full sync header") from None
            if self.size < 0:
                raise ReplicationError("negative length in the full sync header")
        loop = asyncio.get_running_loop()
        databases = len(self.server.keyspace.dbs)
        self.future = loop.run_in_executor(None, _decode, self.pipe, self.size, databases,
                                           self.aux, self.functions)
        leftover = b""
        if mark is None:
            left = self.size or 0
            while left:
                chunk = await asyncio.wait_for(reader.read(min(READ_SIZE, left)), timeout)
                if not chunk:
                    raise EOFError("connection lost during the full sync")
                touch()
                left -= len(chunk)
                await self._feed(chunk)
        else:
            tail = b""
            while True:
                chunk = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
                if not chunk:
                    raise EOFError("connection lost during the full sync")
                touch()
                data = tail + chunk
                at = data.find(mark)
                if at >= 0:
                    await self._feed(data[:at])
                    leftover = data[at + MARK_SIZE:]
                    break
                keep = min(len(data), MARK_SIZE - 1)  # the mark may straddle reads
                await self._feed(data[:len(data) - keep])
                tail = data[len(data) - keep:]
        await self._feed(None)
        return leftover

    async def result(self) -> Dataset:
        assert self.future is not None
        try:
            return await self.future
        except RdbError as exc:
            raise ReplicationError(f"bad RDB payload from the master: {exc.reason} at "
                                   f"byte {exc.offset}") from None

    def stream_db(self) -> int:
        """The database the stream after the payload starts in (``repl-stream-db``)."""
        try:
            db = int(self.aux.get(b"repl-stream-db", b"0"))
        except ValueError:
            return 0
        return db if 0 <= db < len(self.server.keyspace.dbs) else 0

    def abort(self) -> None:
        """Stop the decoder thread (a dropped link); its result is dropped."""
        pipe = self.pipe
        pipe.aborted = True
        try:
            pipe.queue.put_nowait(None)
        except queue.Full:
            pass  # the thread takes a chunk, then sees ``aborted``
        future = self.future
        if future is not None:
            future.add_done_callback(_consume)


def _consume(future: "asyncio.Future[Any]") -> None:
    if not future.cancelled():
        future.exception()


def swap_in(server: Any, dbs: Dataset, functions: List[bytes]) -> None:
    """Replace every database's keys with the loaded ones (WATCHers are told), and the
    FUNCTION libraries with the payload's, as Redis empties them before loading."""
    for db, (data, expires) in zip(server.keyspace.dbs, dbs):
        db.flush()
        db.data = data
        db.expires = expires
    # The function store compiles them on its next use (FunctionStore.sync).
    server.keyspace.function_codes = list(functions)
