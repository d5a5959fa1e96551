"""Snapshots in Redis's RDB format, when ``dbfilename`` ends in ``.rdb``.

SAVE, BGSAVE, the save rules and the shutdown save then write an RDB
version 10 file (redis-server 7.0 loads it, ``redis-check-rdb`` accepts it),
and the server loads one at start-up, whoever wrote it. Which format a file
holds is read from its first bytes (``REDIS`` or ``DCSNAP``), never guessed
from its name, so a data directory may switch formats between restarts.

With the append-only log on, the snapshot records the log position it
matches in two AUX fields, ``distcache-log-id`` and ``distcache-log-offset``
(Redis skips AUX fields it does not know, as their contract says), and a
restart loads the RDB file and replays the log after that position, exactly
as with distcache's own snapshots.

Loading goes through :meth:`RdbFileReader.load_into` (the fast path for
small strings); the CRC64 of a large file is computed by a forked child in
parallel, since in pure Python it costs about as much as the parsing.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from itertools import islice
from typing import Any, Callable, Iterator, List, Optional, Tuple

from ..rdb import RdbError
from ..rdb.crc64 import crc64
from ..rdb.file import RdbFileReader, RdbFileWriter, default_aux
from .snapshot import NO_LOG, SnapshotError, SnapshotInfo, discard, fsync_dir

log = logging.getLogger("distcache.persistence")

MAGIC = b"REDIS"
AUX_LOG_ID = b"distcache-log-id"
AUX_LOG_OFFSET = b"distcache-log-offset"
#: Keys between two progress checks (and slices of a fork-less save).
STEP = 2048
#: Files smaller than this have their CRC computed inline (a fork costs more).
CRC_CHILD_MIN = 4 << 20
_CRC_PIECE = 8 << 20


def is_rdb_name(path: str) -> bool:
    """Whether snapshots written to ``path`` are RDB files (``dbfilename`` ends in .rdb)."""
    return path.lower().endswith(".rdb")


def is_rdb_file(path: str) -> bool:
    """Whether the file at ``path`` starts with the RDB magic."""
    with open(path, "rb") as fh:
        return fh.read(5) == MAGIC


class Progress:
    """Logs ``keys, bytes, rate`` at most once a second, and a last line at the end."""

    def __init__(self, verb: str, path: str, total: int = 0) -> None:
        self.verb, self.path, self.total = verb, path, total
        self.started = self.last = time.monotonic()

    def tick(self, keys: int, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < 1.0:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        of = f" of {self.total}" if self.total else ""
        log.info("%s %s: %d keys, %d%s bytes, %.0f keys/s, %.1f MB/s%s", self.verb,
                 self.path, keys, done, of, keys / elapsed, done / elapsed / 1e6,
                 f" ({elapsed:.2f} s)" if final else "")


# -- reading ------------------------------------------------------------------------


def read_info(path: str) -> SnapshotInfo:
    """The header of an RDB snapshot: its AUX fields (the log position, if any)."""
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as fh:
            reader = RdbFileReader(fh, size=size, checksum=False)
            r = reader.r
            aux = {}
            while r.remaining and r.read(1)[0] == 250:  # OP_AUX: only the leading ones
                name = r.string()
                aux[name] = r.string()
    except RdbError as exc:
        raise SnapshotError(f"{path}: {exc.reason} at byte offset {exc.offset}") from None
    try:
        log_id = bytes.fromhex(aux.get(AUX_LOG_ID, b"").decode()) or NO_LOG
        log_offset = int(aux.get(AUX_LOG_OFFSET, b"0"))
        created = int(aux.get(b"ctime", b"0")) * 1000
    except ValueError:
        raise SnapshotError(f"{path}: bad distcache AUX fields") from None
    info = SnapshotInfo(path, (MAGIC, reader.version, created, 0, log_id, log_offset), size)
    info.format = "rdb"
    return info


def load(info: SnapshotInfo, keyspace: Any, skip_before: Optional[int] = None,
         checksum: bool = True) -> Iterator[Tuple[int, int]]:
    """Fill ``keyspace`` from the RDB file; yields (keys, bytes read) as it goes.

    Keys whose deadline is at or before ``skip_before`` (ms) are skipped, as
    Redis skips expired keys when it loads. ``checksum`` False (``rdbchecksum
    no``) skips the CRC64 check, as Redis does; a stored zero CRC (a file
    written with ``rdbchecksum no``) is never checked. Any error raises
    SnapshotError naming the file, the byte offset and the reason.
    """
    from ..server.commands.dump import keyspace_value
    dbs = keyspace.dbs
    path = info.path

    def target(index: int) -> Tuple[dict, dict]:
        if index >= len(dbs):
            raise RdbError(f"database {index} is out of range (databases {len(dbs)})",
                           reader.r.offset)
        return dbs[index].data, dbs[index].expires

    progress = Progress("loading", path, info.size)
    with open(path, "rb") as fh:
        child = CrcChild.start(path, info.size - 8) \
            if checksum and info.size >= CRC_CHILD_MIN else None
        try:
            reader = RdbFileReader(fh, size=info.size, checksum=checksum and child is None)
            # (the server's loader logs the progress lines)
            for keys in reader.load_into(target, keyspace_value, skip_before, STEP):
                yield keys, min(fh.tell(), info.size)
            if child is not None and reader.version >= 5:
                _check_crc(reader, fh, child)
        except RdbError as exc:
            where = f"byte offset {exc.offset}" if exc.offset >= 0 else "the end"
            raise SnapshotError(f"{path}: {exc.reason} at {where}") from None
        finally:
            if child is not None:
                child.close()
    progress.tick(reader.keys, info.size, final=True)
    if reader.functions:  # FUNCTION libraries: scripting/functions.py loads them
        keyspace.function_codes = list(reader.functions)
    if reader.expired:
        log.info("%s: %d keys had expired and were not loaded", path, reader.expired)


def _check_crc(reader: RdbFileReader, fh: Any, child: "CrcChild") -> None:
    end = reader.r.offset  # just past the stored checksum
    fh.seek(end - 8)
    stored = int.from_bytes(fh.read(8), "little")
    if not stored:  # written with rdbchecksum no
        return
    computed = child.result() if end == child.length + 8 else None
    if computed is None:  # bytes after the checksum, or no child result: inline
        computed = _file_crc(fh, end - 8)
    if computed != stored:
        raise RdbError("wrong RDB checksum", end - 8)


def _file_crc(fh: Any, length: int) -> int:
    fh.seek(0)
    crc = 0
    while length > 0:
        piece = fh.read(min(length, _CRC_PIECE))
        if not piece:
            break
        crc = crc64(piece, crc)
        length -= len(piece)
    return crc


class CrcChild:
    """The CRC64 of a file's first ``length`` bytes, computed by a forked child
    while the parent parses (two cores instead of one)."""

    def __init__(self, pid: int, fd: int, length: int) -> None:
        self.pid, self.fd, self.length = pid, fd, length

    @classmethod
    def start(cls, path: str, length: int) -> Optional["CrcChild"]:
        from .background import can_fork
        if not can_fork() or sys.modules["distcache.rdb.crc64"].IMPLEMENTATION != "python":
            return None  # no fork, or a CRC in C (anycrc) that costs nothing next to parsing
        rfd, wfd = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(rfd)
            os.close(wfd)
            return None
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                os.close(rfd)
                with open(path, "rb") as fh:
                    os.write(wfd, _file_crc(fh, length).to_bytes(8, "little"))
                code = 0
            finally:
                os._exit(code)
        os.close(wfd)
        return cls(pid, rfd, length)

    def result(self) -> Optional[int]:
        """The CRC (waits for the child), or None if it failed."""
        data = b""
        while len(data) < 8:
            part = os.read(self.fd, 8 - len(data))
            if not part:
                return None
            data += part
        return int.from_bytes(data, "little")

    def close(self) -> None:
        os.close(self.fd)
        try:
            if os.waitpid(self.pid, os.WNOHANG)[0] == 0:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
        except OSError:
            pass


# -- writing ------------------------------------------------------------------------


class RdbSnapshotFile:
    """Writes a snapshot as RDB to ``path``'s temporary twin, key by key:
    :meth:`steps` writes (and yields between batches of keys), :meth:`commit`
    makes it durable, :meth:`abort` removes it."""

    def __init__(self, path: str, tmp_path: Optional[str] = None, compress: bool = True,
                 log_id: bytes = NO_LOG, log_offset: int = 0, checksum: bool = True) -> None:
        self.path = path
        self.tmp_path = tmp_path or f"{path}.tmp-{os.getpid()}"
        self.fh = open(self.tmp_path, "wb")
        aux = default_aux()
        if log_id != NO_LOG:
            aux[AUX_LOG_ID] = log_id.hex().encode()
            aux[AUX_LOG_OFFSET] = b"%d" % log_offset
        # checksum False (rdbchecksum no): a zero CRC, as Redis writes then
        self.writer = RdbFileWriter(self.fh, aux=aux, compress=compress, checksum=checksum)
        self.keys = 0

    def steps(self, dbs: List[Any], progress: bool = True,
              function_codes: Optional[List[bytes]] = None) -> Iterator[int]:
        """Write every database of ``dbs`` (objects with id, data, expires) and the
        FUNCTION libraries (by default ``dbs[0].keyspace.function_codes``); yields the
        keys written every STEP keys."""
        from ..server.commands.dump import codec_value
        writer = self.writer
        writer.w.chunk = _CRC_PIECE  # the CRC runs faster over long pieces
        tick = Progress("saving", self.path).tick if progress else None
        if function_codes is None and dbs:
            function_codes = getattr(dbs[0].keyspace, "function_codes", None)
        for code in function_codes or ():
            writer.function(code)  # before the keys, as Redis writes them
        for db in dbs:
            data = db.data
            if not data:
                continue
            writer.select_db(db.id, len(data), len(db.expires))
            items = iter(data.items())
            get = db.expires.get
            while True:
                n = writer.keys(islice(items, STEP), get, codec_value)
                if not n:
                    break
                self.keys += n
                if tick is not None:
                    tick(self.keys, writer.w.written)
                yield self.keys
        writer.finish()
        if tick is not None:
            tick(self.keys, writer.w.written, final=True)
        yield self.keys

    def commit(self, rename: bool = True) -> int:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        size = self.fh.tell()
        self.fh.close()
        if rename:
            os.replace(self.tmp_path, self.path)
            fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        return size

    def abort(self) -> None:
        discard(self.fh, self.tmp_path)


def write_rdb(path: str, dbs: List[Any], log_id: bytes = NO_LOG, log_offset: int = 0,
              compress: bool = True, tmp_path: Optional[str] = None, rename: bool = True,
              alive: Optional[Callable[[], bool]] = None, checksum: bool = True) -> int:
    """Write the whole dataset as an RDB file, synchronously; returns its size.
    ``alive`` is asked between batches (a child stops when the server died);
    ``checksum`` False writes a zero CRC (``rdbchecksum no``)."""
    out = RdbSnapshotFile(path, tmp_path, compress, log_id, log_offset, checksum)
    try:
        for _ in out.steps(dbs):
            if alive is not None and not alive():
                raise SystemExit(2)
        return out.commit(rename)
    except BaseException:
        out.abort()
        raise
