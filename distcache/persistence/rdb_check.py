"""``distcache check-log dump.rdb``: verify an RDB file, like redis-check-rdb.

Reads the file key by key (one value in memory at a time) with the same
reader the server loads with, and reports the RDB version, the AUX fields,
the keys of each database by type, the expires, the FUNCTION libraries and
whether the CRC64 matches. On damage it reports where reading stopped: the
byte offset and reason, the key being read and its type, and the last good
key. An RDB file cannot be repaired (``--fix`` changes nothing).
"""
from __future__ import annotations

import os
import sys
import time
from collections import Counter
from typing import Any, Dict, Optional, Tuple

from ..rdb import RdbError, RdbFileReader, RdbUnsupported
from ..rdb import codec

#: RDB type byte -> a name, for "while reading key 'x' (type 0, string)".
TYPE_NAMES: Dict[int, str] = {
    value: name[5:].lower() for name, value in vars(codec).items()
    if name.startswith("TYPE_") and isinstance(value, int)}


def _show(data: bytes, limit: int = 80) -> str:
    """A key or AUX value for a report line: quoted, escaped, cut when long."""
    text = repr(data[:limit])[1:]
    return text + (f" (+{len(data) - limit} bytes)" if len(data) > limit else "")


class _Db:
    def __init__(self) -> None:
        self.keys = 0
        self.expires = 0
        self.expired = 0
        self.kinds: Counter = Counter()


def check_rdb(path: str, out: Any = sys.stdout, checksum: bool = True) -> int:
    """Verify the RDB file at ``path``; prints a report, returns 0 if it is good."""
    size = os.path.getsize(path)
    print(f"[offset 0] Checking RDB file {path} ({size} bytes)", file=out)
    dbs: Dict[int, _Db] = {}
    last: Optional[Tuple[int, bytes, int]] = None  # (db, key, end offset)
    now = int(time.time() * 1000)
    reader: Optional[RdbFileReader] = None
    with open(path, "rb") as fh:
        try:
            reader = RdbFileReader(fh, size=size, checksum=checksum)
            print(f"RDB version {reader.version}", file=out)
            for entry in reader:
                db = dbs.get(entry.db) or dbs.setdefault(entry.db, _Db())
                db.keys += 1
                db.kinds[entry.kind] += 1
                if entry.expire_ms is not None:
                    db.expires += 1
                    db.expired += entry.expire_ms <= now
                last = (entry.db, entry.key, reader.r.offset)
        except RdbError as exc:
            _summary(reader, dbs, out)
            _report_error(reader, exc, last, out)
            return 1
        end = reader.r.offset
        trailing = size - end
    _summary(reader, dbs, out)
    stored = _stored_crc(path, end) if reader.version >= 5 else None
    if stored is None:
        print(f"[offset {end}] no checksum (RDB version {reader.version})", file=out)
    elif stored == 0:
        print(f"[offset {end - 8}] checksum not checked: stored as 0 "
              "(written with rdbchecksum no)", file=out)
    elif not checksum:
        print(f"[offset {end - 8}] checksum not checked", file=out)
    else:
        print(f"[offset {end - 8}] Checksum OK (CRC64 {stored:016x})", file=out)
    if trailing:
        print(f"[offset {end}] {trailing} bytes after the end of the RDB data "
              "(ignored when loading)", file=out)
    keys = sum(db.keys for db in dbs.values())
    print(f"[offset {end}] RDB looks OK: {keys} keys, "
          f"{sum(db.expires for db in dbs.values())} expires, "
          f"{sum(db.expired for db in dbs.values())} already expired", file=out)
    return 0


def _stored_crc(path: str, end: int) -> int:
    with open(path, "rb") as fh:
        fh.seek(end - 8)
        return int.from_bytes(fh.read(8), "little")


def _summary(reader: Optional[RdbFileReader], dbs: Dict[int, _Db], out: Any) -> None:
    """What was read, up to the end or to the error."""
    if reader is None:
        return
    for name, value in reader.aux.items():
        print(f"AUX FIELD {_show(name)} = {_show(value)}", file=out)
    if reader.functions:
        print(f"{len(reader.functions)} FUNCTION libraries", file=out)
    for index in sorted(dbs):
        db = dbs[index]
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(db.kinds.items()))
        resize = reader.resize.get(index)
        hint = f"; RESIZEDB said {resize[0]} keys, {resize[1]} expires" if resize else ""
        print(f"db {index}: {db.keys} keys ({kinds}), {db.expires} expires, "
              f"{db.expired} already expired{hint}", file=out)
    if reader.empty_keys:
        print(f"{reader.empty_keys} empty collections (skipped when loading)", file=out)


def _report_error(reader: Optional[RdbFileReader], exc: RdbError,
                  last: Optional[Tuple[int, bytes, int]], out: Any) -> None:
    label = "UNSUPPORTED" if isinstance(exc, RdbUnsupported) else "RDB ERROR DETECTED"
    print(f"--- {label} ---", file=out)
    where = f"[offset {exc.offset}] " if exc.offset >= 0 else ""
    print(f"{where}{exc.reason}", file=out)
    current = reader.current if reader is not None else None
    if current is not None and (last is None or current[0] >= last[2]):
        start, rdb_type, key = current
        name = TYPE_NAMES.get(rdb_type, "unknown")
        what = f"key {_show(key)}" if key is not None else "a key name"
        print(f"[additional info] while reading {what} (type {rdb_type}, {name}) of db "
              f"{reader.db}, which starts at byte offset {start}", file=out)
    if last is None:
        print("[additional info] no key was read whole", file=out)
    else:
        db, key, end = last
        print(f"[additional info] the last good key: {_show(key)} in db {db}, ending at "
              f"byte offset {end}", file=out)
    keys = reader.keys if reader is not None else 0
    print(f"[info] {keys} keys read before the error; an RDB file cannot be repaired "
          "(--fix changes nothing)", file=out)
