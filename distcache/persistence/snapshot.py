"""Snapshot files: the whole dataset, every database, every type, with TTLs.

Layout (all integers little-endian; see docs/persistence.md)::

    header  "DCSNAP" u16 version, i64 created_ms, u32 databases,
            16 bytes log id, u64 log offset   (the log position the data matches)
    blocks  u8 kind, u32 db, u32 count, then the kind's body:
            1  strings without TTL: u32[2n] lengths (key, value...), payload
            2  strings with TTL:    i64[n] deadlines, then as kind 1
            3  containers:          n x (u8 type, i64 deadline or -1, u32 key length,
                                    u32 element count, key, u32[] lengths, payload,
                                    f64[count] scores for sorted sets; a stream's
                                    elements are server/types/stream_codec.py's to_parts)
            4  function libraries:  db 0, u32[n] lengths, the libraries' code
                                    (``keyspace.function_codes``, scripting/functions.py)
    footer  u8 0xFF, u32 crc32 of every byte before it

Files are written to a temporary name, fsynced, renamed into place and the
directory fsynced, so a crash leaves either the old or the new snapshot.
Nothing here unpickles: values are plain byte strings and numbers.
"""
from __future__ import annotations

import os
import struct
import sys
import time
import zlib
from array import array
from collections import deque
from itertools import accumulate
from typing import Any, Iterable, Iterator, List, Optional, Tuple

MAGIC = b"DCSNAP"
VERSION = 1
HEADER = struct.Struct("<6sHqI16sQ")
BLOCK = struct.Struct("<BII")
ITEM = struct.Struct("<BqII")
FOOTER = struct.Struct("<BI")
END = 0xFF
K_STRINGS, K_STRINGS_TTL, K_CONTAINERS, K_FUNCTIONS = 1, 2, 3, 4
T_LIST, T_HASH, T_SET, T_ZSET, T_STREAM = 1, 2, 3, 4, 5
BLOCK_KEYS = 2048
NO_LOG = b"\0" * 16
_SWAP = sys.byteorder != "little"


class SnapshotError(Exception):
    """A snapshot is unreadable: bad magic, version, checksum or structure."""


def _zset_class() -> Any:
    try:
        from ..server.types.zset import ZSet
        return ZSet
    except ImportError:  # pragma: no cover - the type module is not there yet
        return None


def _arr(code: str, values: Iterable[Any]) -> bytes:
    a = array(code, values)
    if _SWAP:  # pragma: no cover - big-endian hosts
        a.byteswap()
    return a.tobytes()


def _unarr(code: str, data: Any) -> array:
    a = array(code)
    a.frombytes(data)
    if _SWAP:  # pragma: no cover
        a.byteswap()
    return a


# -- writing ------------------------------------------------------------------------


def _container(value: Any, zset_cls: Any) -> Tuple[int, List[bytes], Optional[bytes]]:
    cls = value.__class__
    if cls is deque:
        return T_LIST, list(value), None
    if cls is dict:
        flat: List[bytes] = []
        for field, val in value.items():
            flat.append(field)
            flat.append(val)
        return T_HASH, flat, None
    if cls is set:
        return T_SET, list(value), None
    if zset_cls is not None and cls is zset_cls:
        members: List[bytes] = []
        scores: List[float] = []
        for member, score in value.items():
            members.append(member)
            scores.append(score)
        return T_ZSET, members, _arr("d", scores)
    if cls.__name__ == "Stream":
        from ..server.types.stream_codec import to_parts
        return T_STREAM, to_parts(value), None
    raise SnapshotError(f"cannot serialize a value of type {cls.__name__}")


def _strings_block(kind: int, db_id: int, keys: List[bytes], values: List[bytes],
                   deadlines: Optional[List[int]] = None) -> List[bytes]:
    n = len(keys)
    flat: List[Any] = [None] * (2 * n)
    flat[::2] = keys
    flat[1::2] = values
    parts = [BLOCK.pack(kind, db_id, n)]
    if deadlines is not None:
        parts.append(_arr("q", deadlines))
    parts.append(_arr("I", map(len, flat)))
    parts.append(b"".join(flat))
    return parts


