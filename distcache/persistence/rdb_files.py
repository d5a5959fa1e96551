"""``distcache import-rdb`` and ``distcache export-rdb``: whole datasets in Redis's RDB.

Import reads a Redis dump.rdb (any version distcache/rdb reads) into a new data
directory as a distcache snapshot, which the server loads at start-up (and makes
its log's base). Export loads a data directory (snapshot and log, as a restart
would) and writes an RDB version 10 file that redis-server 7.0 loads. Both stream
key by key, print a progress line about once a second, and write through a
temporary file renamed into place, so a failure leaves nothing half written.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, List, Optional, TextIO, Tuple

from ..rdb import RdbError
from ..rdb.file import RdbFileReader, RdbFileWriter
from . import snapshot
from .loader import load_into, paths

USAGE = """usage: distcache import-rdb FILE [--dir DIR] [server flags...]
       distcache export-rdb [OUT] [--dir DIR] [server flags...]
  import-rdb: fill the (new, empty) data directory DIR from a Redis RDB file
  export-rdb: write the dataset of DIR as an RDB file (default: DIR/dump.rdb)"""


class TransferError(Exception):
    """An import or export that cannot go on; the message names the file and why."""


class Progress:
    """Prints ``keys, bytes, rate`` to ``out`` at most once a second, and at the end."""

    def __init__(self, verb: str, out: Optional[TextIO], total: int = 0) -> None:
        self.verb, self.out, self.total = verb, out, total
        self.started = self.last = time.monotonic()
        self.keys = 0

    def tick(self, done_bytes: Callable[[], int], final: bool = False) -> None:
        now = time.monotonic()
        if self.out is None or (not final and now - self.last < 1.0):
            return
        self.last = now
        done = done_bytes()
        rate = self.keys / max(now - self.started, 1e-6)
        of = f" of {self.total}" if self.total else ""
        print(f"{self.verb}: {self.keys} keys, {done}{of} bytes, {rate:.0f} keys/s",
              file=self.out, flush=True)


def import_rdb(rdb_path: str, config: Any, out: Optional[TextIO] = sys.stderr) -> int:
    """Load ``rdb_path`` into a snapshot in ``config``'s data directory; returns the
    keys imported. Keys already expired are skipped, as Redis skips them on load."""
    from ..server.commands.dump import keyspace_value
    from ..server.keyspace import Keyspace
    dump_path, aofdir, _ = paths(config)
    for existing in (dump_path, aofdir):
        if os.path.exists(existing):
            raise TransferError(f"{existing} exists: import-rdb fills a new data directory "
                                "and never replaces data (move it away first)")
    keyspace = Keyspace(config["databases"])
    now = int(time.time() * 1000)
    progress = Progress("import-rdb", out, os.path.getsize(rdb_path))
    dbs = keyspace.dbs

    def target(index: int) -> Tuple[dict, dict]:
        if index >= len(dbs):
            raise TransferError(f"{rdb_path}: database {index} is out of range "
                                f"(databases {len(dbs)})")
        return dbs[index].data, dbs[index].expires

    with open(rdb_path, "rb") as fh:
        try:
            reader = RdbFileReader(fh, checksum=bool(config["rdbchecksum"]))
            for keys in reader.load_into(target, keyspace_value, skip_before=now):
                progress.keys = keys
                progress.tick(fh.tell)
        except RdbError as exc:
            where = f"byte offset {exc.offset}" if exc.offset >= 0 else "the end"
            raise TransferError(f"{rdb_path}: {exc.reason} at {where}; nothing was "
                                "written") from None
    expired = reader.expired
    if reader.functions:  # FUNCTION libraries: the snapshot keeps their code
        keyspace.function_codes = list(reader.functions)  # type: ignore[attr-defined]
    os.makedirs(os.path.dirname(dump_path) or ".", exist_ok=True)
    snapshot.write_snapshot(dump_path, keyspace.dbs)
    progress.tick(lambda: os.path.getsize(rdb_path), final=True)
    if out is not None and expired:
        print(f"import-rdb: {expired} keys had expired and were skipped", file=out)
    return progress.keys


def export_rdb(config: Any, rdb_path: str, out: Optional[TextIO] = sys.stderr) -> int:
    """Write the dataset of ``config``'s data directory to ``rdb_path``; returns the keys."""
    from ..server.app import CacheServer
    from ..server.commands.dump import codec_value
    server = CacheServer(config=config)
    load_into(server, config)
    progress = Progress("export-rdb", out)
    tmp = f"{rdb_path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            writer = RdbFileWriter(fh, compress=bool(config["rdbcompression"]),
                                   checksum=bool(config["rdbchecksum"]))
            for code in getattr(server.keyspace, "function_codes", None) or ():
                writer.function(code)
            for db in server.keyspace.dbs:
                if not db.data:
                    continue
                writer.select_db(db.id, len(db.data), len(db.expires))
                for key, value in db.data.items():
                    writer.key(key, *codec_value(value), expire_ms=db.expires.get(key))
                    progress.keys += 1
                    progress.tick(fh.tell)
            writer.finish()
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, rdb_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    progress.tick(lambda: os.path.getsize(rdb_path), final=True)
    return progress.keys


def _config(argv: List[str]) -> Any:
    from ..config import build_config
    return build_config(argv, environ=os.environ)


def import_main(argv: List[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        keys = import_rdb(argv[0], _config(argv[1:]))
    except (TransferError, OSError, ValueError) as exc:
        print(f"distcache import-rdb: {exc}", file=sys.stderr)
        return 1
    print(f"import-rdb: {keys} keys imported")
    return 0


def export_main(argv: List[str]) -> int:
    target = argv[0] if argv and not argv[0].startswith("-") else None
    try:
        config = _config(argv[1:] if target else argv)
        target = target or os.path.join(config["dir"], "dump.rdb")
        keys = export_rdb(config, target)
    except (TransferError, OSError, ValueError, snapshot.SnapshotError) as exc:
        print(f"distcache export-rdb: {exc}", file=sys.stderr)
        return 1
    print(f"export-rdb: {keys} keys written to {target}")
    return 0
