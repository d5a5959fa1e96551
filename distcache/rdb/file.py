"""The RDB file frame, streamed: magic and version, AUX fields, databases
(SELECTDB, RESIZEDB), per-key EXPIRETIME_MS / IDLE / FREQ, EOF and CRC64.

Reading::

    with open("dump.rdb", "rb") as f:
        reader = RdbFileReader(f)          # reads the header
        for entry in reader:               # one RdbEntry per key, as it is read
            ...
        reader.aux                         # {b"redis-ver": b"7.0.15", ...}

Writing::

    with open("out.rdb", "wb") as f:
        w = RdbFileWriter(f)               # magic and AUX fields
        w.select_db(0, size, expires)
        w.key(b"k", "string", b"v", expire_ms=None)
        w.finish()                         # EOF and checksum

Neither holds more than one value in memory. ``import-rdb``, ``export-rdb``,
snapshots and a replica's full sync are thin loops over these two classes.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from . import bulk
from .bulk import METADATA_OPS
from .codec import LZF_MIN, RDB_VERSION, RdbEmptyKey, RdbReader, RdbWriter, encode_object
from .errors import RdbError, RdbUnsupported

MAGIC = b"REDIS"

OP_FUNCTION2 = 245
OP_FUNCTION = 246
OP_MODULE_AUX = 247
OP_IDLE = 248
OP_FREQ = 249
OP_AUX = 250
OP_RESIZEDB = 251
OP_EXPIRETIME_MS = 252
OP_EXPIRETIME = 253
OP_SELECTDB = 254
OP_EOF = 255


class RdbEntry(NamedTuple):
    """One key of an RDB file."""

    db: int
    key: bytes
    kind: str
    value: Any
    expire_ms: Optional[int]  # absolute Unix time in ms, or None
    idle: Optional[int]  # seconds (LRU), from an IDLE opcode
    freq: Optional[int]  # LFU counter, from a FREQ opcode


def _stream_size(stream: Any) -> Optional[int]:
    """Bytes left in a seekable file, or None (a socket, a pipe)."""
    try:
        return os.fstat(stream.fileno()).st_size - stream.tell()
    except (AttributeError, OSError, ValueError):
        try:
            here = stream.tell()
            end = stream.seek(0, os.SEEK_END)
            stream.seek(here)
            return end - here
        except (AttributeError, OSError, ValueError):
            return None


class RdbFileReader:
    """Iterates over the keys of an RDB file (versions 1 to 10), checking its
    checksum at the end. Empty collections are skipped (counted in
    ``empty_keys``), as Redis does when loading."""

    def __init__(self, stream: Any, size: Optional[int] = None, checksum: bool = True) -> None:
        self.r = RdbReader(stream, _stream_size(stream) if size is None else size,
                           checksum=checksum)
        head = self.r.read(9)
        if head[:5] != MAGIC:
            raise RdbError("not an RDB file (no REDIS magic)", 0)
        try:
            self.version = int(head[5:])
        except ValueError:
            raise RdbError("bad RDB version field", 5) from None
        if not 1 <= self.version <= RDB_VERSION:
            raise RdbError(f"can't handle RDB format version {self.version}", 5)
        self.aux: Dict[bytes, bytes] = {}
        self.functions: List[bytes] = []
        self.db = 0
        self.resize: Dict[int, tuple] = {}
        self.empty_keys = 0
        self.keys = 0
        self.expired = 0  # keys skipped by load_into's skip_before
        self.done = False
        #: (offset, type, key or None) of the key being read by ``__iter__``
        self.current: Optional[Tuple[int, int, Optional[bytes]]] = None

    def load_into(self, target: Callable[[int], Tuple[dict, dict]],
                  convert: Callable[[str, Any], Any], skip_before: Optional[int] = None,
                  step: int = 4096) -> Iterator[int]:
        """Store every key into dictionaries, fast (see :func:`.bulk.load_into`);
        yields the keys stored so far every ``step`` keys and at the end."""
        return bulk.load_into(self, target, convert, skip_before, step)

    def __iter__(self) -> Iterator[RdbEntry]:
        r = self.r
        expire_ms: Optional[int] = None
        idle: Optional[int] = None
        freq: Optional[int] = None
        while True:
            start = r.offset
            op = r.byte()
            if op == OP_EXPIRETIME_MS:
                expire_ms = int.from_bytes(r.read(8), "little", signed=True)
            elif op == OP_EXPIRETIME:
                expire_ms = int.from_bytes(r.read(4), "little", signed=True) * 1000
            elif op == OP_IDLE:
                idle = r.length()
            elif op == OP_FREQ:
                freq = r.byte()
            elif op == OP_SELECTDB:
                self.db = r.length()
            elif op in METADATA_OPS:
                self.read_metadata(op, start)
            elif op == OP_EOF:
                self._finish()
                return
            else:
                self.current = (start, op, None)
                key = r.string()
                self.current = (start, op, key)  # (what a checker reports on an error)
                try:
                    kind, value = r.value(op)
                except RdbEmptyKey:
                    self.empty_keys += 1
                else:
                    self.keys += 1
                    yield RdbEntry(self.db, key, kind, value, expire_ms, idle, freq)
                expire_ms = idle = freq = None

    def read_metadata(self, op: int, start: int) -> None:
        """A RESIZEDB, AUX or FUNCTION opcode's body (every reading loop's)."""
        r = self.r
        if op == OP_RESIZEDB:
            self.resize[self.db] = (r.length(), r.length())
        elif op == OP_AUX:
            name = r.string()
            self.aux[name] = r.string()
        elif op == OP_FUNCTION2:
            self.functions.append(r.string())
        else:
            raise RdbUnsupported("module data and pre-release functions are not supported",
                                 start)

    def _finish(self) -> None:
        r = self.r
        if self.version >= 5:
            computed = r.crc() if r.checksum else 0
            stored = int.from_bytes(r.read(8), "little")
            if r.checksum and stored and stored != computed:
                raise RdbError("wrong RDB checksum", r.offset - 8)
        self.done = True


_EXPIRE_MS = bytes((OP_EXPIRETIME_MS,))
#: First bytes of a string that may be a canonical integer (Redis then writes an int).
_INT_START = frozenset(b"-0123456789")


def default_aux(used_mem: int = 0) -> Dict[bytes, bytes]:
    """The AUX fields Redis 7.0 writes (without replication info)."""
    return {b"redis-ver": b"7.0.15", b"redis-bits": b"64",
            b"ctime": b"%d" % int(time.time()), b"used-mem": b"%d" % used_mem,
            b"aof-base": b"0"}


class RdbFileWriter:
    """Writes an RDB version 10 file to ``stream``, key by key."""

    def __init__(self, stream: Any, aux: Optional[Dict[bytes, bytes]] = None,
                 compress: bool = True, checksum: bool = True) -> None:
        self.w = RdbWriter(stream, compress=compress, checksum=checksum)
        self.w.write(MAGIC + b"%04d" % RDB_VERSION)
        for name, value in (default_aux() if aux is None else aux).items():
            self.aux(name, value)

    def aux(self, name: bytes, value: bytes) -> None:
        self.w.write(bytes((OP_AUX,)))
        self.w.string(name)
        self.w.string(value)

    def function(self, code: bytes) -> None:
        """A FUNCTION library (its code), as Redis writes them after the AUX fields."""
        self.w.write(bytes((OP_FUNCTION2,)))
        self.w.string(code)

    def select_db(self, index: int, size: int, expires: int) -> None:
        w = self.w
        w.write(bytes((OP_SELECTDB,)))
        w.length(index)
        w.write(bytes((OP_RESIZEDB,)))
        w.length(size)
        w.length(expires)

    def key(self, key: bytes, kind: str, value: Any, expire_ms: Optional[int] = None,
            idle: Optional[int] = None, freq: Optional[int] = None) -> None:
        w = self.w
        if expire_ms is not None:
            w.write(bytes((OP_EXPIRETIME_MS,)) + expire_ms.to_bytes(8, "little", signed=True))
        if idle is not None:
            w.write(bytes((OP_IDLE,)))
            w.length(idle)
        elif freq is not None:
            w.write(bytes((OP_FREQ, freq)))
        rdb_type, body = encode_object(kind, value, w.compress, w.limits)
        w.write(bytes((rdb_type,)))
        w.string(key)
        w.write(body)

    def keys(self, items: Iterable[Tuple[bytes, Any]], expires: Callable[[bytes], Optional[int]],
             convert: Callable[[Any], Tuple[str, Any]]) -> int:
        """Write many keys of the current database: ``items`` are (key, value)
        pairs, ``expires(key)`` the deadline or None, ``convert(value)`` the
        (kind, value) of a non-bytes value. A short string that no integer or
        LZF encoding applies to is framed inline (the bulk of a cache's keys);
        the rest goes through :meth:`key`. Returns the keys written."""
        parts: List[bytes] = []
        n = 0
        key_out = self.key
        for key, value in items:
            n += 1
            when = expires(key)
            if value.__class__ is bytes:
                vlen = len(value)
                klen = len(key)
                if klen < 64 and vlen < LZF_MIN and (vlen > 11 or not vlen or
                                                     value[0] not in _INT_START):
                    if when is not None:
                        parts.append(_EXPIRE_MS + when.to_bytes(8, "little", signed=True))
                    parts.append(b"\0%c%s%c%s" % (klen, key, vlen, value))
                    continue
                kind: str = "string"
                plain: Any = value
            else:
                kind, plain = convert(value)
            if parts:
                self.w.write(b"".join(parts))
                parts = []
            key_out(key, kind, plain, when)
        if parts:
            self.w.write(b"".join(parts))
        return n

    def finish(self) -> None:
        """EOF and the checksum (0 when checksums are off, as rdbchecksum no)."""
        w = self.w
        w.write(bytes((OP_EOF,)))
        w.flush()
        w.write((w.crc if w.checksum else 0).to_bytes(8, "little"))
        w.flush()
