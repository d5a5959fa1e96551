"""The append-only log: framed records of RESP commands, and the manifest.

A log file starts with ``"DCLOG01\\n"`` and a 16-byte random log id (the
id snapshots use to say which log position they match). Then come records::

    u8 0xDC, u32 payload length, u32 crc32(payload), u32 crc32(the 9 bytes before)
    payload: RESP arrays of bulk strings (the commands), starting with a SELECT

One record holds every write of one event-loop batch, so a record is also
the unit of atomicity: a torn record is dropped whole. Every record begins
with an explicit SELECT, so replay can start at any record boundary.

A record whose header is complete and checks out but whose payload runs
past the end of the file, or a header cut short at the end of the file, is
*torn* (the process died while appending): with ``aof-load-truncated yes``
it is dropped with a warning. Any other mismatch (bad marker, header or
payload checksum) is *corruption* and startup refuses, naming file and
offset; ``distcache check-log FILE --fix`` truncates to the last good record.

The manifest (``<appendfilename>.manifest`` in ``appenddirname``) lists, in
Redis 7's syntax, an optional base snapshot and the incremental logs to
replay after it, oldest first.
"""
from __future__ import annotations

import os
import re
import struct
import zlib
from typing import Any, Iterator, List, NamedTuple, Optional, Tuple

from ..protocol.resp import BULK_HEADERS
from .snapshot import fsync_dir

FILE_MAGIC = b"DCLOG01\n"
FILE_HEADER_SIZE = len(FILE_MAGIC) + 16
REC_MARK = 0xDC
_PRE = struct.Struct("<BII")
_HDR = struct.Struct("<BIII")
REC_HEADER_SIZE = _HDR.size  # 13


class LogError(Exception):
    """The log cannot be read: corruption (or a torn tail that may not be dropped)."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"{path}: {reason} at byte offset {offset}")
        self.path = path
        self.offset = offset
        self.reason = reason


def encode_record(payload: bytes) -> bytes:
    pre = _PRE.pack(REC_MARK, len(payload), zlib.crc32(payload))
    return pre + struct.pack("<I", zlib.crc32(pre)) + payload


def file_header(log_id: bytes) -> bytes:
    return FILE_MAGIC + log_id


_SELECT = [b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(16)]


def select_bytes(db_id: int) -> bytes:
    if db_id < 16:
        return _SELECT[db_id]
    text = b"%d" % db_id
    return b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n" % (len(text), text)


_LEN = BULK_HEADERS
_CRLF = b"\r\n"


def _bulk_len(n: int) -> bytes:
    return _LEN[n] if n < 4096 else b"$%d\r\n" % n


def encode_commands(commands: List[List[bytes]], out: List[bytes]) -> None:
    """Append the RESP encoding of ``commands`` to ``out`` as pieces (the hot path).

    Pieces are joined once per batch; cached length prefixes avoid
    formatting numbers for every argument.
    """
    lens = _LEN
    crlf = _CRLF
    for args in commands:
        try:
            if len(args) == 3:
                a, b, c = args
                out += (b"*3\r\n", lens[len(a)], a, crlf, lens[len(b)], b, crlf,
                        lens[len(c)], c, crlf)
                continue
            if len(args) == 2:
                a, b = args
                out += (b"*2\r\n", lens[len(a)], a, crlf, lens[len(b)], b, crlf)
                continue
        except IndexError:  # an argument of 4 KiB or more
            pass
        out.append(b"*%d\r\n" % len(args))
        for a in args:
            out += (_bulk_len(len(a)), a, crlf)


# -- scanning -----------------------------------------------------------------------


class Scan(NamedTuple):
    log_id: bytes
    records: List[Tuple[int, int]]   # (payload start, payload end) of every good record
    good_end: int                    # offset just past the last good record
    size: int                        # file size
    torn: Optional[str]              # why the tail is torn, or None
    corrupt: Optional[Tuple[int, str]]  # (offset, reason) of corruption, or None


def scan_bytes(data: bytes, path: str = "<log>") -> Scan:
    """Check every record's framing and checksums; never raises for bad data."""
    size = len(data)
    if size < FILE_HEADER_SIZE:
        if FILE_MAGIC.startswith(data[:len(FILE_MAGIC)]):
            return Scan(b"", [], 0, size, "file header cut short" if size else None, None)
        return Scan(b"", [], 0, size, None, (0, "not a distcache log (bad file header)"))
    if data[:len(FILE_MAGIC)] != FILE_MAGIC:
        return Scan(b"", [], 0, size, None, (0, "not a distcache log (bad file header)"))
    log_id = data[len(FILE_MAGIC):FILE_HEADER_SIZE]
    records: List[Tuple[int, int]] = []
    pos = FILE_HEADER_SIZE
    crc32 = zlib.crc32
    unpack = _HDR.unpack_from
    mv = memoryview(data)
    while pos < size:
        if size - pos < REC_HEADER_SIZE:
            if data[pos] != REC_MARK:
                return Scan(log_id, records, pos, size, None, (pos, "bad record marker"))
            return Scan(log_id, records, pos, size, "record header cut short", None)
        mark, length, crc, hcrc = unpack(data, pos)
        if mark != REC_MARK:
            return Scan(log_id, records, pos, size, None, (pos, "bad record marker"))
        if crc32(mv[pos:pos + 9]) != hcrc:
            return Scan(log_id, records, pos, size, None, (pos, "record header checksum mismatch"))
        start = pos + REC_HEADER_SIZE
        end = start + length
        if end > size:
            return Scan(log_id, records, pos, size, "record payload cut short", None)
        if crc32(mv[start:end]) != crc:
            return Scan(log_id, records, pos, size, None, (pos, "record checksum mismatch"))
        records.append((start, end))
        pos = end
    return Scan(log_id, records, pos, size, None, None)


