"""Startup recovery: pick the newest valid snapshot, then replay the log after it.

:func:`plan_recovery` reads the manifest, checks every log record's framing
and checksums and every chosen snapshot's checksum up front, so corruption
stops startup before any data is loaded. :func:`run_plan` then applies the
plan as a generator: the server calls it in time slices on the event loop
while clients get ``LOADING``.

Replay executes the logged commands through the real command table (the
handlers, with a stand-in client), so their semantics are the commands' own.
While it runs, the keyspace clock reads 0: nothing expires during loading
(as in Redis), so a logged command always meets the keys it met originally.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Iterator, List, Optional, Tuple

from . import aof, rdb_snapshot, snapshot
from .aof import LogError, Manifest, Scan
from .snapshot import SnapshotError, SnapshotInfo

log = logging.getLogger("distcache.persistence")


class RecoveryError(OSError):
    """Startup must not go on: corruption, or a missing file the manifest lists."""


class LogSegment:
    __slots__ = ("path", "scan", "data", "start")

    def __init__(self, path: str, scan: Scan, data: bytes, start: int) -> None:
        self.path = path
        self.scan = scan
        self.data = data
        self.start = start  # replay records whose header starts at or after this offset

    def records(self) -> List[Tuple[int, int]]:
        first = self.start + aof.REC_HEADER_SIZE
        return [r for r in self.scan.records if r[0] >= first]


class RecoveryPlan:
    def __init__(self) -> None:
        self.snapshot: Optional[SnapshotInfo] = None
        self.snapshot_data = b""
        self.logs: List[LogSegment] = []
        self.manifest: Optional[Manifest] = None
        self.truncate: Optional[Tuple[str, int]] = None  # (path, good size) of a torn tail

    @property
    def total_bytes(self) -> int:
        n = self.snapshot.size if self.snapshot is not None else 0
        for seg in self.logs:
            n += sum(end - start for start, end in seg.records())
        return n

    def describe(self) -> str:
        parts = []
        if self.snapshot:
            parts.append(f"snapshot {self.snapshot.path}")
        for seg in self.logs:
            parts.append(f"log {seg.path} from offset {seg.start}")
        return ", ".join(parts) or "nothing (empty dataset)"


def paths(config: Any) -> Tuple[str, str, str]:
    """(snapshot path, log directory, manifest path)."""
    d = config["dir"]
    aofdir = os.path.join(d, config["appenddirname"])
    return (os.path.join(d, config["dbfilename"]), aofdir,
            os.path.join(aofdir, config["appendfilename"] + ".manifest"))


def _hint(path: str) -> str:
    return (f"; run 'distcache check-log {path}' to inspect it and "
            f"'distcache check-log {path} --fix' to truncate it to the last good record")


def plan_recovery(config: Any) -> RecoveryPlan:
    plan = RecoveryPlan()
    dump_path, aofdir, manifest_path = paths(config)
    manifest = read_manifest_checked(manifest_path) if config["appendonly"] else None
    if manifest is None:
        if os.path.exists(dump_path):
            plan.snapshot, plan.snapshot_data = _verified(dump_path)
        return plan
    plan.manifest = manifest
    segments: List[LogSegment] = []
    for i, name in enumerate(manifest.incrs):
        path = os.path.join(aofdir, name)
        if not os.path.exists(path):
            raise RecoveryError(f"log file {path} listed in {manifest_path} is missing")
        scan, data = aof.scan_file(path)
        if scan.corrupt is not None:
            offset, reason = scan.corrupt
            raise RecoveryError(f"Bad file format reading the append only file {path}: "
                                f"{reason} at byte offset {offset}" + _hint(path))
        if scan.torn is not None:
            last = i == len(manifest.incrs) - 1
            if not last or not config["aof-load-truncated"]:
                why = "aof-load-truncated is no" if last else "it is not the newest log"
                raise RecoveryError(f"Unexpected end of file reading the append only file "
                                    f"{path}: {scan.torn} at byte offset {scan.good_end} "
                                    f"({why})" + _hint(path))
            log.warning("!!! Warning: short read while loading the append only file %s: %s at "
                        "byte offset %d; dropping the torn tail (%d bytes), "
                        "aof-load-truncated is yes", path, scan.torn, scan.good_end,
                        scan.size - scan.good_end)
            plan.truncate = (path, scan.good_end)
        segments.append(LogSegment(path, scan, data, aof.FILE_HEADER_SIZE))
    first = 0
    if manifest.base:
        base_path = os.path.join(aofdir, manifest.base)
        if not os.path.exists(base_path):
            raise RecoveryError(f"base snapshot {base_path} listed in {manifest_path} is missing")
        plan.snapshot, plan.snapshot_data = _verified(base_path)
    # A snapshot written by SAVE/BGSAVE records the log position it matches;
    # when it points into one of these logs it is newer than the base.
    if os.path.exists(dump_path):
        try:
            head = read_header(dump_path)
        except (OSError, SnapshotError) as exc:
            log.warning("ignoring %s: %s", dump_path, exc)
            head = None
        for i, seg in enumerate(segments):
            if head is None or head.log_id != seg.scan.log_id or not seg.scan.log_id:
                continue
            boundaries = {aof.FILE_HEADER_SIZE, seg.scan.good_end}
            boundaries.update(s - aof.REC_HEADER_SIZE for s, _ in seg.scan.records)
            if head.log_offset not in boundaries:
                log.warning("ignoring %s: its log position %d is not a record boundary of %s",
                            dump_path, head.log_offset, seg.path)
                break
            try:
                info, data = read_verified(dump_path)
            except (OSError, SnapshotError) as exc:
                log.warning("ignoring %s (falling back to the base snapshot): %s",
                            dump_path, exc)
                break
            plan.snapshot, plan.snapshot_data = info, data
            first = i
            seg.start = head.log_offset
            break
    plan.logs = segments[first:]
    return plan


def read_manifest_checked(path: str) -> Optional[Manifest]:
    try:
        return aof.read_manifest(path)
    except (LogError, ValueError) as exc:
        raise RecoveryError(f"invalid manifest {path}: {exc}") from None


def read_header(path: str) -> SnapshotInfo:
    """The header of a snapshot in either format (read from its first bytes)."""
    if rdb_snapshot.is_rdb_file(path):
        return rdb_snapshot.read_info(path)
    return snapshot.read_header(path)


def read_verified(path: str) -> Tuple[SnapshotInfo, bytes]:
    """A snapshot to load: our own format is read whole and its crc32 checked
    now; an RDB file is streamed while loading (its CRC64 checked at its end,
    as Redis does), so only its header is read here."""
    if rdb_snapshot.is_rdb_file(path):
        return rdb_snapshot.read_info(path), b""
    return snapshot.read_verified(path)


def _verified(path: str) -> Tuple[SnapshotInfo, bytes]:
    try:
        return read_verified(path)
    except SnapshotError as exc:
        raise RecoveryError(f"cannot load snapshot: {exc}") from None


# -- replay -------------------------------------------------------------------------


class ReplayClient:
    """The stand-in client handlers see during replay."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.keyspace = server.keyspace
        self.table = server.command_table
        self.db = self.keyspace.dbs[0]
        self.rewrite: Optional[List[List[bytes]]] = None
        self.id = 0
        self.resp3 = False
        self.in_multi = False
        self.multi_queue: List[List[bytes]] = []
        self.multi_error = False
        self.watching: dict = {}
        self.watch_dirty = False
        self.channels: set = set()
        self.patterns: set = set()
        self.blocked = False
        self.closing = False
        self.closed = True
        self.authenticated = True
        self.restricted = False
        self.name = b""
        self.out: List[bytes] = []
        self.addr = "replay"
        self.last_command = b""
        self.transport = None

    def send(self, reply: Any) -> None:
        pass

    def flush(self) -> None:
        pass

    def update_restricted(self) -> None:
        pass


