"""``distcache check-log FILE [--fix]``: check (and repair) a log, manifest or snapshot.

Like redis-check-aof: it reports the first bad record (byte offset and
reason) and, with ``--fix``, truncates the log to its last good record.
Like redis-check-rdb for an RDB file (any name; read by its ``REDIS`` magic):
see :mod:`.rdb_check`.
Exit status: 0 when the file is (now) good, 1 when a problem remains,
2 on usage errors.
"""
from __future__ import annotations

import os
import sys
from typing import List

from ..cli import SUBCOMMANDS
from . import aof, snapshot
from .rdb_check import check_rdb
from .rdb_snapshot import MAGIC as RDB_MAGIC

USAGE = "usage: distcache check-log FILE [--fix]\n" \
        "  FILE: an append-only log (*.aof), its manifest, or a snapshot (*.dcs, *.rdb)"


def check_log_file(path: str, fix: bool, out: "object" = sys.stdout) -> int:
    scan, _ = aof.scan_file(path)
    records = len(scan.records)
    if scan.corrupt is None and scan.torn is None:
        print(f"{path}: OK: {records} records, {scan.size} bytes", file=out)
        return 0
    if scan.corrupt is not None:
        offset, reason = scan.corrupt
        print(f"{path}: CORRUPT: {reason} at byte offset {offset}", file=out)
    else:
        print(f"{path}: TRUNCATED: {scan.torn} at byte offset {scan.good_end}", file=out)
    lost = scan.size - scan.good_end
    print(f"{path}: {records} good records; the last good record ends at byte offset "
          f"{scan.good_end}; {lost} bytes after it", file=out)
    if not fix:
        print(f"{path}: run with --fix to truncate the file to {scan.good_end} bytes "
              f"(the {lost} bytes after the last good record are discarded)", file=out)
        return 1
    if scan.good_end == 0:
        with open(path, "wb") as fh:  # not even a valid header: start a fresh, empty log
            fh.write(aof.file_header(os.urandom(16)))
            fh.flush()
            os.fsync(fh.fileno())
        print(f"{path}: FIXED: rewritten as an empty log", file=out)
        return 0
    aof.truncate_file(path, scan.good_end)
    print(f"{path}: FIXED: truncated to {scan.good_end} bytes ({lost} bytes discarded)",
          file=out)
    return 0


def check_snapshot(path: str, out: "object" = sys.stdout) -> int:
    with open(path, "rb") as fh:
        if fh.read(len(RDB_MAGIC)) == RDB_MAGIC:
            return check_rdb(path, out)
    try:
        info, _ = snapshot.read_verified(path)
    except (OSError, snapshot.SnapshotError) as exc:
        print(f"{path}: BAD SNAPSHOT: {exc} (a snapshot cannot be repaired; "
              "remove it to fall back to the log)", file=out)
        return 1
    print(f"{path}: snapshot OK: version {info.version}, {info.size} bytes", file=out)
    return 0


def check(path: str, fix: bool, out: "object" = sys.stdout) -> int:
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(snapshot.MAGIC) or head.startswith(RDB_MAGIC):
        return check_snapshot(path, out)
    if head.startswith(aof.FILE_MAGIC[:6]) or path.endswith(".aof"):
        return check_log_file(path, fix, out)
    if path.endswith(".manifest"):
        manifest = aof.read_manifest(path)
        assert manifest is not None
        directory = os.path.dirname(os.path.abspath(path))
        status = 0
        if manifest.base:
            status |= check_snapshot(os.path.join(directory, manifest.base), out)
        for name in manifest.incrs:
            status |= check_log_file(os.path.join(directory, name), fix, out)
        return status
    return check_log_file(path, fix, out)


def main(argv: List[str]) -> int:
    args = [a for a in argv if a != "--fix"]
    fix = len(args) != len(argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if args[:1] != ["--help"] else sys.stdout)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    try:
        return check(args[0], fix)
    except OSError as exc:
        print(f"distcache check-log: {exc}", file=sys.stderr)
        return 2


SUBCOMMANDS["check-log"] = main

from . import rdb_files  # noqa: E402

SUBCOMMANDS["import-rdb"] = rdb_files.import_main
SUBCOMMANDS["export-rdb"] = rdb_files.export_main