def scan_file(path: str) -> Tuple[Scan, bytes]:
    with open(path, "rb") as fh:
        data = fh.read()
    return scan_bytes(data, path), data


# -- the manifest -------------------------------------------------------------------


class Manifest:
    """``base``: snapshot file name or None; ``incrs``: log file names, oldest first."""

    def __init__(self, base: Optional[str] = None, incrs: Optional[List[str]] = None,
                 seq: int = 0) -> None:
        self.base = base
        self.incrs = list(incrs or [])
        self.seq = seq  # highest sequence number used

    def render(self) -> str:
        lines = []
        if self.base:
            lines.append(f"file {self.base} seq {_seq_of(self.base)} type b\n")
        for name in self.incrs:
            lines.append(f"file {name} seq {_seq_of(name)} type i\n")
        return "".join(lines)

    @classmethod
    def parse(cls, text: str, path: str) -> "Manifest":
        man = cls()
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            fields = dict(zip(parts[::2], parts[1::2]))
            if len(parts) % 2 or "file" not in fields or fields.get("type") not in ("b", "i") \
                    or "/" in fields["file"] or "\\" in fields["file"]:
                raise LogError(path, lineno, "invalid manifest line")
            seq = int(fields.get("seq", "0"))
            man.seq = max(man.seq, seq)
            if fields["type"] == "b":
                man.base = fields["file"]
            else:
                man.incrs.append(fields["file"])
        return man


def _seq_of(name: str) -> int:
    m = re.search(r"\.(\d+)\.(base|incr)\.", name)
    return int(m.group(1)) if m else 0


def read_manifest(path: str) -> Optional[Manifest]:
    try:
        with open(path, encoding="utf-8") as fh:
            return Manifest.parse(fh.read(), path)
    except FileNotFoundError:
        return None


def write_manifest(path: str, manifest: Manifest) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(manifest.render())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


# -- writing ------------------------------------------------------------------------


class LogFile:
    """One open incremental log, appended to with whole records."""

    def __init__(self, path: str, create: bool) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0)
        if create:
            self.log_id = os.urandom(16)
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                _write_all(fd, file_header(self.log_id))
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                raise
            fsync_dir(os.path.dirname(os.path.abspath(path)))
            self.size = FILE_HEADER_SIZE
        else:
            with open(path, "rb") as fh:
                head = fh.read(FILE_HEADER_SIZE)
            if len(head) < FILE_HEADER_SIZE and FILE_MAGIC.startswith(head[:len(FILE_MAGIC)]):
                # Cut inside its header (a crash right after creation): start it afresh.
                head = file_header(os.urandom(16))
                with open(path, "wb") as fh:
                    fh.write(head)
                    fh.flush()
                    os.fsync(fh.fileno())
            if len(head) != FILE_HEADER_SIZE or not head.startswith(FILE_MAGIC):
                raise LogError(path, 0, "not a distcache log (bad file header)")
            self.log_id = head[len(FILE_MAGIC):]
            fd = os.open(path, flags)
            self.size = os.fstat(fd).st_size
        self.fd = fd

    def append(self, record: bytes) -> None:
        """Write one record fully; on failure, cut back any partial write and raise."""
        try:
            _write_all(self.fd, record)
        except OSError:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass
            raise
        self.size += len(record)

    def fsync(self) -> None:
        if self.fd >= 0:
            os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def truncate_file(path: str, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)
        fh.flush()
        os.fsync(fh.fileno())


def iter_payload_commands(data: bytes, records: List[Tuple[int, int]], parser_factory: Any
                          ) -> Iterator[Tuple[int, List[List[bytes]]]]:
    """(record offset, commands) for each record."""
    for start, end in records:
        parser = parser_factory()
        parser.feed(data[start:end])
        yield start - REC_HEADER_SIZE, parser.get_commands()