class Replayer:
    """Applies logged commands; MULTI ... EXEC blocks are applied whole or not at all."""

    def __init__(self, server: Any) -> None:
        self.client = ReplayClient(server)
        self.table = server.command_table
        self.dbs = server.keyspace.dbs
        self.tx: Optional[List[List[bytes]]] = None
        self.commands = 0
        self.failed = 0
        self.unknown = 0

    def apply(self, commands: List[List[bytes]]) -> None:
        from ..server.errors import CommandError
        self.commands += len(commands)
        client = self.client
        get = self.table.get
        for args in commands:
            spec = get(args[0])
            if spec is None or self.tx is not None or spec.subcommands \
                    or spec.name in _SPECIAL:
                self._slow(args)
                continue
            try:  # the common case: a plain command outside MULTI
                spec.handler(client, args)
            except CommandError as exc:
                self._failed(args, exc)
            client.rewrite = None

    def _slow(self, args: List[bytes]) -> None:
        name = args[0].lower()
        if name == b"multi":
            self.tx = []
        elif name == b"exec":
            tx, self.tx = self.tx, None
            for queued in tx or ():
                self.run(queued)
        elif self.tx is not None:
            self.tx.append(args)
        else:
            self.run(args)

    def _failed(self, args: List[bytes], exc: Exception) -> None:
        self.failed += 1
        if self.failed <= 5:
            log.warning("logged command %r failed on replay: %s", args[:2], exc)

    def run(self, args: List[bytes]) -> None:
        from ..server.errors import CommandError
        client = self.client
        name = args[0]
        if name.lower() == b"select":
            client.db = self.dbs[int(args[1])]
            return
        spec = self.table.get(name) or self.table.get(name.lower())
        if spec is not None and spec.subcommands and len(args) > 1:
            spec = spec.subcommands.get(args[1]) or spec.subcommands.get(args[1].lower())
        if spec is None or spec.handler is None:
            self.unknown += 1
            if self.unknown <= 5:
                log.warning("unknown command %r in the log; skipped", args[:2])
            return
        try:
            spec.handler(client, args)
        except CommandError as exc:
            self._failed(args, exc)
        finally:
            client.rewrite = None