def encode_items(db_id: int, items: List[Tuple[bytes, Any]], expires: Any,
                 zset_cls: Any = None) -> List[bytes]:
    """The blocks for a batch of (key, value) pairs of one database."""
    plain_k: List[bytes] = []
    plain_v: List[bytes] = []
    ttl_k: List[bytes] = []
    ttl_v: List[bytes] = []
    ttl_d: List[int] = []
    others: List[Tuple[bytes, Any, int]] = []
    get_ttl = expires.get
    for key, value in items:
        when = get_ttl(key) if expires else None
        if value.__class__ is bytes:
            if when is None:
                plain_k.append(key)
                plain_v.append(value)
            else:
                ttl_k.append(key)
                ttl_v.append(value)
                ttl_d.append(when)
        else:
            others.append((key, value, -1 if when is None else when))
    parts: List[bytes] = []
    if plain_k:
        parts += _strings_block(K_STRINGS, db_id, plain_k, plain_v)
    if ttl_k:
        parts += _strings_block(K_STRINGS_TTL, db_id, ttl_k, ttl_v, ttl_d)
    if others:
        if zset_cls is None:
            zset_cls = _zset_class()
        parts.append(BLOCK.pack(K_CONTAINERS, db_id, len(others)))
        for key, value, when in others:
            kind, elems, extra = _container(value, zset_cls)
            parts.append(ITEM.pack(kind, when, len(key), len(elems)))
            parts.append(key)
            parts.append(_arr("I", map(len, elems)))
            parts.append(b"".join(elems))
            if extra is not None:
                parts.append(extra)
    return parts


def header(databases: int, log_id: bytes = NO_LOG, log_offset: int = 0) -> bytes:
    return HEADER.pack(MAGIC, VERSION, int(time.time() * 1000), databases, log_id, log_offset)


def functions_block(codes: List[bytes]) -> bytes:
    """The block of FUNCTION libraries' code (kind 4)."""
    return b"".join([BLOCK.pack(K_FUNCTIONS, 0, len(codes)), _arr("I", map(len, codes))] + codes)


def iter_chunks(dbs: List[Any], log_id: bytes = NO_LOG, log_offset: int = 0
                ) -> Iterator[bytes]:
    """The snapshot of ``dbs`` as byte chunks (without the footer)."""
    yield header(len(dbs), log_id, log_offset)
    codes = getattr(dbs[0].keyspace, "function_codes", None) if dbs else None
    if codes:
        yield functions_block(codes)
    zset_cls = _zset_class()
    for db in dbs:
        data = db.data
        if not data:
            continue
        items = list(data.items())
        expires = db.expires
        for i in range(0, len(items), BLOCK_KEYS):
            yield b"".join(encode_items(db.id, items[i:i + BLOCK_KEYS], expires, zset_cls))