_SPECIAL = frozenset(["select", "multi", "exec"])


def _zero_clock() -> int:
    return 0


@contextmanager
def frozen_clock() -> Iterator[None]:
    """While replaying, every module's ``now_ms`` reads 0: nothing expires."""
    from ..server import keyspace as ks_mod
    real = ks_mod.now_ms
    patched = []
    for name, mod in list(sys.modules.items()):
        # Read through ModuleType: a getattr would execute a lazy_module not yet
        # loaded (the geo tables...), which has no now_ms anyway.
        if name.startswith("distcache.") and isinstance(mod, ModuleType) \
                and ModuleType.__getattribute__(mod, "__dict__").get("now_ms") is real:
            mod.now_ms = _zero_clock  # type: ignore[attr-defined]
            patched.append(mod)
    try:
        yield
    finally:
        for mod in patched:
            mod.now_ms = real  # type: ignore[attr-defined]


def parse_payload(payload: bytes) -> List[List[bytes]]:
    """The commands of one record's payload (hiredis's reader when installed).

    A record may hold a client's inline requests verbatim (the log keeps a
    read's own bytes when they are exactly its writes); hiredis rejects those,
    and the Python parser, which the server parsed them with, reads the record.
    """
    if _hiredis is not None:
        reader = _hiredis.Reader()
        reader.feed(payload)
        commands = []
        gets = reader.gets
        try:
            item = gets()
            while item is not False:
                commands.append(item)
                item = gets()
            return commands
        except _hiredis.ProtocolError:
            pass
    from ..protocol import RequestParser
    parser = RequestParser()
    parser.feed(payload)
    return parser.get_commands()


try:
    import hiredis as _hiredis
except ImportError:  # pragma: no cover - optional speed-up
    _hiredis = None


def run_plan(plan: RecoveryPlan, server: Any) -> Iterator[Tuple[int, int]]:
    """Apply ``plan``; yields (bytes done, keys loaded) every few milliseconds of work."""
    keyspace = server.keyspace
    done = 0
    keys = 0
    if plan.snapshot is not None and plan.snapshot.format == "rdb":
        # Without a log to replay, expired keys are dropped as Redis drops
        # them; with one, a logged command may still have met them.
        skip = None if plan.logs else int(time.time() * 1000)
        try:
            checksum = bool(server.config["rdbchecksum"])
            for keys, done in rdb_snapshot.load(plan.snapshot, keyspace, skip, checksum):
                yield done, keys
        except SnapshotError as exc:
            raise RecoveryError(f"cannot load snapshot: {exc}; nothing was written") from None
        done = plan.snapshot.size
    elif plan.snapshot is not None:
        info, data = plan.snapshot, plan.snapshot_data
        for n, pos in snapshot.load_blocks(info, data, keyspace):
            keys += n
            yield pos, keys
        done += len(data)
        plan.snapshot_data = b""
        yield done, keys
    replayer = Replayer(server)
    for seg in plan.logs:
        for start, end in seg.records():
            commands = parse_payload(seg.data[start:end])
            replayer.apply(commands)
            done += end - start
            keys += len(commands)
            yield done, keys
        seg.data = b""
    if replayer.tx is not None:
        log.warning("the log ends inside a MULTI/EXEC block: %d queued commands dropped",
                    len(replayer.tx))
    if replayer.failed or replayer.unknown:
        log.warning("replay: %d commands failed, %d unknown commands skipped",
                    replayer.failed, replayer.unknown)


def load_into(server: Any, config: Any) -> RecoveryPlan:
    """Plan and apply recovery synchronously (tests and tools)."""
    plan = plan_recovery(config)
    with frozen_clock():
        for _ in run_plan(plan, server):
            pass
    return plan