def fsync_dir(path: str) -> None:
    """fsync a directory so a rename in it survives a crash (no-op where unsupported)."""
    try:
        fd = os.open(path or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class SnapshotWriter:
    """Writes chunks to ``path``'s temporary twin; :meth:`commit` makes it durable."""

    def __init__(self, path: str, tmp_path: Optional[str] = None) -> None:
        self.path = path
        self.tmp_path = tmp_path or f"{path}.tmp-{os.getpid()}"
        self.fh = open(self.tmp_path, "wb")
        self.crc = 0
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.crc = zlib.crc32(chunk, self.crc)
        self.fh.write(chunk)
        self.size += len(chunk)

    def commit(self, rename: bool = True) -> int:
        self.fh.write(FOOTER.pack(END, self.crc))
        self.size += FOOTER.size
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        if rename:
            os.replace(self.tmp_path, self.path)
            fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        return self.size

    def abort(self) -> None:
        discard(self.fh, self.tmp_path)


def discard(fh: Any, tmp_path: str) -> None:
    """Close and remove an unfinished temporary file (a failed or abandoned save)."""
    try:
        fh.close()
    finally:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass


def write_snapshot(path: str, dbs: List[Any], log_id: bytes = NO_LOG, log_offset: int = 0,
                   tmp_path: Optional[str] = None, rename: bool = True) -> int:
    """Write the whole dataset synchronously; returns the file size."""
    writer = SnapshotWriter(path, tmp_path)
    try:
        for chunk in iter_chunks(dbs, log_id, log_offset):
            writer.write(chunk)
        return writer.commit(rename)
    except BaseException:
        writer.abort()
        raise


# -- reading ------------------------------------------------------------------------


class SnapshotInfo:
    __slots__ = ("path", "version", "created_ms", "databases", "log_id", "log_offset", "size",
                 "format")

    def __init__(self, path: str, fields: Tuple[Any, ...], size: int) -> None:
        self.path = path
        _, self.version, self.created_ms, self.databases, self.log_id, self.log_offset = fields
        self.size = size
        self.format = "dcs"  # or "rdb" (rdb_snapshot.read_info)


def read_header(path: str) -> SnapshotInfo:
    """The header of a snapshot (no checksum verification)."""
    with open(path, "rb") as fh:
        raw = fh.read(HEADER.size)
        size = os.fstat(fh.fileno()).st_size
    if len(raw) < HEADER.size or raw[:6] != MAGIC:
        raise SnapshotError(f"{path}: not a distcache snapshot")
    fields = HEADER.unpack(raw)
    if fields[1] != VERSION:
        raise SnapshotError(f"{path}: unsupported snapshot version {fields[1]}")
    return SnapshotInfo(path, fields, size)


def read_verified(path: str) -> Tuple[SnapshotInfo, bytes]:
    """The header and the whole file, after checking magic, version and crc32."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < HEADER.size + FOOTER.size or data[:6] != MAGIC:
        raise SnapshotError(f"{path}: not a distcache snapshot (or truncated)")
    fields = HEADER.unpack_from(data, 0)
    if fields[1] != VERSION:
        raise SnapshotError(f"{path}: unsupported snapshot version {fields[1]}")
    end, crc = FOOTER.unpack_from(data, len(data) - FOOTER.size)
    if end != END or zlib.crc32(memoryview(data)[:len(data) - FOOTER.size]) != crc:
        raise SnapshotError(f"{path}: checksum mismatch (file corrupt or truncated)")
    return SnapshotInfo(path, fields, len(data)), data


def load_blocks(info: SnapshotInfo, data: bytes, keyspace: Any) -> Iterator[Tuple[int, int]]:
    """Apply a verified snapshot to ``keyspace``; yields (keys, bytes read) after each block.

    Loading is a generator so the server can run it in slices and keep
    answering (``LOADING``) meanwhile.
    """
    dbs = keyspace.dbs
    pos = HEADER.size
    limit = len(data) - FOOTER.size
    zset_cls = None
    try:
        while pos < limit:
            kind, db_id, n = BLOCK.unpack_from(data, pos)
            pos += BLOCK.size
            if db_id >= len(dbs):
                raise SnapshotError(f"{info.path}: database {db_id} out of range "
                                    f"(databases is {len(dbs)})")
            db = dbs[db_id]
            if kind == K_STRINGS or kind == K_STRINGS_TTL:
                deadlines = None
                if kind == K_STRINGS_TTL:
                    deadlines = _unarr("q", data[pos:pos + 8 * n])
                    pos += 8 * n
                lens = _unarr("I", data[pos:pos + 8 * n])
                pos += 8 * n
                offs = list(accumulate(lens, initial=pos))
                pos = offs[-1]
                flat = [data[a:b] for a, b in zip(offs, offs[1:])]
                keys = flat[::2]
                db.data.update(zip(keys, flat[1::2]))
                if deadlines is not None:
                    db.expires.update(zip(keys, deadlines))
            elif kind == K_FUNCTIONS:
                lens = _unarr("I", data[pos:pos + 4 * n])
                pos += 4 * n
                offs = list(accumulate(lens, initial=pos))
                pos = offs[-1]
                # The function store compiles them on first use (it sees a new list).
                keyspace.function_codes = [data[a:b] for a, b in zip(offs, offs[1:])]
                n = 0  # not keys
            elif kind == K_CONTAINERS:
                for _ in range(n):
                    vtype, when, klen, count = ITEM.unpack_from(data, pos)
                    pos += ITEM.size
                    key = data[pos:pos + klen]
                    pos += klen
                    lens = _unarr("I", data[pos:pos + 4 * count])
                    pos += 4 * count
                    offs = list(accumulate(lens, initial=pos))
                    pos = offs[-1]
                    elems = [data[a:b] for a, b in zip(offs, offs[1:])]
                    if vtype == T_LIST:
                        value: Any = deque(elems)
                    elif vtype == T_HASH:
                        value = dict(zip(elems[::2], elems[1::2]))
                    elif vtype == T_SET:
                        value = set(elems)
                    elif vtype == T_ZSET:
                        scores = _unarr("d", data[pos:pos + 8 * count])
                        pos += 8 * count
                        if zset_cls is None:
                            zset_cls = _zset_class()
                            if zset_cls is None:
                                raise SnapshotError("sorted sets are not available")
                        value = zset_cls()
                        add = value.add
                        for member, score in zip(elems, scores):
                            add(member, score)
                    elif vtype == T_STREAM:
                        from ..server.types.stream_codec import from_parts
                        value = from_parts(elems)
                    else:
                        raise SnapshotError(f"{info.path}: unknown value type {vtype} "
                                            f"at offset {pos}")
                    db.data[key] = value
                    if when >= 0:
                        db.expires[key] = when
                    else:
                        db.expires.pop(key, None)
            else:
                raise SnapshotError(f"{info.path}: unknown block kind {kind} at offset "
                                    f"{pos - BLOCK.size}")
            if pos > limit:
                raise SnapshotError(f"{info.path}: block overruns the file")
            yield n, pos
    except struct.error as exc:
        raise SnapshotError(f"{info.path}: malformed block near offset {pos}: {exc}") from None


def load_snapshot(path: str, keyspace: Any) -> SnapshotInfo:
    """Load a snapshot in one go (tests, tools)."""
    info, data = read_verified(path)
    for _ in load_blocks(info, data, keyspace):
        pass
    return info
